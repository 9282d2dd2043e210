"""Avro single-object encoding: framing, schema resolution, and every way bytes go wrong."""

from __future__ import annotations

import copy
import io
import struct
from datetime import date
from decimal import Decimal
from typing import Any

import fastavro
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bus.contract.codec import (
    HEADER_LENGTH,
    MARKER,
    InMemorySchemas,
    decode,
    encode,
    header,
    read_header,
)
from bus.contract.schema import AvroSchema
from bus.errors import CodecError, UnknownSchemaError


def pajak_v1_raw() -> dict[str, Any]:
    return {
        "type": "record",
        "name": "PajakDibayar",
        "namespace": "id.go.spbe.bapenda",
        "fields": [
            {"name": "ntpd", "type": "string"},
            {"name": "npwp", "type": "string", "spbe.pii": True},
            {
                "name": "objek",
                "type": {
                    "type": "record",
                    "name": "Objek",
                    "fields": [
                        {"name": "nop", "type": "string"},
                        {"name": "luas_m2", "type": "int"},
                    ],
                },
            },
            {
                "name": "jenis",
                "type": {
                    "type": "enum",
                    "name": "Jenis",
                    "symbols": ["PBB_P2", "BPHTB", "REKLAME"],
                },
            },
            {"name": "tanggal_bayar", "type": {"type": "int", "logicalType": "date"}},
            {
                "name": "total",
                "type": {"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 2},
            },
            {"name": "catatan", "type": ["null", "string"], "default": None},
            {"name": "riwayat", "type": {"type": "array", "items": "Objek"}, "default": []},
        ],
    }


def pajak_v2_raw() -> dict[str, Any]:
    raw = pajak_v1_raw()
    raw["fields"].append({"name": "kanal", "type": ["null", "string"], "default": None})
    return raw


V1 = AvroSchema.from_json(pajak_v1_raw())
V2 = AvroSchema.from_json(pajak_v2_raw())


def datum() -> dict[str, Any]:
    return {
        "ntpd": "NTPD-2025-000123",
        "npwp": "3273014507900002",
        "objek": {"nop": "327301000100100010", "luas_m2": 120},
        "jenis": "PBB_P2",
        "tanggal_bayar": date(2025, 6, 1),
        "total": Decimal("1500000.50"),
        "catatan": None,
        "riwayat": [],
    }


def framed(schema: AvroSchema, record: dict[str, Any]) -> bytes:
    """Single-object bytes built by hand from the spec, without the codec."""
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(copy.deepcopy(dict(schema.raw))), record)
    return b"\xc3\x01" + struct.pack("<Q", schema.fingerprint) + body.getvalue()


# -- framing -------------------------------------------------------------------------------


def test_encoded_value_starts_with_marker_and_little_endian_fingerprint() -> None:
    data = encode(V1, datum())
    assert data[:2] == MARKER == b"\xc3\x01"
    assert data[2:HEADER_LENGTH] == struct.pack("<Q", V1.fingerprint)
    assert read_header(data) == V1.fingerprint


def test_header_matches_the_java_reference_fingerprint_bytes() -> None:
    # Spec vector: {"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"}]}
    # has fingerprint 7843277075252814651 as a Java long; Java writes it little-endian.
    schema = AvroSchema.from_json(
        {"type": "record", "name": "foo", "fields": [{"name": "f1", "type": "boolean"}]}
    )
    assert header(schema) == b"\xc3\x01" + struct.pack("<q", 7843277075252814651)
    assert encode(schema, {"f1": True}) == header(schema) + b"\x01"


def test_plain_fastavro_reads_the_datum_after_the_ten_byte_header() -> None:
    data = encode(V1, datum())
    plain = fastavro.schemaless_reader(io.BytesIO(data[10:]), pajak_v1_raw())
    assert plain == datum()


def test_codec_decodes_bytes_framed_by_hand_from_the_spec() -> None:
    decoded = decode(framed(V1, datum()), InMemorySchemas([V1]))
    assert decoded.writer is V1
    assert decoded.datum == datum()


def test_round_trip_keeps_every_value() -> None:
    record = datum() | {
        "catatan": "lunas",
        "riwayat": [{"nop": "327301000100100011", "luas_m2": 80}],
    }
    writer, decoded = decode(encode(V1, record), InMemorySchemas([V1]))
    assert writer == V1
    assert decoded == record


def test_fields_left_out_take_their_schema_default() -> None:
    record = datum()
    del record["catatan"], record["riwayat"]
    _, decoded = decode(encode(V1, record), InMemorySchemas([V1]))
    assert decoded["catatan"] is None
    assert decoded["riwayat"] == []


