"""The read models' pure parts: cursors, query checks, which subscriber a delivery is for."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from adapters.gateway.readmodels import PersonView, ReadModelQueryError, delivery_subscriber
from adapters.gateway.readmodels_queries import (
    MAX_PAGE_LIMIT,
    _check_limit,
    _check_prefix,
    decode_cursor,
    encode_cursor,
)
from bus.errors import PermanentError
from tests.support.events import penduduk
from tests.support.projected import projected_delivery

NIK = penduduk(1).nik


def test_a_cursor_reads_back_the_row_id_it_was_made_from() -> None:
    for row_id in (1, 42, 2**40):
        assert decode_cursor(b"p", encode_cursor(b"p", row_id)) == row_id


def test_a_cursor_never_holds_the_nik_of_the_row_it_continues_after() -> None:
    cursor = encode_cursor(b"p", 7)
    assert NIK not in cursor
    assert cursor.isascii()
    assert "=" not in cursor
    assert "/" not in cursor
    assert "+" not in cursor


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not-a-cursor",
        "!!!!",
        "A" * 100,
        "é",
        encode_cursor(b"y", 3),
        encode_cursor(b"p", 3) + "A",
    ],
)
def test_a_cursor_that_is_not_this_lists_is_refused_naming_the_parameter(cursor: str) -> None:
    with pytest.raises(ReadModelQueryError) as caught:
        decode_cursor(b"p", cursor)
    assert caught.value.field == "cursor"
    assert cursor not in caught.value.message or not cursor


@pytest.mark.parametrize("limit", [0, -1, MAX_PAGE_LIMIT + 1, True, 2.5])
def test_a_limit_out_of_range_is_refused(limit: object) -> None:
    with pytest.raises(ReadModelQueryError) as caught:
        _check_limit(limit)  # type: ignore[arg-type]
    assert caught.value.field == "limit"
    assert str(MAX_PAGE_LIMIT) in caught.value.rule


@pytest.mark.parametrize("prefix", ["32", "32.73", "32.73.01", "32.73.01.1001"])
def test_every_level_of_a_kemendagri_code_is_a_valid_prefix(prefix: str) -> None:
    _check_prefix(prefix)


@pytest.mark.parametrize("prefix", ["3", "32.7", "32.73.", "3273", "32.73.01.%", "32_73", ""])
def test_a_partial_segment_or_a_like_wildcard_is_refused_as_a_prefix(prefix: str) -> None:
    with pytest.raises(ReadModelQueryError) as caught:
        _check_prefix(prefix)
    assert caught.value.field == "kode_wilayah"


def test_the_subscriber_of_a_delivery_is_its_projected_topics() -> None:
    delivery = projected_delivery(penduduk(1), "dpmptsp-penduduk", sequence=1)
    assert delivery_subscriber(delivery) == "dpmptsp-penduduk"


def test_an_event_from_a_topic_that_is_not_projected_is_a_permanent_error() -> None:
    delivery = projected_delivery(
        penduduk(1), "dpmptsp-penduduk", sequence=1, topic="spbe.dukcapil.penduduk.v1"
    )
    with pytest.raises(PermanentError, match="not a projected topic") as caught:
        delivery_subscriber(delivery)
    assert caught.value.fix is not None
    assert NIK not in str(caught.value)


def test_a_contract_naming_another_subscription_than_the_topic_is_a_permanent_error() -> None:
    delivery = projected_delivery(
        penduduk(1), "dpmptsp-penduduk", sequence=1, contract_subscription="dinsos-penduduk"
    )
    with pytest.raises(PermanentError, match="ce_subscription dinsos-penduduk"):
        delivery_subscriber(delivery)


def test_a_person_views_repr_keeps_the_personal_documents_out() -> None:
    view = PersonView(
        document={"nik": NIK, "nama_lengkap": "Siti"},
        event_id="e1",
        event_type="PendudukUpdated",
        sequence=1,
        updated_at=datetime(2026, 1, 1, tzinfo=UTC),
        kematian={"nik": NIK},
    )
    assert NIK not in repr(view)
    assert "Siti" not in repr(view)
    assert dataclasses.asdict(view)["document"]["nik"] == NIK
