"""SqlSink on real SQLite, PostgreSQL and MariaDB, alone and behind a Subscriber on a real broker.

Every test runs once per database (the ``database_url`` fixture), each on a fresh database.
"""

from __future__ import annotations

import asyncio
import io
import json
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import SecretBytes

from adapters.sinks.sql import RejectedEventError, SqlSink, SqlSinkConfig
from bus.contract.envelope import DataClassification, Envelope, pseudonymise
from bus.contract.events import KematianDicatat, PajakDaerahDibayar, PendudukUpdated, SpbeEvent
from bus.contract.standard import example
from bus.delivery import Delivery, Outcome, RetryPolicy, dlq_topic
from bus.errors import ConfigError
from bus.logs import configure_logging
from bus.publisher import Publisher, PublisherConfig, PublishResult
from bus.subscriber import Subscriber, SubscriberConfig
from tests.conftest import TopicFactory
from tests.support.events import SOURCE_DUKCAPIL, penduduk
from tests.support.kafka import read_all

pytestmark = pytest.mark.integration

SECRET = b"dukcapil-test-secret-0123456789"
SOURCE_BAPENDA = "ID/PEMDA-3273/BAPENDA/simpatda"
PROCESSED = "spbe_processed_events"
FAST_RETRY = RetryPolicy(max_attempts=3, initial_backoff_ms=10, max_backoff_ms=50, jitter_ms=10)


# -- events and deliveries -------------------------------------------------------------------


def person(serial: int, version: int, *, pekerjaan: str | None = None) -> PendudukUpdated:
    """Resident ``serial`` as of ``version``: the version shows in ``pekerjaan``."""
    data = penduduk(serial).to_json()
    data["pekerjaan"] = pekerjaan or f"PEKERJAAN VERSI {version}"
    return PendudukUpdated.from_json(data)


def death(serial: int) -> KematianDicatat:
    """The death record of resident ``serial`` (died 2026-11-25)."""
    data = example("KematianDicatat")
    data["nik"] = penduduk(serial).nik
    return KematianDicatat.from_json(data)


def payment(number: int) -> PajakDaerahDibayar:
    data = example("PajakDaerahDibayar")
    data["ntpd"] = f"327301261128{number:08d}"
    return PajakDaerahDibayar.from_json(data)


def deliver(
    event: SpbeEvent,
    *,
    sequence: int | None,
    event_id: str | None = None,
    offset: int = 0,
) -> Delivery:
    """A delivery as the Subscriber hands it over, without a broker."""
    source = SOURCE_BAPENDA if isinstance(event, PajakDaerahDibayar) else SOURCE_DUKCAPIL
    nik = getattr(event, "nik", None)
    key = pseudonymise(SECRET, nik) if nik else str(getattr(event, "ntpd", "key"))
    extra: dict[str, Any] = {"id": event_id} if event_id else {}
    envelope = Envelope(
        source=source,
        type=f"{event.avro_name}.v1",
        steward=source.split("/")[2],
        partitionkey=key,
        dataclassification=DataClassification.RESTRICTED,
        sequence=sequence,
        **extra,
    )
    return Delivery(
        event=event,
        envelope=envelope,
        topic="spbe.dukcapil.penduduk.v1",
        partition=0,
        offset=offset,
        key=key.encode(),
        attempt=1,
    )


# -- configs ---------------------------------------------------------------------------------

PENDUDUK_EVENTS: dict[str, Any] = {
    "PendudukUpdated": {
        "key": "nik",
        "columns": {
            "nama_lengkap": "nama_lengkap",
            "pekerjaan": "pekerjaan",
            "tanggal_lahir": "tanggal_lahir",
            "status_perkawinan": "status_perkawinan",
            "kode_wilayah": "alamat.kode_wilayah",
        },
    },
    "KematianDicatat": {
        "key": "nik",
        "action": "update_only",
        "columns": {"tanggal_meninggal": "tanggal_meninggal"},
        "set": {"status": "MENINGGAL"},
    },
}


def penduduk_settings(database_url: str, **extra: Any) -> dict[str, Any]:
    """A Dinsos-style penduduk table keyed by NIK, created by the sink."""
    return {
        "database_url": database_url,
        "table": "penduduk",
        "key_column": "nik",
        "create_tables": True,
        "events": PENDUDUK_EVENTS,
        **extra,
    }


def penduduk_config(database_url: str, **extra: Any) -> SqlSinkConfig:
    return SqlSinkConfig.model_validate(penduduk_settings(database_url, **extra))


# -- reading the database back ---------------------------------------------------------------


class Db:
    """The test's own view of the database, through a separate engine."""

    def __init__(self, url: str) -> None:
        connect_args = {"timeout": 30} if url.startswith("sqlite") else {}
        self.engine = sa.create_engine(url, connect_args=connect_args)

    def count(self, table: str = PROCESSED) -> int:
        with self.engine.connect() as connection:
            if not sa.inspect(connection).has_table(table):
                return 0
            found = sa.Table(table, sa.MetaData(), autoload_with=connection)
            return int(
                connection.execute(sa.select(sa.func.count()).select_from(found)).scalar_one()
            )

    def rows(self, table: str = "penduduk", key: str = "nik") -> dict[Any, dict[str, Any]]:
        with self.engine.connect() as connection:
            found = sa.Table(table, sa.MetaData(), autoload_with=connection)
            result = connection.execute(sa.select(found))
            return {row._mapping[key]: dict(row._mapping) for row in result}

    def table(self, name: str) -> sa.Table:
        with self.engine.connect() as connection:
            return sa.Table(name, sa.MetaData(), autoload_with=connection)

    def execute(self, statement: sa.Executable) -> None:
        with self.engine.begin() as connection:
            connection.execute(statement)


