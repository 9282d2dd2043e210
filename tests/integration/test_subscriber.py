"""bus.Subscriber against a real broker: once per event, per-key order, dead letters, crashes."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from bus.contract.events import IzinDiterbitkan
from bus.delivery import Delivery, Outcome, RetryPolicy, dlq_topic
from bus.errors import PermanentError, TransientError
from bus.publisher import Publisher, PublisherConfig, PublishResult
from bus.subscriber import Subscriber, SubscriberConfig
from tests.conftest import TopicFactory
from tests.support.events import SOURCE_DPMPTSP, izin
from tests.support.kafka import committed_offsets, produce, read_all

pytestmark = pytest.mark.integration

FAST_RETRY = RetryPolicy(max_attempts=3, initial_backoff_ms=10, max_backoff_ms=50, jitter_ms=10)


async def eventually(
    check: Callable[[], bool],
    *,
    timeout_s: float = 180.0,
    watch: asyncio.Task[None] | None = None,
) -> None:
    """Wait until ``check()`` holds; fail clearly if it never does or ``watch`` dies."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not check():
        if watch is not None and watch.done():
            watch.result()  # re-raises what stopped the subscriber
            pytest.fail("the subscriber stopped before the condition held")
        if loop.time() > deadline:
            pytest.fail(f"condition not met within {timeout_s}s")
        await asyncio.sleep(0.1)


async def publish(bootstrap: str, topic: str, events: list[tuple[IzinDiterbitkan, int]]) -> None:
    config = PublisherConfig(
        bootstrap_servers=bootstrap,
        source=SOURCE_DPMPTSP,
        topic_overrides={"IzinDiterbitkan": topic},
    )
    async with Publisher(config) as publisher:
        results = await publisher.publish_many(events)
    assert all(isinstance(r, PublishResult) for r in results)


def subscriber_config(bootstrap: str, topic: str, name: str, **extra: object) -> SubscriberConfig:
    return SubscriberConfig.model_validate(
        {
            "bootstrap_servers": bootstrap,
            "subscriber_id": name,
            "topics": (topic,),
            "retry": FAST_RETRY,
            **extra,
        }
    )


def many_keys(keys: int, per_key: int) -> list[tuple[IzinDiterbitkan, int]]:
    """``per_key`` versions of each of ``keys`` permits, interleaved, sequence 1..per_key."""
    return [
        (izin(k, nama_usaha=f"Usaha {k} versi {s}"), s)
        for s in range(1, per_key + 1)
        for k in range(keys)
    ]


async def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    return ends


