"""The relay's batch on real databases: one pipelined publish, marks in one statement, and a
claim whose cost does not depend on the backlog (index plans, statements per cycle)."""

from __future__ import annotations

import asyncio
import io
import json
import random
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, TopicPartition

from adapters.db import Dialect, create_engine, dialect_of
from adapters.sources.outbox import OutboxRelay, RelayStats, create_outbox_table
from adapters.sources.outbox.store import OutboxStore, candidates_query, lock_query
from bus.contract.envelope import new_event_id
from bus.contract.plan import OutgoingRecord
from bus.errors import PublishError
from bus.publisher import Publisher, PublishResult
from tests.conftest import TopicFactory
from tests.integration.test_outbox import (
    OUTBOX,
    eventually,
    first_occurrences,
    header,
    izin_json,
    relay_config,
    rows,
    unpublished,
)
from tests.support.events import izin, penduduk
from tests.support.kafka import partitions_of, read_all

pytestmark = pytest.mark.integration

HOUR_MS = 3_600_000


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = create_engine(database_url)
    create_outbox_table(engine)
    yield engine
    engine.dispose()


def permit_row(key: int, versi: int, **values: Any) -> dict[str, Any]:
    """An outbox row of permit ``key``, version ``versi``, as an application writes it."""
    return {
        "event_id": new_event_id(),
        "event_type": "IzinDiterbitkan",
        "aggregate_id": izin(key).nomor_izin,
        "sequence": versi,
        "payload": izin_json(key, versi),
        **values,
    }


def insert(engine: sa.Engine, batch: list[dict[str, Any]]) -> list[int]:
    """Insert ``batch`` in order, in one transaction; return the ids."""
    with engine.begin() as conn:
        return [
            int(conn.execute(OUTBOX.insert().values(**v)).inserted_primary_key[0]) for v in batch
        ]


