"""Each data set of the catalogue as a Dublin Core record: JSON, and DCMI-terms RDF/Turtle.

Satu Data Indonesia (Perpres 39/2019) asks every data set for its metadata; the bus has it
already, in two reviewed places. A data set is one topic of the catalogue: the events of
one aggregate of one steward (``spbe.dukcapil.penduduk.v1``). Its record joins

* the catalogue's topic and steward: ``identifier`` (the topic), ``creator`` and
  ``publisher`` (the steward), ``spatial`` (the steward's pemda as a kode wilayah
  Kemendagri, ``32.73``), ``accessRights`` (the topic's classification);
* the ``spbe.dublincore`` attribute of each of its event schemas (``schemas/avro``):
  ``title``, ``description``, ``subject`` (split at ``;``), ``rights``, ``language``,
  ``coverage``, and any of ``license``, ``temporal``, ``issued``, ``modified`` a schema
  gives; ``conformsTo`` names the schemas, ``format`` the records' and the schemas' media
  types, ``type`` is DCMI Type ``Dataset``.

:func:`dataset_records` gives the records as JSON-ready dicts keyed by the DCMI term's local
name (``http://purl.org/dc/terms/<key>``); a value is a string, or a list of strings where
the term repeats. :func:`to_turtle` writes them as ``dcat:Dataset`` resources with rdflib.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rdflib import DCAT, DCMITYPE, DCTERMS, RDF, Graph, Literal, URIRef

from bus.contract.schema import AvroSchema
from bus.errors import ConfigError
from bus.ops.catalog import Catalog, CatalogTopic, Steward

__all__ = [
    "DATASET_TYPE",
    "DCTERMS_NAMESPACE",
    "RECORD_FORMATS",
    "REPEATED_TERMS",
    "SCHEMA_TERMS",
    "dataset_records",
    "dataset_uri",
    "records_json",
    "to_turtle",
]

#: The DCMI terms every key of a record names a term of.
DCTERMS_NAMESPACE = "http://purl.org/dc/terms/"
#: DCMI Type of every data set.
DATASET_TYPE = str(DCMITYPE.Dataset)
#: The records' media type (their ``content-type`` header), then their schemas'.
RECORD_FORMATS = ("application/avro", "application/vnd.apache.avro+json")
#: Terms read from the schemas' ``spbe.dublincore`` as they are written.
SCHEMA_TERMS = ("rights", "coverage", "license", "temporal", "issued", "modified")
#: Terms whose value is always a list (the term repeats in RDF).
REPEATED_TERMS = frozenset({"description", "subject", "rights", "conformsTo", "format"})
_URI_TERMS = frozenset({"type"})


def dataset_uri(identifier: str) -> str:
    """The data set's resource in RDF: ``urn:spbe:dataset:<topic>``."""
    return f"urn:spbe:dataset:{identifier}"


def dataset_records(catalog: Catalog, standard: Mapping[str, AvroSchema]) -> list[dict[str, Any]]:
    """One Dublin Core record per topic of ``catalog``, in the catalogue's order.

    Raises :class:`~bus.errors.ConfigError` for an event type the standard lacks.
    """
    by_type = {s.event_type: s for s in standard.values() if s.event_type}
    stewards = {s.id: s for s in catalog.stewards}
    records = []
    for topic in catalog.topics:
        schemas = []
        for event_type in topic.event_types:
            schema = by_type.get(event_type)
            if schema is None:
                raise ConfigError(
                    f"topic {topic.name} carries {event_type}, which is not in the data standard",
                    fix="check the catalogue against the standard: spbe-bus catalog check",
                )
            schemas.append(schema)
        records.append(_record(topic, stewards[topic.steward], schemas))
    return records


def _record(topic: CatalogTopic, steward: Steward, schemas: Sequence[AvroSchema]) -> dict[str, Any]:
    dcs = [s.dublincore for s in schemas]
    titles = _unique(str(dc["title"]) for dc in dcs if dc.get("title"))
    descriptions = _unique(
        [topic.description] if topic.description else [],
        (str(dc["description"]) for dc in dcs if dc.get("description")),
    )
    subjects = _unique(
        part.strip() for dc in dcs for part in str(dc.get("subject", "")).split(";") if part.strip()
    )
    record: dict[str, Any] = {
        "identifier": topic.name,
        "title": "; ".join(titles) or topic.name,
        "description": descriptions,
        "creator": steward.name,
        "publisher": steward.name,
        "subject": subjects,
        "type": DATASET_TYPE,
        "format": list(RECORD_FORMATS),
        "conformsTo": [s.name for s in schemas],
        "accessRights": topic.classification.value,
        "spatial": _kode_wilayah(steward.pemda),
    }
    languages = _unique(str(dc["language"]) for dc in dcs if dc.get("language"))
    if languages:
        record["language"] = languages[0] if len(languages) == 1 else "; ".join(languages)
    for term in SCHEMA_TERMS:
        values = _unique(str(dc[term]) for dc in dcs if dc.get(term))
        if not values:
            continue
        if term in REPEATED_TERMS:
            record[term] = values
        else:
            record[term] = values[0] if len(values) == 1 else "; ".join(values)
    return record


def records_json(records: Iterable[Mapping[str, Any]]) -> str:
    """``records`` as the text of ``docs/api/datasets.json`` (indented, key order kept)."""
    return json.dumps(list(records), indent=2, ensure_ascii=False) + "\n"


def to_turtle(records: Iterable[Mapping[str, Any]]) -> str:
    """``records`` as RDF/Turtle: each a ``dcat:Dataset`` with its ``dcterms:`` statements.

    Raises :class:`~bus.errors.ConfigError` for a record without an ``identifier``, or a
    key that is not a DCMI term.
    """
    graph = Graph()
    graph.bind("dcterms", DCTERMS)
    graph.bind("dcat", DCAT)
    graph.bind("dcmitype", DCMITYPE)
    for i, record in enumerate(records):
        identifier = record.get("identifier")
        if not isinstance(identifier, str) or not identifier:
            raise ConfigError(f"records[{i}].identifier: required, a non-empty string")
        subject = URIRef(dataset_uri(identifier))
        graph.add((subject, RDF.type, DCAT.Dataset))
        for key, value in record.items():
            if f"{DCTERMS_NAMESPACE}{key}" not in DCTERMS:
                raise ConfigError(
                    f"records[{i}].{key}: not a term of {DCTERMS_NAMESPACE}",
                    fix="name each value after its DCMI term (title, creator, subject, ...)",
                )
            values = value if isinstance(value, list) else [value]
            for item in values:
                node = URIRef(item) if key in _URI_TERMS else Literal(str(item))
                graph.add((subject, DCTERMS[key], node))
        for keyword in record.get("subject", []):
            graph.add((subject, DCAT.keyword, Literal(keyword)))
    return graph.serialize(format="turtle")


def _kode_wilayah(pemda: str) -> str:
    """``3273`` -> ``32.73``; a province's ``32`` stays."""
    return ".".join(pemda[i : i + 2] for i in range(0, len(pemda), 2))


def _unique(*parts: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(item for part in parts for item in part))