@given(
    ntpd=st.text(max_size=40),
    luas=st.integers(min_value=-(2**31), max_value=2**31 - 1),
    total=st.decimals(min_value=-(10**15), max_value=10**15, places=2),
    catatan=st.none() | st.text(max_size=40),
)
def test_any_fitting_datum_survives_a_round_trip(
    ntpd: str, luas: int, total: Decimal, catatan: str | None
) -> None:
    record = datum() | {
        "ntpd": ntpd,
        "objek": {"nop": "327301000100100010", "luas_m2": luas},
        "total": total,
        "catatan": catatan,
    }
    assert decode(encode(V1, record), InMemorySchemas([V1])).datum == record


# -- schema evolution ------------------------------------------------------------------------


def test_a_v2_reader_reads_v1_data_filling_the_added_optional_field() -> None:
    writer, decoded = decode(encode(V1, datum()), InMemorySchemas([V1, V2]), reader=V2)
    assert writer is V1
    assert decoded == datum() | {"kanal": None}


def test_a_v1_reader_reads_v2_data_ignoring_the_added_field() -> None:
    data = encode(V2, datum() | {"kanal": "QRIS"})
    writer, decoded = decode(data, InMemorySchemas([V1, V2]), reader=V1)
    assert writer is V2
    assert decoded == datum()


def test_unresolvable_writer_and_reader_raise_codec_error_with_the_reason() -> None:
    raw = pajak_v1_raw()
    raw["fields"].append({"name": "kanal", "type": "string"})  # required, no default
    strict_reader = AvroSchema.from_json(raw)
    with pytest.raises(CodecError, match="cannot be read as") as caught:
        decode(encode(V1, datum()), InMemorySchemas([V1]), reader=strict_reader)
    assert "kanal" in str(caught.value)


def test_an_enum_symbol_the_reader_lacks_raises_codec_error() -> None:
    raw = pajak_v1_raw()
    raw["fields"][3]["type"]["symbols"] = ["PBB_P2", "BPHTB"]
    reader = AvroSchema.from_json(raw)
    data = encode(V1, datum() | {"jenis": "REKLAME"})
    with pytest.raises(CodecError, match="REKLAME"):
        decode(data, InMemorySchemas([V1]), reader=reader)


# -- bytes that are not a valid value ---------------------------------------------------------


def test_wrong_marker_names_the_bytes_found_and_expected() -> None:
    data = b"\xc3\x02" + encode(V1, datum())[2:]
    with pytest.raises(CodecError, match="expected marker c3 01, found c3 02"):
        decode(data, InMemorySchemas([V1]))


def test_confluent_wire_format_is_recognised_in_the_message() -> None:
    data = b"\x00" + (42).to_bytes(4, "big") + encode(V1, datum())[HEADER_LENGTH:]
    with pytest.raises(CodecError, match="Confluent wire format") as caught:
        read_header(data)
    assert "found 00 00" in str(caught.value)
    assert "schema id 42" in str(caught.value)


def test_json_value_is_recognised_in_the_message() -> None:
    with pytest.raises(CodecError, match="looks like JSON"):
        read_header(b'{"ntpd": "x"}')


def test_empty_value_is_refused_as_not_an_event() -> None:
    with pytest.raises(CodecError, match="tombstone"):
        read_header(b"")


@pytest.mark.parametrize("length", [1, 2, 5, 9])
def test_a_value_shorter_than_the_header_is_refused(length: int) -> None:
    with pytest.raises(CodecError, match="too short"):
        read_header(encode(V1, datum())[:length])


def test_unknown_fingerprint_raises_unknown_schema_error_with_the_fingerprint() -> None:
    with pytest.raises(UnknownSchemaError) as caught:
        decode(encode(V2, datum()), InMemorySchemas([V1]))
    assert caught.value.fingerprint == V2.fingerprint
    assert f"{V2.fingerprint:#018x}" in str(caught.value)
    assert isinstance(caught.value, CodecError)


def test_a_datum_cut_anywhere_raises_truncated() -> None:
    data = encode(V1, datum() | {"riwayat": [{"nop": "327301000100100011", "luas_m2": 80}]})
    for end in range(HEADER_LENGTH, len(data)):
        with pytest.raises(CodecError, match="PajakDibayar value is truncated"):
            decode(data[:end], InMemorySchemas([V1]))


