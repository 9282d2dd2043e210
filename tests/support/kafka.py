"""Small aiokafka helpers for tests: create a topic, produce, read everything back.

Each takes a bootstrap string (the plaintext session broker) or a ``KafkaConnection``
(e.g. the ``secured_kafka`` operator).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import GroupCoordinatorNotAvailableError
from aiokafka.structs import ConsumerRecord
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_fixed

from bus.connection import KafkaConnection, as_connection

#: A bootstrap string (plaintext) or a connection with its security settings.
Kafka = KafkaConnection | str

__all__ = ["committed_offsets", "create_topic", "leaders", "partitions_of", "produce", "read_all"]


async def create_topic(
    bootstrap: Kafka,
    name: str,
    *,
    partitions: int = 1,
    replication: int = 1,
    configs: dict[str, str] | None = None,
) -> str:
    admin = AIOKafkaAdminClient(**as_connection(bootstrap).aiokafka_options())
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name, partitions, replication, topic_configs=configs or {})]
        )
    finally:
        await admin.close()
    return name


async def produce(
    bootstrap: Kafka,
    topic: str,
    values: Sequence[bytes],
    *,
    key: bytes | None = None,
    headers: list[tuple[str, bytes]] | None = None,
) -> None:
    """Send every value with acks=all and idempotence, waiting for each acknowledgement."""
    producer = AIOKafkaProducer(
        **as_connection(bootstrap).aiokafka_options(), acks="all", enable_idempotence=True
    )
    try:
        await producer.start()
        futures = [await producer.send(topic, value, key=key, headers=headers) for value in values]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def leaders(bootstrap: Kafka, topic: str) -> dict[int, int]:
    """Partition -> the node id leading it (-1 while none does)."""
    admin = AIOKafkaAdminClient(**as_connection(bootstrap).aiokafka_options())
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return {p["partition"]: p["leader"] for p in described["partitions"]}


async def partitions_of(bootstrap: Kafka, topic: str) -> list[int]:
    partitions = sorted(await leaders(bootstrap, topic))
    assert partitions, f"topic {topic} has no partitions"
    return partitions


async def read_all(
    bootstrap: Kafka, topic: str, expected: int, *, timeout_s: float = 120.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read a topic from the beginning until ``expected`` records arrived (or time runs out)."""
    partitions = await partitions_of(bootstrap, topic)
    consumer = AIOKafkaConsumer(
        **as_connection(bootstrap).aiokafka_options(),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        await consumer.seek_to_beginning()
        while len(records) < expected and loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=1000)
            for part in batch.values():
                records.extend(part)
    finally:
        await consumer.stop()
    return records


async def committed_offsets(bootstrap: Kafka, group: str) -> dict[TopicPartition, int]:
    """The group's committed offsets (waiting for a coordinator on a fresh cluster)."""
    admin = AIOKafkaAdminClient(**as_connection(bootstrap).aiokafka_options())
    await admin.start()
    try:
        retrying = AsyncRetrying(
            stop=stop_after_delay(60),
            wait=wait_fixed(0.2),
            retry=retry_if_exception_type(GroupCoordinatorNotAvailableError),
            reraise=True,
        )
        offsets = await retrying(admin.list_consumer_group_offsets, group)
    finally:
        await admin.close()
    return {tp: meta.offset for tp, meta in offsets.items()}
