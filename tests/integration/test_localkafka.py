"""The local Kafka manager against real brokers started from the Kafka jars."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bus.errors import BrokerNotReadyError, PortInUseError
from bus.localkafka.layout import ClusterLayout
from bus.localkafka.manager import ClusterStatus, LocalKafka
from bus.localkafka.processes import is_alive
from tests.support.kafka import create_topic, leaders, produce, read_all
from tests.support.ports import free_port_block

pytestmark = pytest.mark.integration


async def healthy(manager: LocalKafka, timeout_s: float = 120) -> ClusterStatus:
    """The cluster's status once every node runs and answers (a loaded machine is slow)."""
    deadline = time.monotonic() + timeout_s
    while not (status := manager.status()).healthy:
        assert time.monotonic() < deadline, f"not healthy within {timeout_s:g} s: {status}"
        await asyncio.sleep(0.5)
    return status


def _pids(manager: LocalKafka) -> list[int]:
    status = manager.status()
    return [n.pid for n in status.nodes if n.pid is not None]


async def test_up_serves_clients_and_down_leaves_no_process(tmp_path: Path) -> None:
    manager = LocalKafka(tmp_path / "kafka")
    layout = manager.up(port=free_port_block(2))
    pids = _pids(manager)
    try:
        assert manager.status().healthy
        await create_topic(layout.bootstrap_servers, "roundtrip")
        await produce(layout.bootstrap_servers, "roundtrip", [b"satu", b"dua", b"tiga"])
        records = await read_all(layout.bootstrap_servers, "roundtrip", 3)
        assert [r.value for r in records] == [b"satu", b"dua", b"tiga"]
        assert manager.up() == layout, "a second up on a running cluster changes nothing"
    finally:
        outcome = manager.down()
    assert outcome == {1: "stopped"}
    assert pids
    assert not any(is_alive(pid) for pid in pids)
    assert not manager.status().healthy


async def test_restart_keeps_a_topics_data(tmp_path: Path) -> None:
    manager = LocalKafka(tmp_path / "kafka")
    layout = manager.up(port=free_port_block(2))
    try:
        await create_topic(layout.bootstrap_servers, "durable", partitions=2)
        values = [f"event-{i}".encode() for i in range(50)]
        await produce(layout.bootstrap_servers, "durable", values)
        manager.down()
        again = manager.up()
        assert again.bootstrap_servers == layout.bootstrap_servers
        records = await read_all(again.bootstrap_servers, "durable", 50)
        assert sorted(r.value for r in records) == sorted(values)
    finally:
        manager.down()


@pytest.mark.slow
async def test_three_nodes_keep_acknowledged_messages_when_a_broker_is_killed(
    tmp_path: Path,
) -> None:
    manager = LocalKafka(tmp_path / "kafka3", ready_timeout_s=240)
    layout = manager.up(nodes=3, port=free_port_block(6))
    bootstrap = layout.bootstrap_servers
    try:
        assert layout.nodes == 3
        await create_topic(
            bootstrap,
            "replicated",
            partitions=3,
            replication=3,
            configs={"min.insync.replicas": "2"},
        )
        before = [f"before-{i}".encode() for i in range(300)]
        await produce(bootstrap, "replicated", before)

        leader = (await leaders(bootstrap, "replicated"))[0]
        victim = manager.status().nodes[leader - 1]
        assert victim.pid is not None
        os.kill(victim.pid, signal.SIGKILL)

        survivors = ",".join(
            f"127.0.0.1:{layout.broker_port(n)}" for n in layout.node_ids if n != leader
        )
        after = [f"after-{i}".encode() for i in range(300)]
        await produce(survivors, "replicated", after)
        records = await read_all(survivors, "replicated", 600)
        got = sorted(r.value for r in records)
        assert got == sorted(before + after), "every acknowledged message survives the kill"

        down_node = manager.status()
        assert not down_node.healthy
        assert [n.node_id for n in down_node.nodes if not n.running] == [leader]
        others = {n.node_id: n.pid for n in down_node.nodes if n.node_id != leader}

        manager.up()  # the killed node's PID file is stale: exactly that node starts again
        back = await healthy(manager)
        assert {n.node_id: n.pid for n in back.nodes if n.node_id != leader} == others, (
            "up leaves the nodes that kept running alone"
        )
        assert back.nodes[leader - 1].pid not in (None, victim.pid)
        records = await read_all(bootstrap, "replicated", 600)
        assert sorted(r.value for r in records) == sorted(before + after)
    finally:
        outcome = manager.down()
    assert set(outcome.values()) <= {"stopped", "killed"}, outcome
    assert len(outcome) == 3


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bus.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )


