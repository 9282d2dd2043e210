"""Group commit: concurrent callers share transactions, and each waits for its own."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from adapters.gateway.group_commit import GroupCommit
from bus.ledger import LedgerEntry, LedgerKind


def _entry(n: int) -> LedgerEntry:
    return LedgerEntry(
        subject=f"{n:064x}",
        event_id=f"event-{n}",
        event_type="id.go.spbe.dukcapil.PendudukUpdated.v1",
        subscriber="dpmptsp-penduduk",
        opd="DPMPTSP",
        purpose="Verifikasi identitas pemohon",
        legal_basis="PKS uji 1/2026",
        kind=LedgerKind.API,
        delivered_at=datetime.now(UTC),
    )


class RecordingLedger:
    """A ledger that takes a while per transaction and keeps what each one held."""

    def __init__(self, *, fail: bool = False) -> None:
        self.transactions: list[list[str]] = []
        self.fail = fail
        self._lock = threading.Lock()

    def append(self, entries: Sequence[LedgerEntry]) -> None:
        time.sleep(0.05)
        if self.fail:
            raise RuntimeError("the ledger's database is gone")
        with self._lock:
            self.transactions.append([e.event_id for e in entries])


async def test_concurrent_reads_share_transactions_and_every_entry_is_committed() -> None:
    ledger = RecordingLedger()
    writer = GroupCommit(ledger.append, name="test")
    await asyncio.gather(*(writer.append([_entry(n)]) for n in range(50)))
    committed = [event for transaction in ledger.transactions for event in transaction]
    assert sorted(committed) == sorted(f"event-{n}" for n in range(50))
    assert len(ledger.transactions) < 50  # requests waiting together committed together


async def test_a_caller_returns_only_after_its_own_entries_are_committed() -> None:
    ledger = RecordingLedger()
    writer = GroupCommit(ledger.append, name="test")
    await writer.append([_entry(1)])
    assert ledger.transactions == [["event-1"]]


async def test_a_failed_transaction_fails_every_caller_in_it() -> None:
    writer = GroupCommit(RecordingLedger(fail=True).append, name="test")
    results = await asyncio.gather(
        *(writer.append([_entry(n)]) for n in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, RuntimeError) for r in results)


async def test_nothing_to_record_is_no_transaction() -> None:
    ledger = RecordingLedger()
    await GroupCommit(ledger.append, name="test").append([])
    assert ledger.transactions == []


async def test_later_callers_are_committed_after_an_earlier_failure() -> None:
    ledger = RecordingLedger(fail=True)
    writer = GroupCommit(ledger.append, name="test")
    with pytest.raises(RuntimeError):
        await writer.append([_entry(0)])
    ledger.fail = False
    for n in range(1, 4):
        await writer.append([_entry(n)])
    assert ledger.transactions == [["event-1"], ["event-2"], ["event-3"]]
