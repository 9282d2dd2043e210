"""The ledger's entries, subjects and answers (pure), and the store's append-only API."""

from __future__ import annotations

import hashlib
import hmac
import inspect
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from hypothesis import given

from adapters.ledger import LedgerStore, ledger_table
from adapters.ledger.table import _guards
from bus.errors import ConfigError
from bus.ledger import (
    LedgerEntry,
    LedgerKind,
    LedgerSubjects,
    replay_entries,
    replay_entry,
    summarise,
)
from tests.strategies import niks

SECRET = b"ledger-secret-0123456789abcdef"
NIK = "3273024508900001"
WIB = timezone(timedelta(hours=7))
T0 = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)


def entry(subscriber: str = "dinsos.bansos", at: datetime = T0, **changes: object) -> LedgerEntry:
    base = LedgerEntry(
        subject=LedgerSubjects(SECRET).subject(NIK),
        event_id="01937a4e-0000-7000-8000-000000000001",
        event_type="PendudukUpdated",
        subscriber=subscriber,
        opd=subscriber.split(".")[0].upper(),
        purpose="penyaluran bantuan sosial tepat sasaran",
        legal_basis="PKS 470/12/2026",
        kind=LedgerKind.DELIVERY,
        delivered_at=at,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_the_subject_is_the_hmac_sha256_of_the_nik_under_the_ledger_secret() -> None:
    expected = hmac.new(SECRET, NIK.encode(), hashlib.sha256).hexdigest()
    assert LedgerSubjects(SECRET).subject(NIK) == expected
    assert LedgerSubjects(b"another-ledger-secret-0123").subject(NIK) != expected


@given(niks())
def test_every_nik_gets_a_subject_that_does_not_contain_it(nik: str) -> None:
    subject = LedgerSubjects(SECRET).subject(nik)
    assert len(subject) == 64
    assert nik not in subject


@pytest.mark.parametrize(
    ("bad", "rule"),
    [
        ("32730245089000", "16"),
        ("3273024508900001 ", "space"),
        ("3273021513900001", "month 13"),
        ("3273024508900000", "serial"),
    ],
)
def test_a_bad_nik_is_refused_naming_the_field_and_rule_not_the_value(bad: str, rule: str) -> None:
    with pytest.raises(ConfigError) as caught:
        LedgerSubjects(SECRET).subject(bad, field_name="--nik")
    message = f"{caught.value} {caught.value.fix}"
    assert str(caught.value).startswith("--nik is not a NIK")
    assert rule in message
    assert bad.strip() not in message


def test_a_short_ledger_secret_is_refused_and_never_shown() -> None:
    with pytest.raises(ConfigError, match="at least 16"):
        LedgerSubjects(b"short")
    assert "ledger-secret" not in repr(LedgerSubjects(SECRET))


def test_an_entry_keeps_utc_and_its_repr_shows_no_subject() -> None:
    got = entry(at=datetime(2026, 11, 1, 10, 0, tzinfo=WIB))
    assert got.delivered_at == T0
    assert got.delivered_at.tzinfo is UTC
    assert got.subject not in repr(got)
    assert "subject" not in got.as_json()
    assert entry(kind="snapshot").kind is LedgerKind.SNAPSHOT


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"subject": NIK}, "subject"),
        ({"subject": "A" * 64}, "subject"),
        ({"event_id": ""}, "event_id"),
        ({"purpose": " "}, "purpose"),
        ({"legal_basis": "x" * 256}, "legal_basis"),
        ({"kind": "copy"}, "kind"),
        ({"delivered_at": datetime(2026, 11, 1)}, "delivered_at"),
    ],
)
def test_a_bad_entry_is_refused_naming_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        entry(**changes)  # type: ignore[arg-type]
    assert str(caught.value).startswith(field)
    assert NIK not in str(caught.value)


