"""An event becomes one Kafka record and comes back unchanged; the key never leaks a NIK."""

from __future__ import annotations

import pytest

from bus.contract.codec import InMemorySchemas
from bus.contract.envelope import pseudonymise
from bus.contract.events import EVENT_TYPES
from bus.contract.message import build_record, dataschema_uri, read_record
from bus.contract.standard import example, load_standard
from bus.errors import ConfigError, ContractError

SECRET = b"steward-secret-for-tests-0123456789"
SOURCES = {
    "DISDUKCAPIL": "ID/PEMDA-3273/DISDUKCAPIL/siak",
    "DPMPTSP": "ID/PEMDA-3273/DPMPTSP/sicantik",
    "DINKOPUKM": "ID/PEMDA-3273/DINKOPUKM/siumkm",
    "BAPENDA": "ID/PEMDA-3273/BAPENDA/sipd",
}
STANDARD = load_standard()


@pytest.mark.parametrize("name", sorted(STANDARD))
def test_every_example_survives_the_record_round_trip(name: str) -> None:
    schema = STANDARD[name]
    event = EVENT_TYPES[name].from_json(example(name))
    assert schema.steward is not None
    record = build_record(
        event, schema, source=SOURCES[schema.steward], key_secret=SECRET, sequence=7
    )
    assert record.topic == schema.topic
    back = read_record(record.value, record.headers, InMemorySchemas(STANDARD.values()), STANDARD)
    assert back.event == event
    assert back.envelope == record.envelope
    assert back.envelope.sequence == 7
    assert back.envelope.dataschema == dataschema_uri(schema)
    assert back.writer == schema


def test_a_nik_keyed_event_is_keyed_by_its_pseudonym_and_the_nik_is_in_no_header() -> None:
    event = EVENT_TYPES["PendudukUpdated"].from_json(example("PendudukUpdated"))
    record = build_record(
        event, STANDARD["PendudukUpdated"], source=SOURCES["DISDUKCAPIL"], key_secret=SECRET
    )
    nik = example("PendudukUpdated")["nik"]
    assert record.key == pseudonymise(SECRET, nik).encode()
    assert nik.encode() not in record.key
    assert all(nik.encode() not in value for _, value in record.headers)


def test_a_business_keyed_event_is_keyed_by_its_id_without_a_secret() -> None:
    event = EVENT_TYPES["IzinDiterbitkan"].from_json(example("IzinDiterbitkan"))
    record = build_record(event, STANDARD["IzinDiterbitkan"], source=SOURCES["DPMPTSP"])
    assert record.key == example("IzinDiterbitkan")["nomor_izin"].encode()


def test_a_pseudonymised_key_without_a_secret_is_refused() -> None:
    event = EVENT_TYPES["KematianDicatat"].from_json(example("KematianDicatat"))
    with pytest.raises(ConfigError, match="no steward secret"):
        build_record(event, STANDARD["KematianDicatat"], source=SOURCES["DISDUKCAPIL"])


def test_only_the_steward_may_publish_an_event_type() -> None:
    event = EVENT_TYPES["PendudukUpdated"].from_json(example("PendudukUpdated"))
    with pytest.raises(ContractError, match="may only be published by its steward DISDUKCAPIL"):
        build_record(
            event, STANDARD["PendudukUpdated"], source=SOURCES["DPMPTSP"], key_secret=SECRET
        )


def test_a_source_that_is_not_an_xroad_identifier_is_refused() -> None:
    event = EVENT_TYPES["IzinDiterbitkan"].from_json(example("IzinDiterbitkan"))
    with pytest.raises(ContractError, match="ID/PEMDA-<kode wilayah>/<OPD>/<application>"):
        build_record(event, STANDARD["IzinDiterbitkan"], source="dpmptsp")


def test_an_event_type_outside_the_readers_standard_is_refused() -> None:
    event = EVENT_TYPES["IzinDiterbitkan"].from_json(example("IzinDiterbitkan"))
    record = build_record(event, STANDARD["IzinDiterbitkan"], source=SOURCES["DPMPTSP"])
    headers = [
        (k, b"id.go.spbe.dpmptsp.IzinDicabut.v1" if k == "ce_type" else v)
        for k, v in record.headers
    ]
    with pytest.raises(ContractError, match="not part of this application's data standard"):
        read_record(record.value, headers, InMemorySchemas(STANDARD.values()), STANDARD)
