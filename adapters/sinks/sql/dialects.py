"""The few places PostgreSQL, MariaDB and SQLite differ for the sink, chosen per engine."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from adapters.db import Dialect, dialect_of
from adapters.sinks.sql import mariadb, postgresql, sqlite
from adapters.sinks.sql.failures import DbFailure

__all__ = ["DialectSupport", "support_for"]


@dataclass(frozen=True, slots=True)
class DialectSupport:
    """How to run transactions on one database, and how to read its errors."""

    dialect: Dialect
    #: Returns the engine to use (isolation level set, listeners attached).
    prepare: Callable[[Engine], Engine]
    #: Reads a driver exception into safe facts (no values).
    describe: Callable[[BaseException | None], DbFailure]
    #: Whether ``SELECT ... FOR UPDATE`` locks rows (SQLite locks the whole file instead).
    row_locks: bool


_SUPPORT = {
    Dialect.POSTGRESQL: DialectSupport(
        Dialect.POSTGRESQL, postgresql.prepare, postgresql.describe, row_locks=True
    ),
    Dialect.MARIADB: DialectSupport(
        Dialect.MARIADB, mariadb.prepare, mariadb.describe, row_locks=True
    ),
    Dialect.SQLITE: DialectSupport(
        Dialect.SQLITE, sqlite.prepare, sqlite.describe, row_locks=False
    ),
}


def support_for(engine: Engine) -> DialectSupport:
    """The support for ``engine``'s database (raises ConfigError for others)."""
    return _SUPPORT[dialect_of(engine)]