async def records_on(bootstrap: str, topic: str) -> int:
    """How many records the topic holds (the sum of its partitions' end offsets)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in await partitions_of(bootstrap, topic)]
        return sum((await consumer.end_offsets(parts)).values())
    finally:
        await consumer.stop()


# -- per-aggregate order in one pipelined batch -------------------------------------------


async def test_a_poison_row_among_many_aggregates_stops_its_own_and_nothing_after_it_is_sent(
    engine: sa.Engine, database_url: str, kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic(partitions=3)
    keys, versions = 40, 5
    poison = {
        (7, 3): {"payload": izin_json(7, 3, nib="12AB")},  # breaks a field rule
        (13, 1): {"payload": "{'nomor_izin': 13"},  # not JSON, at the aggregate's head
        # another steward's event type: the publisher refuses it; found before sending
        (21, 2): {"event_type": "PendudukUpdated", "payload": json.dumps(penduduk(21).to_json())},
        (29, 4): {"sequence": -1},  # not a ce_sequence
    }
    batch = [
        permit_row(k, v, **poison.get((k, v), {}))
        for v in range(1, versions + 1)
        for k in range(keys)
    ]
    ids = insert(engine, batch)
    by_row = dict(
        zip(((k, v) for v in range(1, versions + 1) for k in range(keys)), ids, strict=True)
    )
    held = {(k, v) for (k, first) in poison for v in range(first, versions + 1)}
    config = relay_config(
        database_url,
        kafka_bootstrap,
        topic,
        batch_size=500,
        retry_backoff_ms=HOUR_MS,
        max_retry_backoff_ms=HOUR_MS,
    )

    async with OutboxRelay(config) as relay:
        first = await relay.run_once()
        assert first == RelayStats(claimed=len(batch), published=len(batch) - len(held), failed=4)
        state = rows(engine)
        for (k, v), row_id in by_row.items():
            row = state[row_id]
            assert (row.published_at is None) == ((k, v) in held), (k, v)
            assert row.attempts == (1 if (k, v) in poison else 0), (k, v)
        assert "EventValidationError" in state[by_row[7, 3]].last_error
        assert "not valid JSON" in state[by_row[13, 1]].last_error
        assert "steward" in state[by_row[21, 2]].last_error
        assert "ce_sequence" in state[by_row[29, 4]].last_error

        # Nothing after a refused row was sent: the topic holds exactly the marked rows.
        published = len(batch) - len(held)
        assert await records_on(kafka_bootstrap, topic) == published
        records = await read_all(kafka_bootstrap, topic, published)
        assert {header(r, "ce_id") for r in records} == {
            state[i].event_id for kv, i in by_row.items() if kv not in held
        }
        per_key = first_occurrences(records)
        expected = {izin(k).nomor_izin.encode(): [1, 2, 3, 4, 5] for k in range(keys)}
        for k, first_bad in poison:
            expected[izin(k).nomor_izin.encode()] = list(range(1, first_bad))
        assert per_key == {key: s for key, s in expected.items() if s}

        assert await relay.run_once() == RelayStats(), "held rows wait for the retry time"

        with engine.begin() as conn:
            conn.execute(
                OUTBOX.update()
                .where(OUTBOX.c.id == by_row[7, 3])
                .values(payload=izin_json(7, 3), next_attempt_at=None)
            )
        assert await relay.run_once() == RelayStats(claimed=3, published=3, failed=0)

    records = await read_all(kafka_bootstrap, topic, published + 3)
    assert first_occurrences(records)[izin(7).nomor_izin.encode()] == [1, 2, 3, 4, 5]


async def test_rows_behind_a_waiting_row_never_fill_the_batch_of_other_aggregates(
    engine: sa.Engine, database_url: str, kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    """A poison head with a long tail written first: the other aggregates still flow."""
    topic = await new_topic()
    tail = insert(
        engine,
        [permit_row(1, 1, payload="not json")] + [permit_row(1, v) for v in range(2, 41)],
    )
    others = insert(engine, [permit_row(k, v) for v in (1, 2) for k in range(2, 22)])
    config = relay_config(
        database_url,
        kafka_bootstrap,
        topic,
        batch_size=10,
        retry_backoff_ms=HOUR_MS,
        max_retry_backoff_ms=HOUR_MS,
    )
    async with OutboxRelay(config) as relay:
        assert await relay.run_once() == RelayStats(claimed=10, published=0, failed=1)
        cycles = [await relay.run_once() for _ in range(5)]
    assert [c.published for c in cycles] == [10, 10, 10, 10, 0]
    state = rows(engine)
    assert all(state[i].published_at is not None for i in others)
    assert all(state[i].published_at is None for i in tail)
    records = await read_all(kafka_bootstrap, topic, len(others))
    assert all(s == [1, 2] for s in first_occurrences(records).values())


@pytest.mark.parametrize("database_url", ["postgres", "mariadb"], indirect=True)
async def test_two_relays_losing_acknowledgements_still_keep_every_aggregate_in_order(
    engine: sa.Engine, database_url: str, kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    """Sent, then reported failed: the rows after it go out again, after it, never before."""
    topic = await new_topic(partitions=3)
    keys, versions = 12, 15
    ids = insert(engine, [permit_row(k, v) for v in range(1, versions + 1) for k in range(keys)])
    config = relay_config(database_url, kafka_bootstrap, topic, batch_size=20)
    chance = random.Random(7)

    class LosesAcks(Publisher):
        async def publish_records(
            self, records: Sequence[OutgoingRecord]
        ) -> list[PublishResult | PublishError]:
            results = await super().publish_records(records)
            return [
                PublishError("not acknowledged: RequestTimedOutError", retriable=True)
                if chance.random() < 0.15
                else result
                for result in results
            ]

    async with (
        LosesAcks(config.publisher_config()) as one,
        LosesAcks(config.publisher_config()) as two,
        OutboxRelay(config, publisher=one) as first,
        OutboxRelay(config, publisher=two) as second,
    ):
        runners = [asyncio.create_task(first.run()), asyncio.create_task(second.run())]
        await eventually(lambda: unpublished(engine) == 0, watch=runners)
        first.request_stop()
        second.request_stop()
        await asyncio.gather(*runners)

    assert first.stats.published + second.stats.published == len(ids)
    assert first.stats.failed + second.stats.failed > 0, "acknowledgements were lost"
    records = await read_all(kafka_bootstrap, topic, await records_on(kafka_bootstrap, topic))
    assert {header(r, "ce_id") for r in records} == {row.event_id for row in rows(engine).values()}
    in_order = list(range(1, versions + 1))
    assert {k: s for k, s in first_occurrences(records).items() if s != in_order} == {}


# -- what a cycle costs ---------------------------------------------------------------------


@pytest.mark.parametrize("size", [4, 400])
async def test_statements_per_cycle_do_not_grow_with_the_batch(
    size: int,
    engine: sa.Engine,
    database_url: str,
    kafka_bootstrap: str,
    new_topic: TopicFactory,
) -> None:
    topic = await new_topic(partitions=2)
    # Every fourth aggregate's head fails: a quarter of the batch fails, the rest publishes.
    batch = [
        permit_row(k, 1, **({"payload": "not json"} if k % 4 == 0 else {})) for k in range(size)
    ]
    insert(engine, batch)
    config = relay_config(
        database_url,
        kafka_bootstrap,
        topic,
        batch_size=size,
        retry_backoff_ms=HOUR_MS,
        max_retry_backoff_ms=HOUR_MS,
    )
    async with OutboxRelay(config) as relay:
        assert relay._store is not None
        statements: list[str] = []

        def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            statements.append(statement.split(None, 1)[0].upper())

        sa.event.listen(relay._store.engine, "before_cursor_execute", count)
        stats = await relay.run_once()
    assert stats == RelayStats(claimed=size, published=size - size // 4, failed=size // 4)
    # claim: candidates (+ one lock on servers); mark: one UPDATE for the published ids,
    # one executemany for the failures (+ BEGIN IMMEDIATE on SQLite, twice)
    expected = {
        Dialect.POSTGRESQL: ["SELECT", "SELECT", "UPDATE", "UPDATE"],
        Dialect.MARIADB: ["SELECT", "SELECT", "UPDATE", "UPDATE"],
        Dialect.SQLITE: ["BEGIN", "SELECT", "BEGIN", "UPDATE", "UPDATE"],
    }[dialect_of(engine)]
    assert statements == expected


def _explain(engine: sa.Engine, query: sa.Select[Any]) -> list[str]:
    """The plan ``engine``'s database chooses for ``query``, one line per step."""
    kind = dialect_of(engine)
    compiled = query.compile(dialect=engine.dialect, compile_kwargs={"render_postcompile": True})
    params: Any = dict(compiled.params)
    if kind is not Dialect.POSTGRESQL:  # DATETIME columns hold naive UTC
        params = {
            k: v.replace(tzinfo=None) if isinstance(v, datetime) else v for k, v in params.items()
        }
    with engine.connect() as conn:
        if kind is Dialect.POSTGRESQL:
            return [r[0] for r in conn.exec_driver_sql("EXPLAIN " + compiled.string, params)]
        if kind is Dialect.MARIADB:
            result = conn.exec_driver_sql("EXPLAIN " + compiled.string, params).mappings()
            return [f"{r['table']} type={r['type']} key={r['key']}" for r in result]
        positional = tuple(params[name] for name in compiled.positiontup or ())
        result = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + compiled.string, positional)
        return [str(r[3]) for r in result]