async def test_thousands_of_events_over_many_keys_apply_once_each_in_per_key_order(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic(partitions=4)
    events = many_keys(keys=100, per_key=30)
    await publish(kafka_bootstrap, topic, events)

    applied: set[tuple[str, str]] = set()
    last_sequence: dict[bytes | None, int] = {}
    out_of_order: list[tuple[bytes | None, int, int]] = []

    async def apply(delivery: Delivery) -> Outcome:
        if delivery.dedupe_key in applied:
            return Outcome.DUPLICATE
        sequence = delivery.sequence or 0
        previous = last_sequence.get(delivery.key, 0)
        if sequence <= previous:
            out_of_order.append((delivery.key, previous, sequence))
        last_sequence[delivery.key] = sequence
        applied.add(delivery.dedupe_key)
        return Outcome.APPLIED

    config = subscriber_config(kafka_bootstrap, topic, "sub-order", max_poll_records=200)
    async with Subscriber(config, apply) as subscriber:
        runner = asyncio.create_task(subscriber.run())
        await eventually(lambda: len(applied) == len(events), watch=runner)
        subscriber.request_stop()
        await runner
    assert out_of_order == []
    assert set(last_sequence.values()) == {30}
    assert subscriber.stats.applied == len(events)
    assert subscriber.stats.dead_lettered == 0
    committed = await committed_offsets(kafka_bootstrap, "sub-order")
    assert committed == await end_offsets(kafka_bootstrap, topic, 4)


async def test_poison_and_failing_events_are_dead_lettered_with_their_cause_and_the_rest_apply(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic()
    await publish(kafka_bootstrap, topic, [(izin(1, nama_usaha="Baik Satu"), 1)])
    await produce(kafka_bootstrap, topic, [b"no headers at all"], key=b"poison")
    good_headers = list((await read_all(kafka_bootstrap, topic, 1))[0].headers)
    await produce(
        kafka_bootstrap, topic, [b'{"json": "not avro"}'], key=b"json", headers=good_headers
    )
    await publish(
        kafka_bootstrap,
        topic,
        [
            (izin(2, nama_usaha="Ditolak Permanen"), 1),
            (izin(3, nama_usaha="Selalu Gagal"), 1),
            (izin(4, nama_usaha="Baik Dua"), 1),
        ],
    )
    applied: list[str] = []
    calls: dict[str, int] = {}

    async def apply(delivery: Delivery) -> None:
        assert isinstance(delivery.event, IzinDiterbitkan)
        name = delivery.event.nama_usaha
        calls[name] = calls.get(name, 0) + 1
        if name == "Ditolak Permanen":
            raise PermanentError("kolom kbli tidak dikenal di tabel tujuan")
        if name == "Selalu Gagal":
            raise RuntimeError("database sedang dipelihara")
        applied.append(name)

    config = subscriber_config(kafka_bootstrap, topic, "sub-dlq")
    async with Subscriber(config, apply) as subscriber:
        runner = asyncio.create_task(subscriber.run())
        await eventually(lambda: "Baik Dua" in applied, watch=runner)
        subscriber.request_stop()
        await runner
    assert applied == ["Baik Satu", "Baik Dua"]
    assert calls["Ditolak Permanen"] == 1, "a permanent failure is not retried"
    assert calls["Selalu Gagal"] == FAST_RETRY.max_attempts
    assert subscriber.stats.dead_lettered == 4

    dead = await read_all(kafka_bootstrap, dlq_topic(topic, "sub-dlq"), 4)
    causes = {int(dict(r.headers)["dlq_original_offset"]): dict(r.headers) for r in dead}
    assert sorted(causes) == [1, 2, 3, 4]
    assert causes[1]["dlq_error_class"] == b"bus.errors.EnvelopeError"
    assert b"ce_specversion is missing" in causes[1]["dlq_error_message"]
    assert causes[1]["dlq_original_topic"] == topic.encode()
    assert next(r for r in dead if r.key == b"poison").value == b"no headers at all"
    assert causes[2]["dlq_error_class"] == b"bus.errors.CodecError"
    assert b"JSON" in causes[2]["dlq_error_message"]
    assert causes[3]["dlq_error_class"] == b"bus.errors.PermanentError"
    assert causes[3]["dlq_attempts"] == b"1"
    assert b"kolom kbli" in causes[3]["dlq_error_message"]
    assert causes[4]["dlq_error_class"] == b"builtins.RuntimeError"
    assert causes[4]["dlq_attempts"] == str(FAST_RETRY.max_attempts).encode()
    assert causes[4]["dlq_first_failure"] <= causes[4]["dlq_last_failure"]
    assert causes[4]["ce_type"] == b"id.go.spbe.dpmptsp.IzinDiterbitkan.v1", "original headers kept"
    assert await committed_offsets(kafka_bootstrap, "sub-dlq") == {TopicPartition(topic, 0): 6}


async def test_a_transient_failure_is_retried_then_applied(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic()
    await publish(kafka_bootstrap, topic, [(izin(7), 1)])
    attempts: list[int] = []

    async def apply(delivery: Delivery) -> None:
        attempts.append(delivery.attempt)
        if delivery.attempt < 3:
            raise TransientError("database lock timeout")

    config = subscriber_config(kafka_bootstrap, topic, "sub-retry")
    async with Subscriber(config, apply) as subscriber:
        runner = asyncio.create_task(subscriber.run())
        await eventually(lambda: subscriber.stats.applied == 1, watch=runner)
        subscriber.request_stop()
        await runner
    assert attempts == [1, 2, 3]
    assert subscriber.stats.retries == 2
    assert subscriber.stats.dead_lettered == 0
    assert await committed_offsets(kafka_bootstrap, "sub-retry") == {TopicPartition(topic, 0): 1}


def _start_app(
    bootstrap: str, topic: str, name: str, db: Path, delay_ms: int
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.subscriber_app",
            "--bootstrap",
            bootstrap,
            "--topic",
            topic,
            "--subscriber",
            name,
            "--db",
            str(db),
            "--delay-ms",
            str(delay_ms),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _count(db: Path, sql: str) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db, timeout=30) as conn:
        try:
            row = conn.execute(sql).fetchone()
        except sqlite3.OperationalError:  # table not created yet
            return 0
    return int(row[0])


@pytest.mark.slow
async def test_a_subscriber_killed_mid_stream_loses_nothing_and_absorbs_redeliveries(
    kafka_bootstrap: str, new_topic: TopicFactory, tmp_path: Path
) -> None:
    topic = await new_topic(partitions=3)
    events = many_keys(keys=30, per_key=20)
    await publish(kafka_bootstrap, topic, events)
    db = tmp_path / "subscriber.db"

    first = _start_app(kafka_bootstrap, topic, "sub-kill", db, delay_ms=5)
    try:
        await eventually(lambda: _count(db, "SELECT COUNT(*) FROM processed") >= 150)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=60)
    killed_at = _count(db, "SELECT COUNT(*) FROM processed")
    assert killed_at < len(events), "the kill happened mid-stream"

    second = _start_app(kafka_bootstrap, topic, "sub-kill", db, delay_ms=0)
    try:
        await eventually(lambda: _count(db, "SELECT COUNT(*) FROM processed") == len(events))
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=120) == 0
    assert _count(db, "SELECT COUNT(*) FROM izin") == 30
    assert _count(db, "SELECT MIN(seq) FROM izin") == 20, "every permit holds its newest version"
    deliveries = _count(db, "SELECT COUNT(*) FROM deliveries")
    assert deliveries >= len(events)
    committed = await committed_offsets(kafka_bootstrap, "sub-kill")
    assert committed == await end_offsets(kafka_bootstrap, topic, 3)


async def test_sigterm_finishes_commits_and_exits_cleanly(
    kafka_bootstrap: str, new_topic: TopicFactory, tmp_path: Path
) -> None:
    topic = await new_topic(partitions=2)
    events = many_keys(keys=10, per_key=10)
    await publish(kafka_bootstrap, topic, events)
    db = tmp_path / "subscriber.db"
    app = _start_app(kafka_bootstrap, topic, "sub-term", db, delay_ms=0)
    try:
        await eventually(lambda: _count(db, "SELECT COUNT(*) FROM processed") == len(events))
    finally:
        os.kill(app.pid, signal.SIGTERM)
        code = app.wait(timeout=120)
    assert code == 0
    committed = await committed_offsets(kafka_bootstrap, "sub-term")
    assert committed == await end_offsets(kafka_bootstrap, topic, 2)


async def test_a_second_member_joining_mid_stream_rebalances_without_losing_an_event(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic(partitions=4)
    events = many_keys(keys=40, per_key=25)
    await publish(kafka_bootstrap, topic, events)
    applied: set[tuple[str, str]] = set()
    second_assigned = asyncio.Event()

    async def apply(delivery: Delivery) -> Outcome:
        if not second_assigned.is_set():
            await asyncio.sleep(0.02)  # slow until the second member holds partitions
        if delivery.dedupe_key in applied:
            return Outcome.DUPLICATE
        applied.add(delivery.dedupe_key)
        return Outcome.APPLIED

    config = subscriber_config(kafka_bootstrap, topic, "sub-rebalance", max_poll_records=20)
    async with Subscriber(config, apply) as first:
        first_run = asyncio.create_task(first.run())
        await eventually(lambda: len(applied) >= 100, watch=first_run)
        async with Subscriber(config, apply) as second:
            second_run = asyncio.create_task(second.run())

            def second_holds_partitions() -> bool:
                consumer = second._consumer
                return consumer is not None and bool(consumer.assignment())

            await eventually(second_holds_partitions, watch=second_run)
            second_assigned.set()
            await eventually(lambda: len(applied) == len(events), watch=first_run)
            second.request_stop()
            await second_run
        first.request_stop()
        await first_run
    assert len(applied) == len(events)
    assert second.stats.applied + second.stats.duplicates > 0, "the second member took part"
    committed = await committed_offsets(kafka_bootstrap, "sub-rebalance")
    assert committed == await end_offsets(kafka_bootstrap, topic, 4)


async def test_logs_carry_event_coordinates_but_never_a_nik_or_a_name(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    import io

    from bus.logs import configure_logging
    from tests.support.events import SOURCE_DUKCAPIL, penduduk

    topic = await new_topic()
    people = [penduduk(serial) for serial in range(1, 6)]
    config = PublisherConfig(
        bootstrap_servers=kafka_bootstrap,
        source=SOURCE_DUKCAPIL,
        key_secret=b"dukcapil-test-secret-0123456789",
        topic_overrides={"PendudukUpdated": topic},
    )
    captured = io.StringIO()
    configure_logging(json=True, level="DEBUG", stream=captured)
    try:
        async with Publisher(config) as publisher:
            for person in people:
                await publisher.publish(person, sequence=1)

        async def fail_once(delivery: Delivery) -> None:
            if delivery.attempt == 1:
                raise TransientError("database lock timeout")

        sub = subscriber_config(kafka_bootstrap, topic, "sub-logs")
        async with Subscriber(sub, fail_once) as subscriber:
            runner = asyncio.create_task(subscriber.run())
            await eventually(lambda: subscriber.stats.applied == len(people), watch=runner)
            subscriber.request_stop()
            await runner
    finally:
        configure_logging(json=True, level="INFO")
    logs = captured.getvalue()
    assert '"subscriber.handler_failed"' in logs
    assert f'"topic": "{topic}"' in logs
    assert '"event_id"' in logs
    for person in people:
        assert person.nik not in logs
        assert person.nama_lengkap not in logs


async def test_a_batch_handler_applies_partition_batches_and_a_failing_batch_falls_back(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic(partitions=2)
    events = many_keys(keys=10, per_key=20)
    events[57] = (izin(3, nama_usaha="Ditolak Permanen"), events[57][1])
    await publish(kafka_bootstrap, topic, events)
    applied: set[tuple[str, str]] = set()
    batch_sizes: list[int] = []

    async def apply_one(delivery: Delivery) -> None:
        assert isinstance(delivery.event, IzinDiterbitkan)
        if delivery.event.nama_usaha == "Ditolak Permanen":
            raise PermanentError("nama_usaha refused by the target table")
        applied.add(delivery.dedupe_key)

    async def apply_many(deliveries: Sequence[Delivery]) -> list[Outcome]:
        batch_sizes.append(len(deliveries))
        if any(
            isinstance(d.event, IzinDiterbitkan) and d.event.nama_usaha == "Ditolak Permanen"
            for d in deliveries
        ):
            raise PermanentError("one event of the batch refused; nothing committed")
        applied.update(d.dedupe_key for d in deliveries)
        return [Outcome.APPLIED] * len(deliveries)

    config = subscriber_config(kafka_bootstrap, topic, "sub-batch", max_poll_records=50)
    async with Subscriber(config, apply_one, batch_handler=apply_many) as subscriber:
        runner = asyncio.create_task(subscriber.run())
        await eventually(lambda: len(applied) == len(events) - 1, watch=runner)
        await eventually(lambda: subscriber.stats.dead_lettered == 1, watch=runner)
        subscriber.request_stop()
        await runner
    assert max(batch_sizes) > 1, "events were applied in batches"
    assert subscriber.stats.applied == len(events) - 1
    dead = await read_all(kafka_bootstrap, dlq_topic(topic, "sub-batch"), 1)
    assert dict(dead[0].headers)["dlq_error_class"] == b"bus.errors.PermanentError"
    assert await committed_offsets(kafka_bootstrap, "sub-batch") == await end_offsets(
        kafka_bootstrap, topic, 2
    )
