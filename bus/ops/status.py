"""``spbe-bus status``: each subscriber's lag, last applied event time and dead letters.

For every subscriber of the catalogue (its consumer group id is its subscriber id), the
REST gateway's read models (group ``spbe-gateway``, on its clients' projected topics) when
the catalogue has ``api_clients``, and every partition of their topics:

* ``committed``: the group's committed offset (``None``: it never committed there);
* ``lag``: end offset minus committed offset (minus the start offset when nothing is
  committed: everything the topic still holds is waiting);
* ``last_applied``: the timestamp of the record just before the committed offset, the
  last event whose outcome the subscriber recorded. It is the event's Kafka timestamp
  (when the steward published it), read with a short-lived consumer that fetches one
  record per partition; so it says how current the subscriber's copy of the data is;
* dead letters: end minus start offsets of each ``<topic>.dlq.<subscriber>`` topic, i.e.
  the dead letters not yet purged.

:meth:`StatusReport.breaches` names each threshold exceeded, for cron and monitoring.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from bus.connection import KafkaConnection, as_connection
from bus.delivery import dlq_topic
from bus.errors import BusError
from bus.ops.api_clients import gateway_read_topics
from bus.ops.catalog import Catalog
from bus.ops.contract_topics import read_topics
from bus.ops.principals import GATEWAY_GROUP
from bus.startup import LiveNodeAdmin, close_client, start_client

__all__ = [
    "DEFAULT_FETCH_TIMEOUT_S",
    "DeadLetters",
    "PartitionStatus",
    "StatusError",
    "StatusReport",
    "SubscriberStatus",
    "collect_status",
    "subscriber_status",
]

#: How long the last-applied lookup waits for its records before leaving them unknown.
DEFAULT_FETCH_TIMEOUT_S = 10.0


class StatusError(BusError):
    """The cluster could not be read."""


@dataclass(frozen=True, slots=True)
class PartitionStatus:
    """One partition of one subscribed topic."""

    topic: str
    partition: int
    committed: int | None
    start: int
    end: int
    last_applied: datetime | None = None

    @property
    def lag(self) -> int:
        """Events the subscriber has not yet recorded an outcome for."""
        done = self.committed if self.committed is not None else self.start
        return max(0, self.end - max(done, self.start))


@dataclass(frozen=True, slots=True)
class DeadLetters:
    """One dead letter topic: how many dead letters it holds; ``exists`` False if absent."""

    topic: str
    count: int
    exists: bool = True


@dataclass(frozen=True, slots=True)
class SubscriberStatus:
    """One subscriber (one consumer group) over all its topics."""

    subscriber: str
    topics: tuple[str, ...]
    partitions: tuple[PartitionStatus, ...]
    dead_letters: tuple[DeadLetters, ...]
    missing_topics: tuple[str, ...] = ()

    @property
    def lag(self) -> int:
        return sum(p.lag for p in self.partitions)

    @property
    def dead_letter_count(self) -> int:
        return sum(d.count for d in self.dead_letters)

    @property
    def last_applied(self) -> datetime | None:
        """The newest last-applied event time over its partitions."""
        times = [p.last_applied for p in self.partitions if p.last_applied is not None]
        return max(times, default=None)


@dataclass(frozen=True, slots=True)
class StatusReport:
    """Every subscriber's status at ``taken_at``."""

    subscribers: tuple[SubscriberStatus, ...]
    taken_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def breaches(self, *, max_lag: int | None = None, max_dlq: int | None = None) -> list[str]:
        """One line per threshold exceeded: a partition's lag, or a subscriber's dead letters."""
        found: list[str] = []
        for sub in self.subscribers:
            if max_lag is not None:
                found += [
                    f"{sub.subscriber}: {p.topic}[{p.partition}] lags {p.lag} events "
                    f"(more than --max-lag {max_lag})"
                    for p in sub.partitions
                    if p.lag > max_lag
                ]
            if max_dlq is not None and sub.dead_letter_count > max_dlq:
                found.append(
                    f"{sub.subscriber}: {sub.dead_letter_count} dead letters "
                    f"(more than --max-dlq {max_dlq})"
                )
            found += [f"{sub.subscriber}: topic {t} does not exist" for t in sub.missing_topics]
        return found

    def to_json(self) -> dict[str, Any]:
        """The report as plain JSON data."""
        return {
            "taken_at": _iso(self.taken_at),
            "subscribers": [
                {
                    "subscriber": s.subscriber,
                    "topics": list(s.topics),
                    "lag": s.lag,
                    "dead_letters": s.dead_letter_count,
                    "last_applied": _iso(s.last_applied),
                    "missing_topics": list(s.missing_topics),
                    "partitions": [
                        {
                            "topic": p.topic,
                            "partition": p.partition,
                            "committed": p.committed,
                            "start": p.start,
                            "end": p.end,
                            "lag": p.lag,
                            "last_applied": _iso(p.last_applied),
                        }
                        for p in s.partitions
                    ],
                    "dead_letter_topics": [
                        {"topic": d.topic, "count": d.count, "exists": d.exists}
                        for d in s.dead_letters
                    ],
                }
                for s in self.subscribers
            ],
        }


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def collect_status(
    kafka: KafkaConnection | str,
    catalog: Catalog,
    *,
    subscribers: Iterable[str] | None = None,
    last_applied: bool = True,
    fetch_timeout_s: float = DEFAULT_FETCH_TIMEOUT_S,
) -> StatusReport:
    """The status of every subscriber of ``catalog`` (or only of ``subscribers``)."""
    wanted = read_topics(catalog)  # a restricted topic's subscriber reads its projection
    gateway = gateway_read_topics(catalog, datetime.now(UTC).date())
    if gateway:  # the REST gateway's read models are a subscriber too
        wanted[GATEWAY_GROUP] = tuple(gateway)
    if subscribers is not None:
        chosen = set(subscribers)
        unknown = chosen - set(wanted)
        if unknown:
            raise StatusError(
                f"not a subscriber of the catalogue: {', '.join(sorted(unknown))}",
                fix=f"choose from: {', '.join(sorted(wanted))}",
            )
        wanted = {k: v for k, v in wanted.items() if k in chosen}
    connection = as_connection(kafka)
    results = [
        await subscriber_status(
            connection,
            name,
            topics,
            last_applied=last_applied,
            fetch_timeout_s=fetch_timeout_s,
        )
        for name, topics in wanted.items()
    ]
    return StatusReport(tuple(results))


