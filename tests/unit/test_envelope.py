"""CloudEvents envelope as Kafka headers, topic names and keyed pseudonyms."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from bus.contract.envelope import (
    DataClassification,
    Envelope,
    from_headers,
    new_event_id,
    pseudonymise,
    to_headers,
    topic_name,
)
from bus.errors import ConfigError, ContractError, EnvelopeError

SECRET = b"kunci-rahasia-disdukcapil-3273"
EVENT_ID = "01963b9e-6c1d-7c3e-9a4b-5d6e7f801234"
WIB = timezone(timedelta(hours=7))


def full_envelope() -> Envelope:
    return Envelope(
        id=EVENT_ID,
        source="ID/PEMDA-3273/DISDUKCAPIL/siak",
        type="id.go.spbe.dukcapil.PendudukUpdated.v1",
        time=datetime(2025, 6, 1, 8, 30, 0, 123456, tzinfo=UTC),
        subject="penduduk",
        dataschema="urn:spbe:schema:0x1234abcd5678ef90",
        steward="DISDUKCAPIL",
        sequence=42,
        partitionkey=pseudonymise(SECRET, "3273014507900002"),
        dataclassification=DataClassification.RESTRICTED,
        traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    )


def minimal_envelope() -> Envelope:
    return Envelope(
        source="ID/PEMDA-32/DPMPTSP/sicantik",
        type="id.go.spbe.dpmptsp.IzinDiterbitkan.v2",
        steward="DPMPTSP",
        partitionkey="503/IZIN/2025/0001",
        dataclassification=DataClassification.INTERNAL,
    )


def headers_without(name: str) -> list[tuple[str, bytes]]:
    return [(key, value) for key, value in to_headers(full_envelope()) if key != name]


def headers_with(name: str, value: bytes) -> list[tuple[str, bytes]]:
    return [(key, value if key == name else old) for key, old in to_headers(full_envelope())]


# -- round trip and layout ---------------------------------------------------------------------


def test_envelope_survives_a_round_trip_through_headers() -> None:
    envelope = full_envelope()
    assert from_headers(to_headers(envelope)) == envelope


def test_minimal_envelope_survives_a_round_trip_and_gets_fresh_id_and_time() -> None:
    envelope = minimal_envelope()
    assert uuid.UUID(envelope.id).version == 7
    assert envelope.time.tzinfo is UTC
    assert from_headers(to_headers(envelope)) == envelope


def test_headers_use_the_cloudevents_kafka_names_in_order() -> None:
    headers = dict(to_headers(full_envelope()))
    assert list(headers) == [
        "ce_specversion",
        "ce_id",
        "ce_source",
        "ce_type",
        "ce_time",
        "ce_subject",
        "ce_dataschema",
        "content-type",
        "ce_steward",
        "ce_sequence",
        "ce_partitionkey",
        "ce_dataclassification",
        "ce_traceparent",
    ]
    assert headers["ce_specversion"] == b"1.0"
    assert headers["content-type"] == b"application/avro"
    assert headers["ce_time"] == b"2025-06-01T08:30:00.123456Z"
    assert headers["ce_sequence"] == b"42"
    assert headers["ce_dataclassification"] == b"restricted"


def test_absent_optional_attributes_are_left_out_of_the_headers() -> None:
    names = [name for name, _ in to_headers(minimal_envelope())]
    for optional in ("ce_subject", "ce_dataschema", "ce_sequence", "ce_traceparent"):
        assert optional not in names


def test_time_in_another_zone_is_stored_and_sent_in_utc() -> None:
    envelope = Envelope(
        source="ID/PEMDA-3273/DISDUKCAPIL/siak",
        type="id.go.spbe.dukcapil.PendudukUpdated.v1",
        time=datetime(2025, 6, 1, 15, 30, tzinfo=WIB),
        steward="DISDUKCAPIL",
        partitionkey="k",
        dataclassification=DataClassification.RESTRICTED,
    )
    assert envelope.time == datetime(2025, 6, 1, 8, 30, tzinfo=UTC)
    assert envelope.time.tzinfo is UTC
    assert dict(to_headers(envelope))["ce_time"] == b"2025-06-01T08:30:00.000000Z"


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        ("2025-06-01T08:30:00Z", datetime(2025, 6, 1, 8, 30, tzinfo=UTC)),
        ("2025-06-01T15:30:00+07:00", datetime(2025, 6, 1, 8, 30, tzinfo=UTC)),
        ("2025-06-01t08:30:00.5z", datetime(2025, 6, 1, 8, 30, 0, 500000, tzinfo=UTC)),
        ("2025-06-01T08:30:00.123456789Z", datetime(2025, 6, 1, 8, 30, 0, 123456, tzinfo=UTC)),
    ],
)
def test_rfc3339_times_from_other_producers_are_read_as_utc(sent: str, expected: datetime) -> None:
    envelope = from_headers(headers_with("ce_time", sent.encode()))
    assert envelope.time == expected
    assert envelope.time.tzinfo is UTC


def test_type_parts_are_available_on_the_envelope() -> None:
    envelope = full_envelope()
    assert envelope.domain == "dukcapil"
    assert envelope.event_name == "PendudukUpdated"
    assert envelope.major == 1


def test_unknown_headers_are_ignored() -> None:
    headers = [*to_headers(full_envelope()), ("ce_other", b"x"), ("x-request-id", b"abc")]
    assert from_headers(headers) == full_envelope()


def test_new_event_ids_are_distinct_uuid7() -> None:
    ids = {new_event_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(uuid.UUID(value).version == 7 for value in ids)


# -- header errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "ce_specversion",
        "ce_id",
        "ce_source",
        "ce_type",
        "ce_time",
        "content-type",
        "ce_steward",
        "ce_partitionkey",
        "ce_dataclassification",
    ],
)
def test_a_missing_required_header_is_named(name: str) -> None:
    with pytest.raises(EnvelopeError, match=f"required header {name} is missing"):
        from_headers(headers_without(name))


def test_a_wrong_specversion_is_refused() -> None:
    with pytest.raises(EnvelopeError, match=r"ce_specversion is '0\.3'; only '1\.0'"):
        from_headers(headers_with("ce_specversion", b"0.3"))


@pytest.mark.parametrize(
    "value",
    [
        "2025-06-01",
        "2025-06-01T08:30:00",
        "2025-06-01 08:30:00Z",
        "kemarin",
        "2025-02-30T08:30:00Z",
        "2025-06-01T25:30:00Z",
    ],
)
def test_a_bad_time_is_refused(value: str) -> None:
    with pytest.raises(EnvelopeError, match="ce_time"):
        from_headers(headers_with("ce_time", value.encode()))


@pytest.mark.parametrize(
    "value",
    [
        "ID/PEMDA-327/DISDUKCAPIL/siak",
        "ID/PEMDA-3273/disdukcapil/siak",
        "ID/PEMDA-3273/DISDUKCAPIL/SIAK",
        "ID/PEMDA-3273/DISDUKCAPIL",
        "PEMDA-3273/DISDUKCAPIL/siak",
        "ID/PEMDA-3273/DISDUKCAPIL/siak/extra",
        "https://siak.bandung.go.id",
    ],
)
def test_a_bad_source_is_refused_with_the_expected_form(value: str) -> None:
    with pytest.raises(EnvelopeError, match=r"ce_source .* ID/PEMDA-<kode wilayah>/<OPD>"):
        from_headers(headers_with("ce_source", value.encode()))


@pytest.mark.parametrize(
    "value",
    [
        "PendudukUpdated",
        "id.go.spbe.dukcapil.PendudukUpdated",
        "id.go.spbe.dukcapil.pendudukUpdated.v1",
        "id.go.spbe.Dukcapil.PendudukUpdated.v1",
        "id.go.spbe.dukcapil.PendudukUpdated.v0",
        "com.example.dukcapil.PendudukUpdated.v1",
    ],
)
def test_a_bad_type_is_refused_with_the_expected_form(value: str) -> None:
    with pytest.raises(EnvelopeError, match=r"ce_type .* id\.go\.spbe\.<domain>\.<EventName>"):
        from_headers(headers_with("ce_type", value.encode()))


@pytest.mark.parametrize("value", ["-1", "1.5", "empat", "+3", "", "\uff14\uff12"])
def test_a_bad_sequence_is_refused(value: str) -> None:
    with pytest.raises(
        EnvelopeError, match=r"ce_sequence .* is not a non-negative decimal integer"
    ):
        from_headers(headers_with("ce_sequence", value.encode()))


def test_an_unknown_classification_is_refused_listing_the_levels() -> None:
    with pytest.raises(
        EnvelopeError,
        match="ce_dataclassification 'rahasia' is not one of public, internal, confidential",
    ):
        from_headers(headers_with("ce_dataclassification", b"rahasia"))


def test_another_content_type_is_refused() -> None:
    with pytest.raises(EnvelopeError, match="content-type must be application/avro"):
        from_headers(headers_with("content-type", b"application/json"))


@pytest.mark.parametrize(
    "value",
    [
        "not-a-uuid",
        str(uuid.uuid4()),
        EVENT_ID.upper(),
    ],
)
def test_an_id_that_is_not_a_canonical_uuid7_is_refused(value: str) -> None:
    with pytest.raises(EnvelopeError, match=r"ce_id .* is not a UUIDv7"):
        from_headers(headers_with("ce_id", value.encode()))


@pytest.mark.parametrize("name", ["ce_steward", "ce_partitionkey", "ce_subject"])
def test_an_empty_text_attribute_is_refused(name: str) -> None:
    with pytest.raises(EnvelopeError, match=f"{name} must be a non-empty string"):
        from_headers(headers_with(name, b""))


def test_a_repeated_header_is_refused() -> None:
    headers = [*to_headers(full_envelope()), ("ce_id", new_event_id().encode())]
    with pytest.raises(EnvelopeError, match="header ce_id appears more than once"):
        from_headers(headers)


def test_a_header_without_value_is_refused() -> None:
    headers: list[tuple[str, bytes | None]] = [*headers_without("ce_type"), ("ce_type", None)]
    with pytest.raises(EnvelopeError, match="header ce_type has no value"):
        from_headers(headers)


def test_a_header_that_is_not_utf8_is_refused() -> None:
    with pytest.raises(EnvelopeError, match="header ce_steward is not valid UTF-8"):
        from_headers(headers_with("ce_steward", b"\xffdukcapil"))


def test_an_invalid_traceparent_is_dropped_not_fatal() -> None:
    envelope = from_headers(headers_with("ce_traceparent", b"garbage"))
    assert envelope.traceparent is None
    assert envelope.id == EVENT_ID


# -- building envelopes ------------------------------------------------------------------------


def test_a_naive_time_is_refused_when_building() -> None:
    with pytest.raises(EnvelopeError, match="ce_time must be timezone-aware"):
        Envelope(
            source="ID/PEMDA-3273/DISDUKCAPIL/siak",
            type="id.go.spbe.dukcapil.PendudukUpdated.v1",
            time=datetime(2025, 6, 1, 8, 30),  # naive on purpose
            steward="DISDUKCAPIL",
            partitionkey="k",
            dataclassification=DataClassification.RESTRICTED,
        )


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("sequence", -1, "ce_sequence must be a non-negative integer"),
        ("sequence", True, "ce_sequence must be a non-negative integer"),
        ("traceparent", "00-abc", "ce_traceparent '00-abc' is not a W3C traceparent"),
        ("id", "1234", "ce_id '1234' is not a UUIDv7"),
        ("source", "DISDUKCAPIL", "ce_source 'DISDUKCAPIL' does not have the form"),
        ("dataclassification", "rahasia", "ce_dataclassification 'rahasia' is not one of"),
    ],
)
def test_an_invalid_value_is_refused_when_building(
    field: str, value: object, expected: str
) -> None:
    arguments: dict[str, object] = {
        "source": "ID/PEMDA-3273/DISDUKCAPIL/siak",
        "type": "id.go.spbe.dukcapil.PendudukUpdated.v1",
        "steward": "DISDUKCAPIL",
        "partitionkey": "k",
        "dataclassification": DataClassification.RESTRICTED,
        field: value,
    }
    with pytest.raises(EnvelopeError, match=re.escape(expected)):
        Envelope(**arguments)  # type: ignore[arg-type]


def test_a_classification_given_as_text_becomes_the_enum() -> None:
    envelope = Envelope(
        source="ID/PEMDA-3273/DISDUKCAPIL/siak",
        type="id.go.spbe.dukcapil.PendudukUpdated.v1",
        steward="DISDUKCAPIL",
        partitionkey="k",
        dataclassification="public",  # type: ignore[arg-type]
    )
    assert envelope.dataclassification is DataClassification.PUBLIC


# -- topic names -------------------------------------------------------------------------------


def test_topic_name_joins_domain_aggregate_and_major() -> None:
    assert topic_name("dukcapil", "penduduk", 1) == "spbe.dukcapil.penduduk.v1"
    assert topic_name("bapenda", "pajak_daerah", 2) == "spbe.bapenda.pajak_daerah.v2"


@pytest.mark.parametrize(
    ("domain", "aggregate", "major"),
    [
        ("Dukcapil", "penduduk", 1),
        ("dukcapil", "penduduk.x", 1),
        ("", "penduduk", 1),
        ("dukcapil", "penduduk", 0),
    ],
)
def test_topic_name_refuses_bad_parts(domain: str, aggregate: str, major: int) -> None:
    with pytest.raises(ContractError):
        topic_name(domain, aggregate, major)


# -- pseudonyms --------------------------------------------------------------------------------


def test_pseudonymise_is_deterministic_lowercase_hex_sha256() -> None:
    first = pseudonymise(SECRET, "3273014507900002")
    assert first == pseudonymise(SECRET, "3273014507900002")
    assert re.fullmatch(r"[0-9a-f]{64}", first)


def test_pseudonymise_differs_per_secret_and_per_value() -> None:
    value = "3273014507900002"
    assert pseudonymise(SECRET, value) != pseudonymise(SECRET + b"!", value)
    assert pseudonymise(SECRET, value) != pseudonymise(SECRET, "3273014507900003")


@pytest.mark.parametrize("value", ["3273014507900002", "9120001234567", "Siti Aminah", "a" * 64])
def test_pseudonymise_never_contains_the_input(value: str) -> None:
    assert value not in pseudonymise(SECRET, value)


@pytest.mark.parametrize("secret", [b"", b"x", b"0123456789abcde"])
def test_pseudonymise_refuses_a_secret_shorter_than_16_bytes(secret: bytes) -> None:
    with pytest.raises(ConfigError, match="at least 16"):
        pseudonymise(secret, "3273014507900002")


def test_pseudonymise_accepts_a_16_byte_secret() -> None:
    assert len(pseudonymise(b"0123456789abcdef", "3273014507900002")) == 64
