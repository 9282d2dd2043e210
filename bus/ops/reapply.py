"""Re-apply events through a subscriber's sink, as the subscriber would (retries included).

Used by ``spbe-bus replay --mode reapply`` (events read from a window of the topic) and
``spbe-bus dlq redrive`` (events read back from the dead letter topic). An event that
cannot apply is reported and the work goes on; a sink that is unreachable stops it with
a :class:`~bus.ops.replay_plan.ReplayError` saying where to resume.

A sink that applies many events in one go (a :data:`~bus.delivery.BatchHandler`, the SQL
sink's ``apply_batch``) gets them as the subscriber hands them over: one partition's
events as fetched, together, tried once (:func:`apply_together`). A batch that fails in
any way is applied again event by event, with retries, so that an event that cannot
apply is reported alone: a batch is only a faster way to the same outcomes.

A projected topic's events are delivered again only after their ``replay`` entries are in
the delivery ledger (:mod:`bus.ops.replay_ledger`): each fetched batch's entries are
appended before the batch goes to the sink.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka.structs import ConsumerRecord
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

from bus.connection import KafkaConnection
from bus.contract.message import IncomingEvent
from bus.decoding import RecordDecoder
from bus.delivery import (
    BatchHandler,
    Delivery,
    Handler,
    Outcome,
    RetryPolicy,
    error_class,
    is_retriable,
)
from bus.logs import get_logger
from bus.ops.dlq_records import mask_message, personal_values
from bus.ops.replay import read_window_batches
from bus.ops.replay_ledger import ReplayLedger, require_ledger
from bus.ops.replay_plan import PartitionWindow, ReplayError, key_selected

__all__ = [
    "FailedEvent",
    "Progress",
    "ReapplyReport",
    "apply_together",
    "apply_with_retry",
    "reapply",
    "unreachable",
]

log = get_logger(__name__)

#: ``(events done, events in the window)``, called after each event.
Progress = Callable[[int, int], None]


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
    ledger_entries: int = 0
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
            "ledger_replay_entries": self.ledger_entries,
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


async def apply_together(
    batch_handler: BatchHandler, deliveries: Sequence[Delivery]
) -> list[Outcome] | None:
    """Apply ``deliveries`` with ``batch_handler`` once; None if it failed (nothing applied).

    Each outcome is :attr:`Outcome.APPLIED` or :attr:`Outcome.DUPLICATE`. On None, apply
    the events one by one (:func:`apply_with_retry`), as the subscriber does.
    """
    try:
        outcomes = await batch_handler(deliveries)
    except Exception as exc:
        first = deliveries[0]
        log.info(
            "replay.batch_failed",
            topic=first.topic,
            partition=first.partition,
            first_offset=first.offset,
            size=len(deliveries),
            error=error_class(exc),
        )
        return None
    return [
        Outcome.DUPLICATE if outcome is Outcome.DUPLICATE else Outcome.APPLIED
        for outcome in outcomes
    ]


def unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the sink (its database, its endpoint) is away, not the event bad."""
    return getattr(exc, "retriable", None) is True or isinstance(exc, OSError | TimeoutError)


