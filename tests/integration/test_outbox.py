"""The outbox relay against real databases and the real broker: order, crashes, purge, bad rows."""

from __future__ import annotations

import asyncio
import io
import json
import re
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiokafka.structs import ConsumerRecord

from adapters.db import Dialect, create_engine, dialect_of
from adapters.sources.outbox import (
    OutboxRelay,
    OutboxRelayConfig,
    RelayStats,
    add_to_outbox,
    create_outbox_table,
    outbox_table,
)
from bus.contract.envelope import new_event_id, pseudonymise
from bus.contract.events import IzinDiterbitkan
from bus.contract.plan import OutgoingRecord
from bus.contract.standard import example
from bus.errors import ConfigError, PublishError
from bus.ops.metrics import default_metrics
from bus.publisher import Publisher, PublishResult
from tests.conftest import TopicFactory
from tests.support.events import SOURCE_DPMPTSP, SOURCE_DUKCAPIL, izin, penduduk
from tests.support.kafka import read_all

pytestmark = pytest.mark.integration

DOCS = Path(__file__).resolve().parents[2] / "docs" / "outbox.md"
KEY_SECRET = b"dukcapil-test-secret-0123456789"
OUTBOX = outbox_table()
IZIN = sa.Table(
    "izin_usaha",
    sa.MetaData(),
    sa.Column("nomor_izin", sa.String(100), primary_key=True),
    sa.Column("nama_usaha", sa.String(255), nullable=False),
    sa.Column("versi", sa.Integer, nullable=False),
)
Record = ConsumerRecord[bytes, bytes]
#: A relay in its own process, configured by the JSON in argv[1], running until killed.
RELAY_PROCESS = """
import asyncio, sys
from adapters.sources.outbox import OutboxRelay, OutboxRelayConfig

async def main() -> None:
    config = OutboxRelayConfig.model_validate_json(sys.argv[1])
    async with OutboxRelay(config) as relay:
        await relay.run_until_signal()

asyncio.run(main())
"""


# -- helpers -----------------------------------------------------------------------------


async def eventually(
    check: Callable[[], bool], *, timeout_s: float = 180.0, watch: Sequence[asyncio.Task[None]] = ()
) -> None:
    """Wait until ``check()`` holds; fail clearly if it never does or a watched task dies."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not await asyncio.to_thread(check):
        for task in watch:
            if task.done():
                task.result()
                pytest.fail("a relay stopped before the condition held")
        if loop.time() > deadline:
            pytest.fail(f"condition not met within {timeout_s}s")
        await asyncio.sleep(0.1)


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    """The application's database: its business table and the outbox table."""
    engine = create_engine(database_url)
    IZIN.metadata.create_all(engine)
    create_outbox_table(engine)
    yield engine
    engine.dispose()


def relay_config(database_url: str, bootstrap: str, topic: str, **extra: Any) -> OutboxRelayConfig:
    return OutboxRelayConfig.model_validate(
        {
            "database_url": database_url,
            "bootstrap_servers": bootstrap,
            "source": SOURCE_DPMPTSP,
            "topic_overrides": {"IzinDiterbitkan": topic},
            "poll_interval_ms": 50,
            "retry_backoff_ms": 1,
            "max_retry_backoff_ms": 1,
            **extra,
        }
    )


def change_izin(engine: sa.Engine, key: int, versi: int) -> str:
    """What the application does: change the permit and add its event, in one transaction."""
    event = izin(key, nama_usaha=f"Usaha {key} versi {versi}")
    with engine.begin() as conn:
        updated = conn.execute(
            IZIN.update()
            .where(IZIN.c.nomor_izin == event.nomor_izin)
            .values(nama_usaha=event.nama_usaha, versi=versi)
        )
        if updated.rowcount == 0:
            conn.execute(
                IZIN.insert().values(
                    nomor_izin=event.nomor_izin, nama_usaha=event.nama_usaha, versi=versi
                )
            )
        return add_to_outbox(conn, event, aggregate_id=event.nomor_izin, sequence=versi)


def write_interleaved(engine: sa.Engine, keys: int, versions: int) -> list[str]:
    """``versions`` changes of each of ``keys`` permits, interleaved; the stored event ids."""
    return [change_izin(engine, k, v) for v in range(1, versions + 1) for k in range(keys)]


def insert_raw(engine: sa.Engine, **values: Any) -> int:
    """An outbox row as a PHP or Java application writes it: plain SQL, no validation."""
    values.setdefault("event_id", new_event_id())
    values.setdefault("event_type", "IzinDiterbitkan")
    with engine.begin() as conn:
        inserted = conn.execute(OUTBOX.insert().values(**values))
        return int(inserted.inserted_primary_key[0])


