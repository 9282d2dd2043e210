"""Every client takes the one security setting: from an adapter file, the environment, or a
credentials file; mistakes name the setting, and the password is never shown."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from adapters.kinds import OutboxRelayFile, SqlSinkFile, WebhookSinkFile
from adapters.runner import load_adapter
from adapters.sources.outbox import OutboxRelayConfig
from bench import consume, workload
from bus.cli.catalog_cmd import bootstrap_of
from bus.cli.main import build_parser, main
from bus.connection import KafkaConnection, KafkaSecurity, write_credentials_file
from bus.dead_letters import DeadLetterWriter
from bus.errors import ConfigError
from bus.localkafka.certificates import CertificateAuthority
from bus.ops.audit import AuditLog
from bus.publisher import PublisherConfig
from bus.registry import SchemaRegistry
from bus.startup import START_TIMEOUT_ENV
from bus.subscriber import SubscriberConfig

PASSWORD = "Pw-only-the-broker-may-see-9f3c"
SOURCE = "ID/PEMDA-3273/DISDUKCAPIL/siak"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No SPBE_KAFKA_* of the machine running the tests leaks into these."""
    for name in list(os.environ):
        if name.startswith("SPBE_KAFKA_"):
            monkeypatch.delenv(name)


@pytest.fixture
def ca_file(tmp_path: Path) -> Path:
    return CertificateAuthority.create(tmp_path / "ca").cert_path


def _sink_file(tmp_path: Path, security: str) -> Path:
    path = tmp_path / "sink.yaml"
    path.write_text(
        "kind: sql-sink\n"
        "subscription:\n"
        "  bootstrap_servers: kafka1:9093\n"
        "  subscriber_id: dpmptsp-penduduk\n"
        "  topics: [spbe.dukcapil.penduduk.v1]\n"
        f"{security}"
        "sink:\n"
        f"  database_url: sqlite:///{tmp_path / 'replika.db'}\n"
        "  table: penduduk_replika\n"
        "  key_column: nik\n"
        "  events:\n"
        "    PendudukUpdated:\n"
        "      key: nik\n"
        "      columns: {nama_lengkap: nama_lengkap}\n"
    )
    return path


SECURED = (
    "  security:\n"
    "    protocol: SASL_SSL\n"
    "    username: dpmptsp-penduduk\n"
    "    password: ${DPMPTSP_KAFKA_PASSWORD}\n"
    "    ca_file: ${KAFKA_CA}\n"
)


