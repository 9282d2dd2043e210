"""The ledger entries of a replay or redrive: which topics need them, and how they are made."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.db import create_engine
from adapters.ledger import LedgerStore, create_ledger_table
from bus.cli.ledger_cmd import LEDGER_URL_ENV
from bus.cli.main import main
from bus.errors import ConfigError
from bus.ledger import LedgerEntry, LedgerKind, LedgerSubjects
from bus.ops.replay_ledger import ReplayLedger, event_id_of, is_projected, require_ledger
from bus.ops.replay_plan import ReplayError, ReplayRefusedError

RAW = "spbe.dukcapil.penduduk.v1"
SUBSCRIBER = "dinsos-penduduk"
PROJECTED = f"{RAW}.for.{SUBSCRIBER}"
NIK = "3273024508900001"
SECRET = b"ledger-secret-0123456789abcdef"
T0 = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


def event_id(n: int) -> str:
    return f"01937a4e-0000-7000-8000-{n:012d}"


def delivery(n: int, *, kind: LedgerKind = LedgerKind.DELIVERY, at: datetime = T0) -> LedgerEntry:
    return LedgerEntry(
        subject=LedgerSubjects(SECRET).subject(NIK),
        event_id=event_id(n),
        event_type="PendudukUpdated",
        subscriber=SUBSCRIBER,
        opd="DINSOS",
        purpose="penyaluran bantuan sosial tepat sasaran",
        legal_basis="PKS 470/12/2026",
        kind=kind,
        delivered_at=at,
    )


def headers(n: int) -> list[tuple[str, bytes]]:
    return [("ce_type", b"PendudukUpdated"), ("ce_id", event_id(n).encode())]


@pytest.fixture
def store(tmp_path: Path) -> LedgerStore:
    engine = create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    create_ledger_table(engine)
    create_ledger_table(engine)  # twice: idempotent
    return LedgerStore(engine, None)


def test_projected_topics_are_told_from_raw_ones() -> None:
    assert is_projected(PROJECTED)
    assert not is_projected(RAW)
    assert not is_projected(f"{RAW}.dlq.{SUBSCRIBER}")


def test_a_projected_topic_without_a_ledger_is_refused_naming_the_option() -> None:
    with pytest.raises(ConfigError, match="no ledger is given") as caught:
        require_ledger([RAW, PROJECTED], SUBSCRIBER, ledger_given=False, action="redrive")
    assert f"redrive of the projected topic {PROJECTED}" in str(caught.value)
    assert "--ledger-url" in (caught.value.fix or "")
    require_ledger([RAW], SUBSCRIBER, ledger_given=False)  # a raw topic needs none
    require_ledger([PROJECTED], SUBSCRIBER, ledger_given=True)


def test_another_subscribers_projected_topic_is_refused() -> None:
    with pytest.raises(ConfigError, match="projected topic of subscriber dinsos-penduduk, not"):
        require_ledger([PROJECTED], "dpmptsp-penduduk", ledger_given=True)


def test_the_event_id_is_read_from_ce_id() -> None:
    assert event_id_of(headers(1)) == event_id(1)
    assert event_id_of([("ce_type", b"x")]) is None
    assert event_id_of([("ce_id", b"\xff")]) is None
    assert event_id_of([("ce_id", b" ")]) is None


def test_each_replayed_event_gets_a_replay_entry_copying_its_first_delivery(
    store: LedgerStore,
) -> None:
    store.append([delivery(1, kind=LedgerKind.SNAPSHOT), delivery(2)])
    store.append([delivery(1, at=T0 + timedelta(hours=1))])  # a duplicate, written later
    ledger = ReplayLedger(store, SUBSCRIBER, clock=lambda: NOW)
    appended = asyncio.run(
        ledger.record(PROJECTED, [headers(1), headers(2), [("x", b"")]], where="p[0]@0")
    )
    assert appended == ledger.recorded == 2
    firsts = store.first_entries(SUBSCRIBER, [event_id(1), event_id(2), event_id(3)])
    assert sorted(firsts) == [event_id(1), event_id(2)]
    assert firsts[event_id(1)].kind is LedgerKind.SNAPSHOT  # the first entry, not the replay
    answer = LedgerStore(store._engine, SECRET).who_received(NIK)
    replays = [e for e in answer.entries if e.kind is LedgerKind.REPLAY]
    assert sorted(e.event_id for e in replays) == [event_id(1), event_id(2)]
    assert {e.delivered_at for e in replays} == {NOW}
    assert {(e.purpose, e.legal_basis, e.opd) for e in replays} == {
        (delivery(1).purpose, delivery(1).legal_basis, "DINSOS")
    }


def test_another_subscribers_deliveries_are_not_an_original(store: LedgerStore) -> None:
    store.append([delivery(1)])
    assert store.first_entries("dpmptsp-penduduk", [event_id(1)]) == {}


def test_nothing_is_recorded_for_a_raw_topic(store: LedgerStore) -> None:
    ledger = ReplayLedger(store, SUBSCRIBER, clock=lambda: NOW)
    assert asyncio.run(ledger.record(RAW, [headers(1)], where="x")) == 0


def test_an_event_without_its_delivery_entry_stops_the_batch_recording_nothing(
    store: LedgerStore,
) -> None:
    store.append([delivery(1)])
    ledger = ReplayLedger(store, SUBSCRIBER, clock=lambda: NOW)
    with pytest.raises(ReplayRefusedError, match="1 of its 2 event") as caught:
        asyncio.run(ledger.record(PROJECTED, [headers(1), headers(2)], where=f"{PROJECTED}[0]@7"))
    assert f"stopped before {PROJECTED}[0]@7" in str(caught.value)
    assert "--ledger-url" in (caught.value.fix or "")
    assert NIK not in str(caught.value)
    answer = LedgerStore(store._engine, SECRET).who_received(NIK)
    assert [e.kind for e in answer.entries] == [LedgerKind.DELIVERY]


def test_a_ledger_that_cannot_be_read_stops_the_replay(tmp_path: Path) -> None:
    store = LedgerStore(create_engine(f"sqlite:///{tmp_path / 'no-table.db'}"), None)
    ledger = ReplayLedger(store, SUBSCRIBER)
    with pytest.raises(ReplayError, match="the ledger did not record 1 replay") as caught:
        asyncio.run(ledger.record(PROJECTED, [headers(1)], where="x"))
    assert "--ledger-url" in (caught.value.fix or "")


def test_the_replay_command_refuses_a_projected_topic_without_a_ledger_before_kafka(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(LEDGER_URL_ENV, raising=False)
    base = ["--subscriber", SUBSCRIBER, "--topic", PROJECTED, "--bootstrap", "127.0.0.1:9"]
    code = main(["replay", *base, "--from-offsets", "0:0", "--reason", "tiket #1"])
    output = capsys.readouterr().err
    assert code == 1
    assert f"replay of the projected topic {PROJECTED}" in output
    assert "--ledger-url" in output
    redrive = ["dlq", "redrive", *base, "--adapter", "absent.yaml", "--reason", "tiket #1"]
    assert main(redrive) == 1
    output = capsys.readouterr().err
    assert f"redrive of the projected topic {PROJECTED}" in output
    assert "--ledger-url" in output
