"""The subscriber side of the end-to-end and replay runs: Subscriber → SqlSink into PostgreSQL.

:class:`SinkClock` wraps the sink as the subscriber's handler and notes, per event id,
the moment the sink's transaction for it committed (``time.time()``, comparable with the
outbox writer's clock in another process).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from adapters.sinks.sql import SqlSink, SqlSinkConfig
from bench import workload
from bench.consume import subscriber_config
from bus.subscriber import Delivery, Outcome, Subscriber

__all__ = ["SinkClock", "sink_config", "with_sink"]

T = TypeVar("T")


def sink_config(database_url: str, table: str) -> SqlSinkConfig:
    """Permits into ``table`` (created when missing), with a processed table of its own."""
    return SqlSinkConfig.model_validate(
        {
            "database_url": database_url,
            "table": table,
            "key_column": "nomor_izin",
            "processed_table": f"{table}_processed",
            "create_tables": True,
            "events": {
                workload.EVENT_NAME: {
                    "key": "nomor_izin",
                    "columns": {"nama_usaha": "nama_usaha", "tanggal_terbit": "tanggal_terbit"},
                }
            },
        }
    )


class SinkClock:
    """The sink as a handler, recording when each event was committed into the table."""

    def __init__(self, sink: SqlSink, expected: int) -> None:
        self._sink = sink
        self.expected = expected
        self.applied: dict[str, float] = {}
        self.done = asyncio.Event()

    async def __call__(self, delivery: Delivery) -> Outcome:
        outcome = await self._sink(delivery)
        self.applied[delivery.envelope.id] = time.time()
        if len(self.applied) >= self.expected:
            self.done.set()
        return outcome

    async def batch(self, deliveries: Sequence[Delivery]) -> Sequence[Outcome]:
        """A partition's batch in one transaction, as ``spbe-bus run`` drives the sink."""
        outcomes = await self._sink.apply_batch(deliveries)
        now = time.time()
        for delivery in deliveries:
            self.applied[delivery.envelope.id] = now
        if len(self.applied) >= self.expected:
            self.done.set()
        return outcomes

    @property
    def complete(self) -> bool:
        return len(self.applied) >= self.expected

    @property
    def first(self) -> float:
        return min(self.applied.values())

    @property
    def last(self) -> float:
        return max(self.applied.values())


async def with_sink(
    bootstrap: str,
    database_url: str,
    topic: str,
    *,
    table: str,
    subscriber_id: str,
    expected: int,
    feed: Callable[[SinkClock], Awaitable[T]],
    timeout_s: float,
) -> tuple[SinkClock, T]:
    """Run a subscriber with the sink while ``feed`` runs; wait for ``expected`` events.

    Returns the clock and what ``feed`` returned. Waits at most ``timeout_s`` after
    ``feed`` finished: a sink slower than the load leaves ``clock.complete`` false, and
    the figures are then taken over the events that did arrive.
    """
    config = subscriber_config(bootstrap, topic, subscriber_id)
    async with SqlSink(sink_config(database_url, table)) as sink:
        clock = SinkClock(sink, expected)
        async with Subscriber(config, clock, batch_handler=clock.batch) as subscriber:
            running = asyncio.create_task(subscriber.run())
            try:
                fed = await feed(clock)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(clock.done.wait(), timeout_s)
            finally:
                subscriber.request_stop()
                await running
    return clock, fed