@pytest.fixture
def db(database_url: str) -> Iterator[Db]:
    view = Db(database_url)
    yield view
    view.engine.dispose()


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging(json=True, level="DEBUG", stream=stream)
    try:
        yield stream
    finally:
        configure_logging(json=True, level="INFO")


def production_penduduk(db: Db, *, nama_length: int = 255) -> None:
    """A table the OPD already has: narrow columns, a check, its own NOT NULL default."""
    metadata = sa.MetaData()
    sa.Table(
        "penduduk",
        metadata,
        sa.Column("nik", sa.String(16), primary_key=True),
        sa.Column("nama_lengkap", sa.String(nama_length), nullable=False),
        sa.Column("pekerjaan", sa.String(64)),
        sa.Column("spbe_sequence", sa.BigInteger()),
        sa.Column("dibuat_pada", sa.String(32), nullable=False, server_default="sekarang"),
        sa.CheckConstraint("pekerjaan <> 'DITOLAK'", name="ck_pekerjaan"),
    )
    metadata.create_all(db.engine)


def production_config(database_url: str) -> SqlSinkConfig:
    return SqlSinkConfig.model_validate(
        {
            "database_url": database_url,
            "table": "penduduk",
            "key_column": "nik",
            "events": {
                "PendudukUpdated": {
                    "key": "nik",
                    "columns": {"nama_lengkap": "nama_lengkap", "pekerjaan": "pekerjaan"},
                }
            },
        }
    )


# -- idempotence and the version guard -------------------------------------------------------


async def test_the_same_event_delivered_twice_is_applied_once_then_reported_duplicate(
    database_url: str, db: Db
) -> None:
    event = deliver(person(1, 1), sequence=1)
    async with SqlSink(penduduk_config(database_url)) as sink:
        assert await sink(event) is Outcome.APPLIED
        assert await sink(event) is Outcome.DUPLICATE
        again = deliver(person(1, 1), sequence=1, event_id=event.envelope.id, offset=7)
        assert await sink(again) is Outcome.DUPLICATE, "a redelivery at another offset"
    assert db.count() == 1
    (row,) = db.rows().values()
    assert row["pekerjaan"] == "PEKERJAAN VERSI 1"
    assert row["spbe_sequence"] == 1


async def test_an_older_event_after_a_newer_one_leaves_the_newer_data_and_is_logged_stale(
    database_url: str, db: Db, captured_logs: io.StringIO
) -> None:
    newer = deliver(person(1, 5), sequence=5)
    older = deliver(person(1, 3), sequence=3)
    same = deliver(person(1, 4, pekerjaan="SEQUENCE SAMA"), sequence=5)
    async with SqlSink(penduduk_config(database_url)) as sink:
        assert await sink(newer) is Outcome.APPLIED
        assert await sink(older) is Outcome.APPLIED, "handled: recorded, not written"
        assert await sink(same) is Outcome.APPLIED
        assert await sink(older) is Outcome.DUPLICATE
    (row,) = db.rows().values()
    assert row["pekerjaan"] == "PEKERJAAN VERSI 5"
    assert row["spbe_sequence"] == 5
    assert db.count() == 3
    logs = captured_logs.getvalue()
    assert '"sink.stale"' in logs
    assert older.envelope.id in logs
    assert person(1, 1).nik not in logs
    assert person(1, 1).nama_lengkap not in logs


async def test_a_death_record_sets_the_status_and_no_older_update_revives_the_person(
    database_url: str, db: Db
) -> None:
    async with SqlSink(penduduk_config(database_url)) as sink:
        await sink(deliver(person(1, 1), sequence=1))
        await sink(deliver(person(2, 1), sequence=1))
        assert await sink(deliver(death(1), sequence=2)) is Outcome.APPLIED
        late = deliver(person(1, 1, pekerjaan="TERLAMBAT"), sequence=1)
        assert await sink(late) is Outcome.APPLIED
        assert await sink(deliver(death(3), sequence=9)) is Outcome.APPLIED, "unknown person"
    rows = db.rows()
    dead, alive = rows[person(1, 1).nik], rows[person(2, 1).nik]
    assert dead["status"] == "MENINGGAL"
    assert dead["tanggal_meninggal"] == date(2026, 11, 25)
    assert dead["pekerjaan"] == "PEKERJAAN VERSI 1"
    assert dead["spbe_sequence"] == 2
    assert alive["status"] is None
    assert person(3, 1).nik not in rows, "update_only never inserts"
    assert db.count() == 5


