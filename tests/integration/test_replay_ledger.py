"""Replays and redrives of a projected topic, on the real broker: ledger entries of kind replay.

The projected records are the contract service's own (tests/integration/
test_contract_service.py runs it the same way), its ledger a real database.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from aiokafka import TopicPartition
from pydantic import SecretBytes

from adapters.contracts import ContractService
from adapters.db import create_engine
from adapters.ledger import LedgerStore, create_ledger_table
from bus.connection import KafkaConnection
from bus.decoding import RecordDecoder
from bus.delivery import Delivery, Outcome, RetryPolicy
from bus.errors import ConfigError, PermanentError
from bus.ledger import LedgerKind
from bus.ops.dlq import read_dead_letters, redrive
from bus.ops.reapply import reapply
from bus.ops.replay import plan_replay
from bus.ops.replay_ledger import ReplayLedger
from bus.ops.replay_plan import ReplayMode, ReplayRequest
from bus.publisher import Publisher, PublisherConfig
from bus.subscriber import Subscriber, SubscriberConfig
from tests.integration.test_contract_service import (
    LEDGER_SECRET,
    PAIRWISE_SECRET,
    STEWARD_SECRET,
    TODAY,
    catalogue_subscription,
)
from tests.integration.test_replay import audit_of, cli, eventually
from tests.support.events import SOURCE_DUKCAPIL, penduduk
from tests.support.kafka import committed_offsets, create_topic

pytestmark = pytest.mark.integration

EVENTS = 4
FAST = RetryPolicy(max_attempts=2, initial_backoff_ms=10, max_backoff_ms=50, jitter_ms=10)


async def delivered_projection(bootstrap: str, ledger_url: str) -> tuple[str, str, LedgerStore]:
    """Publish EVENTS events and let the contract service deliver them to one subscriber.

    Returns its projected topic, its subscriber id and the ledger (with the secret, to ask
    who received a NIK); the ledger then holds one delivery entry per event.
    """
    raw = f"spbe.t{uuid.uuid4().hex[:10]}.penduduk.v1"
    subscriber = f"dinsos-{uuid.uuid4().hex[:8]}"
    subscription = catalogue_subscription("dinsos-penduduk", raw).model_copy(
        update={"subscriber": subscriber}
    )
    projected = f"{raw}.for.{subscriber}"
    await create_topic(bootstrap, raw, partitions=2)
    await create_topic(bootstrap, projected, partitions=2)
    config = PublisherConfig(
        bootstrap_servers=bootstrap,
        source=SOURCE_DUKCAPIL,
        key_secret=SecretBytes(STEWARD_SECRET),
        topic_overrides={"PendudukUpdated": raw},
    )
    async with Publisher(config) as publisher:
        await publisher.publish_many([penduduk(serial) for serial in range(1, EVENTS + 1)])
    engine = create_engine(ledger_url)
    create_ledger_table(engine)
    store = LedgerStore(engine, LEDGER_SECRET)
    service = ContractService(
        [subscription],
        pairwise_secret=SecretBytes(PAIRWISE_SECRET),
        ledger=store,
        ledger_secret=SecretBytes(LEDGER_SECRET),
        kafka=KafkaConnection(bootstrap_servers=bootstrap),
        group_id=f"spbe-contracts-{uuid.uuid4().hex[:8]}",
        today=lambda: TODAY,
    )
    produced = 0
    async with service:
        for _ in range(60):  # fetches, not time: each waits for records at most 1 s
            produced += await service.run_once()
            if produced >= EVENTS:
                break
    assert produced == EVENTS
    return projected, subscriber, store


def kinds_of(store: LedgerStore, serial: int) -> list[LedgerKind]:
    """The kinds of the entries of ``penduduk(serial)``'s NIK, oldest first."""
    return [e.kind for e in reversed(store.who_received(penduduk(serial).nik).entries)]


def every_resident_replayed_once(store: LedgerStore, subscriber: str) -> None:
    for serial in range(1, EVENTS + 1):
        answer = store.who_received(penduduk(serial).nik)  # found by NIK: the same subject
        assert [e.kind for e in reversed(answer.entries)] == [
            LedgerKind.DELIVERY,
            LedgerKind.REPLAY,
        ]
        delivery, replay = reversed(answer.entries)
        assert replay.event_id == delivery.event_id
        assert replay.subscriber == delivery.subscriber == subscriber
        assert (replay.opd, replay.purpose, replay.legal_basis) == (
            delivery.opd,
            delivery.purpose,
            delivery.legal_basis,
        )
        assert replay.delivered_at >= delivery.delivered_at
        (summary,) = answer.subscribers
        assert summary.deliveries == 2


