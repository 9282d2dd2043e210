"""Database access shared by sources and sinks: SQLAlchemy engines, run off the event loop.

Adapters use SQLAlchemy Core with the synchronous drivers every OPD stack already has
(psycopg for PostgreSQL, PyMySQL for MariaDB/MySQL, the stdlib for SQLite), and call
them through :func:`run_sync` so a slow database never blocks the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from enum import StrEnum
from typing import ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bus.errors import ConfigError

__all__ = ["Dialect", "create_engine", "dialect_of", "run_sync"]

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

    SQLite gets a 30 s busy timeout (a relay and an application share the file);
    PostgreSQL and MariaDB get pre-ping so a restarted server costs one retry, not an error.
    """
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigError(
            f"database_url {url!r} is not a database URL",
            fix="e.g. postgresql+psycopg://user:pass@host/db, mysql+pymysql://user:pass@host/db "
            "or sqlite:///path/to/file.db",
        ) from exc
    options: dict[str, object] = dict(kwargs)
    if parsed.get_backend_name() == "sqlite":
        options.setdefault("connect_args", {"timeout": 30})
    else:
        options.setdefault("pool_pre_ping", True)
    engine = sa.create_engine(parsed, **options)
    dialect_of(engine)
    return engine


async def run_sync(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run blocking database work in a worker thread."""
    return await asyncio.to_thread(func, *args, **kwargs)