async def test_an_event_without_a_sequence_applies_as_last_writer_and_keeps_the_version(
    database_url: str, db: Db, captured_logs: io.StringIO
) -> None:
    async with SqlSink(penduduk_config(database_url)) as sink:
        await sink(deliver(person(1, 4), sequence=4))
        await sink(deliver(person(1, 0, pekerjaan="TANPA SEQUENCE"), sequence=None))
        await sink(deliver(person(2, 0, pekerjaan="BARU TANPA SEQUENCE"), sequence=None))
        await sink(deliver(person(1, 3), sequence=3))
    rows = db.rows()
    assert rows[person(1, 1).nik]["pekerjaan"] == "TANPA SEQUENCE"
    assert rows[person(1, 1).nik]["spbe_sequence"] == 4
    assert rows[person(2, 1).nik]["spbe_sequence"] is None
    assert '"sink.unsequenced"' in captured_logs.getvalue()


async def test_events_of_a_type_the_mapping_does_not_name_are_left_alone(
    database_url: str, db: Db
) -> None:
    payment_delivery = deliver(payment(1), sequence=1)
    async with SqlSink(penduduk_config(database_url)) as sink:
        assert await sink(payment_delivery) is Outcome.APPLIED
        batch = [deliver(person(1, 1), sequence=1), payment_delivery]
        assert await sink.apply_batch(batch) == [Outcome.APPLIED, Outcome.APPLIED]
    assert db.count("penduduk") == 1
    assert db.count() == 1


# -- batches ---------------------------------------------------------------------------------


async def test_a_batch_applies_in_order_per_key_and_drops_duplicates_within_it(
    database_url: str, db: Db
) -> None:
    first = deliver(person(1, 1), sequence=1)
    batch = [
        first,
        deliver(person(2, 1), sequence=1),
        deliver(person(1, 2), sequence=2),
        first,
        deliver(person(1, 3), sequence=3),
        deliver(death(2), sequence=2),
        deliver(person(2, 1, pekerjaan="BASI"), sequence=1),
    ]
    async with SqlSink(penduduk_config(database_url)) as sink:
        outcomes = await sink.apply_batch(batch)
        assert await sink.apply_batch(batch) == [Outcome.DUPLICATE] * len(batch)
    assert outcomes == [Outcome.APPLIED] * 3 + [Outcome.DUPLICATE] + [Outcome.APPLIED] * 3
    rows = db.rows()
    assert rows[person(1, 1).nik]["pekerjaan"] == "PEKERJAAN VERSI 3"
    assert rows[person(2, 1).nik]["status"] == "MENINGGAL"
    assert rows[person(2, 1).nik]["pekerjaan"] == "PEKERJAAN VERSI 1"
    assert db.count() == 6


async def test_a_batch_refused_mid_way_commits_nothing_and_applies_once_the_refused_one_is_out(
    database_url: str, db: Db
) -> None:
    production_penduduk(db)
    batch = [deliver(person(k, 1), sequence=1) for k in range(1, 9)]
    batch[5] = deliver(person(6, 1, pekerjaan="DITOLAK"), sequence=1)
    async with SqlSink(production_config(database_url)) as sink:
        with pytest.raises(RejectedEventError) as caught:
            await sink.apply_batch(batch)
        assert db.count("penduduk") == 0, "the five rows written before it were rolled back"
        assert db.count() == 0
        rest = batch[:5] + batch[6:]
        assert await sink.apply_batch(rest) == [Outcome.APPLIED] * 7
    error = caught.value
    assert error.index == 5
    assert error.event_id == batch[5].envelope.id
    assert "ck_pekerjaan" in str(error)
    assert person(6, 1).nik not in str(error)
    assert db.count("penduduk") == 7
    assert {row["dibuat_pada"] for row in db.rows().values()} == {"sekarang"}


async def test_a_value_too_long_for_its_column_is_refused_naming_the_column_not_the_value(
    database_url: str, db: Db, captured_logs: io.StringIO
) -> None:
    production_penduduk(db, nama_length=10)
    event = deliver(person(1, 1), sequence=1)
    async with SqlSink(production_config(database_url)) as sink:
        with pytest.raises(RejectedEventError) as caught:
            await sink(event)
    message = str(caught.value)
    assert caught.value.column == "nama_lengkap"
    assert "column nama_lengkap holds at most 10" in message
    assert "field nama_lengkap is 24 characters long" in message
    assert "fix: widen the column" in message
    assert db.count("penduduk") == 0
    logs = captured_logs.getvalue()
    assert '"sink.rejected"' in logs
    for text in (message, logs):
        assert person(1, 1).nik not in text
        assert "Siti" not in text


def unique_pekerjaan(db: Db, database_url: str) -> SqlSinkConfig:
    """A table where pekerjaan is unique too: a second unique column besides the key."""
    metadata = sa.MetaData()
    sa.Table(
        "penduduk",
        metadata,
        sa.Column("nik", sa.String(16), primary_key=True),
        sa.Column("pekerjaan", sa.String(64)),
        sa.Column("spbe_sequence", sa.BigInteger()),
        sa.UniqueConstraint("pekerjaan", name="uq_pekerjaan"),
    )
    metadata.create_all(db.engine)
    config = SqlSinkConfig.model_validate(
        {
            "database_url": database_url,
            "table": "penduduk",
            "key_column": "nik",
            "events": {"PendudukUpdated": {"key": "nik", "columns": {"pekerjaan": "pekerjaan"}}},
        }
    )
    return config


