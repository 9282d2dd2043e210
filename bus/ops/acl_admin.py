"""ACLs and SCRAM users through confluent-kafka's admin client, for asyncio.

aiokafka's admin client has neither ACL nor SCRAM calls; confluent-kafka's ``AdminClient``
has both. Its calls return ``concurrent.futures`` futures, which :class:`AclAdmin` awaits
with :func:`asyncio.wrap_future`. Its configuration is the operator's
:meth:`~bus.connection.KafkaConnection.librdkafka_config`; librdkafka's own log is kept to
errors, which come out through the bus's logger.

Kafka's errors become :class:`~bus.ops.catalog_diff.ProvisioningError`; a cluster without
an authorizer (a plaintext development cluster) raises :class:`NoAuthorizerError`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from typing import Any, Final, TypeVar

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ConfigResource,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from bus.connection import KafkaConnection
from bus.logs import get_logger
from bus.ops.access_plan import AclEntry
from bus.ops.catalog_diff import ProvisioningError

__all__ = ["SCRAM_ITERATIONS", "AclAdmin", "NoAuthorizerError"]

#: SCRAM-SHA-512 iterations of the users ``catalog apply`` creates (Kafka allows 4096-16384).
SCRAM_ITERATIONS: Final = 8192
_REQUEST_TIMEOUT_S: Final = 30.0
_SYSLOG_ERROR: Final = "3"

log = get_logger(__name__)
T = TypeVar("T")


class NoAuthorizerError(ProvisioningError):
    """The cluster has no authorizer: there are no ACLs to read or make (not secured)."""


class _LibrdkafkaLog:
    """What confluent-kafka calls as its ``logger``: errors only, through the bus's log."""

    def log(self, level: int, message: str, *args: object) -> None:
        log.error("kafka_admin.librdkafka", message=message % args if args else message)


