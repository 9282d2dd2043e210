"""A subscriber's dead letters: list them with their causes, show one, redrive, purge.

Dead letters live in ``<topic>.dlq.<subscriber>`` (:func:`bus.delivery.dlq_topic`): the
original record's key, value and headers plus its cause in ``dlq_*`` headers.

*Personal data stays masked.* When a dead letter decodes as an event, every field the
schema tags ``spbe.pii`` is shown as ``***``; the error message has those values and any
run of 16 or more digits (NIK, No. KK, NOP) masked too. Undecodable values are never
printed, only their size.

*Redrive* applies the selected dead letters directly through the subscriber's own handler
(its sink, built from its adapter file), not by publishing them to the original topic
again: a re-published event would reach every other subscriber of that topic as a
duplicate and stay in the steward's history for good. The sink's idempotency makes a
redrive of an event that was applied meanwhile a reported duplicate, and its version guard
keeps a newer row from being overwritten. Redrive never deletes: dead letters that applied
are purged afterwards with :func:`purge`, up to :attr:`RedriveReport.purge_to`, the last
offset before which every dead letter is resolved (Kafka deletes a prefix of a partition,
never single records).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import RecordsToDelete
from aiokafka.structs import ConsumerRecord

from bus.contract.message import IncomingEvent
from bus.decoding import RecordDecoder
from bus.delivery import (
    DLQ_HEADER_PREFIX,
    Delivery,
    Handler,
    Outcome,
    RetryPolicy,
    dlq_topic,
    error_class,
)
from bus.errors import BusError, ConfigError
from bus.ops.reapply import apply_with_retry, unreachable
from bus.ops.replay import read_windows, topic_partitions
from bus.ops.replay_plan import PartitionWindow, ReplayError
from bus.startup import LiveNodeAdmin, start_client

__all__ = [
    "MASK",
    "DeadLetter",
    "DeadLetterError",
    "PurgeReport",
    "RedriveReport",
    "describe",
    "dlq_topics_of",
    "error_class_matches",
    "mask_paths",
    "mask_text",
    "personal_values",
    "purge",
    "purgeable_to",
    "read_dead_letters",
    "redrive",
    "select",
]

log = structlog.get_logger(__name__)

MASK: Final = "***"
#: NIK and No. KK (16 digits), NOP PBB (18): never shown, wherever they turn up in a message.
_LONG_DIGITS = re.compile(r"\d{16,}")


class DeadLetterError(BusError):
    """A dead-letter command could not do what was asked; the message says why."""


# -- one dead letter (pure) ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One record of a dead letter topic: the original record plus its cause."""

    topic: str
    partition: int
    offset: int
    timestamp: datetime
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    @classmethod
    def from_record(cls, record: ConsumerRecord[bytes, bytes]) -> DeadLetter:
        return cls(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            timestamp=datetime.fromtimestamp(record.timestamp / 1000, UTC),
            key=record.key,
            value=record.value,
            headers=tuple((k, v or b"") for k, v in record.headers),
        )

    @property
    def cause(self) -> dict[str, str]:
        """The ``dlq_*`` headers without their prefix (``error_class``, ``attempts``...)."""
        return {
            k.removeprefix(DLQ_HEADER_PREFIX): v.decode("utf-8", "replace")
            for k, v in self.headers
            if k.startswith(DLQ_HEADER_PREFIX)
        }

    @property
    def original_headers(self) -> list[tuple[str, bytes]]:
        """The headers the event was published with (the CloudEvents envelope)."""
        return [(k, v) for k, v in self.headers if not k.startswith(DLQ_HEADER_PREFIX)]

    @property
    def error_class(self) -> str:
        return self.cause.get("error_class", "")

    def original(self) -> tuple[str, int, int]:
        """(topic, partition, offset) of the event in its own topic."""
        cause = self.cause
        return (
            cause.get("original_topic", ""),
            int(cause.get("original_partition", "-1") or -1),
            int(cause.get("original_offset", "-1") or -1),
        )


