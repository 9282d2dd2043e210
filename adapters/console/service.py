"""The console as ``spbe-bus console serve`` runs it: the state task and the HTTPS server.

:meth:`Console.start` opens the audit topic (logins are recorded there) and the schema
registry the dead letters are decoded with, and reads the state once, so the first page
already has numbers. :meth:`Console.run` serves HTTPS and re-reads the state every
``refresh_s`` in one background task until :meth:`request_stop`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Generator

import uvicorn

from adapters.console.app import ConsoleApp
from adapters.console.collector import StateCollector
from adapters.console.config import ConsoleConfig
from bus.errors import LifecycleError
from bus.lifecycle import Lifecycle
from bus.logs import get_logger
from bus.ops.audit import AuditLog

__all__ = ["Console"]

log = get_logger("adapters.console")


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the command owns the process's signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class Console(Lifecycle):
    """The operator console of one :class:`ConsoleConfig`."""

    def __init__(self, config: ConsoleConfig) -> None:
        self.config = config
        self.collector = StateCollector(config)
        self._audit: AuditLog | None = None
        self._server: _Server | None = None

    async def start(self) -> None:
        if self._server is not None:
            return
        config = self.config
        try:
            self._audit = audit = AuditLog(config.connection)
            await audit.start()
            await self.collector.start()
            await self.collector.refresh()
        except BaseException:
            await self.stop()
            raise
        app = ConsoleApp(config, audit=audit, state=lambda: self.collector.snapshot)
        self._server = _Server(
            uvicorn.Config(
                app.asgi(),
                host=config.host,
                port=config.port,
                ssl_certfile=str(config.tls_certificate),
                ssl_keyfile=str(config.tls_key),
                log_config=None,
                access_log=False,
                lifespan="off",
                server_header=False,
                timeout_graceful_shutdown=5,
            )
        )
        log.info(
            "console.started",
            url=f"https://{config.host}:{config.port}",
            operators=len(config.operators),
            adapters=len(config.adapters),
        )

    async def run(self) -> None:
        """Serve HTTPS and keep the state current until :meth:`request_stop`."""
        if self._server is None:
            raise LifecycleError(
                "the console is not started",
                fix="use 'async with Console(config)' or await start() first",
            )
        reader = asyncio.create_task(self.collector.run(), name="console-state")
        try:
            await self._server.serve()
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    def request_stop(self) -> None:
        """Stop taking requests; :meth:`run` returns once those in flight are answered."""
        if self._server is not None:
            self._server.should_exit = True

    async def stop(self) -> None:
        audit, self._audit = self._audit, None
        self._server = None
        try:
            await self.collector.stop()
        finally:
            if audit is not None:
                await audit.stop()

    def __repr__(self) -> str:
        return f"Console(port={self.config.port}, operators={len(self.config.operators)})"
