"""Every error the bus raises on purpose.

One tree, rooted at :class:`BusError`, so callers can catch the bus's failures
without catching programming errors. Retry code reads the ``retriable`` class
flag instead of matching on class names.

    BusError
    ├── ConfigError (ValueError)                  a setting or config file is wrong
    ├── LocalKafkaError                           the local broker manager
    │   ├── JavaNotFoundError
    │   ├── MavenNotFoundError
    │   ├── ArtifactResolutionError               Maven Central unreachable, artifact missing
    │   ├── PortInUseError
    │   ├── ClusterLayoutError                    data dir formatted for another layout
    │   └── BrokerNotReadyError                   did not answer in time, or exited
    ├── LifecycleError (RuntimeError)             used before start() or after stop()
    ├── KafkaUnavailableError                     Kafka did not answer a start in time
    ├── KafkaRefusedError                         Kafka refused a client (waiting won't help)
    │   ├── KafkaAuthenticationError              user name or password refused (SASL)
    │   ├── KafkaTlsError                         TLS: unknown CA, host name not in the certificate
    │   ├── KafkaSecurityProtocolError            the listener speaks another security protocol
    │   └── KafkaAuthorizationError               an ACL refused a write, a read, a group
    │       └── PublishAuthorizationError         ... a publish (also a PublishError)
    ├── PublishError                              the broker did not acknowledge an event
    ├── DeliveryError                             a subscriber could not record an outcome
    ├── HandlerError                              raised by handlers to say what a failure is
    │   ├── TransientError                        retry: the same event may apply later
    │   └── PermanentError                        do not retry: dead-letter it now
    └── ContractError (ValueError)                the event contract was broken
        ├── EventValidationError                  field values break a rule
        ├── EnvelopeError                         CloudEvents headers missing or wrong
        ├── CodecError                            bytes are not a valid single-object Avro datum
        │   └── UnknownSchemaError                fingerprint not known to this reader
        └── IncompatibleSchemaError               a schema change breaks compatibility
            └── SchemasRefusedError               (bus.registry) some schemas of a set refused

Errors of one subsystem live beside it, all under :class:`BusError`:
``RegistryError`` and ``RegistryUnavailableError`` (:mod:`bus.registry.errors`),
``ProvisioningError`` (:mod:`bus.ops.catalog_diff`), ``StatusError`` (:mod:`bus.ops.status`),
``ReplayError`` / ``ReplayRefusedError`` (:mod:`bus.ops.replay_plan`), ``AuditError``
(:mod:`bus.ops.audit`), ``DeadLetterError`` (:mod:`bus.ops.dlq_records`), ``DiagramError``
(:mod:`bus.ops.flow_diagram`).

Errors that a person has to act on carry a ``fix``: one sentence saying what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

__all__ = [
    "ArtifactResolutionError",
    "BrokerNotReadyError",
    "BusError",
    "ClusterLayoutError",
    "CodecError",
    "ConfigError",
    "ContractError",
    "DeliveryError",
    "EnvelopeError",
    "EventValidationError",
    "FieldProblem",
    "HandlerError",
    "IncompatibleSchemaError",
    "JavaNotFoundError",
    "KafkaAuthenticationError",
    "KafkaAuthorizationError",
    "KafkaRefusedError",
    "KafkaSecurityProtocolError",
    "KafkaTlsError",
    "KafkaUnavailableError",
    "LifecycleError",
    "LocalKafkaError",
    "MavenNotFoundError",
    "PermanentError",
    "PortInUseError",
    "PublishAuthorizationError",
    "PublishError",
    "TransientError",
    "UnknownSchemaError",
]


class BusError(Exception):
    """Root of every error the bus raises on purpose."""

    #: True when trying the same operation again may succeed without a change. A class
    #: sets its answer; an error whose answer depends on its cause passes ``retriable``.
    retriable: ClassVar[bool] = False

    def __init__(
        self, message: str, *, fix: str | None = None, retriable: bool | None = None
    ) -> None:
        self.message = message
        self.fix = fix
        if retriable is not None:
            self.retriable = retriable  # type: ignore[misc]
        super().__init__(message if fix is None else f"{message}\n  fix: {fix}")


class ConfigError(BusError, ValueError):
    """A setting or a config file is wrong; the message names the key and the fix."""


class LocalKafkaError(BusError):
    """The local Kafka manager could not do what was asked."""


class JavaNotFoundError(LocalKafkaError):
    """No usable Java runtime (17 or newer) was found."""


class MavenNotFoundError(LocalKafkaError):
    """Maven is needed to resolve the Kafka jars and was not found."""


class ArtifactResolutionError(LocalKafkaError):
    """Maven could not resolve the Kafka jars (Maven Central unreachable, bad version)."""

    retriable = True


class PortInUseError(LocalKafkaError):
    """A port the broker needs is already taken by another process."""


class ClusterLayoutError(LocalKafkaError):
    """The data directory holds a cluster with another layout (node count, ports)."""


class BrokerNotReadyError(LocalKafkaError):
    """The broker did not answer a metadata request in time, or exited while starting."""

    def __init__(self, message: str, *, fix: str | None = None, log_tail: str = "") -> None:
        self.log_tail = log_tail
        if log_tail:
            message = f"{message}\n--- last lines of the broker log ---\n{log_tail}"
        super().__init__(message, fix=fix)


class LifecycleError(BusError, RuntimeError):
    """A publisher, subscriber or registry was used before ``start()`` or after ``stop()``."""


class KafkaUnavailableError(BusError):
    """Kafka did not answer a client's start (or an operator command) within its timeout."""

    retriable = True