def test_corrupt_bytes_inside_the_datum_raise_codec_error() -> None:
    data = encode(V1, datum())
    corrupt = data[:HEADER_LENGTH] + b"\x06\xff\xfe\xfd" + data[HEADER_LENGTH + 4 :]
    with pytest.raises(CodecError, match="not a valid PajakDibayar datum"):
        decode(corrupt, InMemorySchemas([V1]))


def test_trailing_bytes_after_the_datum_raise_codec_error() -> None:
    data = encode(V1, datum()) + b"\x00\x00\x00"
    with pytest.raises(CodecError, match="3 unexpected bytes after the PajakDibayar datum"):
        decode(data, InMemorySchemas([V1]))


def test_a_resolver_returning_the_wrong_schema_is_caught() -> None:
    class Wrong:
        def schema_for(self, fingerprint: int) -> AvroSchema | None:
            return V2

    with pytest.raises(CodecError, match="resolver returned"):
        decode(encode(V1, datum()), Wrong())


# -- data that does not fit its schema ---------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"ntpd": 123}, "ntpd: expected a string, got int 123"),
        (
            {"objek": {"nop": "x", "luas_m2": "120"}},
            "objek.luas_m2: expected an int, got str '120'",
        ),
        ({"objek": {"nop": "x", "luas_m2": True}}, "objek.luas_m2: expected an int, got bool True"),
        (
            {"objek": {"nop": "x", "luas_m2": 2**31}},
            "objek.luas_m2: int 2147483648 is out of range",
        ),
        ({"objek": {"nop": "x"}}, "objek.luas_m2: is missing, and the field has no default"),
        ({"objek": {"nop": "x", "luas_m2": 1, "rt": 3}}, "objek.rt: is not a field of Objek"),
        ({"jenis": "PBJT"}, "jenis: str 'PBJT' is not a symbol of enum Jenis"),
        (
            {"total": Decimal("10.005")},
            "total: 10.005 has 3 decimal places; decimal(18,2) allows 2",
        ),
        ({"total": 10.5}, "total: expected decimal(18,2) as decimal.Decimal, got float 10.5"),
        ({"tanggal_bayar": "2025-13-01"}, "tanggal_bayar: str '2025-13-01' is not an ISO date"),
        ({"catatan": 7}, "catatan: expected a string, got int 7"),
        ({"riwayat": [{"nop": 1, "luas_m2": 1}]}, "riwayat[0].nop: expected a string, got int 1"),
        ({"kanal": "QRIS"}, "kanal: is not a field of PajakDibayar"),
    ],
)
def test_a_datum_that_does_not_fit_names_the_field_and_the_problem(
    change: dict[str, Any], expected: str
) -> None:
    with pytest.raises(CodecError) as caught:
        encode(V1, datum() | change)
    assert expected in str(caught.value)
    assert "PajakDibayar does not fit its schema" in str(caught.value)


def test_a_missing_required_field_is_named() -> None:
    record = datum()
    del record["ntpd"]
    with pytest.raises(CodecError, match="ntpd: is missing, and the field has no default"):
        encode(V1, record)


def test_every_misfit_field_is_listed_at_once() -> None:
    with pytest.raises(CodecError) as caught:
        encode(V1, datum() | {"ntpd": 1, "jenis": "X", "objek": {"nop": 2, "luas_m2": 1}})
    message = str(caught.value)
    assert "ntpd:" in message
    assert "jenis:" in message
    assert "objek.nop:" in message


def test_a_value_that_is_not_a_mapping_is_refused() -> None:
    with pytest.raises(CodecError, match="expected a mapping of field names, got list"):
        encode(V1, [1, 2])  # type: ignore[arg-type]


def test_values_of_personal_fields_never_appear_in_the_error() -> None:
    with pytest.raises(CodecError) as caught:
        encode(V1, datum() | {"npwp": 3273014507900002})
    message = str(caught.value)
    assert "npwp: expected a string, got an int (value hidden: personal data)" in message
    assert "3273014507900002" not in message


# -- the in-memory resolver -------------------------------------------------------------------


def test_in_memory_schemas_find_by_fingerprint_and_by_name() -> None:
    schemas = InMemorySchemas([V1])
    schemas.add(V2)

    assert schemas.schema_for(V1.fingerprint) is V1
    assert schemas.schema_for(12345) is None
    assert V2.fingerprint in schemas
    assert len(schemas) == 2
    assert set(schemas) == {V1, V2}
    assert schemas.by_name("PajakDibayar") is V2  # the latest added wins
    assert schemas.by_name("id.go.spbe.bapenda.PajakDibayar") is V2
    assert schemas.by_name("Lain") is None
