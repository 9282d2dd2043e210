"""Typed events: the examples validate, every form round-trips, and models match the schemas."""

from __future__ import annotations

import copy
import io
import json
import types
import warnings
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import avro.schema
import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from bus.contract.events import EVENT_TYPES, PendudukUpdated, SpbeEvent
from bus.contract.refcodes import RULES, RefCode
from bus.errors import EventValidationError
from tests import strategies

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas" / "avro"
EXAMPLE_DIR = SCHEMA_DIR / "examples"
EVENT_NAMES = sorted(EVENT_TYPES)


def load_schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMA_DIR / f"{name}.avsc").read_text("utf-8"))
    return schema


def load_example(name: str) -> dict[str, Any]:
    example: dict[str, Any] = json.loads((EXAMPLE_DIR / f"{name}.json").read_text("utf-8"))
    return example


def avro_round_trip(event: SpbeEvent) -> SpbeEvent:
    """Write the event with fastavro, read it back, and build the model again."""
    schema = fastavro.parse_schema(load_schema(event.event_name))
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema, event.to_avro())
    buffer.seek(0)
    datum = fastavro.schemaless_reader(buffer, schema)
    assert isinstance(datum, dict)
    return type(event).from_avro(datum)


# --- schemas and examples ---------------------------------------------------------------


def test_every_schema_file_has_an_event_model() -> None:
    """schemas/avro/*.avsc and EVENT_TYPES name the same event types."""
    assert sorted(path.stem for path in SCHEMA_DIR.glob("*.avsc")) == EVENT_NAMES
    assert sorted(path.stem for path in EXAMPLE_DIR.glob("*.json")) == EVENT_NAMES


