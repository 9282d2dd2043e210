"""How a client reaches Kafka: the bootstrap servers and one security setting for every client.

:class:`KafkaSecurity` is the one place that says how a client of the bus authenticates and
encrypts: protocol, SASL mechanism, user, password (a secret, never printed), the CA that
signed the brokers' certificates and an optional client certificate. Every client of the
bus (publisher, subscriber, registry, relay, sinks, operator commands, benchmark) takes it
and turns it into its client's options here, so a setting means the same everywhere:
:meth:`KafkaSecurity.aiokafka_options` for aiokafka, :meth:`KafkaSecurity.librdkafka_config`
for confluent-kafka's admin client (ACLs and SCRAM users).

Where it comes from, in order: the ``security:`` section of an adapter file (``${ENV}`` for
the password); else the ``SPBE_KAFKA_*`` environment variables; either may name a
credentials file (``credentials_file:`` / ``SPBE_KAFKA_CREDENTIALS``), the JSON file that
``spbe-bus kafka up --secure`` writes for the operator and ``catalog apply`` hands over per
principal, whose values the explicit settings override.

:class:`KafkaConnection` is the pair (bootstrap servers, security) that operator tools take;
a plain string is accepted where one is expected and means "these servers, security from the
environment".
"""

from __future__ import annotations

import json
import os
import ssl
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from bus.errors import ConfigError

__all__ = [
    "CREDENTIALS_VERSION",
    "ENV_PREFIX",
    "KafkaConnection",
    "KafkaSecurity",
    "SaslMechanism",
    "SecurityProtocol",
    "as_connection",
    "read_credentials_file",
    "write_credentials_file",
]

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]

#: Every environment variable of this module starts with this.
ENV_PREFIX = "SPBE_KAFKA_"
#: The ``version`` a credentials file carries.
CREDENTIALS_VERSION = 1

#: environment variable -> KafkaSecurity field
_ENV_FIELDS = {
    "SPBE_KAFKA_SECURITY_PROTOCOL": "protocol",
    "SPBE_KAFKA_SASL_MECHANISM": "sasl_mechanism",
    "SPBE_KAFKA_USERNAME": "username",
    "SPBE_KAFKA_PASSWORD": "password",
    "SPBE_KAFKA_CA_FILE": "ca_file",
    "SPBE_KAFKA_CERT_FILE": "cert_file",
    "SPBE_KAFKA_KEY_FILE": "key_file",
    "SPBE_KAFKA_CHECK_HOSTNAME": "check_hostname",
    "SPBE_KAFKA_CREDENTIALS": "credentials_file",
}
_PATH_KEYS = frozenset({"ca_file", "cert_file", "key_file", "credentials_file"})
_CREDENTIAL_KEYS = frozenset(
    {"protocol", "sasl_mechanism", "username", "password", "ca_file", "cert_file", "key_file"}
)


