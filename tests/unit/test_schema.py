"""AvroSchema: canonical form, CRC-64-AVRO fingerprint, governance attributes, loading."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import fastavro.schema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bus.contract.envelope import DataClassification
from bus.contract.schema import AvroSchema, fingerprint64, load_schema_dir
from bus.errors import ConfigError

# -- an independent CRC-64-AVRO, written from the algorithm in the Avro specification ------

_EMPTY = 0xC15D213AA4D7A795


def _table() -> list[int]:
    table = []
    for byte in range(256):
        fp = byte
        for _ in range(8):
            fp = (fp >> 1) ^ (_EMPTY & -(fp & 1))
        table.append(fp)
    return table


_TABLE = _table()


def reference_crc64_avro(data: bytes) -> int:
    fp = _EMPTY
    for byte in data:
        fp = (fp >> 8) ^ _TABLE[(fp ^ byte) & 0xFF]
    return fp


# Test vectors from apache/avro share/test/data/schema-tests.txt: input, Parsing Canonical
# Form, and the fingerprint as the Java reference prints it (a signed 64-bit long).
SPEC_VECTORS = [
    ('"null"', '"null"', 7195948357588979594),
    ('{"type":"null"}', '"null"', 7195948357588979594),
    ('"boolean"', '"boolean"', -6970731678124411036),
    ('"int"', '"int"', 8247732601305521295),
    ('"long"', '"long"', -3434872931120570953),
    ('"float"', '"float"', 5583340709985441680),
    ('"double"', '"double"', -8181574048448539266),
    ('"bytes"', '"bytes"', 5746618253357095269),
    ('"string"', '"string"', -8142146995180207161),
    ("[  ]", "[]", -1241056759729112623),
    ('[ "int"  ]', '["int"]', -5232228896498058493),
    ('[ "int" , {"type":"boolean"} ]', '["int","boolean"]', 5392556393470105090),
    (
        '{"fields":[], "type":"record", "name":"foo"}',
        '{"name":"foo","type":"record","fields":[]}',
        -4824392279771201922,
    ),
    (
        '{"fields":[], "type":"record", "name":"foo", "namespace":"x.y"}',
        '{"name":"x.y.foo","type":"record","fields":[]}',
        5916914534497305771,
    ),
    (
        '{"fields":[], "type":"record", "name":"foo", "doc":"Useful info"}',
        '{"name":"foo","type":"record","fields":[]}',
        -4824392279771201922,
    ),
    (
        '{"fields":[{"type":{"type":"boolean"}, "name":"f1"}], "type":"record", "name":"foo"}',
        '{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"}]}',
        7843277075252814651,
    ),
    (
        '{"namespace":"x.y.z", "type":"enum", "name":"foo", "doc":"foo bar", '
        '"symbols":["A1", "A2"]}',
        '{"name":"x.y.z.foo","type":"enum","symbols":["A1","A2"]}',
        -4448647247586288245,
    ),
    (
        '{"namespace":"x.y.z", "type":"fixed", "name":"foo", "doc":"foo bar", "size":32}',
        '{"name":"x.y.z.foo","type":"fixed","size":32}',
        -3064184465700546786,
    ),
    (
        '{ "items":{"type":"null"}, "type":"array"}',
        '{"type":"array","items":"null"}',
        -589620603366471059,
    ),
    (
        '{ "values":"string", "type":"map"}',
        '{"type":"map","values":"string"}',
        -8732877298790414990,
    ),
    (
        '{"name":"PigValue","type":"record",'
        '"fields":[{"name":"value", "type":["null", "int", "long", "PigValue"]}]}',
        '{"name":"PigValue","type":"record","fields":[{"name":"value",'
        '"type":["null","int","long","PigValue"]}]}',
        -1759257747318642341,
    ),
]


@pytest.mark.parametrize(("text", "canonical", "java_long"), SPEC_VECTORS)
def test_canonical_form_and_fingerprint_match_the_avro_spec_vectors(
    text: str, canonical: str, java_long: int
) -> None:
    assert fastavro.schema.to_parsing_canonical_form(json.loads(text)) == canonical
    assert fingerprint64(canonical) == java_long % 2**64
    assert fingerprint64(canonical) == reference_crc64_avro(canonical.encode())


@given(st.text())
def test_fingerprint_agrees_with_an_independent_crc64_avro_for_any_text(text: str) -> None:
    assert fingerprint64(text) == reference_crc64_avro(text.encode("utf-8"))


def test_fingerprint_is_an_unsigned_64_bit_int() -> None:
    # "boolean" has a negative fingerprint as a Java long
    assert fingerprint64('"boolean"') == -6970731678124411036 + 2**64


# -- a schema with every attribute the bus reads --------------------------------------------


def penduduk_raw() -> dict[str, Any]:
    return {
        "type": "record",
        "name": "PendudukUpdated",
        "namespace": "id.go.spbe.dukcapil",
        "doc": "Data kependudukan berubah.",
        "spbe.steward": "DISDUKCAPIL",
        "spbe.aggregate": "penduduk",
        "spbe.topic": "spbe.dukcapil.penduduk.v1",
        "spbe.key": "nik_token",
        "spbe.key_pseudonymised": True,
        "spbe.classification": "restricted",
        "spbe.version": 1,
        "spbe.dublincore": {
            "identifier": "id.go.spbe.dukcapil.PendudukUpdated.v1",
            "title": "Perubahan data penduduk",
        },
        "fields": [
            {"name": "nik_token", "type": "string"},
            {"name": "nik", "type": "string", "spbe.pii": True, "spbe.ref": "NIK"},
            {"name": "nama_lengkap", "type": "string", "spbe.pii": True},
            {
                "name": "alamat",
                "spbe.pii": True,
                "type": {
                    "type": "record",
                    "name": "Alamat",
                    "fields": [
                        {"name": "jalan", "type": "string", "spbe.pii": True},
                        {
                            "name": "kode_wilayah",
                            "type": "string",
                            "spbe.ref": "KodeWilayahKemendagri",
                        },
                    ],
                },
            },
            {"name": "alamat_domisili", "type": ["null", "Alamat"], "default": None},
            {
                "name": "anggota",
                "type": {
                    "type": "array",
                    "items": {
                        "type": "record",
                        "name": "Anggota",
                        "fields": [{"name": "nik", "type": "string", "spbe.pii": True}],
                    },
                },
            },
            {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["A", "B"]}},
            {"name": "tanggal_lahir", "type": {"type": "int", "logicalType": "date"}},
            {"name": "sequence", "type": "long"},
        ],
    }


def test_governance_attributes_are_read_from_the_schema() -> None:
    schema = AvroSchema.from_json(penduduk_raw())

    assert schema.name == "id.go.spbe.dukcapil.PendudukUpdated"
    assert schema.record_name == "PendudukUpdated"
    assert schema.steward == "DISDUKCAPIL"
    assert schema.aggregate == "penduduk"
    assert schema.topic == "spbe.dukcapil.penduduk.v1"
    assert schema.key_field == "nik_token"
    assert schema.key_pseudonymised is True
    assert schema.classification is DataClassification.RESTRICTED
    assert schema.major == 1
    assert schema.event_type == "id.go.spbe.dukcapil.PendudukUpdated.v1"
    assert schema.dublincore["title"] == "Perubahan data penduduk"


def test_absent_attributes_read_as_none() -> None:
    schema = AvroSchema.from_json(
        {"type": "record", "name": "Polos", "fields": [{"name": "a", "type": "int"}]}
    )
    assert schema.steward is None
    assert schema.topic is None
    assert schema.key_field is None
    assert schema.key_pseudonymised is False
    assert schema.classification is None
    assert schema.major is None
    assert schema.event_type is None
    assert schema.dublincore == {}
    assert schema.pii_fields() == []
    assert schema.ref_fields() == {}


def test_pii_fields_are_found_in_nested_records_unions_and_arrays() -> None:
    schema = AvroSchema.from_json(penduduk_raw())
    assert schema.pii_fields() == [
        "nik",
        "nama_lengkap",
        "alamat",
        "alamat.jalan",
        "alamat_domisili.jalan",
        "anggota[].nik",
    ]


def test_ref_fields_map_paths_to_reference_code_types() -> None:
    schema = AvroSchema.from_json(penduduk_raw())
    assert schema.ref_fields() == {
        "nik": "NIK",
        "alamat.kode_wilayah": "KodeWilayahKemendagri",
        "alamat_domisili.kode_wilayah": "KodeWilayahKemendagri",
    }


def test_custom_attributes_and_docs_do_not_change_the_fingerprint() -> None:
    plain = penduduk_raw()
    for key in [k for k in plain if k.startswith("spbe.") or k == "doc"]:
        del plain[key]
    for spec in plain["fields"]:
        spec.pop("spbe.pii", None)
        spec.pop("spbe.ref", None)

    governed, bare = AvroSchema.from_json(penduduk_raw()), AvroSchema.from_json(plain)

    assert governed.fingerprint == bare.fingerprint
    assert governed.canonical_form == bare.canonical_form
    assert governed != bare  # equality compares the whole JSON, attributes included


def test_json_text_and_a_dict_give_equal_schemas_and_the_dict_is_not_changed() -> None:
    raw = penduduk_raw()
    before = copy.deepcopy(raw)

    from_dict = AvroSchema.from_json(raw)
    from_text = AvroSchema.from_json(json.dumps(raw))

    assert from_dict == from_text
    assert hash(from_dict) == hash(from_text)
    assert from_dict.fingerprint == from_text.fingerprint
    assert raw == before


def test_repr_shows_name_and_fingerprint_in_hex() -> None:
    schema = AvroSchema.from_json(penduduk_raw())
    assert repr(schema) == (
        f"AvroSchema(name='id.go.spbe.dukcapil.PendudukUpdated', "
        f"fingerprint={schema.fingerprint:#018x})"
    )


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ('{"type": "record", "name": "X", ', "not valid JSON"),
        ('"string"', '"type": "record"'),
        ({"type": "enum", "name": "E", "symbols": ["A"]}, '"type": "record"'),
        ({"type": "record", "name": "X", "fields": [{"name": "a", "type": "strng"}]}, "strng"),
        (
            {
                "type": "record",
                "name": "X",
                "fields": [{"name": "a", "type": "int"}, {"name": "a", "type": "int"}],
            },
            "already in use",
        ),
        (
            {
                "type": "record",
                "name": "X",
                "fields": [{"name": "a", "type": "int", "default": "x"}],
            },
            "Default value",
        ),
        (
            {
                "type": "record",
                "name": "X",
                "fields": [{"name": "a", "type": {"type": "int", "logicalType": "tanggal"}}],
            },
            "tanggal",
        ),
        (
            {
                "type": "record",
                "name": "X",
                "fields": [
                    {
                        "name": "a",
                        "type": {
                            "type": "bytes",
                            "logicalType": "decimal",
                            "precision": 2,
                            "scale": 5,
                        },
                    }
                ],
            },
            "scale",
        ),
        ({"type": "record", "name": "1X", "fields": [{"name": "a", "type": "int"}]}, "1X"),
        ({"type": "record", "name": "X", "fields": [{"name": "a", "type": {"int"}}]}, "plain JSON"),
    ],
)
def test_invalid_schemas_are_refused_with_config_error(schema: Any, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        AvroSchema.from_json(schema)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"spbe.version": "1"}, "spbe.version must be an integer"),
        ({"spbe.version": 0}, "spbe.version must be an integer"),
        ({"spbe.classification": "rahasia"}, "'rahasia' is not one of public"),
        ({"spbe.topic": "penduduk"}, "spbe.<domain>.<aggregate>.v<major>"),
        ({"spbe.key": "nik_hash"}, "'nik_hash', which is not a top-level field"),
        ({"spbe.steward": ""}, "spbe.steward must be a non-empty string"),
        ({"spbe.key_pseudonymised": "yes"}, "must be true or false"),
        ({"spbe.dublincore": "PendudukUpdated"}, "must be a JSON object"),
        (
            {"spbe.dublincore": {"identifier": "dukcapil.PendudukUpdated"}},
            r"id\.go\.spbe\.<domain>\.<EventName>\.v<major>",
        ),
        (
            {"spbe.dublincore": {"identifier": "id.go.spbe.dukcapil.KematianDicatat.v1"}},
            "names KematianDicatat, not PendudukUpdated",
        ),
        (
            {"spbe.dublincore": {"identifier": "id.go.spbe.dukcapil.PendudukUpdated.v2"}},
            "disagrees with spbe.version 1",
        ),
    ],
)
def test_malformed_governance_attributes_are_refused_naming_the_attribute(
    change: dict[str, Any], expected: str
) -> None:
    raw = penduduk_raw() | change
    with pytest.raises(ConfigError, match=expected) as caught:
        AvroSchema.from_json(raw)
    assert "record PendudukUpdated" in str(caught.value)


def test_a_non_boolean_pii_tag_is_refused_naming_the_nested_field() -> None:
    raw = penduduk_raw()
    raw["fields"][3]["type"]["fields"][0]["spbe.pii"] = "ya"
    with pytest.raises(ConfigError, match=r"record Alamat, field jalan: spbe\.pii must be"):
        AvroSchema.from_json(raw)


# -- loading a directory ----------------------------------------------------------------------


def _write(directory: Path, name: str, content: Any) -> Path:
    path = directory / name
    path.write_text(content if isinstance(content, str) else json.dumps(content), "utf-8")
    return path


def test_load_schema_dir_keys_schemas_by_record_name(tmp_path: Path) -> None:
    _write(tmp_path, "PendudukUpdated.avsc", penduduk_raw())
    _write(
        tmp_path,
        "Lain.avsc",
        {"type": "record", "name": "Lain", "fields": [{"name": "a", "type": "int"}]},
    )
    _write(tmp_path, "README.md", "not a schema")

    schemas = load_schema_dir(tmp_path)

    assert sorted(schemas) == ["Lain", "PendudukUpdated"]
    assert schemas["PendudukUpdated"].steward == "DISDUKCAPIL"


def test_load_schema_dir_names_the_file_with_invalid_json(tmp_path: Path) -> None:
    bad = _write(tmp_path, "Rusak.avsc", '{"type": "record",\n "name": }')
    with pytest.raises(ConfigError, match="not valid JSON") as caught:
        load_schema_dir(tmp_path)
    assert str(bad) in str(caught.value)
    assert "line 2" in str(caught.value)


def test_load_schema_dir_names_the_file_with_invalid_avro(tmp_path: Path) -> None:
    bad = _write(
        tmp_path,
        "Salah.avsc",
        {"type": "record", "name": "Salah", "fields": [{"name": "a", "type": "teks"}]},
    )
    with pytest.raises(ConfigError, match="not a valid Avro schema") as caught:
        load_schema_dir(tmp_path)
    assert str(bad) in str(caught.value)


def test_load_schema_dir_refuses_two_files_defining_one_record(tmp_path: Path) -> None:
    first = _write(tmp_path, "a.avsc", penduduk_raw())
    second = _write(tmp_path, "b.avsc", penduduk_raw())
    with pytest.raises(ConfigError, match="already defined") as caught:
        load_schema_dir(tmp_path)
    assert str(first) in str(caught.value)
    assert str(second) in str(caught.value)


def test_load_schema_dir_refuses_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_schema_dir(tmp_path / "tidak-ada")


def test_pii_fields_of_a_recursive_schema_are_listed_once() -> None:
    schema = AvroSchema.from_json(
        {
            "type": "record",
            "name": "Keluarga",
            "fields": [
                {"name": "nik", "type": "string", "spbe.pii": True},
                {"name": "anak", "type": {"type": "array", "items": "Keluarga"}},
            ],
        }
    )
    assert schema.pii_fields() == ["nik"]
