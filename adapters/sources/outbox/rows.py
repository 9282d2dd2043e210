"""What the relay decides about one outbox row, without IO.

A row becomes a typed event, or a :class:`RowRejected` saying why it cannot (bad JSON,
an unknown event type, field rules broken). Error texts come from the bus's own errors,
which never echo field values, so they are safe to store in ``last_error`` and to log.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from bus.contract.envelope import UUID7_PATTERN
from bus.contract.events import EVENT_TYPES, SpbeEvent
from bus.errors import BusError, ContractError, FieldProblem

__all__ = [
    "LAST_ERROR_MAX_CHARS",
    "OutboxRow",
    "RowRejected",
    "decode_event",
    "error_text",
    "next_attempt_at",
    "normalise_event_id",
    "valid_event_id",
]

#: ``last_error`` keeps at most this many characters.
LAST_ERROR_MAX_CHARS = 2000


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One claimed row, as the relay reads it."""

    id: int
    event_id: str
    event_type: str
    aggregate_id: str
    sequence: int | None
    payload: str
    attempts: int

    def __repr__(self) -> str:
        # aggregate_id may be a NIK and payload holds personal data: never in a repr.
        return f"OutboxRow(id={self.id}, event_id={self.event_id!r}, type={self.event_type!r})"


class RowRejected(ContractError):
    """An outbox row cannot become an event: its payload or its columns break a rule."""

    def __init__(self, problem: FieldProblem) -> None:
        self.problem = problem
        super().__init__(str(problem))


def normalise_event_id(value: str) -> str:
    """The stored event id as a ``ce_id``: trimmed and lowercase (UUIDs are case-blind)."""
    return value.strip().lower()


def valid_event_id(value: str) -> str:
    """``value`` normalised; raise :class:`RowRejected` unless it is a UUIDv7."""
    normalised = normalise_event_id(value)
    if not UUID7_PATTERN.fullmatch(normalised):
        raise RowRejected(
            FieldProblem(
                "event_id",
                "is not a UUIDv7",
                "a UUID version 7, xxxxxxxx-xxxx-7xxx-[89ab]xxx-xxxxxxxxxxxx",
            )
        )
    return normalised


def decode_event(row: OutboxRow) -> SpbeEvent:
    """The typed event the row's payload holds.

    Raises :class:`RowRejected` for a payload that is not JSON or an unknown
    ``event_type``, and :class:`~bus.errors.EventValidationError` naming every broken
    field rule.
    """
    event_class = EVENT_TYPES.get(row.event_type)
    if event_class is None:
        known = ", ".join(sorted(EVENT_TYPES))
        raise RowRejected(
            FieldProblem("event_type", "is not an event type of the standard", f"one of: {known}")
        )
    try:
        data = json.loads(row.payload)
    except json.JSONDecodeError as exc:
        # The message names a position only; never the text around it.
        raise RowRejected(
            FieldProblem(
                "payload",
                f"is not valid JSON ({exc.msg} at character {exc.pos})",
                "the event as a JSON object, the shape of schemas/avro/examples",
            )
        ) from None
    return event_class.from_json(data)


def error_text(error: BusError) -> str:
    """What ``last_error`` stores for ``error``: its class and message, bounded in length."""
    text = f"{type(error).__name__}: {error}"
    if len(text) > LAST_ERROR_MAX_CHARS:
        text = text[: LAST_ERROR_MAX_CHARS - 1] + "…"
    return text


def next_attempt_at(now: datetime, attempts: int, *, initial_ms: int, max_ms: int) -> datetime:
    """When a row that has failed ``attempts`` times is tried again: doubling, bounded."""
    exponent = max(0, min(attempts - 1, 30))
    delay_ms = min(max_ms, initial_ms * 2**exponent)
    return now + timedelta(milliseconds=delay_ms)
