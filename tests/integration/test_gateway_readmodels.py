"""The gateway's read models on real SQLite files and a real PostgreSQL, fed projected deliveries.

Each delivery is a standard event projected with the catalogue's allowed_fields of its
subscription and read back into the projection's event class, as the subscriber decodes
it from the projected topic.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from adapters.gateway.readmodels import ReadModelQueryError, ReadModels
from adapters.gateway.readmodels_queries import encode_cursor
from bus.contract.events import KematianDicatat, PajakDaerahDibayar, PendudukUpdated
from bus.contract.standard import example
from bus.delivery import Outcome
from bus.errors import PermanentError, TransientError
from tests.support.events import penduduk
from tests.support.ports import free_port_block
from tests.support.projected import projected_delivery

pytestmark = pytest.mark.integration

DPMPTSP = "dpmptsp-penduduk"
DINSOS = "dinsos-penduduk"


@pytest.fixture(params=["sqlite", "postgres"])
def models(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ReadModels]:
    """Read models with fresh tables: a SQLite file, or a new database on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'gateway.db'}"
    else:
        base_url = request.getfixturevalue("postgres_url")
        name = f"t_{uuid.uuid4().hex[:12]}"
        admin = sa.create_engine(base_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
        admin.dispose()
        url = sa.engine.make_url(base_url).set(database=name).render_as_string(False)
    made = ReadModels.from_url(url)
    made.create_tables()
    try:
        yield made
    finally:
        made.dispose()


def resident(
    serial: int, kode_wilayah: str = "32.73.02.1003", nama: str = "Siti"
) -> PendudukUpdated:
    data = penduduk(serial).to_json()
    data["alamat"]["kode_wilayah"] = kode_wilayah
    data["nama_lengkap"] = nama
    return PendudukUpdated.from_json(data)


def death(nik: str) -> KematianDicatat:
    return KematianDicatat.from_json(example("KematianDicatat") | {"nik": nik})


def payment(ntpd: str, nop: str = "327302000100200150") -> PajakDaerahDibayar:
    data = example("PajakDaerahDibayar")
    data["ntpd"] = ntpd
    data["objek"]["nop"] = nop
    return PajakDaerahDibayar.from_json(data)


async def test_a_newer_sequence_overwrites_and_an_older_one_never_does(models: ReadModels) -> None:
    nik = resident(1).nik
    assert (
        await models(projected_delivery(resident(1, nama="Satu"), DPMPTSP, sequence=2))
        is Outcome.APPLIED
    )
    assert (
        await models(projected_delivery(resident(1, nama="Lama"), DPMPTSP, sequence=1))
        is Outcome.APPLIED
    )
    view = models.person(DPMPTSP, nik)
    assert view is not None
    assert view.document["nama_lengkap"] == "Satu"
    assert view.sequence == 2

    newer = projected_delivery(resident(1, "32.73.01.1001", nama="Tiga"), DPMPTSP, sequence=3)
    assert await models(newer) is Outcome.APPLIED
    view = models.person(DPMPTSP, nik)
    assert view is not None
    assert (view.document["nama_lengkap"], view.sequence, view.event_id) == (
        "Tiga",
        3,
        newer.envelope.id,
    )
    assert models.people(DPMPTSP, "32.73.01", limit=10).items == (view,)
    assert models.people(DPMPTSP, "32.73.02", limit=10).items == ()


async def test_a_redelivered_event_or_an_equal_sequence_is_a_duplicate(models: ReadModels) -> None:
    first = projected_delivery(resident(2, nama="Asli"), DPMPTSP, sequence=4)
    assert await models(first) is Outcome.APPLIED
    before = models.person(DPMPTSP, resident(2).nik)
    assert await models(first) is Outcome.DUPLICATE
    same_version = projected_delivery(resident(2, nama="Lain"), DPMPTSP, sequence=4)
    assert await models(same_version) is Outcome.DUPLICATE
    assert models.person(DPMPTSP, resident(2).nik) == before


async def test_the_document_is_the_projection_in_the_standards_json_form(
    models: ReadModels,
) -> None:
    person = resident(3)
    delivery = projected_delivery(person, DPMPTSP, sequence=1)
    await models(delivery)
    view = models.person(DPMPTSP, person.nik)
    assert view is not None
    assert view.document == delivery.event.to_json()
    assert "no_kk" not in view.document
    assert "tanggal_lahir" not in view.document
    assert view.document["berlaku_sejak"] == example("PendudukUpdated")["berlaku_sejak"]

    paid = payment("32730126112800000001")
    await models(projected_delivery(paid, "bpkad-pajak", sequence=None))
    (row,) = models.payments("bpkad-pajak", ntpd=paid.ntpd, limit=5).items
    expected = example("PajakDaerahDibayar")
    for name in ("pokok", "denda", "total", "waktu_bayar", "tahun_pajak"):
        assert row.document[name] == expected[name]  # "1250000.00", "2026-11-28T03:15:00Z"
    assert "wajib_pajak" not in row.document
    assert json.loads(json.dumps(row.document)) == row.document


async def test_a_death_after_the_person_is_added_to_their_row(models: ReadModels) -> None:
    person = resident(4)
    await models(projected_delivery(person, DPMPTSP, sequence=1))
    recorded = projected_delivery(death(person.nik), DPMPTSP, sequence=2)
    assert await models(recorded) is Outcome.APPLIED
    view = models.person(DPMPTSP, person.nik)
    assert view is not None
    assert view.kematian == {"nik": person.nik, "tanggal_meninggal": "2026-11-25"}
    assert view.document["nama_lengkap"] == person.nama_lengkap
    assert (view.event_type, view.sequence, view.event_id) == (
        "KematianDicatat",
        2,
        recorded.envelope.id,
    )
    # A late copy of the first biodata does not wipe the death, nor the biodata.
    assert (
        await models(projected_delivery(resident(4, nama="X"), DPMPTSP, sequence=1))
        is Outcome.APPLIED
    )
    assert models.person(DPMPTSP, person.nik) == view


async def test_a_death_before_the_person_creates_the_row_the_biodata_fills(
    models: ReadModels,
) -> None:
    person = resident(5, "32.73.05.1002")
    await models(projected_delivery(death(person.nik), DINSOS, sequence=3))
    only_death = models.person(DINSOS, person.nik)
    assert only_death is not None
    assert only_death.document == {}
    assert only_death.kematian is not None
    assert only_death.kematian["no_akta_kematian"]
    assert models.people(DINSOS, "32.73.05", limit=5).items == ()  # no address known yet

    # The biodata of an earlier version still fills the empty part; the row keeps version 3.
    await models(projected_delivery(person, DINSOS, sequence=2))
    view = models.person(DINSOS, person.nik)
    assert view is not None
    assert view.document["no_kk"] == person.no_kk
    assert view.kematian == only_death.kematian
    assert view.sequence == 3
    assert [v.document["nik"] for v in models.people(DINSOS, "32.73.05", limit=5).items] == [
        person.nik
    ]


async def test_pages_follow_each_other_until_the_last_and_match_whole_segments(
    models: ReadModels,
) -> None:
    inside = [resident(10 + i, f"32.73.01.{1001 + i % 3}") for i in range(7)]
    outside = [
        resident(30, "32.73.10.1001"),
        resident(31, "32.74.01.1001"),
    ]
    await models.apply_batch(
        [
            projected_delivery(p, DPMPTSP, sequence=1, offset=i)
            for i, p in enumerate(inside + outside)
        ]
    )
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = models.people(DPMPTSP, "32.73.01", limit=3, after=cursor)
        pages += 1
        seen += [v.document["nik"] for v in page.items]
        for nik in (v.document["nik"] for v in page.items):
            assert page.next_cursor is None or nik not in page.next_cursor
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert pages == 3
    assert seen == [p.nik for p in inside]
    assert len(models.people(DPMPTSP, "32.73", limit=100).items) == 8
    assert len(models.people(DPMPTSP, "32.73.01.1002", limit=100).items) == 2
    assert models.people(DPMPTSP, "32", limit=100).items[-1].document["nik"] == outside[1].nik
    with pytest.raises(ReadModelQueryError):
        models.people(DPMPTSP, "32.73.0", limit=3)


async def test_payments_page_by_nop_and_find_one_by_ntpd(models: ReadModels) -> None:
    nop = "327302000100200999"
    paid = [payment(f"3273012611280000{i:04d}", nop) for i in range(5)]
    await models.apply_batch(
        [projected_delivery(p, "bpkad-pajak", sequence=None, allowed=None) for p in paid]
    )
    # bpkad-pajak does not receive objek.nop: its rows have no NOP to find them by.
    assert models.payments("bpkad-pajak", nop=nop, limit=10).items == ()
    with_nop = ["ntpd", "objek.nop", "total"]
    await models.apply_batch(
        [projected_delivery(p, "bpkad-pajak", sequence=1, allowed=with_nop) for p in paid]
    )
    first = models.payments("bpkad-pajak", nop=nop, limit=2)
    second = models.payments("bpkad-pajak", nop=nop, limit=2, after=first.next_cursor)
    third = models.payments("bpkad-pajak", nop=nop, limit=2, after=second.next_cursor)
    assert third.next_cursor is None
    found = [v.document["ntpd"] for page in (first, second, third) for v in page.items]
    assert found == [p.ntpd for p in paid]
    assert [
        v.document["ntpd"] for v in models.payments("bpkad-pajak", ntpd=paid[3].ntpd, limit=5).items
    ] == [paid[3].ntpd]
    people_cursor = encode_cursor(b"p", 1)  # a cursor of the people list
    with pytest.raises(ReadModelQueryError) as caught:
        models.payments(
            "bpkad-pajak",
            nop=nop,
            limit=2,
            after=people_cursor,
        )
    assert caught.value.field == "cursor"


async def test_a_subscriber_never_sees_another_subscribers_rows(models: ReadModels) -> None:
    person = resident(40)
    await models(projected_delivery(person, DINSOS, sequence=1))
    await models(projected_delivery(payment("32730126112800004000"), "bpkad-pajak", sequence=1))
    assert models.person(DPMPTSP, person.nik) is None
    assert models.people(DPMPTSP, "32", limit=10).items == ()
    assert models.payments("dpmptsp-pajak", limit=10).items == ()
    assert models.person("unknown-subscriber", person.nik) is None
    # The same resident delivered to both keeps two rows, each with its own fields.
    await models(projected_delivery(person, DPMPTSP, sequence=1))
    dinsos, dpmptsp = models.person(DINSOS, person.nik), models.person(DPMPTSP, person.nik)
    assert dinsos is not None
    assert dpmptsp is not None
    assert "no_kk" in dinsos.document
    assert "no_kk" not in dpmptsp.document


async def test_an_event_without_the_rows_key_changes_nothing_and_is_committed(
    models: ReadModels,
) -> None:
    person = resident(50)
    nameless = projected_delivery(person, DPMPTSP, sequence=1, allowed=["nama_lengkap"])
    assert await models(nameless) is Outcome.APPLIED
    assert models.people(DPMPTSP, "32", limit=10).items == ()


async def test_a_non_projected_topic_is_refused_and_nothing_of_its_batch_is_written(
    models: ReadModels,
) -> None:
    good = projected_delivery(resident(60), DPMPTSP, sequence=1)
    raw = projected_delivery(resident(61), DPMPTSP, sequence=1, topic="spbe.dukcapil.penduduk.v1")
    with pytest.raises(PermanentError, match="not a projected topic"):
        await models.apply_batch([good, raw])
    assert models.person(DPMPTSP, resident(60).nik) is None
    assert await models(good) is Outcome.APPLIED


async def test_tables_created_twice_keep_their_rows(models: ReadModels) -> None:
    await models(projected_delivery(resident(70), DPMPTSP, sequence=1))
    models.create_tables()
    assert models.person(DPMPTSP, resident(70).nik) is not None


async def test_a_sqlite_read_model_reads_while_a_batch_holds_the_write_lock(tmp_path: Path) -> None:
    """Write-ahead log: a GET is answered from the last commit while events are written."""
    models = ReadModels.from_url(f"sqlite:///{tmp_path / 'gateway.db'}")
    models.create_tables()
    try:
        await models(projected_delivery(resident(80), DPMPTSP, sequence=1))
        writer = sa.create_engine(f"sqlite:///{tmp_path / 'gateway.db'}")
        with writer.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            conn.exec_driver_sql("DELETE FROM spbe_gateway_penduduk")
            assert models.person(DPMPTSP, resident(80).nik) is not None
            conn.exec_driver_sql("ROLLBACK")
        writer.dispose()
    finally:
        models.dispose()


async def test_an_unreachable_database_is_a_transient_error_naming_no_value(tmp_path: Path) -> None:
    port = free_port_block(1)  # nothing listens there
    models = ReadModels(
        sa.create_engine(f"postgresql+psycopg://spbe@127.0.0.1:{port}/spbe", hide_parameters=True)
    )
    person = resident(81)
    with pytest.raises(TransientError) as caught:
        await models(projected_delivery(person, DPMPTSP, sequence=1))
    assert caught.value.retriable
    assert person.nik not in str(caught.value)
    models.dispose()
