"""MariaDB and MySQL (PyMySQL): READ COMMITTED transactions, errors read from their numbers.

The server's messages quote the refused values (``Duplicate entry '3273...' for key``),
so only identifiers are taken out of them: a column or constraint name.
"""

from __future__ import annotations

import re
from typing import Final

from sqlalchemy.engine import Engine

from adapters.sinks.sql.failures import DbFailure, FailureKind

__all__ = ["describe", "prepare"]

_BY_NUMBER: Final = {
    1062: FailureKind.UNIQUE,
    1586: FailureKind.UNIQUE,
    1048: FailureKind.NOT_NULL,
    1364: FailureKind.NOT_NULL,
    3819: FailureKind.CHECK,
    4025: FailureKind.CHECK,
    1451: FailureKind.FOREIGN_KEY,
    1452: FailureKind.FOREIGN_KEY,
    1406: FailureKind.TOO_LONG,
    1264: FailureKind.OUT_OF_RANGE,
    1265: FailureKind.BAD_VALUE,
    1292: FailureKind.BAD_VALUE,
    1366: FailureKind.BAD_VALUE,
    1411: FailureKind.BAD_VALUE,
    1146: FailureKind.SCHEMA,
    1054: FailureKind.SCHEMA,
    1213: FailureKind.DEADLOCK,
    1205: FailureKind.LOCK_TIMEOUT,
    2002: FailureKind.CONNECTION,
    2003: FailureKind.CONNECTION,
    2006: FailureKind.CONNECTION,
    2013: FailureKind.CONNECTION,
    2055: FailureKind.CONNECTION,
    1927: FailureKind.CONNECTION,  # connection killed
}
_NAME = r"[A-Za-z0-9_$]+"
# "for column 'nama'", "for column `db`.`t`.`nama`", "Column 'nama' cannot be null",
# "Field 'nama' doesn't have a default value"
_COLUMN = re.compile(rf"(?:[Cc]olumn|Field) [`']?(?:{_NAME}[`']?\.[`']?)*({_NAME})[`']?")
# "for key 'PRIMARY'" / "for key 't.uq_nib'" at the very end, after the quoted value
_KEY = re.compile(rf"for key '(?:{_NAME}\.)?({_NAME})'$")
# "Check constraint 'c' is violated", "CONSTRAINT `c` failed", "CONSTRAINT `fk` FOREIGN KEY"
_CONSTRAINT = re.compile(rf"(?:[Cc]heck constraint|CONSTRAINT) [`']({_NAME})[`']")


def prepare(engine: Engine) -> Engine:
    """READ COMMITTED: a locking read of an absent key takes no gap lock to deadlock on."""
    return engine.execution_options(isolation_level="READ COMMITTED")


def describe(error: BaseException | None) -> DbFailure:
    """Kind, column and constraint from a PyMySQL error (identifiers only)."""
    args = getattr(error, "args", ())
    if not args or not isinstance(args[0], int):
        return DbFailure(FailureKind.OTHER)
    number = args[0]
    message = str(args[1]) if len(args) > 1 else ""
    kind = _BY_NUMBER.get(number, FailureKind.OTHER)
    column = constraint = None
    if kind is FailureKind.UNIQUE:
        found = _KEY.search(message)
        constraint = found.group(1) if found else None
    elif kind in (FailureKind.CHECK, FailureKind.FOREIGN_KEY):
        found = _CONSTRAINT.search(message)
        constraint = found.group(1) if found else None
    elif kind is not FailureKind.OTHER:
        found = _COLUMN.search(message)
        column = found.group(1) if found else None
    return DbFailure(kind, column=column, constraint=constraint, code=str(number))
