"""Peers (``--peers``): Debezium's outbox connector beside our relay, same outbox, same broker.

Each run gets an outbox table of its own (our table, ``adapters.sources.outbox``) and a
topic of its own with ``message.timestamp.type=LogAppendTime``, so every record carries
the time the broker appended it. Both contenders read the same rows, written by
:mod:`bench.outbox_side`:

* backlog: ``rows`` rows wait in the outbox; the clock runs from the relay's start (its
  process ready) or the connector's start (``PUT /resume`` of a stopped connector whose
  slot already exists) to the append time of the last row's record;
* latency: a writer offers a fixed load; each row's latency is its record's append time
  minus the application's commit time.

A consumer reads the topic and keeps each event id's first append time (our relay puts
the id in ``ce_id``, EventRouter in ``id``; duplicates count once).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, TopicPartition

from adapters.db import create_engine
from adapters.sources.outbox import OutboxRelayConfig, create_outbox_table
from bench import outbox_side, workload
from bench.connect_config import EVENT_ID_HEADER, debezium_outbox, slot_name
from bench.connect_worker import ConnectWorker
from bench.endtoend import _Relay
from bench.stats import percentile, rate
from bus.connection import KafkaConnection, as_connection
from bus.topics import ensure_topics

__all__ = ["Backlog", "Latency", "debezium_backlog", "debezium_latency", "relay_backlog"]

T = TypeVar("T")
Step = Callable[[str, Callable[[], T]], T | None]

_mp = multiprocessing.get_context("spawn")
PARTITIONS = 4
#: The longest wait for the last record after the load was written.
WAIT_CAP_S = 180.0
RELAY_ID_HEADER = "ce_id"
#: ``record.timestamp_type`` of a record stamped by the broker.
LOG_APPEND_TIME = 1


@dataclass(frozen=True, slots=True)
class _Outbox:
    tag: str
    table: str
    topic: str


async def _new_outbox(bootstrap: str, database_url: str, kind: str) -> _Outbox:
    tag = f"{kind}_{uuid.uuid4().hex[:8]}"
    engine = create_engine(database_url)
    try:
        create_outbox_table(engine, table=f"outbox_{tag}")
    finally:
        engine.dispose()
    topic = f"bench.peers.{tag}"
    await ensure_topics(
        bootstrap,
        {topic: PARTITIONS},
        replication_factor=1,
        configs={"message.timestamp.type": "LogAppendTime"},
    )
    return _Outbox(tag=tag, table=f"outbox_{tag}", topic=topic)


def _event_ids(database_url: str, table: str) -> set[str]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text(f"SELECT event_id FROM {table}"))  # noqa: S608
            return {row[0] for row in rows}
    finally:
        engine.dispose()


async def _append_times(
    kafka: KafkaConnection | str, topic: str, header: str, wanted: set[str], timeout_s: float
) -> dict[str, float]:
    """Each wanted event id's first broker append time (s), read until all or the timeout."""
    consumer = AIOKafkaConsumer(**as_connection(kafka).aiokafka_options(), enable_auto_commit=False)
    await consumer.start()
    seen: dict[str, float] = {}
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + timeout_s
        while len(seen) < len(wanted) and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for record in (r for records in batch.values() for r in records):
                if record.timestamp_type != LOG_APPEND_TIME:
                    raise RuntimeError(f"{topic} does not stamp records with LogAppendTime")
                value = dict(record.headers).get(header)
                event_id = value.decode() if value else None
                if event_id in wanted and event_id not in seen:
                    seen[event_id] = record.timestamp / 1000
    finally:
        await consumer.stop()
    return seen


@dataclass(frozen=True, slots=True)
class Backlog:
    rows: int
    #: Rows/s from the start to the last row's append time.
    rows_per_s: float
    #: Rows/s from the first row's append time to the last's (start-up left out).
    steady_rows_per_s: float
    #: Seconds from the start to the first row's append time.
    first_after_s: float


def _backlog(started: float, times: dict[str, float], wanted: set[str], topic: str) -> Backlog:
    if len(times) < len(wanted):
        missing = len(wanted) - len(times)
        raise RuntimeError(f"{missing} of {len(wanted)} rows had not reached {topic} in time")
    first, last = min(times.values()), max(times.values())
    return Backlog(
        rows=len(wanted),
        rows_per_s=rate(len(wanted), last - started),
        steady_rows_per_s=rate(len(wanted) - 1, last - first),
        first_after_s=first - started,
    )


@dataclass(frozen=True, slots=True)
class Latency:
    offered_per_s: float
    events: int
    not_arrived: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float


def _relay_config(bootstrap: str, database_url: str, box: _Outbox) -> OutboxRelayConfig:
    return OutboxRelayConfig(
        database_url=database_url,
        bootstrap_servers=bootstrap,
        source=workload.SOURCE,
        table=box.table,
        topic_overrides={workload.EVENT_NAME: box.topic},
    )


