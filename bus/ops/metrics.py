"""Prometheus metrics and a health endpoint for long-running adapters.

    metrics = BusMetrics()                                   # the default registry
    handler = instrument_handler(apply, "dinsos-penduduk", metrics=metrics)
    server = serve_metrics(9464, health=lambda: not runner.done())
    lag_task = asyncio.create_task(track_lag(metrics, bootstrap, subscriber, topics))

Series (counters end in ``_total`` on the wire):

=====================================  ===================================================
``spbe_published_total``               events the broker acknowledged, by topic
``spbe_publish_failures_total``        events the broker did not acknowledge, by topic/error
``spbe_consumed_total``                events handed to a handler (first attempts)
``spbe_applied_total``                 events applied
``spbe_duplicates_total``              events recognised as duplicates
``spbe_retries_total``                 handler attempts after the first
``spbe_dead_lettered_total``           handler failures that end in the dead letter topic
``spbe_apply_latency_seconds``         histogram of handler attempt durations
``spbe_consumer_lag``                  gauge per partition, read from the broker
``spbe_dead_letters``                  gauge: dead letters waiting in the DLQ topic
``spbe_subscription_expires_timestamp  gauge: the end of a subscription's last day of
_seconds``                             access (UTC), by subscriber and opd
=====================================  ===================================================

Subscriber series are labelled ``subscriber`` and ``topic``. The handler wrapper sees
what the handler sees: events that fail to decode are dead-lettered by the subscriber
before any handler runs, so ``spbe_dead_lettered_total`` counts handler failures only;
``spbe_dead_letters`` (from the broker) counts them all.

:func:`export_subscription_expiry` sets the expiry gauge from a catalogue's subscriptions
(the contract service does at start), so an alert can warn before a contract lapses.

:func:`serve_metrics` answers ``GET /metrics`` (Prometheus text format) and ``GET /healthz``
(200 ``ok`` or 503 ``unhealthy``) from a daemon thread, on loopback unless told otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from bus.connection import KafkaConnection, as_connection
from bus.delivery import BatchHandler, Delivery, Handler, Outcome, RetryPolicy, is_retriable
from bus.errors import BusError
from bus.ops.catalog import Subscription
from bus.ops.status import subscriber_status
from bus.publisher import PublishResult

__all__ = [
    "LATENCY_BUCKETS_S",
    "BusMetrics",
    "MetricsServer",
    "count_published",
    "default_metrics",
    "expect_published",
    "expiry_timestamp",
    "export_subscription_expiry",
    "instrument_batch_handler",
    "instrument_handler",
    "record_published",
    "serve_metrics",
    "track_lag",
    "update_lag",
]

#: From a cached upsert (a few ms) to a slow remote webhook (tens of seconds).
LATENCY_BUCKETS_S = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_SUB = ("subscriber", "topic")


class BusMetrics:
    """Every series of the bus, registered in one registry (one instance per registry)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = REGISTRY if registry is None else registry
        r = self.registry
        self.published = Counter(
            "spbe_published", "Events acknowledged by the broker", ["topic"], registry=r
        )
        self.publish_failures = Counter(
            "spbe_publish_failures",
            "Events the broker did not acknowledge",
            ["topic", "error"],
            registry=r,
        )
        self.consumed = Counter("spbe_consumed", "Events handed to a handler", _SUB, registry=r)
        self.applied = Counter("spbe_applied", "Events applied", _SUB, registry=r)
        self.duplicates = Counter(
            "spbe_duplicates", "Events recognised as duplicates", _SUB, registry=r
        )
        self.retries = Counter("spbe_retries", "Handler attempts after the first", _SUB, registry=r)
        self.dead_lettered = Counter(
            "spbe_dead_lettered", "Handler failures sent to the dead letter topic", _SUB, registry=r
        )
        self.apply_latency = Histogram(
            "spbe_apply_latency_seconds",
            "Duration of one handler attempt",
            _SUB,
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.lag = Gauge(
            "spbe_consumer_lag",
            "End offset minus committed offset",
            [*_SUB, "partition"],
            registry=r,
        )
        self.dead_letters = Gauge(
            "spbe_dead_letters", "Dead letters held in the dead letter topic", _SUB, registry=r
        )
        self.subscription_expires = Gauge(
            "spbe_subscription_expires_timestamp_seconds",
            "End of the last day of a subscription's access (UTC), as a Unix time",
            ["subscriber", "opd"],
            registry=r,
        )


@cache
def default_metrics() -> BusMetrics:
    """The process-wide :class:`BusMetrics` in prometheus_client's default registry."""
    return BusMetrics()


def expiry_timestamp(expires: date) -> float:
    """The Unix time at which ``expires``, the last day of access, ends (midnight UTC after)."""
    end = expires + timedelta(days=1)
    return datetime(end.year, end.month, end.day, tzinfo=UTC).timestamp()


def export_subscription_expiry(
    subscriptions: Iterable[Subscription], *, metrics: BusMetrics | None = None
) -> None:
    """Set ``spbe_subscription_expires_timestamp_seconds`` for each subscription.

    Series of subscriptions no longer given are removed, so a re-export after a catalogue
    change leaves no stale contract behind.
    """
    m = metrics or default_metrics()
    m.subscription_expires.clear()
    for sub in subscriptions:
        m.subscription_expires.labels(sub.subscriber, sub.opd).set(expiry_timestamp(sub.expires))


def instrument_handler(
    handler: Handler,
    subscriber: str,
    *,
    retry: RetryPolicy | None = None,
    metrics: BusMetrics | None = None,
) -> Handler:
    """Wrap ``handler`` so each call counts its outcome and times itself.

    ``retry`` must be the subscriber's policy: a retriable failure on the last attempt is
    the one that gets dead-lettered.
    """
    m = metrics or default_metrics()
    max_attempts = (retry or RetryPolicy()).max_attempts

    async def instrumented(delivery: Delivery) -> Outcome | None:
        labels = (subscriber, delivery.topic)
        if delivery.attempt == 1:
            m.consumed.labels(*labels).inc()
        else:
            m.retries.labels(*labels).inc()
        started = time.perf_counter()
        try:
            result = await handler(delivery)
        except Exception as exc:
            m.apply_latency.labels(*labels).observe(time.perf_counter() - started)
            if not is_retriable(exc) or delivery.attempt >= max_attempts:
                m.dead_lettered.labels(*labels).inc()
            raise
        m.apply_latency.labels(*labels).observe(time.perf_counter() - started)
        if result is Outcome.DUPLICATE:
            m.duplicates.labels(*labels).inc()
        else:
            m.applied.labels(*labels).inc()
        return result

    return instrumented


def instrument_batch_handler(
    batch_handler: BatchHandler, subscriber: str, *, metrics: BusMetrics | None = None
) -> BatchHandler:
    """Wrap a batch handler: count each event's outcome, time each batch.

    A batch that raises is not counted here: the subscriber then hands its events to the
    per-event handler, whose wrapper counts them.
    """
    m = metrics or default_metrics()

    async def instrumented(deliveries: Sequence[Delivery]) -> Sequence[Outcome | None]:
        started = time.perf_counter()
        outcomes = await batch_handler(deliveries)
        elapsed = time.perf_counter() - started
        for delivery, outcome in zip(deliveries, outcomes, strict=True):
            labels = (subscriber, delivery.topic)
            m.consumed.labels(*labels).inc()
            if outcome is Outcome.DUPLICATE:
                m.duplicates.labels(*labels).inc()
            else:
                m.applied.labels(*labels).inc()
        if deliveries:
            m.apply_latency.labels(subscriber, deliveries[0].topic).observe(elapsed)
        return outcomes

    return instrumented


def record_published(
    results: PublishResult | BusError | Iterable[PublishResult | BusError],
    *,
    topic: str | None = None,
    metrics: BusMetrics | None = None,
) -> None:
    """Count what :meth:`Publisher.publish` / ``publish_many`` returned.

    A failure carries no topic of its own: pass ``topic`` to label it (else ``unknown``).
    """
    items = [results] if isinstance(results, PublishResult | BusError) else results
    count_published(((topic or "unknown", item) for item in items), metrics=metrics)


def count_published(
    outcomes: Iterable[tuple[str, PublishResult | BusError]], *, metrics: BusMetrics | None = None
) -> None:
    """Count a batch of ``(topic, what the publisher returned)`` pairs, one increment per
    series (a relay's batch costs a few counter updates, not one per event); a result is
    counted under the topic it was written to."""
    m = metrics or default_metrics()
    published: Tally[str] = Tally()
    failed: Tally[tuple[str, str]] = Tally()
    for topic, item in outcomes:
        if isinstance(item, PublishResult):
            published[item.topic] += 1
        else:
            failed[(topic, type(item).__name__)] += 1
    for name, n in published.items():
        m.published.labels(name).inc(n)
    for (name, error), n in failed.items():
        m.publish_failures.labels(name, error).inc(n)


def expect_published(topics: Iterable[str], *, metrics: BusMetrics | None = None) -> None:
    """Export ``spbe_published_total`` of ``topics`` at 0 before their first event.

    A publisher that starts and then publishes nothing shows a flat series, not none, so
    a steward silent since a restart is seen as silent (alert ``SpbeStewardSilent``).
    """
    m = metrics or default_metrics()
    for topic in topics:
        m.published.labels(topic)


async def update_lag(
    metrics: BusMetrics, kafka: KafkaConnection | str, subscriber: str, topics: Iterable[str]
) -> None:
    """Read the subscriber's lag and dead letters from the broker into the gauges."""
    status = await subscriber_status(kafka, subscriber, topics, last_applied=False)
    for p in status.partitions:
        metrics.lag.labels(subscriber, p.topic, str(p.partition)).set(p.lag)
    for topic, dead in zip(status.topics, status.dead_letters, strict=True):
        metrics.dead_letters.labels(subscriber, topic).set(dead.count)


async def track_lag(
    metrics: BusMetrics,
    kafka: KafkaConnection | str,
    subscriber: str,
    topics: Iterable[str],
    *,
    interval_s: float = 15.0,
) -> None:
    """:func:`update_lag` every ``interval_s`` until cancelled; a failed read is skipped."""
    names = tuple(topics)
    connection = as_connection(kafka)
    while True:
        with contextlib.suppress(BusError):
            await update_lag(metrics, connection, subscriber, names)
        await asyncio.sleep(interval_s)


class MetricsServer:
    """The running endpoint; ``close()`` (or ``with``) stops it."""

    def __init__(self, server: ThreadingHTTPServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = self._server.server_address[0]
        name = host.decode() if isinstance(host, bytes) else host
        return f"http://{name}:{self.port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def serve_metrics(
    port: int,
    host: str = "127.0.0.1",
    *,
    registry: CollectorRegistry | None = None,
    health: Callable[[], bool] | None = None,
) -> MetricsServer:
    """Serve ``/metrics`` and ``/healthz`` on ``host:port`` (port 0: any free port)."""
    source = REGISTRY if registry is None else registry
    healthy = health or (lambda: True)

    class _Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._reply(200, generate_latest(source), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                try:
                    ok = healthy()
                except Exception:
                    ok = False
                self._reply(200 if ok else 503, b"ok\n" if ok else b"unhealthy\n")
            else:
                self._reply(404, b"not found: try /metrics or /healthz\n")

        def _reply(self, code: int, body: bytes, kind: str = "text/plain; charset=utf-8") -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return  # scrapes every few seconds would flood the log

    server = ThreadingHTTPServer((host, port), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="spbe-metrics", daemon=True)
    thread.start()
    return MetricsServer(server, thread)
