"""What a snapshot makes of a row, the table it reads and the progress it keeps (SQLite)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from adapters.db import create_engine
from adapters.opd.disdukcapil import siak
from adapters.sources.snapshot import ProgressStore, SnapshotError
from adapters.sources.snapshot.reader import reflect_source
from adapters.sources.snapshot.rows import convert_rows
from bus.contract.events import PendudukUpdated, SpbeEvent
from bus.contract.plan import OutgoingRecord, PublishingPlan
from bus.contract.standard import load_standard
from bus.errors import ConfigError
from tests.support.events import SOURCE_DUKCAPIL, penduduk

SECRET = b"unit-test-steward-secret-0123456789"
PLAN = PublishingPlan.for_source(
    load_standard()["PendudukUpdated"], source=SOURCE_DUKCAPIL, key_secret=SECRET
)
ENTRY = "adapters.opd.disdukcapil.siak:snapshot_event"


def row(serial: int, **changes: Any) -> dict[str, Any]:
    """A penduduk row as the reader hands it over: column name -> value."""
    return {**siak._row_values(penduduk(serial)), "status": "HIDUP", "versi": 3, **changes}


def encode(event: SpbeEvent, version: int) -> OutgoingRecord:
    return PLAN.record(event, sequence=version, snapshot=True)


def convert(rows: list[dict[str, Any]], make_event: Any = siak.snapshot_event) -> Any:
    return convert_rows(
        rows,
        make_event=make_event,
        encode=encode,
        version_column="versi",
        pseudonym=lambda r: f"pseudonym-of-{r['versi']}",
        first_position=41,
        entry_point=ENTRY,
    )


def test_a_row_becomes_its_event_marked_as_a_snapshot_with_the_version() -> None:
    converted = convert([row(1), row(2, versi=7)])
    assert [dict(r.headers)["ce_sequence"] for r in converted.records] == [b"3", b"7"]
    assert all(dict(r.headers)["ce_snapshot"] == b"true" for r in converted.records)
    assert (converted.invalid, converted.excluded) == ([], 0)


def test_the_siak_event_states_the_whole_record_and_leaves_the_deceased_out() -> None:
    event = siak.snapshot_event(row(5, berlaku_sejak=date(2019, 3, 1)))
    assert isinstance(event, PendudukUpdated)
    assert event.nik == penduduk(5).nik
    assert event.berlaku_sejak == date(2019, 3, 1)
    assert set(event.changed_fields) == set(siak.SNAPSHOT_FIELDS)
    assert "alamat" in event.changed_fields
    assert siak.snapshot_event(row(5, status="MENINGGAL")) is None
    assert convert([row(5, status="MENINGGAL")]).excluded == 1


def test_a_row_breaking_a_rule_is_reported_by_position_pseudonym_field_and_rule_only() -> None:
    nik, name = "3273029908900001", "Nama Yang Rahasia"
    converted = convert([row(1), row(2, nik=nik, nama_lengkap=name, versi=4)])
    assert len(converted.records) == 1
    (invalid,) = converted.invalid
    report = invalid.report()
    assert report["position"] == 42
    assert report["key_pseudonym"] == "pseudonym-of-4"
    assert [p["field"] for p in report["problems"]] == ["nik"]
    assert nik not in repr(report)
    assert name not in repr(report)
    assert "99" not in repr(report), "not even the digits the problem text would quote"


@pytest.mark.parametrize("version", [None, -1, "3", True, 2.5])
def test_a_version_that_is_not_a_non_negative_integer_makes_the_row_invalid(
    version: object,
) -> None:
    (invalid,) = convert([row(1, versi=version)]).invalid
    assert [(p.field, p.rule) for p in invalid.problems] == [
        ("versi", "the row's version, sent as ce_sequence: an integer 0 or greater")
    ]


def test_an_event_function_that_crashes_stops_the_run_without_quoting_the_row() -> None:
    def crashes(r: Mapping[str, Any]) -> PendudukUpdated:
        raise ValueError(f"cannot parse {r['nik']}")

    with pytest.raises(SnapshotError) as caught:
        convert([row(1)], crashes)
    message = str(caught.value)
    assert "raised ValueError on the row at position 41" in message
    assert penduduk(1).nik not in message
    assert caught.value.__cause__ is None


def test_an_event_function_returning_something_else_stops_the_run() -> None:
    with pytest.raises(SnapshotError, match="returned a dict, not an event"):
        convert([row(1)], lambda r: dict(r))


def test_an_event_of_another_steward_stops_the_run() -> None:
    izin_plan = PublishingPlan.for_source(
        load_standard()["IzinDiterbitkan"], source="ID/PEMDA-3273/DPMPTSP/sicantik"
    )

    def wrong(event: SpbeEvent, version: int) -> OutgoingRecord:
        return izin_plan.record(event, sequence=version)

    with pytest.raises(SnapshotError, match="cannot be published"):
        convert_rows(
            [row(1)],
            make_event=siak.snapshot_event,
            encode=wrong,
            version_column="versi",
            pseudonym=lambda r: "p",
            first_position=1,
            entry_point=ENTRY,
        )


# -- the table and the progress, on SQLite -----------------------------------------------


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'siak.db'}")
    siak.create_tables(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE catatan (id INTEGER, nomor TEXT, versi INTEGER)"))
        conn.execute(sa.text("CREATE TABLE blob_keyed (k BLOB PRIMARY KEY, versi INTEGER)"))
    yield engine
    engine.dispose()


@pytest.mark.parametrize(
    ("table", "key", "version", "expected"),
    [
        ("warga", "nik", "versi", "snapshot.table: the database has no table 'warga'"),
        ("penduduk", "nomor_induk", "versi", "snapshot.key_column: the table 'penduduk' has no"),
        ("penduduk", "nik", "version", "snapshot.version_column: the table 'penduduk' has no"),
        ("catatan", "nomor", "versi", "snapshot.key_column: catatan.nomor is not unique"),
        ("blob_keyed", "k", "versi", "a snapshot key is text, an integer or a UUID"),
    ],
)
def test_a_table_that_cannot_be_read_in_key_order_is_refused_naming_the_key(
    engine: sa.Engine, table: str, key: str, version: str, expected: str
) -> None:
    with pytest.raises(ConfigError, match=expected):
        reflect_source(engine, table, key, version)


def test_pages_follow_the_key_and_types_survive_reflection(engine: sa.Engine) -> None:
    siak.impor_penduduk(engine, [(penduduk(s), 1) for s in (3, 1, 2)])
    source = reflect_source(engine, "penduduk", "nik", "versi")
    first = source.read_page(engine, None, 2)
    assert [r["nik"] for r in first] == [penduduk(1).nik, penduduk(2).nik]
    assert isinstance(first[0]["tanggal_lahir"], date)
    rest = source.read_page(engine, first[-1]["nik"], 2)
    assert [r["nik"] for r in rest] == [penduduk(3).nik]
    assert source.count_after(engine, None) == 3
    assert source.count_after(engine, first[-1]["nik"]) == 1
    assert "OFFSET" not in str(source.page_query(first[-1]["nik"], 2)).upper()


def test_progress_resumes_and_restarts(engine: sa.Engine) -> None:
    store = ProgressStore(engine, "spbe_snapshot_progress")
    store.create()
    store.create()  # created when absent only
    now = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)
    first = store.begin("penduduk", "penduduk", now, restart=False)
    assert (first.last_key, first.rows_done, first.finished_at) == (None, 0, None)
    store.save(replace(first, last_key="3273025708900007", rows_published=7, rows_invalid=1))
    resumed = store.begin("penduduk", "penduduk", now, restart=False)
    assert (resumed.last_key, resumed.rows_done) == ("3273025708900007", 8)
    assert "3273025708900007" not in repr(resumed)
    fresh = store.begin("penduduk", "penduduk", now, restart=True)
    assert (fresh.last_key, fresh.rows_done) == (None, 0)
    assert store.load("penduduk") == fresh
