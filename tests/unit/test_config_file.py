"""Adapter config files: every mistake names its key and a fix; secrets come from the env."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from adapters.config_file import interpolate, load_config
from bus.errors import ConfigError


class Kafka(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bootstrap_servers: str
    topics: list[str]


class Example(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str
    kafka: Kafka
    batch_size: int = 100


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_yaml_file_with_env_values_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROKER", "10.0.0.5:9092")
    path = _write(
        tmp_path,
        "a.yaml",
        "kind: sql-sink\nkafka:\n  bootstrap_servers: ${BROKER}\n  topics: [spbe.x.v1]\n",
    )
    loaded = load_config(Example, path)
    assert loaded.kafka.bootstrap_servers == "10.0.0.5:9092"


def test_a_toml_file_loads_with_a_default_for_an_unset_variable(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "a.toml",
        'kind = "sql-sink"\n[kafka]\nbootstrap_servers = "${SPBE_UNSET_VAR_X:-127.0.0.1:9092}"\n'
        'topics = ["spbe.x.v1"]\n',
    )
    assert load_config(Example, path).kafka.bootstrap_servers == "127.0.0.1:9092"


def test_a_misspelt_key_is_named_with_a_suggestion(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "a.yaml",
        "kind: sql-sink\nkafka:\n  bootstrap_servers: b:9092\n  topic: [spbe.x.v1]\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(Example, path)
    message = str(caught.value)
    assert "2 problems" in message
    assert "kafka.topic: unknown key; did you mean 'topics'?" in message
    assert "kafka.topics: required key is missing" in message


def test_a_wrong_value_type_is_named(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "a.yaml",
        "kind: k\nkafka: {bootstrap_servers: b, topics: [t]}\nbatch_size: banyak\n",
    )
    with pytest.raises(ConfigError, match="batch_size: Input should be a valid integer"):
        load_config(Example, path)


def test_an_unset_variable_without_default_names_the_key_and_the_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        interpolate({"sink": {"database_url": "${SPBE_UNSET_DB_URL}"}}, env={})
    assert "sink.database_url: environment variable SPBE_UNSET_DB_URL is not set" in str(
        caught.value
    )


def test_broken_yaml_and_unknown_formats_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_config(Example, _write(tmp_path, "b.yaml", "kind: [unclosed\n"))
    with pytest.raises(ConfigError, match=r"unknown config format '\.ini'"):
        load_config(Example, _write(tmp_path, "c.ini", "kind=x\n"))
