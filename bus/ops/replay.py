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
    event to the subscriber's handler (its sink), while the subscriber keeps running.
    Only the window is read; keys (Kafka keys: for pseudonymised ones, the pseudonym)
    narrow it further. Sinks are idempotent, so events the subscriber already applied
    are reported as duplicates and replaying twice changes nothing.

The pure parts (parsing the operator's input, computing the windows from offset and
time lookups, the key filter) are functions tested without a broker; Kafka is reached
only in :func:`plan_replay`, :func:`live_members`, :func:`rewind`, :func:`read_windows`
and :func:`reapply`, which decodes with :class:`~bus.decoding.RecordDecoder` as the
subscriber does. :mod:`bus.ops.dlq` reads and decodes dead letters with the same pieces.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from bus.decoding import RecordDecoder
from bus.delivery import Delivery, Handler, Outcome, RetryPolicy, is_retriable
from bus.errors import BusError, ConfigError
from bus.startup import LiveNodeAdmin, start_client

__all__ = [
    "FailedEvent",
    "PartitionWindow",
    "Progress",
    "ReapplyReport",
    "ReplayError",
    "ReplayMode",
    "ReplayRefusedError",
    "ReplayRequest",
    "apply_with_retry",
    "compute_windows",
    "key_selected",
    "live_members",
    "parse_offsets",
    "parse_time",
    "plan_replay",
    "read_windows",
    "reapply",
    "rewind",
    "topic_partitions",
    "unreachable",
]

log = structlog.get_logger(__name__)

#: ``(events done, events in the window)``, called after each event.
Progress = Callable[[int, int], None]


class ReplayError(BusError):
    """A replay stopped part way; the message says where, and how to resume."""


class ReplayRefusedError(ReplayError):
    """A replay was refused as asked; the message explains why and ``fix`` what to do."""


class ReplayMode(StrEnum):
    """How a replay reaches the subscriber (see the module docstring)."""

    REWIND = "rewind"
    REAPPLY = "reapply"


# -- the operator's input (pure) ---------------------------------------------------------------


