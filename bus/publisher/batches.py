"""Prepared records sent as Kafka record batches: one builder per partition, one wait per batch.

:meth:`Publisher.publish_many` hands the producer one record at a time and gets a future
per record back, which costs about as much as encoding the event. A bulk publisher (the
day-one snapshot) sends thousands of records it has already built; here they go into one
``aiokafka`` batch builder per partition and each full builder is sent as one batch.

Partitions are chosen as ``AIOKafkaProducer.send`` chooses them (the default partitioner,
the Java client's: murmur2 of the key, positive, modulo the partition count), so a key's
snapshot events and its live events share a partition and keep their order. The hash is
computed here over 32-bit words (:func:`murmur2`, twice as fast as aiokafka's byte-wise
one, which a test holds it equal to). The producer stays idempotent with ``acks=all``: it
numbers the batches as it numbers single records.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from bus.contract.plan import OutgoingRecord
from bus.errors import PublishError
from bus.publisher.failures import LOST_IDEMPOTENCE

__all__ = ["RecordsInFlight", "murmur2", "partition_of", "send_in_batches"]

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """MurmurHash2 of ``data`` with the Kafka clients' seed (``Utils.murmur2`` in Java)."""
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    words = length // 4
    for k in struct.unpack_from(f"<{words}I", data):
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    extra = length & 3
    if extra:
        tail = data[words * 4 :]
        if extra == 3:
            h ^= tail[2] << 16
        if extra >= 2:
            h ^= tail[1] << 8
        h = ((h ^ tail[0]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


def partition_of(key: bytes, partitions: Sequence[int]) -> int:
    """The partition of ``partitions`` (sorted) the default partitioner gives ``key``."""
    return partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]


@dataclass(frozen=True, slots=True)
class _Sent:
    topic: str
    partition: int
    count: int
    future: asyncio.Future[Any]


def _failure(topic: str, partition: int, count: int, exc: BaseException) -> PublishError:
    retriable = bool(getattr(exc, "retriable", False)) or isinstance(
        exc, (asyncio.TimeoutError, *LOST_IDEMPOTENCE)
    )
    return PublishError(
        f"{count} events to {topic} partition {partition} were not acknowledged: "
        f"{type(exc).__name__}: {exc}",
        fix="publish them again; sinks keep the newer version of each key"
        if retriable
        else "the events cannot be published as they are; see the cause",
        retriable=retriable,
    )


class RecordsInFlight:
    """Batches handed to the producer; :meth:`acknowledged` waits for every one."""

    def __init__(
        self,
        sent: list[_Sent],
        *,
        timeout_s: float,
        on_lost_idempotence: Callable[[], None],
    ) -> None:
        self._sent = sent
        self._timeout_s = timeout_s
        self._on_lost_idempotence = on_lost_idempotence

    @property
    def count(self) -> int:
        """How many records are in flight."""
        return sum(s.count for s in self._sent)

    async def acknowledged(self) -> None:
        """Return once the broker acknowledged every record; raise :class:`PublishError` if not.

        On a failure some batches may have been acknowledged and others not: the caller
        publishes them all again (sinks drop what they already hold).
        """
        futures = [s.future for s in self._sent]
        if futures:
            await asyncio.wait(futures, timeout=self._timeout_s)
        for sent in self._sent:
            if not sent.future.done():
                raise PublishError(
                    f"{sent.count} events to {sent.topic} partition {sent.partition} were not "
                    f"acknowledged within {self._timeout_s:g} s; the producer may still "
                    "deliver them",
                    fix="publish them again; sinks keep the newer version of each key",
                    retriable=True,
                )
            exc = sent.future.exception()
            if exc is not None:
                if isinstance(exc, LOST_IDEMPOTENCE):
                    self._on_lost_idempotence()
                raise _failure(sent.topic, sent.partition, sent.count, exc) from exc


async def send_in_batches(
    producer: AIOKafkaProducer,
    records: Sequence[OutgoingRecord],
    *,
    timeout_s: float,
    on_lost_idempotence: Callable[[], None],
) -> RecordsInFlight:
    """Hand ``records`` to ``producer`` as record batches, in order per partition."""
    partitions: dict[str, list[int]] = {}
    builders: dict[tuple[str, int], Any] = {}
    sent: list[_Sent] = []
    counts: dict[tuple[str, int], int] = {}

    async def flush(topic: str, partition: int) -> None:
        builder = builders.pop((topic, partition))
        count = counts.pop((topic, partition))
        try:
            future = await producer.send_batch(builder, topic, partition=partition)
        except KafkaError as exc:
            raise _failure(topic, partition, count, exc) from exc
        sent.append(_Sent(topic, partition, count, future))

    for record in records:
        topic = record.topic
        if topic not in partitions:
            try:
                partitions[topic] = sorted(await producer.partitions_for(topic))
            except KafkaError as exc:
                raise PublishError(
                    f"no partitions of {topic} are known: {type(exc).__name__}: {exc}",
                    fix="create the topic (spbe-bus catalog apply) or check topic_overrides",
                    retriable=bool(getattr(exc, "retriable", False)),
                ) from exc
        partition = partition_of(record.key, partitions[topic])
        slot = (topic, partition)
        for _ in range(2):
            builder = builders.get(slot)
            if builder is None:
                builder = builders[slot] = producer.create_batch()
                counts[slot] = 0
            if (
                builder.append(
                    key=record.key, value=record.value, timestamp=None, headers=record.headers
                )
                is not None
            ):
                counts[slot] += 1
                break
            if counts[slot] == 0:
                raise PublishError(
                    f"event {record.envelope.id} to {topic} does not fit in a record batch "
                    f"({len(record.value)} bytes)",
                    fix="raise the publisher's max_batch_size, or make the event smaller",
                )
            await flush(topic, partition)
    for topic, partition in list(builders):
        await flush(topic, partition)
    return RecordsInFlight(sent, timeout_s=timeout_s, on_lost_idempotence=on_lost_idempotence)
