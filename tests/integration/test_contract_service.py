"""The contract service on a real broker and a SQLite ledger: projection, keys, ledger, expiry."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import SecretBytes

from adapters.contracts import ContractService
from adapters.db import create_engine
from adapters.ledger import LedgerStore, create_ledger_table
from bus.connection import KafkaConnection
from bus.contract import codec
from bus.contract.codec import InMemorySchemas
from bus.contract.contract_headers import from_contract_headers
from bus.contract.projected_events import projected_event_class
from bus.contract.projection import projected_topic
from bus.contract.pseudonyms import pseudonymise
from bus.delivery import dlq_topic
from bus.errors import DeliveryError
from bus.ledger import LedgerEntry
from bus.ops.catalog import Subscription
from bus.publisher import Publisher, PublisherConfig, PublishResult
from bus.publisher.partitions import partition_for
from bus.registry import SchemaRegistry
from tests.support.events import SOURCE_DUKCAPIL, penduduk
from tests.support.kafka import (
    committed_offsets,
    create_topic,
    partitions_of,
    produce,
    read_all,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
STEWARD_SECRET = b"dukcapil-test-secret-0123456789"
PAIRWISE_SECRET = b"contracts-pairwise-secret-0123456"
LEDGER_SECRET = b"ledger-secret-0123456789abcdef"
TODAY = date(2026, 12, 1)


def catalogue_subscription(subscriber: str, topic: str, **changes: Any) -> Subscription:
    """The subscription of deploy/catalog.yaml, on ``topic``."""
    catalog = yaml.safe_load((ROOT / "deploy" / "catalog.yaml").read_text(encoding="utf-8"))
    (found,) = [s for s in catalog["subscriptions"] if s["subscriber"] == subscriber]
    return Subscription.model_validate({**found, "topics": [topic], **changes})


async def test_each_subscription_gets_only_its_fields_under_its_own_keys_ledger_first(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    raw = f"spbe.t{uuid.uuid4().hex[:10]}.penduduk.v1"
    subscriptions = [
        catalogue_subscription("dpmptsp-penduduk", raw),
        catalogue_subscription("dinsos-penduduk", raw),
        catalogue_subscription("bapenda-penduduk", raw, expires="2026-11-30"),
    ]
    await create_topic(kafka_bootstrap, raw, partitions=3)
    for sub in subscriptions:
        await create_topic(kafka_bootstrap, projected_topic(raw, sub.subscriber), partitions=3)
    events = [penduduk(serial) for serial in (1, 2, 3)]
    config = PublisherConfig(
        bootstrap_servers=kafka_bootstrap,
        source=SOURCE_DUKCAPIL,
        key_secret=SecretBytes(STEWARD_SECRET),
        topic_overrides={"PendudukUpdated": raw},
    )
    async with Publisher(config) as publisher:
        published = await publisher.publish_many(events)
    assert all(not isinstance(result, Exception) for result in published)

    engine = create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    create_ledger_table(engine)
    ledger = LedgerStore(engine, LEDGER_SECRET)
    service = ContractService(
        subscriptions,
        pairwise_secret=SecretBytes(PAIRWISE_SECRET),
        ledger=ledger,
        ledger_secret=SecretBytes(LEDGER_SECRET),
        kafka=KafkaConnection(bootstrap_servers=kafka_bootstrap),
        group_id=f"spbe-contracts-{uuid.uuid4().hex[:8]}",
        today=lambda: TODAY,
    )
    assert await _run_until(service, 2 * len(events)) == 2 * len(events)

    projections = {
        route.subscriber: route.projected
        for route in service.routes
        if route.projected.event_type == "id.go.spbe.dukcapil.PendudukUpdated.v1"
    }
    received: dict[str, dict[str, Any]] = {}
    for subscriber in ("dpmptsp-penduduk", "dinsos-penduduk"):
        records = await read_all(
            kafka_bootstrap, projected_topic(raw, subscriber), expected=len(events)
        )
        assert len(records) == len(events)
        partitions = await partitions_of(kafka_bootstrap, projected_topic(raw, subscriber))
        for record in records:  # partitioned as the publisher partitions, by the pairwise key
            assert record.partition == partition_for(record.key, partitions)
        schema = projections[subscriber].schema
        allowed = set(projections[subscriber].allowed_fields)
        # A subscriber finds the writer schema in the registry, as it finds the standard's.
        async with SchemaRegistry(kafka_bootstrap) as registry:
            registered = await registry.lookup(schema.fingerprint)
        assert registered.fingerprint == schema.fingerprint
        typed = projected_event_class(projections[subscriber])
        for record in records:
            datum = codec.decode(record.value, InMemorySchemas([registered])).datum
            assert typed.from_avro(datum).nik == datum["nik"]
            assert _paths(datum) <= allowed
            headers = list(record.headers)
            contract = from_contract_headers(headers)
            assert contract.subscription == subscriber
            header = dict(headers)
            assert header["ce_partitionkey"] == record.key
            assert header["ce_subject"] == record.key
            assert header["ce_dataschema"].decode().endswith(f"{schema.fingerprint:016x}")
            received.setdefault(subscriber, {})[datum["nik"]] = (record.key.decode(), datum)

    for event in events:
        dpmptsp_key, dpmptsp = received["dpmptsp-penduduk"][event.nik]
        dinsos_key, dinsos = received["dinsos-penduduk"][event.nik]
        assert "no_kk" in dinsos
        assert "no_kk" not in dpmptsp
        assert dpmptsp_key != dinsos_key
        steward_key = pseudonymise(STEWARD_SECRET, event.nik)
        assert {dpmptsp_key, dinsos_key}.isdisjoint({event.nik, steward_key})
        assert set(dinsos["changed_fields"]) <= set(projections["dinsos-penduduk"].allowed_fields)
        answer = ledger.who_received(event.nik)
        assert {s.subscriber for s in answer.subscribers} == {
            "dpmptsp-penduduk",
            "dinsos-penduduk",
        }
        assert len(answer.entries) == 2

    assert await _records_on(kafka_bootstrap, projected_topic(raw, "bapenda-penduduk")) == 0
    engine.dispose()


async def _records_on(bootstrap: str, topic: str) -> int:
    """How many records ``topic`` holds (its end offsets): no waiting for what is not there."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in await partitions_of(bootstrap, topic)]
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return sum(ends.values())


