"""The typed event of a projection: exactly the allowed fields, read by the sinks by path."""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from adapters.kinds import SqlSinkFile
from adapters.runner import load_adapter
from adapters.sinks.sql.config import SqlSinkConfig
from adapters.sinks.sql.fields import reader, resolve
from adapters.sinks.sql.rows import plan_rows
from adapters.sinks.sql.tables import SinkTables, processed_table, target_table
from adapters.sinks.webhook.cloudevent import structured_event
from bus.contract.envelope import DataClassification, Envelope
from bus.contract.events import EVENT_TYPES, JenisKelamin, KematianDicatat, PendudukUpdated
from bus.contract.projected_events import ProjectedEvent, projected_event_class
from bus.contract.projection import ProjectedSchema, project
from bus.contract.standard import load_standard
from bus.delivery import Delivery
from bus.errors import EventValidationError
from bus.ops.catalog import default_catalog_path, read_catalog
from tests.strategies import events, penduduk_updated
from tests.support.events import penduduk

STANDARD = load_standard()
SUBSCRIPTIONS = {sub.subscriber: sub for sub in read_catalog(default_catalog_path()).subscriptions}
SINK_FILE = (
    Path(__file__).resolve().parents[2] / "deploy" / "adapters" / "dpmptsp-penduduk-sink.yaml"
)


def projection(subscriber: str, event_name: str) -> ProjectedSchema:
    standard = STANDARD[event_name]
    allowed = SUBSCRIPTIONS[subscriber].allowed_fields[str(standard.event_type)]
    return ProjectedSchema.derive(standard, subscriber, allowed)


def projected_event(subscriber: str, event: PendudukUpdated | KematianDicatat) -> ProjectedEvent:
    projected = projection(subscriber, event.event_name)
    return projected_event_class(projected).from_trusted_avro(
        project(event.avro_datum(), projected)
    )


def scalar_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    found: set[str] = set()
    for name, info in model.model_fields.items():
        inner = info.annotation
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            found |= scalar_paths(inner, f"{prefix}{name}.")
        else:
            found.add(f"{prefix}{name}")
    return found


def test_the_projected_event_of_dpmptsp_exposes_exactly_its_allowed_fields() -> None:
    event = projected_event("dpmptsp-penduduk", penduduk(7))
    cls = type(event)
    assert set(cls.model_fields) == {"nik", "nama_lengkap", "alamat", "berlaku_sejak"}
    assert scalar_paths(cls) == set(
        SUBSCRIPTIONS["dpmptsp-penduduk"].allowed_fields["id.go.spbe.dukcapil.PendudukUpdated.v1"]
    )
    assert not hasattr(event, "no_kk")
    assert (cls.event_name, cls.avro_name) == ("PendudukUpdated", cls.projection.name)
    assert projected_event_class(cls.projection) is cls


def test_dinsos_reads_no_kk_and_an_enum_of_the_projection_a_string_like_the_standards() -> None:
    source = penduduk(7)
    event = projected_event("dinsos-penduduk", source)
    assert event.no_kk == source.no_kk  # type: ignore[attr-defined]
    kelamin = event.jenis_kelamin  # type: ignore[attr-defined]
    assert isinstance(kelamin, StrEnum)
    assert kelamin == source.jenis_kelamin
    assert set(type(kelamin).__members__) == set(JenisKelamin.__members__)
    assert event.changed_fields == source.changed_fields  # type: ignore[attr-defined]


@given(source=penduduk_updated())
def test_a_projected_event_is_the_standard_events_json_restricted_to_the_contract(
    source: PendudukUpdated,
) -> None:
    for subscriber in ("dpmptsp-penduduk", "dinsos-penduduk", "dinkes-penduduk"):
        event = projected_event(subscriber, source)
        full = source.to_json()
        projected_json = event.to_json()
        for path in SUBSCRIPTIONS[subscriber].allowed_fields[
            "id.go.spbe.dukcapil.PendudukUpdated.v1"
        ]:
            head, _, tail = path.partition(".")
            want = full[head][tail] if tail else full[head]
            assert (projected_json[head][tail] if tail else projected_json[head]) == want
        assert type(event).from_json(projected_json) == event


