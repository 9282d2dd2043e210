"""Publish path: raw aiokafka vs the bus publisher vs confluent-kafka, same bytes, same acks.

All are idempotent with ``acks=all`` and the bus publisher's linger and batch size. Raw
aiokafka runs twice: ``send`` per record (what most code writes; the baseline of the
goal) and ``create_batch``/``send_batch`` per partition with aiokafka's own partitioner
(the cheapest way through that client, the way the bus's ``publish_many`` sends).
Each sends ``count`` events in chunks of ``chunk`` and waits for every acknowledgement;
the clock runs from the first send to the last acknowledgement (client start excluded).

Each takes ``kafka``: a :class:`~bus.connection.KafkaConnection` (a secured cluster: SASL,
TLS), or bootstrap servers with the security of the ``SPBE_KAFKA_*`` environment.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from bench import workload
from bench.stats import rate
from bus.connection import KafkaConnection, as_connection
from bus.errors import BusError
from bus.publisher import DEFAULT_LINGER_MS, DEFAULT_MAX_BATCH_SIZE, Publisher

__all__ = ["bus_publisher", "confluent_producer", "raw_aiokafka", "raw_aiokafka_batches"]


async def _raw(
    kafka: KafkaConnection | str, topic: str, records: list[workload.WireRecord], chunk: int
) -> float:
    producer = AIOKafkaProducer(
        **as_connection(kafka).aiokafka_options(),
        acks="all",
        enable_idempotence=True,
        linger_ms=DEFAULT_LINGER_MS,
        max_batch_size=DEFAULT_MAX_BATCH_SIZE,
    )
    await producer.start()
    try:
        started = time.perf_counter()
        for first in range(0, len(records), chunk):
            futures = [
                await producer.send(topic, r.value, key=r.key, headers=r.headers)
                for r in records[first : first + chunk]
            ]
            await asyncio.gather(*futures)
        return rate(len(records), time.perf_counter() - started)
    finally:
        await producer.stop()


async def _raw_batches(
    kafka: KafkaConnection | str, topic: str, records: list[workload.WireRecord], chunk: int
) -> float:
    producer = AIOKafkaProducer(
        **as_connection(kafka).aiokafka_options(),
        acks="all",
        enable_idempotence=True,
        linger_ms=DEFAULT_LINGER_MS,
        max_batch_size=DEFAULT_MAX_BATCH_SIZE,
    )
    await producer.start()
    partitioner = DefaultPartitioner()
    try:
        partitions = list(await producer.partitions_for(topic))
        started = time.perf_counter()
        for first in range(0, len(records), chunk):
            builders: dict[int, Any] = {}
            futures = []
            for r in records[first : first + chunk]:
                partition = partitioner(r.key, partitions, partitions)
                builder = builders.get(partition)
                if builder is None:
                    builder = builders[partition] = producer.create_batch()
                if builder.append(timestamp=None, key=r.key, value=r.value, headers=r.headers):
                    continue
                futures.append(await producer.send_batch(builder, topic, partition=partition))
                builder = builders[partition] = producer.create_batch()
                builder.append(timestamp=None, key=r.key, value=r.value, headers=r.headers)
            for partition, builder in builders.items():
                futures.append(await producer.send_batch(builder, topic, partition=partition))
            await asyncio.gather(*futures)
        return rate(len(records), time.perf_counter() - started)
    finally:
        await producer.stop()


def raw_aiokafka_batches(
    kafka: KafkaConnection | str, topic: str, records: list[workload.WireRecord], chunk: int
) -> float:
    """Events/s of AIOKafkaProducer sending pre-encoded records in per-partition batches."""
    return asyncio.run(_raw_batches(kafka, topic, records, chunk))


def raw_aiokafka(
    kafka: KafkaConnection | str, topic: str, records: list[workload.WireRecord], chunk: int
) -> float:
    """Events/s of AIOKafkaProducer sending pre-encoded records."""
    return asyncio.run(_raw(kafka, topic, records, chunk))


async def _bus(kafka: KafkaConnection | str, topic: str, events: list[Any], chunk: int) -> float:
    async with Publisher(workload.publisher_config(kafka, topic)) as publisher:
        started = time.perf_counter()
        for first in range(0, len(events), chunk):
            results = await publisher.publish_many(events[first : first + chunk])
            failed = [r for r in results if isinstance(r, BusError)]
            if failed:
                raise failed[0]
        return rate(len(events), time.perf_counter() - started)


def bus_publisher(kafka: KafkaConnection | str, topic: str, events: list[Any], chunk: int) -> float:
    """Events/s of ``Publisher.publish_many`` with typed events (validate, Avro, headers)."""
    return asyncio.run(_bus(kafka, topic, events, chunk))


def confluent_producer(
    kafka: KafkaConnection | str, topic: str, records: list[workload.WireRecord]
) -> float:
    """Events/s of confluent-kafka's Producer sending the same pre-encoded records."""
    from confluent_kafka import Producer

    producer = Producer(
        {
            **as_connection(kafka).librdkafka_config(),
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": DEFAULT_LINGER_MS,
            "batch.size": DEFAULT_MAX_BATCH_SIZE,
        }
    )
    errors: list[Any] = []

    def delivered(error: Any, _message: Any) -> None:
        if error is not None:
            errors.append(error)

    producer.list_topics(topic, timeout=30)  # connect before the clock starts
    started = time.perf_counter()
    for record in records:
        headers: list[tuple[str, str | bytes | None]] = list(record.headers)
        while True:
            try:
                producer.produce(
                    topic, record.value, record.key, headers=headers, on_delivery=delivered
                )
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    remaining = producer.flush(120)
    elapsed = time.perf_counter() - started
    if remaining or errors:
        raise RuntimeError(f"confluent-kafka: {remaining} undelivered, errors {errors[:3]}")
    return rate(len(records), elapsed)
