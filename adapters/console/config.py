"""The console's settings: one frozen model, validated once, as a file's ``console:`` section.

The console is read-only: it connects to Kafka as the operator (``security``, the hand-over
file ``kafka up --secure`` or the Pemda's vault gives), reads each subscription of the
catalogue (``catalog``, default ``deploy/catalog.yaml``) with ``spbe-bus status``'s code,
and asks each adapter of ``adapters`` for its health. Who may look is ``operators``: a
name and the scrypt hash of a password (``spbe-bus console operator-password``); the file
never holds a password. Sessions are signed with the key in ``session_key_file``.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretBytes,
    field_validator,
    model_validator,
)

from adapters.config_file import FromFile, read_catalogue, read_secret, require_files
from adapters.gateway.secrets import check_secret_hash
from bus.connection import KafkaConnection, KafkaSecurity
from bus.ops.catalog import Catalog

__all__ = [
    "DEFAULT_CONSOLE_PORT",
    "DEFAULT_SESSION_TTL_S",
    "MIN_SESSION_KEY_BYTES",
    "ConsoleAdapter",
    "ConsoleConfig",
    "ConsoleFile",
    "ConsoleOperator",
]

DEFAULT_CONSOLE_PORT = 8444
#: An operator's working day: after it the console asks for the password again.
DEFAULT_SESSION_TTL_S = 8 * 3600
#: The HMAC-SHA256 key of the session cookies needs as many bytes as its hash.
MIN_SESSION_KEY_BYTES = 32
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)


class ConsoleOperator(_Model):
    """One person who may log in: a name and the scrypt hash of the password."""

    name: str = Field(pattern=_NAME.pattern)
    #: ``scrypt$...`` from ``spbe-bus console operator-password``; never the password.
    password_hash: str

    @field_validator("password_hash")
    @classmethod
    def _hash_form(cls, value: str) -> str:
        return check_secret_hash(value, "password_hash")


class ConsoleAdapter(_Model):
    """One adapter whose health the console shows: a name and its ``/healthz`` URL."""

    name: str = Field(pattern=_NAME.pattern)
    #: ``http://127.0.0.1:9471/healthz`` of ``spbe-bus run FILE --metrics-port 9471``, or the
    #: gateway's ``https://.../healthz``; 2xx is up, anything else (or no answer) down.
    health_url: str = Field(pattern=r"^https?://[^\s/]+(/\S*)?$", max_length=2000)
    #: The CA that signed an HTTPS health URL's certificate (else the system's CAs).
    ca_file: Path | None = None


class ConsoleConfig(_Model):
    """The operator console: where it listens, Kafka, the catalogue, operators, adapters."""

    bootstrap_servers: str = Field(min_length=1)
    #: How the console authenticates to Kafka: the operator's credentials.
    security: KafkaSecurity = Field(default_factory=KafkaSecurity.from_environment)
    #: The catalogue whose subscriptions the console shows; default deploy/catalog.yaml.
    catalog: Path | None = None
    #: Loopback by default; put a reverse proxy or a firewall rule in front to open it.
    host: str = "127.0.0.1"
    port: int = Field(default=DEFAULT_CONSOLE_PORT, ge=0, le=65535)
    #: The server certificate (PEM, with its chain) and its private key: HTTPS only.
    tls_certificate: Path
    tls_key: Path
    operators: tuple[ConsoleOperator, ...] = Field(min_length=1)
    #: The file holding the session cookies' HMAC key (at least 32 bytes).
    session_key_file: Path
    session_ttl_s: int = Field(default=DEFAULT_SESSION_TTL_S, ge=60, le=7 * 24 * 3600)
    #: How often the state is read from the cluster, and how often the page asks for it.
    refresh_s: float = Field(default=5.0, ge=1.0, le=3600.0)
    adapters: tuple[ConsoleAdapter, ...] = ()
    #: How many of the newest audit records the page shows.
    audit_records: int = Field(default=20, ge=1, le=500)
    #: How many of the newest dead letters of each subscription are shown (masked).
    dead_letter_samples: int = Field(default=5, ge=0, le=100)
    #: A subscription whose lag is above this is shown as lagging.
    max_lag: int = Field(default=1000, ge=0)
    #: Addresses (or networks) of the reverse proxies in front of the console whose
    #: ``X-Forwarded-For`` names the client; with none, that header is ignored and the
    #: client is the address that connected.
    trusted_proxies: tuple[str, ...] = ()
    #: Login attempts (every one, right password or wrong) each client address, and each
    #: operator name, may make at once, and per minute after that.
    login_burst: int = Field(default=5, ge=1, le=1000)
    logins_per_minute: float = Field(default=5.0, gt=0, le=6000)

    _catalog: Catalog | None = PrivateAttr(default=None)
    _session_key: SecretBytes | None = PrivateAttr(default=None)

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for i, proxy in enumerate(value):
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(
                    f"trusted_proxies[{i}]: {proxy!r} is not an IP address or network; fix: "
                    "give the address of the reverse proxy, e.g. 10.0.0.5"
                ) from None
        return value

    @model_validator(mode="after")
    def _files_and_catalogue(self) -> Self:
        require_files(
            self,
            ("tls_certificate", "tls_key"),
            fix="give the PEM file of the console's certificate and key (spbe-bus gateway "
            "certificate issues one from the local CA)",
        )
        self._session_key = read_secret(
            "session_key",
            None,
            self.session_key_file,
            env_var="SPBE_CONSOLE_SESSION_KEY",
            min_bytes=MIN_SESSION_KEY_BYTES,
        )
        names = [o.name for o in self.operators]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise ValueError(f"operators[{i}].name: {name} is listed twice; fix: keep one")
        adapters = [a.name for a in self.adapters]
        for i, name in enumerate(adapters):
            if name in adapters[:i]:
                raise ValueError(f"adapters[{i}].name: {name} is listed twice; fix: keep one")
        for i, adapter in enumerate(self.adapters):
            if adapter.ca_file is not None and not adapter.ca_file.is_file():
                raise ValueError(
                    f"adapters[{i}].ca_file: {adapter.ca_file} is not a file; fix: give the "
                    "PEM file of the CA that signed the adapter's certificate"
                )
        _, self._catalog = read_catalogue(self.catalog)
        return self

    @property
    def catalogue(self) -> Catalog:
        """The catalogue, as read when the config was validated."""
        assert self._catalog is not None  # the validator always loads it
        return self._catalog

    @property
    def session_key(self) -> SecretBytes:
        assert self._session_key is not None  # the validator always reads it
        return self._session_key

    @property
    def connection(self) -> KafkaConnection:
        return KafkaConnection(bootstrap_servers=self.bootstrap_servers, security=self.security)

    def password_hash_of(self, name: str) -> str | None:
        """The stored hash of operator ``name``, None for a name that is not an operator."""
        return next((o.password_hash for o in self.operators if o.name == name), None)


class ConsoleFile(FromFile, BaseModel):
    """The console's file (deploy/console.yaml): ``kind: console`` and its ``console`` section."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)
    kind: Literal["console"] = "console"
    console: ConsoleConfig