def test_the_answer_is_newest_first_with_one_summary_per_subscriber() -> None:
    entries = [
        entry("dinsos.bansos", T0),
        entry("dpmptsp.izin", T0 + timedelta(days=2), event_type="PendudukMoved"),
        entry("dinsos.bansos", T0 + timedelta(days=1), kind=LedgerKind.REPLAY),
        entry("dinsos.bansos", T0 + timedelta(days=1), kind=LedgerKind.REPLAY),  # a duplicate
    ]
    answer = summarise(entries)
    assert [e.delivered_at for e in answer.entries] == sorted(
        (e.delivered_at for e in entries), reverse=True
    )
    assert [s.subscriber for s in answer.subscribers] == ["dpmptsp.izin", "dinsos.bansos"]
    dinsos = answer.subscribers[1]
    assert (dinsos.opd, dinsos.deliveries) == ("DINSOS", 3)
    assert (dinsos.first, dinsos.last) == (T0, T0 + timedelta(days=1))
    assert dinsos.agreements == (("penyaluran bantuan sosial tepat sasaran", "PKS 470/12/2026"),)
    text = str(answer.as_json())
    assert NIK not in text
    assert entries[0].subject not in text


def test_the_store_offers_no_way_to_change_or_remove_an_entry() -> None:
    public = {name for name, _ in inspect.getmembers(LedgerStore) if not name.startswith("_")}
    assert public == {
        "append",
        "check_table",
        "close",
        "first_entries",
        "from_url",
        "subject",
        "who_received",
    }


def test_the_table_has_the_index_of_a_subjects_entries_between_two_times() -> None:
    table = ledger_table()
    indexes = {index.name: [c.name for c in index.columns] for index in table.indexes}
    assert indexes["ix_spbe_ledger_subject"] == ["subject", "delivered_at", "id"]
    assert indexes["ix_spbe_ledger_event"] == ["subscriber", "event_id"]  # a replay's lookup
    assert "nik" not in table.c


def test_a_replay_entry_repeats_the_original_delivery_under_its_agreement() -> None:
    original = entry(kind=LedgerKind.SNAPSHOT)
    later = datetime(2026, 12, 1, 8, 0, tzinfo=WIB)
    replayed = replay_entry(original, later)
    assert replayed.kind is LedgerKind.REPLAY
    assert replayed.delivered_at == later
    assert replayed.delivered_at.tzinfo is UTC
    same = ("subject", "event_id", "event_type", "subscriber", "opd", "purpose", "legal_basis")
    assert all(getattr(replayed, name) == getattr(original, name) for name in same)


def test_a_replay_entry_needs_a_timezone_aware_time() -> None:
    with pytest.raises(ConfigError, match=r"^when must be a timezone-aware"):
        replay_entry(entry(), datetime(2026, 12, 1, 8, 0))


def test_replay_entries_come_in_event_order_and_name_the_events_without_an_original() -> None:
    ids = [f"01937a4e-0000-7000-8000-00000000000{n}" for n in (1, 2, 3)]
    originals = {i: entry(event_id=i) for i in (ids[2], ids[0])}
    entries, missing = replay_entries(ids, originals, T0)
    assert [e.event_id for e in entries] == [ids[0], ids[2]]
    assert {e.kind for e in entries} == {LedgerKind.REPLAY}
    assert missing == [ids[1]]


def test_a_store_without_the_ledger_secret_cannot_answer_for_a_nik() -> None:
    store = LedgerStore(sa.create_engine("sqlite://"), None)
    with pytest.raises(ConfigError, match="no ledger secret") as caught:
        store.who_received(NIK)
    assert NIK not in str(caught.value)
    assert "SPBE_LEDGER_SECRET" in (caught.value.fix or "")


@pytest.mark.parametrize("dialect", ["postgresql", "mariadb", "sqlite"])
def test_every_database_gets_triggers_refusing_update_and_delete(dialect: str) -> None:
    sql = " ".join(_guards("spbe_ledger", dialect))
    assert "UPDATE" in sql
    assert "DELETE" in sql
    assert "append-only" in sql


def test_a_table_name_that_sql_cannot_hold_unquoted_is_refused() -> None:
    with pytest.raises(ConfigError, match="ledger table name"):
        ledger_table("spbe_ledger; DROP TABLE x")


def test_a_query_window_without_offset_is_refused() -> None:
    store = LedgerStore(sa.create_engine("sqlite://"), SECRET)
    with pytest.raises(ConfigError, match=r"^from must be a timezone-aware"):
        store.who_received(NIK, frm=datetime(2026, 11, 1))
