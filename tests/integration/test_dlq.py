"""spbe-bus dlq list | show | redrive | purge against the real broker and databases."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest
import sqlalchemy as sa

from adapters.runner import load_adapter, run_adapter
from bus.decoding import RecordDecoder
from bus.delivery import Delivery, Outcome, RetryPolicy
from bus.errors import PermanentError
from bus.ops.dlq import read_dead_letters, redrive
from bus.ops.dlq_records import DeadLetter, DeadLetterError
from bus.subscriber import Subscriber, SubscriberConfig
from tests.conftest import TopicFactory
from tests.integration.test_replay import (
    as_state,
    audit_of,
    cli,
    eventually,
    history,
    person,
    publish,
    stewards_state,
    table_rows,
    write_adapter,
)

pytestmark = pytest.mark.integration

FAST = RetryPolicy(max_attempts=2, initial_backoff_ms=10, max_backoff_ms=50, jitter_ms=10)


async def dead_letter_everything(bootstrap: str, topic: str, subscriber: str, count: int) -> None:
    """Run ``subscriber`` with a handler refusing every event until ``count`` are dead letters."""

    async def refuse(delivery: Delivery) -> None:
        raise PermanentError(f"kolom tidak cocok untuk {delivery.event.nik}")  # type: ignore[attr-defined]

    config = SubscriberConfig(
        bootstrap_servers=bootstrap, subscriber_id=subscriber, topics=(topic,), retry=FAST
    )
    async with Subscriber(config, refuse) as running:
        runner = asyncio.create_task(running.run())
        await eventually(lambda: running.stats.dead_lettered == count)
        running.request_stop()
        await runner


async def test_dlq_list_and_show_give_causes_with_every_personal_field_masked(
    kafka_bootstrap: str, new_topic: TopicFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    topic = await new_topic()
    await publish(kafka_bootstrap, topic, history(keys=3, versions=1))
    subscriber = f"dinsos-{uuid.uuid4().hex[:8]}"
    await dead_letter_everything(kafka_bootstrap, topic, subscriber, 3)
    capsys.readouterr()

    assert await cli("dlq", "list", "--subscriber", subscriber, "--json",
                     "--bootstrap", kafka_bootstrap) == 0  # fmt: skip
    listed = capsys.readouterr().out
    views = json.loads(listed)["topics"][topic]
    assert [v["original"]["offset"] for v in views] == [0, 1, 2]
    assert {v["error_class"] for v in views} == {"bus.errors.PermanentError"}
    assert all(v["event"]["nik"] == "***" and v["event"]["nama_lengkap"] == "***" for v in views)

    assert await cli("dlq", "show", "--subscriber", subscriber, "--topic", topic,
                     "--offset", "1", "--bootstrap", kafka_bootstrap) == 0  # fmt: skip
    shown = capsys.readouterr().out
    assert json.loads(shown)["headers"]["ce_source"].startswith("ID/PEMDA-3273/")
    for serial in (1, 2, 3):
        resident = person(serial, 1)
        for text in (listed, shown):
            assert resident.nik not in text
            assert resident.nama_lengkap not in text
    assert await audit_of(kafka_bootstrap, subscriber, "dlq.list")
    assert await audit_of(kafka_bootstrap, subscriber, "dlq.show")


def status_checked_table(database_url: str) -> None:
    """The OPD's table: a status column that refuses 'DITOLAK' (the broken mapping sets it)."""
    engine = sa.create_engine(database_url)
    metadata = sa.MetaData()
    sa.Table(
        "penduduk",
        metadata,
        sa.Column("nik", sa.String(16), primary_key=True),
        sa.Column("nama_lengkap", sa.String(255)),
        sa.Column("pekerjaan", sa.String(64)),
        sa.Column("status", sa.String(16)),
        sa.Column("spbe_sequence", sa.BigInteger()),
        sa.CheckConstraint("status <> 'DITOLAK'", name="ck_status"),
    )
    metadata.create_all(engine)
    engine.dispose()


