"""Run an adapter from its config file: ``spbe-bus run CONFIG``.

Every adapter file names its ``kind`` and carries the sections that kind needs:

====================  ==========================================================
``outbox-relay``      ``relay``: :class:`~adapters.sources.outbox.OutboxRelayConfig`,
                      optional ``snapshot``:
                      :class:`~adapters.sources.snapshot.SnapshotConfig` (read by
                      ``spbe-bus snapshot``, not by ``run``)
``sql-sink``          ``subscription``: :class:`~bus.subscriber.SubscriberConfig`,
                      ``sink``: :class:`~adapters.sinks.sql.SqlSinkConfig`
``webhook-sink``      ``subscription``, ``webhook``:
                      :class:`~adapters.sinks.webhook.WebhookSinkConfig`
``contract-service``  ``contracts``: :class:`~adapters.contracts.ContractServiceConfig`
====================  ==========================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from adapters.config_file import describe_errors, read_config_data
from adapters.kinds import (
    KINDS,
    AdapterFile,
    OutboxRelayFile,
    SinkAdapter,
    SinkFile,
    SinkKind,
    SourceKind,
    batch_handler_of,
)
from bus.delivery import BatchHandler, Handler
from bus.errors import ConfigError
from bus.lifecycle import run_until_stopped
from bus.logs import get_logger
from bus.ops.metrics import (
    default_metrics,
    instrument_batch_handler,
    instrument_handler,
    serve_metrics,
    track_lag,
)
from bus.subscriber import Subscriber, SubscriberConfig

__all__ = [
    "SubscriberSink",
    "load_adapter",
    "load_snapshot",
    "load_subscriber_sink",
    "run_adapter",
]

log = get_logger(__name__)


def load_adapter(path: Path) -> AdapterFile:
    """Read and validate an adapter file; one ConfigError names every mistake."""
    data = read_config_data(path)
    kind = data.get("kind")
    found = KINDS.get(kind) if isinstance(kind, str) else None
    if found is None:
        close = difflib.get_close_matches(str(kind), list(KINDS), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise ConfigError(
            f"{path}: kind: {kind!r} is not an adapter kind",
            fix=f"{hint}set kind to one of: {', '.join(KINDS)}",
        )
    model = found.file
    try:
        adapter: AdapterFile = model.model_validate(data)  # type: ignore[assignment]
        return adapter
    except ValidationError as exc:
        raise ConfigError(
            f"{path} has {exc.error_count()} problem{'s' if exc.error_count() != 1 else ''}:\n"
            + describe_errors(model, exc),
            fix="correct the keys above; deploy/adapters/ has a commented example of each kind",
        ) from None


def load_snapshot(path: Path) -> OutboxRelayFile:
    """A steward's outbox-relay file that describes a snapshot (its ``snapshot:`` section)."""
    adapter = load_adapter(path)
    if not isinstance(adapter, OutboxRelayFile):
        raise ConfigError(
            f"{path} is a {adapter.kind} file; a snapshot is published by a steward",
            fix="pass the steward's outbox-relay file, with a snapshot: section",
        )
    if adapter.snapshot is None:
        raise ConfigError(
            f"{path}: snapshot: the file has no snapshot section",
            fix="add one naming table, key_column, version_column and event "
            "(deploy/adapters/disdukcapil-outbox-relay.yaml has an example)",
        )
    try:
        adapter.snapshot.row_to_event()
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc.message}", fix=exc.fix) from None
    return adapter


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
            track_lag(default_metrics(), subscription.connection, name, subscription.topics)
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
    kind = KINDS[adapter.kind]
    if isinstance(kind, SourceKind):
        async with kind.build(adapter) as source:
            await run_until_stopped(source.run, source.request_stop, stop=stop)
    else:
        assert isinstance(adapter, SinkFile)
        async with kind.build(adapter) as sink:
            # A sink that applies a partition's batch in one transaction falls back to one
            # event at a time when the batch fails, so outcomes are the same, only faster.
            await _run_subscriber(
                adapter.subscription,
                sink,
                stop,
                batch_handler=batch_handler_of(sink),
                with_metrics=with_metrics,
            )
    log.info("adapter.stopped", kind=adapter.kind)


def load_subscriber_sink(path: Path, subscriber: str, topics: Sequence[str]) -> SubscriberSink:
    """The subscription and the (not yet started) sink of ``subscriber``'s adapter file.

    Refuses a source's file, another subscriber's file, and one that does not consume
    every topic of ``topics``: a replay or redrive must apply events as that subscriber.
    """
    adapter = load_adapter(path)
    kind = KINDS[adapter.kind]
    if not isinstance(kind, SinkKind) or not isinstance(adapter, SinkFile):
        sinks = ", ".join(name for name, k in KINDS.items() if isinstance(k, SinkKind))
        raise ConfigError(
            f"{path} is an {adapter.kind} file; events are applied by a sink",
            fix=f"pass the subscriber's adapter file (kind {sinks})",
        )
    subscription = adapter.subscription
    if subscription.subscriber_id != subscriber:
        raise ConfigError(
            f"{path} is the adapter of subscriber {subscription.subscriber_id}, not {subscriber}",
            fix="pass the adapter file of the subscriber named by --subscriber",
        )
    missing = [t for t in topics if t not in subscription.topics]
    if missing:
        raise ConfigError(
            f"subscriber {subscriber} does not consume {', '.join(missing)} (its adapter file "
            f"lists {', '.join(subscription.topics)})",
            fix="check --topic, or the adapter file",
        )
    return SubscriberSink(subscription=subscription, sink=kind.build(adapter))


@dataclass(frozen=True)
class SubscriberSink:
    """A subscriber's adapter file: its subscription and its (not yet started) sink."""

    subscription: SubscriberConfig
    sink: SinkAdapter

    @property
    def batch_handler(self) -> BatchHandler | None:
        """The sink's way to apply many events in one go, if it has one (as ``run`` uses)."""
        return batch_handler_of(self.sink)
