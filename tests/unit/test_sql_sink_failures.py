"""Database errors become retry-or-dead-letter decisions that name columns and never values."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import psycopg.errors
import pymysql.err
import pytest

from adapters.sinks.sql import RejectedEventError, mariadb, postgresql, sqlite
from adapters.sinks.sql.failures import DbFailure, FailureKind, handler_error
from bus.delivery import is_retriable
from bus.errors import PermanentError, TransientError

NIK = "3273025708900001"


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            pymysql.err.IntegrityError(1062, f"Duplicate entry '{NIK}' for key 'PRIMARY'"),
            DbFailure(FailureKind.UNIQUE, constraint="PRIMARY", code="1062"),
        ),
        (
            pymysql.err.IntegrityError(1062, f"Duplicate entry '{NIK}' for key 'izin.uq_nib'"),
            DbFailure(FailureKind.UNIQUE, constraint="uq_nib", code="1062"),
        ),
        (
            pymysql.err.DataError(1406, "Data too long for column 'nama_lengkap' at row 1"),
            DbFailure(FailureKind.TOO_LONG, column="nama_lengkap", code="1406"),
        ),
        (
            pymysql.err.DataError(
                1366,
                "Incorrect string value: '\\xF0\\x9F\\x98\\x80' for column "
                "`dinsos`.`penduduk`.`nama_lengkap` at row 1",
            ),
            DbFailure(FailureKind.BAD_VALUE, column="nama_lengkap", code="1366"),
        ),
        (
            pymysql.err.IntegrityError(1048, "Column 'pekerjaan' cannot be null"),
            DbFailure(FailureKind.NOT_NULL, column="pekerjaan", code="1048"),
        ),
        (
            pymysql.err.OperationalError(
                4025, "CONSTRAINT `ck_pekerjaan` failed for `dinsos`.`penduduk`"
            ),
            DbFailure(FailureKind.CHECK, constraint="ck_pekerjaan", code="4025"),
        ),
        (
            pymysql.err.OperationalError(1213, "Deadlock found when trying to get lock"),
            DbFailure(FailureKind.DEADLOCK, code="1213"),
        ),
        (
            pymysql.err.OperationalError(2003, "Can't connect to MySQL server on '10.0.0.5'"),
            DbFailure(FailureKind.CONNECTION, code="2003"),
        ),
    ],
)
def test_mariadb_errors_are_read_from_their_numbers_keeping_only_identifiers(
    error: Exception, expected: DbFailure
) -> None:
    described = mariadb.describe(error)
    assert described == expected
    assert NIK not in repr(described)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (psycopg.errors.UniqueViolation(), FailureKind.UNIQUE),
        (psycopg.errors.NotNullViolation(), FailureKind.NOT_NULL),
        (psycopg.errors.CheckViolation(), FailureKind.CHECK),
        (psycopg.errors.ForeignKeyViolation(), FailureKind.FOREIGN_KEY),
        (psycopg.errors.StringDataRightTruncation(), FailureKind.TOO_LONG),
        (psycopg.errors.NumericValueOutOfRange(), FailureKind.OUT_OF_RANGE),
        (psycopg.errors.InvalidDatetimeFormat(), FailureKind.BAD_VALUE),
        (psycopg.errors.DeadlockDetected(), FailureKind.DEADLOCK),
        (psycopg.errors.SerializationFailure(), FailureKind.DEADLOCK),
        (psycopg.errors.LockNotAvailable(), FailureKind.LOCK_TIMEOUT),
        (psycopg.errors.AdminShutdown(), FailureKind.CONNECTION),
        (psycopg.errors.UndefinedColumn(), FailureKind.SCHEMA),
        (psycopg.OperationalError("connection refused"), FailureKind.OTHER),
    ],
)
def test_postgresql_errors_are_read_from_their_sqlstate(
    error: Exception, kind: FailureKind
) -> None:
    assert postgresql.describe(error).kind is kind


@pytest.fixture
def sqlite_db() -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(":memory:")
    connection.execute(
        "CREATE TABLE penduduk (nik TEXT PRIMARY KEY, nama TEXT NOT NULL, pekerjaan TEXT, "
        "CONSTRAINT ck_pekerjaan CHECK (pekerjaan <> 'DITOLAK'))"
    )
    connection.execute("INSERT INTO penduduk VALUES (?, 'Siti', 'GURU')", (NIK,))
    yield connection
    connection.close()


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        (
            "INSERT INTO penduduk VALUES ('3273025708900001', 'Siti', 'GURU')",
            DbFailure(FailureKind.UNIQUE, column="nik", code="SQLITE_CONSTRAINT_PRIMARYKEY"),
        ),
        (
            "INSERT INTO penduduk VALUES ('1', NULL, 'GURU')",
            DbFailure(FailureKind.NOT_NULL, column="nama", code="SQLITE_CONSTRAINT_NOTNULL"),
        ),
        (
            "INSERT INTO penduduk VALUES ('2', 'Budi', 'DITOLAK')",
            DbFailure(FailureKind.CHECK, constraint="ck_pekerjaan", code="SQLITE_CONSTRAINT_CHECK"),
        ),
        (
            "INSERT INTO penduduk (nik, nama, alamat) VALUES ('3', 'Budi', 'x')",
            DbFailure(FailureKind.SCHEMA, code="SQLITE_ERROR"),
        ),
    ],
)
def test_sqlite_errors_are_read_from_real_errors_of_the_stdlib_driver(
    sqlite_db: sqlite3.Connection, statement: str, expected: DbFailure
) -> None:
    with pytest.raises(sqlite3.Error) as caught:
        sqlite_db.execute(statement)
    assert sqlite.describe(caught.value) == expected


def test_a_refused_row_becomes_a_permanent_error_naming_the_column_and_the_fix() -> None:
    error = handler_error(
        DbFailure(FailureKind.TOO_LONG, column="nama_lengkap", code="1406"),
        table="penduduk",
        event_name="PendudukUpdated",
        event_id="0196a1b2-0000-7000-8000-000000000001",
        index=3,
    )
    assert isinstance(error, RejectedEventError)
    assert isinstance(error, PermanentError)
    assert not is_retriable(error)
    assert (error.index, error.column) == (3, "nama_lengkap")
    assert str(error) == (
        "PendudukUpdated 0196a1b2-0000-7000-8000-000000000001 cannot be written to penduduk: "
        "a value is too long for column nama_lengkap\n  fix: widen the column"
    )


@pytest.mark.parametrize(
    "kind", [FailureKind.CONNECTION, FailureKind.DEADLOCK, FailureKind.LOCK_TIMEOUT]
)
def test_an_unavailable_or_busy_database_is_a_transient_error_to_retry(kind: FailureKind) -> None:
    error = handler_error(
        DbFailure(kind, code="2013"),
        table="penduduk",
        event_name="PendudukUpdated",
        event_id="e",
        index=0,
        driver="mariadb",
    )
    assert isinstance(error, TransientError)
    assert is_retriable(error)
    assert str(error).startswith(f"mariadb error 2013 while writing to penduduk ({kind.value})")


def test_a_refusal_not_tied_to_one_event_is_retried_rather_than_dead_lettered() -> None:
    error = handler_error(DbFailure(FailureKind.CHECK), table="penduduk")
    assert isinstance(error, TransientError)
