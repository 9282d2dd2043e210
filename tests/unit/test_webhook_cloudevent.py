"""The webhook body: one CloudEvents 1.0 structured-mode JSON document per event."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from adapters.sinks.webhook.cloudevent import (
    CONTENT_TYPE,
    DATA_CONTENT_TYPE,
    encode_body,
    structured_event,
)
from bus.contract.envelope import DataClassification, Envelope
from tests.support.events import SOURCE_DPMPTSP, izin

EVENT = izin(421, nama_usaha="Kedai Kopi Ñusantara")
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def envelope(**optional: object) -> Envelope:
    return Envelope(
        id="019b7cc6-4c00-7a3e-9b1d-5f2e8c4d7a10",
        source=SOURCE_DPMPTSP,
        type="id.go.spbe.dpmptsp.IzinDiterbitkan.v1",
        time=datetime(2026, 11, 27, 3, 15, tzinfo=UTC),
        steward="DPMPTSP",
        partitionkey=EVENT.nomor_izin,
        dataclassification=DataClassification.RESTRICTED,
        **optional,  # type: ignore[arg-type]
    )


def test_the_content_type_is_cloudevents_json_in_utf8() -> None:
    assert CONTENT_TYPE == "application/cloudevents+json; charset=utf-8"
    assert DATA_CONTENT_TYPE == "application/json"


def test_every_attribute_is_present_with_data_as_the_events_plain_json() -> None:
    full = envelope(
        subject=EVENT.nomor_izin,
        dataschema="urn:spbe:schema:id.go.spbe.dpmptsp.IzinDiterbitkan.v1:c1e88383589893b9",
        sequence=7,
        traceparent=TRACEPARENT,
    )
    assert structured_event(full, EVENT.to_json()) == {
        "specversion": "1.0",
        "id": "019b7cc6-4c00-7a3e-9b1d-5f2e8c4d7a10",
        "source": SOURCE_DPMPTSP,
        "type": "id.go.spbe.dpmptsp.IzinDiterbitkan.v1",
        "time": "2026-11-27T03:15:00.000000Z",
        "subject": EVENT.nomor_izin,
        "datacontenttype": "application/json",
        "dataschema": "urn:spbe:schema:id.go.spbe.dpmptsp.IzinDiterbitkan.v1:c1e88383589893b9",
        "steward": "DPMPTSP",
        "sequence": 7,
        "partitionkey": EVENT.nomor_izin,
        "dataclassification": "restricted",
        "traceparent": TRACEPARENT,
        "data": EVENT.to_json(),
    }


def test_absent_optional_attributes_are_left_out_not_sent_as_null() -> None:
    document = structured_event(envelope(), EVENT.to_json())
    for optional in ("subject", "dataschema", "sequence", "traceparent"):
        assert optional not in document
    assert None not in (document[k] for k in document if k != "data")


def test_a_snapshot_event_says_so_and_a_live_one_leaves_the_attribute_out() -> None:
    assert structured_event(envelope(snapshot=True), EVENT.to_json())["snapshot"] is True
    assert "snapshot" not in structured_event(envelope(), EVENT.to_json())


def test_sequence_zero_is_kept_because_it_is_a_version() -> None:
    assert structured_event(envelope(sequence=0), EVENT.to_json())["sequence"] == 0


def test_the_body_is_compact_utf8_json_that_parses_back_to_the_document() -> None:
    body = encode_body(envelope(), EVENT.to_json())
    assert b"\n" not in body
    assert b'","' in body, "compact separators, no spaces"
    assert "Ñusantara".encode() in body, "non-ASCII text travels as UTF-8, not \\u escapes"
    assert json.loads(body) == structured_event(envelope(), EVENT.to_json())


def test_the_same_event_always_encodes_to_the_same_bytes() -> None:
    assert encode_body(envelope(), EVENT.to_json()) == encode_body(envelope(), EVENT.to_json())
