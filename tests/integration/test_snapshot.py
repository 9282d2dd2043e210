"""The day-one snapshot against the real broker and real databases: order, marks, crashes."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from adapters.db import create_engine
from adapters.opd.disdukcapil import siak
from adapters.runner import load_snapshot
from adapters.sources.snapshot import Snapshot, SnapshotError, progress_table
from bus.contract.codec import InMemorySchemas, decode
from bus.contract.events import PendudukUpdated
from bus.contract.pseudonyms import pseudonymise
from bus.contract.standard import load_standard
from bus.publisher import Publisher
from tests.conftest import TopicFactory
from tests.support.events import SOURCE_DUKCAPIL, penduduk
from tests.support.kafka import partitions_of, read_all

pytestmark = pytest.mark.integration

KEY_SECRET = "dukcapil-snapshot-test-secret-0123"
RESOLVER = InMemorySchemas(load_standard().values())
PROGRESS = progress_table("spbe_snapshot_progress")
Record = ConsumerRecord[bytes, bytes]


@pytest.fixture
def register(database_url: str) -> Iterator[sa.Engine]:
    """SIAK's database: the penduduk table (and its outbox), empty."""
    engine = create_engine(database_url)
    siak.create_tables(engine)
    yield engine
    engine.dispose()


def seed(engine: sa.Engine, count: int) -> dict[str, int]:
    """``count`` residents with no outbox rows, versions 1 to 4; NIK -> versi."""
    residents = [(penduduk(serial), 1 + serial % 4) for serial in range(1, count + 1)]
    siak.impor_penduduk(engine, residents)
    return {p.nik: versi for p, versi in residents}


def penduduk_with(nik: str) -> PendudukUpdated:
    return PendudukUpdated.from_json({**penduduk(1).to_json(), "nik": nik})


def adapter_file(
    tmp_path: Path, database_url: str, bootstrap: str, topic: str, **snapshot: Any
) -> Path:
    path = tmp_path / "disdukcapil-outbox-relay.yaml"
    data = {
        "kind": "outbox-relay",
        "relay": {
            "database_url": database_url,
            "bootstrap_servers": bootstrap,
            "source": SOURCE_DUKCAPIL,
            "key_secret": KEY_SECRET,
            "topic_overrides": {"PendudukUpdated": topic},
        },
        "snapshot": {
            "table": "penduduk",
            "key_column": "nik",
            "version_column": "versi",
            "event": "adapters.opd.disdukcapil.siak:snapshot_event",
            "batch_size": 7,
            **snapshot,
        },
    }
    path.write_text(yaml.safe_dump(data))
    return path


async def cli(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``spbe-bus snapshot PATH --json ARGS`` in a process of its own, run to its end."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bus.cli.main", "snapshot", str(path), "--json", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


async def topic_size(bootstrap: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in await partitions_of(bootstrap, topic)]
        return sum((await consumer.end_offsets(parts)).values())
    finally:
        await consumer.stop()


async def everything(bootstrap: str, topic: str) -> list[Record]:
    size = await topic_size(bootstrap, topic)
    records = await read_all(bootstrap, topic, size)
    assert len(records) == size
    return sorted(records, key=lambda r: (r.partition, r.offset))


def nik_of(record: Record) -> str:
    return str(decode(record.value, RESOLVER).datum["nik"])


def headers(record: Record) -> dict[str, str]:
    return {k: v.decode() for k, v in record.headers}


def progress_row(engine: sa.Engine) -> sa.Row[Any] | None:
    try:
        with engine.connect() as conn:
            return conn.execute(sa.select(PROGRESS)).first()
    except sa.exc.DBAPIError:  # not created yet
        return None


# -- what a snapshot publishes -----------------------------------------------------------


async def test_a_snapshot_publishes_one_event_per_row_in_key_order_marked_with_its_version(
    register: sa.Engine,
    database_url: str,
    kafka_bootstrap: str,
    new_topic: TopicFactory,
    tmp_path: Path,
) -> None:
    topic = await new_topic(partitions=1)
    held = seed(register, 30)
    with register.begin() as conn:  # a deceased resident is left out on purpose
        conn.execute(
            siak.PENDUDUK.update()
            .where(siak.PENDUDUK.c.nik == min(held))
            .values(status="MENINGGAL")
        )
    file = load_snapshot(adapter_file(tmp_path, database_url, kafka_bootstrap, topic))
    assert file.snapshot is not None
    async with Snapshot(file.relay, file.snapshot, max_rate_per_s=200) as snapshot:
        summary = await snapshot.run()
    records = await everything(kafka_bootstrap, topic)
    alive = sorted(held)[1:]
    assert [nik_of(r) for r in records] == alive, "one event per row, in key order"
    assert all(headers(r)["ce_snapshot"] == "true" for r in records)
    assert [int(headers(r)["ce_sequence"]) for r in records] == [held[n] for n in alive]
    assert all(r.key == pseudonymise(KEY_SECRET.encode(), nik_of(r)).encode() for r in records)
    assert {headers(r)["ce_type"] for r in records} == {"id.go.spbe.dukcapil.PendudukUpdated.v1"}
    assert (summary.finished, summary.total, summary.published, summary.excluded) == (
        True,
        30,
        29,
        1,
    )
    # The throttle never lets the run go faster than --max-rate (slowness only lowers it).
    assert summary.rate_per_s <= 200 * 1.05
    row = progress_row(register)
    assert row is not None
    assert row.finished_at is not None
    assert row.last_key == max(held)


async def test_a_keys_snapshot_event_shares_the_partition_of_its_live_events(
    register: sa.Engine,
    database_url: str,
    kafka_bootstrap: str,
    new_topic: TopicFactory,
    tmp_path: Path,
) -> None:
    """Record batches are partitioned as single sends are, so per-key order holds."""
    topic = await new_topic(partitions=5)
    held = seed(register, 40)
    file = load_snapshot(adapter_file(tmp_path, database_url, kafka_bootstrap, topic))
    assert file.snapshot is not None
    async with Publisher(file.relay.publisher_config()) as publisher:
        for nik in held:  # what the relay sends: one publish per event
            await publisher.publish(penduduk_with(nik), sequence=held[nik] + 1)
        async with Snapshot(file.relay, file.snapshot, publisher=publisher) as snapshot:
            assert (await snapshot.run()).published == 40
    partitions: dict[str, set[int]] = {}
    for record in await everything(kafka_bootstrap, topic):
        partitions.setdefault(nik_of(record), set()).add(record.partition)
    assert len(partitions) == 40
    assert all(len(found) == 1 for found in partitions.values())
    assert len({p for found in partitions.values() for p in found}) > 1, "keys spread out"


async def test_an_empty_table_finishes_at_once(
    register: sa.Engine,
    database_url: str,
    kafka_bootstrap: str,
    new_topic: TopicFactory,
    tmp_path: Path,
) -> None:
    topic = await new_topic(partitions=1)
    done = await cli(adapter_file(tmp_path, database_url, kafka_bootstrap, topic))
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["finished"], summary["total"], summary["published"]) == (True, 0, 0)
    assert await topic_size(kafka_bootstrap, topic) == 0


