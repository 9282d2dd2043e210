"""bus.Publisher against a real broker: acknowledged, keyed, pipelined, never silent."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bus.contract.codec import InMemorySchemas
from bus.contract.message import read_record
from bus.contract.standard import load_standard
from bus.errors import ContractError, KafkaUnavailableError, LifecycleError, PublishError
from bus.localkafka.manager import LocalKafka
from bus.publisher import Publisher, PublisherConfig, PublishResult
from tests.conftest import TopicFactory
from tests.support.events import SOURCE_DPMPTSP, izin, penduduk
from tests.support.kafka import create_topic, read_all
from tests.support.ports import free_port_block

pytestmark = pytest.mark.integration
STANDARD = load_standard()


def _config(bootstrap: str, topic: str, **extra: object) -> PublisherConfig:
    return PublisherConfig.model_validate(
        {
            "bootstrap_servers": bootstrap,
            "source": SOURCE_DPMPTSP,
            "topic_overrides": {"IzinDiterbitkan": topic},
            **extra,
        }
    )


async def test_publish_returns_where_the_acknowledged_event_landed(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic(partitions=3)
    event = izin(1)
    async with Publisher(_config(kafka_bootstrap, topic)) as publisher:
        result = await publisher.publish(event, sequence=4)
    assert result.topic == topic
    (record,) = await read_all(kafka_bootstrap, topic, 1)
    assert (record.partition, record.offset) == (result.partition, result.offset)
    assert record.key == event.nomor_izin.encode()
    assert record.value is not None
    back = read_record(
        record.value, list(record.headers), InMemorySchemas(STANDARD.values()), STANDARD
    )
    assert back.event == event
    assert back.envelope.id == result.event_id
    assert back.envelope.sequence == 4
    assert back.envelope.source == SOURCE_DPMPTSP


async def test_publish_many_reports_each_event_and_keeps_per_key_order(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic(partitions=4)
    batch = [(izin(i % 10, nama_usaha=f"Usaha {i}"), i) for i in range(300)]
    async with Publisher(_config(kafka_bootstrap, topic)) as publisher:
        results = await publisher.publish_many(batch)
    assert all(isinstance(r, PublishResult) for r in results)
    records = await read_all(kafka_bootstrap, topic, 300)
    assert len(records) == 300
    by_key: dict[bytes | None, list[int]] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        seq = dict(record.headers)["ce_sequence"]
        by_key.setdefault(record.key, []).append(int(seq))
    assert len(by_key) == 10
    for sequences in by_key.values():
        assert sequences == sorted(sequences), "events of one key arrive in publish order"


async def test_each_batched_result_names_its_own_record_on_the_partition_send_would_pick(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic(partitions=5)
    # Small batches: 64 KiB holds about 150 events, so each partition fills several.
    config = _config(kafka_bootstrap, topic, max_batch_size=64 * 1024)
    async with Publisher(config) as publisher:
        batch = [(izin(i % 37, nama_usaha=f"Usaha {i}"), i) for i in range(2000)]
        results = await publisher.publish_many(batch)
        singles = [await publisher.publish(izin(key), sequence=9999) for key in range(37)]
    assert all(isinstance(r, PublishResult) for r in results)
    records = await read_all(kafka_bootstrap, topic, 2000 + 37)
    at = {(r.partition, r.offset): r for r in records}
    for result, (event, sequence) in zip(results, batch, strict=True):
        assert isinstance(result, PublishResult)
        record = at[(result.partition, result.offset)]
        headers = dict(record.headers)
        assert headers["ce_id"].decode() == result.event_id
        assert headers["ce_sequence"] == str(sequence).encode()
        assert record.key == event.nomor_izin.encode()
    partitions_of_key: dict[bytes | None, set[int]] = {}
    for record in records:
        partitions_of_key.setdefault(record.key, set()).add(record.partition)
    for key, single in enumerate(singles):  # send() and the batches agree on every key
        assert partitions_of_key[izin(key).nomor_izin.encode()] == {single.partition}
    assert len({r.partition for r in records}) == 5


async def test_an_event_too_large_to_send_holds_back_the_later_events_of_its_key(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic(partitions=2)
    too_large = izin(1).model_copy(update={"dasar_hukum": "x" * (1024 * 1024 + 1)})
    async with Publisher(_config(kafka_bootstrap, topic)) as publisher:
        results = await publisher.publish_many([too_large, izin(1), izin(2)])
    assert isinstance(results[0], PublishError)
    assert "1048576" in str(results[0])
    assert isinstance(results[1], PublishError)
    assert "earlier event with the same key" in str(results[1])
    assert isinstance(results[2], PublishResult)
    # Every publish above was answered, so the log is complete: asking for one record more
    # than was sent reads it all.
    records = await read_all(kafka_bootstrap, topic, 2, timeout_s=5)
    assert [r.key for r in records] == [izin(2).nomor_izin.encode()]


async def test_publish_many_reports_a_refused_event_and_publishes_the_rest(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic()
    async with Publisher(_config(kafka_bootstrap, topic)) as publisher:
        results = await publisher.publish_many([izin(1), penduduk(1), izin(2)])
    assert isinstance(results[0], PublishResult)
    assert isinstance(results[1], ContractError)
    assert "may only be published by its steward DISDUKCAPIL" in str(results[1])
    assert isinstance(results[2], PublishResult)
    assert len(await read_all(kafka_bootstrap, topic, 2)) == 2


async def test_a_publisher_used_before_start_says_so(kafka_bootstrap: str) -> None:
    publisher = Publisher(_config(kafka_bootstrap, "unused"))
    with pytest.raises(LifecycleError, match="not started"):
        await publisher.publish(izin(1))


async def test_an_unreachable_broker_fails_start_with_a_clear_error() -> None:
    port = free_port_block(1)
    publisher = Publisher(
        _config(
            f"127.0.0.1:{port}",
            "unused",
            register_schemas=False,
            request_timeout_ms=2000,
            start_timeout_s=2,
        )
    )
    with pytest.raises(KafkaUnavailableError) as caught:
        await publisher.start()
    message = str(caught.value)
    assert message.startswith(
        f"Kafka at 127.0.0.1:{port} was not available to start the publisher within 2 s"
    )
    assert f"cannot reach Kafka at 127.0.0.1:{port}" in message, "the last error is named"
    assert "spbe-bus kafka status" in message


@pytest.mark.slow
async def test_broker_restarted_under_the_publisher_every_acknowledged_event_is_kept(
    tmp_path: Path,
) -> None:
    manager = LocalKafka(tmp_path / "kafka")
    layout = manager.up(port=free_port_block(2))
    bootstrap = layout.bootstrap_servers
    try:
        topic = await create_topic(bootstrap, "restart-under-publisher", partitions=2)
        acknowledged: list[PublishResult] = []
        failed: list[PublishError] = []
        config = _config(
            bootstrap,
            topic,
            request_timeout_ms=5000,
            delivery_timeout_ms=5000,
            registry_topic="reg.restart",
        )
        async with Publisher(config) as publisher:

            async def keep_publishing(stop: asyncio.Event) -> None:
                i = 0
                while not stop.is_set():
                    i += 1
                    try:
                        acknowledged.append(await publisher.publish(izin(i % 50), sequence=i))
                    except PublishError as exc:
                        failed.append(exc)
                        await asyncio.sleep(0.2)

            async def acknowledged_count(at_least: int) -> None:
                while len(acknowledged) < at_least:  # noqa: ASYNC110 - polls a plain list
                    await asyncio.sleep(0.05)

            stop = asyncio.Event()
            task = asyncio.create_task(keep_publishing(stop))
            await asyncio.wait_for(acknowledged_count(50), 120)
            await asyncio.to_thread(manager.down)
            await asyncio.to_thread(manager.up)
            await asyncio.wait_for(acknowledged_count(len(acknowledged) + 50), 120)
            stop.set()
            await task
        records = await read_all(bootstrap, topic, len(acknowledged))
        stored = {dict(r.headers)["ce_id"].decode() for r in records}
        missing = [r.event_id for r in acknowledged if r.event_id not in stored]
        assert missing == [], "an acknowledged event was lost"
    finally:
        manager.down()
