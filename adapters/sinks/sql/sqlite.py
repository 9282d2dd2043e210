"""SQLite (the stdlib driver): one writer at a time, errors read from extended error names.

A transaction starts with ``BEGIN IMMEDIATE``, taking the write lock before it reads a
row's version, so two writers never read the same version and then both write; the
second waits (up to the engine's busy timeout) instead of failing half-way.
"""

from __future__ import annotations

import re
from typing import Final

from sqlalchemy.engine import Engine

from adapters.db import begin_immediate
from adapters.sinks.sql.failures import DbFailure, FailureKind

__all__ = ["describe", "prepare"]

_BY_NAME: Final = {
    "SQLITE_CONSTRAINT_UNIQUE": FailureKind.UNIQUE,
    "SQLITE_CONSTRAINT_PRIMARYKEY": FailureKind.UNIQUE,
    "SQLITE_CONSTRAINT_NOTNULL": FailureKind.NOT_NULL,
    "SQLITE_CONSTRAINT_CHECK": FailureKind.CHECK,
    "SQLITE_CONSTRAINT_FOREIGNKEY": FailureKind.FOREIGN_KEY,
    "SQLITE_TOOBIG": FailureKind.TOO_LONG,
    "SQLITE_MISMATCH": FailureKind.BAD_VALUE,
}
_BY_PREFIX: Final = (
    ("SQLITE_BUSY", FailureKind.LOCK_TIMEOUT),
    ("SQLITE_LOCKED", FailureKind.LOCK_TIMEOUT),
    ("SQLITE_IOERR", FailureKind.CONNECTION),
    ("SQLITE_CANTOPEN", FailureKind.CONNECTION),
    ("SQLITE_FULL", FailureKind.CONNECTION),
    ("SQLITE_READONLY", FailureKind.CONNECTION),
)
# "NOT NULL constraint failed: penduduk.nama", "UNIQUE constraint failed: izin.nib",
# "CHECK constraint failed: ck_status"
_FAILED = re.compile(r"constraint failed: (?:[A-Za-z0-9_]+\.)?([A-Za-z0-9_]+)")
_SCHEMA = re.compile(r"no such (table|column)|has no column named")


def prepare(engine: Engine) -> Engine:
    """Take the write lock at ``BEGIN``: :func:`adapters.db.begin_immediate`."""
    return begin_immediate(engine)


def describe(error: BaseException | None) -> DbFailure:
    """Kind and column or constraint from an ``sqlite3`` error (identifiers only)."""
    name = getattr(error, "sqlite_errorname", None)
    if not isinstance(name, str):
        return DbFailure(FailureKind.OTHER)
    message = str(error)
    kind = _BY_NAME.get(name)
    if kind is None:
        kind = next((k for prefix, k in _BY_PREFIX if name.startswith(prefix)), None)
    if kind is None:
        kind = FailureKind.SCHEMA if _SCHEMA.search(message) else FailureKind.OTHER
    found = _FAILED.search(message)
    named = found.group(1) if found else None
    if kind is FailureKind.CHECK:
        return DbFailure(kind, constraint=named, code=name)
    if kind in (FailureKind.NOT_NULL, FailureKind.UNIQUE):
        return DbFailure(kind, column=named, code=name)
    return DbFailure(kind, code=name)