#: ``n`` rows of one valid payload over 50,000 aggregates, by each database's row generator.
BACKLOG = {
    Dialect.POSTGRESQL: "SELECT 'e' || g, 'IzinDiterbitkan', 'agg-' || mod(g, 50000), 1, "
    "{payload} FROM generate_series(1, {n}) AS g",
    Dialect.MARIADB: "SELECT concat('e', seq), 'IzinDiterbitkan', "
    "concat('agg-', mod(seq, 50000)), 1, {payload} FROM seq_1_to_{n}",
    Dialect.SQLITE: "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g "
    "WHERE n < {n}) SELECT 'e' || n, 'IzinDiterbitkan', 'agg-' || (n % 50000), 1, "
    "{payload} FROM g",
}


def fill_backlog(engine: sa.Engine, n: int) -> None:
    """``n`` pending rows in one INSERT ... SELECT; the first 1000 published, 3 waiting."""
    kind = dialect_of(engine)
    literal = izin_json(1, 1).replace("'", "''")
    if kind is Dialect.MARIADB:
        literal = literal.replace("\\", "\\\\")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO spbe_outbox (event_id, event_type, aggregate_id, sequence, payload) "
            + BACKLOG[kind].format(payload=f"'{literal}'", n=n)
        )
        now = datetime.now(UTC)
        conn.execute(OUTBOX.update().where(OUTBOX.c.id <= 1000).values(published_at=now))
        conn.execute(
            OUTBOX.update()
            .where(OUTBOX.c.id.in_([1001, 1002, 1003]))
            .values(attempts=1, next_attempt_at=now + timedelta(hours=1))
        )
        if kind is Dialect.POSTGRESQL:
            conn.exec_driver_sql("ANALYZE spbe_outbox")
        elif kind is Dialect.MARIADB:
            conn.exec_driver_sql("ANALYZE TABLE spbe_outbox")
        # SQLite: left without statistics, as most SQLite databases are


