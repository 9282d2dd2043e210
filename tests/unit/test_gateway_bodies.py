"""A posted body becomes a typed event exactly as `spbe-bus events validate` decides, or a
problem document that names what is wrong and never repeats what was sent."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from adapters.gateway.ingress import BodyRejected, parse_event
from bus.cli.main import main
from bus.contract.events import EVENT_TYPES
from bus.contract.schema import AvroSchema
from bus.contract.standard import default_schema_dir, example, load_standard
from bus.contract.validation import known_event_names, schema_problems, validate_json_event
from bus.errors import ConfigError, EventValidationError

STANDARD = load_standard()
NIK = example("PendudukUpdated")["nik"]


def rejected(event_name: str, body: bytes, **kwargs: Any) -> BodyRejected:
    with pytest.raises(BodyRejected) as caught:
        parse_event(event_name, body, **kwargs)
    assert caught.value.problem["status"] == caught.value.status
    return caught.value


def _bad_umkm() -> dict[str, Any]:
    data = example("UmkmTerdaftar")
    data["nib"] = "12"
    data["kbli"]["kode"] = "5610"
    data["kode_wilayah"] = "3273020003"
    del data["skala_usaha"]
    data["catatan"] = "not a field"
    return data


def _bad_penduduk() -> dict[str, Any]:
    data = example("PendudukUpdated")
    data["tanggal_lahir"] = "1990-02-31"
    data["alamat"]["kode_wilayah"] = "3273020003"
    del data["agama"]
    return data


def _printed_problems(capsys: pytest.CaptureFixture[str]) -> list[str]:
    err = capsys.readouterr().err
    return [line[4:] for line in err.splitlines() if line.startswith("  - ")]


def _as_printed(problem: BodyRejected) -> list[str]:
    return [f"{e['field']}: {e['problem']} (rule: {e['rule']})" for e in problem.problem["errors"]]


@pytest.mark.parametrize("name", sorted(STANDARD))
def test_every_example_of_the_standard_is_accepted_as_the_model_reads_it(name: str) -> None:
    event = parse_event(name, json.dumps(example(name)).encode())
    assert event == EVENT_TYPES[name].from_json(example(name))


@pytest.mark.parametrize(
    ("name", "data"), [("UmkmTerdaftar", _bad_umkm()), ("PendudukUpdated", _bad_penduduk())]
)
def test_the_422_errors_are_exactly_what_events_validate_prints_for_the_same_file(
    name: str, data: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "bad.json"
    file.write_text(json.dumps(data))
    assert main(["events", "validate", str(file), "--type", name]) == 1
    printed = _printed_problems(capsys)
    problem = rejected(name, file.read_bytes())
    assert problem.status == 422
    assert problem.problem["type"] == "urn:spbe:problem:invalid-event"
    assert len(printed) >= 3, "several bad fields at once"
    assert _as_printed(problem) == printed
    assert all(set(e) == {"field", "problem", "rule"} for e in problem.problem["errors"])


def test_a_422_never_repeats_a_personal_value() -> None:
    data = _bad_penduduk()
    data["nik"] = NIK[:-1]  # 15 digits: refused, and must not be echoed
    problem = rejected("PendudukUpdated", json.dumps(data).encode())
    text = json.dumps(problem.problem)
    assert "nik" in [e["field"] for e in problem.problem["errors"]]
    assert NIK[:-1] not in text
    assert data["nama_lengkap"] not in text


def _standard_with_extra_required_field(tmp_path: Path) -> Path:
    """A copy of the standard whose UmkmTerdaftar schema has a field the model lacks."""
    folder = tmp_path / "standard"
    shutil.copytree(default_schema_dir(), folder)
    file = folder / "UmkmTerdaftar.avsc"
    raw = json.loads(file.read_text())
    raw["fields"].append({"name": "nomor_registrasi", "type": "string"})
    file.write_text(json.dumps(raw))
    return folder


def test_a_datum_the_schema_refuses_is_a_422_naming_the_field_as_events_validate_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _standard_with_extra_required_field(tmp_path)
    file = folder / "examples" / "UmkmTerdaftar.json"
    command = ["events", "validate", str(file), "--type", "UmkmTerdaftar", "--schemas", str(folder)]
    assert main(command) == 1
    printed = _printed_problems(capsys)
    problem = rejected("UmkmTerdaftar", file.read_bytes(), standard=load_standard(folder))
    assert problem.status == 422
    assert _as_printed(problem) == printed
    (error,) = problem.problem["errors"]
    assert error["field"] == "nomor_registrasi"
    assert "UmkmTerdaftar" in error["rule"]


def test_a_body_that_is_not_utf8_is_a_400_naming_the_byte() -> None:
    problem = rejected("UmkmTerdaftar", b'{"nama_usaha": "Warung \xff"}')
    assert problem.status == 400
    assert problem.problem["type"] == "urn:spbe:problem:not-utf-8"
    assert "byte 23" in problem.problem["detail"]


def test_malformed_json_is_a_400_with_line_and_column_and_never_the_text() -> None:
    body = f'{{"nik": "{NIK}",\n  "nib": }}'.encode()
    problem = rejected("PendudukUpdated", body)
    assert problem.status == 400
    assert problem.problem["type"] == "urn:spbe:problem:malformed-json"
    assert (problem.problem["line"], problem.problem["column"]) == (2, 10)
    assert "line 2, column 10" in problem.problem["detail"]
    assert NIK not in json.dumps(problem.problem)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"", "line 1, column 1"),
        (b'{"jumlah_tenaga_kerja": NaN}', "NaN"),
        (b'{"nib": "1", "nib": "2"}', "same member name twice"),
        (b'{"jumlah_tenaga_kerja": ' + b"9" * 5000 + b"}", "too long"),
        (b"[" * 200_000 + b"]" * 200_000, "nesting too deep"),
    ],
    ids=["empty", "nan", "duplicate-member", "huge-number", "deep-nesting"],
)
def test_json_that_python_would_read_loosely_or_not_at_all_is_a_400(body: bytes, says: str) -> None:
    problem = rejected("UmkmTerdaftar", body)
    assert problem.status == 400
    assert problem.problem["type"] == "urn:spbe:problem:malformed-json"
    assert says in problem.problem["detail"]


@pytest.mark.parametrize("body", [b"[]", b'"UmkmTerdaftar"', b"42", b"null", b"true"])
def test_json_that_is_not_an_object_is_a_400(body: bytes) -> None:
    problem = rejected("UmkmTerdaftar", body)
    assert problem.status == 400
    assert problem.problem["type"] == "urn:spbe:problem:not-an-object"


def test_an_unknown_event_name_is_a_404_listing_the_known_ones_without_echoing_it() -> None:
    problem = rejected("IzinDicabut", json.dumps(example("IzinDiterbitkan")).encode())
    assert problem.status == 404
    assert problem.problem["type"] == "urn:spbe:problem:unknown-event-type"
    assert problem.problem["known"] == sorted(STANDARD)
    assert "IzinDicabut" not in json.dumps(problem.problem)


def test_an_event_with_a_model_but_no_schema_in_the_standard_is_unknown_there() -> None:
    standard = {name: schema for name, schema in STANDARD.items() if name != "UmkmTerdaftar"}
    problem = rejected(
        "UmkmTerdaftar", json.dumps(example("UmkmTerdaftar")).encode(), standard=standard
    )
    assert problem.status == 404
    assert "UmkmTerdaftar" not in problem.problem["known"]


def test_every_problem_document_has_the_rfc_9457_members() -> None:
    for problem in (
        rejected("UmkmTerdaftar", b"\xff"),
        rejected("UmkmTerdaftar", b"{"),
        rejected("UmkmTerdaftar", b"[]"),
        rejected("Nope", b"{}"),
        rejected("UmkmTerdaftar", b"{}"),
    ):
        document = problem.problem
        assert document["type"].startswith("urn:spbe:problem:")
        assert {"type", "title", "status", "detail"} <= set(document)
        assert str(problem) == document["detail"]


def test_validate_json_event_refuses_an_unknown_name_as_a_config_error_listing_names() -> None:
    with pytest.raises(ConfigError, match="unknown event type 'IzinDicabut'") as caught:
        validate_json_event("IzinDicabut", {}, STANDARD)
    assert "IzinDiterbitkan" in str(caught.value)


def test_validate_json_event_lists_the_model_problems_before_asking_the_schema() -> None:
    with pytest.raises(EventValidationError) as caught:
        validate_json_event("UmkmTerdaftar", _bad_umkm(), STANDARD)
    assert [p.field for p in caught.value.problems] == [
        "nib",
        "kbli.kode",
        "skala_usaha",
        "kode_wilayah",
        "catatan",
    ]


def test_schema_problems_is_empty_for_a_datum_that_fits() -> None:
    for name, schema in STANDARD.items():
        assert schema_problems(schema, EVENT_TYPES[name].from_json(example(name))) == []


def test_known_event_names_are_those_with_a_model_and_a_schema() -> None:
    assert known_event_names(STANDARD) == sorted(STANDARD)
    only: dict[str, AvroSchema] = {"IzinDiterbitkan": STANDARD["IzinDiterbitkan"]}
    assert known_event_names(only) == ["IzinDiterbitkan"]
