"""Egress on a real SQLite read model and ledger: each refusal, the answer, the ledger entry.

The HTTP layer is the acceptance tests'; here each rule of :mod:`adapters.gateway.egress`
is driven directly, with the catalogue's access of dpmptsp-sicantik and dinkopukm-siumkm.
"""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from adapters.db import create_engine
from adapters.gateway.egress import Egress
from adapters.gateway.readmodels import ReadModels
from adapters.ledger import LedgerStore, create_ledger_table
from bus.ledger import LedgerKind
from bus.ops.api_clients import ClientAccess, client_access
from bus.ops.catalog import default_catalog_path, read_catalog
from tests.support.events import penduduk
from tests.support.projected import projected_delivery

pytestmark = pytest.mark.integration

SECRET = b"ledger-secret-of-the-egress-tests"
TODAY = date(2026, 12, 2)


def _access(client: str) -> ClientAccess:
    found = client_access(read_catalog(default_catalog_path()), client)
    assert found is not None
    return found


@pytest.fixture
async def egress(tmp_path: Path) -> tuple[Egress, ReadModels, LedgerStore]:
    models = ReadModels.from_url(f"sqlite:///{tmp_path / 'gateway.db'}")
    models.create_tables()
    engine = create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    create_ledger_table(engine)
    ledger = LedgerStore(engine, SECRET)
    resident = penduduk(1234)
    await models(projected_delivery(resident, "dpmptsp-penduduk", sequence=4))
    return Egress(models, ledger, page_limit=50, today=lambda: TODAY), models, ledger


RESIDENT = penduduk(1234)


async def test_a_resident_is_answered_with_the_subscriptions_fields_and_recorded(
    egress: tuple[Egress, ReadModels, LedgerStore],
) -> None:
    gateway, _, ledger = egress
    answer = await gateway.person(_access("dpmptsp-sicantik"), RESIDENT.nik, None)
    assert answer.status == 200
    assert answer.body is not None
    assert set(answer.body["data"]) == {"nik", "nama_lengkap", "alamat", "berlaku_sejak"}
    assert "tanggal_lahir" not in answer.body["data"]
    assert answer.headers["ETag"].startswith('"4.')
    (entry,) = ledger.who_received(RESIDENT.nik).entries
    assert (entry.subscriber, entry.kind) == ("dpmptsp-penduduk", LedgerKind.API)


async def test_the_current_etag_answers_304_and_records_nothing(
    egress: tuple[Egress, ReadModels, LedgerStore],
) -> None:
    gateway, _, ledger = egress
    first = await gateway.person(_access("dpmptsp-sicantik"), RESIDENT.nik, None)
    again = await gateway.person(_access("dpmptsp-sicantik"), RESIDENT.nik, first.headers["ETag"])
    assert (again.status, again.body) == (304, None)
    assert len(ledger.who_received(RESIDENT.nik).entries) == 1


async def test_a_client_without_a_subscription_is_refused_403(
    egress: tuple[Egress, ReadModels, LedgerStore],
) -> None:
    gateway, _, ledger = egress
    answer = await gateway.person(_access("dinkopukm-siumkm"), RESIDENT.nik, None)
    assert answer.status == 403
    assert answer.outcome == "no-subscription"
    assert RESIDENT.nik not in str(answer.body)
    assert ledger.who_received(RESIDENT.nik).entries == ()


async def test_an_expired_subscription_is_refused_403_with_its_end_date(
    egress: tuple[Egress, ReadModels, LedgerStore],
) -> None:
    gateway, _, _ = egress
    access = _access("dpmptsp-sicantik")
    ended = tuple(s.model_copy(update={"expires": date(2026, 1, 31)}) for s in access.subscriptions)
    answer = await gateway.person(dataclasses.replace(access, subscriptions=ended), "x", None)
    assert answer.status == 403
    assert answer.outcome == "subscription-expired"
    assert answer.body is not None
    assert "2026-01-31" in answer.body["detail"]


async def test_an_invalid_nik_is_400_naming_the_rule_not_the_value(
    egress: tuple[Egress, ReadModels, LedgerStore],
) -> None:
    gateway, _, _ = egress
    answer = await gateway.person(_access("dpmptsp-sicantik"), "327302570890000", None)
    assert answer.status == 400
    assert answer.body is not None
    (error,) = answer.body["errors"]
    assert error["field"] == "nik"
    assert "327302570890000" not in str(answer.body)


async def test_an_unknown_resident_is_404(egress: tuple[Egress, ReadModels, LedgerStore]) -> None:
    gateway, _, _ = egress
    answer = await gateway.person(_access("dpmptsp-sicantik"), penduduk(4321).nik, None)
    assert (answer.status, answer.outcome) == (404, "not-found")


async def test_searching_by_a_field_the_subscription_lacks_is_403(
    egress: tuple[Egress, ReadModels, LedgerStore],
) -> None:
    gateway, _, _ = egress
    answer = await gateway.payments(
        _access("dpmptsp-sicantik"), None, "327301000100200030", None, None
    )
    assert (answer.status, answer.outcome) == (403, "field-not-in-subscription")


async def test_a_region_page_lists_its_residents_and_records_each(
    egress: tuple[Egress, ReadModels, LedgerStore],
) -> None:
    gateway, _, ledger = egress
    code = RESIDENT.alamat.kode_wilayah
    answer = await gateway.people(_access("dpmptsp-sicantik"), code, "10", None)
    assert answer.status == 200
    assert answer.body is not None
    assert [p["nik"] for p in answer.body["data"]] == [RESIDENT.nik]
    assert answer.persons == 1
    assert len(ledger.who_received(RESIDENT.nik).entries) == 1
    too_big = await gateway.people(_access("dpmptsp-sicantik"), code, "100000", None)
    assert too_big.status == 400


async def test_no_data_leaves_when_the_ledger_cannot_record_it(
    egress: tuple[Egress, ReadModels, LedgerStore], tmp_path: Path
) -> None:
    gateway, _, _ = egress
    with create_engine(f"sqlite:///{tmp_path / 'ledger.db'}").begin() as conn:
        conn.execute(sa.text("DROP TABLE spbe_ledger"))
    answer = await gateway.person(_access("dpmptsp-sicantik"), RESIDENT.nik, None)
    assert (answer.status, answer.outcome) == (503, "ledger-unavailable")
    assert answer.body is not None
    assert "data" not in answer.body
