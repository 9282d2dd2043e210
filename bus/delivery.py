"""What a subscriber hands a sink, and its policy (pure): retries, waits, dead letters.

:class:`Delivery` is one event as a handler receives it; :class:`Outcome` what became of
it; :data:`Handler` and :data:`BatchHandler` the shapes of a sink. They live here, below
the subscriber, so that sinks and operator tools depend on the contract of a delivery and
not on the Kafka consumer that produces one.

A handler failure is *retriable* when trying the same event again may succeed without a
change: the error says so (``retriable = True`` on bus errors, on aiokafka's errors), or
it is a connection or timeout problem. Contract errors (an event that does not decode,
a value that breaks a rule) and :class:`~bus.errors.PermanentError` never are. Anything
else is retried a bounded number of times, then dead-lettered: an unknown failure gets
the benefit of the doubt, never an endless loop.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field
from tenacity import wait_exponential_jitter
from tenacity.wait import wait_base

from bus.contract.contract_headers import DeliveryContract
from bus.contract.envelope import Envelope
from bus.contract.events import SpbeEvent
from bus.contract.message import IncomingEvent
from bus.errors import ContractError, PermanentError, UnknownSchemaError

__all__ = [
    "DLQ_HEADER_PREFIX",
    "BatchHandler",
    "DeadLetterCause",
    "DecodeFailure",
    "Delivery",
    "Handler",
    "Outcome",
    "RetryPolicy",
    "backoff_s",
    "classify_decode_failure",
    "dead_letter_headers",
    "dlq_topic",
    "error_class",
    "is_retriable",
]

DLQ_HEADER_PREFIX = "dlq_"


class Outcome(StrEnum):
    """What became of one event; each one lets its offset be committed."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    DEAD_LETTERED = "dead_lettered"


class RecordCoordinates(Protocol):
    """Where a record was read: what a consumer record has and a delivery keeps."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event as a handler receives it, with what an idempotent sink needs.

    :attr:`contract` is the subscription the event was delivered under (its contract
    headers, on a projected topic); None for an event read from a raw topic.
    """

    event: SpbeEvent
    envelope: Envelope
    topic: str
    partition: int
    offset: int
    key: bytes | None
    attempt: int
    contract: DeliveryContract | None = None

    @classmethod
    def of(cls, record: RecordCoordinates, incoming: IncomingEvent, attempt: int = 1) -> Delivery:
        """The delivery of ``incoming``, read from ``record`` (a Kafka consumer record)."""
        return cls(
            event=incoming.event,
            envelope=incoming.envelope,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            attempt=attempt,
            contract=incoming.contract,
        )

    @property
    def dedupe_key(self) -> tuple[str, str]:
        """(``ce_source``, ``ce_id``): the same pair means the same event."""
        return (self.envelope.source, self.envelope.id)

    @property
    def sequence(self) -> int | None:
        """The aggregate version; a sink never lets a lower one overwrite a higher one."""
        return self.envelope.sequence


Handler = Callable[[Delivery], Awaitable[Outcome | None]]
#: Applies a partition's events together (one database transaction); returns one outcome
#: per delivery, in order. Raising makes the subscriber fall back to ``handler`` per event.
BatchHandler = Callable[[Sequence[Delivery]], Awaitable[Sequence[Outcome | None]]]


class RetryPolicy(BaseModel):
    """Exponential backoff with jitter and a cap on attempts (first try included)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_attempts: int = Field(default=5, ge=1)
    initial_backoff_ms: int = Field(default=200, ge=0)
    max_backoff_ms: int = Field(default=10_000, ge=0)
    jitter_ms: int = Field(default=200, ge=0)

    def wait(self) -> wait_base:
        """The policy's waits between attempts, as a tenacity wait strategy."""
        return wait_exponential_jitter(
            multiplier=self.initial_backoff_ms / 1000,
            max=self.max_backoff_ms / 1000,
            jitter=self.jitter_ms / 1000,
        )


