"""spbe-bus replay against the real broker and the real databases."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from aiokafka import TopicPartition
from pydantic import SecretBytes

from bus.cli.main import main
from bus.contract.events import PendudukUpdated, SpbeEvent
from bus.decoding import RecordDecoder
from bus.delivery import Delivery, Outcome
from bus.errors import PermanentError
from bus.ops.audit import AuditRecord, read_audit
from bus.ops.reapply import reapply
from bus.ops.replay import plan_replay
from bus.ops.replay_plan import ReplayMode, ReplayRequest
from bus.publisher import Publisher, PublisherConfig, PublishResult
from bus.subscriber import Subscriber, SubscriberConfig
from tests.conftest import TopicFactory
from tests.support.events import SOURCE_DUKCAPIL, penduduk
from tests.support.kafka import committed_offsets, read_all

pytestmark = pytest.mark.integration

SECRET = b"dukcapil-test-secret-0123456789"


def person(serial: int, version: int) -> PendudukUpdated:
    data = penduduk(serial).to_json()
    data["pekerjaan"] = f"PEKERJAAN VERSI {version}"
    return PendudukUpdated.from_json(data)


def history(keys: int, versions: int) -> list[tuple[SpbeEvent, int]]:
    return [(person(k, v), v) for v in range(1, versions + 1) for k in range(1, keys + 1)]


async def publish(
    bootstrap: str, topic: str, events: list[tuple[SpbeEvent, int]]
) -> list[PublishResult]:
    config = PublisherConfig(
        bootstrap_servers=bootstrap,
        source=SOURCE_DUKCAPIL,
        key_secret=SecretBytes(SECRET),
        topic_overrides={"PendudukUpdated": topic, "KematianDicatat": topic},
    )
    async with Publisher(config) as publisher:
        results = await publisher.publish_many(events)
    published = [r for r in results if isinstance(r, PublishResult)]
    assert len(published) == len(events)
    return published


async def eventually(check: Callable[[], bool], *, timeout_s: float = 180.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not check():
        if loop.time() > deadline:
            pytest.fail(f"condition not met within {timeout_s}s")
        await asyncio.sleep(0.1)


async def cli(*argv: str) -> int:
    """``spbe-bus ARGV`` in a thread (it runs its own event loop)."""
    return await asyncio.to_thread(main, list(argv))


def write_adapter(
    path: Path,
    *,
    bootstrap: str,
    subscriber: str,
    topic: str,
    database_url: str,
    status: str | None = None,
    create_tables: bool = True,
) -> Path:
    """A sql-sink adapter file; ``status`` adds a constant ``set`` for the status column."""
    mapping: dict[str, Any] = {
        "key": "nik",
        "columns": {"nama_lengkap": "nama_lengkap", "pekerjaan": "pekerjaan"},
    }
    if status is not None:
        mapping["set"] = {"status": status}
    document = {
        "kind": "sql-sink",
        "subscription": {
            "bootstrap_servers": bootstrap,
            "subscriber_id": subscriber,
            "topics": [topic],
            "retry": {"max_attempts": 2, "initial_backoff_ms": 10, "max_backoff_ms": 50},
        },
        "sink": {
            "database_url": database_url,
            "table": "penduduk",
            "key_column": "nik",
            "create_tables": create_tables,
            "events": {"PendudukUpdated": mapping},
        },
    }
    path.write_text(yaml.safe_dump(document))
    return path


def table_rows(database_url: str, table: str = "penduduk") -> dict[str, dict[str, Any]]:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            found = sa.Table(table, sa.MetaData(), autoload_with=connection)
            return {
                str(row._mapping["nik"]): dict(row._mapping)
                for row in connection.execute(sa.select(found))
            }
    finally:
        engine.dispose()


def stewards_state(keys: int, versions: int) -> dict[str, tuple[str, str, int]]:
    return {
        person(k, 1).nik: (person(k, 1).nama_lengkap, f"PEKERJAAN VERSI {versions}", versions)
        for k in range(1, keys + 1)
    }


def as_state(rows: dict[str, dict[str, Any]]) -> dict[str, tuple[str, str, int]]:
    return {
        nik: (row["nama_lengkap"], row["pekerjaan"], int(row["spbe_sequence"]))
        for nik, row in rows.items()
    }


async def audit_of(bootstrap: str, subscriber: str, action: str) -> list[AuditRecord]:
    return [r for r in await read_audit(bootstrap, subscriber=subscriber) if r.action == action]


# -- tests -----------------------------------------------------------------------------------


async def test_dry_run_prints_the_events_per_partition_and_changes_nothing(
    kafka_bootstrap: str, new_topic: TopicFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    topic = await new_topic(partitions=3)
    await publish(kafka_bootstrap, topic, history(keys=9, versions=2))
    subscriber = f"dry-{uuid.uuid4().hex[:8]}"
    code = await cli(
        "replay", "--subscriber", subscriber, "--topic", topic, "--bootstrap", kafka_bootstrap,
        "--from-time", "2020-01-01T00:00:00+07:00", "--reason", "uji dry run", "--dry-run",
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    lines = [line.split() for line in out.splitlines() if line.startswith(topic)]
    assert len(lines) == 3
    assert sum(int(line[-1]) for line in lines) == 18
    assert "would replay 18 event(s) in 3 partition(s)" in out
    assert await committed_offsets(kafka_bootstrap, subscriber) == {}
    assert await audit_of(kafka_bootstrap, subscriber, "replay.rewind") == []


async def test_a_replay_without_a_reason_is_refused_before_anything_happens(
    kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        await cli(
            "replay", "--subscriber", "s", "--topic", "spbe.dukcapil.penduduk.v1",
            "--from-time", "2026-03-01T00:00:00Z", "--bootstrap", kafka_bootstrap,
        )  # fmt: skip
    assert exited.value.code == 2
    assert "--reason is required" in capsys.readouterr().err


async def test_rewind_is_refused_while_the_group_has_a_live_member_then_rewinds_once_stopped(
    kafka_bootstrap: str, new_topic: TopicFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    topic = await new_topic(partitions=2)
    await publish(kafka_bootstrap, topic, history(keys=4, versions=3))
    subscriber = f"rewind-{uuid.uuid4().hex[:8]}"
    seen: list[str] = []

    async def apply(delivery: Delivery) -> Outcome:
        seen.append(delivery.envelope.id)
        return Outcome.APPLIED

    config = SubscriberConfig(bootstrap_servers=kafka_bootstrap, subscriber_id=subscriber,
                              topics=(topic,))  # fmt: skip
    replay = (
        "replay", "--subscriber", subscriber, "--topic", topic, "--bootstrap", kafka_bootstrap,
        "--from-offsets", "0:0,1:0", "--reason", "restore DB uji",
    )  # fmt: skip
    async with Subscriber(config, apply) as running:
        runner = asyncio.create_task(running.run())
        await eventually(lambda: len(seen) == 12)
        assert await cli(*replay) == 1
        err = capsys.readouterr().err
        assert "live member" in err
        assert "stop the subscriber" in err
        running.request_stop()
        await runner
    assert set((await committed_offsets(kafka_bootstrap, subscriber)).values()) != {0}

    assert await cli(*replay) == 0
    assert await committed_offsets(kafka_bootstrap, subscriber) == {
        TopicPartition(topic, 0): 0,
        TopicPartition(topic, 1): 0,
    }
    refused, entry = await audit_of(kafka_bootstrap, subscriber, "replay.rewind")
    assert refused.result["error"] == "ReplayRefusedError"
    assert entry.reason == "restore DB uji"
    assert entry.result["events"] == 12
    assert entry.principal


async def test_reapply_into_a_wiped_table_restores_the_stewards_data_and_twice_changes_nothing(
    kafka_bootstrap: str, new_topic: TopicFactory, database_url: str, tmp_path: Path
) -> None:
    topic = await new_topic(partitions=3)
    keys, versions = 12, 4
    await publish(kafka_bootstrap, topic, history(keys, versions))
    subscriber = f"dinsos-{uuid.uuid4().hex[:8]}"
    adapter = write_adapter(
        tmp_path / "sink.yaml",
        bootstrap=kafka_bootstrap,
        subscriber=subscriber,
        topic=topic,
        database_url=database_url,
    )
    replay = (
        "replay", "--subscriber", subscriber, "--topic", topic, "--mode", "reapply",
        "--adapter", str(adapter), "--from-time", "2020-01-01T00:00:00Z",
        "--reason", "restore DB Dinsos, tiket #1",
    )  # fmt: skip
    assert await cli(*replay) == 0
    first = table_rows(database_url)
    assert as_state(first) == stewards_state(keys, versions)

    assert await cli(*replay) == 0
    assert table_rows(database_url) == first

    records = await audit_of(kafka_bootstrap, subscriber, "replay.reapply")
    assert len(records) == 2
    assert records[0].result["applied"] == keys * versions
    assert records[1].result["applied"] == 0
    assert records[1].result["duplicates"] == keys * versions
    assert records[1].reason == "restore DB Dinsos, tiket #1"


async def test_reapply_of_a_time_window_and_of_one_key_hands_over_only_those_events(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic(partitions=2)
    await publish(kafka_bootstrap, topic, history(keys=5, versions=1))
    await asyncio.sleep(0.05)  # record timestamps are in milliseconds: keep the windows apart
    start = datetime.now(UTC)
    window = await publish(kafka_bootstrap, topic, [(person(k, 2), 2) for k in range(1, 6)])
    await asyncio.sleep(0.05)
    stop = datetime.now(UTC)
    await publish(kafka_bootstrap, topic, history(keys=5, versions=1)[:2])

    handed: list[Delivery] = []

    async def count(delivery: Delivery) -> Outcome:
        handed.append(delivery)
        return Outcome.APPLIED

    def request(**extra: Any) -> ReplayRequest:
        return ReplayRequest(
            subscriber="counting",
            topics=(topic,),
            reason="uji jendela waktu",
            mode=ReplayMode.REAPPLY,
            from_time=start,
            to_time=stop,
            **extra,
        )

    windows = await plan_replay(kafka_bootstrap, request())
    assert sum(w.count for w in windows) == 5
    async with RecordDecoder.connect(kafka_bootstrap) as decoder:
        report = await reapply(kafka_bootstrap, windows, count, decoder)
        assert {d.envelope.id for d in handed} == {r.event_id for r in window}
        assert report.applied == 5

        handed.clear()
        key = handed_key = await _key_of(kafka_bootstrap, topic, window[0].event_id)
        report = await reapply(kafka_bootstrap, windows, count, decoder, keys=frozenset({key}))
    assert [d.envelope.id for d in handed] == [window[0].event_id]
    assert handed[0].key == handed_key
    assert report.skipped_keys == 4


async def _key_of(bootstrap: str, topic: str, event_id: str) -> bytes:

    for record in await read_all(bootstrap, topic, 12):
        if dict(record.headers).get("ce_id") == event_id.encode() and record.key is not None:
            return bytes(record.key)
    pytest.fail(f"event {event_id} not found in {topic}")


async def test_reapply_hands_a_sink_that_applies_batches_each_partitions_events_together(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic(partitions=2)
    published = await publish(kafka_bootstrap, topic, history(keys=6, versions=5))
    refused = published[13].event_id
    alone: list[Delivery] = []
    batches: list[list[Delivery]] = []

    async def apply_one(delivery: Delivery) -> Outcome:
        if delivery.envelope.id == refused:
            nama = delivery.event.to_json()["nama_lengkap"]  # unquoted: masked as spbe.pii
            raise PermanentError(f"kolom menolak nilai {nama} 'Siti Aminah' (hp 0812-3456-7890)")
        alone.append(delivery)
        return Outcome.APPLIED

    async def apply_batch(deliveries: Sequence[Delivery]) -> list[Outcome]:
        if any(d.envelope.id == refused for d in deliveries):
            raise PermanentError("nothing of the batch was committed")
        batches.append(list(deliveries))
        return [Outcome.APPLIED] * len(deliveries)

    request = ReplayRequest(
        subscriber="batching",
        topics=(topic,),
        reason="uji batch",
        mode=ReplayMode.REAPPLY,
        from_time=datetime(2020, 1, 1, tzinfo=UTC),
    )
    windows = await plan_replay(kafka_bootstrap, request)
    async with RecordDecoder.connect(kafka_bootstrap) as decoder:
        report = await reapply(
            kafka_bootstrap, windows, apply_one, decoder, batch_handler=apply_batch
        )
    assert (report.done, report.applied, len(report.failed)) == (30, 29, 1)
    assert report.failed[0].error_class == "bus.errors.PermanentError"
    # The report (printed, audited) says why without what the sink quoted of the event.
    message = report.failed[0].message
    assert message.startswith("kolom menolak nilai")
    assert "Siti" not in message, message
    assert "3456" not in message, message
    refused_name = history(keys=6, versions=5)[13][0].to_json()["nama_lengkap"]
    assert refused_name not in message, message
    assert max(len(batch) for batch in batches) > 1, "events were applied in batches"
    for batch in batches:
        assert len({d.partition for d in batch}) == 1
        assert [d.offset for d in batch] == sorted(d.offset for d in batch)
    together = {d.envelope.id for batch in batches for d in batch}
    assert together.isdisjoint(d.envelope.id for d in alone)
    assert len(together) + len(alone) == 29, "the refused batch's other events one by one"
