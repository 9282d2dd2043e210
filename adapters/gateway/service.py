"""The gateway as ``spbe-bus run`` runs it: HTTPS server, read models, ingress, audit.

:meth:`Gateway.start` opens, in order: the database (the read models' and idempotency
keys' tables are the gateway's own and are created when missing), the delivery ledger
(its table must exist: the gateway only appends, as the contract service), the audit
topic, the ingress publishers, and the subscriber that keeps the read models (the
projected topics of every active subscription an API client reads, as consumer group
``spbe-gateway``). :meth:`Gateway.run` serves HTTPS until :meth:`request_stop`, then stops
taking requests, lets those in flight finish, and stops the subscriber after its batch.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Generator, Mapping
from datetime import UTC, datetime
from typing import Any

import uvicorn

from adapters.db import run_sync
from adapters.gateway.app import GatewayApp
from adapters.gateway.audit import ApiAudit
from adapters.gateway.config import GatewayConfig
from adapters.gateway.egress import Egress
from adapters.gateway.idempotency import IdempotencyStore
from adapters.gateway.ingress import Ingress
from adapters.gateway.openapi import openapi_document
from adapters.gateway.readmodels import ReadModels
from adapters.gateway.tokens import TokenIssuer
from adapters.ledger import LedgerStore
from bus.contract.standard import example, load_standard
from bus.errors import LifecycleError
from bus.lifecycle import Lifecycle
from bus.logs import get_logger
from bus.subscriber import Subscriber, SubscriberConfig

__all__ = ["Gateway"]

log = get_logger("adapters.gateway")


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: ``spbe-bus run`` owns the process's signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class Gateway(Lifecycle):
    """The REST gateway of one :class:`GatewayConfig`."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self._models: ReadModels | None = None
        self._ledger: LedgerStore | None = None
        self._audit: ApiAudit | None = None
        self._ingress: Ingress | None = None
        self._subscriber: Subscriber | None = None
        self._server: _Server | None = None
        self._follow: asyncio.Task[None] | None = None
        self._started = False

    async def start(self) -> None:
        if self._started:
            return
        config = self.config
        try:
            await self._open(config)
        except BaseException:
            await self.stop()
            raise
        self._started = True
        log.info(
            "gateway.started",
            url=f"https://{config.host}:{config.port}",
            clients=len(config.clients),
            read_topics=len(self._read_topics()),
        )

    def _read_topics(self) -> list[str]:
        return self.config.read_topics(datetime.now(UTC).date())

    async def _open(self, config: GatewayConfig) -> None:
        url = config.database_url.get_secret_value()
        self._models = models = ReadModels.from_url(url)
        await run_sync(models.create_tables)
        store = IdempotencyStore(models.engine)  # one database, one pool
        await run_sync(store.create_table)
        self._ledger = ledger = LedgerStore.from_url(
            config.ledger_url.get_secret_value(),
            config.ledger_subject_secret.get_secret_value(),
        )
        await run_sync(ledger.check_table)
        self._audit = audit = ApiAudit(config.connection)
        await audit.start()
        standard = load_standard()
        posting = [
            a for c in config.clients if (a := config.access_of(c.id)) is not None and a.postable
        ]
        self._ingress = ingress = Ingress(
            config.connection,
            store,
            key_secrets=config.key_secrets,
            standard=standard,
            clients=posting,
            topic_overrides=config.topic_overrides,
        )
        await ingress.start()
        topics = self._read_topics()
        if topics:
            settings: dict[str, Any] = {
                "bootstrap_servers": config.bootstrap_servers,
                "security": config.security,
                "subscriber_id": config.group_id,
                "topics": tuple(topics),
            }
            if config.registry_topic:
                settings["registry_topic"] = config.registry_topic
            subscription = SubscriberConfig.model_validate(settings)
            self._subscriber = Subscriber(subscription, models, batch_handler=models.apply_batch)
            await self._subscriber.start()
        examples = {name: example(name) for name in standard}
        server_url = f"https://{config.host}:{config.port}"
        app = GatewayApp(
            config,
            ingress=ingress,
            egress=Egress(models, ledger, page_limit=config.page_limit),
            audit=audit,
            issuer=TokenIssuer(config.token_signing_key, ttl_s=config.token_ttl_s),
            openapi=openapi_document(standard, examples, server_url=server_url),
            health=self._health,
        )
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
                timeout_graceful_shutdown=10,
            )
        )

    def _health(self) -> Mapping[str, Any]:
        following = self._subscriber is None or (
            self._follow is not None and not self._follow.done()
        )
        serving = self._server is not None and self._server.started
        ok = self._started and following and serving
        return {
            "status": "ok" if ok else "degraded",
            "serving": serving,
            "read_models": "following" if following else "stopped",
        }

    async def run(self) -> None:
        """Serve HTTPS and follow the read models' topics until :meth:`request_stop`."""
        if not self._started or self._server is None:
            raise LifecycleError(
                "the gateway is not started",
                fix="use 'async with Gateway(config)' or await start() first",
            )
        if self._subscriber is not None:
            self._follow = asyncio.create_task(self._subscriber.run(), name="gateway-read-models")
        try:
            await self._server.serve()
        finally:
            if self._subscriber is not None:
                self._subscriber.request_stop()
            if self._follow is not None:
                await self._follow

    def request_stop(self) -> None:
        """Stop taking requests; :meth:`run` returns once those in flight are answered."""
        if self._server is not None:
            self._server.should_exit = True

    async def stop(self) -> None:
        self._started = False
        subscriber, self._subscriber = self._subscriber, None
        ingress, self._ingress = self._ingress, None
        audit, self._audit = self._audit, None
        try:
            if subscriber is not None:
                await subscriber.stop()
            if ingress is not None:
                await ingress.stop()
            if audit is not None:
                await audit.stop()
        finally:
            if self._ledger is not None:
                self._ledger.close()
                self._ledger = None
            if self._models is not None:
                self._models.dispose()
                self._models = None

    def __repr__(self) -> str:
        return f"Gateway(port={self.config.port}, clients={len(self.config.clients)}, secrets=***)"
