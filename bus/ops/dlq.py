"""A subscriber's dead letters: list them with their causes, show one, redrive, purge.

Dead letters live in ``<topic>.dlq.<subscriber>`` (:func:`bus.delivery.dlq_topic`): the
original record's key, value and headers plus its cause in ``dlq_*`` headers.

*Personal data stays masked* (:mod:`bus.ops.dlq_records`, the pure half: parsing a dead
letter, masking, describing, selecting); this module does the Kafka work.

*Redrive* applies the selected dead letters directly through the subscriber's own handler
(its sink, built from its adapter file), not by publishing them to the original topic
again: a re-published event would reach every other subscriber of that topic as a
duplicate and stay in the steward's history for good. The sink's idempotency makes a
redrive of an event that was applied meanwhile a reported duplicate, and its version guard
keeps a newer row from being overwritten. A sink that applies batches gets the dead
letters :data:`REDRIVE_BATCH` at a time, as a replay does
(:func:`bus.ops.reapply.apply_together`; a batch that fails is redriven letter by letter).
Redrive never deletes: dead letters that applied are purged afterwards with
:func:`purge`, up to :attr:`RedriveReport.purge_to`, the last offset before which every
dead letter is resolved (Kafka deletes a prefix of a partition, never single records).
A dead letter of a projected topic is delivered again only after its ``replay`` entry is
in the delivery ledger (:mod:`bus.ops.replay_ledger`), a batch of letters at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import RecordsToDelete

from bus.connection import KafkaConnection, as_connection
from bus.contract.message import IncomingEvent
from bus.decoding import RecordDecoder
from bus.delivery import (
    BatchHandler,
    Delivery,
    Handler,
    Outcome,
    RetryPolicy,
    dlq_topic,
    error_class,
)
from bus.errors import ConfigError
from bus.logs import get_logger
from bus.ops.dlq_records import (
    DeadLetter,
    DeadLetterError,
    describe,
    mask_message,
    personal_values,
    purgeable_to,
)
from bus.ops.reapply import apply_together, apply_with_retry, unreachable
from bus.ops.replay import read_windows, topic_partitions
from bus.ops.replay_ledger import ReplayLedger, require_ledger
from bus.ops.replay_plan import PartitionWindow, ReplayError
from bus.startup import LiveNodeAdmin, start_client

__all__ = [
    "REDRIVE_BATCH",
    "PurgeReport",
    "RedriveReport",
    "dlq_topics_of",
    "latest_dead_letters",
    "purge",
    "read_dead_letters",
    "redrive",
]

log = get_logger(__name__)

#: How many dead letters a redrive hands to a sink's batch handler at a time.
REDRIVE_BATCH: Final = 500


@dataclass(frozen=True, slots=True)
class _Origin:
    """Where a dead letter was first read: the coordinates its delivery carries."""

    topic: str
    partition: int
    offset: int
    key: bytes | None


# -- Kafka ------------------------------------------------------------------------------------


async def dlq_topics_of(kafka: KafkaConnection | str, subscriber: str) -> list[str]:
    """The original topics for which ``subscriber`` has a dead letter topic."""
    connection = as_connection(kafka)
    consumer = await start_client(
        lambda: AIOKafkaConsumer(**connection.aiokafka_options(), enable_auto_commit=False),
        "list topics",
        bootstrap_servers=connection.bootstrap_servers,
        security=connection.security,
    )
    try:
        topics: set[str] = await consumer.topics()
    finally:
        await consumer.stop()
    suffix = dlq_topic("", subscriber)  # ".dlq.<subscriber>"
    return sorted(t.removesuffix(suffix) for t in topics if t.endswith(suffix) and t != suffix)


async def _bounds(connection: KafkaConnection, topic: str) -> dict[TopicPartition, tuple[int, int]]:
    partitions = (await topic_partitions(connection, [topic])).get(topic)
    if not partitions:
        raise DeadLetterError(
            f"there is no dead letter topic {topic}",
            fix="check --subscriber and --topic ('spbe-bus dlq list --subscriber ID' "
            "lists every topic with dead letters)",
        )
    tps = [TopicPartition(topic, p) for p in partitions]
    consumer = await start_client(
        lambda: AIOKafkaConsumer(**connection.aiokafka_options(), enable_auto_commit=False),
        "read offsets",
        bootstrap_servers=connection.bootstrap_servers,
        security=connection.security,
    )
    try:
        lows = await consumer.beginning_offsets(tps)
        highs = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    return {tp: (lows[tp], highs[tp]) for tp in tps}


async def read_dead_letters(
    kafka: KafkaConnection | str, subscriber: str, topic: str
) -> list[DeadLetter]:
    """Every dead letter ``subscriber`` holds for ``topic``, by partition and offset."""
    connection = as_connection(kafka)
    name = dlq_topic(topic, subscriber)
    bounds = await _bounds(connection, name)
    windows = [PartitionWindow(tp.topic, tp.partition, lo, hi) for tp, (lo, hi) in bounds.items()]
    letters = [DeadLetter.from_record(r) async for r in read_windows(connection, windows)]
    return sorted(letters, key=lambda letter: (letter.partition, letter.offset))


async def latest_dead_letters(
    kafka: KafkaConnection | str, subscriber: str, topic: str, *, limit: int
) -> list[DeadLetter]:
    """The ``limit`` newest dead letters ``subscriber`` holds for ``topic``, newest first.

    Only the tail of each partition is read, so a watch that asks every few seconds costs
    the same however many dead letters wait; newest is by dead-letter time.
    """
    connection = as_connection(kafka)
    name = dlq_topic(topic, subscriber)
    bounds = await _bounds(connection, name)
    windows = [
        PartitionWindow(tp.topic, tp.partition, max(lo, hi - limit), hi)
        for tp, (lo, hi) in bounds.items()
    ]
    letters = [DeadLetter.from_record(r) async for r in read_windows(connection, windows)]
    letters.sort(key=lambda letter: (letter.timestamp, letter.partition, letter.offset))
    return letters[::-1][:limit]


@dataclass
class RedriveReport:
    """What a redrive did, by dead letter offset."""

    selected: int
    applied: list[int] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    purge_to: int | None = None
    ledger_entries: int = 0

    def as_result(self) -> dict[str, Any]:
        return {
            "selected": self.selected,
            "applied": len(self.applied),
            "duplicates": len(self.duplicates),
            "failed": len(self.failed),
            "failed_offsets": [f["offset"] for f in self.failed],
            "purge_to": self.purge_to,
            "ledger_replay_entries": self.ledger_entries,
        }


async def redrive(
    letters: Sequence[DeadLetter],
    handler: Handler,
    decoder: RecordDecoder,
    *,
    batch_handler: BatchHandler | None = None,
    all_offsets: Sequence[int] = (),
    retry: RetryPolicy | None = None,
    ledger: ReplayLedger | None = None,
) -> RedriveReport:
    """Apply each of ``letters`` through ``handler`` as the original delivery.

    With ``batch_handler``, :data:`REDRIVE_BATCH` letters at a time go to it together
    first. A dead letter that fails again stays where it is and is reported with its new
    cause (masked). When the sink is unreachable the redrive stops with a
    :class:`~bus.ops.replay_plan.ReplayError`. ``all_offsets`` (every dead letter of the
    partition, in order) lets the report name how far a purge may go.

    Dead letters of a projected topic get their ``replay`` entries in ``ledger`` before
    they are applied, :data:`REDRIVE_BATCH` at a time; without ``ledger`` they are refused.
    """
    require_ledger(
        {letter.original()[0] for letter in letters},
        ledger.subscriber if ledger is not None else None,
        ledger_given=ledger is not None,
        action="redrive",
    )
    policy = retry or RetryPolicy()
    report = RedriveReport(selected=len(letters))
    for start in range(0, len(letters), REDRIVE_BATCH):
        chunk = letters[start : start + REDRIVE_BATCH]
        if ledger is not None:
            first = chunk[0]
            report.ledger_entries += await ledger.record(
                first.original()[0],
                [letter.original_headers for letter in chunk],
                where=f"dead letter {first.topic}[{first.partition}]@{first.offset}",
            )
        if (
            batch_handler is not None
            and len(chunk) > 1
            and await _redrive_together(chunk, batch_handler, decoder, report)
        ):
            continue
        for letter in chunk:
            await _redrive_one(letter, handler, decoder, policy, report)
    resolved = set(report.applied) | set(report.duplicates)
    report.purge_to = purgeable_to(all_offsets or [x.offset for x in letters], resolved)
    return report


def _delivery(letter: DeadLetter, incoming: IncomingEvent) -> Delivery:
    topic, partition, offset = letter.original()
    return Delivery.of(_Origin(topic, partition, offset, letter.key), incoming)


async def _redrive_together(
    letters: Sequence[DeadLetter],
    batch_handler: BatchHandler,
    decoder: RecordDecoder,
    report: RedriveReport,
) -> bool:
    """Apply ``letters`` as one batch; False (nothing counted) if any of them failed."""
    try:
        deliveries = [
            _delivery(letter, await decoder.decode(letter.value, letter.original_headers))
            for letter in letters
        ]
    except Exception:
        return False  # letter by letter, each failure reported with its letter
    outcomes = await apply_together(batch_handler, deliveries)
    if outcomes is None:
        return False
    for letter, outcome in zip(letters, outcomes, strict=True):
        (report.duplicates if outcome is Outcome.DUPLICATE else report.applied).append(
            letter.offset
        )
    return True


async def _redrive_one(
    letter: DeadLetter,
    handler: Handler,
    decoder: RecordDecoder,
    policy: RetryPolicy,
    report: RedriveReport,
) -> None:
    incoming: IncomingEvent | None = None
    try:
        incoming = await decoder.decode(letter.value, letter.original_headers)
        outcome = await apply_with_retry(handler, _delivery(letter, incoming), policy)
    except Exception as exc:
        personal = personal_values(incoming) if incoming is not None else []
        if unreachable(exc):
            raise ReplayError(
                f"redrive stopped at dead letter {letter.topic}[{letter.partition}]"
                f"@{letter.offset}: {type(exc).__name__}: {mask_message(str(exc), personal)}",
                fix="once the sink is reachable, run the redrive again (dead letters that "
                "applied come back as duplicates)",
            ) from exc
        view = describe(letter, incoming)
        report.failed.append(
            {
                "offset": letter.offset,
                "error_class": error_class(exc),
                "message": mask_message(str(exc), personal),
                "event_id": view.get("event_id"),
            }
        )
        log.warning("dlq.redrive_failed", dlq=letter.topic, offset=letter.offset)
        return
    (report.duplicates if outcome is Outcome.DUPLICATE else report.applied).append(letter.offset)


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
    kafka: KafkaConnection | str,
    subscriber: str,
    topic: str,
    *,
    to_offset: int,
    partition: int = 0,
) -> PurgeReport:
    """Delete the dead letters at offsets ``<= to_offset`` of one partition."""
    connection = as_connection(kafka)
    name = dlq_topic(topic, subscriber)
    bounds = await _bounds(connection, name)
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
        lambda: LiveNodeAdmin(**connection.aiokafka_options()),
        "purge dead letters",
        bootstrap_servers=connection.bootstrap_servers,
        security=connection.security,
    )
    try:
        result = await admin.delete_records({tp: RecordsToDelete(before_offset=to_offset + 1)})
    finally:
        await admin.close()
    after = int(result.get(tp, to_offset + 1))
    log.info("dlq.purged", dlq=name, partition=partition, low_watermark=after)
    return PurgeReport(topic=name, partition=partition, before=low, after=after)