def test_a_sinks_subscription_takes_a_security_section_with_an_env_password(
    tmp_path: Path, ca_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DPMPTSP_KAFKA_PASSWORD", PASSWORD)
    monkeypatch.setenv("KAFKA_CA", str(ca_file))
    adapter = load_adapter(_sink_file(tmp_path, SECURED))
    assert isinstance(adapter, SqlSinkFile)
    security = adapter.subscription.security
    assert (security.protocol, security.username, security.ca_file) == (
        "SASL_SSL",
        "dpmptsp-penduduk",
        ca_file,
    )
    assert security.password is not None
    assert security.password.get_secret_value() == PASSWORD
    assert adapter.subscription.connection == KafkaConnection(
        bootstrap_servers="kafka1:9093", security=security
    )
    options = adapter.subscription.connection.aiokafka_options()
    assert options["sasl_plain_password"] == PASSWORD
    assert options["security_protocol"] == "SASL_SSL"
    assert options["ssl_context"].check_hostname
    for shown in (repr(adapter), str(adapter), repr(adapter.subscription), str(security)):
        assert PASSWORD not in shown


def test_a_webhook_sink_and_a_relay_take_it_too(
    tmp_path: Path, ca_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAFKA_PASSWORD", PASSWORD)
    monkeypatch.setenv("WEBHOOK_SECRET", "webhook-secret-of-at-least-16-bytes")
    security = (
        "  security: {protocol: SASL_SSL, username: app, password: '${KAFKA_PASSWORD}', "
        f"ca_file: {ca_file}}}\n"
    )
    webhook = tmp_path / "webhook.yaml"
    webhook.write_text(
        "kind: webhook-sink\n"
        "subscription:\n"
        "  bootstrap_servers: kafka1:9093\n"
        "  subscriber_id: dinkes-penduduk\n"
        "  topics: [spbe.dukcapil.penduduk.v1]\n"
        f"{security}"
        "webhook: {url: 'https://simpus.example.go.id/spbe', secret_env: WEBHOOK_SECRET}\n"
    )
    relay = tmp_path / "relay.yaml"
    relay.write_text(
        "kind: outbox-relay\n"
        "relay:\n"
        f"  database_url: sqlite:///{tmp_path / 'siak.db'}\n"
        "  bootstrap_servers: kafka1:9093\n"
        f"  source: {SOURCE}\n"
        f"{security}"
    )
    hook = load_adapter(webhook)
    assert isinstance(hook, WebhookSinkFile)
    assert hook.subscription.security.username == "app"
    outbox = load_adapter(relay)
    assert isinstance(outbox, OutboxRelayFile)
    publisher = outbox.relay.publisher_config()  # the relay's and the snapshot's publisher
    assert publisher.security == outbox.relay.security
    assert publisher.connection.security.sasl
    assert PASSWORD not in repr(outbox) + repr(publisher) + str(hook)


def test_a_bad_protocol_in_a_file_names_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DPMPTSP_KAFKA_PASSWORD", PASSWORD)
    monkeypatch.setenv("KAFKA_CA", "/nowhere/ca.pem")
    path = _sink_file(tmp_path, SECURED.replace("SASL_SSL", "SASL_TLS"))
    assert main(["run", str(path), "--check"]) == 1
    err = capsys.readouterr().err
    assert "subscription.security.protocol: Input should be" in err
    assert "'SASL_SSL'" in err
    assert PASSWORD not in err


def test_a_missing_password_says_what_to_set(tmp_path: Path) -> None:
    path = _sink_file(tmp_path, "  security: {protocol: SASL_PLAINTEXT, username: app}\n")
    with pytest.raises(ConfigError, match=r"subscription\.security: .*set password"):
        load_adapter(path)


def test_a_missing_password_variable_is_named(tmp_path: Path, ca_file: Path) -> None:
    path = _sink_file(tmp_path, SECURED.replace("${KAFKA_CA}", str(ca_file)))
    with pytest.raises(ConfigError, match="DPMPTSP_KAFKA_PASSWORD is not set"):
        load_adapter(path)


def _environment(monkeypatch: pytest.MonkeyPatch, ca_file: Path) -> None:
    monkeypatch.setenv("SPBE_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("SPBE_KAFKA_USERNAME", "siak")
    monkeypatch.setenv("SPBE_KAFKA_PASSWORD", PASSWORD)
    monkeypatch.setenv("SPBE_KAFKA_CA_FILE", str(ca_file))


def test_without_a_section_every_config_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch, ca_file: Path
) -> None:
    _environment(monkeypatch, ca_file)
    configs = [
        PublisherConfig(bootstrap_servers="kafka1:9093", source=SOURCE),
        SubscriberConfig(bootstrap_servers="kafka1:9093", subscriber_id="s", topics=("t",)),
        OutboxRelayConfig(database_url="sqlite://", bootstrap_servers="kafka1:9093", source=SOURCE),
    ]
    for config in configs:
        assert config.security.describe() == "SASL_SSL SCRAM-SHA-512 as siak"
        assert config.security.ca_file == ca_file
        assert PASSWORD not in repr(config) + str(config)


def test_a_section_replaces_the_environment(monkeypatch: pytest.MonkeyPatch, ca_file: Path) -> None:
    _environment(monkeypatch, ca_file)
    config = SubscriberConfig.model_validate(
        {
            "bootstrap_servers": "localhost:9092",
            "subscriber_id": "s",
            "topics": ["t"],
            "security": {"protocol": "PLAINTEXT"},
        }
    )
    assert config.security == KafkaSecurity()


def test_a_bad_environment_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPBE_KAFKA_SECURITY_PROTOCOL", "TLS")
    with pytest.raises(ConfigError, match="SPBE_KAFKA_SECURITY_PROTOCOL: Input should be"):
        PublisherConfig(bootstrap_servers="kafka1:9093", source=SOURCE)


def test_clients_built_from_a_string_take_the_environment(
    monkeypatch: pytest.MonkeyPatch, ca_file: Path
) -> None:
    _environment(monkeypatch, ca_file)
    registry = SchemaRegistry("kafka1:9093")
    assert registry.connection.security.username == "siak"
    assert registry.bootstrap_servers == "kafka1:9093"
    assert PASSWORD not in repr(registry)
    assert AuditLog("kafka1:9093").connection.security.sasl
    assert DeadLetterWriter("kafka1:9093", "s", ["t"]).connection.security.tls


def test_clients_keep_a_connection_given_to_them() -> None:
    secured = KafkaConnection(
        bootstrap_servers="kafka1:9093",
        security=KafkaSecurity(protocol="SASL_PLAINTEXT", username="op", password=PASSWORD),
    )
    assert SchemaRegistry(secured).connection is secured
    assert AuditLog(secured).connection is secured
    assert DeadLetterWriter(secured, "s", ["t"]).connection is secured
    assert workload.publisher_config(secured, "t").connection == secured
    assert consume.subscriber_config(secured, "t", "s").connection == secured


def _credentials(path: Path, bootstrap: str = "kafka1:9093") -> Path:
    return write_credentials_file(
        path,
        bootstrap,
        KafkaSecurity(protocol="SASL_PLAINTEXT", username="spbe-operator", password=PASSWORD),
    )


def test_the_cli_connects_with_a_credentials_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from_env = _credentials(tmp_path / "env.json", "kafka-env:9093")
    given = _credentials(tmp_path / "given.json", "kafka-file:9093")
    monkeypatch.setenv("SPBE_KAFKA_CREDENTIALS", str(from_env))
    parser = build_parser()
    by_env = bootstrap_of(parser.parse_args(["status"]))
    assert by_env.bootstrap_servers == "kafka-env:9093"
    assert by_env.security.username == "spbe-operator"
    by_option = bootstrap_of(parser.parse_args(["catalog", "plan", "--credentials", str(given)]))
    assert by_option.bootstrap_servers == "kafka-file:9093"
    assert by_option.security.credentials_file == given
    explicit = bootstrap_of(
        parser.parse_args(["status", "--credentials", str(given), "--bootstrap", "b:1"])
    )
    assert explicit.bootstrap_servers == "b:1"
    assert explicit.security.sasl


def test_without_any_setting_the_cli_uses_the_local_plaintext_cluster() -> None:
    connection = bootstrap_of(build_parser().parse_args(["status"]))
    assert connection == KafkaConnection(bootstrap_servers="127.0.0.1:9092")


@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["catalog", "plan"],
        ["dlq", "list", "--subscriber", "s"],
        ["schemas", "list"],
        ["replay", "--subscriber", "s", "--topic", "t", "--from-offsets", "0:0", "--reason", "r"],
    ],
)
def test_a_readable_credentials_file_is_refused_without_showing_it(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _credentials(tmp_path / "operator.json")
    path.chmod(0o644)
    assert main([*command, "--credentials", str(path)]) == 1
    err = capsys.readouterr().err
    assert "may be read by other users (mode 0644)" in err
    assert f"chmod 600 {path}" in err
    assert PASSWORD not in err


def test_a_failed_connection_never_prints_the_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(START_TIMEOUT_ENV, "1")
    path = _credentials(tmp_path / "operator.json", "127.0.0.1:1")
    code = main(["--log-level", "DEBUG", "status", "--credentials", str(path)])
    captured = capsys.readouterr()
    assert code == 1
    assert "error:" in captured.err
    assert PASSWORD not in captured.out + captured.err


def test_the_documented_adapter_file_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ca_file: Path
) -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "security.md"
    block = re.findall(r"```yaml\n(.*?)```", docs.read_text(), flags=re.DOTALL)[0]
    monkeypatch.setenv("DPMPTSP_KAFKA_PASSWORD", PASSWORD)
    monkeypatch.setenv("DPMPTSP_DB_URL", f"sqlite:///{tmp_path / 'replika.db'}")
    path = tmp_path / "documented.yaml"
    path.write_text(block.replace("/etc/spbe-bus/kafka-ca.pem", str(ca_file)))
    adapter = load_adapter(path)
    assert isinstance(adapter, SqlSinkFile)
    assert adapter.subscription.security.describe() == "SASL_SSL SCRAM-SHA-512 as dpmptsp-penduduk"


def test_with_an_adapter_file_a_command_connects_as_its_subscription(
    tmp_path: Path, ca_file: Path
) -> None:
    from bus.cli.replay_cmd import bootstrap_of as replay_bootstrap_of

    subscription = SubscriberConfig(
        bootstrap_servers="kafka-adapter:9093",
        security=KafkaSecurity(
            protocol="SASL_SSL", username="sink", password=PASSWORD, ca_file=ca_file
        ),
        subscriber_id="s",
        topics=("t",),
    )
    parser = build_parser()
    plain = parser.parse_args(["dlq", "list", "--subscriber", "s"])
    assert replay_bootstrap_of(plain, subscription) == subscription.connection
    given = _credentials(tmp_path / "operator.json", "kafka-file:9093")
    with_file = parser.parse_args(["dlq", "list", "--subscriber", "s", "--credentials", str(given)])
    connection = replay_bootstrap_of(with_file, subscription)
    assert connection.bootstrap_servers == "kafka-adapter:9093"  # the file's servers come last
    assert connection.security.username == "spbe-operator"
    overridden = parser.parse_args(["dlq", "list", "--subscriber", "s", "--bootstrap", "b:1"])
    assert replay_bootstrap_of(overridden, subscription).bootstrap_servers == "b:1"