class KafkaRefusedError(BusError):
    """Kafka answered a client with an error that waiting does not cure."""


class KafkaAuthenticationError(KafkaRefusedError):
    """A broker refused the client's SASL user name or password, or its mechanism.

    ``user`` and ``broker`` name who was refused where; the password is never part of it.
    """

    def __init__(self, message: str, *, fix: str, user: str | None, broker: str) -> None:
        self.user = user
        self.broker = broker
        super().__init__(message, fix=fix)


class KafkaTlsError(KafkaRefusedError):
    """The TLS handshake with a broker failed: a CA the client does not trust, a host name
    the broker's certificate does not name, a client certificate the broker asks for."""

    def __init__(self, message: str, *, fix: str, broker: str, reason: str) -> None:
        self.broker = broker
        #: ``unknown_ca``, ``host_name``, ``expired``, ``client_certificate`` or ``handshake``.
        self.reason = reason
        super().__init__(message, fix=fix)


class KafkaSecurityProtocolError(KafkaRefusedError):
    """The listener speaks another security protocol than the client's (TLS or not, SASL or
    not); ``expected`` says what it seems to expect."""

    def __init__(self, message: str, *, fix: str, broker: str, expected: str) -> None:
        self.broker = broker
        self.expected = expected
        super().__init__(message, fix=fix)


class KafkaAuthorizationError(KafkaRefusedError):
    """An ACL refused an operation: ``principal`` may not ``operation`` the ``resource``
    (a topic or a consumer group)."""

    def __init__(
        self,
        message: str,
        *,
        fix: str,
        principal: str | None,
        operation: str,
        resource: str,
    ) -> None:
        self.principal = principal
        #: ``write``, ``read`` or ``use`` (a consumer group).
        self.operation = operation
        self.resource = resource
        super().__init__(message, fix=fix)


class PublishError(BusError):
    """The broker did not acknowledge an event; nothing was dropped silently.

    ``retriable`` is set per instance from the cause: a broker that was briefly away is
    retriable, an event that is too large is not.
    """


class PublishAuthorizationError(KafkaAuthorizationError, PublishError):
    """A publish an ACL refused: a :class:`PublishError` (never retriable) that code catching
    either a failed publish or a refused authorization sees."""


class DeliveryError(BusError):
    """A subscriber could not record an event's outcome (e.g. the dead letter write failed).

    The event's offset is not committed, so it is delivered again after a restart.
    """

    retriable = True


class HandlerError(BusError):
    """Base for errors a subscriber's handler raises to classify a failure."""


class TransientError(HandlerError):
    """The event may apply if tried again later (a database briefly away, a lock timeout)."""

    retriable = True


class PermanentError(HandlerError):
    """The event can never apply as it is (a mapping error, a refused value): dead-letter it."""


class ContractError(BusError, ValueError):
    """The event contract (schema, envelope, encoding, reference codes) was broken."""


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One rule one field breaks: which field, what is wrong with its value, which rule."""

    field: str
    problem: str
    rule: str

    def __str__(self) -> str:
        return f"{self.field}: {self.problem} (rule: {self.rule})"


class EventValidationError(ContractError):
    """One or more fields of an event break their rules; ``problems`` lists every one."""

    def __init__(self, event_type: str, problems: list[FieldProblem] | tuple[FieldProblem, ...]):
        self.event_type = event_type
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"{event_type} is not valid ({count} {noun}):\n{lines}")


class EnvelopeError(ContractError):
    """The CloudEvents envelope (Kafka headers) is missing a field or has a wrong value."""


class CodecError(ContractError):
    """Bytes are not a valid Avro single-object datum, or a datum does not fit its schema."""


class UnknownSchemaError(CodecError):
    """The datum's schema fingerprint is not known to this reader or its registry."""

    def __init__(self, fingerprint: int, message: str | None = None) -> None:
        self.fingerprint = fingerprint
        super().__init__(
            message
            or f"unknown schema fingerprint {fingerprint:#018x}: no registered schema has it",
            fix="register the writer's schema (spbe-bus schemas register) or point the reader "
            "at the registry that holds it",
        )


class IncompatibleSchemaError(ContractError):
    """A new schema version breaks the subject's compatibility mode."""

    def __init__(self, subject: str, mode: str, reasons: list[str]) -> None:
        self.subject = subject
        self.mode = mode
        self.reasons = tuple(reasons)
        lines = "\n".join(f"  - {r}" for r in self.reasons)
        super().__init__(f"schema for {subject} is not {mode} compatible:\n{lines}")