async def subscriber_status(
    kafka: KafkaConnection | str,
    subscriber: str,
    topics: Iterable[str],
    *,
    last_applied: bool = True,
    fetch_timeout_s: float = DEFAULT_FETCH_TIMEOUT_S,
) -> SubscriberStatus:
    """Offsets, lag and dead letters of one subscriber (its group id is its id)."""
    connection = as_connection(kafka)
    bootstrap = connection.bootstrap_servers
    topics = tuple(topics)
    dlqs = [dlq_topic(t, subscriber) for t in topics]
    admin = await start_client(
        lambda: LiveNodeAdmin(**connection.aiokafka_options()),
        f"read the status of {subscriber}",
        bootstrap_servers=bootstrap,
        security=connection.security,
    )
    try:
        consumer = await start_client(
            lambda: AIOKafkaConsumer(**connection.aiokafka_options(), enable_auto_commit=False),
            f"read the offsets of {subscriber}",
            bootstrap_servers=bootstrap,
            security=connection.security,
        )
    except BaseException:
        await close_client(admin)
        raise
    try:
        partitions = await _partitions(admin, [*topics, *dlqs])
        committed = await _committed(admin, subscriber)
        tps = [TopicPartition(t, p) for t in partitions for p in range(partitions[t])]
        starts: dict[TopicPartition, int] = await consumer.beginning_offsets(tps) if tps else {}
        ends: dict[TopicPartition, int] = await consumer.end_offsets(tps) if tps else {}
    except KafkaError as exc:
        raise StatusError(
            f"cannot read the status of {subscriber} from Kafka at {bootstrap}: "
            f"{type(exc).__name__}: {exc}",
            fix="check --bootstrap (or $SPBE_KAFKA_BOOTSTRAP) and that the brokers run",
        ) from exc
    finally:
        await consumer.stop()
        await admin.close()
    rows = [
        PartitionStatus(t, p, committed.get(TopicPartition(t, p)), *_range(starts, ends, t, p))
        for t in topics
        if t in partitions
        for p in range(partitions[t])
    ]
    if last_applied:
        times = await _last_applied(connection, rows, fetch_timeout_s)
        rows = [
            PartitionStatus(r.topic, r.partition, r.committed, r.start, r.end, times.get(i))
            for i, r in enumerate(rows)
        ]
    dead = tuple(
        DeadLetters(
            name,
            sum(ends[tp] - starts[tp] for tp in tps if tp.topic == name),
            exists=name in partitions,
        )
        for name in dlqs
    )
    return SubscriberStatus(
        subscriber=subscriber,
        topics=topics,
        partitions=tuple(rows),
        dead_letters=dead,
        missing_topics=tuple(t for t in topics if t not in partitions),
    )


def _range(
    starts: Mapping[TopicPartition, int], ends: Mapping[TopicPartition, int], topic: str, part: int
) -> tuple[int, int]:
    tp = TopicPartition(topic, part)
    return starts[tp], ends[tp]


async def _committed(
    admin: LiveNodeAdmin, group: str, *, timeout_s: float = 30.0
) -> dict[TopicPartition, int]:
    """The group's committed offsets; retriable errors (no coordinator yet) are retried."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        try:
            offsets = await admin.list_consumer_group_offsets(group)
        except KafkaError as exc:
            if not exc.retriable or loop.time() > deadline:
                raise
            await asyncio.sleep(0.5)
            continue
        return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


async def _partitions(admin: LiveNodeAdmin, names: list[str]) -> dict[str, int]:
    """Topic -> partition count, for the topics of ``names`` that exist."""
    described = await admin.describe_topics(names)
    return {t["topic"]: len(t["partitions"]) for t in described if t["partitions"]}


async def _last_applied(
    connection: KafkaConnection, rows: list[PartitionStatus], timeout_s: float
) -> dict[int, datetime]:
    """Row index -> timestamp of the record at ``committed - 1``, where it is still held."""
    targets = {
        TopicPartition(r.topic, r.partition): (i, r.committed - 1)
        for i, r in enumerate(rows)
        if r.committed is not None and r.start < r.committed <= r.end
    }
    if not targets:
        return {}
    consumer = AIOKafkaConsumer(
        **connection.aiokafka_options(),
        enable_auto_commit=False,
        max_partition_fetch_bytes=65_536,
    )
    found: dict[int, datetime] = {}
    await consumer.start()
    try:
        consumer.assign(list(targets))
        for tp, (_, offset) in targets.items():
            consumer.seek(tp, offset)
        pending = set(targets)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while pending and loop.time() < deadline:
            batch = await consumer.getmany(*pending, timeout_ms=500, max_records=len(pending))
            for tp, records in batch.items():
                index, offset = targets[tp]
                record = records[0]
                if record.offset == offset:  # else compacted away: leave it unknown
                    found[index] = datetime.fromtimestamp(record.timestamp / 1000, UTC)
                pending.discard(tp)
                consumer.pause(tp)
    finally:
        await consumer.stop()
    return found
