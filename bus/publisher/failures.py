"""A Kafka error on a send, as the publisher reports it: retriable or not, with the fix.

A send an ACL refused (``TopicAuthorizationFailedError`` from the metadata wait or from the
batch) is a :class:`~bus.errors.PublishAuthorizationError`: a ``PublishError`` that is also a
``KafkaAuthorizationError``, never retriable, naming the principal, the topic and its steward.
"""

from __future__ import annotations

import asyncio

from aiokafka.errors import (
    InvalidProducerEpoch,
    KafkaError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    UnknownProducerId,
)

from bus.contract.names import steward_of
from bus.contract.plan import OutgoingRecord
from bus.diagnosis import AUTHORIZATION_ERRORS, authorization_error
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


def send_failure(
    record: OutgoingRecord,
    exc: BaseException,
    *,
    principal: str | None = None,
    steward: str | None = None,
) -> PublishError:
    """What a failed send of ``record`` raises: a Kafka error explained, anything else named.

    ``principal`` is the SASL user that sent it; ``steward`` the steward of the record's
    event type (the schema's ``spbe.steward``), else the OPD of its ``ce_source``.
    """
    if isinstance(exc, AUTHORIZATION_ERRORS):
        denied = authorization_error(
            exc,
            principal=principal,
            what="write",
            steward=steward or steward_of(record.envelope.source),
        )
        if isinstance(denied, PublishError):
            return denied
        if denied is not None:
            return PublishError(denied.message, fix=denied.fix, retriable=False)
    if isinstance(exc, KafkaError):
        return publish_error(record, exc)
    return PublishError(
        f"event {record.envelope.id} to {record.topic} failed: {type(exc).__name__}: {exc}"
    )
