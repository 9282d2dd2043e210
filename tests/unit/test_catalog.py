"""The catalogue: the shipped file is valid, and every kind of mistake is named."""

from __future__ import annotations

import copy
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from bus.errors import ConfigError
from bus.ops.catalog import Catalog, default_catalog_path, load_catalog, read_catalog

PENDUDUK = "id.go.spbe.dukcapil.PendudukUpdated.v1"
KEMATIAN = "id.go.spbe.dukcapil.KematianDicatat.v1"
TODAY = date(2026, 6, 1)

BASE: dict[str, Any] = {
    "stewards": [{"id": "DISDUKCAPIL", "name": "Disdukcapil Kota Bandung", "pemda": "3273"}],
    "topics": [
        {
            "name": "spbe.dukcapil.penduduk.v1",
            "steward": "DISDUKCAPIL",
            "event_types": [PENDUDUK, KEMATIAN],
            "partitions": 6,
            "replication_factor": 3,
            "retention_ms": -1,
            "cleanup_policy": "delete",
            "classification": "restricted",
        }
    ],
    "subscriptions": [
        {
            "subscriber": "dinsos-penduduk",
            "opd": "DINSOS",
            "topics": ["spbe.dukcapil.penduduk.v1"],
            "purpose": "Pemutakhiran data penerima bansos.",
            "legal_basis": "PKS 470/0877/DISDUKCAPIL/2025",
            "allowed_fields": {PENDUDUK: ["nik", "alamat.kode_wilayah"], KEMATIAN: ["nik"]},
            "expires": "2027-12-31",
        }
    ],
}


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def changed(**edits: Any) -> dict[str, Any]:
    """BASE with ``section=(index, key, value)`` edits applied."""
    data = copy.deepcopy(BASE)
    for section, (index, key, value) in edits.items():
        data[section][index][key] = value
    return data