async def test_a_second_unique_column_refuses_a_row_after_ruling_out_a_race(
    database_url: str, db: Db
) -> None:
    config = unique_pekerjaan(db, database_url)
    async with SqlSink(config) as sink:
        await sink(deliver(person(1, 1, pekerjaan="GURU"), sequence=1))
        with pytest.raises(RejectedEventError) as caught:
            await sink(deliver(person(2, 1, pekerjaan="GURU"), sequence=1))
    assert "unique" in str(caught.value)
    assert person(2, 1).nik not in str(caught.value)
    assert db.count("penduduk") == 1
    assert db.count() == 1


# -- batches applied set-based: the same as one by one, in a fixed number of statements -----


SINK_LINES = {"sink.applied", "sink.stale", "sink.absent", "sink.duplicate"}


def reported(logs: str) -> list[tuple[str, str, object]]:
    """What the sink logged per change: (event id, log event, verdict or row version)."""
    lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    return [
        (line["event_id"], line["event"], line.get("verdict", line.get("row_version")))
        for line in lines
        if line.get("event") in SINK_LINES
    ]


def processed_events(db: Db, table: str) -> set[tuple[str, str, int]]:
    with db.engine.connect() as connection:
        found = sa.Table(table, sa.MetaData(), autoload_with=connection)
        rows = connection.execute(sa.select(found.c.source, found.c.event_id, found.c.kafka_offset))
        return {(row[0], row[1], row[2]) for row in rows}


async def test_a_batch_gives_the_rows_and_verdicts_of_applying_its_events_one_by_one(
    database_url: str, db: Db, captured_logs: io.StringIO
) -> None:
    redelivered = deliver(person(4, 2), sequence=2)
    before = [
        deliver(person(1, 5), sequence=5),
        deliver(person(2, 1), sequence=1),
        deliver(person(3, 0, pekerjaan="LAMA TANPA SEQUENCE"), sequence=None),
        redelivered,
    ]
    repeated = deliver(person(5, 1), sequence=1, offset=3)
    batch = [
        deliver(person(1, 3), sequence=3, offset=0),  # stale against the table
        deliver(person(1, 6), sequence=6, offset=1),
        deliver(person(1, 6, pekerjaan="SEQUENCE SAMA"), sequence=6, offset=2),  # stale
        repeated,  # a new key
        deliver(person(5, 3), sequence=3, offset=4),
        deliver(person(5, 2), sequence=2, offset=5),  # stale against the batch's own write
        repeated,  # a duplicate within the batch
        deliver(death(6), sequence=9, offset=7),  # update_only, no such row
        deliver(death(2), sequence=2, offset=8),
        deliver(person(2, 1, pekerjaan="TERLAMBAT"), sequence=1, offset=9),  # stale
        redelivered,  # processed before the batch
        deliver(person(3, 0, pekerjaan="TANPA SEQUENCE"), sequence=None, offset=11),
        deliver(person(3, 4), sequence=4, offset=12),
        deliver(person(7, 0, pekerjaan="BARU TANPA SEQUENCE"), sequence=None, offset=13),
        deliver(person(7, 2), sequence=2, offset=14),
        deliver(death(7), sequence=1, offset=15),  # stale
        deliver(death(8), sequence=1, offset=16),  # absent, then inserted, then updated
        deliver(person(8, 1), sequence=1, offset=17),
        deliver(death(8), sequence=2, offset=18),
        deliver(person(9, 1), sequence=1, offset=19),
        deliver(death(1), sequence=7, offset=20),  # a second event type on a key
    ]
    applied, duplicate = Outcome.APPLIED, Outcome.DUPLICATE
    expected = [
        ("sink.stale", 5),
        ("sink.applied", "updated"),
        ("sink.stale", 6),
        ("sink.applied", "inserted"),
        ("sink.applied", "updated"),
        ("sink.stale", 3),
        ("sink.duplicate", None),
        ("sink.absent", None),
        ("sink.applied", "updated"),
        ("sink.stale", 2),
        ("sink.duplicate", None),
        ("sink.applied", "updated"),
        ("sink.applied", "updated"),
        ("sink.applied", "inserted"),
        ("sink.applied", "updated"),
        ("sink.stale", 2),
        ("sink.absent", None),
        ("sink.applied", "inserted"),
        ("sink.applied", "updated"),
        ("sink.applied", "inserted"),
        ("sink.applied", "updated"),
    ]
    one_config = penduduk_config(database_url)
    batch_config = penduduk_config(
        database_url, table="penduduk_batch", processed_table="spbe_processed_batch"
    )
    async with SqlSink(one_config) as one, SqlSink(batch_config) as together:
        for delivery in before:
            await one(delivery)
            await together(delivery)
        captured_logs.seek(0)
        captured_logs.truncate(0)
        one_outcomes = [await one(delivery) for delivery in batch]
        one_by_one = reported(captured_logs.getvalue())
        captured_logs.seek(0)
        captured_logs.truncate(0)
        batch_outcomes = await together.apply_batch(batch)
        batched = reported(captured_logs.getvalue())
    assert [(event, value) for _, event, value in one_by_one] == expected
    assert batched == one_by_one
    assert batch_outcomes == one_outcomes
    assert (
        batch_outcomes == [applied] * 6 + [duplicate] + [applied] * 3 + [duplicate] + [applied] * 10
    )
    one_rows = db.rows()
    assert db.rows("penduduk_batch") == one_rows
    assert processed_events(db, "spbe_processed_batch") == processed_events(db, PROCESSED)
    assert len(one_rows) == 8, "residents 1-5 and 7-9: 6 stays absent"
    assert one_rows[person(1, 1).nik]["pekerjaan"] == "PEKERJAAN VERSI 6"
    assert one_rows[person(1, 1).nik]["status"] == "MENINGGAL"
    assert one_rows[person(1, 1).nik]["spbe_sequence"] == 7
    assert one_rows[person(3, 1).nik]["spbe_sequence"] == 4
    assert one_rows[person(5, 1).nik]["pekerjaan"] == "PEKERJAAN VERSI 3"
    assert one_rows[person(7, 1).nik]["status"] is None
    assert one_rows[person(8, 1).nik]["status"] == "MENINGGAL"
    assert one_rows[person(8, 1).nik]["spbe_sequence"] == 2