async def _offer(
    bootstrap: str, database_url: str, box: _Outbox, header: str, per_second: int, seconds: float
) -> Latency:
    """Write at ``per_second`` for ``seconds`` while a contender runs; time each row."""
    out: Any = _mp.Queue()
    writer = _mp.Process(
        target=outbox_side.write_at_rate,
        args=(database_url, box.table, 1, per_second, seconds, out),
    )
    writer.start()
    try:
        written: dict[str, Any] = await asyncio.to_thread(out.get, True, seconds + 300)
        await asyncio.to_thread(writer.join, 30)
    finally:
        if writer.is_alive():
            writer.terminate()
    committed: dict[str, float] = written["committed"]
    times = await _append_times(bootstrap, box.topic, header, set(committed), WAIT_CAP_S)
    latencies = [(times[i] - at) * 1000 for i, at in committed.items() if i in times]
    if not latencies:
        raise RuntimeError(f"none of {len(committed)} rows reached {box.topic}")
    return Latency(
        offered_per_s=rate(len(committed), written["offered_seconds"]),
        events=len(latencies),
        not_arrived=len(committed) - len(latencies),
        p50_ms=percentile(latencies, 50),
        p95_ms=percentile(latencies, 95),
        p99_ms=percentile(latencies, 99),
        max_ms=max(latencies),
    )


async def relay_backlog(bootstrap: str, database_url: str, rows: int) -> Backlog:
    box = await _new_outbox(bootstrap, database_url, "relay")
    await asyncio.to_thread(outbox_side.fill_outbox, database_url, box.table, 1, rows)
    wanted = _event_ids(database_url, box.table)
    relay = _Relay(_relay_config(bootstrap, database_url, box))
    try:
        started = await relay.start()
        times = await _append_times(bootstrap, box.topic, RELAY_ID_HEADER, wanted, WAIT_CAP_S)
    finally:
        await relay.stop()
    return _backlog(started, times, wanted, box.topic)


async def relay_latency(
    bootstrap: str, database_url: str, per_second: int, seconds: float
) -> Latency:
    box = await _new_outbox(bootstrap, database_url, "relay")
    relay = _Relay(_relay_config(bootstrap, database_url, box))
    try:
        await relay.start()
        return await _offer(bootstrap, database_url, box, RELAY_ID_HEADER, per_second, seconds)
    finally:
        await relay.stop()


async def _stream(
    worker: ConnectWorker,
    bootstrap: str,
    database_url: str,
    box: _Outbox,
    overrides: dict[str, str] | None = None,
) -> None:
    """Create the connector on ``box`` and wait until a first row went through it."""
    config = debezium_outbox(
        database_url=database_url, table=box.table, topic=box.topic, tag=box.tag
    )
    config.update(overrides or {})
    await asyncio.to_thread(worker.put_connector, box.tag, config)
    await asyncio.to_thread(worker.wait_state, box.tag, "RUNNING")
    await asyncio.to_thread(outbox_side.fill_outbox, database_url, box.table, 0, 1)
    warm = _event_ids(database_url, box.table)
    if not await _append_times(bootstrap, box.topic, EVENT_ID_HEADER, warm, 120):
        raise RuntimeError(f"Debezium streamed no row to {box.topic} in 120 s")


def _drop(worker: ConnectWorker, database_url: str, box: _Outbox) -> None:
    """Delete the connector, then its replication slot and publication."""
    worker.delete(box.tag)
    slot = slot_name(box.tag)
    engine = create_engine(database_url)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the slot is busy until the task has stopped
            with engine.begin() as connection:
                active = connection.execute(
                    sa.text("SELECT active FROM pg_replication_slots WHERE slot_name = :s"),
                    {"s": slot},
                ).scalar()
                if active is None:
                    break
                if not active:
                    connection.execute(sa.text("SELECT pg_drop_replication_slot(:s)"), {"s": slot})
                    break
            time.sleep(0.5)
        with engine.begin() as connection:
            connection.execute(sa.text(f'DROP PUBLICATION IF EXISTS "{slot}"'))
    finally:
        engine.dispose()


async def debezium_backlog(
    worker: ConnectWorker, bootstrap: str, database_url: str, rows: int
) -> Backlog:
    box = await _new_outbox(bootstrap, database_url, "dbz")
    try:
        await _stream(worker, bootstrap, database_url, box)
        warm = _event_ids(database_url, box.table)
        await asyncio.to_thread(worker.stop_connector, box.tag)
        await asyncio.to_thread(outbox_side.fill_outbox, database_url, box.table, 1, rows)
        wanted = _event_ids(database_url, box.table) - warm
        started = time.time()
        await asyncio.to_thread(worker.resume, box.tag)
        times = await _append_times(bootstrap, box.topic, EVENT_ID_HEADER, wanted, WAIT_CAP_S)
    finally:
        await asyncio.to_thread(_drop, worker, database_url, box)
    return _backlog(started, times, wanted, box.topic)


async def debezium_latency(
    worker: ConnectWorker,
    bootstrap: str,
    database_url: str,
    per_second: int,
    seconds: float,
    overrides: dict[str, str] | None = None,
) -> Latency:
    """Latency with Debezium's defaults, or with connector settings ``overrides``."""
    box = await _new_outbox(bootstrap, database_url, "dbz")
    try:
        await _stream(worker, bootstrap, database_url, box, overrides)
        return await _offer(bootstrap, database_url, box, EVENT_ID_HEADER, per_second, seconds)
    finally:
        await asyncio.to_thread(_drop, worker, database_url, box)


def as_dict(figure: Backlog | Latency | None) -> dict[str, Any] | None:
    return None if figure is None else asdict(figure)
