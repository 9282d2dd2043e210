"""The gateway's settings: one frozen model, validated once, as a file's ``gateway:`` section.

The catalogue (``catalog``, default ``deploy/catalog.yaml``) says which OPD applications
are API clients, which events each may post (its steward's) and whose subscriptions it may
read; this file gives only what the catalogue must not hold: each client's secret hash
(``spbe-bus gateway client-secret CLIENT``), the token signing key, the stewards' key
secrets, the TLS certificate and the databases. Every client here must be an
``api_clients`` entry of the catalogue, or the file is refused at load.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretBytes,
    SecretStr,
    field_validator,
    model_validator,
)

from adapters.config_file import FromFile, read_catalogue, read_secret, require_files
from adapters.gateway.readmodels import DEFAULT_DATABASE_URL, MAX_PAGE_LIMIT
from adapters.gateway.secrets import check_secret_hash
from adapters.gateway.tokens import DEFAULT_TOKEN_TTL_S, MIN_TOKEN_KEY_BYTES
from bus.connection import KafkaConnection, KafkaSecurity
from bus.contract.pseudonyms import MIN_SECRET_BYTES
from bus.ops.api_clients import ClientAccess, client_access, gateway_read_topics
from bus.ops.catalog import Catalog
from bus.ops.principals import GATEWAY_GROUP

__all__ = [
    "DEFAULT_BODY_LIMIT_BYTES",
    "DEFAULT_PORT",
    "GatewayClient",
    "GatewayConfig",
    "RateLimit",
]

DEFAULT_PORT = 8443
#: The largest request body accepted: an event of the standard is a few kilobytes.
DEFAULT_BODY_LIMIT_BYTES = 64 * 1024


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)


class GatewayClient(_Model):
    """One API client: its id (an ``api_clients`` entry) and the scrypt hash of its secret."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,99}$")
    #: ``scrypt$...`` from ``spbe-bus gateway client-secret CLIENT``; never the secret.
    secret_hash: str

    @field_validator("secret_hash")
    @classmethod
    def _hash_form(cls, value: str) -> str:
        return check_secret_hash(value)


class RateLimit(_Model):
    """Requests each client may make: ``requests_per_s`` on average, ``burst`` at once."""

    requests_per_s: float = Field(default=100.0, gt=0)
    burst: int = Field(default=200, ge=1)


