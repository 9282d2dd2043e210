"""The application side of the end-to-end run, each in a process of its own.

* :func:`fill_outbox`: write ``count`` outbox rows up front (the sustained-rate run);
* :func:`write_at_rate`: commit events at a fixed offered load, one small transaction
  per 10 ms tick, and report each event's commit time (the latency run);
* :func:`run_relay`: an :class:`~adapters.sources.outbox.OutboxRelay` until told to stop.

Times are ``time.time()`` so that they compare across processes on one machine.
"""

from __future__ import annotations

import asyncio
import time
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from typing import Any

from adapters.db import create_engine
from adapters.sources.outbox import OutboxRelay, OutboxRelayConfig, add_to_outbox
from bench import workload
from bench.environment import service_logging

__all__ = ["fill_outbox", "run_relay", "write_at_rate"]

TICK_S = 0.01


def fill_outbox(database_url: str, table: str, start: int, count: int) -> None:
    """Write ``count`` events into ``table``, 500 per transaction."""
    engine = create_engine(database_url)
    try:
        for first in range(start, start + count, 500):
            with engine.begin() as connection:
                for item in workload.events(first, min(500, start + count - first)):
                    add_to_outbox(
                        connection, item, aggregate_id=item.nomor_izin, sequence=1, table=table
                    )
    finally:
        engine.dispose()


def write_at_rate(
    database_url: str, table: str, start: int, per_second: int, seconds: float, out: Queue[Any]
) -> None:
    """Offer ``per_second`` events for ``seconds``; put {event_id: commit time} on ``out``."""
    service_logging()
    total = int(per_second * seconds)
    prepared = workload.events(start, total)
    engine = create_engine(database_url)
    committed: dict[str, float] = {}
    began = time.time()
    written = 0
    tick = 0
    try:
        while written < total:
            tick += 1
            pause = began + tick * TICK_S - time.time()
            if pause > 0:
                time.sleep(pause)
            due = min(total, int((time.time() - began) * per_second))
            if due <= written:
                continue
            with engine.begin() as connection:
                ids = [
                    add_to_outbox(
                        connection, item, aggregate_id=item.nomor_izin, sequence=1, table=table
                    )
                    for item in prepared[written:due]
                ]
            committed.update(dict.fromkeys(ids, time.time()))
            written = due
    finally:
        engine.dispose()
    out.put({"committed": committed, "offered_seconds": time.time() - began})


async def _relay(config: OutboxRelayConfig, ready: Queue[Any], stop: Event) -> None:
    async with OutboxRelay(config) as relay:
        running = asyncio.create_task(relay.run())
        ready.put(time.time())
        told = asyncio.ensure_future(asyncio.to_thread(stop.wait))
        await asyncio.wait({running, told}, return_when=asyncio.FIRST_COMPLETED)
        relay.request_stop()
        await running
        ready.put(relay.stats.published)


def run_relay(config: OutboxRelayConfig, ready: Queue[Any], stop: Event) -> None:
    """Relay until ``stop`` is set; put the start time, then the count published, on ``ready``."""
    service_logging()
    # The config arrives pickled, its database URL (a secret) intact; a JSON dump masks it.
    asyncio.run(_relay(config, ready, stop))