def is_retriable(exc: BaseException) -> bool:
    """Whether the same event may succeed if tried again (see the module docstring)."""
    if isinstance(exc, ContractError | PermanentError):
        return False
    flag = getattr(exc, "retriable", None)
    if isinstance(flag, bool):
        return flag
    return True


def backoff_s(policy: RetryPolicy, attempt: int) -> float:
    """The wait after failed attempt number ``attempt`` (1-based): exponential, jittered, capped."""
    base = policy.initial_backoff_ms * (1 << min(attempt - 1, 30))
    jitter = random.uniform(0, policy.jitter_ms)  # noqa: S311 - jitter, not cryptography
    return min(base + jitter, policy.max_backoff_ms) / 1000


class DecodeFailure(StrEnum):
    """What a subscriber does with a record that did not decode."""

    #: The registry (Kafka) did not answer: nothing is wrong with the event. Retried with
    #: the policy's backoff until it decodes or the subscriber stops; never dead-lettered,
    #: its offset never committed meanwhile.
    UNAVAILABLE = "unavailable"
    #: The writer's schema is not in the registry yet (its registration may be on the way):
    #: retried up to the policy's ``max_attempts``, then dead-lettered.
    UNKNOWN_SCHEMA = "unknown_schema"
    #: The record can never decode (bad bytes, broken envelope): dead-lettered at once.
    POISON = "poison"


def classify_decode_failure(exc: BaseException) -> DecodeFailure:
    """Sort a decoding failure into :class:`DecodeFailure`.

    Unlike a handler's failure, an unknown exception while decoding counts as poison: the
    decoder is pure code over the record's bytes, so trying again gives the same answer.
    """
    if isinstance(exc, UnknownSchemaError):
        return DecodeFailure.UNKNOWN_SCHEMA
    if getattr(exc, "retriable", False) is True or isinstance(exc, OSError | TimeoutError):
        return DecodeFailure.UNAVAILABLE
    return DecodeFailure.POISON


def error_class(exc: BaseException) -> str:
    """The error's full class name (``bus.errors.PermanentError``): what reports show."""
    return f"{type(exc).__module__}.{type(exc).__qualname__}"


def dlq_topic(topic: str, subscriber: str) -> str:
    """The dead letter topic of ``subscriber`` for ``topic``: ``<topic>.dlq.<subscriber>``."""
    return f"{topic}.dlq.{subscriber}"


@dataclass(frozen=True, slots=True)
class DeadLetterCause:
    """Why an event was dead-lettered, and where it came from."""

    error_class: str
    message: str
    attempts: int
    first_failure: datetime
    last_failure: datetime
    topic: str
    partition: int
    offset: int
    subscriber: str

    @classmethod
    def of(
        cls,
        exc: BaseException,
        *,
        attempts: int,
        first_failure: datetime,
        topic: str,
        partition: int,
        offset: int,
        subscriber: str,
    ) -> DeadLetterCause:
        return cls(
            error_class=error_class(exc),
            message=str(exc)[:2000],
            attempts=attempts,
            first_failure=first_failure,
            last_failure=datetime.now(UTC),
            topic=topic,
            partition=partition,
            offset=offset,
            subscriber=subscriber,
        )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def dead_letter_headers(
    original: list[tuple[str, bytes]], cause: DeadLetterCause
) -> list[tuple[str, bytes]]:
    """The original headers, then the cause as ``dlq_*`` headers (replacing older ones).

    A redriven event that fails again carries only its latest cause.
    """
    kept = [(k, v) for k, v in original if not k.startswith(DLQ_HEADER_PREFIX)]
    cause_headers = {
        "error_class": cause.error_class,
        "error_message": cause.message,
        "attempts": str(cause.attempts),
        "first_failure": _iso(cause.first_failure),
        "last_failure": _iso(cause.last_failure),
        "original_topic": cause.topic,
        "original_partition": str(cause.partition),
        "original_offset": str(cause.offset),
        "subscriber": cause.subscriber,
    }
    return kept + [(DLQ_HEADER_PREFIX + k, v.encode("utf-8")) for k, v in cause_headers.items()]
