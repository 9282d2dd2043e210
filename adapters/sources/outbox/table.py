"""The outbox table, defined once with SQLAlchemy Core.

One row is one event an application committed together with its business change::

    id              auto-increment primary key: the order rows were written in
    event_id        the event's UUIDv7 (ce_id), unique; the application makes it
    event_type      the event name, e.g. PendudukUpdated
    aggregate_id    what the event is about (a NIK, a nomor izin): orders the rows of one
                    aggregate; never sent to Kafka (the key comes from the event itself)
    sequence        the aggregate's version (ce_sequence), or NULL
    payload         the event as plain JSON (the shape of schemas/avro/examples/*.json)
    created_at      when the row was written (database clock; informational)
    published_at    when the relay published it (UTC); NULL until then
    attempts        failed attempts to publish it
    last_error      why the last attempt failed (never a field value)
    next_attempt_at when a failed row is tried again (UTC); NULL when it has not failed

The index on ``(published_at, aggregate_id, id)`` serves the relay's one hot question —
the lowest unpublished id of each aggregate — on PostgreSQL, MariaDB and SQLite alike.
``docs/outbox.md`` gives the same table as plain DDL for applications that create it
themselves.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler

from adapters.sources.outbox.config import DEFAULT_TABLE

__all__ = ["UtcDateTime", "create_outbox_table", "outbox_table"]


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """A point in time stored as UTC: ``timestamptz`` on PostgreSQL, ``DATETIME(6)`` elsewhere.

    Values go in as timezone-aware datetimes and come back as UTC-aware ones, whatever
    the database keeps.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("outbox timestamps must be timezone-aware")
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class _Now(sa.sql.expression.FunctionElement[datetime]):
    """``CURRENT_TIMESTAMP``, with the precision of the column on MariaDB/MySQL."""

    type = UtcDateTime()
    inherit_cache = True


@compiles(_Now)
def _now_default(element: _Now, compiler: SQLCompiler, **kw: Any) -> str:
    return "CURRENT_TIMESTAMP"


@compiles(_Now, "mysql")
@compiles(_Now, "mariadb")
def _now_mysql(element: _Now, compiler: SQLCompiler, **kw: Any) -> str:
    return "CURRENT_TIMESTAMP(6)"


def outbox_table(name: str = DEFAULT_TABLE, metadata: sa.MetaData | None = None) -> sa.Table:
    """The outbox table called ``name``, in ``metadata`` (a new one by default)."""
    return sa.Table(
        name,
        metadata if metadata is not None else sa.MetaData(),
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("aggregate_id", sa.String(255), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=True),
        sa.Column(
            "payload",
            sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            UtcDateTime(),
            nullable=False,
            server_default=_Now(),
        ),
        sa.Column("published_at", UtcDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", UtcDateTime(), nullable=True),
        sa.UniqueConstraint("event_id", name=f"uq_{name}_event_id"),
        sa.Index(f"ix_{name}_pending", "published_at", "aggregate_id", "id"),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
        sqlite_autoincrement=True,
    )


def create_outbox_table(engine: Engine, *, table: str = DEFAULT_TABLE) -> sa.Table:
    """Create the outbox table (and its indexes) unless it exists; return its definition."""
    definition = outbox_table(table)
    definition.metadata.create_all(engine, checkfirst=True)
    return definition
