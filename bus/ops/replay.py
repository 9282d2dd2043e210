"""Replay topics into a subscriber: rewind its consumer group, or re-apply through its sink.

Two modes (:class:`ReplayMode`):

``rewind``
    Commit earlier offsets for the subscriber's own consumer group (its id), so the
    subscriber reads the window again when it next starts. Refused while the group has
    live members: the running subscriber would overwrite the offsets with its own. It
    replays everything from the start offsets on, so neither an end time nor a key filter
    applies.
``reapply``
    Read the window with a separate consumer (no group, nothing committed) and hand each
    event to the subscriber's handler (its sink; a partition's events together when the
    sink applies batches), while the subscriber keeps running.
    Only the window is read; keys (Kafka keys: for pseudonymised ones, the pseudonym)
    narrow it further. Sinks are idempotent, so events the subscriber already applied
    are reported as duplicates and replaying twice changes nothing.

The pure parts (parsing the operator's input, computing the windows from offset and
time lookups, the key filter) are functions tested without a broker; Kafka is reached
only in :func:`plan_replay`, :func:`live_members`, :func:`rewind`, :func:`read_windows`
(and :func:`read_window_batches`, the same as fetched) and :func:`reapply`, which decodes
with :class:`~bus.decoding.RecordDecoder` as the subscriber does. This module does the
Kafka work of a replay; the pure planning is in :mod:`bus.ops.replay_plan`, the
re-applying in :mod:`bus.ops.reapply`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Mapping, Sequence
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from bus.connection import KafkaConnection, as_connection
from bus.errors import ConfigError
from bus.logs import get_logger
from bus.ops.replay_ledger import ReplayLedger, is_projected, require_ledger
from bus.ops.replay_plan import PartitionWindow, ReplayRefusedError, ReplayRequest, compute_windows
from bus.startup import LiveNodeAdmin, start_client

__all__ = [
    "live_members",
    "plan_replay",
    "read_window_batches",
    "read_windows",
    "rewind",
    "topic_partitions",
]

log = get_logger(__name__)


# -- Kafka: planning and rewinding ---------------------------------------------------------


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


async def topic_partitions(
    kafka: KafkaConnection | str, topics: Sequence[str]
) -> dict[str, list[int]]:
    """The partition numbers of each of ``topics`` that exists (absent ones are left out)."""
    connection = as_connection(kafka)
    admin = await start_client(
        lambda: LiveNodeAdmin(**connection.aiokafka_options()),
        "describe topics",
        bootstrap_servers=connection.bootstrap_servers,
        security=connection.security,
    )
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    return {
        d["topic"]: sorted(p["partition"] for p in d["partitions"])
        for d in described
        if not d["error_code"] and d["partitions"]
    }


async def plan_replay(
    kafka: KafkaConnection | str, request: ReplayRequest
) -> list[PartitionWindow]:
    """Look up offsets (and offsets for times) and compute each partition's window."""
    connection = as_connection(kafka)
    bootstrap_servers = connection.bootstrap_servers
    found_partitions = await topic_partitions(connection, request.topics)
    tps: list[TopicPartition] = []
    for topic in request.topics:
        if topic not in found_partitions:
            raise ConfigError(
                f"topic {topic} does not exist on {bootstrap_servers}",
                fix="check the name (spbe.<steward>.<aggregate>.v<major>)",
            )
        tps.extend(TopicPartition(topic, p) for p in found_partitions[topic])
    consumer = await start_client(
        lambda: AIOKafkaConsumer(**connection.aiokafka_options(), enable_auto_commit=False),
        "read offsets",
        bootstrap_servers=bootstrap_servers,
        security=connection.security,
    )
    try:
        lows = await consumer.beginning_offsets(tps)
        highs = await consumer.end_offsets(tps)
        bounds = {tp: (lows[tp], highs[tp]) for tp in tps}
        starts: dict[TopicPartition, int | None]
        if request.from_offsets is not None:
            starts = dict(request.from_offsets)
        else:
            assert request.from_time is not None
            found = await consumer.offsets_for_times({tp: _millis(request.from_time) for tp in tps})
            starts = {tp: (hit.offset if hit is not None else None) for tp, hit in found.items()}
        stops: dict[TopicPartition, int | None] = {}
        if request.to_time is not None:
            found = await consumer.offsets_for_times({tp: _millis(request.to_time) for tp in tps})
            stops = {tp: (hit.offset if hit is not None else None) for tp, hit in found.items()}
    finally:
        await consumer.stop()
    return compute_windows(bounds, starts, stops)


