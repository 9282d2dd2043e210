"""Ask a cluster who its brokers are: the test that a broker is ready for clients."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from aiokafka.errors import KafkaError

from bus.connection import KafkaConnection, as_connection
from bus.startup import LiveNodeAdmin

__all__ = ["broker_ids", "broker_ids_async", "run_blocking"]

T = TypeVar("T")


@contextmanager
def _quiet_client_logs() -> Iterator[None]:
    """Refused connections are the expected answer while a broker starts: keep them quiet."""
    client_log = logging.getLogger("aiokafka")
    previous = client_log.level
    client_log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        client_log.setLevel(previous)


async def broker_ids_async(kafka: KafkaConnection | str, *, timeout_s: float = 5.0) -> set[int]:
    """The node ids a metadata request reports; empty if no broker answered.

    On a secured cluster ask as a super user: until the authorizer has loaded the
    metadata only super users get an answer.
    """
    with _quiet_client_logs():
        return await _ask_metadata(as_connection(kafka), timeout_s)


async def _ask_metadata(kafka: KafkaConnection, timeout_s: float) -> set[int]:
    admin = LiveNodeAdmin(**kafka.aiokafka_options(), request_timeout_ms=int(timeout_s * 1000))
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        cluster = await asyncio.wait_for(admin.describe_cluster(), timeout_s)
    except (KafkaError, OSError, TimeoutError):
        return set()
    finally:
        await admin.close()
    return {int(broker["node_id"]) for broker in cluster["brokers"]}


def run_blocking(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from sync code, even when a loop already runs here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def broker_ids(kafka: KafkaConnection | str, *, timeout_s: float = 5.0) -> set[int]:
    """Blocking form of :func:`broker_ids_async`."""
    return run_blocking(broker_ids_async(kafka, timeout_s=timeout_s))
