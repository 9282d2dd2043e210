"""Create topics that are missing (idempotent): event topics, dead letter topics.

Operators provision production topics from the catalogue; this is for the topics a
component owns (its dead letter topics) and for development set-ups.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from aiokafka.admin import NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from bus.connection import KafkaConnection, as_connection
from bus.startup import LiveNodeAdmin, close_client, wait_for_kafka

__all__ = ["ensure_topics"]


async def ensure_topics(
    kafka: KafkaConnection | str,
    partitions: Mapping[str, int],
    *,
    replication_factor: int | None = None,
    configs: Mapping[str, str] | None = None,
    timeout_s: float | None = None,
) -> None:
    """Create each topic in ``partitions`` (name -> partition count) unless it exists.

    ``replication_factor`` defaults to min(3, number of brokers); with three or more
    brokers ``min.insync.replicas`` is set to 2 so ``acks=all`` survives one loss. A
    cluster that is away or failing over is waited for up to ``timeout_s`` (default
    ``$SPBE_START_TIMEOUT_S`` or 120 s). ``kafka`` is a connection, or bootstrap servers
    with the security of the ``SPBE_KAFKA_*`` environment.
    """
    connection = as_connection(kafka)
    names = ", ".join(partitions)

    async def attempt() -> None:
        admin = LiveNodeAdmin(**connection.aiokafka_options())
        try:
            await admin.start()
            await _create_missing(admin, partitions, replication_factor, configs)
        finally:
            await close_client(admin)

    await wait_for_kafka(
        f"create the topics {names}",
        attempt,
        bootstrap_servers=connection.bootstrap_servers,
        security=connection.security,
        timeout_s=timeout_s,
    )


async def _create_missing(
    admin: LiveNodeAdmin,
    partitions: Mapping[str, int],
    replication_factor: int | None,
    configs: Mapping[str, str] | None,
) -> None:
    brokers = len((await admin.describe_cluster())["brokers"])
    replication = replication_factor or min(3, brokers)
    topic_configs = dict(configs or {})
    if replication >= 3:
        topic_configs.setdefault("min.insync.replicas", "2")
    existing = set(await admin.list_topics())
    for name, count in partitions.items():
        if name in existing:
            continue
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics(
                [NewTopic(name, count, replication, topic_configs=topic_configs)]
            )
