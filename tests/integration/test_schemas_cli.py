"""`spbe-bus schemas ...` as an operator runs it, against the test broker."""

from __future__ import annotations

import copy
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bus.contract.standard import default_schema_dir

pytestmark = pytest.mark.integration
SUBJECT = "id.go.spbe.uji.WargaDicatat.v1"
REPO_ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "SPBE_KAFKA_BOOTSTRAP"}
    environment["SPBE_PRINCIPAL"] = "petugas-uji"
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bus.cli.main", "schemas", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=REPO_ROOT,
        env=environment,
    )


def warga_raw() -> dict[str, Any]:
    return {
        "type": "record",
        "name": "WargaDicatat",
        "namespace": "id.go.spbe.uji",
        "spbe.dublincore": {"identifier": SUBJECT},
        "fields": [
            {"name": "id_warga", "type": "string"},
            {"name": "nama", "type": "string", "spbe.pii": True},
            {"name": "umur", "type": "int"},
        ],
    }


def write_schema(directory: Path, edit: Callable[[dict[str, Any]], object] | None = None) -> Path:
    raw = copy.deepcopy(warga_raw())
    if edit is not None:
        edit(raw)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "WargaDicatat.avsc"
    path.write_text(json.dumps(raw, indent=2), encoding="utf-8")
    return directory


def add_optional(raw: dict[str, Any]) -> None:
    raw["fields"].append({"name": "catatan", "type": ["null", "string"], "default": None})


def add_required(raw: dict[str, Any]) -> None:
    raw["fields"].append({"name": "kode_pos", "type": "string"})


def retype_umur(raw: dict[str, Any]) -> None:
    raw["fields"][2]["type"] = "string"


@pytest.fixture
def registry_args(kafka_bootstrap: str, topic_name: str) -> list[str]:
    return ["--bootstrap", kafka_bootstrap, "--registry-topic", topic_name]


# -- register, list, show ----------------------------------------------------------------------


def test_register_prints_new_then_unchanged_and_list_shows_every_subject(
    registry_args: list[str],
) -> None:
    standard = str(default_schema_dir())
    first = cli("register", "--schemas", standard, *registry_args)
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert len(lines) == 5
    assert all(line.startswith("new ") and " v1 (" in line for line in lines)

    again = cli("register", "--schemas", standard, *registry_args)
    assert again.returncode == 0, again.stderr
    assert all(line.startswith("unchanged ") for line in again.stdout.splitlines())

    listing = cli("list", *registry_args)
    assert listing.returncode == 0, listing.stderr
    header, *rows = listing.stdout.splitlines()
    assert header.split() == ["SUBJECT", "VERSION", "FINGERPRINT", "MODE", "PRINCIPAL"]
    assert len(rows) == 5
    penduduk = next(r for r in rows if "PendudukUpdated" in r).split()
    assert penduduk[0] == "id.go.spbe.dukcapil.PendudukUpdated.v1"
    assert penduduk[1] == "1"
    assert len(penduduk[2]) == 16
    assert penduduk[3:] == ["BACKWARD", "petugas-uji"]


def test_bootstrap_defaults_to_the_environment_variable(
    kafka_bootstrap: str, topic_name: str
) -> None:
    result = cli(
        "list", "--registry-topic", topic_name, env={"SPBE_KAFKA_BOOTSTRAP": kafka_bootstrap}
    )
    assert result.returncode == 0, result.stderr
    assert "no schemas registered" in result.stdout
    assert kafka_bootstrap in result.stdout


