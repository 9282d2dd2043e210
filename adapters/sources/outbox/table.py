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

Indexes (``docs/outbox.md`` gives the same table and indexes as plain DDL):

``ix_<table>_queue``
    the relay's batch: the first unpublished rows in ``id`` order. A partial index on
    ``(id) WHERE published_at IS NULL`` on PostgreSQL and SQLite, so it holds the backlog
    only; MariaDB has no partial indexes and gets ``(published_at, id)``.
``ix_<table>_retry``
    the aggregates held back by a row waiting for its retry: ``(next_attempt_at,
    aggregate_id)``, partial ``WHERE published_at IS NULL AND next_attempt_at IS NOT
    NULL`` on PostgreSQL and SQLite (it holds failed rows only), every row on MariaDB.
``ix_<table>_published``
    the rows the purge deletes: ``(published_at) WHERE published_at IS NOT NULL`` on
    PostgreSQL and SQLite; MariaDB's ``ix_<table>_queue`` leads with ``published_at``.

With them a claim costs the same with a million pending rows as with a thousand.
Tables created by earlier releases have ``ix_<table>_pending`` instead (docs/outbox.md
says what to run). :func:`relay_indexes` names the indexes a database should have; the
relay checks them at start.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.ddl import DDLIfCallable

from adapters.db import UtcDateTime
from adapters.sources.outbox.config import DEFAULT_TABLE

__all__ = ["UtcDateTime", "create_outbox_table", "outbox_table", "relay_indexes"]

#: Databases with partial indexes (``CREATE INDEX ... WHERE``).
_PARTIAL = ("postgresql", "sqlite")
_NO_PARTIAL = ("mysql", "mariadb")


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


def _only_on(*dialects: str) -> DDLIfCallable:
    """A ``ddl_if`` rule: create the index on these dialects only."""

    def applies(*args: Any, dialect: Dialect, **kw: Any) -> bool:
        return dialect.name in dialects

    return applies


def _for(index: sa.Index, dialects: tuple[str, ...]) -> sa.Index:
    index.info["dialects"] = dialects
    return index.ddl_if(callable_=_only_on(*dialects))


def _relay_indexes(table: sa.Table) -> None:
    """Add the relay's indexes to ``table``: per dialect where their columns differ."""
    c = table.c
    unpublished = c.published_at.is_(None)
    queue = f"ix_{table.name}_queue"
    _for(
        sa.Index(queue, c.id, postgresql_where=unpublished, sqlite_where=unpublished),
        _PARTIAL,
    )
    _for(sa.Index(queue, c.published_at, c.id), _NO_PARTIAL)
    waiting = sa.and_(unpublished, c.next_attempt_at.is_not(None))
    sa.Index(
        f"ix_{table.name}_retry",
        c.next_attempt_at,
        c.aggregate_id,
        postgresql_where=waiting,
        sqlite_where=waiting,
    )
    published = c.published_at.is_not(None)
    _for(
        sa.Index(
            f"ix_{table.name}_published",
            c.published_at,
            postgresql_where=published,
            sqlite_where=published,
        ),
        _PARTIAL,
    )


def relay_indexes(table: sa.Table, dialect: str) -> list[sa.Index]:
    """The indexes of ``table`` that a database of ``dialect`` (a SQLAlchemy name) has."""
    return sorted(
        (
            index
            for index in table.indexes
            if dialect in index.info.get("dialects", _PARTIAL + _NO_PARTIAL)
        ),
        key=lambda index: str(index.name),
    )


def outbox_table(name: str = DEFAULT_TABLE, metadata: sa.MetaData | None = None) -> sa.Table:
    """The outbox table called ``name``, in ``metadata`` (a new one by default)."""
    table = sa.Table(
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
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
        sqlite_autoincrement=True,
    )
    _relay_indexes(table)
    return table


def create_outbox_table(engine: Engine, *, table: str = DEFAULT_TABLE) -> sa.Table:
    """Create the outbox table and its indexes, or the indexes an existing table lacks.

    Returns the table's definition. On a large existing PostgreSQL table, prefer
    ``CREATE INDEX CONCURRENTLY`` (docs/outbox.md): a plain ``CREATE INDEX`` blocks the
    application's inserts while it runs.
    """
    definition = outbox_table(table)
    with engine.begin() as conn:
        definition.metadata.create_all(conn, checkfirst=True)
        for index in relay_indexes(definition, conn.dialect.name):
            index.create(conn, checkfirst=True)
    return definition