def problems(tmp_path: Path, data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        load_catalog(write(tmp_path, data), today=TODAY)
    return str(caught.value)


def test_the_shipped_catalogue_is_valid_and_covers_the_five_standard_event_types() -> None:
    catalog, report = load_catalog(default_catalog_path(), today=TODAY)
    assert report.errors == []
    carried = {t for topic in catalog.topics for t in topic.event_types}
    assert len(carried) == 5
    assert all(s.legal_basis for s in catalog.subscriptions)
    assert {"DPMPTSP", "DINSOS", "BAPENDA"} <= {s.opd for s in catalog.subscriptions}


def test_a_valid_catalogue_loads_with_derived_defaults(tmp_path: Path) -> None:
    catalog, report = load_catalog(write(tmp_path, BASE), today=TODAY)
    assert report.errors == []
    assert report.warnings == []
    topic = catalog.topic("spbe.dukcapil.penduduk.v1")
    assert topic.effective_min_insync_replicas == 2, "three replicas survive one loss"
    assert catalog.subscribers() == {"dinsos-penduduk": ("spbe.dukcapil.penduduk.v1",)}
    assert catalog.dead_letters.retention_ms == -1, "dead letters wait for an operator"


def test_an_unknown_key_is_named_with_its_path(tmp_path: Path) -> None:
    message = problems(tmp_path, changed(topics=(0, "retention", 1000)))
    assert "topics[0].retention: unknown key" in message


def test_a_topic_name_outside_the_naming_rule_is_refused(tmp_path: Path) -> None:
    message = problems(tmp_path, changed(topics=(0, "name", "penduduk-topic")))
    assert "topics[0].name" in message


def test_a_subscription_to_a_topic_not_in_the_catalogue_is_refused(tmp_path: Path) -> None:
    message = problems(tmp_path, changed(subscriptions=(0, "topics", ["spbe.dukcapil.kk.v1"])))
    assert "spbe.dukcapil.kk.v1 is not a topic of this catalogue" in message


def test_a_topic_whose_steward_is_not_listed_is_refused(tmp_path: Path) -> None:
    message = problems(tmp_path, changed(topics=(0, "steward", "DISPENDUK")))
    assert "'DISPENDUK' is not in stewards" in message


def test_an_event_type_missing_from_the_standard_is_refused(tmp_path: Path) -> None:
    data = changed(topics=(0, "event_types", [PENDUDUK, "id.go.spbe.dukcapil.KkDiterbitkan.v1"]))
    data["subscriptions"][0]["allowed_fields"] = {PENDUDUK: ["nik"]}
    message = problems(tmp_path, data)
    assert "KkDiterbitkan.v1 is not in the data standard" in message


def test_a_topic_classified_lower_than_its_events_is_refused(tmp_path: Path) -> None:
    message = problems(tmp_path, changed(topics=(0, "classification", "internal")))
    assert "internal is lower than restricted" in message


def test_a_topic_whose_steward_does_not_steward_its_events_is_refused(tmp_path: Path) -> None:
    data = changed(topics=(0, "steward", "BAPENDA"))
    data["stewards"].append({"id": "BAPENDA", "name": "Bapenda", "pemda": "3273"})
    message = problems(tmp_path, data)
    assert "BAPENDA does not steward PendudukUpdated" in message


def test_an_allowed_field_the_schema_does_not_have_is_refused(tmp_path: Path) -> None:
    data = changed(subscriptions=(0, "allowed_fields", {PENDUDUK: ["nik", "gaji"]}))
    message = problems(tmp_path, data)
    assert "'gaji' is not a field of PendudukUpdated" in message


def test_an_allowed_field_that_is_a_whole_record_is_refused_as_the_projection_refuses_it(
    tmp_path: Path,
) -> None:
    data = copy.deepcopy(BASE)
    data["subscriptions"][0]["allowed_fields"] = {PENDUDUK: ["nik", "alamat"], KEMATIAN: ["nik"]}
    message = problems(tmp_path, data)
    assert (
        f"subscriptions[0] (dinsos-penduduk).allowed_fields.{PENDUDUK}: allowed field 'alamat' "
        "is a whole record" in message
    )
    assert "fix: list the fields you need instead: alamat.jalan," in message


def test_allowed_fields_for_an_event_the_subscription_does_not_receive_are_refused(
    tmp_path: Path,
) -> None:
    data = changed(
        subscriptions=(0, "allowed_fields", {"id.go.spbe.bapenda.PajakDaerahDibayar.v1": ["x"]})
    )
    message = problems(tmp_path, data)
    assert "PajakDaerahDibayar.v1 is not carried by its topics" in message


def test_more_insync_replicas_than_replicas_is_refused(tmp_path: Path) -> None:
    message = problems(tmp_path, changed(topics=(0, "min_insync_replicas", 4)))
    assert "every acks=all write would fail" in message


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    data = changed(topics=(0, "classification", "public"))
    data["subscriptions"][0]["allowed_fields"] = {PENDUDUK: ["gaji"]}
    message = problems(tmp_path, data)
    assert "3 problems" in message, "two events outrank the topic, one field is unknown"


def test_an_expired_subscription_is_reported_but_not_refused(tmp_path: Path) -> None:
    catalog, report = load_catalog(write(tmp_path, BASE), today=date(2028, 1, 1))
    assert [s.subscriber for s in catalog.expired(date(2028, 1, 1))] == ["dinsos-penduduk"]
    assert len(report.warnings) == 1
    assert "expired on 2027-12-31" in report.warnings[0]
    assert "PKS 470/0877/DISDUKCAPIL/2025" in report.warnings[0]


def test_a_topic_not_named_in_the_schema_is_a_warning_about_topic_overrides(
    tmp_path: Path,
) -> None:
    data = changed(topics=(0, "name", "spbe.dukcapil.biodata.v1"))
    data["subscriptions"][0]["topics"] = ["spbe.dukcapil.biodata.v1"]
    _, report = load_catalog(write(tmp_path, data), today=TODAY)
    assert any("topic_overrides" in w for w in report.warnings)


def test_the_models_are_frozen(tmp_path: Path) -> None:
    catalog = read_catalog(write(tmp_path, BASE))
    assert isinstance(catalog, Catalog)
    with pytest.raises(ValueError, match="frozen"):
        catalog.topics[0].partitions = 1


def test_a_file_that_is_not_yaml_is_refused_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text("topics: [unclosed\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        read_catalog(path)
