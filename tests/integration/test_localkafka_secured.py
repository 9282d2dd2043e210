"""``spbe-bus kafka up --secure``: the production shape on loopback, against real brokers."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
)
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_fixed

from bus.connection import KafkaConnection, KafkaSecurity
from bus.errors import ClusterLayoutError
from bus.localkafka.manager import LocalKafka
from tests.integration.test_localkafka import healthy
from tests.support.kafka import create_topic, leaders, produce, read_all
from tests.support.ports import free_port_block
from tests.support.secured import create_user, grant

pytestmark = pytest.mark.integration


async def eventually(attempt: Callable[[], Awaitable[None]], timeout_s: float = 60) -> None:
    """``attempt`` until it is no longer refused: new ACLs reach every broker a moment later."""
    retrying = AsyncRetrying(
        stop=stop_after_delay(timeout_s),
        wait=wait_fixed(0.5),
        retry=retry_if_exception_type(
            (TopicAuthorizationFailedError, ClusterAuthorizationFailedError)
        ),
        reraise=True,
    )

    async def awaited() -> None:  # tenacity awaits coroutine functions only, not lambdas
        await attempt()

    await retrying(awaited)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_operator_gets_in_and_a_plaintext_client_does_not(
    secured_kafka: KafkaConnection,
) -> None:
    topic = f"secured.roundtrip.{uuid.uuid4().hex[:8]}"
    await create_topic(secured_kafka, topic)
    await produce(secured_kafka, topic, [b"satu", b"dua"])
    assert [r.value for r in await read_all(secured_kafka, topic, 2)] == [b"satu", b"dua"]

    plaintext = AIOKafkaProducer(
        bootstrap_servers=secured_kafka.bootstrap_servers, request_timeout_ms=5000
    )
    with pytest.raises(KafkaConnectionError):
        await plaintext.start()
    await plaintext.stop()


async def test_a_user_without_acls_is_refused_until_granted(
    secured_kafka: KafkaConnection,
) -> None:
    topic = f"secured.acl.{uuid.uuid4().hex[:8]}"
    await create_topic(secured_kafka, topic)
    user = f"user-{uuid.uuid4().hex[:6]}"
    connection = await create_user(secured_kafka, user, "rahasia-" + uuid.uuid4().hex)

    with pytest.raises((TopicAuthorizationFailedError, ClusterAuthorizationFailedError)):
        await produce(connection, topic, [b"tanpa-izin"])

    await grant(secured_kafka, user, topic, ["WRITE", "DESCRIBE"])
    await grant(secured_kafka, user, "kafka-cluster", ["IDEMPOTENT_WRITE"], resource_type="BROKER")
    await eventually(lambda: produce(connection, topic, [b"dengan-izin"]))
    assert [r.value for r in await read_all(secured_kafka, topic, 1)] == [b"dengan-izin"]


def test_secret_files_are_private_and_name_the_ca(tmp_path: Path) -> None:
    manager = LocalKafka(tmp_path / "kafka", ready_timeout_s=240)
    layout = manager.up(port=free_port_block(3), secure=True)
    try:
        credentials = manager.credentials_file
        assert _mode(credentials) == 0o600
        stored = json.loads(credentials.read_text())
        assert stored["protocol"] == "SASL_SSL"
        assert stored["sasl_mechanism"] == "SCRAM-SHA-512"
        assert stored["username"] == "spbe-operator"
        assert stored["bootstrap"] == layout.bootstrap_servers
        assert Path(stored["ca_file"]).read_text().startswith("-----BEGIN CERTIFICATE-----")
        keys = [tmp_path / "kafka" / "tls" / "ca.key", *tmp_path.glob("kafka/node-*/tls/*.key")]
        for key in keys:
            assert _mode(key) == 0o600, key
        properties = (manager.node_dir(1) / "server.properties").read_text()
        assert "ssl.keystore.type=PEM" in properties
        assert "allow.everyone.if.no.acl.found=false" in properties
        assert "PLAINTEXT://" not in properties

        # A second up keeps the operator's password (it lives in the metadata log).
        password = stored["password"]
        manager.down()
        manager.up()
        assert json.loads(credentials.read_text())["password"] == password
        assert manager.status().healthy, "the operator still gets in after a restart"

        with pytest.raises(ClusterLayoutError, match="secured"):
            manager.up(secure=False)
    finally:
        manager.down()


async def test_three_secured_nodes_survive_the_kill_of_one(tmp_path: Path) -> None:
    manager = LocalKafka(tmp_path / "kafka3", ready_timeout_s=240)
    layout = manager.up(nodes=3, port=free_port_block(9), secure=True)
    operator = manager.connection(layout)
    try:
        await create_topic(
            operator, "replicated", partitions=3, replication=3,
            configs={"min.insync.replicas": "2"},
        )  # fmt: skip
        before = [f"before-{i}".encode() for i in range(200)]
        await produce(operator, "replicated", before)

        leader = (await leaders(operator, "replicated"))[0]
        victim = manager.status().nodes[leader - 1]
        assert victim.pid is not None
        os.kill(victim.pid, signal.SIGKILL)

        survivors = operator.model_copy(
            update={
                "bootstrap_servers": ",".join(
                    f"127.0.0.1:{layout.broker_port(n)}" for n in layout.node_ids if n != leader
                )
            }
        )
        after = [f"after-{i}".encode() for i in range(200)]
        await produce(survivors, "replicated", after)
        records = await read_all(survivors, "replicated", 400)
        assert sorted(r.value for r in records) == sorted(before + after)

        manager.up()
        await healthy(manager)
        records = await read_all(operator, "replicated", 400)
        assert sorted(r.value for r in records) == sorted(before + after)
    finally:
        manager.down()


def test_cli_up_secure_prints_where_the_credentials_are(tmp_path: Path) -> None:
    data_dir = tmp_path / "kafka"
    port = free_port_block(3)
    env = {**os.environ, "SPBE_KAFKA_HOME": str(data_dir)}
    try:
        result = subprocess.run(
            [sys.executable, "-m", "bus.cli.main", "kafka", "up", "--secure", "--port", str(port)],
            capture_output=True, text=True, env=env, timeout=600, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "secured: SASL_SSL" in result.stdout
        assert f"SPBE_KAFKA_CREDENTIALS={data_dir / 'credentials.json'}" in result.stdout
        password = json.loads((data_dir / "credentials.json").read_text())["password"]
        assert password not in result.stdout + result.stderr
        security = KafkaSecurity(credentials_file=data_dir / "credentials.json")
        assert security.principal == "User:spbe-operator"
    finally:
        subprocess.run(
            [sys.executable, "-m", "bus.cli.main", "kafka", "down"],
            env=env, capture_output=True, timeout=300, check=False,
        )  # fmt: skip