def _paths(datum: dict[str, Any], prefix: str = "") -> set[str]:
    found: set[str] = set()
    for name, value in datum.items():
        path = f"{prefix}{name}"
        if isinstance(value, dict):
            found |= _paths(value, f"{path}.")
        else:
            found.add(path)
    return found


async def test_no_delivery_without_its_ledger_entry_and_renewal_sends_nothing_again(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    raw = f"spbe.t{uuid.uuid4().hex[:10]}.penduduk.v1"
    dpmptsp = catalogue_subscription("dpmptsp-penduduk", raw)
    dinsos_expired = catalogue_subscription("dinsos-penduduk", raw, expires="2026-11-30")
    dinsos_renewed = catalogue_subscription("dinsos-penduduk", raw)
    await create_topic(kafka_bootstrap, raw, partitions=2)
    for sub in (dpmptsp, dinsos_renewed):
        await create_topic(kafka_bootstrap, projected_topic(raw, sub.subscriber), partitions=2)
    config = PublisherConfig(
        bootstrap_servers=kafka_bootstrap,
        source=SOURCE_DUKCAPIL,
        key_secret=SecretBytes(STEWARD_SECRET),
        topic_overrides={"PendudukUpdated": raw},
    )
    group = f"spbe-contracts-{uuid.uuid4().hex[:8]}"
    kafka = KafkaConnection(bootstrap_servers=kafka_bootstrap)

    def service(subscriptions: list[Subscription], ledger: LedgerStore) -> ContractService:
        return ContractService(
            subscriptions,
            pairwise_secret=SecretBytes(PAIRWISE_SECRET),
            ledger=ledger,
            ledger_secret=SecretBytes(LEDGER_SECRET),
            kafka=kafka,
            group_id=group,
            today=lambda: TODAY,
        )

    async with Publisher(config) as publisher:
        await publisher.publish_many([penduduk(serial) for serial in (1, 2, 3)])

    # A ledger without its table: the append fails, so nothing is produced or committed.
    engine = create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger = LedgerStore(engine, LEDGER_SECRET)
    async with service([dpmptsp, dinsos_expired], ledger) as first:
        with pytest.raises(DeliveryError, match="nothing of the batch was delivered"):
            await _deliver_until(first, 1)
        assert await _records_on(kafka_bootstrap, projected_topic(raw, "dpmptsp-penduduk")) == 0
        assert await committed_offsets(kafka_bootstrap, group) == {}
        # The ledger is back: the same service reads the failed batch again. Dinsos has
        # expired, so only dpmptsp receives the three.
        create_ledger_table(engine)
        assert await _deliver_until(first, 3) == 3
    async with Publisher(config) as publisher:
        await publisher.publish_many([penduduk(serial) for serial in (4, 5)])
    # Renewed: both receive the two new events, and nothing before them is sent again.
    assert await _run_until(service([dpmptsp, dinsos_renewed], ledger), 4) == 4

    assert await _records_on(kafka_bootstrap, projected_topic(raw, "dpmptsp-penduduk")) == 5
    assert await _records_on(kafka_bootstrap, projected_topic(raw, "dinsos-penduduk")) == 2
    assert {s.subscriber for s in ledger.who_received(penduduk(1).nik).subscribers} == {
        "dpmptsp-penduduk"
    }
    assert {s.subscriber for s in ledger.who_received(penduduk(5).nik).subscribers} == {
        "dpmptsp-penduduk",
        "dinsos-penduduk",
    }
    engine.dispose()


async def _run_until(service: ContractService, expected: int) -> int:
    """Run ``service`` until it produced ``expected`` records (or 60 fetches found no more)."""
    async with service:
        return await _deliver_until(service, expected)


async def _deliver_until(service: ContractService, expected: int) -> int:
    produced = 0
    for _ in range(60):  # fetches, not time: each waits for records at most 1 s
        produced += await service.run_once()
        if produced >= expected:
            break
    return produced


async def test_a_record_that_is_no_event_is_dead_lettered_and_the_rest_delivered(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    raw = f"spbe.t{uuid.uuid4().hex[:10]}.penduduk.v1"
    dinsos = catalogue_subscription("dinsos-penduduk", raw)
    await create_topic(kafka_bootstrap, raw)
    await create_topic(kafka_bootstrap, projected_topic(raw, dinsos.subscriber))
    await produce(kafka_bootstrap, raw, [b"not an event"], key=b"k")
    config = PublisherConfig(
        bootstrap_servers=kafka_bootstrap,
        source=SOURCE_DUKCAPIL,
        key_secret=SecretBytes(STEWARD_SECRET),
        topic_overrides={"PendudukUpdated": raw},
    )
    async with Publisher(config) as publisher:
        await publisher.publish(penduduk(1))
    engine = create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    create_ledger_table(engine)
    group = f"spbe-contracts-{uuid.uuid4().hex[:8]}"
    service = ContractService(
        [dinsos],
        pairwise_secret=SecretBytes(PAIRWISE_SECRET),
        ledger=LedgerStore(engine, LEDGER_SECRET),
        ledger_secret=SecretBytes(LEDGER_SECRET),
        kafka=KafkaConnection(bootstrap_servers=kafka_bootstrap),
        group_id=group,
        today=lambda: TODAY,
    )
    async with service:  # run() until asked to stop, as an adapter runs
        running = asyncio.create_task(service.run())
        delivered = await read_all(
            kafka_bootstrap, projected_topic(raw, dinsos.subscriber), expected=1
        )
        service.request_stop()
        await running
    assert len(delivered) == 1

    (dead,) = await read_all(kafka_bootstrap, dlq_topic(raw, group), expected=1)
    assert dead.value == b"not an event"
    assert dict(dead.headers)["dlq_error_class"]
    offsets = await committed_offsets(kafka_bootstrap, group)
    assert offsets == {TopicPartition(raw, 0): 2}
    engine.dispose()


class LedgerAwayOnce(LedgerStore):
    """A SQLite ledger whose table is away during its second append, as a failing database."""

    def __init__(self, engine: sa.Engine) -> None:
        super().__init__(engine, LEDGER_SECRET)
        self.engine = engine
        self.appends = 0

    def append(self, entries: Sequence[LedgerEntry]) -> None:
        self.appends += 1
        if self.appends != 2:
            super().append(entries)
            return
        with self.engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE spbe_ledger RENAME TO spbe_ledger_away")
        try:
            super().append(entries)
        finally:
            with self.engine.begin() as conn:
                conn.exec_driver_sql("ALTER TABLE spbe_ledger_away RENAME TO spbe_ledger")


async def test_the_next_batch_failing_while_one_is_acknowledged_keeps_both_and_their_order(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    raw = f"spbe.t{uuid.uuid4().hex[:10]}.penduduk.v1"
    dinsos = catalogue_subscription("dinsos-penduduk", raw)
    projected = projected_topic(raw, dinsos.subscriber)
    await create_topic(kafka_bootstrap, raw)
    await create_topic(kafka_bootstrap, projected)
    config = PublisherConfig(
        bootstrap_servers=kafka_bootstrap,
        source=SOURCE_DUKCAPIL,
        key_secret=SecretBytes(STEWARD_SECRET),
        topic_overrides={"PendudukUpdated": raw},
    )
    async with Publisher(config) as publisher:  # two residents, three changes each
        published = await publisher.publish_many([penduduk(1 + n % 2) for n in range(6)])
    event_ids = [result.event_id for result in published if isinstance(result, PublishResult)]
    assert len(event_ids) == 6
    engine = create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    create_ledger_table(engine)
    ledger = LedgerAwayOnce(engine)
    group = f"spbe-contracts-{uuid.uuid4().hex[:8]}"
    service = ContractService(
        [dinsos],
        pairwise_secret=SecretBytes(PAIRWISE_SECRET),
        ledger=ledger,
        ledger_secret=SecretBytes(LEDGER_SECRET),
        kafka=KafkaConnection(bootstrap_servers=kafka_bootstrap),
        group_id=group,
        today=lambda: TODAY,
        max_poll_records=2,
    )
    async with service:
        # The first batch is produced; the second, fetched in the same response, is
        # prepared while the first is acknowledged, and its ledger append fails.
        with pytest.raises(DeliveryError, match="nothing of the batch was delivered"):
            await service.run_once()
        assert ledger.appends == 2
        # The batch in flight was still acknowledged and committed; the failed one is not.
        assert await committed_offsets(kafka_bootstrap, group) == {TopicPartition(raw, 0): 2}
        assert await _records_on(kafka_bootstrap, projected) == 2
        assert await _deliver_until(service, 4) == 4  # read again from the commit
    assert await committed_offsets(kafka_bootstrap, group) == {TopicPartition(raw, 0): 6}
    delivered = await read_all(kafka_bootstrap, projected, expected=6)
    # Each event once, in the order published: every key's changes in their order.
    assert [dict(record.headers)["ce_id"].decode() for record in delivered] == event_ids
    for serial in (1, 2):
        assert len(ledger.who_received(penduduk(serial).nik).entries) == 3
    engine.dispose()