@pytest.mark.parametrize("name", EVENT_NAMES)
def test_schema_parses_with_fastavro_and_apache_avro(name: str) -> None:
    """Both Avro libraries accept the schema without a warning (e.g. an ignored logical type)."""
    text = (SCHEMA_DIR / f"{name}.avsc").read_text(encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fastavro.parse_schema(json.loads(text))
        parsed = avro.schema.parse(text)
    assert isinstance(parsed, avro.schema.RecordSchema)
    assert parsed.fullname == EVENT_TYPES[name].avro_name


@pytest.mark.parametrize("name", EVENT_NAMES)
def test_schema_governance_attributes(name: str) -> None:
    """Steward, topic, key, classification, version and Dublin Core are present and agree."""
    schema = load_schema(name)
    domain = schema["namespace"].removeprefix("id.go.spbe.")
    assert schema["name"] == name
    assert schema["spbe.steward"]
    assert schema["spbe.topic"] == f"spbe.{domain}.{schema['spbe.aggregate']}.v1"
    assert schema["spbe.version"] == 1
    assert schema["spbe.classification"] in {"public", "internal", "confidential", "restricted"}
    key_field = next(f for f in schema["fields"] if f["name"] == schema["spbe.key"])
    # A key made from personal data must be pseudonymised, and only then.
    assert schema["spbe.key_pseudonymised"] is bool(key_field.get("spbe.pii"))
    dublincore = schema["spbe.dublincore"]
    assert set(dublincore) == {
        "title",
        "creator",
        "subject",
        "description",
        "rights",
        "coverage",
        "identifier",
        "language",
    }
    assert dublincore["identifier"] == f"id.go.spbe.{domain}.{name}.v1"
    assert dublincore["language"] == "id"
    assert dublincore["rights"].startswith(schema["spbe.classification"])


def _all_fields(record: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for spec in record["fields"]:
        found.append(spec)
        branches = spec["type"] if isinstance(spec["type"], list) else [spec["type"]]
        for branch in branches:
            if isinstance(branch, dict) and branch.get("type") == "record":
                found += _all_fields(branch)
    return found


@pytest.mark.parametrize("name", EVENT_NAMES)
def test_every_field_has_a_doc_and_a_known_ref(name: str) -> None:
    """Fields, nested ones too, are documented; spbe.ref names a RefCode."""
    for spec in _all_fields(load_schema(name)):
        assert spec.get("doc"), f"{name}.{spec['name']} has no doc"
        if "spbe.ref" in spec:
            RefCode(spec["spbe.ref"])


@pytest.mark.parametrize("name", EVENT_NAMES)
def test_example_validates_and_serialises_back_to_itself(name: str) -> None:
    """Each example file is a valid event whose JSON form is the file itself."""
    example = load_example(name)
    event = EVENT_TYPES[name].from_json(example)
    assert event.to_json() == example


@pytest.mark.parametrize("name", EVENT_NAMES)
def test_example_round_trips_through_avro(name: str) -> None:
    """from_json -> to_avro -> fastavro write/read -> from_avro gives an equal event."""
    event = EVENT_TYPES[name].from_json(load_example(name))
    assert avro_round_trip(event) == event


@pytest.mark.parametrize("event_type", [EVENT_TYPES[name] for name in EVENT_NAMES])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_generated_events_round_trip(event_type: type[SpbeEvent], data: Any) -> None:
    """Any valid event survives Avro binary and plain JSON unchanged."""
    event = data.draw(strategies.events(event_type))
    assert avro_round_trip(event) == event
    assert event_type.from_json(json.loads(json.dumps(event.to_json()))) == event


# --- validation errors ------------------------------------------------------------------


def test_every_problem_is_listed_with_its_dotted_path() -> None:
    """An input with several bad fields yields one FieldProblem per field, nested ones dotted."""
    data = load_example("PendudukUpdated")
    data["nik"] = "3273023102900003"  # 31 February
    data["jenis_kelamin"] = "WANITA"
    data["tanggal_lahir"] = "17-08-1990"
    data["alamat"]["kode_wilayah"] = "3273021003"  # a BPS-style code
    data["alamat"]["rt"] = "4"
    del data["no_kk"]
    data["hobi"] = "membaca"
    data["changed_fields"] = ["alamat", 7]

    with pytest.raises(EventValidationError) as caught:
        PendudukUpdated.from_json(data)

    problems = {problem.field: problem for problem in caught.value.problems}
    assert set(problems) == {
        "nik",
        "no_kk",
        "tanggal_lahir",
        "jenis_kelamin",
        "alamat.rt",
        "alamat.kode_wilayah",
        "changed_fields[1]",
        "hobi",
    }
    assert problems["nik"].rule == RULES[RefCode.NIK]
    assert "not a real date" in problems["nik"].problem
    assert "looks like a BPS code" in problems["alamat.kode_wilayah"].problem
    assert problems["tanggal_lahir"].rule == "ISO-8601 date YYYY-MM-DD"
    assert problems["jenis_kelamin"].rule == "one of: LAKI_LAKI, PEREMPUAN"
    assert problems["no_kk"].rule == "required field"
    assert caught.value.event_type == "PendudukUpdated"


def test_errors_never_carry_the_nik() -> None:
    """Neither the message nor the traceback chain of a validation error holds a raw NIK."""
    data = load_example("PendudukUpdated")
    data["nik"] = "3273023102900003"
    data["no_kk"] = "3273022301150007x"
    with pytest.raises(EventValidationError) as caught:
        PendudukUpdated.from_json(data)
    assert "3273023102900003" not in str(caught.value)
    assert "3273022301150007" not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_personal_fields_are_left_out_of_repr() -> None:
    """repr() of an event never shows a NIK, a name or an address."""
    event = PendudukUpdated.from_json(load_example("PendudukUpdated"))
    text = repr(event)
    assert event.nik not in text
    assert event.nama_lengkap not in text
    assert event.alamat.jalan not in text


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (1250000.5, "loses cents"),
        ("1250000.005", "3 decimal places"),
        ("1.250.000,00", "not a decimal number"),
        ("-5.00", "is negative"),
        ("12345678901234567.00", "more than 16 digits"),
        ("NaN", "not a decimal number"),
    ],
)
def test_money_rules(value: object, problem: str) -> None:
    """Money is a non-negative decimal(18,2) given as a string."""
    data = load_example("PajakDaerahDibayar")
    data["denda"] = value
    with pytest.raises(EventValidationError) as caught:
        EVENT_TYPES["PajakDaerahDibayar"].from_json(data)
    found = [p for p in caught.value.problems if p.field == "denda"]
    assert len(found) == 1
    assert problem in found[0].problem
    assert "at most 2 decimal places" in found[0].rule


def test_money_accepts_integers_and_fewer_places() -> None:
    """1250000 and "1250000.5" are exact amounts and become two-place decimals."""
    data = load_example("PajakDaerahDibayar")
    data.update(pokok=1250000, denda="25000.5", total="1275000.50")
    event = EVENT_TYPES["PajakDaerahDibayar"].from_json(data)
    assert event.to_json()["pokok"] == "1250000.00"
    assert event.to_json()["denda"] == "25000.50"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("2026-11-28T03:15:00", "no time zone"),
        ("2026-11-28", "no time zone"),
        ("28/11/2026 10:15", "not an ISO-8601"),
        ("2026-02-30T03:15:00Z", "not a real date and time"),
        (1795000000000, "not an ISO-8601"),
    ],
)
def test_instant_rules(value: object, problem: str) -> None:
    """Instants need an ISO-8601 date-time with a time zone."""
    data = load_example("KematianDicatat")
    data["dicatat_pada"] = value
    with pytest.raises(EventValidationError) as caught:
        EVENT_TYPES["KematianDicatat"].from_json(data)
    (found,) = caught.value.problems
    assert found.field == "dicatat_pada"
    assert problem in found.problem


