"""Group commit of the delivery ledger: concurrent API reads share one transaction.

Every person a GET returns is recorded before the answer leaves. One transaction per
request costs a commit (an fsync on PostgreSQL) each, and at a few hundred requests per
second those commits are most of the gateway's time. :class:`LedgerWriter` appends the
entries of every request waiting at that moment in one transaction, one transaction at a
time: while one commits, the next requests gather for the following one. Each request
still waits until its own entries are committed, and when the transaction fails every
request in it gets the error (and answers 503 with nothing), so the promise is unchanged:
no data leaves unrecorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from adapters.db import run_sync
from bus.ledger import Ledger, LedgerEntry

__all__ = ["LedgerWriter"]


class LedgerWriter:
    """Appends entries to ``ledger``, the entries of concurrent callers in one transaction."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._waiting: list[tuple[Sequence[LedgerEntry], asyncio.Future[None]]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def append(self, entries: Sequence[LedgerEntry]) -> None:
        """Return once ``entries`` are committed; raise what the ledger raised if not."""
        if not entries:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((entries, done))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush(), name="gateway-ledger")
        await done

    async def _flush(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            entries = [entry for group, _ in batch for entry in group]
            try:
                await run_sync(self._ledger.append, entries)
            except Exception as exc:  # every caller of this transaction gets the failure
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
            else:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)