def mask_paths(data: Any, paths: Iterable[str]) -> Any:
    """A copy of ``data`` with the value at each dotted path replaced by :data:`MASK`.

    Paths are those of :meth:`~bus.contract.schema.AvroSchema.pii_fields`: ``[]`` steps
    into every item of a list and ``{}`` into every value of a map. Absent values (None)
    stay None, so a reader still sees the field was empty.
    """
    result = _copy(data)
    for path in paths:
        result = _mask(result, path.split("."))
    return result


def _copy(data: Any) -> Any:
    if isinstance(data, Mapping):
        return {k: _copy(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_copy(v) for v in data]
    return data


def _mask(data: Any, steps: list[str]) -> Any:
    if not steps or data is None:
        return data if data is None else MASK
    step, rest = steps[0], steps[1:]
    name = step.removesuffix("[]").removesuffix("{}")
    if not isinstance(data, dict) or name not in data:
        return data
    value = data[name]
    if step.endswith("[]") and isinstance(value, list):
        data[name] = [_mask(item, rest) for item in value]
    elif step.endswith("{}") and isinstance(value, dict):
        data[name] = {k: _mask(v, rest) for k, v in value.items()}
    else:
        data[name] = _mask(value, rest)
    return data


def _values_at(data: Any, steps: list[str]) -> list[str]:
    if data is None:
        return []
    if not steps:
        return [str(data)]
    step, rest = steps[0], steps[1:]
    name = step.removesuffix("[]").removesuffix("{}")
    if not isinstance(data, dict):
        return []
    value = data.get(name)
    if step.endswith("[]") and isinstance(value, list):
        return [found for item in value for found in _values_at(item, rest)]
    if step.endswith("{}") and isinstance(value, dict):
        return [found for item in value.values() for found in _values_at(item, rest)]
    return _values_at(value, rest)


def personal_values(incoming: IncomingEvent) -> list[str]:
    """The values of the event's ``spbe.pii`` fields, to mask wherever they are quoted."""
    data = incoming.event.to_json()
    return [v for path in incoming.writer.pii_fields() for v in _values_at(data, path.split("."))]


def mask_text(text: str, personal: Iterable[str] = ()) -> str:
    """``text`` with each personal value (3+ characters) and long digit runs masked."""
    for value in sorted({v for v in personal if len(v) >= 3}, key=len, reverse=True):
        text = text.replace(value, MASK)
    return _LONG_DIGITS.sub(MASK, text)


def describe(
    letter: DeadLetter,
    incoming: IncomingEvent | None,
    *,
    problem: str | None = None,
    full: bool = False,
) -> dict[str, Any]:
    """A JSON-ready view of ``letter`` with personal data masked.

    ``incoming`` is the decoded event (None when it does not decode; ``problem`` says
    why). ``full`` adds the envelope headers, as ``dlq show`` prints them.
    """
    topic, partition, offset = letter.original()
    cause = letter.cause
    personal: list[str] = []
    view: dict[str, Any] = {
        "dlq_topic": letter.topic,
        "partition": letter.partition,
        "offset": letter.offset,
        "dead_lettered_at": letter.timestamp.isoformat(timespec="milliseconds"),
        "original": {"topic": topic, "partition": partition, "offset": offset},
        "error_class": cause.get("error_class"),
        "attempts": int(cause["attempts"]) if cause.get("attempts", "").isdigit() else None,
        "first_failure": cause.get("first_failure"),
        "last_failure": cause.get("last_failure"),
        "key": letter.key.decode("utf-8", "replace") if letter.key is not None else None,
    }
    if incoming is not None:
        data = incoming.event.to_json()
        paths = incoming.writer.pii_fields()
        personal = personal_values(incoming)
        envelope = incoming.envelope
        view.update(
            event_type=envelope.type,
            event_id=envelope.id,
            source=envelope.source,
            time=envelope.time.isoformat(),
            sequence=envelope.sequence,
            event=mask_paths(data, paths),
        )
    else:
        size = len(letter.value) if letter.value is not None else 0
        view["undecodable"] = mask_text(f"{problem or 'not an event'} ({size} bytes, not shown)")
    view["error_message"] = mask_text(cause.get("error_message", ""), personal)
    if full:
        view["headers"] = {
            k: mask_text(v.decode("utf-8", "replace"), personal) for k, v in letter.original_headers
        }
    return view


def error_class_matches(actual: str, wanted: str) -> bool:
    """``wanted`` is the full class name, or only its last part (``RejectedEventError``)."""
    return actual == wanted or actual.rsplit(".", 1)[-1] == wanted


def select(
    letters: Sequence[DeadLetter],
    *,
    from_offset: int | None = None,
    to_offset: int | None = None,
    error_class: str | None = None,
) -> list[DeadLetter]:
    """The dead letters with ``from_offset <= offset <= to_offset`` and the error class."""
    if from_offset is not None and to_offset is not None and to_offset < from_offset:
        raise ConfigError(f"--to-offset {to_offset} is before --from-offset {from_offset}")
    return [
        letter
        for letter in letters
        if (from_offset is None or letter.offset >= from_offset)
        and (to_offset is None or letter.offset <= to_offset)
        and (error_class is None or error_class_matches(letter.error_class, error_class))
    ]


def purgeable_to(offsets: Sequence[int], resolved: Iterable[int]) -> int | None:
    """The last offset up to which every dead letter in ``offsets`` is ``resolved``.

    ``offsets`` are all the partition's dead letters, in order, from the first one held.
    None when the first one is not resolved (purging anything would lose it).
    """
    done = set(resolved)
    last: int | None = None
    for offset in offsets:
        if offset not in done:
            break
        last = offset
    return last


@dataclass(frozen=True, slots=True)
class _Origin:
    """Where a dead letter was first read: the coordinates its delivery carries."""

    topic: str
    partition: int
    offset: int
    key: bytes | None


# -- Kafka ------------------------------------------------------------------------------------


async def dlq_topics_of(bootstrap_servers: str, subscriber: str) -> list[str]:
    """The original topics for which ``subscriber`` has a dead letter topic."""
    consumer = await start_client(
        lambda: AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False),
        "list topics",
        bootstrap_servers=bootstrap_servers,
    )
    try:
        topics: set[str] = await consumer.topics()
    finally:
        await consumer.stop()
    suffix = dlq_topic("", subscriber)  # ".dlq.<subscriber>"
    return sorted(t.removesuffix(suffix) for t in topics if t.endswith(suffix) and t != suffix)


