"""Metrics: the handler wrapper counts outcomes and times attempts; the endpoint serves them."""

from __future__ import annotations

import urllib.error
import urllib.request
from datetime import UTC, date, datetime

import pytest
from prometheus_client import CollectorRegistry

from bus.contract.envelope import DataClassification, Envelope
from bus.delivery import Delivery, Outcome, RetryPolicy
from bus.errors import PermanentError, PublishError, TransientError
from bus.ops.catalog import default_catalog_path, load_catalog
from bus.ops.metrics import (
    BusMetrics,
    count_published,
    expect_published,
    expiry_timestamp,
    export_subscription_expiry,
    instrument_handler,
    record_published,
    serve_metrics,
)
from bus.publisher import PublishResult
from tests.support.events import izin

TOPIC = "spbe.dpmptsp.izin.v1"
SUB = "bapenda-izin"


def delivery(attempt: int = 1) -> Delivery:
    event = izin(1)
    envelope = Envelope(
        source="ID/PEMDA-3273/DPMPTSP/sicantik",
        type="id.go.spbe.dpmptsp.IzinDiterbitkan.v1",
        steward="DPMPTSP",
        partitionkey=event.nomor_izin,
        dataclassification=DataClassification.RESTRICTED,
        time=datetime(2026, 6, 1, tzinfo=UTC),
    )
    return Delivery(event, envelope, TOPIC, 0, 7, b"k", attempt)


def value(metrics: BusMetrics, name: str, **labels: str) -> float:
    got = metrics.registry.get_sample_value(name, {"subscriber": SUB, "topic": TOPIC, **labels})
    return 0.0 if got is None else got


@pytest.fixture
def metrics() -> BusMetrics:
    return BusMetrics(CollectorRegistry())


async def test_applied_and_duplicate_outcomes_are_counted_with_their_latency(
    metrics: BusMetrics,
) -> None:
    results = iter([None, Outcome.DUPLICATE])

    async def apply(_: Delivery) -> Outcome | None:
        return next(results)

    handler = instrument_handler(apply, SUB, metrics=metrics)
    await handler(delivery())
    await handler(delivery())
    assert value(metrics, "spbe_consumed_total") == 2
    assert value(metrics, "spbe_applied_total") == 1
    assert value(metrics, "spbe_duplicates_total") == 1
    assert value(metrics, "spbe_apply_latency_seconds_count") == 2


async def test_retries_count_and_only_the_final_failure_counts_as_dead_lettered(
    metrics: BusMetrics,
) -> None:
    async def fail(_: Delivery) -> None:
        raise TransientError("database lock timeout")

    handler = instrument_handler(fail, SUB, retry=RetryPolicy(max_attempts=3), metrics=metrics)
    for attempt in (1, 2, 3):
        with pytest.raises(TransientError):
            await handler(delivery(attempt))
    assert value(metrics, "spbe_consumed_total") == 1
    assert value(metrics, "spbe_retries_total") == 2
    assert value(metrics, "spbe_dead_lettered_total") == 1


async def test_a_permanent_failure_counts_as_dead_lettered_at_once(metrics: BusMetrics) -> None:
    async def refuse(_: Delivery) -> None:
        raise PermanentError("kolom kbli tidak dikenal")

    handler = instrument_handler(refuse, SUB, metrics=metrics)
    with pytest.raises(PermanentError):
        await handler(delivery())
    assert value(metrics, "spbe_dead_lettered_total") == 1


def test_published_results_and_failures_are_counted(metrics: BusMetrics) -> None:
    ok = PublishResult(event_id="e1", topic=TOPIC, partition=0, offset=1)
    record_published([ok, ok, PublishError("broker away")], topic=TOPIC, metrics=metrics)
    registry = metrics.registry
    assert registry.get_sample_value("spbe_published_total", {"topic": TOPIC}) == 2
    failures = {"topic": TOPIC, "error": "PublishError"}
    assert registry.get_sample_value("spbe_publish_failures_total", failures) == 1


def test_a_batch_is_counted_per_topic_and_a_failure_under_the_topic_it_was_for(
    metrics: BusMetrics,
) -> None:
    other = "spbe.dukcapil.penduduk.v1"
    results = [
        (TOPIC, PublishResult(event_id="e1", topic=TOPIC, partition=0, offset=1)),
        (other, PublishResult(event_id="e2", topic=other, partition=3, offset=7)),
        (TOPIC, PublishResult(event_id="e3", topic=TOPIC, partition=1, offset=2)),
        (other, PublishError("broker away")),
    ]
    count_published(results, metrics=metrics)
    count_published(results[:1], metrics=metrics)
    sample = metrics.registry.get_sample_value
    assert sample("spbe_published_total", {"topic": TOPIC}) == 3
    assert sample("spbe_published_total", {"topic": other}) == 1
    assert sample("spbe_publish_failures_total", {"topic": other, "error": "PublishError"}) == 1
    assert sample("spbe_publish_failures_total", {"topic": TOPIC, "error": "PublishError"}) is None


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (loopback)
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


async def test_the_endpoint_serves_metrics_and_health_on_loopback(metrics: BusMetrics) -> None:
    healthy = True

    async def apply(_: Delivery) -> None:
        return None

    await instrument_handler(apply, SUB, metrics=metrics)(delivery())
    with serve_metrics(0, registry=metrics.registry, health=lambda: healthy) as server:
        assert server.url.startswith("http://127.0.0.1:")
        status, body = get(f"{server.url}/metrics")
        assert status == 200
        assert f'spbe_applied_total{{subscriber="{SUB}",topic="{TOPIC}"}} 1.0' in body
        assert get(f"{server.url}/healthz") == (200, "ok\n")
        healthy = False
        assert get(f"{server.url}/healthz") == (503, "unhealthy\n")
        assert get(f"{server.url}/other")[0] == 404


def test_each_contract_exports_the_end_of_its_last_day_and_a_dropped_one_disappears(
    metrics: BusMetrics,
) -> None:
    catalog, _ = load_catalog(default_catalog_path())
    export_subscription_expiry(catalog.subscriptions, metrics=metrics)
    name = "spbe_subscription_expires_timestamp_seconds"
    dinsos = next(s for s in catalog.subscriptions if s.subscriber == "dinsos-penduduk")
    assert dinsos.expires == date(2028, 6, 30)
    got = metrics.registry.get_sample_value(
        name, {"subscriber": "dinsos-penduduk", "opd": "DINSOS"}
    )
    assert got == datetime(2028, 7, 1, tzinfo=UTC).timestamp()
    assert expiry_timestamp(date(2027, 12, 31)) == datetime(2028, 1, 1, tzinfo=UTC).timestamp()
    samples = [s for f in metrics.registry.collect() if f.name == name for s in f.samples]
    assert len(samples) == len(catalog.subscriptions)

    others = [s for s in catalog.subscriptions if s.subscriber != "dinsos-penduduk"]
    export_subscription_expiry(others, metrics=metrics)
    labels = {"subscriber": "dinsos-penduduk", "opd": "DINSOS"}
    assert metrics.registry.get_sample_value(name, labels) is None


def test_expected_topics_are_exported_at_zero_before_their_first_event(
    metrics: BusMetrics,
) -> None:
    assert metrics.registry.get_sample_value("spbe_published_total", {"topic": TOPIC}) is None
    expect_published([TOPIC], metrics=metrics)
    assert metrics.registry.get_sample_value("spbe_published_total", {"topic": TOPIC}) == 0
