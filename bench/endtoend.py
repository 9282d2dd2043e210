"""End to end: outbox in PostgreSQL → OutboxRelay → Kafka → Subscriber + SqlSink → PostgreSQL.

The relay and the outbox writer run in processes of their own (as they would in
production); the subscriber with the SQL sink runs in this process.

* :func:`sustained`: ``count`` rows wait in the outbox; the clock runs from the relay's
  start to the sink's last commit.
* :func:`latency`: a writer offers a fixed load; each event's latency is its sink commit
  time minus its outbox commit time.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import uuid
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from typing import Any

from adapters.db import create_engine
from adapters.sources.outbox import OutboxRelayConfig, create_outbox_table
from bench import outbox_side, workload
from bench.environment import create_topic
from bench.sink_side import SinkClock, with_sink
from bench.stats import percentile, rate

__all__ = ["LatencyResult", "latency", "sustained"]

_mp = multiprocessing.get_context("spawn")
PARTITIONS = 4
#: The longest wait for the sink after the load ended; figures cover what arrived.
WAIT_CAP_S = 120.0


@dataclass(frozen=True, slots=True)
class _Round:
    topic: str
    outbox: str
    sink_table: str
    subscriber_id: str


async def _new_round(bootstrap: str, database_url: str) -> _Round:
    tag = uuid.uuid4().hex[:8]
    engine = create_engine(database_url)
    try:
        create_outbox_table(engine, table=f"outbox_{tag}")
    finally:
        engine.dispose()
    return _Round(
        topic=await create_topic(bootstrap, f"bench.e2e.{tag}", PARTITIONS),
        outbox=f"outbox_{tag}",
        sink_table=f"izin_{tag}",
        subscriber_id=f"bench-e2e-{tag}",
    )


def _relay_config(bootstrap: str, database_url: str, step: _Round) -> OutboxRelayConfig:
    return OutboxRelayConfig(
        database_url=database_url,
        bootstrap_servers=bootstrap,
        source=workload.SOURCE,
        table=step.outbox,
        topic_overrides={workload.EVENT_NAME: step.topic},
    )


class _Relay:
    """The relay process: started, its start time read, stopped and joined."""

    def __init__(self, config: OutboxRelayConfig) -> None:
        self.ready: Any = _mp.Queue()
        self.stop_event = _mp.Event()
        self.process: BaseProcess = _mp.Process(
            target=outbox_side.run_relay, args=(config, self.ready, self.stop_event)
        )

    async def start(self) -> float:
        self.process.start()
        started: float = await asyncio.to_thread(self.ready.get, True, 180)
        return started

    async def stop(self) -> None:
        self.stop_event.set()
        await asyncio.to_thread(self.process.join, 60)
        if self.process.is_alive():
            self.process.terminate()


async def _sustained(bootstrap: str, database_url: str, count: int) -> float:
    step = await _new_round(bootstrap, database_url)
    await asyncio.to_thread(outbox_side.fill_outbox, database_url, step.outbox, 1, count)
    relay = _Relay(_relay_config(bootstrap, database_url, step))

    async def feed(_clock: SinkClock) -> float:
        await asyncio.sleep(2)  # let the subscriber join its group first
        return await relay.start()

    try:
        clock, started = await with_sink(
            bootstrap,
            database_url,
            step.topic,
            table=step.sink_table,
            subscriber_id=step.subscriber_id,
            expected=count,
            feed=feed,
            timeout_s=WAIT_CAP_S,
        )
    finally:
        await relay.stop()
    return rate(len(clock.applied), clock.last - started)


def sustained(bootstrap: str, database_url: str, count: int) -> float:
    """Events/s from a full outbox to the last sink commit."""
    return asyncio.run(_sustained(bootstrap, database_url, count))


@dataclass(frozen=True, slots=True)
class LatencyResult:
    offered_per_s: float
    events: int
    #: Events committed to the outbox that the sink had not applied when waiting ended.
    not_arrived: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float


async def _latency(
    bootstrap: str, database_url: str, per_second: int, seconds: float
) -> LatencyResult:
    step = await _new_round(bootstrap, database_url)
    relay = _Relay(_relay_config(bootstrap, database_url, step))
    out: Any = _mp.Queue()
    writer = _mp.Process(
        target=outbox_side.write_at_rate,
        args=(database_url, step.outbox, 1, per_second, seconds, out),
    )
    total = int(per_second * seconds)

    async def feed(_clock: SinkClock) -> dict[str, Any]:
        await asyncio.sleep(2)
        await relay.start()
        writer.start()
        written: dict[str, Any] = await asyncio.to_thread(out.get, True, seconds + 300)
        await asyncio.to_thread(writer.join, 30)
        return written

    try:
        clock, written = await with_sink(
            bootstrap,
            database_url,
            step.topic,
            table=step.sink_table,
            subscriber_id=step.subscriber_id,
            expected=total,
            feed=feed,
            timeout_s=WAIT_CAP_S,
        )
    finally:
        await relay.stop()
    committed: dict[str, float] = written["committed"]
    latencies = [
        (clock.applied[event_id] - at) * 1000
        for event_id, at in committed.items()
        if event_id in clock.applied
    ]
    return LatencyResult(
        offered_per_s=rate(len(committed), written["offered_seconds"]),
        events=len(latencies),
        not_arrived=len(committed) - len(latencies),
        p50_ms=percentile(latencies, 50),
        p95_ms=percentile(latencies, 95),
        p99_ms=percentile(latencies, 99),
        max_ms=max(latencies),
    )


def latency(bootstrap: str, database_url: str, per_second: int, seconds: float) -> LatencyResult:
    """Outbox-commit → sink-commit latency at a fixed offered load."""
    return asyncio.run(_latency(bootstrap, database_url, per_second, seconds))