async def _bounds(bootstrap_servers: str, topic: str) -> dict[TopicPartition, tuple[int, int]]:
    partitions = (await topic_partitions(bootstrap_servers, [topic])).get(topic)
    if not partitions:
        raise DeadLetterError(
            f"there is no dead letter topic {topic}",
            fix="check --subscriber and --topic ('spbe-bus dlq list --subscriber ID' "
            "lists every topic with dead letters)",
        )
    tps = [TopicPartition(topic, p) for p in partitions]
    consumer = await start_client(
        lambda: AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False),
        "read offsets",
        bootstrap_servers=bootstrap_servers,
    )
    try:
        lows = await consumer.beginning_offsets(tps)
        highs = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    return {tp: (lows[tp], highs[tp]) for tp in tps}


async def read_dead_letters(
    bootstrap_servers: str, subscriber: str, topic: str
) -> list[DeadLetter]:
    """Every dead letter ``subscriber`` holds for ``topic``, by partition and offset."""
    name = dlq_topic(topic, subscriber)
    bounds = await _bounds(bootstrap_servers, name)
    windows = [PartitionWindow(tp.topic, tp.partition, lo, hi) for tp, (lo, hi) in bounds.items()]
    letters = [DeadLetter.from_record(r) async for r in read_windows(bootstrap_servers, windows)]
    return sorted(letters, key=lambda letter: (letter.partition, letter.offset))


@dataclass
class RedriveReport:
    """What a redrive did, by dead letter offset."""

    selected: int
    applied: list[int] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    purge_to: int | None = None

    def as_result(self) -> dict[str, Any]:
        return {
            "selected": self.selected,
            "applied": len(self.applied),
            "duplicates": len(self.duplicates),
            "failed": len(self.failed),
            "failed_offsets": [f["offset"] for f in self.failed],
            "purge_to": self.purge_to,
        }