class GatewayConfig(FromFile, BaseModel):
    """The REST gateway: where it listens, Kafka, the catalogue, its clients and secrets."""

    # Errors never echo the input: it holds secrets and database URLs.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    bootstrap_servers: str = Field(min_length=1)
    #: How the gateway authenticates to Kafka (principal ``spbe-gateway``).
    security: KafkaSecurity = Field(default_factory=KafkaSecurity.from_environment)
    #: The catalogue naming the API clients; default deploy/catalog.yaml.
    catalog: Path | None = None
    #: Loopback by default; put a reverse proxy or a firewall rule in front to open it.
    host: str = "127.0.0.1"
    port: int = Field(default=DEFAULT_PORT, ge=0, le=65535)
    #: The server certificate (PEM, with its chain) and its private key: HTTPS only.
    tls_certificate: Path
    tls_key: Path
    clients: tuple[GatewayClient, ...] = Field(min_length=1)
    #: The HS256 key of the bearer tokens (at least 32 bytes), or ``token_key_file``.
    token_key: SecretBytes | None = None
    token_key_file: Path | None = None
    token_ttl_s: int = Field(default=DEFAULT_TOKEN_TTL_S, ge=30, le=3600)
    #: Each posting steward's key secret (by steward id), for events keyed by a pseudonym.
    key_secrets: dict[str, SecretBytes] = Field(default_factory=dict)
    #: SQLAlchemy URL of the read models and idempotency keys (a secret: it may hold a
    #: password); SQLite by default, PostgreSQL by URL. The gateway creates its tables.
    database_url: SecretStr = SecretStr(DEFAULT_DATABASE_URL)
    #: The delivery ledger (its table must exist, as for the contract service).
    ledger_url: SecretStr = Field(min_length=1)
    ledger_secret: SecretBytes | None = None
    ledger_secret_file: Path | None = None
    rate_limit: RateLimit = RateLimit()
    max_body_bytes: int = Field(default=DEFAULT_BODY_LIMIT_BYTES, ge=1024, le=16 * 1024 * 1024)
    page_limit: int = Field(default=50, ge=1, le=MAX_PAGE_LIMIT)
    group_id: str = Field(default=GATEWAY_GROUP, pattern=r"^[a-z0-9][a-z0-9._-]{0,99}$")
    registry_topic: str | None = None
    #: Event type (``UmkmTerdaftar``) -> topic, where a catalogue names other topics than
    #: the standard's (as the publisher's ``topic_overrides``).
    topic_overrides: dict[str, str] = Field(default_factory=dict)

    _catalog: Catalog | None = PrivateAttr(default=None)
    _access: dict[str, ClientAccess] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _secrets_files_and_catalogue(self) -> Self:
        key = read_secret(
            "token_key",
            self.token_key,
            self.token_key_file,
            env_var="SPBE_GATEWAY_TOKEN_KEY",
            min_bytes=MIN_TOKEN_KEY_BYTES,
        )
        ledger = read_secret(
            "ledger_secret",
            self.ledger_secret,
            self.ledger_secret_file,
            env_var="SPBE_LEDGER_SECRET",
            min_bytes=MIN_SECRET_BYTES,
        )
        object.__setattr__(self, "token_key", key)
        object.__setattr__(self, "ledger_secret", ledger)
        for steward, secret in self.key_secrets.items():
            if len(secret.get_secret_value()) < MIN_SECRET_BYTES:
                raise ValueError(
                    f"key_secrets.{steward}: the secret is shorter than {MIN_SECRET_BYTES} "
                    "bytes; fix: give the steward's key secret, the one its outbox relay uses"
                )
        require_files(
            self,
            ("tls_certificate", "tls_key"),
            fix="give the PEM file of the gateway's certificate and key (spbe-bus kafka "
            "secure issues one from the local CA)",
        )
        self._load_catalogue()
        return self

    def _load_catalogue(self) -> None:
        path, catalog = read_catalogue(self.catalog)
        seen: set[str] = set()
        for i, client in enumerate(self.clients):
            if client.id in seen:
                raise ValueError(f"clients[{i}].id: {client.id} is listed twice; fix: keep one")
            seen.add(client.id)
            access = client_access(catalog, client.id)
            if access is None:
                raise ValueError(
                    f"clients[{i}].id: {client.id} is not an api_clients entry of the "
                    f"catalogue {path}; fix: add it there (who may call the API is the "
                    "catalogue's decision), or remove it here"
                )
            self._access[client.id] = access
        self._catalog = catalog

    @property
    def catalogue(self) -> Catalog:
        """The catalogue, as read when the config was validated."""
        assert self._catalog is not None  # the validator always loads it
        return self._catalog

    def access_of(self, client: str) -> ClientAccess | None:
        """What ``client`` may do, when it is one of this gateway's clients."""
        return self._access.get(client)

    def read_topics(self, today: date) -> list[str]:
        """The projected topics the gateway's read models follow."""
        return gateway_read_topics(self.catalogue, today)

    @property
    def connection(self) -> KafkaConnection:
        return KafkaConnection(bootstrap_servers=self.bootstrap_servers, security=self.security)

    @property
    def token_signing_key(self) -> SecretBytes:
        assert self.token_key is not None  # the validator always resolves it
        return self.token_key

    @property
    def ledger_subject_secret(self) -> SecretBytes:
        assert self.ledger_secret is not None  # the validator always resolves it
        return self.ledger_secret