class AclAdmin:
    """The ACL and SCRAM calls of one cluster, as the operator (or any principal) given."""

    def __init__(self, connection: KafkaConnection) -> None:
        self.connection = connection
        config: dict[str, Any] = {
            **connection.librdkafka_config(),
            "client.id": "spbe-bus-access",
            "log_level": _SYSLOG_ERROR,
            "logger": _LibrdkafkaLog(),
        }
        self._client = AdminClient(config)

    async def _wait(self, what: str, future: Future[T]) -> T:
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), _REQUEST_TIMEOUT_S + 5)
        except KafkaException as exc:
            raise self._refused(what, exc) from exc
        except TimeoutError:
            raise ProvisioningError(
                f"Kafka at {self.connection.describe()} did not answer when trying to {what}",
                fix="check that the brokers run and the operator's credentials are right",
                retriable=True,
            ) from None
        finally:
            self._client.poll(0)  # serves librdkafka's queued log lines

    def _refused(self, what: str, exc: KafkaException) -> ProvisioningError:
        error = exc.args[0] if exc.args else None
        text = error.str() if isinstance(error, KafkaError) else str(exc)
        if isinstance(error, KafkaError) and error.code() == KafkaError.SECURITY_DISABLED:
            return NoAuthorizerError(
                f"cannot {what}: the cluster at {self.connection.bootstrap_servers} has no "
                "authorizer, so it enforces no ACLs",
                fix="run against a secured cluster (spbe-bus kafka up --secure, or production)",
            )
        retriable = isinstance(error, KafkaError) and error.retriable()
        return ProvisioningError(
            f"cannot {what} on Kafka at {self.connection.describe()}: {text}",
            fix="check that this principal is the operator (a super user) and the brokers run",
            retriable=retriable,
        )

    # -- ACLs ------------------------------------------------------------------------------

    async def has_authorizer(self) -> bool:
        """Whether the brokers enforce ACLs (``authorizer.class.name`` is set).

        Asked of the broker's config because a cluster without an authorizer answers
        DescribeAcls with an empty list, as a secured cluster without ACLs does.
        """
        try:
            metadata = await asyncio.to_thread(self._client.list_topics, timeout=_REQUEST_TIMEOUT_S)
        except KafkaException as exc:
            raise self._refused("read the cluster's brokers", exc) from exc
        broker = str(min(metadata.brokers))
        futures = self._client.describe_configs(
            [ConfigResource(ResourceType.BROKER, broker)], request_timeout=_REQUEST_TIMEOUT_S
        )
        (future,) = futures.values()
        configs: Mapping[str, Any] = await self._wait(f"read the config of broker {broker}", future)
        entry = configs.get("authorizer.class.name")
        return bool(entry is not None and entry.value)

    async def acls(self) -> frozenset[AclEntry]:
        """Every ACL binding of the cluster (:class:`NoAuthorizerError` if it has none)."""
        if not await self.has_authorizer():
            raise NoAuthorizerError(
                f"the cluster at {self.connection.bootstrap_servers} has no authorizer, so it "
                "enforces no ACLs",
                fix="run against a secured cluster (spbe-bus kafka up --secure, or production)",
            )
        any_name: Any = None  # a filter's None matches every name, principal and host
        match_all = AclBindingFilter(
            ResourceType.ANY,
            any_name,
            ResourcePatternType.ANY,
            any_name,
            any_name,
            AclOperation.ANY,
            AclPermissionType.ANY,
        )
        future = self._client.describe_acls(match_all, request_timeout=_REQUEST_TIMEOUT_S)
        bindings: list[AclBinding] = await self._wait("read the ACLs", future)
        return frozenset(_entry(b) for b in bindings)

    async def create_acls(self, entries: Iterable[AclEntry]) -> None:
        bindings = [_binding(e) for e in entries]
        if not bindings:
            return
        futures = self._client.create_acls(bindings, request_timeout=_REQUEST_TIMEOUT_S)
        await self._all(f"create {len(bindings)} ACL(s)", futures)

    async def delete_acls(self, entries: Iterable[AclEntry]) -> None:
        filters = [_filter(e) for e in entries]
        if not filters:
            return
        futures = self._client.delete_acls(filters, request_timeout=_REQUEST_TIMEOUT_S)
        await self._all(f"delete {len(filters)} ACL(s)", futures)

    async def _all(self, what: str, futures: Mapping[Any, Future[Any]]) -> None:
        await asyncio.gather(*(self._wait(what, f) for f in futures.values()))

    async def topics(self) -> frozenset[str]:
        """The names of the topics this principal may describe."""
        try:
            metadata = await asyncio.to_thread(self._client.list_topics, timeout=_REQUEST_TIMEOUT_S)
        except KafkaException as exc:
            raise self._refused("list the topics", exc) from exc
        return frozenset(metadata.topics)

    # -- SCRAM users -----------------------------------------------------------------------

    async def scram_users(self) -> frozenset[str]:
        """The users that have a SCRAM-SHA-512 credential."""
        future = self._client.describe_user_scram_credentials(request_timeout=_REQUEST_TIMEOUT_S)
        assert isinstance(future, Future)
        try:
            described: Mapping[str, Any] = await self._wait("read the SCRAM users", future)
        except ProvisioningError as exc:
            cause = exc.__cause__
            if isinstance(cause, KafkaException) and _code(cause) == KafkaError.RESOURCE_NOT_FOUND:
                return frozenset()  # no user at all
            raise
        return frozenset(
            name
            for name, description in described.items()
            if any(
                info.mechanism == ScramMechanism.SCRAM_SHA_512
                for info in description.scram_credential_infos
            )
        )

    async def set_password(self, user: str, password: str) -> None:
        """Create ``user``'s SCRAM-SHA-512 credential, or replace its password."""
        upsert = UserScramCredentialUpsertion(
            user,
            ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS),
            password.encode("utf-8"),
        )
        futures = self._client.alter_user_scram_credentials(
            [upsert], request_timeout=_REQUEST_TIMEOUT_S
        )
        await self._all(f"set the SCRAM-SHA-512 password of {user}", futures)


def _code(exc: KafkaException) -> int | None:
    error = exc.args[0] if exc.args else None
    return error.code() if isinstance(error, KafkaError) else None


def _name(value: object) -> str:
    """An enum member's name (confluent-kafka types these fields as enum, str or int)."""
    return str(getattr(value, "name", value))


#: Kafka's CLUSTER resource type is librdkafka's BROKER.
_KAFKA_TYPE: Final = {"BROKER": "CLUSTER"}
_LIBRDKAFKA_TYPE: Final = {"CLUSTER": ResourceType.BROKER}


def _restype(kafka_name: str) -> ResourceType:
    return _LIBRDKAFKA_TYPE.get(kafka_name) or ResourceType[kafka_name]


def _entry(binding: AclBinding) -> AclEntry:
    restype = _name(binding.restype)
    return AclEntry(
        principal=binding.principal,
        resource_type=_KAFKA_TYPE.get(restype, restype),
        resource_name=binding.name,
        operation=_name(binding.operation),
        pattern_type=_name(binding.resource_pattern_type),
        permission=_name(binding.permission_type),
        host=binding.host,
    )


def _binding(entry: AclEntry) -> AclBinding:
    return AclBinding(*_binding_fields(entry))


def _filter(entry: AclEntry) -> AclBindingFilter:
    """A filter matching exactly ``entry`` (what ``delete_acls`` takes)."""
    return AclBindingFilter(*_binding_fields(entry))


def _binding_fields(entry: AclEntry) -> tuple[Any, ...]:
    return (
        _restype(entry.resource_type),
        entry.resource_name,
        ResourcePatternType[entry.pattern_type],
        entry.principal,
        entry.host,
        AclOperation[entry.operation],
        AclPermissionType[entry.permission],
    )
