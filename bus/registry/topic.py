"""The registry topic: created on first use, and checked to be fit to hold a registry.

It has one partition (every reader folds the records in the same order), ``cleanup.policy=
compact`` (a registered schema is never deleted for its age), a replication factor of
``min(3, brokers)`` and ``min.insync.replicas`` 2 when there are 3 replicas, else 1.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError, for_code

from bus.logs import get_logger
from bus.registry.errors import RegistryError

__all__ = ["ensure_topic", "topic_settings"]

_POLL_S = 0.2

log = get_logger(__name__)


def topic_settings(brokers: int) -> tuple[int, dict[str, str]]:
    """The replication factor and topic configs of a registry topic on ``brokers`` brokers."""
    replication = max(1, min(3, brokers))
    configs = {
        "cleanup.policy": "compact",
        "min.insync.replicas": "2" if replication == 3 else "1",
    }
    return replication, configs


async def ensure_topic(admin: AIOKafkaAdminClient, topic: str) -> None:
    """Create the registry topic when it is missing, then check that it fits."""
    if topic not in await admin.list_topics():
        cluster = await admin.describe_cluster()
        replication, configs = topic_settings(len(cluster["brokers"]))
        response = await admin.create_topics(
            [NewTopic(topic, 1, replication, topic_configs=configs)]
        )
        for error in response.topic_errors:
            code, message = error[1], (error[2] if len(error) > 2 else None)
            if code == TopicAlreadyExistsError.errno:
                break  # another registrar created it first
            if code:
                raise RegistryError(
                    f"cannot create the registry topic {topic}: "
                    f"{for_code(code).__name__}: {message}",
                    fix="create it by hand: 1 partition, cleanup.policy=compact",
                )
        else:
            log.info("registry.topic_created", topic=topic, replication=replication)
    await _check_topic(admin, topic)


async def _check_topic(admin: AIOKafkaAdminClient, topic: str) -> None:
    while True:  # a new topic takes a moment to show up in metadata
        (described,) = await admin.describe_topics([topic])
        if described["error_code"] == 0 and described["partitions"]:
            break
        await asyncio.sleep(_POLL_S)
    partitions = len(described["partitions"])
    if partitions != 1:
        raise RegistryError(
            f"the registry topic {topic} has {partitions} partitions; the registry "
            "needs exactly 1 so that every reader sees registrations in the same order",
            fix="use another --registry-topic, or recreate this one with 1 partition",
        )
    resource = ConfigResource(ConfigResourceType.TOPIC, topic, {"cleanup.policy": None})
    responses: list[Any] = await admin.describe_configs([resource])
    policy = next(
        (
            entry["config_value"]
            for response in responses
            for described_resource in response.to_object()["resources"]
            for entry in described_resource["config_entries"]
            if entry["config_names"] == "cleanup.policy"
        ),
        None,
    )
    if policy is not None and "compact" not in policy.split(","):
        raise RegistryError(
            f"the registry topic {topic} has cleanup.policy={policy}: Kafka would "
            "delete registered schemas once they are older than the retention time",
            fix=f"kafka-configs.sh --alter --entity-type topics --entity-name {topic} "
            "--add-config cleanup.policy=compact",
        )