async def redrive(
    letters: Sequence[DeadLetter],
    handler: Handler,
    decoder: RecordDecoder,
    *,
    all_offsets: Sequence[int] = (),
    retry: RetryPolicy | None = None,
) -> RedriveReport:
    """Apply each of ``letters`` through ``handler`` as the original delivery.

    A dead letter that fails again stays where it is and is reported with its new cause
    (masked). When the sink is unreachable the redrive stops with a
    :class:`~bus.ops.replay_plan.ReplayError`. ``all_offsets`` (every dead letter of the
    partition, in order) lets the report name how far a purge may go.
    """
    policy = retry or RetryPolicy()
    report = RedriveReport(selected=len(letters))
    for letter in letters:
        topic, partition, offset = letter.original()
        incoming: IncomingEvent | None = None
        try:
            incoming = await decoder.decode(letter.value, letter.original_headers)
            origin = _Origin(topic, partition, offset, letter.key)
            delivery = Delivery.of(origin, incoming)
            outcome = await apply_with_retry(handler, delivery, policy)
        except Exception as exc:
            if unreachable(exc):
                raise ReplayError(
                    f"redrive stopped at dead letter {letter.topic}[{letter.partition}]"
                    f"@{letter.offset}: {type(exc).__name__}: {exc}",
                    fix="once the sink is reachable, run the redrive again (dead letters that "
                    "applied come back as duplicates)",
                ) from exc
            view = describe(letter, incoming)
            personal = personal_values(incoming) if incoming is not None else []
            report.failed.append(
                {
                    "offset": letter.offset,
                    "error_class": error_class(exc),
                    "message": mask_text(str(exc), personal),
                    "event_id": view.get("event_id"),
                }
            )
            log.warning("dlq.redrive_failed", dlq=letter.topic, offset=letter.offset)
            continue
        (report.duplicates if outcome is Outcome.DUPLICATE else report.applied).append(
            letter.offset
        )
    resolved = set(report.applied) | set(report.duplicates)
    report.purge_to = purgeable_to(all_offsets or [x.offset for x in letters], resolved)
    return report


@dataclass(frozen=True, slots=True)
class PurgeReport:
    """A purge: the partition's first offset before and after, and how many records went."""

    topic: str
    partition: int
    before: int
    after: int

    @property
    def deleted(self) -> int:
        return self.after - self.before


async def purge(
    bootstrap_servers: str, subscriber: str, topic: str, *, to_offset: int, partition: int = 0
) -> PurgeReport:
    """Delete the dead letters at offsets ``<= to_offset`` of one partition."""
    name = dlq_topic(topic, subscriber)
    bounds = await _bounds(bootstrap_servers, name)
    tp = TopicPartition(name, partition)
    if tp not in bounds:
        raise ConfigError(f"{name} has no partition {partition}")
    low, high = bounds[tp]
    if to_offset < low:
        raise DeadLetterError(
            f"nothing to purge: {name}[{partition}] holds offsets {low}..{high - 1}"
            if high > low
            else f"nothing to purge: {name}[{partition}] is empty",
        )
    if to_offset >= high:
        raise ConfigError(
            f"--to-offset {to_offset} is beyond the last dead letter of {name}[{partition}] "
            f"({high - 1})",
            fix="purge only dead letters you have reviewed: 'spbe-bus dlq list' shows them",
        )
    admin = await start_client(
        lambda: LiveNodeAdmin(bootstrap_servers=bootstrap_servers),
        "purge dead letters",
        bootstrap_servers=bootstrap_servers,
    )
    try:
        result = await admin.delete_records({tp: RecordsToDelete(before_offset=to_offset + 1)})
    finally:
        await admin.close()
    after = int(result.get(tp, to_offset + 1))
    log.info("dlq.purged", dlq=name, partition=partition, low_watermark=after)
    return PurgeReport(topic=name, partition=partition, before=low, after=after)