def parse_time(text: str, *, option: str = "--from-time") -> datetime:
    """An ISO 8601 instant with its UTC offset (``2026-03-01T08:00:00+07:00`` or ``...Z``)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            f"{option} {text!r} is not an ISO 8601 time",
            fix=f"write e.g. {option} 2026-03-01T08:00:00+07:00",
        ) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ConfigError(
            f"{option} {text!r} has no UTC offset, so the instant is ambiguous",
            fix="add the zone, e.g. +07:00 for WIB, +08:00 for WITA, +09:00 for WIT, or Z",
        )
    return moment


def parse_offsets(text: str, topics: Sequence[str]) -> dict[TopicPartition, int]:
    """``P:O,...`` (one topic) or ``TOPIC:P:O,...`` into start offsets per partition."""
    offsets: dict[TopicPartition, int] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        pieces = item.rsplit(":", 2)
        if len(pieces) == 2 and len(topics) == 1:
            topic, (partition, offset) = topics[0], pieces
        elif len(pieces) == 3:
            topic, partition, offset = pieces
        else:
            raise ConfigError(
                f"--from-offsets item {item!r} is not PARTITION:OFFSET"
                + (" (several topics: write TOPIC:PARTITION:OFFSET)" if len(topics) > 1 else ""),
                fix="write e.g. --from-offsets 0:120,1:98",
            )
        if topic not in topics:
            raise ConfigError(
                f"--from-offsets names topic {topic!r}, which is not one of --topic",
                fix="add it with --topic or correct the name",
            )
        if not (partition.isdigit() and offset.isdigit()):
            raise ConfigError(
                f"--from-offsets item {item!r}: partition and offset must be whole numbers ≥ 0"
            )
        tp = TopicPartition(topic, int(partition))
        if tp in offsets:
            raise ConfigError(f"--from-offsets names {topic}[{partition}] twice")
        offsets[tp] = int(offset)
    if not offsets:
        raise ConfigError("--from-offsets is empty", fix="write e.g. --from-offsets 0:120,1:98")
    return offsets


def key_selected(key: bytes | None, keys: frozenset[bytes]) -> bool:
    """Whether a record with Kafka key ``key`` is in the replay (every key when none given)."""
    return not keys or (key is not None and key in keys)


@dataclass(frozen=True, kw_only=True, slots=True)
class ReplayRequest:
    """What the operator asked for, checked when built (a :class:`ConfigError` names the rule)."""

    subscriber: str
    topics: tuple[str, ...]
    reason: str
    mode: ReplayMode = ReplayMode.REWIND
    from_time: datetime | None = None
    from_offsets: Mapping[TopicPartition, int] | None = None
    to_time: datetime | None = None
    keys: frozenset[bytes] = frozenset()

    def __post_init__(self) -> None:
        if not self.reason.strip():
            raise ConfigError(
                "--reason is required: every replay is recorded in the audit topic with why",
                fix='add --reason "..." naming the incident or ticket, e.g. --reason '
                '"restore DB Dinsos setelah insiden 2026-03-01, tiket #123"',
            )
        if not self.topics:
            raise ConfigError("name at least one --topic to replay")
        if (self.from_time is None) == (self.from_offsets is None):
            raise ConfigError(
                "give exactly one of --from-time and --from-offsets",
                fix="--from-time 2026-03-01T00:00:00+07:00, or --from-offsets 0:120,1:98",
            )
        if self.from_time and self.to_time and self.to_time <= self.from_time:
            raise ConfigError("--to-time must be after --from-time")
        if self.mode is ReplayMode.REWIND and self.keys:
            raise ConfigError(
                "--key cannot be used in rewind mode: a consumer group has one offset per "
                "partition, so rewinding it replays every key of those partitions",
                fix="use --mode reapply --adapter FILE.yaml to re-apply only these keys",
            )
        if self.mode is ReplayMode.REWIND and self.to_time is not None:
            raise ConfigError(
                "--to-time cannot be used in rewind mode: the rewound subscriber reads on to "
                "the end of each partition",
                fix="use --mode reapply --adapter FILE.yaml to re-apply only a time window",
            )

    def parameters(self) -> dict[str, Any]:
        """The request as the audit record stores it (keys are pseudonyms, never raw ids)."""
        return {
            "mode": self.mode.value,
            "from_time": self.from_time.isoformat() if self.from_time else None,
            "from_offsets": (
                {f"{tp.topic}:{tp.partition}": o for tp, o in sorted(self.from_offsets.items())}
                if self.from_offsets is not None
                else None
            ),
            "to_time": self.to_time.isoformat() if self.to_time else None,
            "keys": sorted(k.decode("utf-8", "replace") for k in self.keys),
        }


# -- windows (pure) ------------------------------------------------------------------------


@dataclass(frozen=True, order=True, slots=True)
class PartitionWindow:
    """Offsets ``start`` (included) to ``end`` (excluded) of one partition."""

    topic: str
    partition: int
    start: int
    end: int

    @property
    def tp(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)

    @property
    def count(self) -> int:
        """How many offsets the window spans (an upper bound on compacted topics)."""
        return max(0, self.end - self.start)

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}] {self.start}..{self.end} ({self.count})"


def compute_windows(
    bounds: Mapping[TopicPartition, tuple[int, int]],
    starts: Mapping[TopicPartition, int | None],
    stops: Mapping[TopicPartition, int | None] | None = None,
) -> list[PartitionWindow]:
    """The window of each partition in ``starts``, clamped to what the log holds.

    ``bounds`` holds each partition's (first offset still held, end offset); ``starts``
    the start offset per partition to replay (from an explicit offset or a time lookup;
    ``None``: no event at or after the time, so nothing to replay); ``stops`` the end
    offset from a time lookup (``None`` or missing: the end of the log).
    """
    windows: list[PartitionWindow] = []
    for tp, start in starts.items():
        if tp not in bounds:
            raise ConfigError(
                f"{tp.topic} has no partition {tp.partition}",
                fix=f"partitions of {tp.topic}: "
                + ", ".join(str(p.partition) for p in sorted(bounds) if p.topic == tp.topic),
            )
        low, high = bounds[tp]
        begin = high if start is None else min(max(start, low), high)
        stop = (stops or {}).get(tp)
        finish = high if stop is None else min(max(stop, begin), high)
        windows.append(PartitionWindow(tp.topic, tp.partition, begin, finish))
    return sorted(windows)


# -- Kafka: planning and rewinding ---------------------------------------------------------


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


async def topic_partitions(bootstrap_servers: str, topics: Sequence[str]) -> dict[str, list[int]]:
    """The partition numbers of each of ``topics`` that exists (absent ones are left out)."""
    admin = await start_client(
        lambda: LiveNodeAdmin(bootstrap_servers=bootstrap_servers),
        "describe topics",
        bootstrap_servers=bootstrap_servers,
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


async def plan_replay(bootstrap_servers: str, request: ReplayRequest) -> list[PartitionWindow]:
    """Look up offsets (and offsets for times) and compute each partition's window."""
    found_partitions = await topic_partitions(bootstrap_servers, request.topics)
    tps: list[TopicPartition] = []
    for topic in request.topics:
        if topic not in found_partitions:
            raise ConfigError(
                f"topic {topic} does not exist on {bootstrap_servers}",
                fix="check the name (spbe.<steward>.<aggregate>.v<major>)",
            )
        tps.extend(TopicPartition(topic, p) for p in found_partitions[topic])
    consumer = await start_client(
        lambda: AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False),
        "read offsets",
        bootstrap_servers=bootstrap_servers,
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


