"""The delivery ledger's store: append entries, ask who received a resident's data.

**Write the ledger first, then deliver.** A delivering service (the contract service, a
snapshot, a replay) calls :meth:`LedgerStore.append` with the entries of a batch and
produces the batch only after ``append`` returned, its transaction committed. A crash
between the two leaves entries of deliveries that never happened; the service delivers
the batch again after its restart and appends the entries again. So the ledger is
at-least-once: an entry may be duplicated (same event id, subscriber and kind), but no
delivery is ever without its entry. :meth:`LedgerStore.who_received` returns every
entry, duplicates included, newest first; its per-subscriber summary counts them.
:meth:`LedgerStore.first_entries` finds the entry of an event's first delivery to a
subscriber, which a replay or redrive turns into its ``replay`` entry
(:func:`bus.ledger.replay_entry`).

The store offers no way to change or remove an entry, and the table refuses ``UPDATE``
and ``DELETE`` by trigger (:mod:`adapters.ledger.table`). The methods block: from async
code call them through :func:`adapters.db.run_sync`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from adapters.db import create_engine, require_table
from adapters.ledger.table import DEFAULT_TABLE, ledger_table
from bus.errors import ConfigError
from bus.ledger import LedgerEntry, LedgerKind, LedgerSubjects, WhoReceived, summarise
from bus.logs import get_logger

__all__ = ["LedgerStore"]

log = get_logger(__name__)
_COLUMNS = (
    "subject",
    "event_id",
    "event_type",
    "subscriber",
    "opd",
    "purpose",
    "legal_basis",
    "kind",
    "delivered_at",
)
#: Event ids per lookup statement (SQLite allows 32,766 bound values; stay well below).
_LOOKUP_CHUNK = 500


def _entry(row: sa.Row[Any]) -> LedgerEntry:
    return LedgerEntry(**{**row._asdict(), "kind": LedgerKind(row.kind)})


class LedgerStore:
    """The ledger in one SQL database (SQLite, PostgreSQL or MariaDB), append-only.

    ``secret`` is the ledger secret (at least 16 bytes) that turns a NIK into its subject;
    the table must exist (:func:`adapters.ledger.create_ledger_table`). A replay or
    redrive, which takes its subjects from the original entries, passes ``secret=None``:
    such a store appends and looks entries up by event, but cannot answer for a NIK.
    """

    def __init__(self, engine: Engine, secret: bytes | None, *, table: str = DEFAULT_TABLE) -> None:
        self._engine = engine
        self._subjects = None if secret is None else LedgerSubjects(secret)
        self._table = ledger_table(table)
        self._copy_statement = f"COPY {self._table.name} ({', '.join(_COLUMNS)}) FROM STDIN"
        self._owns_engine = False

    @classmethod
    def from_url(cls, url: str, secret: bytes | None, *, table: str = DEFAULT_TABLE) -> LedgerStore:
        """A store on a new engine for ``url``; :meth:`close` disposes of it."""
        store = cls(create_engine(url), secret, table=table)
        store._owns_engine = True
        return store

    def _with_secret(self) -> LedgerSubjects:
        if self._subjects is None:
            raise ConfigError(
                "this ledger store has no ledger secret, so it cannot turn a NIK into its subject",
                fix="build the store with the ledger secret (--secret-file or $SPBE_LEDGER_SECRET)",
            )
        return self._subjects

    def check_table(self) -> None:
        """Raise :class:`~bus.errors.ConfigError` when the ledger table does not exist.

        A delivering service checks this at start and does not create the table: its
        database user may only ``SELECT`` and ``INSERT``, and the append-only triggers
        need the table's owner (docs/contracts.md, "Append-only").
        """
        missing = ConfigError(
            f"the ledger table {self._table.name!r} does not exist in the ledger database",
            fix="create it once as the table's owner: create_ledger_table(engine) "
            "(adapters.ledger), then grant the service SELECT and INSERT (docs/contracts.md)",
        )
        require_table(self._engine, self._table, missing)

    def subject(self, nik: str) -> str:
        """The ledger subject of ``nik`` (a ConfigError naming the rule if it is not a NIK)."""
        return self._with_secret().subject(nik)

    def append(self, entries: Sequence[LedgerEntry]) -> None:
        """Record ``entries`` in one transaction: all of them or, on an error, none.

        Call it before the deliveries are produced (the module docstring says why).
        """
        if not entries:
            return
        with self._engine.begin() as conn:
            if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
                self._copy(conn, entries)
            else:
                rows = [{name: getattr(entry, name) for name in _COLUMNS} for entry in entries]
                for row in rows:
                    row["kind"] = row["kind"].value
                conn.execute(self._table.insert(), rows)
        log.debug("ledger.appended", entries=len(entries))

    def _copy(self, conn: sa.Connection, entries: Sequence[LedgerEntry]) -> None:
        """Append ``entries`` with PostgreSQL's ``COPY``, in ``conn``'s transaction.

        A delivering service appends every batch: ``COPY`` sends the rows as one stream,
        several times faster than an ``INSERT`` per row. psycopg's cursor runs on the
        connection SQLAlchemy began the transaction on, so the commit (or the rollback
        on an error) still covers every row.
        """
        driver = conn.connection.driver_connection
        statement = self._copy_statement
        try:
            with driver.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
                for e in entries:
                    copy.write_row(
                        (
                            e.subject,
                            e.event_id,
                            e.event_type,
                            e.subscriber,
                            e.opd,
                            e.purpose,
                            e.legal_basis,
                            e.kind.value,
                            e.delivered_at,
                        )
                    )
        except psycopg.Error as exc:
            # The error SQLAlchemy raises for an INSERT (an IntegrityError for a NULL), with
            # PostgreSQL's primary message only: its detail and COPY's context repeat the
            # failing row, subject included.
            primary = type(exc)(exc.diag.message_primary or type(exc).__name__)
            raise sa.exc.DBAPIError.instance(
                statement, None, primary, psycopg.Error, hide_parameters=True, dialect=conn.dialect
            ) from None

    def who_received(
        self, subject_nik: str, *, frm: datetime | None = None, to: datetime | None = None
    ) -> WhoReceived:
        """Every delivery of this resident's data, newest first, and a summary per subscriber.

        ``frm`` is inclusive and ``to`` exclusive (both timezone-aware); either may be left
        out. The answer holds neither the NIK nor its subject.
        """
        answer_window = summarise((), frm=frm, to=to)  # checks both are timezone-aware
        c = self._table.c
        query = sa.select(*(c[name] for name in _COLUMNS)).where(
            c.subject == self._with_secret().subject(subject_nik, field_name="subject_nik")
        )
        if answer_window.frm is not None:
            query = query.where(c.delivered_at >= answer_window.frm)
        if answer_window.to is not None:
            query = query.where(c.delivered_at < answer_window.to)
        query = query.order_by(c.delivered_at.desc(), c.id.desc())
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        entries = [_entry(row) for row in rows]
        return summarise(entries, frm=answer_window.frm, to=answer_window.to)

    def first_entries(self, subscriber: str, event_ids: Sequence[str]) -> dict[str, LedgerEntry]:
        """The first entry written for each of ``event_ids`` delivered to ``subscriber``.

        By event id; an event id without an entry is left out. The first entry is the
        original delivery (``delivery`` or ``snapshot``): the one a replay repeats. Served
        by ``ix_<table>_event`` on ``(subscriber, event_id)``.
        """
        wanted = list(dict.fromkeys(event_ids))
        c = self._table.c
        found: dict[str, LedgerEntry] = {}
        with self._engine.connect() as conn:
            for start in range(0, len(wanted), _LOOKUP_CHUNK):
                chunk = wanted[start : start + _LOOKUP_CHUNK]
                query = (
                    sa.select(*(c[name] for name in _COLUMNS))
                    .where(c.subscriber == subscriber, c.event_id.in_(chunk))
                    .order_by(c.id)
                )
                for row in conn.execute(query):
                    if row.event_id not in found:
                        found[row.event_id] = _entry(row)
        return found

    def close(self) -> None:
        """Dispose of the engine if :meth:`from_url` made it."""
        if self._owns_engine:
            self._engine.dispose()

    def __enter__(self) -> LedgerStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        secret = "None" if self._subjects is None else "**********"
        return f"LedgerStore(table={self._table.name!r}, secret={secret})"
