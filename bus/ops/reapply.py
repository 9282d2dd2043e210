"""Re-apply events through a subscriber's sink, as the subscriber would (retries included).

Used by ``spbe-bus replay --mode reapply`` (events read from a window of the topic) and
``spbe-bus dlq redrive`` (events read back from the dead letter topic). An event that
cannot apply is reported and the work goes on; a sink that is unreachable stops it with
a :class:`~bus.ops.replay_plan.ReplayError` saying where to resume.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka.structs import ConsumerRecord
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

from bus.decoding import RecordDecoder
from bus.delivery import Delivery, Handler, Outcome, RetryPolicy, error_class, is_retriable
from bus.logs import get_logger
from bus.ops.replay import read_windows
from bus.ops.replay_plan import PartitionWindow, ReplayError, key_selected

__all__ = [
    "FailedEvent",
    "Progress",
    "ReapplyReport",
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
                f"{report.duplicates} duplicate(s): {error_class(exc)}: {exc}",
                fix="once the sink is reachable, run the same replay again (events already "
                f"applied come back as duplicates), or resume with --from-offsets "
                f"{record.topic}:{record.partition}:{record.offset}",
            ) from exc
        report.failed.append(
            FailedEvent(record.topic, record.partition, record.offset, error_class(exc), str(exc))
        )
        log.warning(
            "replay.failed",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            error=error_class(exc),
        )
        return
    if outcome is Outcome.DUPLICATE:
        report.duplicates += 1
    else:
        report.applied += 1
    report.per_partition[where] = report.per_partition.get(where, 0) + 1