class KafkaSecurity(BaseModel):
    """How a client authenticates to Kafka and encrypts its traffic.

    The default is ``PLAINTEXT`` (a local development cluster). Production is
    ``SASL_SSL`` with ``SCRAM-SHA-512``, a user and password, and the CA file of the
    cluster. ``repr`` and logs show the password as ``**********``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    username: str | None = Field(default=None, min_length=1)
    password: SecretStr | None = None
    #: PEM file of the CA that signed the brokers' certificates (else the system's CAs).
    ca_file: Path | None = None
    #: PEM client certificate and its key, for a cluster that asks for one (mutual TLS).
    cert_file: Path | None = None
    key_file: Path | None = None
    #: Check that the broker's certificate names the host connected to (keep on).
    check_hostname: bool = True
    #: A credentials file whose values fill the settings not given here.
    credentials_file: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _fill_from_credentials_file(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        # An empty value (``${X_KAFKA_CREDENTIALS:-}`` unset) means "not given".
        data = {k: v for k, v in data.items() if not (k in _PATH_KEYS and v == "")}
        if not data.get("credentials_file"):
            return data
        path = Path(str(data["credentials_file"])).expanduser()
        stored = read_credentials_file(path)
        merged = {k: v for k, v in stored.items() if k in _CREDENTIAL_KEYS}
        merged.update({k: v for k, v in data.items() if v is not None})
        merged["credentials_file"] = path
        return merged

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.sasl:
            missing = [n for n in ("username", "password") if getattr(self, n) is None]
            if missing:
                raise ValueError(
                    f"protocol {self.protocol} authenticates with {self.sasl_mechanism}: "
                    f"set {' and '.join(missing)}"
                )
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together: set both or neither")
        if not self.tls:
            given = [n for n in ("ca_file", "cert_file") if getattr(self, n) is not None]
            if given:
                raise ValueError(
                    f"{' and '.join(given)} need a TLS protocol (SSL or SASL_SSL), "
                    f"not {self.protocol}"
                )
        for name in ("ca_file", "cert_file", "key_file"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"{name} {path} does not exist or is not a file")
        return self

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @property
    def principal(self) -> str | None:
        """``User:<name>`` as the brokers' authorizer sees this client (SASL only)."""
        return f"User:{self.username}" if self.sasl and self.username else None

    def describe(self) -> str:
        """A line for logs and errors: protocol, mechanism and user; never the password."""
        if self.sasl:
            return f"{self.protocol} {self.sasl_mechanism} as {self.username}"
        return self.protocol

    def ssl_context(self) -> ssl.SSLContext:
        """A client TLS context: the CA file (else the system's), the client certificate."""
        context = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=str(self.ca_file) if self.ca_file else None
        )
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.check_hostname = self.check_hostname
        if self.cert_file is not None and self.key_file is not None:
            context.load_cert_chain(str(self.cert_file), str(self.key_file))
        return context

    def aiokafka_options(self) -> dict[str, Any]:
        """Keyword arguments of every aiokafka client (producer, consumer, admin)."""
        options: dict[str, Any] = {"security_protocol": self.protocol}
        if self.tls:
            options["ssl_context"] = self.ssl_context()
        if self.sasl:
            assert self.password is not None
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.username
            options["sasl_plain_password"] = self.password.get_secret_value()
        return options

    def librdkafka_config(self) -> dict[str, str]:
        """The same settings in librdkafka's names, for confluent-kafka clients."""
        config = {"security.protocol": self.protocol.lower()}
        if self.tls:
            if self.ca_file is not None:
                config["ssl.ca.location"] = str(self.ca_file)
            if self.cert_file is not None and self.key_file is not None:
                config["ssl.certificate.location"] = str(self.cert_file)
                config["ssl.key.location"] = str(self.key_file)
            config["ssl.endpoint.identification.algorithm"] = (
                "https" if self.check_hostname else "none"
            )
        if self.sasl:
            assert self.password is not None
            assert self.username is not None
            config["sasl.mechanism"] = self.sasl_mechanism
            config["sasl.username"] = self.username
            config["sasl.password"] = self.password.get_secret_value()
        return config

    def with_user(self, username: str, password: str) -> KafkaSecurity:
        """The same cluster settings for another principal (e.g. one ``catalog apply`` made)."""
        return self.model_copy(update={"username": username, "password": SecretStr(password)})

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> KafkaSecurity:
        """The settings of the ``SPBE_KAFKA_*`` variables; ``PLAINTEXT`` when none is set.

        ``SPBE_KAFKA_CREDENTIALS`` names a credentials file; the other variables override
        its values. An unknown ``SPBE_KAFKA_`` variable of this family is not guessed at.
        """
        env = os.environ if environ is None else environ
        data: dict[str, Any] = {}
        for variable, name in _ENV_FIELDS.items():
            value = env.get(variable, "").strip()
            if value:
                data[name] = value
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise _refused("the SPBE_KAFKA_* environment variables", exc, _ENV_NAMES) from None


_ENV_NAMES = {name: variable for variable, name in _ENV_FIELDS.items()}