def test_instants_are_normalised_to_utc_milliseconds() -> None:
    """An offset is converted to UTC and sub-millisecond digits are dropped, as on the wire."""
    data = load_example("KematianDicatat")
    data["dicatat_pada"] = "2026-11-28T10:15:00.123456+07:00"
    event = EVENT_TYPES["KematianDicatat"].from_json(data)
    assert event.to_json()["dicatat_pada"] == "2026-11-28T03:15:00.123Z"


def test_dates_must_be_real_and_plain() -> None:
    """31 February and a date-time where a date belongs are refused."""
    data = load_example("KematianDicatat")
    data["tanggal_meninggal"] = "2026-02-31"
    with pytest.raises(EventValidationError) as caught:
        EVENT_TYPES["KematianDicatat"].from_json(data)
    assert caught.value.problems[0].problem == "is not a real calendar date"


def test_cross_field_rules_name_the_field_to_fix() -> None:
    """total = pokok + denda, a PBB payment names its NOP, a permit ends after it starts."""
    pajak = load_example("PajakDaerahDibayar")
    pajak["total"] = "1.00"
    pajak["objek"] = {"nop": None, "npwpd": "P.2.0001234.06.02", "nomor_objek": None}
    with pytest.raises(EventValidationError) as caught:
        EVENT_TYPES["PajakDaerahDibayar"].from_json(pajak)
    assert [p.field for p in caught.value.problems] == ["total"]

    pajak["total"] = "1275000.00"
    with pytest.raises(EventValidationError) as caught:
        EVENT_TYPES["PajakDaerahDibayar"].from_json(pajak)
    assert [p.field for p in caught.value.problems] == ["objek.nop"]

    pajak["objek"] = {"nop": None, "npwpd": None, "nomor_objek": None}
    with pytest.raises(EventValidationError) as caught:
        EVENT_TYPES["PajakDaerahDibayar"].from_json(pajak)
    assert [p.field for p in caught.value.problems] == ["objek"]

    izin = load_example("IzinDiterbitkan")
    izin["berlaku_sampai"] = "2026-01-01"
    with pytest.raises(EventValidationError) as caught:
        EVENT_TYPES["IzinDiterbitkan"].from_json(izin)
    assert [p.field for p in caught.value.problems] == ["berlaku_sampai"]


def test_changed_fields_must_name_fields_of_the_event() -> None:
    """changed_fields lists known field names (alamat.<field> allowed), each once."""
    data = load_example("PendudukUpdated")
    data["changed_fields"] = ["alamat.kode_wilayah", "alamat.kode_wilayah", "gaji"]
    with pytest.raises(EventValidationError) as caught:
        PendudukUpdated.from_json(data)
    (found,) = caught.value.problems
    assert found.field == "changed_fields"
    assert "gaji" in found.problem
    data["changed_fields"] = ["alamat.kode_wilayah", "pekerjaan"]
    assert PendudukUpdated.from_json(data).changed_fields == ("alamat.kode_wilayah", "pekerjaan")


def test_desa_level_is_required_for_an_address() -> None:
    """An address needs a village code; a kecamatan code is refused with the desa rule."""
    data = load_example("PendudukUpdated")
    data["alamat"]["kode_wilayah"] = "32.73.02"
    with pytest.raises(EventValidationError) as caught:
        PendudukUpdated.from_json(data)
    (found,) = caught.value.problems
    assert "names a kecamatan" in found.problem
    assert "desa/kelurahan level" in found.rule


def test_input_that_is_not_an_object_is_refused() -> None:
    """A list or a string is not an event."""
    with pytest.raises(EventValidationError) as caught:
        PendudukUpdated.from_json(["nik"])  # type: ignore[arg-type]
    assert caught.value.problems[0].field == "(event)"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "is empty"),
        (" Ahmad", "spaces before or after"),
        ("Ahmad\nSuherman", "control characters"),
        ("Ahmad \ud800", "broken Unicode"),
        ("A" * 256, "256 characters long"),
        (42, "must be a string"),
    ],
)
def test_text_rules(value: object, problem: str) -> None:
    """Free text is non-empty, trimmed, one line, valid Unicode and at most 255 characters."""
    data = load_example("KematianDicatat")
    data["nama_lengkap"] = value
    with pytest.raises(EventValidationError) as caught:
        EVENT_TYPES["KematianDicatat"].from_json(data)
    (found,) = caught.value.problems
    assert found.field == "nama_lengkap"
    assert problem in found.problem


def test_to_avro_gives_plain_python_values() -> None:
    """to_avro yields date, aware UTC datetime, Decimal and plain str symbols."""
    event = EVENT_TYPES["PajakDaerahDibayar"].from_json(load_example("PajakDaerahDibayar"))
    datum = event.to_avro()
    assert type(datum["jenis_pajak"]) is str
    assert datum["total"] == Decimal("1275000.00")
    assert datum["waktu_bayar"].utcoffset().total_seconds() == 0
    assert isinstance(datum["objek"], dict)


