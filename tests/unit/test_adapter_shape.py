"""Every adapter kind has the same parts, keeps its secrets secret, and never echoes values."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import get_args

import pytest
import sqlalchemy as sa
from pydantic import BaseModel, SecretBytes, SecretStr

from adapters.contracts import ContractServiceAdapter, ContractServiceConfig
from adapters.db import create_engine
from adapters.gateway import Gateway, GatewayConfig
from adapters.kinds import KINDS, SinkKind, SourceKind
from adapters.sinks.sql import SqlSink, SqlSinkConfig
from adapters.sinks.webhook import WebhookSink, WebhookSinkConfig
from adapters.sources.outbox import OutboxRelay, OutboxRelayConfig
from bus.errors import ConfigError
from bus.lifecycle import Lifecycle

BUILT = {
    "outbox-relay": OutboxRelay,
    "contract-service": ContractServiceAdapter,
    "gateway": Gateway,
    "sql-sink": SqlSink,
    "webhook-sink": WebhookSink,
}
CONFIGS = {
    "outbox-relay": OutboxRelayConfig,
    "contract-service": ContractServiceConfig,
    "gateway": GatewayConfig,
    "sql-sink": SqlSinkConfig,
    "webhook-sink": WebhookSinkConfig,
}
SECRET_WORDS = ("database_url", "secret", "password", "token")
NIK = "3273025708900001"


def test_the_kinds_table_and_the_adapters_agree() -> None:
    assert set(KINDS) == set(BUILT) == set(CONFIGS)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_adapter_has_the_shared_lifecycle_and_its_role(kind: str) -> None:
    adapter = BUILT[kind]
    assert issubclass(adapter, Lifecycle)
    entry = KINDS[kind]
    if isinstance(entry, SourceKind):
        assert inspect.iscoroutinefunction(adapter.run)
        assert callable(adapter.request_stop)
    else:
        assert isinstance(entry, SinkKind)
        assert inspect.iscoroutinefunction(adapter.__call__)
        assert "subscription" in entry.file.model_fields


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_each_config_loads_from_a_file(kind: str) -> None:
    config = CONFIGS[kind]
    assert issubclass(config, BaseModel)
    assert inspect.ismethod(config.from_file)
    with pytest.raises(ConfigError):
        config.from_file(Path("/nonexistent/adapter.yaml"))


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_each_secret_setting_is_a_secret_type(kind: str) -> None:
    for name, field in CONFIGS[kind].model_fields.items():
        # A variable's name, a file's path or a duration is not the secret itself.
        if not any(word in name for word in SECRET_WORDS) or name.endswith(("_env", "_file", "_s")):
            continue
        kinds = {field.annotation, *get_args(field.annotation)}
        assert kinds & {SecretStr, SecretBytes}, f"{kind}: {name} is {field.annotation}"


def test_a_database_error_never_carries_the_values_written(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'opd.db'}")
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE penduduk (nik TEXT PRIMARY KEY, nama TEXT)"))
            conn.execute(sa.text("INSERT INTO penduduk VALUES (:nik, 'Siti')"), {"nik": NIK})
        with pytest.raises(sa.exc.IntegrityError) as caught, engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO penduduk VALUES (:nik, 'Siti')"), {"nik": NIK})
    finally:
        engine.dispose()
    assert "UNIQUE constraint failed" in str(caught.value)
    assert NIK not in str(caught.value)
    assert "Siti" in str(caught.value), "a literal of the statement itself may show"


def test_a_bad_database_url_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigError) as caught:
        create_engine("relay:rahasia@db/siak")
    assert "rahasia" not in str(caught.value)
    assert "database_url is not a database URL" in str(caught.value)
