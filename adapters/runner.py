"""Run an adapter from its config file: ``spbe-bus run CONFIG``.

Every adapter file names its ``kind`` and carries the sections that kind needs:

==================  ==========================================================
``outbox-relay``    ``relay``: :class:`~adapters.sources.outbox.OutboxRelayConfig`
``sql-sink``        ``subscription``: :class:`~bus.subscriber.SubscriberConfig`,
                    ``sink``: :class:`~adapters.sinks.sql.SqlSinkConfig`
``webhook-sink``    ``subscription``, ``webhook``:
                    :class:`~adapters.sinks.webhook.WebhookSinkConfig`
==================  ==========================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
from pathlib import Path
from typing import Literal

import structlog
from pydantic import BaseModel, ConfigDict, ValidationError

from adapters.config_file import describe_errors, read_config_data
from adapters.sinks.sql import SqlSink, SqlSinkConfig
from adapters.sinks.webhook import WebhookSink, WebhookSinkConfig
from adapters.sources.outbox import OutboxRelay, OutboxRelayConfig
from bus.delivery import BatchHandler, Handler
from bus.errors import ConfigError
from bus.lifecycle import run_until_stopped
from bus.ops.metrics import (
    default_metrics,
    instrument_batch_handler,
    instrument_handler,
    serve_metrics,
    track_lag,
)
from bus.subscriber import Subscriber, SubscriberConfig

__all__ = [
    "AdapterFile",
    "OutboxRelayFile",
    "SqlSinkFile",
    "WebhookSinkFile",
    "load_adapter",
    "run_adapter",
]

log = structlog.get_logger(__name__)


class OutboxRelayFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["outbox-relay"]
    relay: OutboxRelayConfig


class SqlSinkFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["sql-sink"]
    subscription: SubscriberConfig
    sink: SqlSinkConfig


class WebhookSinkFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["webhook-sink"]
    subscription: SubscriberConfig
    webhook: WebhookSinkConfig


AdapterFile = OutboxRelayFile | SqlSinkFile | WebhookSinkFile
_KINDS: dict[str, type[AdapterFile]] = {
    "outbox-relay": OutboxRelayFile,
    "sql-sink": SqlSinkFile,
    "webhook-sink": WebhookSinkFile,
}


def load_adapter(path: Path) -> AdapterFile:
    """Read and validate an adapter file; one ConfigError names every mistake."""
    data = read_config_data(path)
    kind = data.get("kind")
    model = _KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        close = difflib.get_close_matches(str(kind), list(_KINDS), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise ConfigError(
            f"{path}: kind: {kind!r} is not an adapter kind",
            fix=f"{hint}set kind to one of: {', '.join(_KINDS)}",
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            f"{path} has {exc.error_count()} problem{'s' if exc.error_count() != 1 else ''}:\n"
            + describe_errors(model, exc),
            fix="correct the keys above; deploy/adapters/ has a commented example of each kind",
        ) from None


async def _run_subscriber(
    subscription: SubscriberConfig,
    handler: Handler,
    stop: asyncio.Event | None,
    batch_handler: BatchHandler | None = None,
    *,
    with_metrics: bool = False,
) -> None:
    lag: asyncio.Task[None] | None = None
    if with_metrics:
        name = subscription.subscriber_id
        handler = instrument_handler(handler, name, retry=subscription.retry)
        if batch_handler is not None:
            batch_handler = instrument_batch_handler(batch_handler, name)
        lag = asyncio.create_task(
            track_lag(default_metrics(), subscription.bootstrap_servers, name, subscription.topics)
        )
    try:
        async with Subscriber(subscription, handler, batch_handler=batch_handler) as subscriber:
            await run_until_stopped(subscriber.run, subscriber.request_stop, stop=stop)
    finally:
        if lag is not None:
            lag.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lag


async def run_adapter(
    adapter: AdapterFile,
    *,
    stop: asyncio.Event | None = None,
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
) -> None:
    """Run ``adapter`` until SIGTERM/SIGINT, or until ``stop`` is set when one is given.

    With ``metrics_port``, Prometheus metrics (``/metrics``) and a health check
    (``/healthz``: 200 while the adapter runs) are served there.
    """
    log.info("adapter.starting", kind=adapter.kind)
    if metrics_port is None:
        await _run(adapter, stop, with_metrics=False)
        return
    running = asyncio.current_task()
    server = serve_metrics(
        metrics_port, metrics_host, health=lambda: running is not None and not running.done()
    )
    log.info("adapter.metrics", url=server.url)
    try:
        await _run(adapter, stop, with_metrics=True)
    finally:
        server.close()


async def _run(adapter: AdapterFile, stop: asyncio.Event | None, *, with_metrics: bool) -> None:
    if isinstance(adapter, OutboxRelayFile):
        async with OutboxRelay(adapter.relay) as relay:
            await run_until_stopped(relay.run, relay.request_stop, stop=stop)
    elif isinstance(adapter, SqlSinkFile):
        async with SqlSink(adapter.sink) as sql_sink:
            # A partition's batch applies in one transaction; a failing batch falls back
            # to one event at a time, so outcomes are the same, only faster.
            await _run_subscriber(
                adapter.subscription,
                sql_sink,
                stop,
                batch_handler=sql_sink.apply_batch,
                with_metrics=with_metrics,
            )
    else:
        async with WebhookSink(adapter.webhook) as webhook_sink:
            await _run_subscriber(
                adapter.subscription, webhook_sink, stop, with_metrics=with_metrics
            )
    log.info("adapter.stopped", kind=adapter.kind)
