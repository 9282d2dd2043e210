"""One broker of three dies: adapters still start and run, and ``kafka up`` brings it back.

Everything here is a real process: a 3-node KRaft cluster started with ``spbe-bus kafka
up``, Disdukcapil's outbox relay, the contract service and DPMPTSP's SQL sink (on its
projected topic) each started with ``spbe-bus run`` from their files in
``deploy/adapters/``, and brokers stopped with SIGKILL.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO, Any

import pytest
import sqlalchemy as sa
from aiokafka import TopicPartition

from adapters.db import create_engine
from adapters.ledger import create_ledger_table
from adapters.opd.disdukcapil import siak
from bus.contract.projection import projected_topic
from bus.delivery import dlq_topic
from bus.localkafka.manager import LocalKafka
from bus.ops.catalog import default_catalog_path, read_catalog
from bus.topics import ensure_topics
from tests.integration.test_subscriber import end_offsets
from tests.support.events import penduduk
from tests.support.kafka import leaders
from tests.support.ports import free_port_block

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
TOPIC = "spbe.dukcapil.penduduk.v1"
SUBSCRIBER = "dpmptsp-penduduk"
RESIDENTS = 30
KEY_SECRET = "rahasia-uji-kunci-nik-untuk-pseudonim"
PROJECTED = projected_topic(TOPIC, SUBSCRIBER)


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bus.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=REPO,
        env={**os.environ, **(env or {})},
    )


@dataclass
class Adapter:
    name: str
    process: subprocess.Popen[str]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def events(self) -> list[dict[str, Any]]:
        found = []
        for line in self.text().splitlines():
            if line.startswith("{"):
                try:
                    found.append(json.loads(line))
                except ValueError:
                    continue
        return found


def start_adapter(name: str, env: dict[str, str], logs: Path) -> Adapter:
    log = logs / f"{name}.log"
    out: IO[str] = log.open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bus.cli.main",
            "--log-level",
            "INFO",
            "--log-json",
            "run",
            str(REPO / "deploy" / "adapters" / f"{name}.yaml"),
        ],
        stdout=out,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
        env={**os.environ, **env},
    )
    out.close()
    return Adapter(name, process, log)


def stop_adapter(adapter: Adapter) -> int:
    if adapter.process.poll() is None:
        adapter.process.send_signal(signal.SIGTERM)
    try:
        return adapter.process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        adapter.process.kill()
        adapter.process.wait()
        return -9


def source_rows(engine: sa.Engine) -> dict[str, tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(siak.PENDUDUK.c.nik, siak.PENDUDUK.c.jalan, siak.PENDUDUK.c.rt)
        )
        return {nik: (jalan, rt) for nik, jalan, rt in rows}


def replica_rows(path: Path) -> dict[str, tuple[str, str]]:
    if not path.exists():
        return {}
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT nik, jalan, rt FROM penduduk_replika"))
            return {nik: (jalan, rt) for nik, jalan, rt in rows}
    except sa.exc.OperationalError:  # the sink has not created its table yet
        return {}
    finally:
        engine.dispose()


async def until(check: Any, what: str, adapters: list[Adapter], timeout_s: float = 300) -> float:
    """Wait until ``check()`` holds; returns the monotonic time it did. Fails if an adapter dies."""
    deadline = time.monotonic() + timeout_s
    while True:
        if await asyncio.to_thread(check):
            return time.monotonic()
        for adapter in adapters:
            if adapter.process.poll() is not None:
                pytest.fail(
                    f"{adapter.name} exited ({adapter.process.returncode}):\n{adapter.text()}"
                )
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout_s:g} s")
        await asyncio.sleep(0.05)


def kill(manager: LocalKafka, node_id: int) -> None:
    pid = manager.status().nodes[node_id - 1].pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)


def move_everyone(engine: sa.Engine, niks: list[str], street: str) -> None:
    for nik in niks:
        siak.pindah_alamat(
            engine,
            nik,
            {"jalan": street, "rt": "003", "rw": "004", "kode_wilayah": "32.73.02.1002"},
            date(2026, 12, 1),
        )


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[LocalKafka, str]]:
    data_dir = tmp_path / "kafka3"
    up = cli(
        "kafka", "up", "--nodes", "3", "--port", str(free_port_block(6)),
        "--data-dir", str(data_dir), "--timeout", "240",
    )  # fmt: skip
    assert up.returncode == 0, up.stderr
    manager = LocalKafka(data_dir)
    layout = manager.stored_layout()
    assert layout is not None
    try:
        yield manager, layout.bootstrap_servers
    finally:
        manager.down()


async def test_adapters_start_and_run_while_one_of_three_brokers_is_down(
    cluster: tuple[LocalKafka, str], tmp_path: Path, record_property: Any
) -> None:
    manager, bootstrap = cluster
    data_dir = str(manager.data_dir)
    applied = cli("catalog", "apply", "--bootstrap", bootstrap)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    # What catalog apply does not provision yet: the projected topics of the raw topic for
    # every subscription receiving it, and the dead-letter topics of the contract service
    # and of the sink on its projected topic. The ledger's table is made by its owner.
    subscribers = [s.subscriber for s in read_catalog(default_catalog_path()).subscriptions]
    projected = [projected_topic(TOPIC, s) for s in subscribers if s.endswith("-penduduk")]
    dead = [dlq_topic(PROJECTED, SUBSCRIBER), dlq_topic(TOPIC, "spbe-contracts")]
    await ensure_topics(
        bootstrap, {**dict.fromkeys(projected, 3), **dict.fromkeys(dead, 1)}, replication_factor=3
    )
    ledger_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = create_engine(ledger_url)
    create_ledger_table(ledger)
    ledger.dispose()

    source_db, replica_db = tmp_path / "disdukcapil.db", tmp_path / "dpmptsp.db"
    source = sa.create_engine(f"sqlite:///{source_db}")
    siak.create_tables(source)
    niks = []
    for serial in range(1, RESIDENTS + 1):
        resident = penduduk(serial)
        siak.daftarkan(source, resident)
        niks.append(resident.nik)

    kill(manager, 3)
    status = cli("kafka", "status", "--data-dir", data_dir)
    assert status.returncode == 1
    assert "NOT healthy: node 3 is not running" in status.stdout
    assert "spbe-bus kafka up" in status.stdout

    env = {
        "SPBE_KAFKA_BOOTSTRAP": bootstrap,
        "DISDUKCAPIL_DB_URL": f"sqlite:///{source_db}",
        "DISDUKCAPIL_KEY_SECRET": KEY_SECRET,
        "DPMPTSP_DB_URL": f"sqlite:///{replica_db}",
        "SPBE_CREATE_TABLES": "true",
        "SPBE_CONTRACTS_PAIRWISE_SECRET": "rahasia-uji-kunci-berpasangan-0123",
        "SPBE_LEDGER_SECRET": "rahasia-uji-buku-besar-0123456789",
        "SPBE_LEDGER_URL": ledger_url,
    }
    logs = tmp_path / "logs"
    logs.mkdir()
    adapters = [
        start_adapter("disdukcapil-outbox-relay", env, logs),
        start_adapter("contracts", env, logs),
        start_adapter("dpmptsp-penduduk-sink", env, logs),
    ]
    try:
        # Started while node 3 is dead (and, for its first seconds, still listed as a broker).
        await until(
            lambda: replica_rows(replica_db) == source_rows(source), "the first copy", adapters
        )

        # The operator brings the crashed node back; the others keep their processes.
        before = {n.node_id: n.pid for n in manager.status().nodes if n.running}
        up = cli("kafka", "up", "--data-dir", data_dir, "--timeout", "240")
        assert up.returncode == 0, up.stderr
        await until(
            lambda: cli("kafka", "status", "--data-dir", data_dir).returncode == 0,
            "kafka status saying healthy",
            adapters,
        )
        assert {n.node_id: n.pid for n in manager.status().nodes if n.node_id != 3} == before

        move_everyone(source, niks, "Jl. Dipatiukur No. 12")
        await until(
            lambda: replica_rows(replica_db) == source_rows(source), "the copy after up", adapters
        )

        # Kill the leader of a partition of the event topic while both adapters run, and
        # time the failover: until Kafka elects new leaders, and until every change applies.
        victim = (await leaders(bootstrap, TOPIC))[0]
        layout = manager.stored_layout()
        assert layout is not None
        survivors = ",".join(
            f"{layout.host}:{layout.broker_port(n)}" for n in layout.node_ids if n != victim
        )
        killed_at = time.monotonic()
        kill(manager, victim)
        await asyncio.to_thread(move_everyone, source, niks, "Jl. Ganesha No. 10")
        elected = asyncio.create_task(until_leaders_move(survivors, TOPIC, victim))
        applied_at = await until(
            lambda: replica_rows(replica_db) == source_rows(source),
            "the copy after a kill",
            adapters,
        )
        elected_at = await elected
        election_s = elected_at - killed_at
        pause_s = applied_at - killed_at
        record_property("leader_election_s", round(election_s, 2))
        record_property("apply_after_kill_s", round(pause_s, 2))
        print(
            f"\nfailover: leaders moved {election_s:.2f} s after the kill, every change applied "
            f"{pause_s:.2f} s after it ({pause_s - election_s:+.2f} s beyond the election)"
        )
    finally:
        codes = {a.name: stop_adapter(a) for a in adapters}
        source.dispose()

    assert codes == {a.name: 0 for a in adapters}, {a.name: a.text()[-3000:] for a in adapters}
    for adapter in adapters:
        text = adapter.text()
        assert "Traceback" not in text, f"{adapter.name} printed a traceback:\n{text[-3000:]}"
        levels = {e.get("level") for e in adapter.events()}
        assert "error" not in levels, f"{adapter.name} logged an error:\n{text[-3000:]}"
    waits = {
        a.name: [e["what"] for e in a.events() if e.get("event") == "kafka.waiting"]
        for a in adapters
    }
    print(f"start-up waits while node 3 was down: {waits}")
    for dlq in (dlq_topic(PROJECTED, SUBSCRIBER), dlq_topic(TOPIC, "spbe-contracts")):
        assert await end_offsets(survivors, dlq, 1) == {TopicPartition(dlq, 0): 0}, dlq


async def until_leaders_move(bootstrap: str, topic: str, victim: int) -> float:
    """The monotonic time at which no partition of ``topic`` is led by ``victim`` any more."""
    while True:
        try:
            current = await leaders(bootstrap, topic)
        except Exception:  # a metadata request during the failover may fail
            current = {0: victim}
        if current and victim not in current.values() and -1 not in current.values():
            return time.monotonic()
        await asyncio.sleep(0.05)
