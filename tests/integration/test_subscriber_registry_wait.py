"""A subscriber whose schema registry cannot answer yet waits; it never dead-letters for it.

The events are written with a newer version of ``IzinDiterbitkan`` (one optional field
more) whose fingerprint the subscriber has never seen, so each one needs a registry lookup.
"""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path

import pytest
from aiokafka import TopicPartition

from bus.contract.events import IzinDiterbitkan
from bus.contract.schema import AvroSchema
from bus.contract.standard import load_standard
from bus.delivery import Delivery, RetryPolicy, dlq_topic
from bus.localkafka.manager import LocalKafka
from bus.publisher import Publisher, PublisherConfig
from bus.registry import SchemaRegistry
from bus.subscriber import Subscriber, SubscriberConfig
from tests.conftest import TopicFactory
from tests.integration.test_subscriber import end_offsets, eventually
from tests.support.events import SOURCE_DPMPTSP, izin
from tests.support.kafka import committed_offsets
from tests.support.ports import free_port_block

pytestmark = pytest.mark.integration

PATIENT = RetryPolicy(max_attempts=4, initial_backoff_ms=100, max_backoff_ms=500, jitter_ms=50)


def newer_izin() -> AvroSchema:
    """IzinDiterbitkan with one optional field added: compatible, another fingerprint."""
    raw = copy.deepcopy(dict(load_standard()["IzinDiterbitkan"].raw))
    raw["fields"].append(
        {"name": "catatan_uji", "type": ["null", "string"], "default": None, "doc": "Uji."}
    )
    return AvroSchema.from_json(raw)


async def publish_with(schema: AvroSchema, bootstrap: str, topic: str, key: int) -> None:
    config = PublisherConfig(
        bootstrap_servers=bootstrap,
        source=SOURCE_DPMPTSP,
        topic_overrides={"IzinDiterbitkan": topic},
        register_schemas=False,  # the writer's schema is not registered (yet)
    )
    async with Publisher(config, standard={"IzinDiterbitkan": schema}) as publisher:
        await publisher.publish(izin(key), sequence=1)


def config(bootstrap: str, topic: str, name: str) -> SubscriberConfig:
    return SubscriberConfig(
        bootstrap_servers=bootstrap, subscriber_id=name, topics=(topic,), retry=PATIENT
    )


async def test_a_schema_registered_after_a_delay_is_applied_once_and_nothing_dead_lettered(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic()
    schema = newer_izin()
    registry_topic = f"_spbe.schemas.{topic}"
    applied: list[str] = []

    async def apply(delivery: Delivery) -> None:
        assert isinstance(delivery.event, IzinDiterbitkan)
        applied.append(delivery.event.nomor_izin)

    name = f"{topic}-late"
    subscription = config(kafka_bootstrap, topic, name).model_copy(
        update={"registry_topic": registry_topic}
    )
    await publish_with(schema, kafka_bootstrap, topic, 1)
    async with Subscriber(subscription, apply) as subscriber:
        runner = asyncio.create_task(subscriber.run())
        await eventually(lambda: subscriber.stats.retries >= 1, watch=runner)
        assert applied == []
        async with SchemaRegistry(kafka_bootstrap, topic=registry_topic) as registry:
            await registry.register(schema)
        await eventually(lambda: len(applied) == 1, watch=runner)
        subscriber.request_stop()
        await runner
    assert applied == [izin(1).nomor_izin]
    assert subscriber.stats.dead_lettered == 0
    assert await committed_offsets(kafka_bootstrap, name) == {TopicPartition(topic, 0): 1}


async def test_a_schema_never_registered_is_dead_lettered_after_the_policys_attempts(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic()
    await publish_with(newer_izin(), kafka_bootstrap, topic, 2)
    name = f"{topic}-never"
    async with Subscriber(config(kafka_bootstrap, topic, name), _never_called) as subscriber:
        runner = asyncio.create_task(subscriber.run())
        await eventually(lambda: subscriber.stats.dead_lettered == 1, watch=runner)
        subscriber.request_stop()
        await runner
    assert subscriber.stats.retries == PATIENT.max_attempts - 1
    (dead,) = (await end_offsets(kafka_bootstrap, dlq_topic(topic, name), 1)).values()
    assert dead == 1
    assert await committed_offsets(kafka_bootstrap, name) == {TopicPartition(topic, 0): 1}


async def _never_called(delivery: Delivery) -> None:
    raise AssertionError(f"{delivery.offset} should not decode")


@pytest.mark.slow
async def test_a_registry_that_is_down_is_waited_for_without_committing_or_dead_lettering(
    kafka_bootstrap: str, new_topic: TopicFactory, tmp_path: Path
) -> None:
    # The registry lives on a cluster of its own here, so it can be killed while the
    # event topic stays up.
    registry_kafka = LocalKafka(tmp_path / "registry-kafka", ready_timeout_s=240)
    registry_bootstrap = registry_kafka.up(port=free_port_block(2)).bootstrap_servers
    topic = await new_topic()
    schema = newer_izin()
    applied: list[str] = []

    async def apply(delivery: Delivery) -> None:
        assert isinstance(delivery.event, IzinDiterbitkan)
        applied.append(delivery.event.nomor_izin)

    name = f"{topic}-waits"
    registry = SchemaRegistry(registry_bootstrap, timeout_s=2)
    try:
        async with Subscriber(
            config(kafka_bootstrap, topic, name), apply, registry=registry
        ) as subscriber:
            runner = asyncio.create_task(subscriber.run())
            # Registered after the subscriber read the registry: it must read on to find it,
            # and the registry's cluster is gone before it can.
            async with SchemaRegistry(registry_bootstrap) as registrar:
                await registrar.register(schema)
            registry_kafka.down()
            await publish_with(schema, kafka_bootstrap, topic, 3)
            # Many more tries than the policy allows an unknown schema: this one is not the
            # event's fault, so it is never dead-lettered, and its offset stays uncommitted.
            await eventually(
                lambda: subscriber.stats.retries > PATIENT.max_attempts + 2, watch=runner
            )
            assert applied == []
            assert subscriber.stats.dead_lettered == 0
            assert TopicPartition(topic, 0) not in await committed_offsets(kafka_bootstrap, name)

            registry_kafka.up()
            await eventually(lambda: len(applied) == 1, watch=runner)
            subscriber.request_stop()
            await runner
    finally:
        await registry.stop()  # the subscriber does not stop a registry it was given
        registry_kafka.down()
    assert applied == [izin(3).nomor_izin]
    assert subscriber.stats.dead_lettered == 0
    assert await committed_offsets(kafka_bootstrap, name) == {TopicPartition(topic, 0): 1}
