"""The relay's SQL: claim a batch in per-aggregate order, mark it, record failures, purge.

Everything here is synchronous SQLAlchemy Core; the relay calls it through
:func:`adapters.db.run_sync`.

A claim takes two statements in one transaction, each served by an index (no ``GROUP BY``
over the backlog), so it costs the same with a million pending rows as with a thousand:

1. **Candidates** (:func:`candidates_query`, a plain read): the first ``limit`` rows in
   ``id`` order that are unpublished, ready (``next_attempt_at`` NULL or past), and whose
   aggregate has no unpublished row waiting for a retry. ``ix_<table>_queue`` gives the
   rows in id order; ``ix_<table>_retry``, which holds failed rows only, gives the
   aggregates held back, once per statement.
2. **Lock** (:func:`lock_query`, one statement per :data:`ID_CHUNK` aggregates): each
   aggregate's first candidate, ``FOR UPDATE SKIP LOCKED``, where it is still unpublished
   and ready (PostgreSQL, MariaDB 10.6+).

The claim is the candidates of the aggregates whose first candidate got locked, in id
order; the locked rows come back from the lock with their current values.

Why that keeps each aggregate in order with several relays at once:

- In the candidates' snapshot an aggregate's first candidate is its *head*, its lowest
  unpublished id: a lower unpublished row would be ready (then it comes first in id
  order) or waiting (then the aggregate is left out). Its other candidates are the rows
  right after the head, none missing in between, as rows of one aggregate get ids in the
  order they commit (docs/outbox.md: write the business change first).
- The read never skips a locked row, so a head another relay holds is still this
  relay's first candidate; ``SKIP LOCKED`` drops it, and with it the whole aggregate.
  Holding the head's lock therefore owns the aggregate until :meth:`Claim.finish`
  commits.
- A head another relay published, or failed and set to retry later, after the read no
  longer passes the lock's condition (PostgreSQL re-checks a row it had to wait for,
  MariaDB's locking read sees the latest committed version). And no candidate after a
  locked head was published since the read: a relay marks an aggregate's rows only in
  the commit that marks its head, which would then be published too.

The aggregates held back are left out in the same statement, so their rows never fill a
batch; the scan passes over them at the cost of one hash probe each (a poison row with a
long tail of later rows slows the claim in proportion to that tail, never stops it).

SQLite has no row locks and supports one relay per database file: its candidates are
the claim. Its transactions begin ``IMMEDIATE`` (the write lock up front, so a read never
has to upgrade and fail), and the claim is committed before publishing, so the
application's writes are never blocked for the length of a Kafka round trip.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.schema import CreateIndex

from adapters.db import Dialect, begin_immediate, create_engine, dialect_of, require_table
from adapters.sources.outbox.rows import OutboxRow
from adapters.sources.outbox.table import relay_indexes
from bus.errors import ConfigError

__all__ = [
    "ID_CHUNK",
    "Claim",
    "OutboxStore",
    "RowFailure",
    "candidates_query",
    "lock_query",
    "relay_engine",
]

#: Ids per ``IN`` list: a batch of up to this many rows is marked in one statement.
ID_CHUNK = 1000
PURGE_CHUNK = 1000

T = TypeVar("T")


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
        """Mark ``published`` ids and record ``failures``, then commit (releasing the locks).

        The published ids go in one ``UPDATE`` per :data:`ID_CHUNK` ids, the failures in
        one ``executemany``.
        """
        table = self.store.table
        conn = self.connection
        if not conn.in_transaction():
            conn.begin()
        for ids in _chunks(published):
            conn.execute(
                table.update()
                .where(table.c.id.in_(ids), table.c.published_at.is_(None))
                .values(published_at=now)
            )
        if failures:
            conn.execute(
                table.update()
                .where(table.c.id == sa.bindparam("failed_id"))
                .values(
                    attempts=table.c.attempts + 1,
                    last_error=sa.bindparam("error"),
                    next_attempt_at=sa.bindparam("retry_at"),
                ),
                [
                    {"failed_id": f.row.id, "error": f.error, "retry_at": f.retry_at}
                    for f in failures
                ],
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
        missing = ConfigError(
            f"the outbox table {self.table.name!r} does not exist in the database",
            fix="create it with create_outbox_table(engine) or the DDL in docs/outbox.md",
        )
        require_table(self.engine, self.table, missing)

    def index_statements(self) -> list[str]:
        """What to run so that the claim uses its indexes; empty when nothing is missing.

        A ``CREATE INDEX`` for each of :func:`relay_indexes` the table lacks (by name), and
        on SQLite a ``DROP INDEX`` for the ``ix_<table>_pending`` of earlier releases:
        without statistics SQLite's planner prefers it and sorts the whole backlog.
        """
        with self.engine.connect() as conn:
            present = {index["name"] for index in sa.inspect(conn).get_indexes(self.table.name)}
            statements = [
                str(CreateIndex(index).compile(dialect=conn.dialect)).strip()
                for index in relay_indexes(self.table, conn.dialect.name)
                if index.name not in present
            ]
        obsolete = f"ix_{self.table.name}_pending"
        if self.dialect is Dialect.SQLITE and obsolete in present:
            statements.append(f"DROP INDEX {obsolete}")
        return statements

    def claim(self, limit: int, now: datetime) -> Claim:
        """Claim up to ``limit`` rows: the lowest unpublished rows of aggregates it can own."""
        conn = self.engine.connect()
        if self.holds_locks:
            conn = conn.execution_options(isolation_level="READ COMMITTED")
        try:
            conn.begin()
            candidates = [_row(v) for v in conn.execute(candidates_query(self.table, limit, now))]
            rows = self._lock(conn, candidates, now) if self.holds_locks else candidates
            if not self.holds_locks:
                conn.commit()
        except BaseException:
            conn.close()
            raise
        return Claim(self, conn, rows)

    def _lock(
        self, conn: Connection, candidates: list[OutboxRow], now: datetime
    ) -> list[OutboxRow]:
        """The candidates of the aggregates whose first candidate this relay could lock."""
        heads: dict[str, int] = {}
        for row in candidates:
            heads.setdefault(row.aggregate_id, row.id)
        locked: dict[int, OutboxRow] = {}
        for ids in _chunks(list(heads.values())):
            locked.update(
                (values.id, _row(values))
                for values in conn.execute(lock_query(self.table, ids, now, skip_locked=True))
            )
        return [locked.get(row.id, row) for row in candidates if heads[row.aggregate_id] in locked]

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


def _chunks(ids: Sequence[T]) -> Iterator[list[T]]:
    for first in range(0, len(ids), ID_CHUNK):
        yield list(ids[first : first + ID_CHUNK])


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


def _ready(t: sa.Table | sa.Alias, now: datetime) -> sa.ColumnElement[bool]:
    """Unpublished and not waiting for a retry."""
    return sa.and_(
        t.c.published_at.is_(None),
        sa.or_(t.c.next_attempt_at.is_(None), t.c.next_attempt_at <= now),
    )


def candidates_query(t: sa.Table, limit: int, now: datetime) -> sa.Select[Any]:
    """The first ``limit`` ready rows, in id order, of aggregates no waiting row holds back.

    A plain read: rows locked by another relay count, so their aggregates' heads come
    first and the lock then drops those aggregates. The aggregates held back are read
    once per statement (from ``ix_<table>_retry``), not once per row.
    """
    held_back = sa.select(t.c.aggregate_id).where(
        t.c.published_at.is_(None), t.c.next_attempt_at > now
    )
    return (
        _columns(t)
        .where(_ready(t, now), t.c.aggregate_id.not_in(held_back))
        .order_by(t.c.id)
        .limit(limit)
    )


def lock_query(
    t: sa.Table, ids: Sequence[int], now: datetime, *, skip_locked: bool
) -> sa.Select[Any]:
    """The rows ``ids`` still unpublished and ready, locked unless another relay holds them."""
    query = _columns(t).where(t.c.id.in_(list(ids)), _ready(t, now)).order_by(t.c.id)
    return query.with_for_update(skip_locked=True) if skip_locked else query


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
