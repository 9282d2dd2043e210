"""Publish typed events: validated, Avro-encoded, keyed, acknowledged by every in-sync replica.

    async with Publisher(PublisherConfig(bootstrap_servers=..., source=...)) as publisher:
        result = await publisher.publish(event, sequence=12)

The producer is idempotent with ``acks=all``: a publish returns only once the broker has
acknowledged the event, and any failure raises :class:`~bus.errors.PublishError`;
nothing is dropped silently. At start the publisher registers the schemas of the event
types its source stewards, so readers can resolve every fingerprint it writes, and
builds a :class:`~bus.contract.plan.PublishingPlan` for each of them.
"""

from bus.publisher.batches import RecordsInFlight
from bus.publisher.config import (
    DEFAULT_DELIVERY_TIMEOUT_MS,
    DEFAULT_LINGER_MS,
    DEFAULT_MAX_BATCH_SIZE,
    DEFAULT_REQUEST_TIMEOUT_MS,
    PublisherConfig,
    PublishRequest,
    PublishResult,
)
from bus.publisher.publisher import Publisher

__all__ = [
    "DEFAULT_DELIVERY_TIMEOUT_MS",
    "DEFAULT_LINGER_MS",
    "DEFAULT_MAX_BATCH_SIZE",
    "DEFAULT_REQUEST_TIMEOUT_MS",
    "PublishRequest",
    "PublishResult",
    "Publisher",
    "PublisherConfig",
    "RecordsInFlight",
]
