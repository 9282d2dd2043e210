"""spbe-bus: the SPBE data exchange bus. The names most users need, in one place."""

from __future__ import annotations

from bus.connection import KafkaConnection, KafkaSecurity
from bus.contract.envelope import DataClassification, Envelope
from bus.contract.events import EVENT_TYPES, SpbeEvent
from bus.delivery import Delivery, Handler, Outcome, RetryPolicy
from bus.errors import (
    BusError,
    ConfigError,
    ContractError,
    DeliveryError,
    EventValidationError,
    IncompatibleSchemaError,
    KafkaAuthorizationError,
    KafkaRefusedError,
    KafkaUnavailableError,
    LifecycleError,
    PermanentError,
    PublishError,
    TransientError,
)
from bus.publisher import Publisher, PublisherConfig, PublishResult
from bus.registry import SchemaRegistry
from bus.subscriber import Subscriber, SubscriberConfig
from bus.topics import ensure_topics

__all__ = [
    "EVENT_TYPES",
    "BusError",
    "ConfigError",
    "ContractError",
    "DataClassification",
    "Delivery",
    "DeliveryError",
    "Envelope",
    "EventValidationError",
    "Handler",
    "IncompatibleSchemaError",
    "KafkaAuthorizationError",
    "KafkaConnection",
    "KafkaRefusedError",
    "KafkaSecurity",
    "KafkaUnavailableError",
    "LifecycleError",
    "Outcome",
    "PermanentError",
    "PublishError",
    "PublishResult",
    "Publisher",
    "PublisherConfig",
    "RetryPolicy",
    "SchemaRegistry",
    "SpbeEvent",
    "Subscriber",
    "SubscriberConfig",
    "TransientError",
    "ensure_topics",
]
