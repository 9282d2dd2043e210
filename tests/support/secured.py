"""Users and grants on the secured test cluster, made with confluent-kafka's admin client.

For tests that need a principal before (or without) ``catalog apply``: a SCRAM user, and
ACLs given directly. The bus's own access control is built from the catalogue; these
helpers only set the scene.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from bus.connection import KafkaConnection

__all__ = ["create_user", "grant", "user_connection"]


def _admin(operator: KafkaConnection) -> AdminClient:
    config: dict[str, str | int | float | bool] = {**operator.librdkafka_config()}
    return AdminClient(config)


async def create_user(operator: KafkaConnection, name: str, password: str) -> KafkaConnection:
    """A SCRAM-SHA-512 user ``name`` (made or given a new password); its connection."""

    def upsert() -> None:
        info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096)
        admin = _admin(operator)  # kept until the futures resolve: its end cancels them
        futures = admin.alter_user_scram_credentials(
            [UserScramCredentialUpsertion(name, info, password.encode())]
        )
        for future in futures.values():
            future.result(timeout=60)

    await asyncio.to_thread(upsert)
    return user_connection(operator, name, password)


def user_connection(operator: KafkaConnection, name: str, password: str) -> KafkaConnection:
    """The operator's cluster settings with another user's credentials."""
    return operator.model_copy(update={"security": operator.security.with_user(name, password)})


async def grant(
    operator: KafkaConnection,
    user: str,
    resource: str,
    operations: Iterable[str],
    *,
    resource_type: str = "TOPIC",
    pattern: str = "LITERAL",
) -> None:
    """Allow ``User:<user>`` each of ``operations`` (e.g. ``"WRITE"``) on ``resource``.

    ``resource_type`` in Kafka's names: ``TOPIC``, ``GROUP``, ``CLUSTER`` (with the resource
    ``kafka-cluster``; librdkafka calls it ``BROKER``).
    """
    kind = ResourceType.BROKER if resource_type == "CLUSTER" else ResourceType[resource_type]
    bindings = [
        AclBinding(
            kind,
            resource,
            ResourcePatternType[pattern],
            f"User:{user}",
            "*",
            AclOperation[operation],
            AclPermissionType.ALLOW,
        )
        for operation in operations
    ]

    def create() -> None:
        admin = _admin(operator)
        for future in admin.create_acls(bindings).values():
            future.result(timeout=60)

    await asyncio.to_thread(create)


async def read_refusal(connection: KafkaConnection, topic: str, group: str) -> KafkaError | None:
    """The error a consumer in ``group`` gets reading ``topic``, or None when it may read."""
    consumer = AIOKafkaConsumer(
        topic,
        **connection.aiokafka_options(),
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        request_timeout_ms=10_000,
    )
    try:
        await consumer.start()
        await consumer.getmany(timeout_ms=3000)
        await consumer.getmany(timeout_ms=1000)
        return None
    except KafkaError as exc:
        return exc
    finally:
        await consumer.stop()
