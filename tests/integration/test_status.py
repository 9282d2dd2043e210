"""``spbe-bus status`` and the metrics endpoint report what a real subscriber did."""

from __future__ import annotations

import asyncio
import json
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from bus.cli.main import main
from bus.contract.events import IzinDiterbitkan
from bus.contract.projected_names import projected_topic
from bus.delivery import Delivery
from bus.errors import PermanentError
from bus.ops.catalog import read_catalog
from bus.ops.catalog_plan import apply_plan, plan_catalog
from bus.ops.metrics import BusMetrics, instrument_handler, serve_metrics, update_lag
from bus.ops.status import collect_status
from bus.subscriber import Subscriber
from tests.integration.test_catalog import catalogue
from tests.integration.test_subscriber import FAST_RETRY, eventually, publish, subscriber_config
from tests.support.events import izin
from tests.support.kafka import read_all

pytestmark = pytest.mark.integration

FIRST, LATER, REFUSED = 6, 4, 2  # published before / after the subscriber ran; dead-lettered


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (loopback)
        body: bytes = response.read()
    return body.decode()


async def test_status_and_metrics_match_what_the_subscriber_did(
    kafka_bootstrap: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    domain = f"t{uuid.uuid4().hex[:10]}"
    subscriber = f"bapenda-{domain}"
    # A restricted topic's subscriber reads its projection; the events are written there
    # directly, standing in for the contract service (status reads offsets only).
    topic = projected_topic(f"spbe.{domain}.izin.v1", subscriber)
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(catalogue(domain, partitions=2)))
    catalog = read_catalog(path)
    assert (
        await apply_plan(kafka_bootstrap, catalog, await plan_catalog(kafka_bootstrap, catalog))
    ).in_sync

    names = [f"Refused {i}" if i < REFUSED else f"Usaha {i}" for i in range(FIRST)]
    first: list[tuple[IzinDiterbitkan, int]] = [
        (izin(i, nama_usaha=n), 1) for i, n in enumerate(names)
    ]
    await publish(kafka_bootstrap, topic, first)

    async def apply(delivery: Delivery) -> None:
        assert isinstance(delivery.event, IzinDiterbitkan)
        if delivery.event.nama_usaha.startswith("Refused"):
            raise PermanentError("kolom kbli tidak dikenal di tabel tujuan")

    metrics = BusMetrics(CollectorRegistry())
    handler = instrument_handler(apply, subscriber, retry=FAST_RETRY, metrics=metrics)
    config = subscriber_config(kafka_bootstrap, topic, subscriber)
    async with Subscriber(config, handler) as sub:
        runner = asyncio.create_task(sub.run())
        await eventually(lambda: sum(sub.stats.committed.values()) == FIRST, watch=runner)
        sub.request_stop()
        await runner
    assert sub.stats.applied == FIRST - REFUSED

    await publish(kafka_bootstrap, topic, [(izin(100 + i), 1) for i in range(LATER)])

    report = await collect_status(kafka_bootstrap, catalog)
    (status,) = report.subscribers
    assert status.subscriber == subscriber
    assert status.lag == LATER, "lag = published - consumed"
    assert status.dead_letter_count == REFUSED
    assert sum(p.committed or 0 for p in status.partitions) == FIRST
    assert sum(p.end for p in status.partitions) == FIRST + LATER
    records = await read_all(kafka_bootstrap, topic, FIRST + LATER)
    stamps = {(r.partition, r.offset): r.timestamp for r in records}
    for p in status.partitions:
        assert p.lag == p.end - (p.committed or 0)
        if p.committed:
            expected = datetime.fromtimestamp(stamps[(p.partition, p.committed - 1)] / 1000, UTC)
            assert p.last_applied == expected, "the record just before the committed offset"

    await update_lag(metrics, kafka_bootstrap, subscriber, [topic])
    with serve_metrics(0, registry=metrics.registry) as server:
        body = await asyncio.to_thread(scrape, f"{server.url}/metrics")
    labels = f'subscriber="{subscriber}",topic="{topic}"'
    assert f"spbe_applied_total{{{labels}}} {float(FIRST - REFUSED)}" in body
    assert f"spbe_dead_lettered_total{{{labels}}} {float(REFUSED)}" in body
    assert f"spbe_consumed_total{{{labels}}} {float(FIRST)}" in body
    assert f"spbe_dead_letters{{{labels}}} {float(REFUSED)}" in body
    lag = sum(
        metrics.registry.get_sample_value(
            "spbe_consumer_lag", {"subscriber": subscriber, "topic": topic, "partition": str(n)}
        )
        or 0
        for n in range(2)
    )
    assert lag == LATER

    args = ["status", "--catalog", str(path), "--bootstrap", kafka_bootstrap]
    assert await asyncio.to_thread(main, [*args, "--max-lag", str(LATER), "--max-dlq", "2"]) == 0
    out = capsys.readouterr().out
    assert f"{subscriber}: lag {LATER}, dead letters {REFUSED}" in out
    assert await asyncio.to_thread(main, [*args, "--max-dlq", "1", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["breaches"] == [f"{subscriber}: 2 dead letters (more than --max-dlq 1)"]
    assert data["subscribers"][0]["lag"] == LATER
    assert await asyncio.to_thread(main, [*args, "--max-lag", str(LATER - 1)]) == 1
    assert "ALERT" in capsys.readouterr().out


def test_status_of_a_subscriber_that_never_ran_shows_everything_waiting(
    kafka_bootstrap: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    domain = f"t{uuid.uuid4().hex[:10]}"
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(catalogue(domain)))
    args = ["--catalog", str(path), "--bootstrap", kafka_bootstrap]
    assert main(["catalog", "apply", *args]) == 0
    capsys.readouterr()
    topic = projected_topic(f"spbe.{domain}.izin.v1", f"bapenda-{domain}")
    asyncio.run(publish(kafka_bootstrap, topic, [(izin(i), 1) for i in range(3)]))
    assert main(["status", *args, "--json"]) == 0
    (sub,) = json.loads(capsys.readouterr().out)["subscribers"]
    assert sub["lag"] == 3
    assert all(p["committed"] is None for p in sub["partitions"])
    assert sub["dead_letters"] == 0