def test_events_are_frozen() -> None:
    """An event cannot be changed after validation."""
    event = PendudukUpdated.from_json(load_example("PendudukUpdated"))
    with pytest.raises(ValueError, match="frozen"):
        event.nama_lengkap = "Orang Lain"


# --- models and schemas cannot drift ----------------------------------------------------

Shape = Any  # a nested description of a field: family, optionality, pii and ref


def _avro_shape(avro_type: Any) -> Shape:
    if isinstance(avro_type, str):
        return {"int": "integer", "long": "integer", "double": "float"}.get(avro_type, avro_type)
    if isinstance(avro_type, list):
        raise AssertionError(f"unions other than [null, T] are not used: {avro_type}")
    logical = avro_type.get("logicalType")
    if logical:
        return {"date": "date", "timestamp-millis": "instant", "decimal": "decimal"}[logical]
    kind = avro_type["type"]
    if kind == "record":
        return ("record", _avro_record(avro_type))
    if kind == "enum":
        return ("enum", tuple(avro_type["symbols"]))
    if kind == "array":
        return ("array", _avro_shape(avro_type["items"]))
    return _avro_shape(kind)


def _avro_record(record: dict[str, Any]) -> dict[str, Shape]:
    fields = {}
    for spec in record["fields"]:
        avro_type, optional = spec["type"], False
        if isinstance(avro_type, list):
            assert avro_type[0] == "null", spec["name"]
            assert len(avro_type) == 2, spec["name"]
            assert "default" in spec, spec["name"]
            assert spec["default"] is None, spec["name"]
            avro_type, optional = avro_type[1], True
        fields[spec["name"]] = (
            _avro_shape(avro_type),
            optional,
            spec.get("spbe.pii", False),
            spec.get("spbe.ref"),
        )
    return fields


def _unwrap(annotation: Any, metadata: list[Any]) -> tuple[Any, bool, list[Any]]:
    """Strip Annotated and Optional; return the bare type, optionality and all metadata."""
    optional = False
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation, *extra = get_args(annotation)
            metadata = [*metadata, *extra]
        elif origin in (Union, types.UnionType):
            members = [arg for arg in get_args(annotation) if arg is not type(None)]
            assert len(members) == 1, annotation
            optional, annotation = True, members[0]
        else:
            return annotation, optional, metadata


def _model_shape(annotation: Any) -> Shape:
    annotation, _, _ = _unwrap(annotation, [])
    if get_origin(annotation) is tuple:
        item, ellipsis = get_args(annotation)
        assert ellipsis is Ellipsis
        return ("array", _model_shape(item))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return ("record", _model_record(annotation))
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return ("enum", tuple(member.value for member in annotation))
    families = [
        (bool, "boolean"),
        (datetime, "instant"),
        (date, "date"),
        (Decimal, "decimal"),
        (int, "integer"),
        (float, "float"),
        (str, "string"),
    ]
    return next(family for kind, family in families if issubclass(annotation, kind))


def _model_record(model: type[BaseModel]) -> dict[str, Shape]:
    fields = {}
    for name, info in model.model_fields.items():
        assert isinstance(info, FieldInfo)
        bare, optional, metadata = _unwrap(info.annotation, list(info.metadata))
        refs = [item.value for item in metadata if isinstance(item, RefCode)]
        pii = info.json_schema_extra == {"spbe.pii": True}
        assert pii is not info.repr, f"{model.__name__}.{name}: personal fields leave repr()"
        assert optional is (not info.is_required()), f"{model.__name__}.{name}"
        fields[name] = (_model_shape(bare), optional, pii, refs[0] if refs else None)
    return fields


@pytest.mark.parametrize("name", EVENT_NAMES)
def test_models_and_schemas_cannot_drift(name: str) -> None:
    """Field names, optionality, type family, enum symbols, spbe.pii and spbe.ref agree."""
    assert _model_record(EVENT_TYPES[name]) == _avro_record(load_schema(name))


def test_the_drift_check_notices_a_change() -> None:
    """Removing a field or changing an enum in the schema makes the comparison fail."""
    schema = load_schema("PendudukUpdated")
    changed = copy.deepcopy(schema)
    changed["fields"] = [f for f in changed["fields"] if f["name"] != "pekerjaan"]
    assert _model_record(PendudukUpdated) != _avro_record(changed)
    changed = copy.deepcopy(schema)
    jenis = next(f for f in changed["fields"] if f["name"] == "jenis_kelamin")
    jenis["type"]["symbols"].append("LAINNYA")
    assert _model_record(PendudukUpdated) != _avro_record(changed)
