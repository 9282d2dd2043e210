"""Subscribers and sinks on projected events: decoding, the contract on a delivery, the checks.

A record written with a subscription's projected schema decodes into that projection's
event class (exactly the allowed fields) with the standard's event type; its contract
headers travel on the delivery and into the webhook body; a SQL sink on projected topics
refuses a column its subscription's contract does not include.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from adapters.config_file import read_config_data
from adapters.kinds import SqlSinkFile
from adapters.sinks.webhook.cloudevent import encode_body, structured_event
from bus.contract import codec
from bus.contract.codec import InMemorySchemas
from bus.contract.contract_headers import DeliveryContract, to_contract_headers
from bus.contract.envelope import DataClassification, Envelope, to_headers
from bus.contract.events import EVENT_TYPES, PendudukUpdated
from bus.contract.message import read_record
from bus.contract.projected_events import ProjectedEvent, projected_event_class
from bus.contract.projection import ProjectedSchema, is_projected, project, projected_topic
from bus.contract.schema import AvroSchema
from bus.contract.standard import load_standard
from bus.delivery import Delivery
from bus.errors import ConfigError, ContractError, EnvelopeError
from bus.ops.catalog import default_catalog_path, read_catalog
from bus.ops.projections import contract_models
from tests.support.events import penduduk

STANDARD = load_standard()
SUBSCRIBER = "dpmptsp-penduduk"
SUBSCRIPTIONS = {sub.subscriber: sub for sub in read_catalog(default_catalog_path()).subscriptions}
SINK_FILE = Path(__file__).resolve().parents[2] / "deploy" / "adapters" / f"{SUBSCRIBER}-sink.yaml"
TOPIC = projected_topic("spbe.dukcapil.penduduk.v1", SUBSCRIBER)
CONTRACT = DeliveryContract(
    subscription=SUBSCRIBER,
    purpose=SUBSCRIPTIONS[SUBSCRIBER].purpose,
    legalbasis=SUBSCRIPTIONS[SUBSCRIBER].legal_basis,
)


def projection(subscriber: str = SUBSCRIBER) -> ProjectedSchema:
    standard = STANDARD["PendudukUpdated"]
    allowed = SUBSCRIPTIONS[subscriber].allowed_fields[str(standard.event_type)]
    return ProjectedSchema.derive(standard, subscriber, allowed)


def registered(projected: ProjectedSchema) -> AvroSchema:
    """The projected schema as a registry holds it: parsed back from its JSON."""
    return AvroSchema.from_json(json.dumps(dict(projected.schema.raw)))


def envelope(event_type: str = "id.go.spbe.dukcapil.PendudukUpdated.v1") -> Envelope:
    return Envelope(
        source="ID/PEMDA-3273/DISDUKCAPIL/siak",
        type=event_type,
        steward="DISDUKCAPIL",
        partitionkey="kunci-pasangan",
        dataclassification=DataClassification.RESTRICTED,
        sequence=4,
    )


def projected_value(event: PendudukUpdated, projected: ProjectedSchema) -> bytes:
    return codec.encode(projected.schema, project(event.avro_datum(), projected))


def test_a_registered_projected_schema_reads_back_as_the_projection_it_was_derived_as() -> None:
    derived = projection()
    back = ProjectedSchema.from_registered(registered(derived), STANDARD["PendudukUpdated"])
    assert back.fingerprint == derived.fingerprint
    assert (back.subscriber, back.event_type) == (SUBSCRIBER, derived.event_type)
    assert back.allowed_fields == derived.allowed_fields
    assert is_projected(back.schema)
    assert not is_projected(STANDARD["PendudukUpdated"])
    event = penduduk(3)
    assert project(event.avro_datum(), back) == project(event.avro_datum(), derived)


def test_a_schema_without_the_projection_attributes_is_not_read_as_a_projection() -> None:
    with pytest.raises(ContractError, match=r"spbe.subscription and spbe.projection_of"):
        ProjectedSchema.from_registered(STANDARD["PendudukUpdated"], STANDARD["PendudukUpdated"])


def test_a_projection_of_another_standard_schema_is_refused_by_name() -> None:
    with pytest.raises(ContractError, match=r"is a projection of .*PendudukUpdated, not of"):
        ProjectedSchema.from_registered(registered(projection()), STANDARD["KematianDicatat"])


def test_a_projected_record_decodes_into_the_projection_class_with_the_standard_type() -> None:
    projected = projection()
    schema = registered(projected)
    source = penduduk(5)
    headers = to_headers(envelope()) + to_contract_headers(CONTRACT)
    incoming = read_record(
        projected_value(source, projected), headers, InMemorySchemas([schema]), STANDARD
    )
    event = incoming.event
    assert isinstance(event, ProjectedEvent)
    assert type(event) is projected_event_class(projected)
    assert set(type(event).model_fields) == {"nik", "nama_lengkap", "alamat", "berlaku_sejak"}
    assert not hasattr(event, "no_kk")
    assert event.nama_lengkap == source.nama_lengkap  # type: ignore[attr-defined]
    assert event.alamat.kode_wilayah == source.alamat.kode_wilayah  # type: ignore[attr-defined]
    assert incoming.envelope.type == "id.go.spbe.dukcapil.PendudukUpdated.v1"
    assert incoming.writer.fingerprint == projected.fingerprint
    assert incoming.contract == CONTRACT


def test_a_raw_record_still_decodes_into_the_standard_event_without_a_contract() -> None:
    schema = STANDARD["PendudukUpdated"]
    source = penduduk(6)
    incoming = read_record(
        codec.encode(schema, source.avro_datum()),
        to_headers(envelope()),
        InMemorySchemas([schema]),
        STANDARD,
    )
    assert type(incoming.event) is EVENT_TYPES["PendudukUpdated"]
    assert incoming.contract is None


def test_a_projection_delivered_under_another_subscription_is_refused() -> None:
    projected = projection()
    other = DeliveryContract("dinsos-penduduk", CONTRACT.purpose, CONTRACT.legalbasis)
    headers = to_headers(envelope()) + to_contract_headers(other)
    with pytest.raises(ContractError, match="under subscription dinsos-penduduk, but"):
        read_record(
            projected_value(penduduk(1), projected),
            headers,
            InMemorySchemas([registered(projected)]),
            STANDARD,
        )


def test_a_projection_under_another_event_type_is_refused() -> None:
    projected = projection()
    headers = to_headers(envelope("id.go.spbe.dukcapil.KematianDicatat.v1"))
    with pytest.raises(ContractError, match=r"no schema|projection of|ce_type"):
        read_record(
            projected_value(penduduk(1), projected),
            headers,
            InMemorySchemas([registered(projected)]),
            STANDARD,
        )


def test_incomplete_contract_headers_are_refused_naming_the_missing_one() -> None:
    projected = projection()
    headers = to_headers(envelope()) + to_contract_headers(CONTRACT)[:2]
    with pytest.raises(EnvelopeError, match="ce_legalbasis is missing"):
        read_record(
            projected_value(penduduk(1), projected),
            headers,
            InMemorySchemas([registered(projected)]),
            STANDARD,
        )


def test_the_webhook_body_carries_the_contract_of_a_projected_delivery() -> None:
    event = penduduk(2)
    with_contract = structured_event(envelope(), event.to_json(), CONTRACT)
    assert with_contract["subscription"] == SUBSCRIBER
    assert with_contract["purpose"] == CONTRACT.purpose
    assert with_contract["legalbasis"] == CONTRACT.legalbasis
    plain = structured_event(envelope(), event.to_json())
    assert not {"subscription", "purpose", "legalbasis"} & set(plain)
    body = json.loads(encode_body(envelope(), event.to_json(), CONTRACT))
    assert body["legalbasis"] == CONTRACT.legalbasis


def test_a_delivery_has_no_contract_unless_it_is_given_one() -> None:
    plain = Delivery(penduduk(1), envelope(), "spbe.dukcapil.penduduk.v1", 0, 0, None, 1)
    assert plain.contract is None


# -- the SQL sink against the subscription's contract ----------------------------------------


def sink_data(topics: list[str]) -> dict[str, Any]:
    data = read_config_data(SINK_FILE)
    data["subscription"]["topics"] = topics
    return data


@pytest.fixture(autouse=True)
def _sink_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DPMPTSP_DB_URL", "sqlite://")
    for name in ("DPMPTSP_PENDUDUK_KAFKA_CREDENTIALS", "SPBE_KAFKA_SECURITY_PROTOCOL"):
        monkeypatch.delenv(name, raising=False)


def test_the_deployed_dpmptsp_mapping_is_within_its_contract_on_the_projected_topic() -> None:
    loaded = SqlSinkFile.model_validate(sink_data([TOPIC]))
    assert loaded.sink.table == "penduduk_replika"


def test_a_column_mapped_from_a_field_outside_the_contract_is_refused_naming_both() -> None:
    data = sink_data([TOPIC])
    data["sink"]["events"]["PendudukUpdated"]["columns"]["no_kk"] = "no_kk"
    with pytest.raises(ValidationError) as caught:
        SqlSinkFile.model_validate(data)
    (error,) = caught.value.errors()
    assert error["loc"] == ("sink", "events", "PendudukUpdated", "columns", "no_kk")
    assert "column no_kk is mapped from field 'no_kk'" in error["msg"]
    assert f"the contract of subscription {SUBSCRIBER} does not include" in error["msg"]


def test_the_same_mapping_on_the_raw_topic_is_checked_against_the_standard_only() -> None:
    data = sink_data(["spbe.dukcapil.penduduk.v1"])
    data["sink"]["events"]["PendudukUpdated"]["columns"]["no_kk"] = "no_kk"
    assert SqlSinkFile.model_validate(data).sink.events["PendudukUpdated"].columns["no_kk"]


def test_an_event_type_outside_the_contract_is_refused() -> None:
    data = sink_data([TOPIC])
    events = data["sink"]["events"]
    events["UmkmTerdaftar"] = {"key": "nik_pemilik", "columns": {"nama_usaha": "nama_usaha"}}
    with pytest.raises(ValidationError, match="does not include event type UmkmTerdaftar"):
        SqlSinkFile.model_validate(data)


def test_another_subscribers_projected_topic_is_refused() -> None:
    topic = projected_topic("spbe.dukcapil.penduduk.v1", "dinsos-penduduk")
    with pytest.raises(ConfigError, match="is the projection for dinsos-penduduk"):
        contract_models([topic], SUBSCRIBER)


def test_projected_and_raw_topics_cannot_be_mixed() -> None:
    with pytest.raises(ConfigError, match="mix projected topics with raw ones"):
        contract_models([TOPIC, "spbe.dukcapil.penduduk.v1"], SUBSCRIBER)


def test_raw_topics_need_no_catalogue() -> None:
    missing = Path("/nonexistent/catalog.yaml")
    assert contract_models(["spbe.dukcapil.penduduk.v1"], SUBSCRIBER, catalog_path=missing) is None