@contextmanager
def statements() -> Iterator[list[str]]:
    """The SQL statements run while inside (an executemany counts once), on every engine."""
    seen: list[str] = []

    def count(_connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split()[:2]))

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", count)


async def test_a_batch_runs_the_same_few_statements_whatever_its_size(
    database_url: str, db: Db
) -> None:
    counts: dict[int, tuple[int, int, int]] = {}
    async with SqlSink(penduduk_config(database_url)) as sink:
        for size, first in ((1, 1), (10, 11), (100, 101)):
            serials = range(first, first + size)
            with statements() as inserting:
                await sink.apply_batch([deliver(person(k, 1), sequence=1) for k in serials])
            with statements() as updating:
                await sink.apply_batch([deliver(person(k, 2), sequence=2) for k in serials])
            mixed = [deliver(person(k, 3), sequence=3) for k in serials]
            mixed += [deliver(person(k + 1000, 1), sequence=1) for k in serials]
            mixed += [deliver(person(k, 2), sequence=2) for k in serials]  # stale
            mixed += [deliver(death(k), sequence=4) for k in serials]
            with statements() as mixing:
                await sink.apply_batch(mixed)
            counts[size] = (len(inserting), len(updating), len(mixing))
        with statements() as large:
            await sink.apply_batch([deliver(person(k, 1), sequence=1) for k in range(2001, 3002)])
    assert counts[1] == counts[10] == counts[100], counts
    inserted, updated, mixing = counts[100]
    begin = 1 if database_url.startswith("sqlite") else 0  # BEGIN IMMEDIATE
    # PostgreSQL records the events first (ON CONFLICT DO NOTHING): that insert is also
    # the processed-event read. Elsewhere: versions, processed, the write, the records.
    kinds = 3 if database_url.startswith("postgresql") else 4
    assert inserted == updated == kinds + begin, "versions, processed, the write, the records"
    assert mixing == kinds + 1 + begin, "an insert and an update: one per set of columns"
    assert len(large) == inserted + kinds * 2, "1001 rows: each statement cut in three"
    assert db.count("penduduk") == 1 + 10 + 100 + 111 + 1001
    rows = db.rows()
    updated_keys = [person(k, 1).nik for k in (1, *range(11, 21), *range(101, 201))]
    assert {rows[nik]["spbe_sequence"] for nik in updated_keys} == {4}
    assert {rows[nik]["status"] for nik in updated_keys} == {"MENINGGAL"}
    assert {rows[nik]["pekerjaan"] for nik in updated_keys} == {"PEKERJAAN VERSI 3"}


def kode_pos_table(db: Db, database_url: str) -> SqlSinkConfig:
    """A table whose kode_pos is NOT NULL with a default: only the database refuses a null."""
    metadata = sa.MetaData()
    sa.Table(
        "penduduk",
        metadata,
        sa.Column("nik", sa.String(16), primary_key=True),
        sa.Column("pekerjaan", sa.String(64)),
        sa.Column("kode_pos", sa.String(8), nullable=False, server_default="00000"),
        sa.Column("spbe_sequence", sa.BigInteger()),
    )
    metadata.create_all(db.engine)
    return SqlSinkConfig.model_validate(
        {
            "database_url": database_url,
            "table": "penduduk",
            "key_column": "nik",
            "events": {
                "PendudukUpdated": {
                    "key": "nik",
                    "columns": {"pekerjaan": "pekerjaan", "kode_pos": "alamat.kode_pos"},
                }
            },
        }
    )


def without_kode_pos(serial: int, version: int) -> PendudukUpdated:
    data = person(serial, version).to_json()
    data["alamat"]["kode_pos"] = None
    return PendudukUpdated.from_json(data)