def izin_json(key: int, versi: int, **changes: Any) -> str:
    data = izin(key, nama_usaha=f"Usaha {key} versi {versi}").to_json()
    for path, value in changes.items():
        target = data
        *parents, leaf = path.split(".")
        for parent in parents:
            target = target[parent]
        target[leaf] = value
    return json.dumps(data)


def rows(engine: sa.Engine) -> dict[int, sa.Row[Any]]:
    with engine.connect() as conn:
        return {row.id: row for row in conn.execute(sa.select(OUTBOX))}


def unpublished(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        query = sa.select(sa.func.count()).where(OUTBOX.c.published_at.is_(None))
        return int(conn.execute(query).scalar_one())


def header(record: Record, name: str) -> str:
    return dict(record.headers)[name].decode()


def first_occurrences(records: list[Record]) -> dict[bytes, list[int]]:
    """Per Kafka key, ce_sequence of each event id's first appearance, in offset order."""
    seen: set[str] = set()
    per_key: dict[bytes, list[int]] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        event_id = header(record, "ce_id")
        if event_id in seen:
            continue
        seen.add(event_id)
        assert record.key is not None
        per_key.setdefault(record.key, []).append(int(header(record, "ce_sequence")))
    return per_key


async def run_until_drained(relay: OutboxRelay, engine: sa.Engine) -> None:
    runner = asyncio.create_task(relay.run())
    await eventually(lambda: unpublished(engine) == 0, watch=[runner])
    relay.request_stop()
    await runner


# -- order and atomicity -----------------------------------------------------------------


async def test_events_committed_with_their_business_rows_reach_the_topic_in_per_aggregate_order(
    engine: sa.Engine, database_url: str, kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic(partitions=3)
    stored = write_interleaved(engine, keys=6, versions=5)

    def failing_transaction() -> None:
        with engine.begin() as conn:
            event = izin(99, nama_usaha="Dibatalkan")
            conn.execute(IZIN.insert().values(nomor_izin=event.nomor_izin, nama_usaha="x", versi=1))
            add_to_outbox(conn, event, aggregate_id=event.nomor_izin, sequence=1)
            raise RuntimeError("the application's transaction fails after writing both rows")

    with pytest.raises(RuntimeError):
        failing_transaction()

    config = relay_config(database_url, kafka_bootstrap, topic, batch_size=4)
    async with OutboxRelay(config) as relay:
        await run_until_drained(relay, engine)
    assert relay.stats.published == len(stored)
    assert relay.stats.failed == 0

    records = await read_all(kafka_bootstrap, topic, len(stored))
    assert sorted(header(r, "ce_id") for r in records) == sorted(stored)
    assert all(header(r, "ce_source") == SOURCE_DPMPTSP for r in records)
    per_key = first_occurrences(records)
    assert len(per_key) == 6
    assert all(sequences == [1, 2, 3, 4, 5] for sequences in per_key.values())
    assert all(r.published_at is not None and r.attempts == 0 for r in rows(engine).values())
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(IZIN)).scalar_one() == 6


async def test_a_relay_that_dies_between_publish_and_mark_republishes_the_same_event_ids(
    engine: sa.Engine, database_url: str, kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    class Crash(Exception):
        pass

    class DiesBeforeMark(OutboxRelay):
        async def _mark(self, claim: Any, outcome: Any) -> None:
            raise Crash("the process died after the broker acknowledged, before the mark")

    topic = await new_topic(partitions=2)
    stored = write_interleaved(engine, keys=4, versions=3)
    config = relay_config(database_url, kafka_bootstrap, topic)

    async with DiesBeforeMark(config) as dying:
        with pytest.raises(Crash):
            await dying.run_once()
    assert unpublished(engine) == len(stored), "nothing was marked"
    first_run = await read_all(kafka_bootstrap, topic, len(stored))
    assert sorted(header(r, "ce_id") for r in first_run) == sorted(stored)

    async with OutboxRelay(config) as relay:
        await run_until_drained(relay, engine)

    records = await read_all(kafka_bootstrap, topic, 2 * len(stored))
    ids = [header(r, "ce_id") for r in records]
    assert sorted(ids) == sorted(stored * 2), "each event twice, with its stored id; none lost"
    assert all(sequences == [1, 2, 3] for sequences in first_occurrences(records).values())


async def test_a_relay_killed_mid_stream_loses_no_event_and_a_new_relay_finishes(
    engine: sa.Engine,
    database_url: str,
    kafka_bootstrap: str,
    new_topic: TopicFactory,
) -> None:
    topic = await new_topic(partitions=3)
    stored = write_interleaved(engine, keys=20, versions=20)
    config = relay_config(database_url, kafka_bootstrap, topic, batch_size=3)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        RELAY_PROCESS,
        # The secret travels in the clear to the child only: a dump masks it.
        json.dumps(
            {**config.model_dump(mode="json"), "database_url": database_url},
        ),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await eventually(lambda: unpublished(engine) <= len(stored) - 40)
    finally:
        process.send_signal(signal.SIGKILL)
        await asyncio.wait_for(process.wait(), 60)
    assert unpublished(engine) > 0, "the kill happened mid-stream"

    async with OutboxRelay(relay_config(database_url, kafka_bootstrap, topic)) as relay:
        await run_until_drained(relay, engine)

    records = await read_all(kafka_bootstrap, topic, len(stored))
    assert {header(r, "ce_id") for r in records} == set(stored)
    out_of_order = {k: s for k, s in first_occurrences(records).items() if s != list(range(1, 21))}
    assert out_of_order == {}


@pytest.mark.parametrize("database_url", ["postgres", "mariadb"], indirect=True)
async def test_two_relays_at_once_publish_every_row_exactly_once_in_per_aggregate_order(
    engine: sa.Engine, database_url: str, kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic(partitions=3)
    # More keys than one batch holds, fewer than two: a relay that claimed any unpublished
    # row (not only heads) would publish a key's next version while its previous is in flight.
    stored = write_interleaved(engine, keys=8, versions=25)
    config = relay_config(database_url, kafka_bootstrap, topic, batch_size=6)

    async with OutboxRelay(config) as first, OutboxRelay(config) as second:
        runners = [asyncio.create_task(first.run()), asyncio.create_task(second.run())]
        await eventually(lambda: unpublished(engine) == 0, watch=runners)
        first.request_stop()
        second.request_stop()
        await asyncio.gather(*runners)

    assert first.stats.published + second.stats.published == len(stored)
    # Which relay publishes how many rows is up to scheduling (one can take the whole
    # backlog before the other's first claim, seen on both servers), so the test holds the
    # outcome that must never vary: every row once, in per-aggregate order.
    records = await read_all(kafka_bootstrap, topic, len(stored))
    ids = [header(r, "ce_id") for r in records]
    assert sorted(ids) == sorted(stored), "no row was published by both relays"
    out_of_order = {k: s for k, s in first_occurrences(records).items() if s != list(range(1, 26))}
    assert out_of_order == {}


# -- rows that cannot be published -------------------------------------------------------


async def test_an_invalid_payload_is_recorded_with_its_field_problems_and_blocks_only_its_aggregate(
    engine: sa.Engine, database_url: str, kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic()
    a, b = izin(1).nomor_izin, izin(2).nomor_izin
    a1 = insert_raw(engine, aggregate_id=a, sequence=1, payload=izin_json(1, 1))
    a2 = insert_raw(
        engine,
        aggregate_id=a,
        sequence=2,
        payload=izin_json(1, 2, nib="12AB", **{"kbli.kode": "9"}),
    )
    a3 = insert_raw(engine, aggregate_id=a, sequence=3, payload=izin_json(1, 3))
    b_rows = [
        insert_raw(engine, aggregate_id=b, sequence=s, payload=izin_json(2, s)) for s in (1, 2)
    ]
    not_json = insert_raw(engine, aggregate_id="C", sequence=1, payload="{'nomor_izin': 3")
    unknown = insert_raw(engine, aggregate_id="D", event_type="IzinDicabut", payload="{}")
    not_v7 = insert_raw(
        engine,
        aggregate_id="E",
        event_id="1b4e28ba-2fa1-41d2-883f-0016d3cca427",
        payload=izin_json(5, 1),
    )
    hour = 3_600_000
    config = relay_config(
        database_url, kafka_bootstrap, topic, retry_backoff_ms=hour, max_retry_backoff_ms=hour
    )

    async with OutboxRelay(config) as relay:
        assert await relay.run_once() == RelayStats(claimed=8, published=3, failed=4)
        state = rows(engine)
        assert [state[i].published_at is not None for i in (a1, a2, a3, *b_rows)] == [
            True,
            False,
            False,
            True,
            True,
        ]
        for failed in (a2, not_json, unknown, not_v7):
            assert state[failed].attempts == 1
            assert state[failed].next_attempt_at > datetime.now(UTC) + timedelta(minutes=30)
        assert state[a3].attempts == 0, "a row behind a failed one is not attempted"
        error = state[a2].last_error
        assert "EventValidationError" in error
        assert "nib" in error
        assert "13 digits" in error
        assert "kbli.kode" in error
        assert "12AB" not in error, "last_error never echoes a value"
        assert "is not valid JSON" in state[not_json].last_error
        assert "nomor_izin" not in state[not_json].last_error
        assert "event_type" in state[unknown].last_error
        assert "UUIDv7" in state[not_v7].last_error

        assert await relay.run_once() == RelayStats(), "failed rows wait for their retry time"

        with engine.begin() as conn:
            conn.execute(
                OUTBOX.update()
                .where(OUTBOX.c.id == a2)
                .values(payload=izin_json(1, 2), next_attempt_at=None)
            )
        assert await relay.run_once() == RelayStats(claimed=2, published=2, failed=0)

    records = await read_all(kafka_bootstrap, topic, 5)
    assert first_occurrences(records)[a.encode()] == [1, 2, 3]
    assert rows(engine)[a2].attempts == 1, "attempts stay as history"


async def test_a_publish_error_leaves_the_row_for_a_later_cycle_and_holds_back_its_aggregate(
    engine: sa.Engine, database_url: str, kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic()
    config = relay_config(database_url, kafka_bootstrap, topic)
    refused: set[str] = set()

    class BrokerHiccup(Publisher):
        """Every record goes out; the broker's answer for permit 1, version 1 is lost."""

        async def publish_records(
            self, records: Sequence[OutgoingRecord]
        ) -> list[PublishResult | PublishError]:
            results = await super().publish_records(records)
            for i, record in enumerate(records):
                envelope = record.envelope
                first = envelope.sequence == 1 and not refused
                if record.key == izin(1).nomor_izin.encode() and first:
                    refused.add(envelope.id)
                    results[i] = PublishError(
                        "not acknowledged: RequestTimedOutError", retriable=True
                    )
            return results

    stored = write_interleaved(engine, keys=2, versions=2)
    async with BrokerHiccup(config.publisher_config()) as publisher:
        async with OutboxRelay(config, publisher=publisher) as relay:
            first = await relay.run_once()
            assert first == RelayStats(claimed=4, published=2, failed=1)
            state = rows(engine)
            failed = next(r for r in state.values() if r.event_id in refused)
            assert failed.published_at is None
            assert failed.attempts == 1
            assert "PublishError" in failed.last_error
            (behind,) = [
                r
                for r in state.values()
                if r.aggregate_id == failed.aggregate_id and r.sequence == 2
            ]
            assert behind.published_at is None, "sent, but not marked after the failed row"
            assert behind.attempts == 0
            await run_until_drained(relay, engine)
        assert publisher._producer is not None, "a publisher passed in is left running"

    records = await read_all(kafka_bootstrap, topic, len(stored))
    assert all(s == [1, 2] for s in first_occurrences(records).values())
    # What Prometheus sees: every acknowledgement (the row sent behind the lost one too,
    # and both again after it), and the one the broker did not give.
    registry = default_metrics().registry
    assert registry.get_sample_value("spbe_published_total", {"topic": topic}) == 5
    failures = {"topic": topic, "error": "PublishError"}
    assert registry.get_sample_value("spbe_publish_failures_total", failures) == 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_started_relay_exports_its_topics_at_zero_so_a_silent_steward_shows(
    engine: sa.Engine, database_url: str, kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic()
    registry = default_metrics().registry
    assert registry.get_sample_value("spbe_published_total", {"topic": topic}) is None
    async with OutboxRelay(relay_config(database_url, kafka_bootstrap, topic)) as relay:
        assert await relay.run_once() == RelayStats()
        assert registry.get_sample_value("spbe_published_total", {"topic": topic}) == 0


# -- personal data -----------------------------------------------------------------------


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_nik_aggregate_is_keyed_by_its_pseudonym_and_no_log_carries_a_nik_or_name(
    engine: sa.Engine, database_url: str, kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    from bus.logs import configure_logging

    topic = await new_topic()
    people = [penduduk(serial) for serial in range(1, 4)]
    with engine.begin() as conn:
        for person in people:
            add_to_outbox(conn, person, aggregate_id=person.nik, sequence=7)
    bad = insert_raw(
        engine,
        aggregate_id=people[0].nik,
        event_type="PendudukUpdated",
        sequence=8,
        payload=json.dumps({**people[0].to_json(), "nik": "3273X"}),
    )
    config = relay_config(
        database_url,
        kafka_bootstrap,
        topic,
        source=SOURCE_DUKCAPIL,
        key_secret=KEY_SECRET,
        topic_overrides={"PendudukUpdated": topic},
    )
    captured = io.StringIO()
    configure_logging(json=True, level="DEBUG", stream=captured)
    try:
        async with OutboxRelay(config) as relay:
            assert await relay.run_once() == RelayStats(claimed=4, published=3, failed=1)
    finally:
        configure_logging(json=True, level="INFO")

    records = await read_all(kafka_bootstrap, topic, 3)
    assert {r.key for r in records} == {pseudonymise(KEY_SECRET, p.nik).encode() for p in people}
    logs = captured.getvalue()
    assert '"outbox.published"' in logs
    assert '"outbox.rejected"' in logs
    for person in people:
        assert person.nik not in logs
        assert person.nama_lengkap not in logs
        for record in records:
            assert person.nik.encode() not in (record.key or b"")
    assert "3273X" not in logs
    assert "3273X" not in rows(engine)[bad].last_error


# -- housekeeping ------------------------------------------------------------------------


async def test_purge_deletes_only_published_rows_older_than_the_retention(
    engine: sa.Engine, database_url: str, kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic()
    write_interleaved(engine, keys=4, versions=1)
    config = relay_config(database_url, kafka_bootstrap, topic, retention_hours=72)
    async with OutboxRelay(config) as relay:
        assert (await relay.run_once()).published == 4
        old_unpublished = insert_raw(engine, aggregate_id="Z", payload="not json")
        now = datetime.now(UTC)
        ids = sorted(rows(engine))
        ages = {ids[0]: 100, ids[1]: 73, ids[2]: 71}  # hours since publishing; ids[3] is new
        with engine.begin() as conn:
            for row_id, hours in ages.items():
                conn.execute(
                    OUTBOX.update()
                    .where(OUTBOX.c.id == row_id)
                    .values(published_at=now - timedelta(hours=hours))
                )
            conn.execute(
                OUTBOX.update()
                .where(OUTBOX.c.id == old_unpublished)
                .values(created_at=now - timedelta(days=30))
            )
        assert await relay.purge() == 2
        assert sorted(rows(engine)) == [ids[2], ids[3], old_unpublished]
        assert await relay.purge() == 0


async def test_the_documented_ddl_and_plain_sql_insert_work_with_the_relay(
    database_url: str, kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    """docs/outbox.md: the CREATE TABLE for this database and its INSERT, as a PHP app runs them."""
    topic = await new_topic()
    engine = create_engine(database_url)
    marker = {
        Dialect.POSTGRESQL: "postgresql",
        Dialect.MARIADB: "mariadb",
        Dialect.SQLITE: "sqlite",
    }[dialect_of(engine)]
    docs = DOCS.read_text()
    ddl = re.search(rf"<!-- ddl:{marker} -->\s*```sql\n(.*?)```", docs, re.S)
    insert = re.search(r"<!-- sql:insert -->\s*```sql\n(.*?)```", docs, re.S)
    assert ddl is not None
    assert insert is not None
    data = example("IzinDiterbitkan")
    nomor_izin = IzinDiterbitkan.from_json(data).nomor_izin
    event_id = new_event_id()
    try:
        with engine.begin() as conn:
            for statement in filter(str.strip, ddl.group(1).split(";")):
                conn.exec_driver_sql(statement)
        with engine.begin() as conn:
            conn.execute(
                sa.text(insert.group(1).strip().rstrip(";")),
                {
                    "event_id": event_id,
                    "event_type": "IzinDiterbitkan",
                    "aggregate_id": nomor_izin,
                    "sequence": 1,
                    "payload": json.dumps(data),
                },
            )
    finally:
        engine.dispose()

    async with OutboxRelay(relay_config(database_url, kafka_bootstrap, topic)) as relay:
        assert await relay.run_once() == RelayStats(claimed=1, published=1, failed=0)
    (record,) = await read_all(kafka_bootstrap, topic, 1)
    assert header(record, "ce_id") == event_id


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_relay_without_its_table_refuses_to_start_and_says_how_to_create_it(
    database_url: str,
) -> None:
    config = OutboxRelayConfig(
        database_url=database_url, bootstrap_servers="127.0.0.1:1", source=SOURCE_DPMPTSP
    )
    with pytest.raises(ConfigError, match="spbe_outbox") as caught:
        await OutboxRelay(config).start()
    assert "docs/outbox.md" in str(caught.value)
