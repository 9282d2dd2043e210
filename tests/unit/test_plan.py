"""A publishing plan writes exactly the record the unplanned path writes, and checks the same."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta, timezone

import pytest

from bus.contract import codec
from bus.contract.envelope import Envelope, from_headers, to_headers
from bus.contract.events import EVENT_TYPES
from bus.contract.plan import PublishingPlan
from bus.contract.pseudonyms import Pseudonymiser
from bus.contract.standard import example, load_standard
from bus.errors import ConfigError, ContractError, EnvelopeError

SECRET = b"steward-secret-for-tests-0123456789"
SOURCES = {
    "DISDUKCAPIL": "ID/PEMDA-3273/DISDUKCAPIL/siak",
    "DPMPTSP": "ID/PEMDA-3273/DPMPTSP/sicantik",
    "DINKOPUKM": "ID/PEMDA-3273/DINKOPUKM/siumkm",
    "BAPENDA": "ID/PEMDA-3273/BAPENDA/sipd",
}
STANDARD = load_standard()
TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def _plan(name: str) -> PublishingPlan:
    schema = STANDARD[name]
    assert schema.steward is not None
    return PublishingPlan.for_source(schema, source=SOURCES[schema.steward], key_secret=SECRET)


@pytest.mark.parametrize("name", sorted(STANDARD))
@pytest.mark.parametrize("snapshot", [False, True])
def test_planned_headers_are_the_envelopes_headers_and_read_back_to_it(
    name: str, snapshot: bool
) -> None:
    event = EVENT_TYPES[name].from_json(example(name))
    record = _plan(name).record(event, sequence=3, traceparent=TRACE, snapshot=snapshot)
    assert record.headers == to_headers(record.envelope)
    assert from_headers(record.headers) == record.envelope
    assert dict(record.headers).get("ce_snapshot") == (b"true" if snapshot else None)


@pytest.mark.parametrize("name", sorted(STANDARD))
def test_the_unchecked_envelope_equals_a_checked_one(name: str) -> None:
    record = _plan(name).record(EVENT_TYPES[name].from_json(example(name)), sequence=0)
    fields = {f: getattr(record.envelope, f) for f in Envelope.__dataclass_fields__}
    assert Envelope(**fields) == record.envelope


@pytest.mark.parametrize("name", sorted(STANDARD))
def test_the_planned_value_is_the_validating_codecs_value(name: str) -> None:
    event = EVENT_TYPES[name].from_json(example(name))
    record = _plan(name).record(event)
    assert record.value == codec.encode(STANDARD[name], event.to_avro())


def test_a_given_time_is_kept_in_utc_and_a_naive_one_is_refused() -> None:
    event = EVENT_TYPES["IzinDiterbitkan"].from_json(example("IzinDiterbitkan"))
    wib = timezone(timedelta(hours=7))
    record = _plan("IzinDiterbitkan").record(event, time=datetime(2025, 6, 1, 15, 30, tzinfo=wib))
    assert dict(record.headers)["ce_time"] == b"2025-06-01T08:30:00.000000Z"
    with pytest.raises(EnvelopeError, match="timezone-aware"):
        _plan("IzinDiterbitkan").record(event, time=datetime(2025, 6, 1, 8, 30))


@pytest.mark.parametrize(
    ("given", "match"),
    [
        ({"event_id": "not-a-uuid"}, "ce_id"),
        ({"event_id": "1b4e28ba-2fa1-41d2-883f-0016d3cca427"}, "UUIDv7"),
        ({"sequence": -1}, "ce_sequence"),
        ({"sequence": True}, "ce_sequence"),
        ({"traceparent": "00-xyz"}, "ce_traceparent"),
    ],
)
def test_values_the_caller_gives_are_checked_like_an_envelopes(
    given: dict[str, object], match: str
) -> None:
    event = EVENT_TYPES["IzinDiterbitkan"].from_json(example("IzinDiterbitkan"))
    with pytest.raises(EnvelopeError, match=match):
        _plan("IzinDiterbitkan").record(event, **given)  # type: ignore[arg-type]


def test_a_plan_refuses_a_source_that_is_not_the_steward_and_an_event_of_another_type() -> None:
    schema = STANDARD["IzinDiterbitkan"]
    with pytest.raises(ContractError, match="only be published by its steward DPMPTSP"):
        PublishingPlan.for_source(schema, source=SOURCES["BAPENDA"])
    with pytest.raises(ContractError, match="ID/PEMDA"):
        PublishingPlan.for_source(schema, source="dpmptsp")
    other = EVENT_TYPES["UmkmTerdaftar"].from_json(example("UmkmTerdaftar"))
    with pytest.raises(ContractError, match="does not describe a UmkmTerdaftar"):
        _plan("IzinDiterbitkan").record(other)  # type: ignore[arg-type]


def test_a_pseudonymised_key_needs_the_secret_at_record_time() -> None:
    schema = STANDARD["KematianDicatat"]
    plan = PublishingPlan.for_source(schema, source=SOURCES["DISDUKCAPIL"])
    event = EVENT_TYPES["KematianDicatat"].from_json(example("KematianDicatat"))
    with pytest.raises(ConfigError, match="no steward secret"):
        plan.record(event)


def test_the_prepared_hmac_gives_the_plain_hmac_and_hides_its_secret() -> None:
    pseudonymiser = Pseudonymiser(SECRET)
    for value in ("3273010101900001", "3273010101900002", ""):
        expected = hmac.new(SECRET, value.encode(), hashlib.sha256).hexdigest()
        assert pseudonymiser(value) == expected
    assert SECRET.decode() not in repr(pseudonymiser)
    with pytest.raises(ConfigError, match="at least 16"):
        Pseudonymiser(b"short")


def test_a_record_built_now_has_a_fresh_id_and_the_current_time() -> None:
    event = EVENT_TYPES["IzinDiterbitkan"].from_json(example("IzinDiterbitkan"))
    plan = _plan("IzinDiterbitkan")
    first, second = plan.record(event), plan.record(event)
    assert first.envelope.id != second.envelope.id
    assert abs(first.envelope.time - datetime.now(UTC)) < timedelta(minutes=5)
