"""Profiles of the publish and subscribe hot paths (pyinstrument), and what dominates them.

Each profile is saved as HTML (to browse) and text (to read in a diff); :func:`top_self`
sums self time per function over the whole call tree, which is what the note reports.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench import workload
from bench.consume import Counter, subscriber_config
from bench.environment import create_topic
from bus.publisher import Publisher
from bus.subscriber import Subscriber

__all__ = ["profile_publish", "profile_subscribe", "top_self"]

INTERVAL_S = 0.0005


def _profiler() -> Any:
    from pyinstrument import Profiler

    return Profiler(interval=INTERVAL_S, async_mode="enabled")


def top_self(session: Any, limit: int = 8) -> list[dict[str, Any]]:
    """The functions with the most self time, as shares of the whole profile."""
    root = session.root_frame()
    if root is None:
        return []
    totals: dict[str, float] = defaultdict(float)
    stack = [root]
    while stack:
        frame = stack.pop()
        stack.extend(frame.children)
        if frame.total_self_time > 0:
            where = (frame.file_path_short or "?").replace("\\", "/")
            totals[f"{frame.function} ({where}:{frame.line_no})"] += frame.total_self_time
    whole = sum(totals.values()) or 1.0
    ranked = sorted(totals.items(), key=lambda item: item[1], reverse=True)[:limit]
    return [{"function": name, "share": round(t / whole, 4)} for name, t in ranked]


def _save(profiler: Any, out: Path, stem: str) -> dict[str, Any]:
    (out / f"{stem}.html").write_text(profiler.output_html())
    (out / f"{stem}.txt").write_text(profiler.output_text(unicode=False, color=False))
    return {
        "html": f"{stem}.html",
        "text": f"{stem}.txt",
        "top_self": top_self(profiler.last_session),
    }


async def _publish(bootstrap: str, count: int, out: Path, stem: str) -> dict[str, Any]:
    topic = await create_topic(bootstrap, f"bench.profile.pub.{uuid.uuid4().hex[:8]}", 4)
    events = workload.events(1, count)
    async with Publisher(workload.publisher_config(bootstrap, topic)) as publisher:
        profiler = _profiler()
        profiler.start()
        for first in range(0, count, 1000):
            await publisher.publish_many(events[first : first + 1000])
        profiler.stop()
    return _save(profiler, out, stem) | {"topic": topic}


def profile_publish(bootstrap: str, count: int, out: Path, stem: str) -> dict[str, Any]:
    """Profile ``Publisher.publish_many`` over ``count`` events; return the files and top."""
    return asyncio.run(_publish(bootstrap, count, out, stem))


async def _subscribe(
    bootstrap: str, topic: str, count: int, out: Path, stem: str
) -> dict[str, Any]:
    counter = Counter(count)
    config = subscriber_config(bootstrap, topic, f"bench-profile-{uuid.uuid4().hex[:8]}")
    async with Subscriber(config, counter) as subscriber:
        counter.subscriber = subscriber
        profiler = _profiler()
        profiler.start()
        await subscriber.run()
        profiler.stop()
    return _save(profiler, out, stem)


def profile_subscribe(
    bootstrap: str, topic: str, count: int, out: Path, stem: str
) -> dict[str, Any]:
    """Profile the subscriber loop (no-op handler) over ``count`` events of ``topic``."""
    return asyncio.run(_subscribe(bootstrap, topic, count, out, stem))
