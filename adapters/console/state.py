"""What the console shows, pure: one JSON snapshot from what the collector read.

Per subscription of the catalogue (and the REST gateway's read models): lag, the last
applied event's time, dead letters waiting with the newest few described, and the
contract's expiry (date, days left, expired). Per adapter: up or down. The newest audit
records, newest first. Every string that comes from the bus
rather than from the catalogue goes through :func:`~bus.ops.dlq_records.mask_message`, the
masking of free text ``spbe-bus logs`` uses too (quoted names, digit runs of ten or more,
SQL tails), so no NIK, phone number or quoted name reaches the page even from a message or
an operator's reason that quoted one.

Of a dead letter's event the page shows the field names only: every value is ``***``
(None stays None), the ``spbe.pii`` ones and the rest alike. The standard leaves some
personal data untagged (an IzinDiterbitkan's ``lokasi.alamat`` and ``lat``/``lon``, a
sole trader's ``nama_usaha``), and the page is read by more people than the operator at
a terminal, where ``spbe-bus dlq show`` prints the untagged values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from bus.ops.audit import AuditRecord
from bus.ops.catalog import Catalog
from bus.ops.dlq_records import MASK, mask_message
from bus.ops.status import StatusReport, SubscriberStatus

__all__ = ["AdapterHealth", "audit_view", "console_state", "iso"]

#: How much of an audit record's result the page shows (the trail keeps all of it).
_MAX_OUTCOME_CHARS = 200
#: Result keys shown before the others: what came of the action.
_FIRST_KEYS = ("outcome", "status", "error")


@dataclass(frozen=True, slots=True)
class AdapterHealth:
    """One adapter's answer: up (a 2xx from its health URL) or down, and why."""

    name: str
    up: bool
    detail: str
    checked_at: datetime


def iso(moment: datetime | None) -> str | None:
    """``moment`` in UTC, ISO 8601 with milliseconds and ``Z``; None stays None."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _lag_per_topic(status: SubscriberStatus) -> dict[str, int]:
    """A subscriber's lag on each of its topics (its partitions together)."""
    lags: dict[str, int] = {}
    for part in status.partitions:
        lags[part.topic] = lags.get(part.topic, 0) + part.lag
    return lags


def console_state(
    report: StatusReport,
    catalog: Catalog,
    *,
    today: date,
    max_lag: int,
    dead_letters: Mapping[str, Sequence[Mapping[str, Any]]],
    adapters: Sequence[AdapterHealth],
    audit: Sequence[AuditRecord],
) -> dict[str, Any]:
    """The page's data: ``dead_letters`` maps a subscriber to its newest letters' views
    (already masked, as :func:`~bus.ops.dlq_records.describe` makes them); ``audit`` is
    oldest first, as read, and comes out newest first."""
    contracts = {s.subscriber: s for s in catalog.subscriptions}
    subscriptions = []
    for status in report.subscribers:
        contract = contracts.get(status.subscriber)
        expiry: dict[str, Any] = {"expires": None, "days_left": None, "expired": False}
        if contract is not None:
            expiry = {
                "expires": contract.expires.isoformat(),
                "days_left": (contract.expires - today).days,
                "expired": contract.expires < today,
            }
        subscriptions.append(
            {
                "subscriber": status.subscriber,
                "opd": contract.opd if contract is not None else None,
                "topics": list(status.topics),
                "lag": status.lag,
                # per topic, as the diagram's flows and the SpbeConsumerLagHigh alert count
                "lagging": any(lag > max_lag for lag in _lag_per_topic(status).values()),
                "last_applied": iso(status.last_applied),
                "dead_letters": status.dead_letter_count,
                "dead_letter_samples": [
                    _sample(v) for v in dead_letters.get(status.subscriber, ())
                ],
                "missing_topics": list(status.missing_topics),
                **expiry,
            }
        )
    return {
        "taken_at": iso(report.taken_at),
        "max_lag": max_lag,
        "subscriptions": subscriptions,
        "adapters": [
            {
                "name": a.name,
                "up": a.up,
                "detail": mask_message(a.detail),
                "checked_at": iso(a.checked_at),
            }
            for a in adapters
        ],
        "audit": [audit_view(r) for r in reversed(audit)],
    }


def _sample(view: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a described dead letter the page shows: its event's field names only."""
    return {
        "dlq_topic": view.get("dlq_topic"),
        "partition": view.get("partition"),
        "offset": view.get("offset"),
        "dead_lettered_at": view.get("dead_lettered_at"),
        "error_class": view.get("error_class"),
        "error_message": mask_message(str(view.get("error_message") or "")),
        "event_type": view.get("event_type"),
        "event_id": view.get("event_id"),
        "event": _field_names_only(view.get("event")),
        "undecodable": view.get("undecodable"),
    }


def _field_names_only(data: Any) -> Any:
    """``data`` with every leaf value :data:`~bus.ops.dlq_records.MASK`; names and None stay."""
    if data is None:
        return None
    if isinstance(data, Mapping):
        return {str(k): _field_names_only(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_field_names_only(v) for v in data]
    return MASK


def audit_view(record: AuditRecord) -> dict[str, Any]:
    """One audit record as the page lists it: when, what, who, on what, why, outcome."""
    first = [k for k in _FIRST_KEYS if k in record.result]
    keys = [*first, *sorted(k for k in record.result if k not in first)]
    outcome = ", ".join(
        f"{k}: {record.result[k]}"
        for k in keys
        if isinstance(record.result[k], str | int | float | bool)
    )
    if len(outcome) > _MAX_OUTCOME_CHARS:
        outcome = outcome[: _MAX_OUTCOME_CHARS - 1] + "…"
    return {
        "id": record.id,
        "at": iso(record.at),
        "action": record.action,
        "principal": mask_message(record.principal),
        "subscriber": mask_message(record.subscriber),
        "topics": [mask_message(t) for t in record.topics],
        "reason": mask_message(record.reason) if record.reason else None,
        "outcome": mask_message(outcome),
    }
