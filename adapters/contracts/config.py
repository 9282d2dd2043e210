"""The contract service's settings: one frozen model, validated once, as a file's ``contracts:``.

The subscriptions come from the catalogue (``catalog``, default ``deploy/catalog.yaml``),
read and checked against the data standard when the file is loaded, so ``spbe-bus run
FILE --check`` finds a missing or broken catalogue before the service starts. The two
secrets are given inline (``pairwise_secret: ${SPBE_CONTRACTS_PAIRWISE_SECRET}``, as the
relay's ``key_secret``) or read from a file (``pairwise_secret_file:``, as ``ledger
who-received --secret-file``); each must be at least 16 bytes, and they must differ.
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretBytes,
    SecretStr,
    model_validator,
)

from adapters.config_file import GENERATE_SECRET, FromFile, read_catalogue, read_secret
from bus.connection import KafkaConnection, KafkaSecurity
from bus.contract.pseudonyms import MIN_SECRET_BYTES
from bus.ops.catalog import Subscription
from bus.ops.principals import CONTRACT_SERVICE_GROUP

__all__ = ["DEFAULT_GROUP", "ContractServiceConfig"]

DEFAULT_GROUP = CONTRACT_SERVICE_GROUP
_GENERATE = GENERATE_SECRET


def _read_secret(name: str, value: SecretBytes | None, path: Path | None) -> SecretBytes:
    """The secret of ``name`` (given inline, or in the file of ``<name>_file``), checked."""
    env_var = f"SPBE_CONTRACTS_{name.upper()}"
    return read_secret(name, value, path, env_var=env_var, min_bytes=MIN_SECRET_BYTES)


class ContractServiceConfig(FromFile, BaseModel):
    """The contract service: where Kafka, the catalogue and the ledger are, and its secrets."""

    # Errors never echo the input: it holds the secrets and the ledger's database URL.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    bootstrap_servers: str = Field(min_length=1)
    #: How to authenticate to Kafka (principal ``spbe-contracts``); default from the
    #: ``SPBE_KAFKA_*`` environment (docs/security.md).
    security: KafkaSecurity = Field(default_factory=KafkaSecurity.from_environment)
    #: The catalogue whose subscriptions the service delivers; default deploy/catalog.yaml.
    catalog: Path | None = None
    #: The secret of the subscribers' pairwise keys (at least 16 bytes), or ``None`` with
    #: ``pairwise_secret_file``.
    pairwise_secret: SecretBytes | None = None
    #: A file holding the pairwise-key secret (surrounding whitespace is dropped).
    pairwise_secret_file: Path | None = None
    #: The ledger's secret for its subjects (at least 16 bytes, not the pairwise one),
    #: or ``None`` with ``ledger_secret_file``; ``who-received`` needs the same one.
    ledger_secret: SecretBytes | None = None
    #: A file holding the ledger secret (surrounding whitespace is dropped).
    ledger_secret_file: Path | None = None
    #: SQLAlchemy URL of the ledger's database (a secret: it holds a password). The table
    #: must exist (``create_ledger_table``); the service refuses to start without it.
    ledger_url: SecretStr = Field(min_length=1)
    #: The service's consumer group (its offsets in the raw topics) and dead-letter suffix.
    group_id: str = Field(default=DEFAULT_GROUP, pattern=r"^[a-z0-9][a-z0-9._-]{0,99}$")
    #: The schema registry's topic; default ``_spbe.schemas``.
    registry_topic: str | None = None
    #: Raw records fetched (and delivered, ledger first) per batch at most.
    max_poll_records: int = Field(default=500, ge=1, le=10_000)

    _subscriptions: tuple[Subscription, ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _secrets_and_catalogue(self) -> Self:
        pairwise = _read_secret("pairwise_secret", self.pairwise_secret, self.pairwise_secret_file)
        ledger = _read_secret("ledger_secret", self.ledger_secret, self.ledger_secret_file)
        if pairwise.get_secret_value() == ledger.get_secret_value():
            raise ValueError(
                "pairwise_secret and ledger_secret are the same secret; whoever holds the "
                "subscribers' key secret could then compute the ledger's subjects; fix: give "
                f"the ledger a secret of its own ({_GENERATE})"
            )
        object.__setattr__(self, "pairwise_secret", pairwise)
        object.__setattr__(self, "ledger_secret", ledger)
        path, catalog = read_catalogue(self.catalog)
        if not catalog.subscriptions:
            raise ValueError(
                f"catalog: {path} has no subscriptions, so the contract service has nothing "
                "to deliver; fix: add the subscriptions (subscriber, topics, allowed_fields)"
            )
        self._subscriptions = tuple(catalog.subscriptions)
        return self

    @property
    def subscriptions(self) -> tuple[Subscription, ...]:
        """The catalogue's subscriptions, as read when the config was validated."""
        return self._subscriptions

    @property
    def connection(self) -> KafkaConnection:
        """The bootstrap servers and security of every client the service opens."""
        return KafkaConnection(bootstrap_servers=self.bootstrap_servers, security=self.security)

    @property
    def pairwise_key_secret(self) -> SecretBytes:
        """The pairwise-key secret, from ``pairwise_secret`` or its file."""
        assert self.pairwise_secret is not None  # the validator always resolves it
        return self.pairwise_secret

    @property
    def ledger_subject_secret(self) -> SecretBytes:
        """The ledger secret, from ``ledger_secret`` or its file."""
        assert self.ledger_secret is not None  # the validator always resolves it
        return self.ledger_secret