async def reapply(
    kafka: KafkaConnection | str,
    windows: Sequence[PartitionWindow],
    handler: Handler,
    decoder: RecordDecoder,
    *,
    batch_handler: BatchHandler | None = None,
    keys: frozenset[bytes] = frozenset(),
    retry: RetryPolicy | None = None,
    on_progress: Progress | None = None,
    ledger: ReplayLedger | None = None,
) -> ReapplyReport:
    """Hand every event of ``windows`` (with one of ``keys``, if given) to ``handler``.

    With ``batch_handler``, each partition's events as fetched go to it together first
    (see the module docstring). An event that cannot apply (it does not decode, or the
    sink refuses it) is reported in :attr:`ReapplyReport.failed` and the replay goes on.
    When retries of a retriable failure run out (the database is away), the replay stops
    with a :class:`ReplayError` saying where to resume.

    The events of a projected topic get their ``replay`` entries in ``ledger`` before
    they are handed over, a fetched batch at a time; without ``ledger`` such a window is
    refused (:func:`~bus.ops.replay_ledger.require_ledger`).
    """
    require_ledger(
        [w.topic for w in windows],
        ledger.subscriber if ledger is not None else None,
        ledger_given=ledger is not None,
    )
    policy = retry or RetryPolicy()
    report = ReapplyReport(total=sum(w.count for w in windows))

    def progressed() -> None:
        if on_progress is not None:
            on_progress(report.done, report.total)

    async with contextlib.aclosing(read_window_batches(kafka, windows)) as batches:
        async for batch in batches:
            selected = [record for record in batch if key_selected(record.key, keys)]
            report.skipped_keys += len(batch) - len(selected)
            report.done += len(batch) - len(selected)
            if ledger is not None and selected:
                first = selected[0]
                report.ledger_entries += await ledger.record(
                    first.topic,
                    [list(record.headers) for record in selected],
                    where=f"{first.topic}[{first.partition}]@{first.offset}",
                )
            if (
                batch_handler is not None
                and len(selected) > 1
                and await _reapply_together(selected, batch_handler, decoder, report)
            ):
                report.done += len(selected)
            else:
                for record in selected:
                    report.done += 1
                    await _reapply_one(record, handler, decoder, policy, report)
                    progressed()
            progressed()
    return report


async def _reapply_together(
    records: Sequence[ConsumerRecord[bytes, bytes]],
    batch_handler: BatchHandler,
    decoder: RecordDecoder,
    report: ReapplyReport,
) -> bool:
    """Apply ``records`` as one batch; False (nothing counted) if any of them failed."""
    try:
        deliveries = [
            Delivery.of(record, await decoder.decode(record.value, list(record.headers)))
            for record in records
        ]
    except Exception:
        return False  # one by one, each failure reported with its record
    outcomes = await apply_together(batch_handler, deliveries)
    if outcomes is None:
        return False
    for record, outcome in zip(records, outcomes, strict=True):
        _count(record, outcome, report)
    return True


async def _reapply_one(
    record: ConsumerRecord[bytes, bytes],
    handler: Handler,
    decoder: RecordDecoder,
    retry: RetryPolicy,
    report: ReapplyReport,
) -> None:
    where = f"{record.topic}[{record.partition}]"
    incoming: IncomingEvent | None = None
    try:
        incoming = await decoder.decode(record.value, list(record.headers))
        delivery = Delivery.of(record, incoming)
        outcome = await apply_with_retry(handler, delivery, retry)
    except Exception as exc:
        # What a sink's error quotes of the event is masked, as a redrive's failures are.
        message = mask_message(str(exc), personal_values(incoming) if incoming else [])
        if unreachable(exc):
            raise ReplayError(
                f"stopped at {where}@{record.offset} after {report.applied} applied and "
                f"{report.duplicates} duplicate(s): {error_class(exc)}: {message}",
                fix="once the sink is reachable, run the same replay again (events already "
                f"applied come back as duplicates), or resume with --from-offsets "
                f"{record.topic}:{record.partition}:{record.offset}",
            ) from exc
        report.failed.append(
            FailedEvent(
                record.topic,
                record.partition,
                record.offset,
                error_class(exc),
                message,
            )
        )
        log.warning(
            "replay.failed",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            error=error_class(exc),
        )
        return
    _count(record, outcome, report)


def _count(record: ConsumerRecord[bytes, bytes], outcome: Outcome, report: ReapplyReport) -> None:
    if outcome is Outcome.DUPLICATE:
        report.duplicates += 1
    else:
        report.applied += 1
    where = f"{record.topic}[{record.partition}]"
    report.per_partition[where] = report.per_partition.get(where, 0) + 1
