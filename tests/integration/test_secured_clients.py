"""Every client path once on the secured cluster (SASL_SSL, SCRAM-SHA-512, the local CA).

Each test connects as the operator, a super user, so no ACLs are needed: what is proven
here is that each client builds its connection from the one security setting (the
denials and the catalogue's ACLs have tests of their own). The bulk of the suite stays
on the plaintext broker.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from adapters.runner import load_adapter, run_adapter
from adapters.sources.outbox import add_to_outbox, create_outbox_table
from bench import consume, publish, workload
from bench.environment import create_topic
from bus.cli.main import main
from bus.connection import KafkaConnection, write_credentials_file
from bus.contract.standard import load_standard
from bus.delivery import Delivery, Outcome
from bus.ops.audit import AuditLog, new_record, read_audit
from bus.publisher import Publisher, PublisherConfig, PublishResult
from bus.registry import SchemaRegistry
from bus.subscriber import Subscriber, SubscriberConfig
from bus.topics import ensure_topics
from tests.support.events import SOURCE_DPMPTSP, izin

pytestmark = pytest.mark.integration

PASSWORD_VARIABLE = "SPBE_TEST_SECURED_PASSWORD"


def _unique(prefix: str) -> str:
    return f"{prefix}.{uuid.uuid4().hex[:10]}"


async def _topic(connection: KafkaConnection) -> str:
    name = _unique("test.secured")
    await ensure_topics(connection, {name: 1}, replication_factor=1)
    return name


async def test_a_publisher_and_a_subscriber_exchange_an_event_over_sasl_ssl(
    secured_kafka: KafkaConnection,
) -> None:
    topic = await _topic(secured_kafka)
    publishing = PublisherConfig(
        bootstrap_servers=secured_kafka.bootstrap_servers,
        security=secured_kafka.security,
        source=SOURCE_DPMPTSP,
        topic_overrides={"IzinDiterbitkan": topic},
    )
    async with Publisher(publishing) as publisher:
        result = await publisher.publish(izin(1), sequence=1)
    assert isinstance(result, PublishResult)
    received: list[Delivery] = []

    async def apply(delivery: Delivery) -> Outcome:
        received.append(delivery)
        subscriber.request_stop()
        return Outcome.APPLIED

    subscribing = SubscriberConfig(
        bootstrap_servers=secured_kafka.bootstrap_servers,
        security=secured_kafka.security,
        subscriber_id=_unique("secured-subscriber").replace(".", "-"),
        topics=(topic,),
        dlq_replication_factor=1,
    )
    async with Subscriber(subscribing, apply) as subscriber:
        await asyncio.wait_for(subscriber.run(), 180)
    assert [d.event for d in received] == [izin(1)]


async def test_the_registry_registers_and_reads_back_over_sasl_ssl(
    secured_kafka: KafkaConnection,
) -> None:
    topic = _unique("_test.schemas")
    schema = load_standard()["IzinDiterbitkan"]
    async with SchemaRegistry(secured_kafka, topic=topic, principal="uji") as writer:
        registered = await writer.register(schema)
    async with SchemaRegistry(secured_kafka, topic=topic) as reader:
        assert reader.latest(registered.subject) == registered


async def test_the_audit_log_writes_and_reads_over_sasl_ssl(
    secured_kafka: KafkaConnection,
) -> None:
    topic = _unique("_test.audit")
    entry = new_record(
        "test.secured", subscriber="dpmptsp-penduduk", topics=[topic], reason="secured test"
    )
    async with AuditLog(secured_kafka, topic=topic) as audit:
        await audit.record(entry)
    assert [r.action for r in await read_audit(secured_kafka, topic=topic)] == ["test.secured"]


def _security_section(connection: KafkaConnection, indent: str) -> str:
    """The adapter file's ``security:`` mapping of ``connection``, the password by ${ENV}."""
    security = connection.security
    lines = [
        "security:",
        f"  protocol: {security.protocol}",
        f"  sasl_mechanism: {security.sasl_mechanism}",
        f"  username: {security.username}",
        f"  password: ${{{PASSWORD_VARIABLE}}}",
        f"  check_hostname: {str(security.check_hostname).lower()}",
    ]
    for name in ("ca_file", "cert_file", "key_file"):
        if (path := getattr(security, name)) is not None:
            lines.append(f"  {name}: {path}")
    return "".join(f"{indent}{line}\n" for line in lines)


