"""The relay's SQL: claim the head row of each aggregate, mark, record failures, purge.

Everything here is synchronous SQLAlchemy Core; the relay calls it through
:func:`adapters.db.run_sync`.

Claiming happens in two steps inside one transaction:

1. a plain read finds the *head* of each aggregate — its lowest unpublished id — that is
   not waiting for a retry;
2. those rows are locked with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL, MariaDB 10.6+), and
   only those whose ``published_at`` is still NULL are kept.

Step 1 never skips a locked row, so an aggregate whose head another relay holds yields
nothing here: its later rows cannot be claimed until that head is published and
committed. Holding a head's lock therefore owns the whole aggregate, and the claim adds
the rows that follow each locked head, up to the batch size. The locks are held until
:meth:`Claim.finish` commits the marks.

SQLite has no row locks and supports one relay per database file. Its transactions begin
``IMMEDIATE`` (the write lock up front, so a read never has to upgrade and fail), and the
claim is committed before publishing, so the application's writes are never blocked for
the length of a Kafka round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from adapters.db import Dialect, begin_immediate, create_engine, dialect_of
from adapters.sources.outbox.rows import OutboxRow
from bus.errors import ConfigError

__all__ = [
    "Claim",
    "OutboxStore",
    "RowFailure",
    "followers_query",
    "heads_query",
    "lock_query",
    "relay_engine",
]

PURGE_CHUNK = 1000


def relay_engine(url: str) -> Engine:
    """An engine for the relay: no SQL parameters in errors, ``BEGIN IMMEDIATE`` on SQLite."""
    return begin_immediate(create_engine(url))


@dataclass(frozen=True, slots=True)
class RowFailure:
    """A row that could not be published this time, and why (no field values)."""

    row: OutboxRow
    error: str
    retry_at: datetime


@dataclass
class Claim:
    """Rows claimed for one cycle, with the connection that holds their locks."""

    store: OutboxStore
    connection: Connection
    rows: list[OutboxRow] = field(default_factory=list)

    def finish(
        self, published: Sequence[int], failures: Sequence[RowFailure], now: datetime
    ) -> None:
        """Mark ``published`` ids and record ``failures``, then commit (releasing the locks)."""
        table = self.store.table
        conn = self.connection
        if not conn.in_transaction():
            conn.begin()
        if published:
            conn.execute(
                table.update()
                .where(table.c.id.in_(list(published)), table.c.published_at.is_(None))
                .values(published_at=now)
            )
        for failure in failures:
            conn.execute(
                table.update()
                .where(table.c.id == failure.row.id)
                .values(
                    attempts=table.c.attempts + 1,
                    last_error=failure.error,
                    next_attempt_at=failure.retry_at,
                )
            )
        conn.commit()

    def close(self) -> None:
        """Give the connection back; anything not committed is rolled back."""
        self.connection.close()


class OutboxStore:
    """The outbox table of one database, as the relay uses it."""

    def __init__(self, engine: Engine, table: sa.Table) -> None:
        self.engine = engine
        self.table = table
        self.dialect = dialect_of(engine)

    @property
    def holds_locks(self) -> bool:
        """Whether claimed rows stay locked while they are published (not on SQLite)."""
        return self.dialect is not Dialect.SQLITE

    def check_table(self) -> None:
        """Raise :class:`ConfigError` when the outbox table is missing."""
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.select(self.table.c.id).where(sa.false()))
        except sa.exc.DBAPIError as exc:
            if not isinstance(exc, sa.exc.ProgrammingError | sa.exc.OperationalError):
                raise
            if exc.connection_invalidated or not _mentions_missing_table(exc):
                raise
            raise ConfigError(
                f"the outbox table {self.table.name!r} does not exist in the database",
                fix="create it with create_outbox_table(engine) or the DDL in docs/outbox.md",
            ) from None

    def claim(self, limit: int, now: datetime) -> Claim:
        """Claim up to ``limit`` rows: aggregate heads not waiting to retry, then followers."""
        conn = self.engine.connect()
        if self.holds_locks:
            conn = conn.execution_options(isolation_level="READ COMMITTED")
        try:
            conn.begin()
            heads = self._head_ids(conn, limit, now)
            rows = self._lock(conn, heads) if heads else []
            if rows and len(rows) < limit:
                rows += self._followers(conn, rows, limit - len(rows))
            if not self.holds_locks:
                conn.commit()
        except BaseException:
            conn.close()
            raise
        return Claim(self, conn, rows)

    def _head_ids(self, conn: Connection, limit: int, now: datetime) -> list[int]:
        return list(conn.execute(heads_query(self.table, limit, now)).scalars())

    def _lock(self, conn: Connection, ids: list[int]) -> list[OutboxRow]:
        query = lock_query(self.table, ids, skip_locked=self.holds_locks)
        return [_row(values) for values in conn.execute(query)]

    def _followers(self, conn: Connection, heads: list[OutboxRow], limit: int) -> list[OutboxRow]:
        return [_row(values) for values in conn.execute(followers_query(self.table, heads, limit))]

    def purge(self, cutoff: datetime) -> int:
        """Delete rows published before ``cutoff``, in chunks; return how many."""
        t = self.table
        deleted = 0
        while True:
            with self.engine.begin() as conn:
                ids = list(
                    conn.execute(
                        sa.select(t.c.id)
                        .where(t.c.published_at < cutoff)
                        .order_by(t.c.id)
                        .limit(PURGE_CHUNK)
                    ).scalars()
                )
                if ids:
                    conn.execute(t.delete().where(t.c.id.in_(ids)))
            deleted += len(ids)
            if len(ids) < PURGE_CHUNK:
                return deleted


def _columns(t: sa.Table) -> sa.Select[Any]:
    return sa.select(
        t.c.id,
        t.c.event_id,
        t.c.event_type,
        t.c.aggregate_id,
        t.c.sequence,
        t.c.payload,
        t.c.attempts,
    )


def heads_query(t: sa.Table, limit: int, now: datetime) -> sa.Select[Any]:
    """Ids of aggregate heads (lowest unpublished id per aggregate) not waiting to retry.

    A plain read: rows locked by another relay count, so their aggregates yield nothing.
    """
    heads = (
        sa.select(sa.func.min(t.c.id).label("head_id"))
        .where(t.c.published_at.is_(None))
        .group_by(t.c.aggregate_id)
        .subquery("heads")
    )
    return (
        sa.select(t.c.id)
        .select_from(t.join(heads, t.c.id == heads.c.head_id))
        .where(sa.or_(t.c.next_attempt_at.is_(None), t.c.next_attempt_at <= now))
        .order_by(t.c.id)
        .limit(limit)
    )


def lock_query(t: sa.Table, ids: Sequence[int], *, skip_locked: bool) -> sa.Select[Any]:
    """The rows ``ids`` that are still unpublished, locked unless another relay holds them."""
    query = _columns(t).where(t.c.id.in_(list(ids)), t.c.published_at.is_(None)).order_by(t.c.id)
    return query.with_for_update(skip_locked=True) if skip_locked else query


def followers_query(t: sa.Table, heads: Sequence[OutboxRow], limit: int) -> sa.Select[Any]:
    """Unpublished rows of the aggregates whose heads are claimed, after those heads."""
    return (
        _columns(t)
        .where(
            t.c.published_at.is_(None),
            t.c.aggregate_id.in_(sorted({row.aggregate_id for row in heads})),
            t.c.id.not_in([row.id for row in heads]),
        )
        .order_by(t.c.id)
        .limit(limit)
    )


def _row(values: sa.Row[Any]) -> OutboxRow:
    return OutboxRow(
        id=values.id,
        event_id=values.event_id,
        event_type=values.event_type,
        aggregate_id=values.aggregate_id,
        sequence=values.sequence,
        payload=values.payload,
        attempts=values.attempts,
    )


def _mentions_missing_table(exc: sa.exc.DBAPIError) -> bool:
    text = str(exc.orig).lower()
    return any(
        marker in text
        for marker in ("no such table", "does not exist", "doesn't exist", "undefinedtable")
    )