async def test_reapply_of_a_projected_topic_records_a_replay_entry_per_event_first(
    kafka_bootstrap: str, database_url: str
) -> None:
    projected, subscriber, store = await delivered_projection(kafka_bootstrap, database_url)
    request = ReplayRequest(
        subscriber=subscriber,
        topics=(projected,),
        reason="restore DB uji",
        mode=ReplayMode.REAPPLY,
        from_offsets={TopicPartition(projected, 0): 0, TopicPartition(projected, 1): 0},
    )
    windows = await plan_replay(kafka_bootstrap, request)
    applied: list[str] = []
    entries_when_applied: list[int] = []

    async def apply(delivery: Delivery) -> Outcome:
        # Ledger first: this event's replay entry is written before it reaches the sink.
        replays = store.who_received(delivery.event.nik).entries  # type: ignore[attr-defined]
        entries_when_applied.append(sum(e.kind is LedgerKind.REPLAY for e in replays))
        applied.append(delivery.envelope.id)
        return Outcome.APPLIED

    async with RecordDecoder.connect(kafka_bootstrap) as decoder:
        with pytest.raises(ConfigError, match="no ledger is given") as refused:
            await reapply(kafka_bootstrap, windows, apply, decoder)
        assert "--ledger-url" in (refused.value.fix or "")
        assert applied == []
        assert all(kinds_of(store, n) == [LedgerKind.DELIVERY] for n in range(1, EVENTS + 1))

        ledger = ReplayLedger(LedgerStore(store._engine, None), subscriber)
        report = await reapply(kafka_bootstrap, windows, apply, decoder, ledger=ledger)
    assert report.applied == len(applied) == EVENTS
    assert report.ledger_entries == ledger.recorded == EVENTS
    assert report.as_result()["ledger_replay_entries"] == EVENTS
    assert entries_when_applied == [1] * EVENTS
    every_resident_replayed_once(store, subscriber)
    store._engine.dispose()


async def test_rewind_of_a_projected_topic_records_the_window_before_committing(
    kafka_bootstrap: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    projected, subscriber, store = await delivered_projection(kafka_bootstrap, url)
    replay = (
        "replay", "--subscriber", subscriber, "--topic", projected, "--bootstrap", kafka_bootstrap,
        "--from-offsets", "0:0,1:0", "--reason", "restore DB uji",
    )  # fmt: skip
    assert await cli(*replay) == 1  # no ledger: refused before anything happens
    assert "--ledger-url" in capsys.readouterr().err
    assert await committed_offsets(kafka_bootstrap, subscriber) == {}

    other = create_engine(f"sqlite:///{tmp_path / 'another-ledger.db'}")
    create_ledger_table(other)  # a ledger the contract service never wrote
    other.dispose()
    wrong = f"sqlite:///{tmp_path / 'another-ledger.db'}"
    assert await cli(*replay, "--ledger-url", wrong) == 1
    refused = capsys.readouterr().err
    assert "have no delivery entry" in refused
    assert "--ledger-url" in refused
    assert await committed_offsets(kafka_bootstrap, subscriber) == {}  # nothing rewound

    assert await cli(*replay, "--ledger-url", url) == 0
    assert f"recorded {EVENTS} replay entries in the delivery ledger" in capsys.readouterr().out
    offsets = await committed_offsets(kafka_bootstrap, subscriber)
    assert offsets == {TopicPartition(projected, 0): 0, TopicPartition(projected, 1): 0}
    every_resident_replayed_once(store, subscriber)
    failed, audited = await audit_of(kafka_bootstrap, subscriber, "replay.rewind")
    assert failed.result["error"] == "ReplayRefusedError"
    assert audited.result["ledger_replay_entries"] == EVENTS
    store._engine.dispose()


async def test_redrive_of_a_projected_topics_dead_letters_records_a_replay_entry_each(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    projected, subscriber, store = await delivered_projection(kafka_bootstrap, url)

    async def refuse(delivery: Delivery) -> None:
        raise PermanentError("kolom tidak cocok")

    config = SubscriberConfig(
        bootstrap_servers=kafka_bootstrap,
        subscriber_id=subscriber,
        topics=(projected,),
        retry=FAST,
    )
    async with Subscriber(config, refuse) as running:
        runner = asyncio.create_task(running.run())
        await eventually(lambda: running.stats.dead_lettered == EVENTS)
        running.request_stop()
        await runner
    letters = await read_dead_letters(kafka_bootstrap, subscriber, projected)
    assert len(letters) == EVENTS

    async def apply(delivery: Delivery) -> Outcome:
        return Outcome.APPLIED

    async with RecordDecoder.connect(kafka_bootstrap) as decoder:
        with pytest.raises(ConfigError, match="redrive of the projected topic"):
            await redrive(letters, apply, decoder)
        ledger = ReplayLedger(LedgerStore(store._engine, None), subscriber)
        report = await redrive(letters, apply, decoder, ledger=ledger)
    assert len(report.applied) == EVENTS
    assert report.ledger_entries == EVENTS
    every_resident_replayed_once(store, subscriber)
    store._engine.dispose()