async def live_members(bootstrap_servers: str, group: str) -> list[str]:
    """The members of consumer group ``group`` right now, as ``client_id@host``."""
    admin = await start_client(
        lambda: LiveNodeAdmin(bootstrap_servers=bootstrap_servers),
        "describe consumer groups",
        bootstrap_servers=bootstrap_servers,
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
    bootstrap_servers: str, subscriber: str, windows: Sequence[PartitionWindow]
) -> dict[TopicPartition, int]:
    """Commit each window's start offset for the subscriber's group; refused while it runs."""
    members = await live_members(bootstrap_servers, subscriber)
    if members:
        raise ReplayRefusedError(
            f"the consumer group {subscriber} has {len(members)} live member(s) "
            f"({', '.join(sorted(members))}); rewinding it now would be undone by the running "
            "subscriber's next commit",
            fix="stop the subscriber (and wait for its session to end), run the replay, then "
            "start it again; or re-apply while it runs with --mode reapply --adapter FILE.yaml",
        )
    offsets = {w.tp: w.start for w in windows}
    consumer = await start_client(
        lambda: AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers, group_id=subscriber, enable_auto_commit=False
        ),
        f"commit offsets of {subscriber}",
        bootstrap_servers=bootstrap_servers,
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


def _named(offsets: Mapping[TopicPartition, int]) -> dict[str, int]:
    return {f"{tp.topic}[{tp.partition}]": o for tp, o in sorted(offsets.items())}


# -- Kafka: reading and decoding -----------------------------------------------------------


async def read_windows(
    bootstrap_servers: str, windows: Sequence[PartitionWindow]
) -> AsyncGenerator[ConsumerRecord[bytes, bytes], None]:
    """Yield every record in ``windows`` (per partition in offset order), with no group."""
    wanted = {w.tp: w for w in windows if w.count}
    if not wanted:
        return
    consumer = await start_client(
        lambda: AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers, enable_auto_commit=False, group_id=None
        ),
        "read the replay windows",
        bootstrap_servers=bootstrap_servers,
    )
    try:
        consumer.assign(list(wanted))
        for tp, window in wanted.items():
            consumer.seek(tp, window.start)
        open_tps = set(wanted)
        while open_tps:
            batch = await consumer.getmany(*open_tps, timeout_ms=1000)
            for tp, records in batch.items():
                for record in records:
                    if record.offset < wanted[tp].end:
                        yield record
            for tp in list(open_tps):
                if await consumer.position(tp) >= wanted[tp].end:
                    open_tps.discard(tp)
    finally:
        await consumer.stop()