def test_the_repr_of_a_projected_event_shows_no_personal_data() -> None:
    source = penduduk(7)
    shown = repr(projected_event("dinsos-penduduk", source))
    for value in (source.nik, source.no_kk, source.nama_lengkap, source.alamat.kode_wilayah):
        assert value not in shown
    assert "berlaku_sejak" in shown


def test_a_projected_event_refuses_bad_json_naming_the_field() -> None:
    cls = type(projected_event("dpmptsp-penduduk", penduduk(7)))
    data = projected_event("dpmptsp-penduduk", penduduk(7)).to_json()
    with pytest.raises(EventValidationError) as caught:
        cls.from_json({**data, "berlaku_sejak": "kemarin", "no_kk": "3273020101010001"})
    problems = {problem.field for problem in caught.value.problems}
    assert problems == {"berlaku_sejak", "no_kk"}


# -- the sinks ---------------------------------------------------------------------------


@functools.cache
def sink_config() -> SqlSinkConfig:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DPMPTSP_DB_URL", "sqlite:///dpmptsp.db")
        adapter = load_adapter(SINK_FILE)
    assert isinstance(adapter, SqlSinkFile)
    return adapter.sink


def sink_tables(config: SqlSinkConfig) -> SinkTables:
    metadata = sa.MetaData()
    target = target_table(config, metadata)
    return SinkTables(
        target=target,
        processed=processed_table(config.processed_table, metadata),
        key=target.c[config.key_column],
        version=target.c[config.version_column],
    )


def delivery(event: PendudukUpdated | KematianDicatat | ProjectedEvent) -> Delivery:
    envelope = Envelope(
        source="ID/PEMDA-3273/DISDUKCAPIL/siak",
        type=f"id.go.spbe.dukcapil.{event.event_name}.v1",
        steward="DISDUKCAPIL",
        partitionkey="kunci",
        dataclassification=DataClassification.RESTRICTED,
        sequence=3,
    )
    return Delivery(
        event, envelope, "spbe.dukcapil.penduduk.v1.for.dpmptsp-penduduk", 0, 0, None, 1
    )


@given(data=st.data())
def test_the_sql_sinks_plan_reads_every_mapped_column_from_dpmptsps_projected_events(
    data: st.DataObject,
) -> None:
    config = sink_config()
    tables = sink_tables(config)
    for name, mapping in config.events.items():
        source = data.draw(events(EVENT_TYPES[name]))
        assert isinstance(source, PendudukUpdated | KematianDicatat)
        event = projected_event("dpmptsp-penduduk", source)
        for path in (mapping.key, *mapping.columns.values()):
            assert resolve(type(event), path) == resolve(EVENT_TYPES[name], path)
            assert reader(path)(event) == reader(path)(source)
        plan = plan_rows(mapping, tables)
        projected_change = plan.change(0, delivery(event))
        standard_change = plan.change(0, delivery(source))
        assert projected_change.key == standard_change.key
        assert projected_change.values == standard_change.values
        assert set(projected_change.values) == {*mapping.columns, *mapping.set_}


def test_the_webhook_body_of_a_projected_event_carries_only_its_allowed_fields() -> None:
    source = KematianDicatat(
        nik="3273025708900003",
        no_kk="3273020101080009",
        nama_lengkap="Siti",
        no_akta_kematian="3273-KM-27112026-0001",
        tanggal_meninggal=date(2026, 11, 27),
        kode_wilayah="32.73.02.1003",
        dicatat_pada=datetime(2026, 11, 27, 3, 15, tzinfo=UTC),
    )
    event = projected_event("bkpsdm-penduduk", source)
    body = structured_event(delivery(event).envelope, event.to_json())
    assert body["data"] == {
        "nik": source.nik,
        "no_akta_kematian": source.no_akta_kematian,
        "tanggal_meninggal": "2026-11-27",
    }
