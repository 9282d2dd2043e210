"""The lifecycle every client and adapter of the bus shares, and running until stopped.

:class:`Lifecycle` gives a class with ``start()`` and ``stop()`` its ``async with`` form,
so the publisher, the subscriber, the registry, the decoder, the audit log, the outbox
relay and the sinks are used alike.

The publisher-side relay and the subscriber have the same shape: ``run()`` works until
``request_stop()`` is called, then finishes what it holds (commits, marks rows) and
returns. :func:`run_until_stopped` connects that shape to a service's signals, or to an
:class:`asyncio.Event` when something else (a test, the demo) decides when to stop.
"""

from __future__ import annotations

import asyncio
import signal
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Literal, Self

__all__ = ["STOP_SIGNALS", "Lifecycle", "run_until_stopped"]

#: The signals that ask a running adapter to finish and exit (systemd sends SIGTERM).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Lifecycle(ABC):
    """``start()`` opens what the object needs, ``stop()`` closes it; both are idempotent."""

    @abstractmethod
    async def start(self) -> None:
        """Connect and check what is needed; a second call does nothing."""

    @abstractmethod
    async def stop(self) -> None:
        """Close what :meth:`start` opened; a second call does nothing."""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


async def run_until_stopped(
    run: Callable[[], Awaitable[None]],
    request_stop: Callable[[], None],
    *,
    stop: asyncio.Event | None = None,
) -> None:
    """Await ``run()``; SIGTERM/SIGINT, or ``stop`` when given, call ``request_stop()``.

    With ``stop`` no signal handler is installed: the caller owns the process's signals.
    """
    if stop is None:
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, request_stop)
        try:
            await run()
        finally:
            for sig in STOP_SIGNALS:
                loop.remove_signal_handler(sig)
        return
    task: asyncio.Task[None] = asyncio.ensure_future(run())
    stopper: asyncio.Task[Literal[True]] = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    if stopper in done:
        request_stop()
    else:
        stopper.cancel()
    await task