# -- re-applying ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FailedEvent:
    """An event that did not apply: where it is and why (the class and a message)."""

    topic: str
    partition: int
    offset: int
    error_class: str
    message: str


@dataclass
class ReapplyReport:
    """What a re-apply did, per event outcome and per partition."""

    total: int
    done: int = 0
    applied: int = 0
    duplicates: int = 0
    skipped_keys: int = 0
    failed: list[FailedEvent] = field(default_factory=list)
    per_partition: dict[str, int] = field(default_factory=dict)

    def as_result(self) -> dict[str, Any]:
        return {
            "events_in_window": self.total,
            "read": self.done,
            "applied": self.applied,
            "duplicates": self.duplicates,
            "skipped_other_keys": self.skipped_keys,
            "failed": len(self.failed),
            "per_partition": dict(self.per_partition),
        }


async def apply_with_retry(handler: Handler, delivery: Delivery, policy: RetryPolicy) -> Outcome:
    """Call ``handler`` as the subscriber would: retry what is retriable, up to the policy."""
    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.max_attempts),
        wait=policy.wait(),
        retry=retry_if_exception(is_retriable),
        reraise=True,
    )
    result: Outcome | None = None
    async for attempt in retrying:
        with attempt:
            result = await handler(delivery)
    return Outcome.DUPLICATE if result is Outcome.DUPLICATE else Outcome.APPLIED


def unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the sink (its database, its endpoint) is away, not the event bad."""
    return getattr(exc, "retriable", None) is True or isinstance(exc, OSError | TimeoutError)


def _error_class(exc: BaseException) -> str:
    return f"{type(exc).__module__}.{type(exc).__qualname__}"


async def reapply(
    bootstrap_servers: str,
    windows: Sequence[PartitionWindow],
    handler: Handler,
    decoder: RecordDecoder,
    *,
    keys: frozenset[bytes] = frozenset(),
    retry: RetryPolicy | None = None,
    on_progress: Progress | None = None,
) -> ReapplyReport:
    """Hand every event of ``windows`` (with one of ``keys``, if given) to ``handler``.

    An event that cannot apply (it does not decode, or the sink refuses it) is reported
    in :attr:`ReapplyReport.failed` and the replay goes on. When retries of a retriable
    failure run out (the database is away), the replay stops with a :class:`ReplayError`
    saying where to resume.
    """
    policy = retry or RetryPolicy()
    report = ReapplyReport(total=sum(w.count for w in windows))
    async with contextlib.aclosing(read_windows(bootstrap_servers, windows)) as records:
        async for record in records:
            report.done += 1
            if not key_selected(record.key, keys):
                report.skipped_keys += 1
            else:
                await _reapply_one(record, handler, decoder, policy, report)
            if on_progress is not None:
                on_progress(report.done, report.total)
    return report


async def _reapply_one(
    record: ConsumerRecord[bytes, bytes],
    handler: Handler,
    decoder: RecordDecoder,
    retry: RetryPolicy,
    report: ReapplyReport,
) -> None:
    where = f"{record.topic}[{record.partition}]"
    try:
        incoming = await decoder.decode(record.value, list(record.headers))
        delivery = Delivery.of(record, incoming)
        outcome = await apply_with_retry(handler, delivery, retry)
    except Exception as exc:
        if unreachable(exc):
            raise ReplayError(
                f"stopped at {where}@{record.offset} after {report.applied} applied and "
                f"{report.duplicates} duplicate(s): {_error_class(exc)}: {exc}",
                fix="once the sink is reachable, run the same replay again (events already "
                f"applied come back as duplicates), or resume with --from-offsets "
                f"{record.topic}:{record.partition}:{record.offset}",
            ) from exc
        report.failed.append(
            FailedEvent(record.topic, record.partition, record.offset, _error_class(exc), str(exc))
        )
        log.warning(
            "replay.failed",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            error=_error_class(exc),
        )
        return
    if outcome is Outcome.DUPLICATE:
        report.duplicates += 1
    else:
        report.applied += 1
    report.per_partition[where] = report.per_partition.get(where, 0) + 1