@pytest.mark.parametrize("refused", ["insert", "update"])
async def test_a_batch_with_a_value_its_column_refuses_names_the_column_and_event_and_loses_none(
    database_url: str, db: Db, refused: str
) -> None:
    config = kode_pos_table(db, database_url)
    existing = [deliver(person(k, 1), sequence=1) for k in (1, 2, 3)]
    bad = deliver(without_kode_pos(3 if refused == "update" else 7, 2), sequence=2)
    batch = [
        deliver(person(1, 2), sequence=2),
        deliver(person(4, 1), sequence=1),
        deliver(person(2, 2), sequence=2),
        deliver(person(5, 1), sequence=1),
        deliver(person(4, 2), sequence=2),
        bad,
        deliver(person(6, 1), sequence=1),
        deliver(person(1, 3), sequence=3),
    ]
    async with SqlSink(config) as sink:
        assert await sink.apply_batch(existing) == [Outcome.APPLIED] * 3
        state = db.rows()
        with pytest.raises(RejectedEventError) as caught:
            await sink.apply_batch(batch)
        assert db.rows() == state, "nothing of the refused batch was committed"
        assert db.count() == 3
        rejected = []
        for delivery in batch:  # the subscriber's fallback: one event at a time
            try:
                assert await sink(delivery) is Outcome.APPLIED
            except RejectedEventError:
                rejected.append(delivery)
    error = caught.value
    assert (error.index, error.event_id, error.column) == (5, bad.envelope.id, "kode_pos")
    assert "column kode_pos refuses an empty value" in str(error)
    assert bad.event.nik not in str(error)
    assert rejected == [bad]
    assert db.count() == 3 + 7
    versions = {nik: row["spbe_sequence"] for nik, row in db.rows().items()}
    assert versions == {
        person(k, 1).nik: v for k, v in ((1, 3), (2, 2), (3, 1), (4, 2), (5, 1), (6, 1))
    }
    assert {row["kode_pos"] for row in db.rows().values()} == {person(1, 1).alamat.kode_pos}


async def test_a_second_unique_column_refusing_a_row_of_a_batch_names_its_event(
    database_url: str, db: Db
) -> None:
    config = unique_pekerjaan(db, database_url)
    batch = [deliver(person(k, 1, pekerjaan=f"PEKERJAAN {k}"), sequence=1) for k in (1, 2, 3)]
    batch.insert(1, deliver(person(4, 1, pekerjaan="GURU"), sequence=1))
    async with SqlSink(config) as sink:
        await sink(deliver(person(9, 1, pekerjaan="GURU"), sequence=1))
        with pytest.raises(RejectedEventError) as caught:
            await sink.apply_batch(batch)
        assert db.count("penduduk") == 1
        assert await sink.apply_batch(batch[:1] + batch[2:]) == [Outcome.APPLIED] * 3
    assert caught.value.index == 1
    assert caught.value.event_id == batch[1].envelope.id
    assert "unique" in str(caught.value)
    assert person(4, 1).nik not in str(caught.value)
    assert db.count("penduduk") == 4


# -- concurrency -----------------------------------------------------------------------------


async def test_two_sinks_racing_on_the_same_keys_keep_each_keys_newest_version_and_each_event_once(
    database_url: str, db: Db
) -> None:
    events = [deliver(person(k, v), sequence=v) for v in range(1, 9) for k in range(1, 4)]
    events.reverse()  # newest first: most of the rest arrive stale
    config = penduduk_config(database_url)
    async with SqlSink(config) as first, SqlSink(config) as second:
        outcomes = await asyncio.gather(
            *(sink(event) for event in events for sink in (first, second))
        )
    assert outcomes.count(Outcome.APPLIED) == len(events)
    assert outcomes.count(Outcome.DUPLICATE) == len(events)
    assert db.count() == len(events)
    rows = db.rows()
    assert len(rows) == 3
    assert {row["spbe_sequence"] for row in rows.values()} == {8}
    assert {row["pekerjaan"] for row in rows.values()} == {"PEKERJAAN VERSI 8"}


async def test_two_sinks_racing_with_batches_on_new_keys_apply_each_event_once(
    database_url: str, db: Db
) -> None:
    events = [deliver(person(k, v), sequence=v) for v in range(1, 4) for k in range(1, 31)]
    batches = [events[start : start + 15] for start in range(0, len(events), 15)]
    config = penduduk_config(database_url)
    async with SqlSink(config) as first, SqlSink(config) as second:
        outcomes: list[Outcome] = []
        for batch in batches:
            for result in await asyncio.gather(first.apply_batch(batch), second.apply_batch(batch)):
                outcomes += result
    assert outcomes.count(Outcome.APPLIED) == len(events)
    assert outcomes.count(Outcome.DUPLICATE) == len(events)
    assert db.count() == len(events)
    rows = db.rows()
    assert len(rows) == 30
    assert {row["spbe_sequence"] for row in rows.values()} == {3}
    assert {row["pekerjaan"] for row in rows.values()} == {"PEKERJAAN VERSI 3"}


# -- types and the table check at start ------------------------------------------------------