async def test_redrive_after_fixing_a_failing_mapping_applies_the_dead_letters_and_purge_empties(
    kafka_bootstrap: str,
    new_topic: TopicFactory,
    database_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    topic = await new_topic(partitions=2)
    keys, versions = 4, 2
    await publish(kafka_bootstrap, topic, history(keys, versions))
    subscriber = f"dinsos-{uuid.uuid4().hex[:8]}"
    status_checked_table(database_url)
    files = {
        status: write_adapter(
            tmp_path / f"{status}.yaml",
            bootstrap=kafka_bootstrap,
            subscriber=subscriber,
            topic=topic,
            database_url=database_url,
            status=status,
            create_tables=False,
        )
        for status in ("DITOLAK", "HIDUP")
    }
    stop = asyncio.Event()
    runner = asyncio.create_task(run_adapter(load_adapter(files["DITOLAK"]), stop=stop))
    letters: list[DeadLetter] = []

    async def count_letters() -> None:
        while len(letters) < keys * versions:
            with contextlib.suppress(DeadLetterError):  # its dead letter topic comes later
                letters[:] = await read_dead_letters(kafka_bootstrap, subscriber, topic)
            await asyncio.sleep(0.2)

    await asyncio.wait_for(count_letters(), 180)
    stop.set()
    await runner
    assert table_rows(database_url) == {}

    fixed = str(files["HIDUP"])
    redrive = ("dlq", "redrive", "--subscriber", subscriber, "--topic", topic,
               "--adapter", fixed, "--reason", "mapping status diperbaiki")  # fmt: skip
    assert await cli(*redrive) == 0
    out = capsys.readouterr().out
    assert f"applied {keys * versions}" in out
    assert as_state(table_rows(database_url)) == stewards_state(keys, versions)
    assert {row["status"] for row in table_rows(database_url).values()} == {"HIDUP"}
    (entry,) = await audit_of(kafka_bootstrap, subscriber, "dlq.redrive")
    purge_to = entry.result["purge_to"]
    assert purge_to == keys * versions - 1
    assert entry.reason == "mapping status diperbaiki"

    assert await cli("dlq", "purge", "--subscriber", subscriber, "--topic", topic,
                     "--to-offset", str(purge_to), "--reason", "sudah diterapkan ulang",
                     "--bootstrap", kafka_bootstrap) == 0  # fmt: skip
    capsys.readouterr()
    assert await cli("dlq", "list", "--subscriber", subscriber, "--topic", topic,
                     "--bootstrap", kafka_bootstrap) == 0  # fmt: skip
    assert f"no dead letters for subscriber {subscriber}" in capsys.readouterr().out
    assert await read_dead_letters(kafka_bootstrap, subscriber, topic) == []
    (purged,) = await audit_of(kafka_bootstrap, subscriber, "dlq.purge")
    assert purged.result["deleted"] == keys * versions

    assert await cli(*redrive) == 0, "nothing left: redriving again is harmless"


async def test_purge_deletes_only_dead_letters_up_to_the_offset(
    kafka_bootstrap: str, new_topic: TopicFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    topic = await new_topic()
    await publish(kafka_bootstrap, topic, history(keys=5, versions=1))
    subscriber = f"bapenda-{uuid.uuid4().hex[:8]}"
    await dead_letter_everything(kafka_bootstrap, topic, subscriber, 5)

    assert await cli("dlq", "purge", "--subscriber", subscriber, "--topic", topic,
                     "--to-offset", "2", "--reason", "ditinjau", "--bootstrap",
                     kafka_bootstrap) == 0  # fmt: skip
    remaining = await read_dead_letters(kafka_bootstrap, subscriber, topic)
    assert [letter.offset for letter in remaining] == [3, 4]
    assert "purged 3 dead letter(s)" in capsys.readouterr().out

    assert await cli("dlq", "purge", "--subscriber", subscriber, "--topic", topic,
                     "--to-offset", "9", "--reason", "terlalu jauh", "--bootstrap",
                     kafka_bootstrap) == 1  # fmt: skip
    assert "beyond the last dead letter" in capsys.readouterr().err
    assert len(await read_dead_letters(kafka_bootstrap, subscriber, topic)) == 2
    results = [r.result for r in await audit_of(kafka_bootstrap, subscriber, "dlq.purge")]
    assert results[0] == {"deleted": 3, "first_offset_now": 3}
    assert results[1]["error"] == "ConfigError"


async def test_redrive_hands_a_sink_that_applies_batches_the_letters_together(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic()
    await publish(kafka_bootstrap, topic, history(keys=3, versions=2))
    subscriber = f"dinsos-{uuid.uuid4().hex[:8]}"
    await dead_letter_everything(kafka_bootstrap, topic, subscriber, 6)
    letters = await read_dead_letters(kafka_bootstrap, subscriber, topic)
    refused: set[str] = set()
    alone: list[Delivery] = []
    batches: list[list[Delivery]] = []

    async def apply_one(delivery: Delivery) -> Outcome:
        if delivery.envelope.id in refused:
            raise PermanentError("kolom menolak nilai")
        alone.append(delivery)
        return Outcome.APPLIED

    async def apply_batch(deliveries: Sequence[Delivery]) -> list[Outcome]:
        if any(d.envelope.id in refused for d in deliveries):
            raise PermanentError("nothing of the batch was committed")
        batches.append(list(deliveries))
        return [Outcome.DUPLICATE] + [Outcome.APPLIED] * (len(deliveries) - 1)

    async with RecordDecoder.connect(kafka_bootstrap) as decoder:
        report = await redrive(letters, apply_one, decoder, batch_handler=apply_batch)
        assert (report.duplicates, report.applied) == ([0], [1, 2, 3, 4, 5])
        assert [[d.offset for d in batch] for batch in batches] == [[0, 1, 2, 3, 4, 5]]
        assert [d.topic for d in batches[0]] == [topic] * 6, "as the original deliveries"
        assert alone == []

        refused.add(batches[0][2].envelope.id)
        report = await redrive(letters, apply_one, decoder, batch_handler=apply_batch)
    assert report.applied == [0, 1, 3, 4, 5]
    assert [failure["offset"] for failure in report.failed] == [2]
    assert [d.offset for d in alone] == [0, 1, 3, 4, 5], "letter by letter after the batch"
    assert report.purge_to == 1


_REFUSAL = (
    'duplicate key value violates unique constraint "penduduk_nama_key"\n'
    "DETAIL:  Key (nama)=(Budi Santoso) already exists. hp 0812-3456-7890"
)


@pytest.mark.parametrize("away", [False, True])
async def test_a_redrive_failure_quotes_the_sinks_error_masked(
    kafka_bootstrap: str, away: bool
) -> None:
    from bus.errors import BusError
    from bus.ops.replay_plan import ReplayError
    from tests.unit.test_dlq_masking import dead_letter

    async def sink(delivery: Delivery) -> Outcome:
        raise BusError(f"{_REFUSAL} nama=Budi Santoso", retriable=away)

    once = RetryPolicy(max_attempts=1)
    async with RecordDecoder.connect(kafka_bootstrap) as decoder:
        if away:
            with pytest.raises(ReplayError) as stopped:
                await redrive([dead_letter()], sink, decoder, retry=once)
            message = stopped.value.message
        else:
            report = await redrive([dead_letter()], sink, decoder, retry=once)
            (failure,) = report.failed
            message = failure["message"]
    assert 'violates unique constraint "penduduk_nama_key" [detail dropped]' in message
    for value in ("Budi", "Santoso", "0812"):
        assert value not in message, value
