"""How a publisher is configured, what a publish takes, and what it returns."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretBytes

from bus.connection import KafkaConnection, KafkaSecurity
from bus.contract.events import SpbeEvent
from bus.registry import DEFAULT_TOPIC as DEFAULT_REGISTRY_TOPIC
from bus.startup import default_start_timeout_s

__all__ = [
    "DEFAULT_DELIVERY_TIMEOUT_MS",
    "DEFAULT_LINGER_MS",
    "DEFAULT_MAX_BATCH_SIZE",
    "DEFAULT_REQUEST_TIMEOUT_MS",
    "PublishRequest",
    "PublishResult",
    "PublisherConfig",
    "key_secret_of",
    "request_of",
]

DEFAULT_LINGER_MS = 5
DEFAULT_REQUEST_TIMEOUT_MS = 30_000
DEFAULT_MAX_BATCH_SIZE = 256 * 1024
DEFAULT_DELIVERY_TIMEOUT_MS = 120_000


class PublisherConfig(BaseModel):
    """How a steward's adapter publishes. Kafka settings keep Kafka's names and units."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bootstrap_servers: str
    #: How to authenticate and encrypt; default from the ``SPBE_KAFKA_*`` environment.
    security: KafkaSecurity = Field(default_factory=KafkaSecurity.from_environment)
    #: The publishing application, X-Road style: ``ID/PEMDA-3273/DISDUKCAPIL/siak``.
    source: str
    #: The steward's secret for key pseudonyms; default ``$SPBE_KEY_SECRET``.
    key_secret: SecretBytes | None = None
    schemas_dir: Path | None = None
    registry_topic: str = DEFAULT_REGISTRY_TOPIC
    register_schemas: bool = True
    linger_ms: int = Field(default=DEFAULT_LINGER_MS, ge=0)
    max_batch_size: int = Field(default=DEFAULT_MAX_BATCH_SIZE, ge=1024)
    request_timeout_ms: int = Field(default=DEFAULT_REQUEST_TIMEOUT_MS, ge=1000)
    #: How long a publish waits for the acknowledgement before it raises.
    delivery_timeout_ms: int = Field(default=DEFAULT_DELIVERY_TIMEOUT_MS, ge=1000)
    #: How long ``start`` waits for a cluster that is away or failing over.
    start_timeout_s: float = Field(default_factory=default_start_timeout_s, gt=0)
    compression_type: str | None = None
    client_id: str | None = None
    #: Event name -> topic, replacing the schema's ``spbe.topic`` (staging, tests).
    topic_overrides: dict[str, str] = Field(default_factory=dict)

    @property
    def connection(self) -> KafkaConnection:
        """The bootstrap servers and security, as the registry and operator tools take them."""
        return KafkaConnection(bootstrap_servers=self.bootstrap_servers, security=self.security)


@dataclass(frozen=True, slots=True)
class PublishResult:
    """Where an acknowledged event landed."""

    event_id: str
    topic: str
    partition: int
    offset: int


def key_secret_of(config: PublisherConfig) -> bytes | None:
    """The configured key secret, else ``$SPBE_KEY_SECRET``, else ``None``."""
    if config.key_secret is not None:
        return config.key_secret.get_secret_value()
    env = os.environb.get(b"SPBE_KEY_SECRET")
    return env or None


@dataclass(frozen=True, slots=True)
class PublishRequest:
    """One event of :meth:`Publisher.publish_many`, with what :meth:`Publisher.publish` takes."""

    event: SpbeEvent
    sequence: int | None = None
    event_id: str | None = None
    traceparent: str | None = None


def request_of(item: SpbeEvent | tuple[SpbeEvent, int | None] | PublishRequest) -> PublishRequest:
    """An item of ``publish_many`` as a :class:`PublishRequest`."""
    if isinstance(item, PublishRequest):
        return item
    if isinstance(item, tuple):
        return PublishRequest(item[0], sequence=item[1])
    return PublishRequest(item)