async def test_dates_instants_money_and_codes_get_proper_column_types_and_round_trip(
    database_url: str, db: Db
) -> None:
    config = SqlSinkConfig.model_validate(
        {
            "database_url": database_url,
            "table": "pajak_diterima",
            "key_column": "ntpd",
            "create_tables": True,
            "events": {
                "PajakDaerahDibayar": {
                    "key": "ntpd",
                    "columns": {
                        "jenis_pajak": "jenis_pajak",
                        "nop": "objek.nop",
                        "npwpd": "objek.npwpd",
                        "tahun_pajak": "tahun_pajak",
                        "pokok": "pokok",
                        "total": "total",
                        "waktu_bayar": "waktu_bayar",
                        "kanal": "kanal",
                    },
                    "set": {"sumber": "BAPENDA", "tanggal_rekap": date(2026, 12, 1)},
                }
            },
        }
    )
    async with SqlSink(config) as sink:
        assert await sink(deliver(payment(1), sequence=1)) is Outcome.APPLIED
    table = db.table("pajak_diterima")
    assert isinstance(table.c.pokok.type, sa.Numeric)
    assert (table.c.pokok.type.precision, table.c.pokok.type.scale) == (18, 2)
    assert isinstance(table.c.waktu_bayar.type, sa.DateTime)
    assert isinstance(table.c.tanggal_rekap.type, sa.Date)
    assert isinstance(table.c.jenis_pajak.type, sa.String)
    assert isinstance(table.c.tahun_pajak.type, sa.Integer)
    (row,) = db.rows("pajak_diterima", "ntpd").values()
    assert row["pokok"] == Decimal("1250000.00")
    assert row["total"] == Decimal("1275000.00")
    paid = row["waktu_bayar"]
    assert paid.replace(tzinfo=paid.tzinfo or UTC) == datetime(2026, 11, 28, 3, 15, tzinfo=UTC)
    assert row["jenis_pajak"] == "PBB_P2"
    assert row["kanal"] == "QRIS"
    assert row["nop"] == "327302000100200150"
    assert row["npwpd"] is None
    assert row["tahun_pajak"] == 2026
    assert row["tanggal_rekap"] == date(2026, 12, 1)
    assert row["sumber"] == "BAPENDA"


async def test_a_table_that_does_not_fit_the_mapping_is_refused_at_start_naming_each_key(
    database_url: str, db: Db
) -> None:
    db.execute(
        sa.text(
            "CREATE TABLE penduduk (nik VARCHAR(16), nama_lengkap VARCHAR(255), "
            "tanggal_lahir INTEGER, kode_kecamatan VARCHAR(8) NOT NULL)"
        )
    )
    settings = penduduk_settings(database_url, create_tables=False)
    with pytest.raises(ConfigError) as caught:
        await SqlSink(SqlSinkConfig.model_validate(settings)).start()
    message = str(caught.value)
    assert "key_column: penduduk.nik is neither the primary key nor unique" in message
    assert "version_column: table penduduk has no column spbe_sequence" in message
    assert "events.PendudukUpdated.columns.pekerjaan: table penduduk has no column pekerjaan" in (
        message
    )
    assert "events.PendudukUpdated.columns.tanggal_lahir: column penduduk.tanggal_lahir is" in (
        message
    )
    assert "cannot hold a date value" in message
    assert "events.KematianDicatat.set.status: table penduduk has no column status" in message
    assert "events.PendudukUpdated: inserting a row leaves penduduk.kode_kecamatan empty" in (
        message
    )


async def test_a_missing_table_without_create_tables_is_refused_at_start(database_url: str) -> None:
    sink = SqlSink(penduduk_config(database_url, create_tables=False))
    with pytest.raises(ConfigError, match="table: table penduduk does not exist"):
        await sink.start()


# -- with a real broker ----------------------------------------------------------------------


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


def history(keys: int, versions: int) -> list[tuple[SpbeEvent, int]]:
    """``versions`` updates of each of ``keys`` residents, interleaved, sequence 1..versions."""
    return [(person(k, v), v) for v in range(1, versions + 1) for k in range(1, keys + 1)]


