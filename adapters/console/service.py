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
from starlette.types import ASGIApp

from adapters.console.app import ConsoleApp
from adapters.console.collector import StateCollector
from adapters.console.config import ConsoleConfig
from bus.errors import LifecycleError
from bus.lifecycle import Lifecycle
from bus.logs import get_logger
from bus.ops.audit import AuditLog

__all__ = ["Console", "server_config"]

log = get_logger("adapters.console")


def server_config(config: ConsoleConfig, app: ASGIApp) -> uvicorn.Config:
    """How uvicorn serves ``app``: HTTPS on ``host:port``, and ``X-Forwarded-For`` believed
    only from ``trusted_proxies`` (uvicorn's default believes any loopback peer, so anyone
    on the host could name any client address and get a fresh login bucket)."""
    proxies = list(config.trusted_proxies)
    return uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        ssl_certfile=str(config.tls_certificate),
        ssl_keyfile=str(config.tls_key),
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or None,
        log_config=None,
        access_log=False,
        lifespan="off",
        server_header=False,
        timeout_graceful_shutdown=5,
    )


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
        self._server = _Server(server_config(config, app.asgi()))
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
