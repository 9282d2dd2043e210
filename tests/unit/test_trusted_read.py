"""The read path's trusted construction builds exactly the validated model, or validates."""

from __future__ import annotations

import pytest

from bus.contract.codec import InMemorySchemas, decode
from bus.contract.events import EVENT_TYPES
from bus.contract.message import read_record
from bus.contract.plan import PublishingPlan
from bus.contract.standard import example, load_standard
from bus.errors import EventValidationError

STANDARD = load_standard()
SOURCES = {
    "DISDUKCAPIL": "ID/PEMDA-3273/DISDUKCAPIL/siak",
    "DPMPTSP": "ID/PEMDA-3273/DPMPTSP/sicantik",
    "DINKOPUKM": "ID/PEMDA-3273/DINKOPUKM/siumkm",
    "BAPENDA": "ID/PEMDA-3273/BAPENDA/sipd",
}


def _datum(name: str) -> dict[str, object]:
    event = EVENT_TYPES[name].from_json(example(name))
    schema = STANDARD[name]
    assert schema.steward is not None
    plan = PublishingPlan.for_source(schema, source=SOURCES[schema.steward], key_secret=b"s" * 32)
    return decode(plan.record(event).value, InMemorySchemas(STANDARD.values()), schema).datum


@pytest.mark.parametrize("name", sorted(STANDARD))
def test_a_trusted_event_equals_the_validated_one_in_every_way_a_caller_sees(name: str) -> None:
    datum = _datum(name)
    trusted = EVENT_TYPES[name].from_trusted_avro(datum)
    validated = EVENT_TYPES[name].from_avro(datum)
    assert trusted == validated
    assert type(trusted) is type(validated)
    assert trusted.model_dump() == validated.model_dump()
    assert trusted.to_json() == validated.to_json()
    assert trusted.to_avro() == validated.to_avro()
    assert repr(trusted) == repr(validated)  # personal fields hidden alike
    assert trusted.model_fields_set == validated.model_fields_set
    for field in type(trusted).model_fields:
        assert type(getattr(trusted, field)) is type(getattr(validated, field)), field


def test_a_trusted_event_is_frozen_like_any_other() -> None:
    event = EVENT_TYPES["PendudukUpdated"].from_trusted_avro(_datum("PendudukUpdated"))
    with pytest.raises(Exception, match="frozen"):
        event.nik = "3273010101900009"  # type: ignore[misc]


def test_a_datum_of_another_shape_is_validated_and_refused_naming_the_field() -> None:
    datum = _datum("IzinDiterbitkan")
    del datum["nib"]
    with pytest.raises(EventValidationError, match="nib"):
        EVENT_TYPES["IzinDiterbitkan"].from_trusted_avro(datum)
    datum = _datum("IzinDiterbitkan")
    datum["tingkat_risiko"] = "SANGAT_TINGGI"
    with pytest.raises(EventValidationError, match="tingkat_risiko"):
        EVENT_TYPES["IzinDiterbitkan"].from_trusted_avro(datum)


def test_read_record_validates_unless_told_to_trust() -> None:
    schema = STANDARD["IzinDiterbitkan"]
    plan = PublishingPlan.for_source(schema, source=SOURCES["DPMPTSP"])
    unchecked = EVENT_TYPES["IzinDiterbitkan"].from_json(example("IzinDiterbitkan"))
    bad = unchecked.model_copy(update={"nib": "12AB"})  # model_copy does not validate
    record = plan.record(bad)
    resolver = InMemorySchemas(STANDARD.values())
    with pytest.raises(EventValidationError, match="nib"):
        read_record(record.value, record.headers, resolver, STANDARD)
    trusted = read_record(record.value, record.headers, resolver, STANDARD, validate=False)
    assert trusted.event.nib == "12AB"