async def test_a_finished_snapshot_does_nothing_again_until_restart(
    register: sa.Engine,
    database_url: str,
    kafka_bootstrap: str,
    new_topic: TopicFactory,
    tmp_path: Path,
) -> None:
    topic = await new_topic(partitions=3)
    seed(register, 12)
    path = adapter_file(tmp_path, database_url, kafka_bootstrap, topic)
    first = await cli(path)
    assert first.returncode == 0, first.stderr
    again = await cli(path)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["already_finished"] is True
    assert await topic_size(kafka_bootstrap, topic) == 12
    restarted = await cli(path, "--restart")
    assert restarted.returncode == 0, restarted.stderr
    assert json.loads(restarted.stdout)["published_this_run"] == 12
    assert await topic_size(kafka_bootstrap, topic) == 24


# -- crashes -----------------------------------------------------------------------------


async def test_a_killed_snapshot_resumes_from_the_last_acknowledged_key(
    register: sa.Engine,
    database_url: str,
    kafka_bootstrap: str,
    new_topic: TopicFactory,
    tmp_path: Path,
) -> None:
    """SIGKILL mid-run, run again: every key published, duplicates at most one batch."""
    topic = await new_topic(partitions=3)
    held = seed(register, 1200)
    batch = 50
    path = adapter_file(tmp_path, database_url, kafka_bootstrap, topic, batch_size=batch)
    running = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bus.cli.main", "snapshot", str(path), "--max-rate", "300"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        while True:
            row = await asyncio.to_thread(progress_row, register)
            if row is not None and row.rows_published >= 4 * batch:
                break
            assert running.returncode is None, "the snapshot exited before it could be killed"
            assert time.monotonic() < deadline, "the snapshot made no progress"
            await asyncio.sleep(0.05)
        running.send_signal(signal.SIGKILL)
    finally:
        await asyncio.wait_for(running.wait(), 60)
    killed = progress_row(register)
    assert killed is not None
    assert killed.finished_at is None
    assert killed.rows_published < len(held), "killed mid-run"

    resumed = await cli(path)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["resumed"] is True
    assert summary["finished"] is True
    assert summary["published"] == len(held)
    assert summary["published_this_run"] <= len(held) - killed.rows_published
    records = await everything(kafka_bootstrap, topic)
    assert {nik_of(r) for r in records} == set(held), "every key at least once"
    assert len(records) - len(held) <= batch, "duplicates only of the unacknowledged batch"
    assert all(headers(r)["ce_sequence"] == str(held[nik_of(r)]) for r in records)


