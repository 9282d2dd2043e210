"""`spbe-bus events validate | encode | decode`, run in-process."""

from __future__ import annotations

import io
import json
from pathlib import Path

import fastavro
import pytest

from bus.cli.main import main
from bus.contract.events import EVENT_TYPES
from bus.contract.standard import default_schema_dir, example, load_standard

EXAMPLES = default_schema_dir() / "examples"


@pytest.mark.parametrize("name", sorted(load_standard()))
def test_every_example_validates(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["events", "validate", str(EXAMPLES / f"{name}.json"), "--type", name]) == 0
    assert f"valid {name}" in capsys.readouterr().out


def test_an_invalid_event_lists_every_problem_with_field_and_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = example("PendudukUpdated")
    data["tanggal_lahir"] = "1990-02-31"
    data["alamat"]["kode_wilayah"] = "3273020003"
    del data["agama"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    assert main(["events", "validate", str(bad), "--type", "PendudukUpdated"]) == 1
    err = capsys.readouterr().err
    assert "3 problems" in err
    assert "tanggal_lahir: is not a real calendar date" in err
    assert "agama: is missing (rule: required field)" in err
    assert "alamat.kode_wilayah: Kemendagri region code looks like a BPS code" in err
    assert data["nik"] not in err, "a NIK is never echoed"


def test_malformed_json_names_the_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text('{"nomor_izin": "x",\n  "nib": }')
    assert main(["events", "validate", str(bad), "--type", "IzinDiterbitkan"]) == 1
    err = capsys.readouterr().err
    assert "is not valid JSON" in err
    assert "line 2, column" in err


def test_an_unknown_event_type_lists_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(EXAMPLES / "IzinDiterbitkan.json")
    assert main(["events", "validate", path, "--type", "IzinDicabut"]) == 1
    err = capsys.readouterr().err
    assert "unknown event type 'IzinDicabut'" in err
    assert "IzinDiterbitkan" in err


@pytest.mark.parametrize("name", sorted(load_standard()))
def test_encode_then_decode_gives_the_example_back_and_plain_fastavro_reads_it(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / f"{name}.bin"
    source = str(EXAMPLES / f"{name}.json")
    assert main(["events", "encode", source, "--type", name, "-o", str(out)]) == 0
    assert main(["events", "decode", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    schema = load_standard()[name]
    assert printed["schema"] == schema.name
    assert printed["event"] == EVENT_TYPES[name].from_json(example(name)).to_json()
    data = out.read_bytes()
    plain = fastavro.schemaless_reader(io.BytesIO(data[10:]), schema.parsed, None)
    assert isinstance(plain, dict)
    assert set(plain) == {f["name"] for f in schema.raw["fields"]}


def test_decoding_bytes_that_are_not_single_object_encoded_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "confluent.bin"
    junk.write_bytes(b"\x00\x00\x00\x00\x07rest-of-a-confluent-message")
    assert main(["events", "decode", str(junk)]) == 1
    assert "Confluent" in capsys.readouterr().err
