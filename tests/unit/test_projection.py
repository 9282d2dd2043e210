"""A subscription's projection of the standard: topic names, pruned schemas, projected data.

The contracts are the catalogue's own (deploy/catalog.yaml): DPMPTSP gets no No. KK, Dinsos
does, BKPSDM gets only KematianDicatat.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Mapping
from typing import Any

import fastavro
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bus.contract import codec
from bus.contract.compatibility import CompatibilityMode, incompatibilities
from bus.contract.events import EVENT_TYPES, SpbeEvent
from bus.contract.names import TOPIC_PATTERN
from bus.contract.projection import (
    ATTR_PROJECTION_OF,
    ATTR_SUBSCRIPTION,
    ProjectedSchema,
    ProjectedTopic,
    parse_projected_topic,
    project,
    projected_namespace,
    projected_topic,
)
from bus.contract.schema import AvroSchema, fingerprint64
from bus.contract.standard import load_standard
from bus.errors import ConfigError, ContractError
from bus.ops.catalog import Subscription, default_catalog_path, read_catalog
from tests.strategies import events
from tests.support.events import penduduk

STANDARD = load_standard()
BY_TYPE = {schema.event_type: schema for schema in STANDARD.values()}
SUBSCRIPTIONS = {sub.subscriber: sub for sub in read_catalog(default_catalog_path()).subscriptions}
PENDUDUK = "id.go.spbe.dukcapil.PendudukUpdated.v1"
KEMATIAN = "id.go.spbe.dukcapil.KematianDicatat.v1"
CONTRACTS = [
    (sub.subscriber, event_type)
    for sub in SUBSCRIPTIONS.values()
    for event_type in sub.allowed_fields
]


def projection(subscriber: str, event_type: str) -> ProjectedSchema:
    sub: Subscription = SUBSCRIPTIONS[subscriber]
    return ProjectedSchema.derive(BY_TYPE[event_type], subscriber, sub.allowed_fields[event_type])


def paths(schema: AvroSchema) -> set[str]:
    return {path for path, _ in schema.fields()}


def event_class(event_type: str) -> type[SpbeEvent]:
    return EVENT_TYPES[BY_TYPE[event_type].record_name]


# -- topics -------------------------------------------------------------------------------


def test_a_projected_topic_is_the_raw_topic_for_the_subscriber_and_reads_back() -> None:
    name = projected_topic("spbe.dukcapil.penduduk.v1", "dpmptsp-penduduk")
    assert name == "spbe.dukcapil.penduduk.v1.for.dpmptsp-penduduk"
    assert parse_projected_topic(name) == ProjectedTopic(
        "spbe.dukcapil.penduduk.v1", "dpmptsp-penduduk"
    )
    assert projection("dpmptsp-penduduk", PENDUDUK).topic == name


@given(
    raw=st.from_regex(TOPIC_PATTERN, fullmatch=True).filter(lambda t: len(t) < 120),
    subscriber=st.from_regex(r"[a-z0-9][a-z0-9._-]{0,60}", fullmatch=True),
)
def test_every_projected_topic_reads_back_to_its_raw_topic_and_subscriber(
    raw: str, subscriber: str
) -> None:
    assert parse_projected_topic(projected_topic(raw, subscriber)) == (raw, subscriber)


@pytest.mark.parametrize(
    ("raw", "subscriber", "named"),
    [
        ("penduduk", "dinsos-penduduk", "'penduduk' is not of the form spbe."),
        ("spbe.dukcapil.penduduk.v1", "Dinsos", "subscriber id 'Dinsos'"),
        ("spbe.dukcapil.penduduk.v1", "", "subscriber id ''"),
        ("spbe.dukcapil.penduduk.v1", "a" * 101, "1 to 100 lowercase"),
    ],
)
def test_a_projected_topic_of_a_bad_topic_or_subscriber_is_refused(
    raw: str, subscriber: str, named: str
) -> None:
    with pytest.raises(ContractError, match=named) as caught:
        projected_topic(raw, subscriber)
    assert caught.value.fix


@pytest.mark.parametrize(
    "topic",
    [
        "spbe.dukcapil.penduduk.v1",
        "spbe.dukcapil.penduduk.v1.dlq.dinsos-penduduk",
        "spbe.dukcapil.penduduk.v1.for.",
        "spbe.dukcapil.penduduk.for.dinsos",
    ],
)
def test_a_topic_that_is_not_projected_is_refused_when_read_back(topic: str) -> None:
    with pytest.raises(ContractError, match="is not a projected topic"):
        parse_projected_topic(topic)


# -- schemas ------------------------------------------------------------------------------


@pytest.mark.parametrize(("subscriber", "event_type"), CONTRACTS)
def test_every_catalogue_contract_projects_to_exactly_its_allowed_fields(
    subscriber: str, event_type: str
) -> None:
    projected = projection(subscriber, event_type)
    allowed = set(SUBSCRIPTIONS[subscriber].allowed_fields[event_type])
    parents = {path.rpartition(".")[0] for path in allowed if "." in path}
    assert paths(projected.schema) == allowed | parents
    assert projected.allowed_fields == SUBSCRIPTIONS[subscriber].allowed_fields[event_type]


def test_dpmptsp_gets_no_no_kk_dinsos_does_and_bkpsdm_gets_only_deaths() -> None:
    assert "no_kk" not in paths(projection("dpmptsp-penduduk", PENDUDUK).schema)
    assert "no_kk" not in paths(projection("dpmptsp-penduduk", KEMATIAN).schema)
    assert "no_kk" in paths(projection("dinsos-penduduk", PENDUDUK).schema)
    assert "no_kk" in paths(projection("dinsos-penduduk", KEMATIAN).schema)
    assert list(SUBSCRIPTIONS["bkpsdm-penduduk"].allowed_fields) == [KEMATIAN]
    assert paths(projection("bkpsdm-penduduk", KEMATIAN).schema) == {
        "nik",
        "no_akta_kematian",
        "tanggal_meninggal",
    }


def test_a_projected_schema_has_its_own_name_and_fingerprint_and_the_standards_metadata() -> None:
    standard = BY_TYPE[PENDUDUK]
    projected = projection("dpmptsp-penduduk", PENDUDUK)
    schema = projected.schema
    assert projected.name == "id.go.spbe.dukcapil.projected.dpmptsp_penduduk.PendudukUpdated"
    assert schema.named_types["id.go.spbe.dukcapil.projected.dpmptsp_penduduk.Alamat"]
    assert projected.fingerprint == fingerprint64(schema.canonical_form) != standard.fingerprint
    assert schema.single_object_header == b"\xc3\x01" + projected.fingerprint.to_bytes(8, "little")
    assert schema.dublincore == standard.dublincore
    assert projected.event_type == standard.event_type == PENDUDUK
    for attribute in ("doc", "spbe.steward", "spbe.classification", "spbe.version", "spbe.key"):
        assert schema.raw[attribute] == standard.raw[attribute]
    assert schema.raw[ATTR_SUBSCRIPTION] == "dpmptsp-penduduk"
    assert schema.raw[ATTR_PROJECTION_OF] == standard.name
    assert "dpmptsp-penduduk" in repr(projected)


def test_kept_fields_keep_their_docs_defaults_logical_types_and_governance_attributes() -> None:
    standard = dict(BY_TYPE[PENDUDUK].fields())
    allowed = ["nik", "pendidikan_terakhir", "alamat.kode_wilayah", "alamat.kode_pos"]
    projected = ProjectedSchema.derive(BY_TYPE[PENDUDUK], "dinsos-penduduk", allowed)
    for path, spec in projected.schema.fields():
        for attribute in ("doc", "default", "spbe.pii", "spbe.ref"):
            assert spec.get(attribute) == standard[path].get(attribute), (path, attribute)
    assert projected.schema.ref_fields() == {
        "nik": "NIK",
        "alamat.kode_wilayah": "KodeWilayahKemendagri",
    }
    assert set(projected.schema.pii_fields()) == set(allowed)
    dated = ProjectedSchema.derive(BY_TYPE[PENDUDUK], "dinsos-penduduk", ["berlaku_sejak"])
    assert dict(dated.schema.fields())["berlaku_sejak"]["type"] == {
        "type": "int",
        "logicalType": "date",
    }


def test_a_projection_without_the_key_field_does_not_name_a_key() -> None:
    projected = ProjectedSchema.derive(BY_TYPE[PENDUDUK], "dinkes-penduduk", ["nama_lengkap"])
    assert projected.schema.key_field is None
    assert projected.schema.key_pseudonymised


@pytest.mark.parametrize(
    ("allowed", "named", "fix"),
    [
        (["nik", "no_kkk"], "'no_kkk' is not a field of PendudukUpdated", "did you mean 'no_kk'"),
        (["qqqqqqqqqq"], "'qqqqqqqqqq' is not a field", "use one of: nik, no_kk,"),
        (["alamat"], "'alamat' is a whole record", "instead: alamat.jalan, alamat.rt"),
        ([], "allowed_fields is empty", "list dotted field paths"),
    ],
)
def test_a_path_outside_the_schema_is_refused_naming_subscriber_event_type_and_path(
    allowed: list[str], named: str, fix: str
) -> None:
    with pytest.raises(ConfigError, match=named) as caught:
        ProjectedSchema.derive(BY_TYPE[PENDUDUK], "dinsos-penduduk", allowed)
    assert caught.value.message.startswith(f"subscription dinsos-penduduk, event type {PENDUDUK}")
    assert fix in (caught.value.fix or "")


def newer_standard() -> AvroSchema:
    """PendudukUpdated with a new top-level field and a new Alamat field, both optional."""
    raw: dict[str, Any] = copy.deepcopy(dict(BY_TYPE[PENDUDUK].raw))
    raw["fields"].append(
        {"name": "email", "type": ["null", "string"], "default": None, "spbe.pii": True}
    )
    alamat = next(spec for spec in raw["fields"] if spec["name"] == "alamat")
    alamat["type"]["fields"].append({"name": "dusun", "type": ["null", "string"], "default": None})
    return AvroSchema.from_json(raw)


@pytest.mark.parametrize("subscriber", ["dpmptsp-penduduk", "dinsos-penduduk"])
def test_a_field_added_to_the_standard_is_not_projected_until_the_contract_lists_it(
    subscriber: str,
) -> None:
    allowed = SUBSCRIPTIONS[subscriber].allowed_fields[PENDUDUK]
    old = ProjectedSchema.derive(BY_TYPE[PENDUDUK], subscriber, allowed)
    new = ProjectedSchema.derive(newer_standard(), subscriber, allowed)
    assert {"email", "alamat.dusun"}.isdisjoint(paths(new.schema))
    assert new.schema == old.schema
    listed = ProjectedSchema.derive(newer_standard(), subscriber, [*allowed, "email"])
    assert "email" in paths(listed.schema)


@pytest.mark.parametrize("subscriber", ["dpmptsp-penduduk", "dinsos-penduduk", "dinkes-penduduk"])
def test_the_projection_of_a_newer_standard_stays_backward_compatible(subscriber: str) -> None:
    allowed = SUBSCRIPTIONS[subscriber].allowed_fields[PENDUDUK]
    old = ProjectedSchema.derive(BY_TYPE[PENDUDUK], subscriber, allowed)
    new = ProjectedSchema.derive(newer_standard(), subscriber, allowed)
    mode = CompatibilityMode.BACKWARD
    assert incompatibilities(new.schema, [old.schema], mode) == []
    # What a widened contract means for the projected subject: a field with a default is a
    # compatible addition, one without is not (the contract service must plan for it).
    with_default = ProjectedSchema.derive(newer_standard(), subscriber, [*allowed, "email"])
    assert incompatibilities(with_default.schema, [old.schema], mode) == []
    if "no_kk" not in allowed:
        widened = ProjectedSchema.derive(BY_TYPE[PENDUDUK], subscriber, [*allowed, "no_kk"])
        (reason,) = incompatibilities(widened.schema, [old.schema], mode)
        assert "field 'no_kk' was added without a default" in reason


# -- data ---------------------------------------------------------------------------------


def fastavro_roundtrip(schema: AvroSchema, datum: Mapping[str, Any]) -> Any:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, schema.parsed, datum)
    return fastavro.schemaless_reader(io.BytesIO(out.getvalue()), schema.parsed, None)


@pytest.mark.parametrize(("subscriber", "event_type"), CONTRACTS)
@given(data=st.data())
def test_a_projected_datum_holds_only_the_allowed_fields_and_encodes_with_its_schema(
    subscriber: str, event_type: str, data: st.DataObject
) -> None:
    projected = projection(subscriber, event_type)
    event = data.draw(events(event_class(event_type)))
    standard = event.avro_datum()
    datum = project(standard, projected)
    top = {path.partition(".")[0] for path in projected.allowed_fields}
    assert set(datum) == top
    for path in projected.allowed_fields:
        head, _, tail = path.partition(".")
        expected = standard[head][tail] if tail else standard[head]
        assert (datum[head][tail] if tail else datum[head]) == expected
    for head in top:
        below = {p.partition(".")[2] for p in projected.allowed_fields if p.startswith(f"{head}.")}
        if below:
            assert set(datum[head]) == below
    written = codec.encode(projected.schema, datum)
    decoded = codec.decode(written, codec.InMemorySchemas([projected.schema]))
    assert decoded.writer == projected.schema
    assert decoded.datum == fastavro_roundtrip(projected.schema, datum)


def test_a_datum_lacking_a_kept_field_is_refused_naming_the_field() -> None:
    projected = projection("dpmptsp-penduduk", PENDUDUK)
    datum = penduduk(1).avro_datum()
    datum["alamat"] = {k: v for k, v in datum["alamat"].items() if k != "rt"}
    with pytest.raises(ContractError, match=r"has no field 'alamat\.rt'") as caught:
        project(datum, projected)
    assert datum["nik"] not in str(caught.value)


@pytest.mark.parametrize(
    ("subscriber", "namespace"),
    [
        ("dpmptsp-penduduk", "id.go.spbe.dukcapil.projected.dpmptsp_penduduk"),
        ("opd.satu", "id.go.spbe.dukcapil.projected.opd_satu"),
        ("3273-dinsos", "id.go.spbe.dukcapil.projected._3273_dinsos"),
    ],
)
def test_every_subscriber_id_makes_a_valid_avro_namespace(subscriber: str, namespace: str) -> None:
    assert projected_namespace("id.go.spbe.dukcapil", subscriber) == namespace
    projected = ProjectedSchema.derive(BY_TYPE[KEMATIAN], subscriber, ["nik"])
    assert projected.name == f"{namespace}.KematianDicatat"
