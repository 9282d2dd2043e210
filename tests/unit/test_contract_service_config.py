"""The contract service's file: its secrets, catalogue and ledger, each mistake named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretBytes, ValidationError

from adapters.contracts import DEFAULT_GROUP, ContractServiceAdapter, ContractServiceConfig
from adapters.db import create_engine
from adapters.kinds import ContractServiceFile
from adapters.ledger import LedgerStore, create_ledger_table
from adapters.runner import load_adapter
from bus.errors import ConfigError
from bus.ops.catalog import default_catalog_path

PAIRWISE = "pairwise-secret-0123456789abcdef"
LEDGER = "ledger-secret-0123456789abcdef"
DEPLOY_FILE = Path(__file__).resolve().parents[2] / "deploy" / "adapters" / "contracts.yaml"


def settings(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "bootstrap_servers": "127.0.0.1:9092",
        "pairwise_secret": PAIRWISE,
        "ledger_secret": LEDGER,
        "ledger_url": "sqlite://",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def refused(**changes: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        ContractServiceConfig.model_validate(settings(**changes))
    text = str(caught.value)
    for secret in (PAIRWISE, LEDGER):
        assert secret not in text
    return text


def test_the_defaults_take_the_shipped_catalogues_subscriptions() -> None:
    config = ContractServiceConfig.model_validate(settings())
    assert config.group_id == DEFAULT_GROUP == "spbe-contracts"
    assert config.max_poll_records == 500
    assert config.registry_topic is None
    assert "dpmptsp-penduduk" in {s.subscriber for s in config.subscriptions}
    assert config.connection.bootstrap_servers == "127.0.0.1:9092"
    assert config.pairwise_key_secret.get_secret_value() == PAIRWISE.encode()
    assert config.ledger_subject_secret.get_secret_value() == LEDGER.encode()
    assert PAIRWISE not in repr(config)
    assert LEDGER not in repr(config)


def test_secrets_may_come_from_files(tmp_path: Path) -> None:
    (tmp_path / "pairwise").write_text(PAIRWISE + "\n")
    (tmp_path / "ledger").write_text(LEDGER + "\n")
    config = ContractServiceConfig.model_validate(
        settings(
            pairwise_secret=None,
            ledger_secret=None,
            pairwise_secret_file=str(tmp_path / "pairwise"),
            ledger_secret_file=str(tmp_path / "ledger"),
        )
    )
    assert config.pairwise_key_secret == SecretBytes(PAIRWISE.encode())
    assert config.ledger_subject_secret == SecretBytes(LEDGER.encode())


def test_a_missing_secret_is_named_with_both_ways_to_give_it() -> None:
    text = refused(ledger_secret=None)
    assert "ledger_secret is missing: set ledger_secret" in text
    assert "ledger_secret_file" in text


def test_a_secret_given_twice_is_refused(tmp_path: Path) -> None:
    (tmp_path / "pairwise").write_text(PAIRWISE)
    text = refused(pairwise_secret_file=str(tmp_path / "pairwise"))
    assert "set either pairwise_secret or pairwise_secret_file, not both" in text


def test_an_unreadable_secret_file_is_named(tmp_path: Path) -> None:
    text = refused(ledger_secret=None, ledger_secret_file=str(tmp_path / "absent"))
    assert f"ledger_secret_file {tmp_path / 'absent'} cannot be read" in text


def test_a_short_secret_is_refused_naming_the_rule() -> None:
    text = refused(pairwise_secret="kurang")
    assert "pairwise_secret: the secret is 6 bytes; at least 16 are needed" in text


def test_the_same_secret_twice_is_refused() -> None:
    text = refused(ledger_secret=PAIRWISE)
    assert "pairwise_secret and ledger_secret are the same secret" in text


def test_an_unknown_catalogue_path_is_named(tmp_path: Path) -> None:
    text = refused(catalog=str(tmp_path / "katalog.yaml"))
    assert f"catalog: {tmp_path / 'katalog.yaml'} is not a file" in text


def test_a_catalogue_without_subscriptions_is_refused(tmp_path: Path) -> None:
    data = yaml.safe_load(default_catalog_path().read_text(encoding="utf-8"))
    data["subscriptions"] = []
    data.pop("api_clients")  # they name subscriptions
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert "has no subscriptions, so the contract service has nothing to deliver" in refused(
        catalog=str(path)
    )


def test_a_broken_catalogue_is_refused_with_its_problems(tmp_path: Path) -> None:
    data = yaml.safe_load(default_catalog_path().read_text(encoding="utf-8"))
    data["subscriptions"][0]["allowed_fields"] = {
        "id.go.spbe.dukcapil.PendudukUpdated.v1": ["nama_ibu"]
    }
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    text = refused(catalog=str(path))
    assert "catalog:" in text
    assert "nama_ibu" in text


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("group_id", "Spbe Contracts", "String should match pattern"),
        ("max_poll_records", 0, "greater than or equal to 1"),
        ("ledger_url", "", "at least 1"),
        ("ledger_urll", "sqlite://", "Extra inputs are not permitted"),
    ],
)
def test_bad_settings_name_their_key(key: str, value: Any, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ContractServiceConfig.model_validate(settings(**{key: value}))
    (error,) = caught.value.errors()
    assert error["loc"] == (key,)
    assert message in error["msg"]


def test_the_shipped_file_reads_its_secrets_and_ledger_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SPBE_CONTRACTS_PAIRWISE_SECRET", PAIRWISE)
    monkeypatch.setenv("SPBE_LEDGER_SECRET", LEDGER)
    monkeypatch.setenv("SPBE_LEDGER_URL", "postgresql+psycopg://spbe_contract:pw@db/spbe")
    for name in ("SPBE_CONTRACTS_KAFKA_CREDENTIALS", "SPBE_KAFKA_SECURITY_PROTOCOL"):
        monkeypatch.delenv(name, raising=False)
    loaded = load_adapter(DEPLOY_FILE)
    assert isinstance(loaded, ContractServiceFile)
    config = loaded.contracts
    assert config.ledger_url.get_secret_value().startswith("postgresql+psycopg://")
    assert config.group_id == "spbe-contracts"
    assert config.ledger_subject_secret.get_secret_value() == LEDGER.encode()


def test_the_shipped_file_without_its_secrets_says_which_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SPBE_CONTRACTS_PAIRWISE_SECRET", raising=False)
    with pytest.raises(ConfigError, match="SPBE_CONTRACTS_PAIRWISE_SECRET is not set"):
        load_adapter(DEPLOY_FILE)


async def test_the_service_refuses_to_start_without_its_ledger_table(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    adapter = ContractServiceAdapter(ContractServiceConfig.model_validate(settings(ledger_url=url)))
    with pytest.raises(ConfigError) as caught:
        await adapter.start()
    assert "the ledger table 'spbe_ledger' does not exist" in caught.value.message
    assert caught.value.fix is not None
    assert "create_ledger_table" in caught.value.fix
    await adapter.stop()


def test_the_ledger_check_passes_once_the_table_exists(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    create_ledger_table(engine)
    LedgerStore(engine, LEDGER.encode()).check_table()
    engine.dispose()