async def eventually(
    check: Callable[[], bool], *, timeout_s: float = 240.0, watch: asyncio.Task[None] | None = None
) -> None:
    """Wait until ``check()`` holds; fail clearly if it never does or ``watch`` dies."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not check():
        if watch is not None and watch.done():
            watch.result()
            pytest.fail("the subscriber stopped before the condition held")
        if loop.time() > deadline:
            pytest.fail(f"condition not met within {timeout_s}s")
        await asyncio.sleep(0.2)


async def offsets_caught_up(bootstrap: str, topic: str, group: str, partitions: int) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    mine = {tp: meta.offset for tp, meta in committed.items() if tp.topic == topic}
    return bool(mine == ends)


def assert_newest_versions(db: Db, *, keys: int, versions: int) -> None:
    rows = db.rows()
    assert len(rows) == keys
    for serial in range(1, keys + 1):
        row = rows[person(serial, 1).nik]
        assert row["spbe_sequence"] == versions, f"resident {serial}"
        assert row["pekerjaan"] == f"PEKERJAAN VERSI {versions}"


async def test_hundreds_of_updates_and_a_death_through_a_subscriber_end_in_the_stewards_state(
    kafka_bootstrap: str, new_topic: TopicFactory, database_url: str, db: Db
) -> None:
    topic = await new_topic(partitions=3)
    keys, versions = 30, 10
    results = await publish(kafka_bootstrap, topic, history(keys, versions))
    config = PublisherConfig(
        bootstrap_servers=kafka_bootstrap,
        source=SOURCE_DUKCAPIL,
        key_secret=SecretBytes(SECRET),
        topic_overrides={"PendudukUpdated": topic, "KematianDicatat": topic},
    )
    async with Publisher(config) as publisher:
        for serial in range(1, 6):  # an outbox relay publishing again after a crash
            last = results[(versions - 1) * keys + serial - 1]
            await publisher.publish(
                person(serial, versions), sequence=versions, event_id=last.event_id
            )
        for serial in range(6, 11):  # a late, stale correction
            await publisher.publish(person(serial, 2, pekerjaan="KOREKSI LAMA"), sequence=2)
        await publisher.publish(death(7), sequence=versions + 1)
    published, distinct = keys * versions + 11, keys * versions + 6

    group = f"dinsos-penduduk-{uuid.uuid4().hex[:8]}"
    subscriber_config = SubscriberConfig(
        bootstrap_servers=kafka_bootstrap,
        subscriber_id=group,
        topics=(topic,),
        retry=FAST_RETRY,
        max_poll_records=100,
    )
    async with (
        SqlSink(penduduk_config(database_url)) as sink,
        Subscriber(subscriber_config, sink) as subscriber,
    ):
        runner = asyncio.create_task(subscriber.run())
        stats = subscriber.stats
        await eventually(lambda: stats.applied + stats.duplicates == published, watch=runner)
        subscriber.request_stop()
        await runner
    assert stats.dead_lettered == 0
    assert stats.duplicates == 5
    assert db.count() == distinct
    rows = db.rows()
    dead = rows.pop(death(7).nik)
    assert dead["status"] == "MENINGGAL"
    assert dead["spbe_sequence"] == versions + 1
    assert dead["pekerjaan"] == f"PEKERJAAN VERSI {versions}"
    assert len(rows) == keys - 1
    assert {row["spbe_sequence"] for row in rows.values()} == {versions}
    assert {row["pekerjaan"] for row in rows.values()} == {f"PEKERJAAN VERSI {versions}"}
    assert {row["status"] for row in rows.values()} == {None}
    assert await offsets_caught_up(kafka_bootstrap, topic, group, 3)


async def test_an_event_its_column_refuses_in_a_subscribers_batch_is_dead_lettered_alone(
    kafka_bootstrap: str, new_topic: TopicFactory, database_url: str, db: Db
) -> None:
    config = kode_pos_table(db, database_url)
    topic = await new_topic(partitions=1)
    events: list[tuple[SpbeEvent, int]] = [(person(k, 1), 1) for k in range(1, 11)]
    events[6] = (without_kode_pos(7, 1), 1)
    events += [(person(k, 2), 2) for k in range(1, 11) if k != 7]
    await publish(kafka_bootstrap, topic, events)
    group = f"dinsos-kodepos-{uuid.uuid4().hex[:8]}"
    subscriber_config = SubscriberConfig(
        bootstrap_servers=kafka_bootstrap,
        subscriber_id=group,
        topics=(topic,),
        retry=FAST_RETRY,
        max_poll_records=100,
    )
    async with (
        SqlSink(config) as sink,
        Subscriber(subscriber_config, sink, batch_handler=sink.apply_batch) as subscriber,
    ):
        runner = asyncio.create_task(subscriber.run())
        stats = subscriber.stats
        await eventually(lambda: stats.applied + stats.dead_lettered == len(events), watch=runner)
        subscriber.request_stop()
        await runner
    assert (stats.applied, stats.dead_lettered) == (len(events) - 1, 1)
    (dead,) = await read_all(kafka_bootstrap, dlq_topic(topic, group), 1)
    cause = dict(dead.headers)
    assert cause["dlq_error_class"].endswith(b"RejectedEventError")
    assert b"column kode_pos refuses an empty value" in cause["dlq_error_message"]
    assert person(7, 1).nik.encode() not in cause["dlq_error_message"]
    assert db.count() == len(events) - 1, "every other event of the batch was applied"
    rows = db.rows()
    assert person(7, 1).nik not in rows
    assert len(rows) == 9
    assert {row["spbe_sequence"] for row in rows.values()} == {2}
    assert await offsets_caught_up(kafka_bootstrap, topic, group, 1)


def _start_app(
    bootstrap: str, topic: str, group: str, config: Path, *, delay_ms: int
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.sql_sink_app",
            "--bootstrap",
            bootstrap,
            "--topic",
            topic,
            "--subscriber",
            group,
            "--config",
            str(config),
            "--delay-ms",
            str(delay_ms),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.mark.slow
async def test_a_sink_killed_mid_stream_restarts_into_the_stewards_state_losing_nothing(
    kafka_bootstrap: str, new_topic: TopicFactory, database_url: str, db: Db, tmp_path: Path
) -> None:
    topic = await new_topic(partitions=3)
    keys, versions = 30, 20
    await publish(kafka_bootstrap, topic, history(keys, versions))
    total = keys * versions
    config = tmp_path / "sink.yaml"
    config.write_text(yaml.safe_dump(penduduk_settings(database_url)))

    group = f"sink-kill-{uuid.uuid4().hex[:8]}"
    first = _start_app(kafka_bootstrap, topic, group, config, delay_ms=10)
    try:
        await eventually(lambda: db.count() >= total // 4)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=60)
    killed_at = db.count()
    assert killed_at < total, "the kill landed mid-stream"

    second = _start_app(kafka_bootstrap, topic, group, config, delay_ms=0)
    try:
        await eventually(lambda: db.count() == total)
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=120) == 0
    assert db.count() == total, "every event recorded exactly once"
    assert_newest_versions(db, keys=keys, versions=versions)
    assert await offsets_caught_up(kafka_bootstrap, topic, group, 3)
