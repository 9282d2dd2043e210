"""What a database error means for an event: try again later, or dead-letter it.

Each dialect module reads its driver's error codes into a :class:`DbFailure` (kind,
column, constraint, code), never keeping the driver's message: those quote the values
(``Duplicate entry '3273...'``), and a NIK must not reach a log line or a dead letter
header. :func:`handler_error` turns a failure into the error a subscriber acts on:

    TransientError          connection lost, deadlock, lock timeout: retried
    RejectedEventError      the row breaks the table (too long, not null, check,
    (a PermanentError)      unique, foreign key) or the table no longer fits the
                            mapping: dead-lettered, with the column or constraint named
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

import sqlalchemy as sa

from bus.errors import PermanentError, TransientError

__all__ = [
    "PERMANENT",
    "DbFailure",
    "FailureKind",
    "RejectedEventError",
    "classify",
    "handler_error",
]


class FailureKind(StrEnum):
    """The database errors the sink tells apart."""

    CONNECTION = "connection"
    DEADLOCK = "deadlock"
    LOCK_TIMEOUT = "lock_timeout"
    UNIQUE = "unique"
    NOT_NULL = "not_null"
    CHECK = "check"
    FOREIGN_KEY = "foreign_key"
    TOO_LONG = "too_long"
    OUT_OF_RANGE = "out_of_range"
    BAD_VALUE = "bad_value"
    SCHEMA = "schema"
    OTHER = "other"


PERMANENT: Final = frozenset(
    {
        FailureKind.UNIQUE,
        FailureKind.NOT_NULL,
        FailureKind.CHECK,
        FailureKind.FOREIGN_KEY,
        FailureKind.TOO_LONG,
        FailureKind.OUT_OF_RANGE,
        FailureKind.BAD_VALUE,
        FailureKind.SCHEMA,
    }
)


@dataclass(frozen=True, slots=True)
class DbFailure:
    """A database error reduced to facts that are safe to log: no values."""

    kind: FailureKind
    column: str | None = None
    constraint: str | None = None
    #: The driver's code: a SQLSTATE, a MariaDB error number, an SQLite error name.
    code: str | None = None


class RejectedEventError(PermanentError):
    """An event the target table refuses as mapped; nothing of its batch was committed.

    ``index`` is the event's position in the batch given to
    :meth:`~adapters.sinks.sql.SqlSink.apply_batch`, so a caller can dead-letter that
    one and apply the others again.
    """

    def __init__(
        self,
        message: str,
        *,
        fix: str,
        index: int,
        event_id: str,
        column: str | None = None,
    ) -> None:
        super().__init__(message, fix=fix)
        self.index = index
        self.event_id = event_id
        self.column = column


def _what(failure: DbFailure) -> tuple[str, str]:
    """(what went wrong, the fix) for a permanent failure."""
    column = f"column {failure.column}" if failure.column else "a mapped column"
    constraint = f"constraint {failure.constraint}" if failure.constraint else "a constraint"
    match failure.kind:
        case FailureKind.NOT_NULL:
            return (
                f"{column} refuses an empty value",
                "map a field every event carries to it, or make the column nullable",
            )
        case FailureKind.TOO_LONG:
            return (f"a value is too long for {column}", "widen the column")
        case FailureKind.OUT_OF_RANGE:
            return (f"a value is out of range for {column}", "widen the column's type")
        case FailureKind.BAD_VALUE:
            return (
                f"{column} refuses the value's type or format",
                "change the column's type to fit the mapped field",
            )
        case FailureKind.CHECK:
            return (f"check {constraint} refuses the row", "change the mapping or the check")
        case FailureKind.UNIQUE:
            return (
                f"unique {constraint} already holds another row with the same value",
                "drop the constraint, or map the column from a field unique per key",
            )
        case FailureKind.FOREIGN_KEY:
            return (
                f"foreign key {constraint} refuses the row",
                "load the referenced rows first, then replay the dead letters",
            )
        case FailureKind.SCHEMA:
            return (
                f"the table no longer matches the mapping (error {failure.code})",
                "restore the table's columns, restart the sink, then replay the dead letters",
            )
        case _:
            return (
                f"the database refused the row (error {failure.code})",
                "check the table definition against the mapping",
            )


def classify(error: sa.exc.DBAPIError, described: DbFailure | None) -> DbFailure:
    """The dialect's description, or a kind from SQLAlchemy's exception class."""
    if described is not None and described.kind is not FailureKind.OTHER:
        return described
    code = described.code if described is not None else None
    if error.connection_invalidated:
        return DbFailure(FailureKind.CONNECTION, code=code)
    if isinstance(error, sa.exc.IntegrityError):
        return DbFailure(FailureKind.CHECK, code=code)
    if isinstance(error, sa.exc.DataError):
        return DbFailure(FailureKind.BAD_VALUE, code=code)
    if isinstance(error, sa.exc.ProgrammingError):
        return DbFailure(FailureKind.SCHEMA, code=code)
    return DbFailure(FailureKind.OTHER, code=code)


def handler_error(
    failure: DbFailure,
    *,
    table: str,
    event_name: str | None = None,
    event_id: str | None = None,
    index: int | None = None,
    driver: str = "database",
) -> TransientError | RejectedEventError:
    """The error to raise for ``failure``: permanent when tied to an event's row."""
    if failure.kind in PERMANENT and index is not None and event_id is not None:
        what, fix = _what(failure)
        return RejectedEventError(
            f"{event_name} {event_id} cannot be written to {table}: {what}",
            fix=fix,
            index=index,
            event_id=event_id,
            column=failure.column,
        )
    code = f" {failure.code}" if failure.code else ""
    return TransientError(
        f"{driver} error{code} while writing to {table} ({failure.kind.value}); "
        "the batch was rolled back and may apply when tried again"
    )