def test_show_prints_the_schema_with_its_attributes_and_metadata(
    tmp_path: Path, registry_args: list[str]
) -> None:
    assert (
        cli("register", "--schemas", str(write_schema(tmp_path / "v1")), *registry_args).returncode
        == 0
    )
    v2_dir = write_schema(tmp_path / "v2", add_optional)
    registered = cli("register", "--schemas", str(v2_dir), *registry_args)
    assert registered.returncode == 0, registered.stderr
    assert registered.stdout.startswith(f"new        {SUBJECT} v2")

    latest = cli("show", SUBJECT, *registry_args)
    assert latest.returncode == 0, latest.stderr
    assert "version:        2 (latest: 2)" in latest.stdout
    assert "principal:      petugas-uji" in latest.stdout
    assert "BACKWARD when registered, BACKWARD now" in latest.stdout
    schema = json.loads(latest.stdout.split("schema:\n", 1)[1])
    assert schema["fields"][1]["spbe.pii"] is True
    assert schema["fields"][-1]["name"] == "catatan"

    first = cli("show", SUBJECT, "--version", "1", *registry_args)
    assert first.returncode == 0, first.stderr
    assert "version:        1 (latest: 2)" in first.stdout

    missing = cli("show", SUBJECT, "--version", "7", *registry_args)
    assert missing.returncode == 1
    assert "has no version 7 (it has 1, 2)" in missing.stderr
    unknown = cli("show", "id.go.spbe.uji.TidakAda.v1", *registry_args)
    assert unknown.returncode == 1
    assert "spbe-bus schemas list" in unknown.stderr


def test_register_refuses_an_incompatible_schema_but_keeps_the_others(
    tmp_path: Path, registry_args: list[str]
) -> None:
    directory = write_schema(tmp_path / "schemas")
    assert cli("register", "--schemas", str(directory), *registry_args).returncode == 0
    shutil.copy(default_schema_dir() / "KematianDicatat.avsc", directory)
    write_schema(directory, retype_umur)
    result = cli("register", "--schemas", str(directory), *registry_args)
    assert result.returncode == 1
    assert "new        id.go.spbe.dukcapil.KematianDicatat.v1 v1" in result.stdout
    assert f"refused    {SUBJECT}" in result.stdout
    assert "field 'umur' changed type from int to string" in result.stderr
    assert "Traceback" not in result.stderr
    listing = cli("list", *registry_args)
    assert "KematianDicatat" in listing.stdout


def test_mode_shows_and_sets_a_subjects_compatibility(registry_args: list[str]) -> None:
    shown = cli("mode", SUBJECT, *registry_args)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == f"{SUBJECT}: BACKWARD (default)"
    changed = cli("mode", SUBJECT, "full", *registry_args)
    assert changed.returncode == 0, changed.stderr
    assert changed.stdout.strip() == f"{SUBJECT}: FULL (set by petugas-uji)"
    wrong = cli("mode", SUBJECT, "sideways", *registry_args)
    assert wrong.returncode == 1
    assert "compatibility mode 'sideways' is unknown" in wrong.stderr


# -- check -------------------------------------------------------------------------------------


def test_check_against_the_registry_reports_new_unchanged_and_compatible_changes(
    tmp_path: Path, registry_args: list[str]
) -> None:
    base = write_schema(tmp_path / "base")
    assert cli("register", "--schemas", str(base), *registry_args).returncode == 0
    assert "unchanged" in cli("check", "--schemas", str(base), *registry_args).stdout

    changed = write_schema(tmp_path / "changed", add_optional)
    shutil.copy(default_schema_dir() / "UmkmTerdaftar.avsc", changed)
    result = cli("check", "--schemas", str(changed), *registry_args)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"compatible change  {SUBJECT} (BACKWARD)" in lines
    assert "new                id.go.spbe.dinkopukm.UmkmTerdaftar.v1" in lines
    assert lines[-1].startswith("all 2 schemas are compatible with the registry")
    assert cli("list", *registry_args).stdout.count("\n") == 2  # check wrote nothing


