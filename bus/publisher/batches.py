"""Sending many records as one aiokafka record batch per partition, not one ``send`` each.

``AIOKafkaProducer.send`` costs a metadata wait, a partitioner call, a future and a
batch lookup per record. For a batch of events known up front (an outbox cycle, a
snapshot page, a replay) the publisher instead fills one ``BatchBuilder`` per partition
(``create_batch``) and hands each to ``send_batch``: the same idempotent, ``acks=all``
delivery (the batch gets the producer id and sequence numbers when it is drained), the
same per-partition order (a partition's batches are sent one after another, after any
records ``send`` queued before), one future per batch. A record's offset is the batch's
base offset plus its place in the batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, MessageSizeTooLargeError

from bus.contract.plan import OutgoingRecord
from bus.errors import PublishError
from bus.publisher.failures import LOST_IDEMPOTENCE, send_failure
from bus.publisher.partitions import partition_for

__all__ = ["MAX_RECORD_BYTES", "Placed", "RecordsInFlight", "send_batched"]

#: The largest record sent: the producer's and broker's default (``max.request.size``,
#: ``message.max.bytes``, 1 MiB). A batch holding a bigger one would fail as a whole.
MAX_RECORD_BYTES = 1024 * 1024
#: Key and value below this leave room for any headers the bus writes (well under 64 KiB).
_HEADROOM = MAX_RECORD_BYTES - 64 * 1024


@dataclass(slots=True)
class Placed:
    """Where one record went: its batch's future and its place in the batch, or an error."""

    record: OutgoingRecord
    future: asyncio.Future[Any] | None = None
    index: int = 0
    error: KafkaError | None = None


@dataclass(slots=True)
class _Open:
    topic: str
    partition: int
    builder: Any
    members: list[Placed] = field(default_factory=list)


async def _partitions(producer: AIOKafkaProducer, topic: str) -> list[int]:
    """The topic's partition ids in the order the default partitioner indexes them."""
    known = producer.client.cluster.partitions_for_topic(topic)
    if not known:
        await producer.partitions_for(topic)  # waits for the topic's metadata
        known = producer.client.cluster.partitions_for_topic(topic) or set()
    return list(known)  # aiokafka's own order: list() of the metadata's set


async def send_batched(
    producer: AIOKafkaProducer, records: Sequence[OutgoingRecord]
) -> list[Placed]:
    """Queue ``records`` in per-partition batches; return each record's :class:`Placed`.

    Raises nothing for Kafka: a batch that could not be queued (metadata unavailable, the
    producer closed) gives its records that error, and once a record is not queued the
    later records of its key are not either (their order would break). Await the futures
    for the outcome.
    """
    placed = [Placed(record) for record in records]
    partitions: dict[str, list[int]] = {}
    open_batches: dict[tuple[str, int], _Open] = {}

    failed_keys: set[tuple[str, bytes]] = set()

    async def submit(batch: _Open) -> None:
        try:
            future = await producer.send_batch(
                batch.builder, batch.topic, partition=batch.partition
            )
        except KafkaError as exc:
            for member in batch.members:
                member.error = exc
                failed_keys.add((member.record.topic, member.record.key))
            return
        for member in batch.members:
            member.future = future

    unknown: dict[str, KafkaError] = {}  # topics whose metadata did not come: asked once
    for entry in placed:
        record = entry.record
        if (record.topic, record.key) in failed_keys:
            # An earlier event of this key was not queued: sending a later one would put
            # it ahead of the earlier on the partition.
            entry.error = KafkaError("not sent: an earlier event with the same key was not")
            continue
        ids = partitions.get(record.topic)
        if ids is None:
            if record.topic in unknown:
                entry.error = unknown[record.topic]
                continue
            try:
                ids = partitions[record.topic] = await _partitions(producer, record.topic)
            except KafkaError as exc:
                entry.error = unknown[record.topic] = exc
                continue
        size = len(record.key) + len(record.value)
        if size > _HEADROOM:  # near the limit: count the headers too
            size += sum(len(name) + len(value) for name, value in record.headers)
        if size > MAX_RECORD_BYTES:
            entry.error = MessageSizeTooLargeError(
                f"the event is {size} bytes; Kafka's default limit is {MAX_RECORD_BYTES}"
            )
            failed_keys.add((record.topic, record.key))
            continue
        where = (record.topic, partition_for(record.key, ids))
        batch = open_batches.get(where)
        if batch is None:
            batch = open_batches[where] = _Open(*where, producer.create_batch())
        if not _append(batch, entry):
            await submit(open_batches.pop(where))  # full: send it, start the next one
            batch = open_batches[where] = _Open(*where, producer.create_batch())
            _append(batch, entry)  # an empty batch takes any record
    for batch in open_batches.values():
        if batch.members:
            await submit(batch)
    return placed


def _append(batch: _Open, entry: Placed) -> bool:
    record = entry.record
    appended = batch.builder.append(
        timestamp=None, key=record.key, value=record.value, headers=record.headers
    )
    if appended is None:
        return False
    entry.index = len(batch.members)
    batch.members.append(entry)
    return True


class RecordsInFlight:
    """Records :func:`send_batched` queued; :meth:`acknowledged` waits for every one.

    For a bulk publisher that reads its next page while Kafka acknowledges this one (the
    day-one snapshot): :meth:`Publisher.send_records` returns it without waiting.
    """

    def __init__(
        self,
        placed: list[Placed],
        *,
        timeout_s: float,
        on_lost_idempotence: Callable[[], None],
        explain: Callable[[OutgoingRecord, BaseException], PublishError] = send_failure,
    ) -> None:
        self._placed = placed
        self._timeout_s = timeout_s
        self._on_lost_idempotence = on_lost_idempotence
        self._explain = explain

    @property
    def count(self) -> int:
        """How many records are in flight."""
        return len(self._placed)

    async def acknowledged(self) -> None:
        """Return once the broker acknowledged every record; raise :class:`PublishError` if not.

        On a failure some batches may have been acknowledged and others not: the caller
        publishes them all again (sinks drop what they already hold).
        """
        futures = {entry.future for entry in self._placed if entry.future is not None}
        if futures:
            await asyncio.wait(futures, timeout=self._timeout_s)
        for entry in self._placed:
            error: BaseException | None = entry.error
            if error is None and entry.future is not None:
                if not entry.future.done():
                    raise PublishError(
                        f"{self.count} events were not all acknowledged within "
                        f"{self._timeout_s:g} s; the producer may still deliver them",
                        fix="publish them again; sinks keep the newer version of each key",
                        retriable=True,
                    )
                error = entry.future.exception()
            if error is None:
                continue
            if isinstance(error, LOST_IDEMPOTENCE):
                self._on_lost_idempotence()
            raise self._explain(entry.record, error) from error