def test_the_claim_reads_a_200000_row_backlog_through_its_indexes(engine: sa.Engine) -> None:
    kind = dialect_of(engine)
    fill_backlog(engine, 200_000)
    now = datetime.now(UTC)
    candidates = _explain(engine, candidates_query(OUTBOX, 500, now))
    lock = _explain(engine, lock_query(OUTBOX, list(range(1004, 1504)), now, skip_locked=True))
    print(f"{kind.value} candidates:", *candidates, "lock:", *lock, sep="\n  ")
    if kind is Dialect.POSTGRESQL:
        for plan in (candidates, lock):
            assert any("Index" in line and "Scan using" in line for line in plan), plan
            assert not any("Seq Scan" in line for line in plan), plan
            assert not any("Sort" in line for line in plan), plan
        assert "ix_spbe_outbox_queue" in candidates[1]
        assert any("Index Only Scan using ix_spbe_outbox_retry" in line for line in candidates)
    elif kind is Dialect.MARIADB:
        for plan in (candidates, lock):
            assert not any("type=ALL" in line for line in plan), plan
        assert candidates[0].endswith("key=ix_spbe_outbox_queue")
        assert any(line.endswith("key=ix_spbe_outbox_retry") for line in candidates)
    else:
        assert candidates[0] == "SCAN spbe_outbox USING INDEX ix_spbe_outbox_queue"
        assert any("USING INDEX ix_spbe_outbox_retry" in line for line in candidates)
        assert not any("TEMP B-TREE" in line for line in candidates), candidates

    claim = OutboxStore(engine, OUTBOX).claim(500, now)
    try:
        claimed = claim.rows
    finally:
        claim.close()
    assert [row.id for row in claimed] == list(range(1004, 1504)), "the first 500 ready rows"
    held_back = {f"agg-{i % 50000}" for i in (1001, 1002, 1003)}
    assert not {row.aggregate_id for row in claimed} & held_back


# -- the indexes of an existing table -------------------------------------------------------

OLD_SQLITE_TABLE = """
CREATE TABLE spbe_outbox (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, event_id VARCHAR(36) NOT NULL,
    event_type VARCHAR(100) NOT NULL, aggregate_id VARCHAR(255) NOT NULL, sequence BIGINT,
    payload TEXT NOT NULL, created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    published_at DATETIME, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,
    next_attempt_at DATETIME, CONSTRAINT uq_spbe_outbox_event_id UNIQUE (event_id)
);
CREATE INDEX ix_spbe_outbox_pending ON spbe_outbox (published_at, aggregate_id, id)
"""


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_table_of_an_earlier_release_gets_a_warning_naming_what_to_run(
    database_url: str, kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    from bus.logs import configure_logging

    topic = await new_topic()
    engine = create_engine(database_url)
    with engine.begin() as conn:
        for statement in OLD_SQLITE_TABLE.split(";"):
            conn.exec_driver_sql(statement)
    insert(engine, [permit_row(1, 1)])
    config = relay_config(database_url, kafka_bootstrap, topic)

    async def start_and_log() -> list[dict[str, Any]]:
        captured = io.StringIO()
        configure_logging(json=True, level="INFO", stream=captured)
        try:
            async with OutboxRelay(config) as relay:
                assert (await relay.run_once()).published <= 1, "it works without them"
        finally:
            configure_logging(json=True, level="INFO")
        lines = [json.loads(line) for line in captured.getvalue().splitlines()]
        return [line for line in lines if line["event"] == "outbox.index_missing"]

    (warning,) = await start_and_log()
    assert warning["run"] == [
        "CREATE INDEX ix_spbe_outbox_published ON spbe_outbox (published_at) "
        "WHERE published_at IS NOT NULL",
        "CREATE INDEX ix_spbe_outbox_queue ON spbe_outbox (id) WHERE published_at IS NULL",
        "CREATE INDEX ix_spbe_outbox_retry ON spbe_outbox (next_attempt_at, aggregate_id) "
        "WHERE published_at IS NULL AND next_attempt_at IS NOT NULL",
        "DROP INDEX ix_spbe_outbox_pending",
    ]
    assert "docs/outbox.md" in warning["fix"]

    create_outbox_table(engine)  # an existing table gets the indexes it lacks
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX ix_spbe_outbox_pending")
    engine.dispose()
    assert await start_and_log() == []