async def live_members(kafka: KafkaConnection | str, group: str) -> list[str]:
    """The members of consumer group ``group`` right now, as ``client_id@host``."""
    connection = as_connection(kafka)
    admin = await start_client(
        lambda: LiveNodeAdmin(**connection.aiokafka_options()),
        "describe consumer groups",
        bootstrap_servers=connection.bootstrap_servers,
        security=connection.security,
    )
    try:
        # A fresh cluster creates its offsets topic on the first lookup: wait for it.
        retrying = AsyncRetrying(
            stop=stop_after_attempt(10),
            wait=wait_exponential_jitter(multiplier=0.2, max=3),
            retry=retry_if_exception(lambda e: isinstance(e, KafkaError) and e.retriable),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                responses = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    members: list[str] = []
    for response in responses:
        for described in response.to_object()["groups"]:
            if described["group"] != group:
                continue
            for member in described.get("members") or []:
                members.append(f"{member['client_id']}@{member['client_host'].lstrip('/')}")
    return members


async def rewind(
    kafka: KafkaConnection | str,
    subscriber: str,
    windows: Sequence[PartitionWindow],
    *,
    ledger: ReplayLedger | None = None,
) -> dict[TopicPartition, int]:
    """Commit each window's start offset for the subscriber's group; refused while it runs.

    The subscriber reads every event of the windows again, so the events of a projected
    topic's windows get their ``replay`` entries in ``ledger`` before the offsets are
    committed (without ``ledger`` such windows are refused). Entries are appended at
    least once: a rewind refused after them (a member joined) leaves them in place.
    """
    require_ledger([w.topic for w in windows], subscriber, ledger_given=ledger is not None)
    connection = as_connection(kafka)
    members = await live_members(connection, subscriber)
    if members:
        raise ReplayRefusedError(
            f"the consumer group {subscriber} has {len(members)} live member(s) "
            f"({', '.join(sorted(members))}); rewinding it now would be undone by the running "
            "subscriber's next commit",
            fix="stop the subscriber (and wait for its session to end), run the replay, then "
            "start it again; or re-apply while it runs with --mode reapply --adapter FILE.yaml",
        )
    if ledger is not None:
        await _record_windows(connection, ledger, [w for w in windows if is_projected(w.topic)])
    offsets = {w.tp: w.start for w in windows}
    consumer = await start_client(
        lambda: AIOKafkaConsumer(
            **connection.aiokafka_options(), group_id=subscriber, enable_auto_commit=False
        ),
        f"commit offsets of {subscriber}",
        bootstrap_servers=connection.bootstrap_servers,
        security=connection.security,
    )
    try:
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    except KafkaError as exc:
        raise ReplayRefusedError(
            f"the broker refused the new offsets for group {subscriber}: {exc}",
            fix="a member probably joined meanwhile: stop the subscriber and run the replay again",
        ) from exc
    finally:
        await consumer.stop()
    log.info("replay.rewound", subscriber=subscriber, offsets=_named(offsets))
    return offsets


async def _record_windows(
    connection: KafkaConnection, ledger: ReplayLedger, windows: Sequence[PartitionWindow]
) -> None:
    """Append the replay entries of every event in ``windows``, a fetched batch at a time."""
    async with contextlib.aclosing(read_window_batches(connection, windows)) as batches:
        async for batch in batches:
            first = batch[0]
            await ledger.record(
                first.topic,
                [list(record.headers) for record in batch],
                where=f"rewinding {first.topic}[{first.partition}] (at offset {first.offset})",
            )
    if windows:
        log.info("replay.ledger_recorded", subscriber=ledger.subscriber, entries=ledger.recorded)


def _named(offsets: Mapping[TopicPartition, int]) -> dict[str, int]:
    return {f"{tp.topic}[{tp.partition}]": o for tp, o in sorted(offsets.items())}


# -- Kafka: reading and decoding -----------------------------------------------------------


async def read_windows(
    kafka: KafkaConnection | str, windows: Sequence[PartitionWindow]
) -> AsyncGenerator[ConsumerRecord[bytes, bytes], None]:
    """Yield every record in ``windows`` (per partition in offset order), with no group."""
    async with contextlib.aclosing(read_window_batches(kafka, windows)) as batches:
        async for batch in batches:
            for record in batch:
                yield record


async def read_window_batches(
    kafka: KafkaConnection | str, windows: Sequence[PartitionWindow]
) -> AsyncGenerator[list[ConsumerRecord[bytes, bytes]], None]:
    """Yield the records in ``windows`` as fetched: each list one partition's, in offset order."""
    wanted = {w.tp: w for w in windows if w.count}
    if not wanted:
        return
    connection = as_connection(kafka)
    consumer = await start_client(
        lambda: AIOKafkaConsumer(
            **connection.aiokafka_options(), enable_auto_commit=False, group_id=None
        ),
        "read the replay windows",
        bootstrap_servers=connection.bootstrap_servers,
        security=connection.security,
    )
    try:
        consumer.assign(list(wanted))
        for tp, window in wanted.items():
            consumer.seek(tp, window.start)
        open_tps = set(wanted)
        while open_tps:
            batch = await consumer.getmany(*open_tps, timeout_ms=1000)
            for tp, records in batch.items():
                inside = [record for record in records if record.offset < wanted[tp].end]
                if inside:
                    yield inside
            for tp in list(open_tps):
                if await consumer.position(tp) >= wanted[tp].end:
                    open_tps.discard(tp)
    finally:
        await consumer.stop()