class KafkaConnection(BaseModel):
    """Where the brokers are and how to talk to them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bootstrap_servers: str = Field(min_length=1)
    security: KafkaSecurity = Field(default_factory=KafkaSecurity)

    def aiokafka_options(self) -> dict[str, Any]:
        """``bootstrap_servers`` and the security options of an aiokafka client."""
        return {"bootstrap_servers": self.bootstrap_servers, **self.security.aiokafka_options()}

    def librdkafka_config(self) -> dict[str, str]:
        return {"bootstrap.servers": self.bootstrap_servers, **self.security.librdkafka_config()}

    def describe(self) -> str:
        return f"{self.bootstrap_servers} ({self.security.describe()})"

    @classmethod
    def from_environment(
        cls, bootstrap_servers: str | None = None, environ: Mapping[str, str] | None = None
    ) -> KafkaConnection:
        """``bootstrap_servers``, else ``$SPBE_KAFKA_BOOTSTRAP``, else the credentials file's."""
        env = os.environ if environ is None else environ
        security = KafkaSecurity.from_environment(env)
        servers = bootstrap_servers or env.get("SPBE_KAFKA_BOOTSTRAP", "").strip()
        if not servers and security.credentials_file is not None:
            servers = str(read_credentials_file(security.credentials_file).get("bootstrap", ""))
        if not servers:
            raise ConfigError(
                "no Kafka bootstrap servers given",
                fix="pass --bootstrap HOST:PORT, set SPBE_KAFKA_BOOTSTRAP, or point "
                "SPBE_KAFKA_CREDENTIALS at a credentials file that names them",
            )
        return cls(bootstrap_servers=servers, security=security)


def as_connection(kafka: KafkaConnection | str) -> KafkaConnection:
    """``kafka`` itself, or a bootstrap string with security from the environment."""
    if isinstance(kafka, KafkaConnection):
        return kafka
    return KafkaConnection(bootstrap_servers=kafka, security=KafkaSecurity.from_environment())


def read_credentials_file(path: Path) -> dict[str, Any]:
    """The JSON object of a credentials file, refusing one that others may read."""
    try:
        mode = path.stat().st_mode
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the Kafka credentials file {path}: {exc.strerror}",
            fix="check the path (credentials_file / SPBE_KAFKA_CREDENTIALS)",
        ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"the Kafka credentials file {path} may be read by other users "
            f"(mode {stat.S_IMODE(mode):04o}); it holds a password",
            fix=f"chmod 600 {path}",
        )
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(
            f"the Kafka credentials file {path} is not JSON: {exc}",
            fix="write it again with 'spbe-bus kafka up --secure' or 'catalog apply'",
        ) from None
    if not isinstance(data, dict) or data.get("version") != CREDENTIALS_VERSION:
        raise ConfigError(
            f"the Kafka credentials file {path} is not a version {CREDENTIALS_VERSION} "
            "spbe-bus credentials file",
            fix="write it again with 'spbe-bus kafka up --secure' or 'catalog apply'",
        )
    return data


def write_credentials_file(path: Path, bootstrap: str, security: KafkaSecurity) -> Path:
    """Write ``security`` (password included) to a new 0600 file that :class:`KafkaSecurity`
    reads back with ``credentials_file``. Replaces an existing file atomically."""
    data: dict[str, Any] = {
        "version": CREDENTIALS_VERSION,
        "bootstrap": bootstrap,
        "protocol": security.protocol,
    }
    if security.sasl:
        assert security.password is not None
        data["sasl_mechanism"] = security.sasl_mechanism
        data["username"] = security.username
        data["password"] = security.password.get_secret_value()
    for name in ("ca_file", "cert_file", "key_file"):
        value = getattr(security, name)
        if value is not None:
            data[name] = str(Path(value).resolve())
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")
    partial.replace(path)
    return path


def _refused(where: str, exc: ValidationError, names: Mapping[str, str]) -> ConfigError:
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(p) for p in error["loc"])
        shown = names.get(field, field) if field else "security"
        problems.append(f"{shown}: {error['msg']}")
    return ConfigError(
        f"{where} do not describe a Kafka connection: " + "; ".join(problems),
        fix="see docs/security.md for the settings and their values",
    )