def test_check_against_the_registry_fails_naming_the_field(
    tmp_path: Path, registry_args: list[str]
) -> None:
    assert (
        cli("register", "--schemas", str(write_schema(tmp_path / "a")), *registry_args).returncode
        == 0
    )
    result = cli(
        "check", "--schemas", str(write_schema(tmp_path / "b", add_required)), *registry_args
    )
    assert result.returncode == 1
    assert f"INCOMPATIBLE       {SUBJECT} (BACKWARD)" in result.stdout
    assert "field 'kode_pos' was added without a default" in result.stderr
    assert "1 of 1 schemas is not compatible with the registry" in result.stderr


def test_check_against_a_directory_uses_backward_unless_a_mode_is_given(tmp_path: Path) -> None:
    base = write_schema(tmp_path / "base")
    changed = write_schema(tmp_path / "changed", add_required)
    backward = cli("check", "--schemas", str(changed), "--baseline", str(base))
    assert backward.returncode == 1
    assert "field 'kode_pos' was added without a default" in backward.stderr
    forward = cli("check", "--schemas", str(changed), "--baseline", str(base), "--mode", "FORWARD")
    assert forward.returncode == 0, forward.stderr
    assert f"compatible change  {SUBJECT} (FORWARD)" in forward.stdout


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=Uji", "-c", "user.email=uji@example.invalid", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def test_check_against_a_git_ref_reads_the_committed_schemas(tmp_path: Path) -> None:
    repo = tmp_path / "standar"
    schemas = write_schema(repo / "schemas" / "avro")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "WargaDicatat v1")
    unchanged = cli("check", "--schemas", str(schemas), "--baseline", "main")
    assert unchanged.returncode == 0, unchanged.stderr
    assert unchanged.stdout.startswith(f"unchanged          {SUBJECT}")
    assert "at git ref main" in unchanged.stdout

    write_schema(schemas, retype_umur)  # the working copy changes, the commit does not
    broken = cli("check", "--schemas", str(schemas), "--baseline", "HEAD")
    assert broken.returncode == 1
    assert "field 'umur' changed type from int to string" in broken.stderr

    no_ref = cli("check", "--schemas", str(schemas), "--baseline", "tidak-ada")
    assert no_ref.returncode == 1
    assert "tidak-ada is not a commit" in no_ref.stderr
    assert "Traceback" not in no_ref.stderr


# -- an unreachable broker ---------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_an_unreachable_broker_is_waited_for_then_named_with_the_fix() -> None:
    address = f"127.0.0.1:{closed_port()}"
    result = cli(
        "list",
        "--bootstrap",
        address,
        "--registry-topic",
        "_spbe.schemas",
        env={"SPBE_START_TIMEOUT_S": "3"},
    )
    assert result.returncode == 1
    assert "kafka.waiting" in result.stderr, "the wait is logged before the command gives up"
    assert result.stderr.count("kafka.waiting") == 1, "each wait is logged once"
    error = result.stderr[result.stderr.index("error: ") :]
    assert error.startswith(
        f"error: Kafka at {address} was not available to open the schema registry "
        "(topic _spbe.schemas) within 3 s"
    )
    assert "spbe-bus kafka status" in error
    assert "Traceback" not in result.stderr


def test_the_start_timeout_option_is_checked() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bus.cli.main", "--start-timeout", "soon", "schemas", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 2
    assert "--start-timeout: 'soon' is not a number of seconds greater than 0" in result.stderr


def test_check_says_when_only_docs_or_governance_attributes_changed(tmp_path: Path) -> None:
    def tag_umur(raw: dict[str, Any]) -> None:
        raw["fields"][2]["spbe.pii"] = True
        raw["fields"][2]["doc"] = "Umur dalam tahun."

    base = write_schema(tmp_path / "base")
    tagged = write_schema(tmp_path / "tagged", tag_umur)
    result = cli("check", "--schemas", str(tagged), "--baseline", str(base))
    assert result.returncode == 0, result.stderr
    assert (
        f"unchanged          {SUBJECT} (only docs or spbe.* attributes differ from the baseline)"
        in result.stdout
    )
