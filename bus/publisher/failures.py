"""A Kafka error on a send, as the publisher reports it: retriable or not, with the fix."""

from __future__ import annotations

import asyncio

from aiokafka.errors import (
    InvalidProducerEpoch,
    KafkaError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    UnknownProducerId,
)

from bus.contract.plan import OutgoingRecord
from bus.errors import PublishError

__all__ = ["LOST_IDEMPOTENCE", "publish_error", "send_failure"]

#: Errors meaning the broker no longer accepts this producer's idempotence state.
LOST_IDEMPOTENCE = (
    OutOfOrderSequenceNumber,
    UnknownProducerId,
    InvalidProducerEpoch,
    ProducerFenced,
)


def publish_error(record: OutgoingRecord, exc: KafkaError) -> PublishError:
    retriable = bool(getattr(exc, "retriable", False)) or isinstance(
        exc, (asyncio.TimeoutError, *LOST_IDEMPOTENCE)
    )
    return PublishError(
        f"event {record.envelope.id} ({record.envelope.event_name}) to {record.topic} was not "
        f"acknowledged: {type(exc).__name__}: {exc}",
        fix="publish it again with the same event_id, so sinks drop a duplicate"
        if retriable
        else "the event cannot be published as it is; see the cause",
        retriable=retriable,
    )


def send_failure(record: OutgoingRecord, exc: BaseException) -> PublishError:
    """What a failed send of ``record`` raises: a Kafka error explained, anything else named."""
    if isinstance(exc, KafkaError):
        return publish_error(record, exc)
    return PublishError(
        f"event {record.envelope.id} to {record.topic} failed: {type(exc).__name__}: {exc}"
    )
