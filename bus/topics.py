"""Create topics that are missing (idempotent): event topics, dead letter topics.

Operators provision production topics from the catalogue; this is for the topics a
component owns (its dead letter topics) and for development set-ups.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

__all__ = ["ensure_topics"]


async def ensure_topics(
    bootstrap_servers: str,
    partitions: Mapping[str, int],
    *,
    replication_factor: int | None = None,
    configs: Mapping[str, str] | None = None,
) -> None:
    """Create each topic in ``partitions`` (name -> partition count) unless it exists.

    ``replication_factor`` defaults to min(3, number of brokers); with three or more
    brokers ``min.insync.replicas`` is set to 2 so ``acks=all`` survives one loss.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
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
    finally:
        await admin.close()
