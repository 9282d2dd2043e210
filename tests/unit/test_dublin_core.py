"""Each data set's Dublin Core record: drawn from the catalogue and the schemas' attributes,
written as DCMI-terms Turtle that rdflib reads back statement for statement, refused when a
key is no DCMI term, and docs/api/datasets.{json,ttl} are what the command writes today."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rdflib import DCAT, DCMITYPE, DCTERMS, RDF, Graph, Literal, URIRef

from bus.cli.main import main
from bus.contract.schema import AvroSchema
from bus.contract.standard import load_standard
from bus.errors import ConfigError
from bus.ops.catalog import load_catalog
from bus.ops.dublin_core import dataset_records, dataset_uri, records_json, to_turtle

ROOT = Path(__file__).resolve().parents[2]
COMMITTED_JSON = ROOT / "docs" / "api" / "datasets.json"
COMMITTED_TURTLE = ROOT / "docs" / "api" / "datasets.ttl"
STANDARD = load_standard()
CATALOG, _ = load_catalog(standard=STANDARD)
RECORDS = dataset_records(CATALOG, STANDARD)
BY_ID = {r["identifier"]: r for r in RECORDS}


def test_one_record_per_topic_with_the_stewards_and_the_topics_facts() -> None:
    assert [r["identifier"] for r in RECORDS] == [t.name for t in CATALOG.topics]
    penduduk = BY_ID["spbe.dukcapil.penduduk.v1"]
    assert penduduk["creator"] == "Dinas Kependudukan dan Pencatatan Sipil Kota Bandung"
    assert penduduk["publisher"] == penduduk["creator"]
    assert penduduk["accessRights"] == "restricted"
    assert penduduk["spatial"] == "32.73"
    assert penduduk["type"] == "http://purl.org/dc/dcmitype/Dataset"
    assert "application/vnd.apache.avro+json" in penduduk["format"]
    assert penduduk["conformsTo"] == [
        "id.go.spbe.dukcapil.PendudukUpdated", "id.go.spbe.dukcapil.KematianDicatat",
    ]  # fmt: skip


def test_titles_subjects_rights_and_language_come_from_the_schemas_dublin_core() -> None:
    penduduk = BY_ID["spbe.dukcapil.penduduk.v1"]
    assert penduduk["title"] == "Perubahan Data Penduduk; Pencatatan Kematian"
    assert penduduk["subject"] == [
        "kependudukan", "biodata penduduk", "alamat domisili", "pencatatan sipil",
        "akta kematian",
    ]  # fmt: skip
    # both schemas give the same rights text: it is stated once
    assert penduduk["rights"] == [STANDARD["PendudukUpdated"].dublincore["rights"]]
    assert penduduk["language"] == "id"
    assert penduduk["description"][0] == CATALOG.topic("spbe.dukcapil.penduduk.v1").description
    assert len(penduduk["description"]) == 3
    pajak = BY_ID["spbe.bapenda.pajak.v1"]
    assert pajak["title"] == "Pembayaran Pajak Daerah"
    assert "PBB-P2" in pajak["subject"]


def test_dates_and_licence_a_schema_gives_are_carried_and_absent_ones_are_left_out() -> None:
    assert not {"issued", "modified", "temporal", "license"} & set(BY_ID["spbe.bapenda.pajak.v1"])
    raw: dict[str, Any] = json.loads(json.dumps(STANDARD["PajakDaerahDibayar"].raw))
    raw["spbe.dublincore"] |= {
        "issued": "2025-01-15", "modified": "2026-03-01", "temporal": "2024/2026",
        "license": "Perwal Kota Bandung 12/2023",
    }  # fmt: skip
    standard = {**STANDARD, "PajakDaerahDibayar": AvroSchema.from_json(raw)}
    record = {r["identifier"]: r for r in dataset_records(CATALOG, standard)}
    pajak = record["spbe.bapenda.pajak.v1"]
    assert pajak["issued"] == "2025-01-15"
    assert pajak["modified"] == "2026-03-01"
    assert pajak["temporal"] == "2024/2026"
    assert pajak["license"] == "Perwal Kota Bandung 12/2023"


def test_the_turtle_holds_each_dataset_with_one_dcterms_statement_per_value() -> None:
    graph = Graph().parse(data=to_turtle(RECORDS), format="turtle")
    datasets = set(graph.subjects(RDF.type, DCAT.Dataset))
    assert datasets == {URIRef(dataset_uri(r["identifier"])) for r in RECORDS}
    for record in RECORDS:
        subject = URIRef(dataset_uri(record["identifier"]))
        dcterms = [(p, o) for p, o in graph.predicate_objects(subject) if p.startswith(DCTERMS)]
        expected = sum(len(v) if isinstance(v, list) else 1 for v in record.values())
        assert len(dcterms) == expected, record["identifier"]
        assert (subject, DCTERMS.type, DCMITYPE.Dataset) in graph
        assert (subject, DCTERMS.identifier, Literal(record["identifier"])) in graph
        assert (subject, DCTERMS.accessRights, Literal("restricted")) in graph
        keywords = set(graph.objects(subject, DCAT.keyword))
        assert keywords == {Literal(s) for s in record["subject"]}


def test_a_key_that_is_no_dcmi_term_or_a_missing_identifier_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match=r"records\[0\]\.judul: not a term of http://purl"):
        to_turtle([{"identifier": "spbe.x.y.v1", "judul": "Data"}])
    with pytest.raises(ConfigError, match=r"records\[1\]\.identifier: required"):
        to_turtle([RECORDS[0], {"title": "no identifier"}])


def test_an_event_type_missing_from_the_standard_is_named() -> None:
    partial = {k: v for k, v in STANDARD.items() if k != "UmkmTerdaftar"}
    with pytest.raises(ConfigError, match=r"UmkmTerdaftar\.v1, which is not in the data standard"):
        dataset_records(CATALOG, partial)


def test_the_committed_records_are_those_generated_now() -> None:
    hint = "regenerate: spbe-bus catalog metadata [--format turtle] --output docs/api/datasets.*"
    assert COMMITTED_JSON.read_text(encoding="utf-8") == records_json(RECORDS), hint
    assert COMMITTED_TURTLE.read_text(encoding="utf-8") == to_turtle(RECORDS), hint


def test_the_command_writes_json_and_turtle(tmp_path: Path) -> None:
    assert main(["catalog", "metadata", "--output", str(tmp_path / "d.json")]) == 0
    assert main(["catalog", "metadata", "--format", "turtle", "-o", str(tmp_path / "d.ttl")]) == 0
    assert json.loads((tmp_path / "d.json").read_text()) == RECORDS
    graph = Graph().parse(tmp_path / "d.ttl", format="turtle")
    assert len(set(graph.subjects(RDF.type, DCAT.Dataset))) == len(CATALOG.topics)
