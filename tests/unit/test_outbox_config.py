"""The relay's settings: defaults, refused mistakes, and what the publisher gets."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from adapters.config_file import load_config
from adapters.sources.outbox import OutboxRelayConfig
from bus.errors import ConfigError

BASE = {
    "database_url": "postgresql+psycopg://relay:rahasia@db.siak.local/siak",
    "bootstrap_servers": "kafka1:9092",
    "source": "ID/PEMDA-3273/DISDUKCAPIL/siak",
}


def test_the_defaults_are_the_documented_ones() -> None:
    config = OutboxRelayConfig.model_validate(BASE)
    assert config.batch_size == 500
    assert config.poll_interval_ms == 200
    assert config.retention_hours == 72
    assert config.table == "spbe_outbox"
    assert config.key_secret is None


def test_an_unknown_key_is_refused() -> None:
    with pytest.raises(ValidationError, match="batchsize"):
        OutboxRelayConfig.model_validate({**BASE, "batchsize": 10})


def test_the_config_is_frozen() -> None:
    config = OutboxRelayConfig.model_validate(BASE)
    with pytest.raises(ValidationError):
        config.batch_size = 1  # type: ignore[misc]


def test_a_source_that_is_not_an_x_road_identifier_is_refused_with_an_example() -> None:
    with pytest.raises(ValidationError, match="ID/PEMDA-3273/DISDUKCAPIL/siak"):
        OutboxRelayConfig.model_validate({**BASE, "source": "disdukcapil-siak"})


@pytest.mark.parametrize("table", ["spbe outbox", "outbox; DROP TABLE penduduk", "1outbox", ""])
def test_a_table_name_must_be_a_plain_sql_identifier(table: str) -> None:
    with pytest.raises(ValidationError, match="table"):
        OutboxRelayConfig.model_validate({**BASE, "table": table})


def test_a_backoff_bound_below_the_first_wait_is_refused() -> None:
    with pytest.raises(ValidationError, match="max_retry_backoff_ms"):
        OutboxRelayConfig.model_validate(
            {**BASE, "retry_backoff_ms": 5000, "max_retry_backoff_ms": 1000}
        )


def test_the_database_password_stays_out_of_the_repr() -> None:
    config = OutboxRelayConfig.model_validate(BASE)
    assert "rahasia" not in repr(config)
    assert "rahasia" not in str(config)


def test_the_publisher_gets_the_source_secret_and_topic_overrides() -> None:
    config = OutboxRelayConfig.model_validate(
        {
            **BASE,
            "key_secret": b"dukcapil-test-secret-0123456789",
            "topic_overrides": {"PendudukUpdated": "staging.penduduk"},
            "delivery_timeout_ms": 5000,
        }
    )
    publisher = config.publisher_config()
    assert publisher.source == BASE["source"]
    assert publisher.bootstrap_servers == BASE["bootstrap_servers"]
    assert publisher.key_secret is not None
    assert publisher.key_secret.get_secret_value() == b"dukcapil-test-secret-0123456789"
    assert publisher.topic_overrides == {"PendudukUpdated": "staging.penduduk"}
    assert publisher.delivery_timeout_ms == 5000


def test_a_yaml_config_file_takes_secrets_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OUTBOX_DB_PASSWORD", "rahasia")
    monkeypatch.setenv("SPBE_KEY_SECRET", "dukcapil-test-secret-0123456789")
    path = tmp_path / "relay.yaml"
    path.write_text(
        "database_url: postgresql+psycopg://relay:${OUTBOX_DB_PASSWORD}@db/siak\n"
        "bootstrap_servers: kafka1:9092\n"
        "source: ID/PEMDA-3273/DISDUKCAPIL/siak\n"
        "key_secret: ${SPBE_KEY_SECRET}\n"
        "batch_size: 100\n"
    )
    config = OutboxRelayConfig.from_file(path)
    assert config.database_url.get_secret_value().endswith("relay:rahasia@db/siak")
    assert "rahasia" not in repr(config), "the database password is a secret"
    assert config == load_config(OutboxRelayConfig, path)
    assert config.key_secret is not None
    assert config.key_secret.get_secret_value() == b"dukcapil-test-secret-0123456789"
    assert config.batch_size == 100


def test_a_mistyped_key_in_the_file_is_named_with_the_likely_fix(tmp_path: Path) -> None:
    path = tmp_path / "relay.yaml"
    path.write_text(
        "database_url: sqlite:///x.db\nbootstrap_servers: k:9092\n"
        "source: ID/PEMDA-3273/DISDUKCAPIL/siak\npoll_intervall_ms: 100\n"
    )
    with pytest.raises(ConfigError, match="did you mean 'poll_interval_ms'"):
        load_config(OutboxRelayConfig, path)


def test_an_idle_relay_looks_again_soon_then_ever_more_rarely() -> None:
    from adapters.sources.outbox.relay import next_idle_pause

    pauses = []
    pause = 0
    for _ in range(8):
        pause = next_idle_pause(pause, 10, 200)
        pauses.append(pause)
    assert pauses == [10, 20, 40, 80, 160, 200, 200, 200]
    assert next_idle_pause(0, 500, 200) == 200  # the longest wait wins over a larger first
