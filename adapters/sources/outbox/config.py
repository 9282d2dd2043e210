"""The outbox relay's settings: one frozen model, validated once (pure: no IO).

A relay reads the outbox table of one steward application and publishes its rows as that
application (``source``). Kafka settings keep Kafka's names and ``_ms`` units; the rest
say what they measure in their names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretBytes,
    SecretStr,
    field_validator,
    model_validator,
)

from adapters.config_file import FromFile
from bus.connection import KafkaSecurity
from bus.contract.envelope import SOURCE_PATTERN
from bus.publisher import PublisherConfig
from bus.startup import default_start_timeout_s

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_MAX_RETRY_BACKOFF_MS",
    "DEFAULT_MIN_POLL_INTERVAL_MS",
    "DEFAULT_POLL_INTERVAL_MS",
    "DEFAULT_PURGE_INTERVAL_MINUTES",
    "DEFAULT_RETENTION_HOURS",
    "DEFAULT_RETRY_BACKOFF_MS",
    "DEFAULT_TABLE",
    "OutboxRelayConfig",
]

DEFAULT_TABLE = "spbe_outbox"
DEFAULT_BATCH_SIZE = 500
DEFAULT_POLL_INTERVAL_MS = 200
DEFAULT_MIN_POLL_INTERVAL_MS = 10
DEFAULT_RETENTION_HOURS = 72
DEFAULT_PURGE_INTERVAL_MINUTES = 60
DEFAULT_RETRY_BACKOFF_MS = 1_000
DEFAULT_MAX_RETRY_BACKOFF_MS = 60_000

_IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]{0,54}$"


class OutboxRelayConfig(FromFile, BaseModel):
    """One relay: which outbox table it reads, and how it publishes the rows it finds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: SQLAlchemy URL of the application's database, e.g.
    #: ``postgresql+psycopg://relay:...@db/siak`` (a secret: it holds a password).
    database_url: SecretStr = Field(min_length=1)
    bootstrap_servers: str
    #: How to authenticate to Kafka and encrypt; default from the ``SPBE_KAFKA_*``
    #: environment. In a file: ``security: {protocol: SASL_SSL, username: ...,
    #: password: ${RELAY_KAFKA_PASSWORD}, ca_file: ...}`` (see docs/security.md).
    security: KafkaSecurity = Field(default_factory=KafkaSecurity.from_environment)
    #: The steward application, X-Road style: ``ID/PEMDA-3273/DISDUKCAPIL/siak``.
    source: str
    #: The steward's secret for key pseudonyms; default ``$SPBE_KEY_SECRET``.
    key_secret: SecretBytes | None = None
    #: Rows claimed per cycle: at most this many are published before the next commit.
    batch_size: int = Field(default=DEFAULT_BATCH_SIZE, ge=1, le=10_000)
    #: The longest an idle relay waits before it looks at the table again.
    poll_interval_ms: int = Field(default=DEFAULT_POLL_INTERVAL_MS, ge=10)
    #: The first wait after a cycle that found nothing; it doubles up to poll_interval_ms.
    min_poll_interval_ms: int = Field(default=DEFAULT_MIN_POLL_INTERVAL_MS, ge=1)
    #: Published rows are deleted this long after they were published (personal data).
    retention_hours: int = Field(default=DEFAULT_RETENTION_HOURS, ge=0)
    #: How often :meth:`OutboxRelay.run` purges; 0 leaves purging to an external job.
    purge_interval_minutes: int = Field(default=DEFAULT_PURGE_INTERVAL_MINUTES, ge=0)
    #: The first wait before a row that failed is tried again; it doubles per attempt.
    retry_backoff_ms: int = Field(default=DEFAULT_RETRY_BACKOFF_MS, ge=1)
    #: The longest wait between two attempts of one row.
    max_retry_backoff_ms: int = Field(default=DEFAULT_MAX_RETRY_BACKOFF_MS, ge=1)
    #: Event name -> topic, replacing the schema's ``spbe.topic`` (staging, tests).
    topic_overrides: dict[str, str] = Field(default_factory=dict)
    #: Name of the outbox table (a plain SQL identifier).
    table: str = Field(default=DEFAULT_TABLE, pattern=_IDENTIFIER)
    #: The data standard's folder; default ``$SPBE_SCHEMAS_DIR`` or the bundled one.
    schemas_dir: Path | None = None
    #: Kafka's wait for an acknowledgement before a row counts as failed for this cycle.
    delivery_timeout_ms: int = Field(default=30_000, ge=1000)
    #: How long ``start`` waits for a Kafka cluster that is away or failing over.
    start_timeout_s: float = Field(default_factory=default_start_timeout_s, gt=0)

    @field_validator("source")
    @classmethod
    def _x_road_source(cls, value: str) -> str:
        if not SOURCE_PATTERN.fullmatch(value):
            raise ValueError(
                "source must be ID/PEMDA-<kode wilayah>/<OPD>/<application>, "
                "e.g. ID/PEMDA-3273/DISDUKCAPIL/siak"
            )
        return value

    @model_validator(mode="after")
    def _bounded_backoff(self) -> Self:
        if self.max_retry_backoff_ms < self.retry_backoff_ms:
            raise ValueError("max_retry_backoff_ms must be at least retry_backoff_ms")
        return self

    def publisher_config(self) -> PublisherConfig:
        """The settings of the publisher the relay creates for itself."""
        return PublisherConfig(
            bootstrap_servers=self.bootstrap_servers,
            security=self.security,
            source=self.source,
            key_secret=self.key_secret,
            schemas_dir=self.schemas_dir,
            delivery_timeout_ms=self.delivery_timeout_ms,
            start_timeout_s=self.start_timeout_s,
            topic_overrides=dict(self.topic_overrides),
        )