async def test_an_outbox_relay_feeds_a_sql_sink_from_adapter_files_over_sasl_ssl(
    secured_kafka: KafkaConnection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert secured_kafka.security.password is not None
    monkeypatch.setenv(PASSWORD_VARIABLE, secured_kafka.security.password.get_secret_value())
    topic = await _topic(secured_kafka)
    source_db, replica_db = tmp_path / "sicantik.db", tmp_path / "bapenda.db"
    engine = sa.create_engine(f"sqlite:///{source_db}")
    create_outbox_table(engine)
    with engine.begin() as conn:
        for key in range(3):
            add_to_outbox(conn, izin(key), aggregate_id=izin(key).nomor_izin, sequence=1)
    engine.dispose()
    relay_file = tmp_path / "relay.yaml"
    relay_file.write_text(
        "kind: outbox-relay\n"
        "relay:\n"
        f"  database_url: sqlite:///{source_db}\n"
        f"  bootstrap_servers: {secured_kafka.bootstrap_servers}\n"
        f"  source: {SOURCE_DPMPTSP}\n"
        f"  topic_overrides: {{IzinDiterbitkan: {topic}}}\n"
        + _security_section(secured_kafka, "  ")
    )
    sink_file = tmp_path / "sink.yaml"
    sink_file.write_text(
        "kind: sql-sink\n"
        "subscription:\n"
        f"  bootstrap_servers: {secured_kafka.bootstrap_servers}\n"
        f"  subscriber_id: {_unique('secured-sink').replace('.', '-')}\n"
        f"  topics: [{topic}]\n"
        "  dlq_replication_factor: 1\n" + _security_section(secured_kafka, "  ") + "sink:\n"
        f"  database_url: sqlite:///{replica_db}\n"
        "  table: wajib_pajak_potensial\n"
        "  key_column: nomor_izin\n"
        "  create_tables: true\n"
        "  events:\n"
        "    IzinDiterbitkan:\n"
        "      key: nomor_izin\n"
        "      columns: {nama_usaha: nama_usaha}\n"
    )
    stop = asyncio.Event()
    running = [
        asyncio.create_task(run_adapter(load_adapter(path), stop=stop))
        for path in (relay_file, sink_file)
    ]

    def replicated() -> int:
        if not replica_db.exists():
            return 0
        replica = sa.create_engine(f"sqlite:///{replica_db}")
        try:
            with replica.connect() as conn:
                query = sa.text("SELECT COUNT(*) FROM wajib_pajak_potensial")
                return int(conn.execute(query).scalar_one())
        except sa.exc.OperationalError:
            return 0
        finally:
            replica.dispose()

    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 180
        while replicated() < 3:
            for task in running:
                if task.done():
                    task.result()  # re-raises what stopped the adapter
                    pytest.fail("an adapter stopped before every event was applied")
            if loop.time() > deadline:
                pytest.fail(f"{replicated()} of 3 events applied within 180 s")
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*running), 120)
    assert replicated() == 3


def test_an_operator_command_connects_with_a_credentials_file(
    secured_kafka: KafkaConnection, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    credentials = write_credentials_file(
        tmp_path / "operator.json", secured_kafka.bootstrap_servers, secured_kafka.security
    )
    command = ["status", "--credentials", str(credentials), "--subscriber", "dpmptsp-penduduk"]
    code = main([*command, "--json"])
    captured = capsys.readouterr()
    report = json.loads(captured.out)  # read from the brokers: a failed connection prints none
    assert [s["subscriber"] for s in report["subscribers"]] == ["dpmptsp-penduduk"]
    # Other tests' topics decide whether the catalogue's topic exists on this cluster yet.
    assert all(b.endswith("does not exist") for b in report["breaches"])
    assert code == (1 if report["breaches"] else 0)
    assert secured_kafka.security.password is not None
    assert secured_kafka.security.password.get_secret_value() not in captured.out + captured.err


def test_the_bench_publishes_and_consumes_over_sasl_ssl(secured_kafka: KafkaConnection) -> None:
    """Each publish and consume measurement of ``make bench`` runs on a secured connection."""
    count = 40
    topics = [asyncio.run(create_topic(secured_kafka, _unique("bench.secured"), 2)) for _ in "rbck"]
    records = list(workload.wire_records(1, count))
    events = workload.events(1, count)
    rates = [
        publish.raw_aiokafka(secured_kafka, topics[0], records, 10),
        publish.raw_aiokafka_batches(secured_kafka, topics[1], records, 10),
        publish.bus_publisher(secured_kafka, topics[2], events, 10),
        publish.confluent_producer(secured_kafka, topics[3], records),
        consume.raw_aiokafka(secured_kafka, topics[2], count),
        consume.bus_subscriber(secured_kafka, topics[2], count),
    ]
    assert all(rate > 0 for rate in rates)
