"""Pure decisions about one outbox row: decoding, event ids, retry times, safe error texts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from adapters.sources.outbox.rows import (
    LAST_ERROR_MAX_CHARS,
    OutboxRow,
    RowRejected,
    decode_event,
    error_text,
    next_attempt_at,
    valid_event_id,
)
from bus.contract.events import IzinDiterbitkan, PendudukUpdated
from bus.contract.standard import example
from bus.errors import BusError, EventValidationError

NIK = "3273025708900003"


def row(payload: str, event_type: str = "PendudukUpdated", **extra: object) -> OutboxRow:
    values: dict[str, object] = {
        "id": 7,
        "event_id": "019b7cc6-4c00-7a3e-9b1d-5f2e8c4d7a10",
        "event_type": event_type,
        "aggregate_id": NIK,
        "sequence": 3,
        "payload": payload,
        "attempts": 0,
        **extra,
    }
    return OutboxRow(**values)  # type: ignore[arg-type]


def test_a_row_with_an_example_payload_decodes_to_its_typed_event() -> None:
    event = decode_event(row(json.dumps(example("PendudukUpdated"))))
    assert isinstance(event, PendudukUpdated)
    assert event.to_json() == PendudukUpdated.from_json(example("PendudukUpdated")).to_json()


def test_a_payload_that_is_not_json_is_rejected_by_position_without_quoting_it() -> None:
    with pytest.raises(RowRejected) as caught:
        decode_event(row('{"nik": "' + NIK + '", nama'))
    message = str(caught.value)
    assert message.startswith("payload: is not valid JSON")
    assert "character" in message
    assert NIK not in message


def test_an_unknown_event_type_is_rejected_naming_the_types_of_the_standard() -> None:
    with pytest.raises(RowRejected, match="event_type: is not an event type") as caught:
        decode_event(row("{}", event_type="PendudukDihapus"))
    assert "PendudukUpdated" in str(caught.value)


def test_a_payload_breaking_field_rules_names_every_field_and_no_value() -> None:
    data = example("IzinDiterbitkan")
    data["nib"] = "12AB"
    data["kbli"]["kode"] = "9"
    with pytest.raises(EventValidationError) as caught:
        decode_event(row(json.dumps(data), event_type="IzinDiterbitkan"))
    assert {p.field for p in caught.value.problems} == {"nib", "kbli.kode"}
    assert "12AB" not in error_text(caught.value)


def test_a_json_array_payload_is_refused_as_not_an_object() -> None:
    with pytest.raises(EventValidationError, match="is not a JSON object"):
        decode_event(row("[]", event_type="IzinDiterbitkan"))


def test_event_ids_are_trimmed_and_lowercased_because_uuids_are_case_blind() -> None:
    assert valid_event_id(" 019B7CC6-4C00-7A3E-9B1D-5F2E8C4D7A10 ") == (
        "019b7cc6-4c00-7a3e-9b1d-5f2e8c4d7a10"
    )


@pytest.mark.parametrize(
    "event_id",
    [
        "1b4e28ba-2fa1-41d2-883f-0016d3cca427",  # version 4
        "019b7cc6-4c00-7a3e-1b1d-5f2e8c4d7a10",  # wrong variant
        "019b7cc64c007a3e9b1d5f2e8c4d7a10",  # no hyphens
        "",
    ],
)
def test_an_event_id_that_is_not_a_uuidv7_is_rejected(event_id: str) -> None:
    with pytest.raises(RowRejected, match="event_id: is not a UUIDv7"):
        valid_event_id(event_id)


def test_retries_wait_the_initial_backoff_then_double_up_to_the_bound() -> None:
    now = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)
    waits = [
        next_attempt_at(now, attempts, initial_ms=1000, max_ms=60_000) - now
        for attempts in range(1, 10)
    ]
    assert waits[:4] == [timedelta(seconds=s) for s in (1, 2, 4, 8)]
    assert max(waits) == timedelta(seconds=60)
    assert waits == sorted(waits)


def test_a_very_large_attempt_count_stays_at_the_bound() -> None:
    now = datetime(2026, 11, 28, tzinfo=UTC)
    later = next_attempt_at(now, 10_000, initial_ms=1000, max_ms=60_000)
    assert later - now == timedelta(seconds=60)


def test_last_error_is_the_error_class_and_message_bounded_in_length() -> None:
    text = error_text(BusError("x" * 10_000))
    assert text.startswith("BusError: xxx")
    assert len(text) == LAST_ERROR_MAX_CHARS


def test_a_row_repr_shows_neither_the_aggregate_id_nor_the_payload() -> None:
    text = repr(row(json.dumps(example("PendudukUpdated"))))
    assert NIK not in text
    assert "Siti" not in text
    assert "019b7cc6" in text


def test_an_izin_row_decodes_with_its_nested_records() -> None:
    event = decode_event(row(json.dumps(example("IzinDiterbitkan")), event_type="IzinDiterbitkan"))
    assert isinstance(event, IzinDiterbitkan)
    assert event.kbli.kode == example("IzinDiterbitkan")["kbli"]["kode"]
