"""Group commit: the writes of concurrent requests share one database transaction.

Every person a GET returns is recorded in the delivery ledger before the answer leaves,
and every accepted post's answer is stored under its idempotency key. One transaction
per request costs a commit (an fsync on PostgreSQL) each, and at a few hundred requests
per second those commits were most of the gateway's time. :class:`GroupCommit` hands the
items of every request waiting at that moment to one call of its ``write`` function (one
transaction), one call at a time: while one commits, the next requests gather for the
following one. Each request still waits until its own items are committed, and when the
transaction fails every request in it gets the error, so the promises are unchanged: no
personal data leaves unrecorded, no answer is replayed that was not stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from adapters.db import run_sync

__all__ = ["GroupCommit"]

T = TypeVar("T")


class GroupCommit(Generic[T]):
    """Calls ``write(items)`` in a worker thread with the items of concurrent callers."""

    def __init__(self, write: Callable[[Sequence[T]], None], *, name: str) -> None:
        self._write = write
        self._name = name
        self._waiting: list[tuple[Sequence[T], asyncio.Future[None]]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def append(self, items: Sequence[T]) -> None:
        """Return once ``items`` are committed; raise what ``write`` raised if not."""
        if not items:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((items, done))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush(), name=self._name)
        await done

    async def _flush(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            items = [item for group, _ in batch for item in group]
            try:
                await run_sync(self._write, items)
            except Exception as exc:  # every caller of this transaction gets the failure
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
            else:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)
