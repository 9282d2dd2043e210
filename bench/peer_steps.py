"""The ``--peers`` steps: jars, one Connect worker, backlog rounds, latency, the JDBC sink.

Every step runs through the bench's step runner, so a failed one is recorded in the
report's ``errors`` and the rest go on. The Connect worker is stopped on the way out,
also when a step failed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import peers
from bench.connect_worker import ConnectWorker
from bench.peer_jars import (
    DEBEZIUM_VERSION,
    Artifact,
    MavenMiss,
    connect_libs,
    debezium_postgres,
    plugin_dir,
)
from bench.stats import spread
from bus.localkafka.layout import default_kafka_version

__all__ = ["JDBC_SINKS", "JDBC_SINK_REFERENCE", "jdbc_sink", "measure"]

Step = Callable[[str, Callable[[], Any]], Any]

#: JDBC sink connectors tried, in order: the first that resolves would be the peer.
JDBC_SINKS = (
    Artifact("io.debezium", "debezium-connector-jdbc", DEBEZIUM_VERSION),
    Artifact("org.apache.camel.kafkaconnector", "camel-postgresql-sink-kafka-connector", "4.14.0"),
)
#: Debezium's PostgreSQL streaming sleeps ``poll.interval.ms`` (default 500) whenever the
#: WAL stream has nothing new: at a steady trickle that sleep is most of its latency, so
#: the latency run is repeated with it shorter.
TUNED = {"poll.interval.ms": "50"}
JDBC_SINK_REFERENCE = (
    "Debezium JDBC sink, about 2,300 events/s with batching, debezium.io blog, 2023-12-20"
)


def jdbc_sink() -> dict[str, Any]:
    """Try each JDBC sink connector from Maven Central once; say what happened.

    None is served here (checked on 2026-12-01), so no sink peer is run: the report
    cites the published figure instead. One that resolves is named, not measured.
    """
    tried: list[dict[str, str]] = []
    for artifact in JDBC_SINKS:
        try:
            plugin_dir(artifact)
        except MavenMiss as miss:
            tried.append({"artifact": artifact.coordinates, "outcome": miss.reason})
            continue
        tried.append({"artifact": artifact.coordinates, "outcome": "resolved; not run"})
        break
    return {"tried": tried, "measured": None, "reference": JDBC_SINK_REFERENCE}


def _backlog_rounds(
    worker: ConnectWorker | None, bootstrap: str, url: str, rows: int, rounds: int, step: Step
) -> dict[str, Any]:
    relay: list[peers.Backlog] = []
    debezium: list[peers.Backlog] = []
    ratios: list[float] = []
    for n in range(rounds):
        ours = step(
            f"peers: relay backlog round {n + 1}",
            lambda: asyncio.run(peers.relay_backlog(bootstrap, url, rows)),
        )
        theirs = None
        if worker is not None:
            theirs = step(
                f"peers: Debezium backlog round {n + 1}",
                lambda: asyncio.run(peers.debezium_backlog(worker, bootstrap, url, rows)),
            )
        relay += [ours] if ours else []
        debezium += [theirs] if theirs else []
        if ours and theirs:
            ratios.append(ours.rows_per_s / theirs.rows_per_s)
    result: dict[str, Any] = {"rows": rows}
    for name, figures in (("relay", relay), ("debezium", debezium)):
        if figures:
            result[name] = {
                "rows_per_s": spread([f.rows_per_s for f in figures]).as_dict(),
                "steady_rows_per_s": spread([f.steady_rows_per_s for f in figures]).as_dict(),
                "first_after_s": spread([f.first_after_s for f in figures]).as_dict(),
            }
    if ratios:
        result["ratio_relay_debezium"] = spread(ratios).as_dict()
    return result


def measure(
    bootstrap: str,
    database_url: str,
    workdir: Path,
    *,
    rows: int,
    rounds: int,
    per_second: int,
    seconds: float,
    step: Step,
) -> dict[str, Any]:
    """Every peer figure; what could not be measured is left out (its error is recorded)."""
    kafka_version = default_kafka_version()
    result: dict[str, Any] = {
        "versions": {"kafka-connect": kafka_version, "debezium": DEBEZIUM_VERSION},
        "settings": {
            "debezium": "pgoutput, snapshot.mode=no_data, poll.interval.ms 500 and "
            "max.batch.size 2048 (defaults), StringConverter, Connect producer defaults",
            "relay": "OutboxRelayConfig defaults (poll 200 ms, batches of 500)",
        },
    }
    plugin = step("peers: resolve Kafka Connect and Debezium jars", lambda: _jars(kafka_version))
    worker: ConnectWorker | None = None
    try:
        if plugin is not None:
            worker = ConnectWorker(
                workdir / "connect",
                bootstrap=bootstrap,
                kafka_version=kafka_version,
                plugin_path=[plugin],
            )
            if step("peers: start Kafka Connect", worker.start) is None:
                worker.stop()
                worker = None
        result["backlog"] = _backlog_rounds(worker, bootstrap, database_url, rows, rounds, step)
        latency: dict[str, Any] = {"target_per_s": per_second, "seconds": seconds}
        ours = step(
            "peers: relay latency",
            lambda: asyncio.run(peers.relay_latency(bootstrap, database_url, per_second, seconds)),
        )
        latency["relay"] = peers.as_dict(ours)
        if worker is not None:
            theirs = step(
                "peers: Debezium latency",
                lambda: asyncio.run(
                    peers.debezium_latency(worker, bootstrap, database_url, per_second, seconds)
                ),
            )
            latency["debezium"] = peers.as_dict(theirs)
            tuned = step(
                "peers: Debezium latency (poll.interval.ms 50)",
                lambda: asyncio.run(
                    peers.debezium_latency(
                        worker, bootstrap, database_url, per_second, seconds, TUNED
                    )
                ),
            )
            latency["debezium_tuned"] = peers.as_dict(tuned)
            latency["debezium_tuned_settings"] = TUNED
        result["latency"] = latency
    finally:
        if worker is not None:
            worker.stop()
    result["jdbc_sink"] = step("peers: JDBC sink", jdbc_sink)
    return result


def _jars(kafka_version: str) -> Path:
    connect_libs(kafka_version)
    return plugin_dir(debezium_postgres())