def test_cli_broker_serves_a_client_that_is_not_aiokafka(tmp_path: Path) -> None:
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    data_dir = str(tmp_path / "cli")
    port = free_port_block(2)
    up = _cli("kafka", "up", "--data-dir", data_dir, "--port", str(port))
    assert up.returncode == 0, up.stderr
    bootstrap = f"127.0.0.1:{port}"
    assert f"bootstrap: {bootstrap}" in up.stdout
    pids = _pids(LocalKafka(Path(data_dir)))
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        admin.create_topics([NewTopic("kafka-python", num_partitions=1, replication_factor=1)])
        admin.close()
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
        for i in range(5):
            producer.send("kafka-python", f"pesan-{i}".encode())
        producer.flush()
        producer.close()
        consumer = KafkaConsumer(
            "kafka-python",
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            consumer_timeout_ms=30000,
        )
        got = [m.value for m in consumer]
        consumer.close()
        assert got == [f"pesan-{i}".encode() for i in range(5)]
        status = _cli("kafka", "status", "--data-dir", data_dir)
        assert status.returncode == 0
        assert "healthy" in status.stdout
    finally:
        down = _cli("kafka", "down", "--data-dir", data_dir)
    assert down.returncode == 0, down.stderr
    assert "node 1: stopped" in down.stdout
    assert pids
    assert not any(is_alive(pid) for pid in pids)
    status = _cli("kafka", "status", "--data-dir", data_dir)
    assert status.returncode == 1
    assert "NOT healthy" in status.stdout


def _path_without(tool: str, tmp_path: Path, keep: tuple[str, ...] = ()) -> str:
    """A PATH holding only links to ``keep`` (and the running Python), never ``tool``."""
    bin_dir = tmp_path / f"bin-without-{tool}"
    bin_dir.mkdir()
    for name in keep:
        for directory in os.environ["PATH"].split(os.pathsep):
            candidate = Path(directory) / name
            if candidate.exists():
                (bin_dir / name).symlink_to(candidate.resolve())
                break
    return str(bin_dir)


def test_missing_java_is_reported_with_the_fix(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("JAVA_HOME", "SPBE_JAVA")}
    env["PATH"] = _path_without("java", tmp_path)
    result = _cli(
        "kafka", "up", "--data-dir", str(tmp_path / "k"), "--port", str(free_port_block(2)), env=env
    )
    assert result.returncode == 1
    assert "no Java runtime found" in result.stderr
    assert "fix: install a JDK 17" in result.stderr


def test_missing_maven_is_reported_with_the_fix(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("SPBE_MAVEN", "SPBE_KAFKA_LIBS")}
    env["PATH"] = _path_without("mvn", tmp_path, keep=("java",))
    env["SPBE_CACHE_DIR"] = str(tmp_path / "empty-cache")
    result = _cli(
        "kafka", "up", "--data-dir", str(tmp_path / "k"), "--port", str(free_port_block(2)), env=env
    )
    assert result.returncode == 1
    assert "Maven ('mvn') was not found" in result.stderr
    assert "apt-get install maven" in result.stderr


def test_unreachable_maven_central_is_reported_with_the_fix(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead_port = closed.getsockname()[1]
    settings = tmp_path / "settings.xml"
    settings.write_text(
        "<settings><mirrors><mirror><id>offline</id><mirrorOf>*</mirrorOf>"
        f"<url>http://127.0.0.1:{dead_port}/maven2</url></mirror></mirrors></settings>"
    )
    from bus.errors import ArtifactResolutionError
    from bus.localkafka.artifacts import resolve_kafka

    with pytest.raises(ArtifactResolutionError) as caught:
        resolve_kafka(
            "4.1.1",
            cache_dir=tmp_path / "cache",
            maven_settings=settings,
            maven_repo_local=tmp_path / "m2",
        )
    assert "Maven Central is unreachable" in str(caught.value)
    assert caught.value.fix is not None
    assert "SPBE_KAFKA_LIBS" in caught.value.fix
    assert not (tmp_path / "cache" / "kafka" / "4.1.1" / ".complete").exists()


def test_port_in_use_is_reported_with_the_fix(tmp_path: Path) -> None:
    port = free_port_block(2)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        with pytest.raises(PortInUseError) as caught:
            LocalKafka(tmp_path / "k").up(port=port)
    assert f"port {port}" in str(caught.value)
    assert "--port" in str(caught.value)


def test_stale_pid_file_counts_as_not_running_and_is_never_signalled(tmp_path: Path) -> None:
    manager = LocalKafka(tmp_path / "k")
    port = free_port_block(2)
    # A cluster that was up once, then its machine rebooted and the PID went to another process.
    manager.data_dir.mkdir(parents=True)
    (manager.data_dir / "cluster.json").write_text(
        ClusterLayout.for_base_port(port=port).model_dump_json()
    )
    pid_file = manager.node_dir(1) / "kafka.pid"
    pid_file.parent.mkdir(parents=True)
    sleeper = subprocess.Popen(["sleep", "60"])  # alive, but not our broker
    try:
        pid_file.write_text(f"{sleeper.pid}\n")
        assert not manager.status().nodes[0].running
        assert manager.running_pid(1) is None
        assert not pid_file.exists(), "a stale PID file is removed once it is found stale"
        pid_file.write_text(f"{sleeper.pid}\n")
        assert manager.down() == {1: "stale pid file removed"}
        assert sleeper.poll() is None, "neither up nor down signals a process that is not ours"
        assert not pid_file.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_broker_not_ready_in_time_shows_the_log_and_leaves_nothing(tmp_path: Path) -> None:
    manager = LocalKafka(tmp_path / "k", ready_timeout_s=0.5)
    with pytest.raises(BrokerNotReadyError) as caught:
        manager.up(port=free_port_block(2))
    message = str(caught.value)
    assert "did not answer a metadata request" in message
    assert "--- last lines of the broker log ---" in message
    assert "--timeout" in message
    assert not (manager.node_dir(1) / "kafka.pid").exists()
    assert not manager.status().nodes[0].running
