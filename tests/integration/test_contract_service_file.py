"""``spbe-bus run`` of the contract service's file, on the secured broker, as its own principal.

The file is ``deploy/adapters/contracts.yaml`` with only its catalogue, registry topic and
consumer group changed (a catalogue of this test's topic); everything else comes from the
environment exactly as the shipped file reads it: the bootstrap servers, the hand-over
file of the principal, both secrets and the ledger's URL. The principal is given here the
grants the service needs (``catalog apply`` provisions them for ``spbe-contracts``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretBytes

from adapters.contracts import PROJECTED_MODE
from adapters.db import create_engine
from adapters.ledger import LedgerStore, create_ledger_table
from adapters.runner import load_adapter, run_adapter
from bus.connection import KafkaConnection, write_credentials_file
from bus.contract import codec
from bus.contract.compatibility import CompatibilityMode, check_compatible
from bus.contract.contract_headers import from_contract_headers
from bus.contract.events import PendudukUpdated
from bus.contract.projection import projected_topic
from bus.delivery import dlq_topic
from bus.errors import IncompatibleSchemaError
from bus.ops.catalog import default_catalog_path, load_catalog
from bus.ops.metrics import expiry_timestamp
from bus.publisher import Publisher, PublisherConfig
from bus.registry import SchemaRegistry
from bus.topics import ensure_topics
from tests.support.events import SOURCE_DUKCAPIL, penduduk
from tests.support.kafka import partitions_of
from tests.support.ports import free_port_block
from tests.support.secured import create_user, grant

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_FILE = ROOT / "deploy" / "adapters" / "contracts.yaml"
PRINCIPAL = "spbe-contracts"
STEWARD_SECRET = b"dukcapil-test-secret-0123456789"
PAIRWISE_SECRET = "contracts-pairwise-secret-0123456"
LEDGER_SECRET = "ledger-secret-0123456789abcdef"
SUBSCRIBERS = ("dpmptsp-penduduk", "dinsos-penduduk")
PENDUDUK = "id.go.spbe.dukcapil.PendudukUpdated.v1"


class Scene:
    """One test's raw topic, projected topics, registry topic, group, ledger and principal."""

    def __init__(self, operator: KafkaConnection, tmp_path: Path) -> None:
        tag = uuid.uuid4().hex[:10]
        self.operator = operator
        self.tmp_path = tmp_path
        self.raw = f"spbe.t{tag}.penduduk.v1"
        self.registry_topic = f"_spbe.schemas.t{tag}"
        self.group = f"spbe-contracts-{tag}"
        self.ledger_url = f"sqlite:///{tmp_path / 'ledger.db'}"
        self.engine = create_engine(self.ledger_url)
        create_ledger_table(self.engine)  # by its owner, before the service starts
        self.ledger = LedgerStore(self.engine, LEDGER_SECRET.encode())

    def projected(self, subscriber: str) -> str:
        return projected_topic(self.raw, subscriber)

    async def provision(self) -> Path:
        """Topics and standard as the operator; the principal, its grants, its hand-over file."""
        topics = [self.raw, *(self.projected(s) for s in SUBSCRIBERS)]
        await ensure_topics(
            self.operator,
            {**dict.fromkeys(topics, 2), dlq_topic(self.raw, self.group): 1},
            replication_factor=1,
        )
        async with SchemaRegistry(self.operator, topic=self.registry_topic):
            pass  # creates the registry topic, as catalog apply creates _spbe.schemas
        password = uuid.uuid4().hex
        user = await create_user(self.operator, PRINCIPAL, password)
        op = self.operator
        await grant(op, PRINCIPAL, self.raw, ["READ", "DESCRIBE"])
        await grant(op, PRINCIPAL, self.group, ["READ"], resource_type="GROUP")
        await grant(op, PRINCIPAL, self.registry_topic, ["READ", "WRITE", "DESCRIBE"])
        for topic in (*(self.projected(s) for s in SUBSCRIBERS), dlq_topic(self.raw, self.group)):
            await grant(op, PRINCIPAL, topic, ["WRITE", "DESCRIBE"])
        await grant(op, PRINCIPAL, "kafka-cluster", ["IDEMPOTENT_WRITE"], resource_type="CLUSTER")
        return write_credentials_file(
            self.tmp_path / f"{PRINCIPAL}.json", user.bootstrap_servers, user.security
        )

    def catalogue(self, name: str, *, widen: bool = False) -> Path:
        """deploy/catalog.yaml for this test's topic: Disdukcapil and two of its subscribers."""
        data = yaml.safe_load(default_catalog_path().read_text(encoding="utf-8"))
        data["stewards"] = [s for s in data["stewards"] if s["id"] == "DISDUKCAPIL"]
        (topic,) = [t for t in data["topics"] if t["name"] == "spbe.dukcapil.penduduk.v1"]
        data["topics"] = [{**topic, "name": self.raw, "replication_factor": 1}]
        data["topics"][0].pop("min_insync_replicas", None)
        subscriptions = [s for s in data["subscriptions"] if s["subscriber"] in SUBSCRIBERS]
        for sub in subscriptions:
            sub["topics"] = [self.raw]
            if widen and sub["subscriber"] == "dpmptsp-penduduk":
                sub["allowed_fields"][PENDUDUK] = [*sub["allowed_fields"][PENDUDUK], "no_kk"]
        data["subscriptions"] = subscriptions
        data.pop("api_clients", None)  # the gateway's clients name other subscriptions
        path = self.tmp_path / name
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        return path

    def service_file(self, catalogue: Path) -> Path:
        """The shipped file with this test's catalogue, registry topic and group."""
        data = yaml.safe_load(DEPLOY_FILE.read_text(encoding="utf-8"))
        data["contracts"] |= {
            "catalog": str(catalogue),
            "registry_topic": self.registry_topic,
            "group_id": self.group,
        }
        path = self.tmp_path / f"contracts-{catalogue.stem}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        return path

    def environment(self, monkeypatch: pytest.MonkeyPatch, credentials: Path) -> None:
        """What the shipped file reads from the environment."""
        monkeypatch.setenv("SPBE_KAFKA_BOOTSTRAP", self.operator.bootstrap_servers)
        monkeypatch.setenv("SPBE_CONTRACTS_KAFKA_CREDENTIALS", str(credentials))
        monkeypatch.setenv("SPBE_CONTRACTS_PAIRWISE_SECRET", PAIRWISE_SECRET)
        monkeypatch.setenv("SPBE_LEDGER_SECRET", LEDGER_SECRET)
        monkeypatch.setenv("SPBE_LEDGER_URL", self.ledger_url)

    async def publish(self, *events: PendudukUpdated) -> None:
        config = PublisherConfig(
            bootstrap_servers=self.operator.bootstrap_servers,
            security=self.operator.security,
            source=SOURCE_DUKCAPIL,
            key_secret=SecretBytes(STEWARD_SECRET),
            registry_topic=self.registry_topic,
            topic_overrides={"PendudukUpdated": self.raw},
        )
        async with Publisher(config) as publisher:
            results = await publisher.publish_many(list(events))
        assert all(not isinstance(result, Exception) for result in results)

    async def records_on(self, topic: str) -> int:
        """How many records ``topic`` holds (its end offsets)."""
        consumer = AIOKafkaConsumer(**self.operator.aiokafka_options(), enable_auto_commit=False)
        await consumer.start()
        try:
            partitions = [
                TopicPartition(topic, p) for p in await partitions_of(self.operator, topic)
            ]
            return sum((await consumer.end_offsets(partitions)).values())
        finally:
            await consumer.stop()

    async def read(self, topic: str) -> list[tuple[dict[str, Any], list[tuple[str, bytes]]]]:
        """Every record of ``topic``: its datum (by the registered writer schema), headers."""
        consumer = AIOKafkaConsumer(
            **self.operator.aiokafka_options(),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        expected = await self.records_on(topic)
        await consumer.start()
        found: list[Any] = []
        try:
            partitions = await partitions_of(self.operator, topic)
            consumer.assign([TopicPartition(topic, p) for p in partitions])
            await consumer.seek_to_beginning()
            while len(found) < expected:
                for records in (await consumer.getmany(timeout_ms=1000)).values():
                    found.extend(records)
        finally:
            await consumer.stop()
        async with SchemaRegistry(self.operator, topic=self.registry_topic) as registry:
            return [
                (codec.decode(r.value, registry).datum, list(r.headers))
                for r in sorted(found, key=lambda r: r.timestamp)
            ]

    def close(self) -> None:
        self.engine.dispose()


async def until(
    check: Callable[[], Awaitable[bool]], running: asyncio.Task[None], timeout_s: float = 180
) -> None:
    """Wait until ``check()`` holds; fail at once if the service stopped."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not await check():
        if running.done():
            running.result()  # re-raises what stopped the service
            pytest.fail("the contract service stopped before the condition held")
        if loop.time() > deadline:
            pytest.fail(f"condition not met within {timeout_s} s")
        await asyncio.sleep(0.2)


async def stopped(stop: asyncio.Event, running: asyncio.Task[None]) -> None:
    stop.set()
    await asyncio.wait_for(running, 120)


@pytest.fixture
def scene(secured_kafka: KafkaConnection, tmp_path: Path) -> Any:
    made = Scene(secured_kafka, tmp_path)
    yield made
    made.close()


async def test_the_shipped_file_runs_the_service_which_delivers_and_records_each_delivery(
    scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    scene.environment(monkeypatch, await scene.provision())
    resident = penduduk(uuid.uuid4().int % 9000 + 1000)
    await scene.publish(resident)

    port = free_port_block(1)
    stop = asyncio.Event()
    catalogue = scene.catalogue("catalog.yaml")
    adapter = load_adapter(scene.service_file(catalogue))
    running = asyncio.create_task(run_adapter(adapter, stop=stop, metrics_port=port))
    try:

        async def delivered() -> bool:
            counts = [await scene.records_on(scene.projected(s)) for s in SUBSCRIBERS]
            return counts == [1, 1]

        await until(delivered, running)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            health = await client.get("/healthz")
            metrics = (await client.get("/metrics")).text
    finally:
        await stopped(stop, running)
    assert health.status_code == 200
    # Each contract's end, for the alert 30 days ahead (deploy/monitoring/alerts.yaml).
    expires = {
        (sample.labels["subscriber"], sample.labels["opd"]): sample.value
        for family in text_string_to_metric_families(metrics)
        if family.name == "spbe_subscription_expires_timestamp_seconds"
        for sample in family.samples
    }
    catalog, _ = load_catalog(catalogue)
    assert expires == {
        (sub.subscriber, sub.opd): expiry_timestamp(sub.expires) for sub in catalog.subscriptions
    }

    ((datum, headers),) = await scene.read(scene.projected("dpmptsp-penduduk"))
    assert datum["nik"] == resident.nik
    assert "no_kk" not in datum
    assert from_contract_headers(headers).subscription == "dpmptsp-penduduk"
    answer = scene.ledger.who_received(resident.nik)
    assert sorted(e.subscriber for e in answer.entries) == sorted(SUBSCRIBERS)
    assert {e.event_type for e in answer.entries} == {PENDUDUK}


async def test_a_contract_widened_by_a_field_without_default_restarts_and_delivers_it(
    scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    scene.environment(monkeypatch, await scene.provision())
    topic = scene.projected("dpmptsp-penduduk")
    subject = f"{PENDUDUK}.for.dpmptsp-penduduk"
    before, after = penduduk(uuid.uuid4().int % 9000 + 1000), penduduk(7)

    stop = asyncio.Event()
    first = load_adapter(scene.service_file(scene.catalogue("catalog-v1.yaml")))
    running = asyncio.create_task(run_adapter(first, stop=stop))
    try:
        await scene.publish(before)

        async def one() -> bool:
            return await scene.records_on(topic) == 1

        await until(one, running)
    finally:
        await stopped(stop, running)

    # The PKS is amended: DPMPTSP now receives no_kk, which has no default in the standard.
    stop = asyncio.Event()
    widened = load_adapter(scene.service_file(scene.catalogue("catalog-v2.yaml", widen=True)))
    running = asyncio.create_task(run_adapter(widened, stop=stop))
    try:
        await scene.publish(after)

        async def two() -> bool:
            return await scene.records_on(topic) == 2

        await until(two, running)
        # Both raw events were consumed: the earlier one is not delivered a second time.
        await until(lambda: _settled(scene), running)
    finally:
        await stopped(stop, running)

    (old, _), (new, _) = await scene.read(topic)
    assert old["nik"] == before.nik
    assert "no_kk" not in old
    assert new["nik"] == after.nik
    assert new["no_kk"] == after.no_kk
    assert await scene.records_on(topic) == 2
    assert len(scene.ledger.who_received(before.nik).entries) == 2  # dpmptsp, dinsos: once each

    async with SchemaRegistry(scene.operator, topic=scene.registry_topic) as registry:
        versions = registry.versions(subject)
        assert registry.mode_of(subject) is PROJECTED_MODE is CompatibilityMode.NONE
    assert len(versions) == 2
    # What the subject's mode allows: under BACKWARD the widened projection was refused.
    with pytest.raises(IncompatibleSchemaError, match="no_kk"):
        check_compatible(
            subject, versions[1].schema, [versions[0].schema], CompatibilityMode.BACKWARD
        )


async def _settled(scene: Scene) -> bool:
    """The dinsos projection holds both events too: the service consumed the raw topic."""
    return await scene.records_on(scene.projected("dinsos-penduduk")) == 2
