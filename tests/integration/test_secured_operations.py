"""The client paths ``test_secured_clients`` leaves out, on the secured broker.

The webhook sink as a subscriber with only its catalogue grants; the operator commands
(``replay``, ``dlq``, ``schemas``, ``catalog plan``) with ``--credentials``; an outbox
relay whose password is rotated while its application keeps writing; and ``spbe-bus
snapshot`` from an adapter file whose ``security:`` names a credentials file. Principals
other than the operator are made with ``tests.support.secured`` and given exactly the
grants ``catalog apply`` would give them (bus.ops.access_plan).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from aiokafka import AIOKafkaProducer

from adapters.db import create_engine
from adapters.opd.disdukcapil import siak
from adapters.runner import load_adapter, run_adapter
from adapters.sources.outbox import (
    OutboxRelay,
    OutboxRelayConfig,
    add_to_outbox,
    create_outbox_table,
    outbox_table,
)
from bus.cli.main import main
from bus.connection import KafkaConnection, KafkaSecurity, write_credentials_file
from bus.contract.standard import default_schema_dir
from bus.delivery import Delivery, RetryPolicy, dlq_topic
from bus.errors import KafkaAuthenticationError, PermanentError
from bus.ops.access import register_reviewed_standard, rotate_password
from bus.ops.audit import AuditLog
from bus.publisher import Publisher, PublisherConfig, PublishResult
from bus.registry import DEFAULT_TOPIC as SCHEMAS_TOPIC
from bus.startup import start_client
from bus.subscriber import Subscriber, SubscriberConfig
from bus.topics import ensure_topics
from tests.integration.test_access import TODAY, catalogue
from tests.support.events import SOURCE_DPMPTSP, SOURCE_DUKCAPIL, izin, penduduk
from tests.support.kafka import committed_offsets, read_all
from tests.support.secured import create_user, grant
from tests.support.webhook_receiver import Reply, WebhookReceiver

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

WAIT_S = 120.0
SECRET = b"webhook-secured-secret-0123456789"
KEY_SECRET = "dukcapil-secured-snapshot-secret-0123"


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def _topic(operator: KafkaConnection, prefix: str) -> str:
    name = f"test.{_unique(prefix)}"
    await ensure_topics(operator, {name: 1}, replication_factor=1)
    return name


async def eventually(
    check: Callable[[], bool | Awaitable[bool]], what: str, *watch: asyncio.Task[None]
) -> None:
    """Wait until ``check()`` holds; fail clearly if it never does or a watched task ends."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S

    async def holds() -> bool:
        result = check()
        return await result if inspect.isawaitable(result) else result

    while not await holds():
        for task in watch:
            if task.done():
                task.result()  # re-raises what stopped it
                pytest.fail(f"a task stopped before this held: {what}")
        if loop.time() > deadline:
            pytest.fail(f"not so within {WAIT_S:g} s: {what}")
        await asyncio.sleep(0.2)


def _operator_password(operator: KafkaConnection) -> str:
    assert operator.security.password is not None
    return operator.security.password.get_secret_value()


async def _steward(operator: KafkaConnection, topic: str) -> tuple[str, str]:
    """A steward application's user with a catalogue's grants on ``topic``: (name, password)."""
    name, password = _unique("steward-app"), uuid.uuid4().hex
    await create_user(operator, name, password)
    await grant(operator, name, topic, ["WRITE", "DESCRIBE"])
    await grant(operator, name, "kafka-cluster", ["IDEMPOTENT_WRITE"], resource_type="CLUSTER")
    await grant(operator, name, SCHEMAS_TOPIC, ["READ", "DESCRIBE"])
    await register_reviewed_standard(operator)  # the operator is the registry's writer
    return name, password


def _as_user(operator: KafkaConnection, user: str, password: str) -> KafkaSecurity:
    return operator.security.model_copy(update={"credentials_file": None}).with_user(user, password)


def _credentials(path: Path, operator: KafkaConnection, user: str, password: str) -> Path:
    """A hand-over file for ``user``, as ``catalog apply`` writes one."""
    security = _as_user(operator, user, password)
    return write_credentials_file(path, operator.bootstrap_servers, security)


