"""The delivery ledger on SQLite, PostgreSQL and MariaDB: append, who-received, append-only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from adapters.db import create_engine
from adapters.ledger import LedgerStore, create_ledger_table, ledger_table
from bus.cli.ledger_cmd import LEDGER_SECRET_ENV
from bus.cli.main import main
from bus.errors import ConfigError
from bus.ledger import LedgerEntry, LedgerKind, LedgerSubjects, WhoReceived

pytestmark = pytest.mark.integration

SECRET = b"ledger-secret-0123456789abcdef"
SITI = "3273024508900001"
BUDI = "3273021203850002"
T0 = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
SUBSCRIPTIONS = {
    "dinsos.bansos": ("DINSOS", "penyaluran bantuan sosial tepat sasaran", "PKS 470/12/2026"),
    "dpmptsp.izin": ("DPMPTSP", "verifikasi identitas pemohon izin usaha", "Perbup 8/2025"),
    "bapenda.pbb": ("BAPENDA", "pemutakhiran data wajib pajak PBB-P2", "PKS 973/3/2026"),
}


def entry(nik: str, subscriber: str, at: datetime, n: int = 1, **kw: object) -> LedgerEntry:
    opd, purpose, basis = SUBSCRIPTIONS[subscriber]
    return LedgerEntry(
        subject=LedgerSubjects(SECRET).subject(nik),
        event_id=f"01937a4e-0000-7000-8000-{n:012d}",
        event_type=str(kw.get("event_type", "PendudukUpdated")),
        subscriber=subscriber,
        opd=opd,
        purpose=purpose,
        legal_basis=basis,
        kind=LedgerKind(str(kw.get("kind", LedgerKind.DELIVERY))),
        delivered_at=at,
    )


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = create_engine(database_url)
    create_ledger_table(engine)
    yield engine
    engine.dispose()


def test_who_received_lists_exactly_the_subscribers_that_received_that_resident(
    engine: sa.Engine,
) -> None:
    store = LedgerStore(engine, SECRET)
    store.append(
        [
            entry(SITI, "dinsos.bansos", T0, 1, kind=LedgerKind.SNAPSHOT),
            entry(SITI, "dpmptsp.izin", T0 + timedelta(hours=1), 2),
            entry(BUDI, "bapenda.pbb", T0 + timedelta(hours=2), 3),
            entry(SITI, "dinsos.bansos", T0 + timedelta(days=1), 4, event_type="PendudukMoved"),
        ]
    )
    answer = store.who_received(SITI)
    assert [e.event_id[-1] for e in answer.entries] == ["4", "2", "1"]  # newest first
    assert {s.subscriber for s in answer.subscribers} == {"dinsos.bansos", "dpmptsp.izin"}
    dinsos = next(s for s in answer.subscribers if s.subscriber == "dinsos.bansos")
    assert (dinsos.opd, dinsos.deliveries, dinsos.first, dinsos.last) == (
        "DINSOS",
        2,
        T0,
        T0 + timedelta(days=1),
    )
    assert dinsos.event_types == ("PendudukMoved", "PendudukUpdated")
    assert answer.entries[-1].kind is LedgerKind.SNAPSHOT
    assert answer.entries[0].delivered_at.tzinfo is UTC
    assert [s.subscriber for s in store.who_received(BUDI).subscribers] == ["bapenda.pbb"]
    assert not store.who_received("3273026010000003").entries
    text = json.dumps(answer.as_json())
    assert SITI not in text
    assert store.subject(SITI) not in text


def days(answer: WhoReceived) -> list[int]:
    return [e.delivered_at.day for e in answer.entries]


def test_time_windows_include_from_and_exclude_to(engine: sa.Engine) -> None:
    store = LedgerStore(engine, SECRET)
    store.append([entry(SITI, "dinsos.bansos", T0 + timedelta(days=d), d) for d in range(5)])
    assert days(store.who_received(SITI, frm=T0 + timedelta(days=1))) == [5, 4, 3, 2]
    assert days(store.who_received(SITI, to=T0 + timedelta(days=2))) == [2, 1]
    window = store.who_received(SITI, frm=T0 + timedelta(days=1), to=T0 + timedelta(days=3))
    assert days(window) == [3, 2]
    assert window.subscribers[0].deliveries == 2
    wib = datetime(2026, 11, 2, 10, 0, tzinfo=UTC).astimezone()  # any offset: the same instant
    assert days(store.who_received(SITI, frm=wib, to=wib + timedelta(seconds=1))) == []


def test_a_batch_appended_twice_is_kept_twice_at_least_once(engine: sa.Engine) -> None:
    store = LedgerStore(engine, SECRET)
    batch = [entry(SITI, "dinsos.bansos", T0, 1), entry(SITI, "dpmptsp.izin", T0, 2)]
    store.append(batch)
    store.append(batch)  # the service crashed before delivering, and delivered again
    answer = store.who_received(SITI)
    assert len(answer.entries) == 4
    assert {s.subscriber: s.deliveries for s in answer.subscribers} == {
        "dinsos.bansos": 2,
        "dpmptsp.izin": 2,
    }


def test_the_ledger_survives_a_restart(database_url: str) -> None:
    for _start in range(2):  # a second start finds the table and keeps its entries
        engine = create_engine(database_url)
        create_ledger_table(engine)
        engine.dispose()
        if _start == 0:
            with LedgerStore.from_url(database_url, SECRET) as first:
                first.append([entry(SITI, "dinsos.bansos", T0, 1)])
    with LedgerStore.from_url(database_url, SECRET) as again:
        assert [s.subscriber for s in again.who_received(SITI).subscribers] == ["dinsos.bansos"]
    with LedgerStore.from_url(database_url, b"another-ledger-secret-0123") as other:
        assert not other.who_received(SITI).entries  # the subject needs the ledger secret


def test_a_failed_batch_leaves_no_entry_of_it(engine: sa.Engine) -> None:
    store = LedgerStore(engine, SECRET)
    good = entry(SITI, "dinsos.bansos", T0, 1)
    bad = entry(SITI, "dpmptsp.izin", T0, 2)
    object.__setattr__(bad, "purpose", None)  # breaks NOT NULL inside the transaction
    with pytest.raises(sa.exc.IntegrityError):
        store.append([good, bad])
    assert not store.who_received(SITI).entries


@pytest.mark.parametrize(
    "statement", ["UPDATE spbe_ledger SET purpose = 'changed'", "DELETE FROM spbe_ledger"]
)
def test_the_table_refuses_update_and_delete(engine: sa.Engine, statement: str) -> None:
    store = LedgerStore(engine, SECRET)
    store.append([entry(SITI, "dinsos.bansos", T0, 1)])
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(sa.text(statement))
    assert len(store.who_received(SITI).entries) == 1


def test_the_command_prints_the_opds_and_never_the_nik(
    database_url: str,
    engine: sa.Engine,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    LedgerStore(engine, SECRET).append(
        [
            entry(SITI, "dinsos.bansos", T0, 1),
            entry(SITI, "dpmptsp.izin", T0 + timedelta(days=3), 2),
            entry(BUDI, "bapenda.pbb", T0, 3),
        ]
    )
    monkeypatch.setenv(LEDGER_SECRET_ENV, SECRET.decode())
    base = ["ledger", "who-received", "--nik", SITI, "--ledger-url", database_url]
    assert main(base) == 0
    out = capsys.readouterr().out
    assert "OPD" in out
    assert "LEGAL BASIS" in out
    assert "DINSOS" in out
    assert "DPMPTSP" in out
    assert "BAPENDA" not in out
    assert "PKS 470/12/2026" in out
    assert SITI not in out
    assert main([*base, "--from", "2026-11-02T00:00+07:00", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert [s["opd"] for s in answer["subscribers"]] == ["DPMPTSP"]
    assert SITI not in json.dumps(answer)


def test_a_bad_nik_is_refused_before_the_ledger_is_read(engine: sa.Engine) -> None:
    with pytest.raises(ConfigError, match="subject_nik is not a NIK"):
        LedgerStore(engine, SECRET).who_received("1234")


def test_postgresql_also_refuses_truncate(engine: sa.Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("TRUNCATE triggers are PostgreSQL's; MariaDB needs DROP for it")
    LedgerStore(engine, SECRET).append([entry(SITI, "dinsos.bansos", T0, 1)])
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE spbe_ledger"))


def test_a_table_of_an_earlier_version_gets_the_event_index_and_keeps_its_entries(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    earlier = ledger_table()
    (event_index,) = [i for i in earlier.indexes if i.name == "ix_spbe_ledger_event"]
    earlier.indexes.discard(event_index)  # the table as it was before replays looked events up
    earlier.metadata.create_all(engine)
    LedgerStore(engine, SECRET).append([entry(SITI, "dinsos.bansos", T0, 1)])
    create_ledger_table(engine)
    create_ledger_table(engine)  # again: nothing changes
    names = {i["name"] for i in sa.inspect(engine).get_indexes("spbe_ledger")}
    assert {"ix_spbe_ledger_subject", "ix_spbe_ledger_event"} <= names
    store = LedgerStore(engine, None)
    (found,) = store.first_entries(
        "dinsos.bansos", ["01937a4e-0000-7000-8000-000000000001"]
    ).values()
    assert found.subject == LedgerSubjects(SECRET).subject(SITI)
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM spbe_ledger"))
    engine.dispose()


def test_a_large_batch_keeps_every_value_as_given(engine: sa.Engine) -> None:
    # PostgreSQL appends with COPY: tabs, backslashes, newlines and non-ASCII text must
    # arrive as given, and the times to the microsecond.
    store = LedgerStore(engine, SECRET)
    batch = [
        replace(
            entry(SITI if n % 2 else BUDI, "dinsos.bansos", T0 + timedelta(microseconds=n), n),
            purpose="bantuan\tsosial \\N baris\nbaru — ké",
            kind=LedgerKind.SNAPSHOT if n % 3 else LedgerKind.DELIVERY,
        )
        for n in range(1, 1201)
    ]
    store.append(batch)
    found = store.who_received(SITI).entries + store.who_received(BUDI).entries
    assert sorted(found, key=lambda e: e.event_id) == batch


def test_a_batch_failing_at_its_last_entry_leaves_none_of_it(engine: sa.Engine) -> None:
    store = LedgerStore(engine, SECRET)
    batch = [entry(SITI, "dinsos.bansos", T0, n) for n in range(1, 1001)]
    object.__setattr__(batch[-1], "opd", None)  # NOT NULL breaks on the last row only
    with pytest.raises(sa.exc.IntegrityError) as err:
        store.append(batch)
    assert SITI not in str(err.value)
    assert batch[0].subject not in str(err.value)
    assert not store.who_received(SITI).entries
