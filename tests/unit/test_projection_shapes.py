"""Projecting shapes the standard does not use yet: optional, repeated and shared records."""

from __future__ import annotations

from typing import Any

import pytest

from bus.contract import codec
from bus.contract.projected_events import projected_event_class
from bus.contract.projection import ProjectedSchema, project
from bus.contract.schema import AvroSchema
from bus.errors import ConfigError

TITIK: dict[str, Any] = {
    "type": "record",
    "name": "Titik",
    "fields": [
        {"name": "lat", "type": "double"},
        {"name": "lon", "type": "double"},
        {"name": "sumber", "type": "string"},
    ],
}
SCHEMA = AvroSchema.from_json(
    {
        "type": "record",
        "name": "Contoh",
        "namespace": "id.go.spbe.uji",
        "fields": [
            {"name": "id", "type": "string"},
            {"name": "titik", "type": ["null", TITIK], "default": None},
            {"name": "jalur", "type": {"type": "array", "items": "Titik"}},
            {"name": "tanda", "type": {"type": "map", "values": "Titik"}},
            {
                "name": "warna",
                "type": {"type": "enum", "name": "Warna", "symbols": ["MERAH", "HIJAU"]},
            },
            {"name": "warna_lain", "type": ["null", "Warna"], "default": None},
            {"name": "rahasia", "type": "string"},
        ],
    }
)
ALLOWED = ["id", "titik.lat", "titik.lon", "jalur[].lat", "jalur[].lon", "tanda{}.lat"]
POINT = {"lat": -6.9, "lon": 107.6, "sumber": "gps"}
DATUM = {
    "id": "a-1",
    "titik": POINT,
    "jalur": [POINT, {"lat": 1.0, "lon": 2.0, "sumber": "peta"}],
    "tanda": {"rumah": POINT},
    "warna": "MERAH",
    "warna_lain": None,
    "rahasia": "tidak untuk dibagikan",
}


def test_a_shared_record_used_with_different_fields_in_two_places_is_refused() -> None:
    with pytest.raises(ConfigError, match="record Titik is used at") as caught:
        ProjectedSchema.derive(SCHEMA, "uji", ALLOWED)
    assert "subscription uji, event type id.go.spbe.uji.Contoh" in caught.value.message


def test_optional_repeated_and_mapped_records_are_pruned_and_their_data_projected() -> None:
    allowed = ["id", "titik.lat", "titik.lon", "jalur[].lat", "jalur[].lon"]
    allowed += ["tanda{}.lat", "tanda{}.lon", "warna", "warna_lain"]
    projected = ProjectedSchema.derive(SCHEMA, "uji", allowed)
    assert {path for path, _ in projected.schema.fields()} == {
        "id",
        "titik",
        "jalur",
        "tanda",
        "warna",
        "warna_lain",
        *allowed,
    }
    datum = project(DATUM, projected)
    point = {"lat": -6.9, "lon": 107.6}
    assert datum == {
        "id": "a-1",
        "titik": point,
        "jalur": [point, {"lat": 1.0, "lon": 2.0}],
        "tanda": {"rumah": point},
        "warna": "MERAH",
        "warna_lain": None,
    }
    assert project({**DATUM, "titik": None}, projected)["titik"] is None
    decoded = codec.decode(
        codec.encode(projected.schema, datum), codec.InMemorySchemas([projected.schema])
    )
    assert decoded.datum == datum
    event = projected_event_class(projected).from_trusted_avro(datum)
    assert event.to_json()["jalur"] == [point, {"lat": 1.0, "lon": 2.0}]
    assert event.titik is not None  # type: ignore[attr-defined]
    assert event.titik.lat == -6.9  # type: ignore[attr-defined]
    assert event.warna == "MERAH"  # type: ignore[attr-defined]


def test_an_enum_used_twice_is_defined_once_in_the_projection() -> None:
    projected = ProjectedSchema.derive(SCHEMA, "uji", ["warna_lain", "warna"])
    enums = [n for n, t in projected.schema.named_types.items() if t["type"] == "enum"]
    assert enums == ["id.go.spbe.uji.projected.uji.Warna"]
    assert project(DATUM, projected) == {"warna": "MERAH", "warna_lain": None}


def test_a_recursive_record_is_projected_to_its_allowed_fields_at_each_depth() -> None:
    schema = AvroSchema.from_json(
        {
            "type": "record",
            "name": "Simpul",
            "namespace": "id.go.spbe.uji",
            "fields": [
                {"name": "nama", "type": "string"},
                {"name": "rahasia", "type": "string"},
                {"name": "anak", "type": {"type": "array", "items": "Simpul"}},
            ],
        }
    )
    # A recursive record keeps one definition, so it is projected without its recursion.
    projected = ProjectedSchema.derive(schema, "uji", ["nama"])
    assert project({"nama": "a", "rahasia": "x", "anak": []}, projected) == {"nama": "a"}
