"""Consume path: raw aiokafka ``getmany`` vs the bus subscriber with a no-op handler.

Both read the same ``count`` events from the beginning of one topic in a consumer group
of their own and commit after each fetched batch (the subscriber's commit policy). The
clock runs from the first record received to the last, so joining the group is excluded.
Each takes ``kafka``: a :class:`~bus.connection.KafkaConnection` (a secured cluster), or
bootstrap servers with the security of the ``SPBE_KAFKA_*`` environment.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from aiokafka import AIOKafkaConsumer

from bench.stats import rate
from bus.connection import KafkaConnection, as_connection
from bus.subscriber import (
    DEFAULT_MAX_POLL_RECORDS,
    Delivery,
    Outcome,
    Subscriber,
    SubscriberConfig,
)

__all__ = ["bus_subscriber", "raw_aiokafka", "subscriber_config"]

#: Both read with the subscriber's default fetch size.
MAX_POLL_RECORDS = DEFAULT_MAX_POLL_RECORDS


async def _raw(kafka: KafkaConnection | str, topic: str, count: int) -> float:
    consumer = AIOKafkaConsumer(
        topic,
        **as_connection(kafka).aiokafka_options(),
        group_id=f"bench-raw-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=MAX_POLL_RECORDS,
    )
    await consumer.start()
    try:
        seen, started = 0, 0.0
        while seen < count:
            batch = await consumer.getmany(timeout_ms=500, max_records=MAX_POLL_RECORDS)
            if not batch:
                continue
            if not seen:
                started = time.perf_counter()
            seen += sum(len(records) for records in batch.values())
            await consumer.commit({tp: records[-1].offset + 1 for tp, records in batch.items()})
        return rate(seen, time.perf_counter() - started)
    finally:
        await consumer.stop()


def raw_aiokafka(kafka: KafkaConnection | str, topic: str, count: int) -> float:
    """Events/s of AIOKafkaConsumer.getmany with a commit per batch (no decoding)."""
    return asyncio.run(_raw(kafka, topic, count))


def subscriber_config(
    kafka: KafkaConnection | str, topic: str, subscriber_id: str
) -> SubscriberConfig:
    """The subscriber with its defaults, on ``topic``."""
    connection = as_connection(kafka)
    return SubscriberConfig(
        bootstrap_servers=connection.bootstrap_servers,
        security=connection.security,
        subscriber_id=subscriber_id,
        topics=(topic,),
        dlq_replication_factor=1,
    )


class Counter:
    """A no-op handler that stops its subscriber after ``count`` events."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.seen = 0
        self.started = 0.0
        self.finished = 0.0
        self.subscriber: Subscriber | None = None

    async def __call__(self, delivery: Delivery) -> Outcome:
        if not self.seen:
            self.started = time.perf_counter()
        self.seen += 1
        if self.seen >= self.count:
            self.finished = time.perf_counter()
            if self.subscriber is not None:
                self.subscriber.request_stop()
        return Outcome.APPLIED


async def _bus(
    kafka: KafkaConnection | str, topic: str, count: int, subscriber_id: str | None
) -> float:
    counter = Counter(count)
    config = subscriber_config(kafka, topic, subscriber_id or f"bench-bus-{uuid.uuid4().hex[:8]}")
    async with Subscriber(config, counter) as subscriber:
        counter.subscriber = subscriber
        await subscriber.run()
    return rate(counter.seen, counter.finished - counter.started)


def bus_subscriber(
    kafka: KafkaConnection | str, topic: str, count: int, subscriber_id: str | None = None
) -> float:
    """Events/s of the bus Subscriber (decode, envelope, typed event, commit per batch).

    ``subscriber_id`` (its group; on a secured cluster the principal its ACLs name) must
    be new to the topic, so it reads from the start; default a random one.
    """
    return asyncio.run(_bus(kafka, topic, count, subscriber_id))
