"""A snapshot section: the shipped one loads, and each mistake names its key and the rule."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.runner import load_snapshot
from adapters.sources.snapshot import DEFAULT_BATCH_SIZE, SnapshotConfig
from bus.cli.main import main
from bus.errors import ConfigError

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "adapters"
RELAY = {
    "database_url": "sqlite:///siak.db",
    "bootstrap_servers": "127.0.0.1:9092",
    "source": "ID/PEMDA-3273/DISDUKCAPIL/siak",
}
SECTION = {
    "table": "penduduk",
    "key_column": "nik",
    "version_column": "versi",
    "event": "adapters.opd.disdukcapil.siak:snapshot_event",
}


def write(tmp_path: Path, **snapshot: Any) -> Path:
    path = tmp_path / "relay.yaml"
    section = {k: v for k, v in {**SECTION, **snapshot}.items() if v is not None}
    path.write_text(yaml.safe_dump({"kind": "outbox-relay", "relay": RELAY, "snapshot": section}))
    return path


def test_the_reference_siak_file_describes_its_snapshot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISDUKCAPIL_DB_URL", "sqlite:///siak.db")
    monkeypatch.setenv("DISDUKCAPIL_KEY_SECRET", "a-secret-of-at-least-sixteen-bytes")
    file = load_snapshot(DEPLOY / "disdukcapil-outbox-relay.yaml")
    assert file.snapshot is not None
    assert (file.snapshot.table, file.snapshot.key_column, file.snapshot.version_column) == (
        "penduduk",
        "nik",
        "versi",
    )
    assert file.snapshot.snapshot_name == "penduduk"
    assert file.snapshot.row_to_event().__name__ == "snapshot_event"


def test_the_readme_shows_the_reference_section_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", readme, re.S) if "snapshot:" in b]
    shown = yaml.safe_load(block)["snapshot"]
    shipped = yaml.safe_load((DEPLOY / "disdukcapil-outbox-relay.yaml").read_text())["snapshot"]
    assert shown == shipped


def test_the_defaults_are_the_documented_ones() -> None:
    config = SnapshotConfig.model_validate(SECTION)
    assert config.batch_size == DEFAULT_BATCH_SIZE == 1000
    assert config.progress_table == "spbe_snapshot_progress"
    assert config.max_rate_per_s is None
    assert config.max_invalid_rows is None


def test_check_validates_the_file_without_publishing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["snapshot", str(write(tmp_path)), "--check"]) == 0
    assert "valid outbox-relay configuration with snapshot 'penduduk'" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"event": "adapters.opd.disdukcapil.siak:no_such"},
            "snapshot.event: module 'adapters.opd.disdukcapil.siak' has no 'no_such'",
        ),
        (
            {"event": "adapters.opd.nowhere:snapshot_event"},
            "snapshot.event: module 'adapters.opd.nowhere' cannot be imported",
        ),
        (
            {"event": "siak.snapshot_event"},
            "snapshot.event: Value error, must be 'module:function'",
        ),
        ({"event": "adapters.opd.disdukcapil.siak:PENDUDUK"}, "is not a function"),
        ({"table": "penduduk; DROP TABLE x"}, "snapshot.table: String should match pattern"),
        ({"key_column": None}, "snapshot.key_column: required key is missing"),
        ({"version_column": "nik"}, "key_column and version_column must be different"),
        ({"batch_size": 0}, "snapshot.batch_size: Input should be greater than or equal to 1"),
        ({"max_rate_per_s": -5}, "snapshot.max_rate_per_s: Input should be greater than 0"),
        ({"key_colum": "nik"}, "snapshot.key_colum: unknown key; did you mean 'key_column'?"),
    ],
)
def test_a_bad_section_names_the_key_and_the_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict[str, Any], expected: str
) -> None:
    assert main(["snapshot", str(write(tmp_path, **change)), "--check"]) == 1
    err = capsys.readouterr().err
    assert expected in err
    assert "fix:" in err


def test_a_snapshot_function_missing_where_the_relay_runs_does_not_stop_the_relay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, event="opd_only.snapshot:row_event")
    assert main(["run", str(path), "--check"]) == 0
    assert main(["snapshot", str(path), "--check"]) == 1
    assert "snapshot.event: module 'opd_only.snapshot' cannot be imported" in (
        capsys.readouterr().err
    )


def test_a_file_without_a_snapshot_section_says_what_to_add(tmp_path: Path) -> None:
    path = tmp_path / "relay.yaml"
    path.write_text(yaml.safe_dump({"kind": "outbox-relay", "relay": RELAY}))
    with pytest.raises(ConfigError, match="no snapshot section") as caught:
        load_snapshot(path)
    assert "table, key_column, version_column and event" in str(caught.value)


def test_a_sink_file_is_refused_a_snapshot_is_the_stewards(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DPMPTSP_DB_URL", "sqlite:///dpmptsp.db")
    with pytest.raises(ConfigError, match="a snapshot is published by a steward"):
        load_snapshot(DEPLOY / "dpmptsp-penduduk-sink.yaml")


@pytest.mark.parametrize("rate", ["0", "-1", "fast", "inf", "nan"])
def test_max_rate_must_be_a_positive_number(rate: str, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["snapshot", str(write(tmp_path)), "--max-rate", rate, "--check"])
    assert caught.value.code == 2