async def test_sigterm_stops_after_the_batch_in_flight_and_the_next_run_resumes(
    register: sa.Engine,
    database_url: str,
    kafka_bootstrap: str,
    new_topic: TopicFactory,
    tmp_path: Path,
) -> None:
    """A graceful stop stores what Kafka acknowledged: not one event is published twice."""
    topic = await new_topic(partitions=3)
    held = seed(register, 400)
    path = adapter_file(tmp_path, database_url, kafka_bootstrap, topic, batch_size=20)
    running = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bus.cli.main", "snapshot", str(path), "--json"),
        *("--max-rate", "100"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while (row := await asyncio.to_thread(progress_row, register)) is None or (
        row.rows_published < 40
    ):
        assert running.returncode is None
        assert time.monotonic() < deadline, "the snapshot made no progress"
        await asyncio.sleep(0.05)
    running.send_signal(signal.SIGTERM)
    out, _ = await asyncio.wait_for(running.communicate(), 120)
    assert running.returncode == 1, "stopped before the last row"
    stopped = json.loads(out)
    assert stopped["finished"] is False
    row = progress_row(register)
    assert row is not None
    assert row.rows_published == stopped["published"] < len(held)
    assert await topic_size(kafka_bootstrap, topic) == stopped["published"]
    resumed = await cli(path)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["published_this_run"] == len(held) - stopped["published"]
    records = await everything(kafka_bootstrap, topic)
    assert sorted(nik_of(r) for r in records) == sorted(held), "each key exactly once"


# -- rows that break a rule --------------------------------------------------------------

BAD_NIK = "3273029908900001"  # day 99 does not exist
SECRET_NAME = "Rahasia Pribadi Sekali"


def add_bad_row(engine: sa.Engine) -> None:
    """A row as a legacy register holds it: written by SQL, never validated."""
    values = {**siak._row_values(penduduk(1)), "nik": BAD_NIK, "nama_lengkap": SECRET_NAME}
    with engine.begin() as conn:
        conn.execute(sa.insert(siak.PENDUDUK).values(**values, versi=3))


async def test_a_row_that_breaks_a_rule_is_reported_without_personal_data_and_skipped(
    register: sa.Engine,
    database_url: str,
    kafka_bootstrap: str,
    new_topic: TopicFactory,
    tmp_path: Path,
) -> None:
    topic = await new_topic(partitions=3)
    held = seed(register, 20)
    add_bad_row(register)
    path = adapter_file(tmp_path, database_url, kafka_bootstrap, topic)
    done = await cli(path, "--progress", "log")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["published"], summary["invalid"], summary["finished"]) == (20, 1, True)
    output = done.stdout + done.stderr
    assert BAD_NIK not in output
    assert SECRET_NAME not in output
    assert not any(nik in output for nik in held), "no NIK in any log line"
    reports = [json.loads(line) for line in done.stderr.splitlines() if "row_invalid" in line]
    assert len(reports) == 1
    report = reports[0]
    assert report["key_pseudonym"] == pseudonymise(KEY_SECRET.encode(), BAD_NIK)
    assert report["position"] == 21, "the bad NIK sorts last"
    assert [p["field"] for p in report["problems"]] == ["nik"]
    assert "NIK" in report["problems"][0]["rule"]
    assert any('"snapshot.progress"' in line for line in done.stderr.splitlines())
    assert len(await everything(kafka_bootstrap, topic)) == 20


async def test_with_max_invalid_rows_a_bad_row_stops_the_run_before_its_batch(
    register: sa.Engine,
    database_url: str,
    kafka_bootstrap: str,
    new_topic: TopicFactory,
    tmp_path: Path,
) -> None:
    topic = await new_topic(partitions=3)
    seed(register, 20)
    add_bad_row(register)
    path = adapter_file(tmp_path, database_url, kafka_bootstrap, topic, max_invalid_rows=0)
    stopped = await cli(path)
    assert stopped.returncode == 1
    assert "max_invalid_rows (0)" in stopped.stderr
    assert BAD_NIK not in stopped.stderr
    assert SECRET_NAME not in stopped.stderr
    row = progress_row(register)
    assert row is not None
    assert row.finished_at is None
    assert row.rows_published == 14, "the batches before the bad row's (batch_size 7)"
    assert await topic_size(kafka_bootstrap, topic) == 14


# -- one run at a time -------------------------------------------------------------------


@pytest.mark.parametrize("server", ["postgres", "mariadb"])
async def test_a_second_run_of_one_snapshot_is_refused_while_the_first_holds_its_lock(
    server: str,
    request: pytest.FixtureRequest,
    kafka_bootstrap: str,
    new_topic: TopicFactory,
    tmp_path: Path,
) -> None:
    url = request.getfixturevalue(f"{server}_url")
    engine = create_engine(url)
    siak.create_tables(engine)
    engine.dispose()
    topic = await new_topic(partitions=1)
    file = load_snapshot(adapter_file(tmp_path, url, kafka_bootstrap, topic, name=f"lock_{server}"))
    assert file.snapshot is not None
    async with Snapshot(file.relay, file.snapshot):
        with pytest.raises(SnapshotError, match="holds its lock"):
            await Snapshot(file.relay, file.snapshot).start()
    async with Snapshot(file.relay, file.snapshot) as again:  # released on stop
        assert (await again.run()).finished
