"""Database access shared by sources and sinks: SQLAlchemy engines, run off the event loop.

Adapters use SQLAlchemy Core with the synchronous drivers every OPD stack already has
(psycopg for PostgreSQL, PyMySQL for MariaDB/MySQL, the stdlib for SQLite), and call
them through :func:`run_sync` so a slow database never blocks the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect as SqlDialect
from sqlalchemy.engine import Engine

from bus.errors import ConfigError

__all__ = [
    "Dialect",
    "UtcDateTime",
    "begin_immediate",
    "create_engine",
    "dialect_of",
    "require_table",
    "run_sync",
]

P = ParamSpec("P")
T = TypeVar("T")


class Dialect(StrEnum):
    POSTGRESQL = "postgresql"
    MARIADB = "mariadb"
    SQLITE = "sqlite"


def dialect_of(engine: Engine) -> Dialect:
    """Which of the supported databases ``engine`` talks to (MySQL counts as MariaDB)."""
    name = engine.dialect.name
    if name == "postgresql":
        return Dialect.POSTGRESQL
    if name in ("mysql", "mariadb"):
        return Dialect.MARIADB
    if name == "sqlite":
        return Dialect.SQLITE
    raise ConfigError(
        f"database dialect {name!r} is not supported",
        fix="use postgresql+psycopg://, mysql+pymysql:// or sqlite:/// URLs",
    )


def create_engine(url: str, **kwargs: object) -> Engine:
    """An engine for ``url`` with settings that suit adapters.

    SQL parameters never appear in the errors it raises (they hold field values: a NIK,
    a name), so no error message, log line or dead-letter header can carry them. SQLite
    gets a 30 s busy timeout (a relay and an application share the file); PostgreSQL and
    MariaDB get pre-ping so a restarted server costs one retry, not an error.
    """
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        # The URL is not echoed: it may hold the database password.
        raise ConfigError(
            "database_url is not a database URL (it holds no dialect://... form)",
            fix="e.g. postgresql+psycopg://user:pass@host/db, mysql+pymysql://user:pass@host/db "
            "or sqlite:///path/to/file.db",
        ) from None
    options: dict[str, object] = {"hide_parameters": True, **kwargs}
    if parsed.get_backend_name() == "sqlite":
        options.setdefault("connect_args", {"timeout": 30})
    else:
        options.setdefault("pool_pre_ping", True)
    engine = sa.create_engine(parsed, **options)
    dialect_of(engine)
    return engine


def begin_immediate(engine: Engine) -> Engine:
    """On SQLite, take the write lock at ``BEGIN`` (SQLAlchemy's documented pysqlite recipe).

    Two writers then never both read a row's state and both write; the second waits (up
    to the busy timeout) instead of failing half-way. Other databases are left as they are.
    """
    if engine.dialect.name != "sqlite":
        return engine

    @sa.event.listens_for(engine, "connect")
    def _no_implicit_begin(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin_immediate(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


async def run_sync(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run blocking database work in a worker thread."""
    return await asyncio.to_thread(func, *args, **kwargs)


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """A point in time stored as UTC: ``timestamptz`` on PostgreSQL, ``DATETIME(6)`` elsewhere.

    Values go in as timezone-aware datetimes and come back as UTC-aware ones, whatever
    the database keeps.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: SqlDialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: SqlDialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("stored times must be timezone-aware")
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: SqlDialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def require_table(engine: Engine, table: sa.Table, missing: ConfigError) -> None:
    """Raise ``missing`` when ``table`` does not exist; any other database error as it is.

    A service checks its table at start and does not create it: the table belongs to its
    owner (the application's migrations, or the ledger's owner with its triggers).
    """
    try:
        with engine.connect() as conn:
            conn.execute(sa.select(*table.primary_key.columns).where(sa.false()))
    except sa.exc.DBAPIError as exc:
        if not isinstance(exc, sa.exc.ProgrammingError | sa.exc.OperationalError):
            raise
        if exc.connection_invalidated or not _mentions_missing_table(exc):
            raise
        raise missing from None


def _mentions_missing_table(exc: sa.exc.DBAPIError) -> bool:
    text = str(exc.orig).lower()
    return any(
        marker in text
        for marker in ("no such table", "does not exist", "doesn't exist", "undefinedtable")
    )
