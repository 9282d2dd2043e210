"""PostgreSQL (psycopg 3): READ COMMITTED transactions, errors read from SQLSTATE and diag."""

from __future__ import annotations

from typing import Final

from sqlalchemy.engine import Engine

from adapters.sinks.sql.failures import DbFailure, FailureKind

__all__ = ["describe", "prepare"]

_BY_STATE: Final = {
    "23505": FailureKind.UNIQUE,
    "23502": FailureKind.NOT_NULL,
    "23514": FailureKind.CHECK,
    "23503": FailureKind.FOREIGN_KEY,
    "22001": FailureKind.TOO_LONG,
    "22003": FailureKind.OUT_OF_RANGE,
    "40P01": FailureKind.DEADLOCK,
    "40001": FailureKind.DEADLOCK,  # serialization failure: the same remedy, run it again
    "55P03": FailureKind.LOCK_TIMEOUT,
    "57014": FailureKind.LOCK_TIMEOUT,  # statement timeout
}
_BY_CLASS: Final = {
    "08": FailureKind.CONNECTION,
    "22": FailureKind.BAD_VALUE,
    "23": FailureKind.CHECK,
    "42": FailureKind.SCHEMA,
    "53": FailureKind.LOCK_TIMEOUT,  # insufficient resources: try later
    "57": FailureKind.CONNECTION,  # admin shutdown, crash recovery
    "58": FailureKind.CONNECTION,
}


def prepare(engine: Engine) -> Engine:
    """Every transaction at READ COMMITTED (the server default, made explicit)."""
    return engine.execution_options(isolation_level="READ COMMITTED")


def describe(error: BaseException | None) -> DbFailure:
    """Kind, column and constraint from a psycopg error; its message is never kept."""
    state = getattr(error, "sqlstate", None)
    if not isinstance(state, str):
        return DbFailure(FailureKind.OTHER)
    diag = getattr(error, "diag", None)
    kind = _BY_STATE.get(state) or _BY_CLASS.get(state[:2], FailureKind.OTHER)
    return DbFailure(
        kind,
        column=getattr(diag, "column_name", None),
        constraint=getattr(diag, "constraint_name", None),
        code=state,
    )
