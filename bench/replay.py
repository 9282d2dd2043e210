"""Replay: a fresh subscriber reads a topic from its start and re-applies it into PostgreSQL.

The topic is filled first with ``count`` events by the bus publisher; the clock runs from
the sink's first commit to its last (joining the group is excluded). The subscriber runs
in a process of its own (spawned, so it starts small), which reports its peak RSS.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
import uuid
from concurrent.futures import ProcessPoolExecutor

from bench import workload
from bench.environment import create_topic, service_logging
from bench.sink_side import SinkClock, with_sink
from bench.stats import rate
from bus.errors import BusError
from bus.publisher import Publisher

__all__ = ["fill_topic", "replay"]

PARTITIONS = 4
_FILL_CHUNK = 2000
#: The longest a replay runs; its rate covers the events applied by then.
REPLAY_CAP_S = 300.0


async def _fill(bootstrap: str, count: int) -> str:
    topic = await create_topic(bootstrap, f"bench.replay.{uuid.uuid4().hex[:8]}", PARTITIONS)
    async with Publisher(workload.publisher_config(bootstrap, topic)) as publisher:
        for first in range(1, count + 1, _FILL_CHUNK):
            chunk = workload.events(first, min(_FILL_CHUNK, count + 1 - first))
            # Version 1 of each permit, as its steward's relay would publish it.
            results = await publisher.publish_many([(event, 1) for event in chunk])
            failed = [r for r in results if isinstance(r, BusError)]
            if failed:
                raise failed[0]
    return topic


def fill_topic(bootstrap: str, count: int) -> str:
    """A new topic holding ``count`` events with distinct keys."""
    return asyncio.run(_fill(bootstrap, count))


async def _replay(bootstrap: str, database_url: str, topic: str, count: int) -> tuple[float, int]:
    tag = uuid.uuid4().hex[:8]

    async def feed(_clock: SinkClock) -> None:
        return None

    clock, _ = await with_sink(
        bootstrap,
        database_url,
        topic,
        table=f"replay_{tag}",
        subscriber_id=f"bench-replay-{tag}",
        expected=count,
        feed=feed,
        timeout_s=REPLAY_CAP_S,
    )
    return rate(len(clock.applied), clock.last - clock.first), len(clock.applied)


def _replay_in_child(
    bootstrap: str, database_url: str, topic: str, count: int
) -> tuple[float, int, float]:
    service_logging()
    rate_, applied = asyncio.run(_replay(bootstrap, database_url, topic, count))
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return rate_, applied, peak_mib


def replay(bootstrap: str, database_url: str, topic: str, count: int) -> tuple[float, int, float]:
    """Events/s re-applied into a fresh sink table by a fresh subscriber id, how many, and
    the peak RSS (MiB) of the subscriber's process."""
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn) as child:
        return child.submit(_replay_in_child, bootstrap, database_url, topic, count).result()
