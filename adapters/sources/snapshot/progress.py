"""Where a snapshot keeps its place: one row per snapshot name in the steward's database.

    name            the snapshot's name (default: the table's), primary key
    table_name      the table it reads (informational)
    last_key        the key of the last row whose batch Kafka acknowledged, as text;
                    NULL before the first batch
    rows_published  events acknowledged so far
    rows_invalid    rows whose event broke a rule (reported, not published)
    rows_excluded   rows the event function left out on purpose
    started_at      when this snapshot started from its first key (UTC)
    updated_at      when the last batch was acknowledged (UTC)
    finished_at     when the last key was passed (UTC); NULL while unfinished

The table sits next to the steward's own tables, so the relay's database user that reads
them can keep it; it is created when absent. ``last_key`` may hold a NIK: it stays in the
steward's database, which holds that NIK anyway, and is never logged.

A row is written after each acknowledged batch, in a transaction of its own. A crash
before that write republishes at most the batch in hand; the sinks' version guard turns
those duplicates into no-ops.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from adapters.sources.outbox.table import UtcDateTime

__all__ = ["Progress", "ProgressStore", "progress_table"]


def progress_table(name: str, metadata: sa.MetaData | None = None) -> sa.Table:
    """The progress table called ``name``."""
    return sa.Table(
        name,
        metadata if metadata is not None else sa.MetaData(),
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("table_name", sa.String(100), nullable=False),
        sa.Column("last_key", sa.Text(), nullable=True),
        sa.Column("rows_published", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("rows_invalid", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("rows_excluded", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("finished_at", UtcDateTime(), nullable=True),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
    )


@dataclass(frozen=True, slots=True)
class Progress:
    """A snapshot's stored place and counts."""

    name: str
    table_name: str
    last_key: str | None
    rows_published: int
    rows_invalid: int
    rows_excluded: int
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None

    @property
    def rows_done(self) -> int:
        """Rows passed so far: published, invalid or excluded."""
        return self.rows_published + self.rows_invalid + self.rows_excluded

    def __repr__(self) -> str:
        # last_key may be a NIK: never in a repr.
        return (
            f"Progress(name={self.name!r}, rows_done={self.rows_done}, "
            f"finished={self.finished_at is not None})"
        )


class ProgressStore:
    """The progress table of one database (blocking calls; run them off the event loop)."""

    def __init__(self, engine: Engine, table: str) -> None:
        self.engine = engine
        self.table = progress_table(table)

    def create(self) -> None:
        """Create the table unless it exists."""
        self.table.metadata.create_all(self.engine, checkfirst=True)

    def load(self, name: str) -> Progress | None:
        """The stored progress of ``name``, if any."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(self.table).where(self.table.c.name == name)).first()
        return None if row is None else _progress(row)

    def begin(self, name: str, table_name: str, now: datetime, *, restart: bool) -> Progress:
        """The progress to resume from: the stored one, or a fresh one (``restart`` or none)."""
        t = self.table
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(t).where(t.c.name == name)).first()
            if row is not None and not restart:
                return _progress(row)
            if row is not None:
                conn.execute(t.delete().where(t.c.name == name))
            fresh = Progress(name, table_name, None, 0, 0, 0, now, now, None)
            conn.execute(
                t.insert().values(
                    name=name,
                    table_name=table_name,
                    last_key=None,
                    rows_published=0,
                    rows_invalid=0,
                    rows_excluded=0,
                    started_at=now,
                    updated_at=now,
                    finished_at=None,
                )
            )
            return fresh

    def save(self, progress: Progress) -> None:
        """Store ``progress`` (after a batch was acknowledged, or at the end)."""
        t = self.table
        with self.engine.begin() as conn:
            conn.execute(
                t.update()
                .where(t.c.name == progress.name)
                .values(
                    last_key=progress.last_key,
                    rows_published=progress.rows_published,
                    rows_invalid=progress.rows_invalid,
                    rows_excluded=progress.rows_excluded,
                    updated_at=progress.updated_at,
                    finished_at=progress.finished_at,
                )
            )


def _progress(row: sa.Row[object]) -> Progress:
    m = row._mapping
    return Progress(
        name=m["name"],
        table_name=m["table_name"],
        last_key=m["last_key"],
        rows_published=int(m["rows_published"]),
        rows_invalid=int(m["rows_invalid"]),
        rows_excluded=int(m["rows_excluded"]),
        started_at=m["started_at"],
        updated_at=m["updated_at"],
        finished_at=m["finished_at"],
    )