async def _publish(operator: KafkaConnection, topic: str, *keys: int) -> list[PublishResult]:
    """Publish ``IzinDiterbitkan`` number ``key`` for each of ``keys`` as the operator."""
    config = PublisherConfig(
        bootstrap_servers=operator.bootstrap_servers,
        security=operator.security,
        source=SOURCE_DPMPTSP,
        topic_overrides={"IzinDiterbitkan": topic},
    )
    async with Publisher(config) as publisher:
        results = [await publisher.publish(izin(key), sequence=1) for key in keys]
    return [r for r in results if isinstance(r, PublishResult)]


# -- 1. the webhook sink with a subscriber's grants only -------------------------------------


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(SECRET) as running:
        yield running


async def test_a_webhook_sink_consumes_and_dead_letters_with_only_its_subscription_grants(
    secured_kafka: KafkaConnection, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    topic = await _topic(secured_kafka, "secured-webhook")
    subscriber = _unique("bapenda-webhook")
    dead_letters = dlq_topic(topic, subscriber)
    await ensure_topics(secured_kafka, {dead_letters: 1}, replication_factor=1)
    await register_reviewed_standard(secured_kafka)
    password = uuid.uuid4().hex
    await create_user(secured_kafka, subscriber, password)
    await grant(secured_kafka, subscriber, topic, ["READ", "DESCRIBE"])
    await grant(secured_kafka, subscriber, subscriber, ["READ"], resource_type="GROUP")
    await grant(secured_kafka, subscriber, dead_letters, ["WRITE", "DESCRIBE"])
    await grant(secured_kafka, subscriber, SCHEMAS_TOPIC, ["READ", "DESCRIBE"])
    credentials = _credentials(tmp_path / f"{subscriber}.json", secured_kafka, subscriber, password)

    refused, accepted = await _publish(secured_kafka, topic, 1, 2)
    receiver.script(Reply(400, body=b"kbli tidak dikenal"))
    adapter = tmp_path / "webhook.yaml"
    adapter.write_text(
        "kind: webhook-sink\n"
        "subscription:\n"
        f"  bootstrap_servers: {secured_kafka.bootstrap_servers}\n"
        f"  subscriber_id: {subscriber}\n"
        f"  topics: [{topic}]\n"
        f"  security: {{credentials_file: '{credentials}'}}\n"
        "  retry: {max_attempts: 2, initial_backoff_ms: 10, max_backoff_ms: 50}\n"
        f"webhook: {{url: '{receiver.url}', secret: {SECRET.decode()}}}\n"
    )
    stop = asyncio.Event()
    running = asyncio.create_task(run_adapter(load_adapter(adapter), stop=stop))
    try:
        await eventually(lambda: len(receiver.requests) >= 2, "both events arrived", running)
        (dead,) = await read_all(secured_kafka, dead_letters, 1, timeout_s=WAIT_S)

        async def both_committed() -> bool:
            offsets = await committed_offsets(secured_kafka, subscriber)
            return sum(offsets.values()) == 2

        await eventually(both_committed, "the subscriber's own group committed both", running)
    finally:
        stop.set()
        await asyncio.wait_for(running, WAIT_S)
    assert [(r.event_id, r.reply.status) for r in receiver.requests[:2]] == [
        (refused.event_id, 400),
        (accepted.event_id, 200),
    ]
    assert all(r.signature_error is None for r in receiver.requests)
    assert dict(dead.headers)["ce_id"] == refused.event_id.encode()


# -- 2. operator commands with --credentials -------------------------------------------------


async def _dead_letter_everything(operator: KafkaConnection, topic: str, subscriber: str) -> None:
    """Publish three events, then let ``subscriber`` refuse each into its dead letter topic."""
    await _publish(operator, topic, 0, 1, 2)

    async def refuse(delivery: Delivery) -> None:
        raise PermanentError("kolom tidak cocok")

    config = SubscriberConfig(
        bootstrap_servers=operator.bootstrap_servers,
        security=operator.security,
        subscriber_id=subscriber,
        topics=(topic,),
        dlq_replication_factor=1,
        retry=RetryPolicy(max_attempts=1, initial_backoff_ms=10, max_backoff_ms=50, jitter_ms=0),
    )
    async with Subscriber(config, refuse) as running:
        task = asyncio.create_task(running.run())
        await eventually(lambda: running.stats.dead_lettered == 3, "three dead letters", task)
        running.request_stop()
        await task


async def test_operator_commands_run_with_a_credentials_file_and_print_no_password(
    secured_kafka: KafkaConnection,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for variable in [v for v in os.environ if v.startswith("SPBE_KAFKA_")]:
        monkeypatch.delenv(variable)  # the credentials file alone says where and how
    credentials = secured_kafka.security.credentials_file
    assert credentials is not None
    topic = await _topic(secured_kafka, "secured-operations")
    subscriber = _unique("dinsos-ops")
    await _dead_letter_everything(secured_kafka, topic, subscriber)
    await register_reviewed_standard(secured_kafka)
    tag = uuid.uuid4().hex[:8]
    catalog_file = tmp_path / "catalog.yaml"
    catalog_file.write_text(
        yaml.safe_dump(catalogue(tag).model_dump(mode="json", exclude_defaults=True))
    )
    registry = _unique("_test.schemas")
    given = ["--credentials", str(credentials)]
    capsys.readouterr()
    printed: list[str] = []

    async def cli(*argv: str) -> str:
        code = await asyncio.to_thread(main, [*argv, *given])
        captured = capsys.readouterr()
        printed.append(captured.out + captured.err)
        assert code == 0, f"spbe-bus {' '.join(argv)} exited {code}:\n{printed[-1]}"
        return captured.out

    replay = ["replay", "--subscriber", subscriber, "--topic", topic]
    await cli(*replay, "--from-offsets", "0:0", "--reason", "uji secured")
    assert set((await committed_offsets(secured_kafka, subscriber)).values()) == {0}

    listed = json.loads(await cli("dlq", "list", "--subscriber", subscriber, "--json"))
    assert [v["original"]["offset"] for v in listed["topics"][topic]] == [0, 1, 2]
    purge = ["dlq", "purge", "--subscriber", subscriber, "--topic", topic, "--to-offset", "2"]
    assert "purged 3 dead letter(s)" in await cli(*purge, "--reason", "ditinjau")

    registered = await cli(
        "schemas", "register", "--schemas", str(default_schema_dir()), "--registry-topic", registry
    )
    lines = registered.splitlines()
    assert len(lines) == len(list(default_schema_dir().glob("*.avsc")))
    assert all(line.startswith("new ") for line in lines)
    listing = await cli("schemas", "list")
    assert "id.go.spbe.dukcapil.PendudukUpdated.v1" in listing

    plan = ["catalog", "plan", "--catalog", str(catalog_file), "--as-of", TODAY.isoformat()]
    planned = await cli(*plan)
    assert f"access of disdukcapil-siak{tag}" in planned
    assert all(_operator_password(secured_kafka) not in text for text in printed)


# -- 3. rotation while the application keeps writing -----------------------------------------


async def _old_password_refused(connection: KafkaConnection) -> bool:
    """A new connection with ``connection``'s password: refused as bad credentials?"""
    try:
        producer = await start_client(
            lambda: AIOKafkaProducer(**connection.aiokafka_options(), request_timeout_ms=10_000),
            "start a producer with the old password",
            bootstrap_servers=connection.bootstrap_servers,
            security=connection.security,
            timeout_s=30,
        )
    except KafkaAuthenticationError:
        return True
    await producer.stop()
    return False


async def test_a_relay_rotated_mid_stream_loses_no_event(
    secured_kafka: KafkaConnection, tmp_path: Path
) -> None:
    topic = await _topic(secured_kafka, "secured-rotation")
    user, password = await _steward(secured_kafka, topic)
    database = f"sqlite:///{tmp_path / 'sicantik.db'}"
    engine = create_engine(database)
    create_outbox_table(engine)
    written: list[str] = []
    keep_writing = asyncio.Event()
    keep_writing.set()

    def write_one() -> None:
        key = len(written)
        with engine.begin() as conn:
            written.append(add_to_outbox(conn, izin(key), aggregate_id=f"izin-{key}", sequence=1))

    async def application() -> None:
        while keep_writing.is_set():
            await asyncio.to_thread(write_one)
            await asyncio.sleep(0.05)

    def published() -> int:
        table = outbox_table()
        with engine.connect() as conn:
            query = sa.select(sa.func.count()).where(table.c.published_at.is_not(None))
            return int(conn.execute(query).scalar_one())

    async def published_at_least(count: int) -> bool:
        return await asyncio.to_thread(published) >= count

    def relay_config(security: KafkaSecurity) -> OutboxRelayConfig:
        return OutboxRelayConfig.model_validate(
            {
                "database_url": database,
                "bootstrap_servers": secured_kafka.bootstrap_servers,
                "security": security,
                "source": SOURCE_DPMPTSP,
                "topic_overrides": {"IzinDiterbitkan": topic},
                "poll_interval_ms": 100,
                "retention_hours": 1000,
            }
        )

    old = _as_user(secured_kafka, user, password)
    writing = asyncio.create_task(application())
    async with OutboxRelay(relay_config(old)) as first:
        relaying = asyncio.create_task(first.run())
        await eventually(lambda: published_at_least(5), "published, first password", relaying)
        async with AuditLog(secured_kafka) as audit:
            handover = await rotate_password(
                secured_kafka, user, handover_dir=tmp_path / "handover", audit=audit, reason="uji"
            )
        at_rotation = len(written)
        old_connection = KafkaConnection(
            bootstrap_servers=secured_kafka.bootstrap_servers, security=old
        )
        await eventually(
            lambda: _old_password_refused(old_connection), "the old password is refused", writing
        )
        first.request_stop()
        await asyncio.wait_for(relaying, WAIT_S)
    after_first = await asyncio.to_thread(published)

    async with OutboxRelay(relay_config(KafkaSecurity(credentials_file=handover))) as second:
        relaying = asyncio.create_task(second.run())
        more = after_first + 5
        await eventually(lambda: published_at_least(more), "published, new password", relaying)
        keep_writing.clear()
        await writing
        every = len(written)
        await eventually(lambda: published_at_least(every), "every row published", relaying)
        second.request_stop()
        await asyncio.wait_for(relaying, WAIT_S)
    engine.dispose()
    assert len(written) > at_rotation, "rows were written after the rotation"
    records = await read_all(secured_kafka, topic, len(written), timeout_s=WAIT_S)
    ids = {dict(r.headers)["ce_id"].decode() for r in records}
    assert ids == set(written), "every row's event is in the topic (at least once)"
    assert len(set(written)) == len(written)


# -- 4. spbe-bus snapshot from an adapter file with a credentials file -----------------------


async def test_the_snapshot_command_publishes_with_the_credentials_file_of_its_adapter_file(
    secured_kafka: KafkaConnection, tmp_path: Path
) -> None:
    topic = await _topic(secured_kafka, "secured-snapshot")
    user, password = await _steward(secured_kafka, topic)
    credentials = _credentials(tmp_path / f"{user}.json", secured_kafka, user, password)
    database = f"sqlite:///{tmp_path / 'siak.db'}"
    engine = create_engine(database)
    siak.create_tables(engine)
    siak.impor_penduduk(engine, [(penduduk(serial), 1) for serial in range(1, 13)])
    engine.dispose()
    adapter = tmp_path / "disdukcapil-outbox-relay.yaml"
    adapter.write_text(
        "kind: outbox-relay\n"
        "relay:\n"
        f"  database_url: {database}\n"
        f"  bootstrap_servers: {secured_kafka.bootstrap_servers}\n"
        f"  security: {{credentials_file: '{credentials}'}}\n"
        f"  source: {SOURCE_DUKCAPIL}\n"
        f"  key_secret: {KEY_SECRET}\n"
        f"  topic_overrides: {{PendudukUpdated: {topic}}}\n"
        "snapshot: {table: penduduk, key_column: nik, version_column: versi, batch_size: 5,\n"
        "           event: 'adapters.opd.disdukcapil.siak:snapshot_event'}\n"
    )
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SPBE_KAFKA_")}
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bus.cli.main", "snapshot", str(adapter), "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=environment,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["finished"], summary["published"]) == (True, 12)
    assert password not in done.stdout + done.stderr
    records = await read_all(secured_kafka, topic, 12, timeout_s=WAIT_S)
    assert len(records) == 12
    assert {dict(r.headers)["ce_snapshot"] for r in records} == {b"true"}
