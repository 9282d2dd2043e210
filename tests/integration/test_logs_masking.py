"""``spbe-bus logs`` on what a real PostgreSQL error puts into an adapter's JSON log.

PostgreSQL's errors quote the row they refused (``DETAIL: Key (nama)=(...)``, ``Failing
row contains (...)``) and SQLAlchemy adds the statement; an adapter that logs such an
error (its text, its traceback) must still give ``spbe-bus logs`` nothing personal to print.
"""

from __future__ import annotations

import io
import json

import pytest
import sqlalchemy as sa

from bus.logs import configure_logging, get_logger
from bus.ops.log_groups import group_logs

pytestmark = pytest.mark.integration

NIK = "3273025708900001"
NAME = "Siti Aminah"
STREET = "Jl. Merdeka No. 5"
PHONE = "0812-3456-7890"
BORN = "1990-01-01"


def _failures(url: str) -> list[sa.exc.DBAPIError]:
    """A real unique violation and a real not-null violation, as a sink's INSERT gets them."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as db:
            db.execute(sa.text("DROP TABLE IF EXISTS logs_masking_penduduk"))
            db.execute(
                sa.text(
                    "CREATE TABLE logs_masking_penduduk (nik text PRIMARY KEY, nama text UNIQUE,"
                    " alamat text NOT NULL, hp text, lahir date)"
                )
            )
            db.execute(
                sa.text("INSERT INTO logs_masking_penduduk VALUES ('1', :n, :a, :h, :b)"),
                {"n": NAME, "a": STREET, "h": PHONE, "b": BORN},
            )
        failures = []
        for row in ({"nik": NIK, "a": STREET}, {"nik": "2", "a": None}):
            name = NAME if row["a"] is not None else "Siti Aminah Rahmawati"
            try:
                with engine.begin() as db:
                    db.execute(
                        sa.text("INSERT INTO logs_masking_penduduk VALUES (:nik, :n, :a, :h, :b)"),
                        {**row, "n": name, "h": PHONE, "b": BORN},
                    )
            except sa.exc.DBAPIError as exc:
                failures.append(exc)
        return failures
    finally:
        engine.dispose()


def test_a_postgresql_error_logged_by_an_adapter_shows_no_value_of_the_row(
    postgres_url: str,
) -> None:
    failures = _failures(postgres_url)
    assert [type(f.orig).__name__ for f in failures] == ["UniqueViolation", "NotNullViolation"]
    assert "Key (nama)=(Siti Aminah)" in str(failures[0])
    assert "Failing row contains (2, Siti Aminah Rahmawati, null" in str(failures[1])

    out = io.StringIO()
    configure_logging(json=True, level="INFO", stream=out)
    try:
        log = get_logger("adapters.opd.dinsos.sink")
        for exc in failures:
            # As an adapter's own code logs a failure: the message, and the traceback.
            log.warning("sink.apply_failed", table="logs_masking_penduduk", error=str(exc))
            try:
                raise exc
            except sa.exc.DBAPIError:
                log.exception("sink.crashed", reason=f"nama={NAME} alamat={STREET} hp {PHONE}")
    finally:
        configure_logging(json=True, level="INFO")
    lines = out.getvalue().splitlines()
    assert any(NAME in line for line in lines), "the log itself does carry the values"

    report = group_logs({"dinsos-penduduk-sink.log": lines})
    assert report.unparsable == 0
    assert {(g.event, g.count) for g in report.groups} >= {("sink.apply_failed", 2)}
    text = json.dumps(report.to_json(), ensure_ascii=False)
    for value in (NAME, "Siti", "Aminah", NIK, STREET, "Merdeka", PHONE, "3456", BORN):
        assert value not in text, value
    crashed = next(g for g in report.groups if g.event == "sink.crashed")
    assert crashed.error_type == "IntegrityError", "the exception's class, not its last line"
    assert 'exception="sqlalchemy.exc.IntegrityError: (psycopg.errors.' in crashed.example
    examples = " ".join(g.example for g in report.groups)
    assert "[detail dropped]" in examples
    assert "logs_masking_penduduk" in examples, "technical names stay"
