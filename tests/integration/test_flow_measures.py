"""Measured data flows on a real broker: frequency from offsets, lag, dead letters, expiry.

Three subscriptions of one restricted topic: one that applied some events and dead-lettered
one, one that applied nothing of events published over ten days, and one whose agreement
expired. The records are written to their projected topics directly, standing in for the
contract service (measuring reads offsets and timestamps only).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bus.cli.main import main
from bus.contract.projected_names import projected_topic
from bus.delivery import dlq_topic
from bus.ops.catalog import read_catalog
from bus.ops.catalog_plan import apply_plan, plan_catalog
from bus.ops.flow_diagram import flow_element_id
from bus.ops.flow_measures import MIN_SPAN, measure_flows
from bus.ops.flows import FlowState
from tests.integration.test_catalog import catalogue
from tests.support.kafka import produce, read_all
from tests.unit.test_flow_diagram import edges_of

pytestmark = pytest.mark.integration

APPLIED, PUBLISHED = 2, 5  # the dead-lettering subscriber's committed offset / its events
OLD, RECENT = 2, 4  # the lagging subscriber's events ten days ago / now


async def produce_at(bootstrap: str, topic: str, stamps: list[datetime | None]) -> None:
    """One record per stamp, with that Kafka timestamp (None: now)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for i, stamp in enumerate(stamps):
            millis = None if stamp is None else int(stamp.timestamp() * 1000)
            await (await producer.send(topic, f"record {i}".encode(), timestamp_ms=millis))
    finally:
        await producer.stop()


async def commit(bootstrap: str, group: str, topic: str, offset: int) -> None:
    """Commit ``offset`` on partition 0 of ``topic`` for ``group``, as a subscriber would."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.commit({tp: offset})
    finally:
        await consumer.stop()


async def test_measured_flows_show_frequency_lag_dead_letters_and_expiry(
    kafka_bootstrap: str, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    domain = f"t{uuid.uuid4().hex[:10]}"
    raw = f"spbe.{domain}.izin.v1"
    data = catalogue(domain, partitions=1, retention_ms=-1)
    (base,) = data["subscriptions"]
    failing, behind, ended = f"bapenda-{domain}", f"dinkopukm-{domain}", f"satpolpp-{domain}"
    data["subscriptions"] = [
        base,
        {**base, "subscriber": behind, "opd": "DINKOPUKM"},
        {**base, "subscriber": ended, "opd": "SATPOLPP", "expires": "2020-01-01"},
    ]
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    catalog = read_catalog(path)
    plan = await plan_catalog(kafka_bootstrap, catalog)
    assert (await apply_plan(kafka_bootstrap, catalog, plan)).in_sync

    failing_topic, behind_topic = projected_topic(raw, failing), projected_topic(raw, behind)
    await produce_at(kafka_bootstrap, failing_topic, [None] * PUBLISHED)
    await commit(kafka_bootstrap, failing, failing_topic, APPLIED)
    await produce(kafka_bootstrap, dlq_topic(failing_topic, failing), [b"cannot apply"])
    ten_days_ago = datetime.now(UTC) - timedelta(days=10)
    await produce_at(kafka_bootstrap, behind_topic, [ten_days_ago] * OLD + [None] * RECENT)
    now = datetime.now(UTC)

    measures = await measure_flows(kafka_bootstrap, catalog, max_lag=3, now=now)
    assert set(measures) == {f"{s}:{raw}" for s in (failing, behind, ended)}

    dead = measures[f"{failing}:{raw}"]
    assert dead.state is FlowState.DEAD_LETTERING
    assert (dead.lag, dead.dead_letters) == (PUBLISHED - APPLIED, 1)
    # A topic seconds old is divided by the shortest span, not by its age.
    assert dead.events_per_day == pytest.approx(PUBLISHED * timedelta(days=1) / MIN_SPAN)
    records = await read_all(kafka_bootstrap, failing_topic, PUBLISHED)
    applied = next(r for r in records if r.offset == APPLIED - 1)
    assert dead.last_applied == datetime.fromtimestamp(applied.timestamp / 1000, UTC)

    lagging = measures[f"{behind}:{raw}"]
    assert lagging.state is FlowState.LAGGING
    assert (lagging.lag, lagging.dead_letters, lagging.last_applied) == (OLD + RECENT, 0, None)
    assert lagging.events_per_day == pytest.approx(RECENT / 7), "only the window's events"

    expired = measures[f"{ended}:{raw}"]
    assert expired.state is FlowState.EXPIRED
    assert expired.events_per_day is None, "nothing was ever projected to it"
    assert expired.lag == 0

    # Over a window longer than the topic's life, divide by its age (ten days).
    wide = await measure_flows(kafka_bootstrap, catalog, window=timedelta(days=30), now=now)
    assert wide[f"{behind}:{raw}"].events_per_day == pytest.approx((OLD + RECENT) / 10, rel=1e-3)

    args = ["catalog", "diagram", "--catalog", str(path), "--format", "dot"]
    measured = [*args, "--bootstrap", kafka_bootstrap, "--max-lag", "3"]
    assert await asyncio.to_thread(main, measured) == 0
    edges = edges_of(capsysbinary.readouterr().out.decode())
    states = {
        failing: ("dead-lettering", "120 events/day · lag 3 · dead letters 1"),
        behind: ("lagging", "0.6 events/day · lag 6 · dead letters 0"),
        ended: ("expired", "- events/day · lag 0 · dead letters 0"),
    }
    for subscriber, (state, line) in states.items():
        edge = edges[flow_element_id(f"{subscriber}:{raw}")]
        assert edge["class"] == f"flow state-{state}"
        assert line in edge["label"]

    # As of a day before its last day of access, the ended subscription's flow is measured
    # as any other: --today decides expiry for the measured states too.
    assert await asyncio.to_thread(main, [*measured, "--today", "2019-12-31"]) == 0
    edges = edges_of(capsysbinary.readouterr().out.decode())
    assert edges[flow_element_id(f"{ended}:{raw}")]["class"] == "flow state-ok"
    assert edges[flow_element_id(f"{failing}:{raw}")]["class"] == "flow state-dead-lettering"

    assert await asyncio.to_thread(main, args) == 0  # no --bootstrap: the catalogue only
    edges = edges_of(capsysbinary.readouterr().out.decode())
    assert edges[flow_element_id(f"{failing}:{raw}")]["class"] == "flow state-unmeasured"
    assert "events/day" not in edges[flow_element_id(f"{failing}:{raw}")]["label"]
