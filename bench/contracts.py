"""Contract service: events/s in and out, next to the plain subscriber on the same topic.

``events`` PendudukUpdated (:func:`bench.workload.penduduk_events`) are published once
by the steward's ``Publisher`` (pseudonymised keys) to a raw topic of
:data:`PARTITIONS` partitions. The subscriptions are the catalogue's
(``deploy/catalog.yaml``) on ``spbe.dukcapil.penduduk.v1`` that are active today, moved
to the bench's raw topic; their projected topics are made beside it.

Each round reads the whole topic twice, first with the bus ``Subscriber`` and a no-op
handler in a new group (the consume figure's path and clock, :mod:`bench.consume`),
then with a :class:`~adapters.contracts.ContractService` in a new group, with its
defaults (idempotent ``acks=all`` producer, 500-record fetches) and a ledger of its own
in PostgreSQL (a new database per round, ``create_ledger_table``): machine noise hits
both alike, and each round gives one service / subscriber ratio. The service's clock
runs from its first fetched batch (the earliest ``delivered_at`` of its ledger, stamped
when a fetched batch is taken in hand) until the batch that completes every
projection is committed, so joining the group is left out as the subscriber's clock
leaves it out. Events in are raw events consumed, events out projected records
produced (one per event and active subscription whose contract names the event type).
"""

from __future__ import annotations

import asyncio
import secrets
import statistics
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import partial
from typing import Any

import sqlalchemy as sa
from pydantic import SecretBytes

from adapters.contracts import ContractService
from adapters.db import create_engine
from adapters.ledger import LedgerStore, create_ledger_table, ledger_table
from bench import consume, workload
from bench.environment import create_topic
from bench.ledger import create_database, drop_database
from bench.stats import spread
from bus.connection import KafkaConnection
from bus.contract.projection import projected_topic
from bus.ops.catalog import Subscription, load_catalog
from bus.publisher import Publisher, PublisherConfig
from tests.support.kafka import committed_offsets

__all__ = [
    "CATALOG_TOPIC",
    "EVENT_TYPE",
    "PARTITIONS",
    "ServiceRound",
    "figures",
    "measure",
    "subscriptions_on",
]

Step = Callable[[str, Callable[[], Any]], Any]

#: The catalogue's raw topic whose subscriptions the service runs.
CATALOG_TOPIC = "spbe.dukcapil.penduduk.v1"
#: The event type published.
EVENT_TYPE = "id.go.spbe.dukcapil.PendudukUpdated.v1"
#: Partitions of the raw and the projected topics, as the other figures' topics.
PARTITIONS = 4
#: How long a round may take before it counts as failed.
ROUND_CAP_S = 600.0
_CHUNK = 1000


@dataclass(frozen=True, slots=True)
class ServiceRound:
    """One round of the contract service: what it consumed and produced, and in how long."""

    consumed: int
    produced: int
    seconds: float

    @property
    def in_per_s(self) -> float:
        return self.consumed / self.seconds if self.seconds > 0 else 0.0

    @property
    def out_per_s(self) -> float:
        return self.produced / self.seconds if self.seconds > 0 else 0.0


def subscriptions_on(
    subscriptions: Sequence[Subscription], catalog_topic: str, topic: str, today: date
) -> list[Subscription]:
    """The subscriptions naming ``catalog_topic`` and active ``today``, reading ``topic``.

    An expired subscription is left out (the service would deliver it nothing).
    """
    return [
        sub.model_copy(update={"topics": (topic,)})
        for sub in subscriptions
        if catalog_topic in sub.topics and today <= sub.expires
    ]


def figures(
    plain: Sequence[float | None],
    service: Sequence[ServiceRound | None],
    *,
    events: int,
    subscriptions: Sequence[str],
    records_per_event: int,
) -> dict[str, Any]:
    """The report's ``contract_service``; empty when no round measured both sides.

    Each list holds one entry per round (``None``: that round failed); a ratio pairs the
    two sides of one round, so a round that failed on either side drops out of both.
    """
    pairs = [
        (p, s)
        for p, s in zip(plain, service, strict=False)
        if p is not None and s is not None and p > 0
    ]
    if not pairs:
        return {}
    return {
        "events_per_round": events,
        "subscriptions": list(subscriptions),
        "records_per_event": records_per_event,
        "partitions": PARTITIONS,
        "ledger": "PostgreSQL",
        "plain_subscriber": spread([p for p, _ in pairs]).as_dict(),
        "service_in": spread([s.in_per_s for _, s in pairs]).as_dict(),
        "service_out": spread([s.out_per_s for _, s in pairs]).as_dict(),
        "ratio_in_plain": spread([s.in_per_s / p for p, s in pairs]).as_dict(),
        "seconds": round(statistics.median(s.seconds for _, s in pairs), 2),
    }


async def _publish(kafka: str, topic: str, count: int, steward_secret: bytes) -> None:
    config = PublisherConfig(
        bootstrap_servers=kafka,
        source=workload.DUKCAPIL_SOURCE,
        key_secret=SecretBytes(steward_secret),
        topic_overrides={"PendudukUpdated": topic},
    )
    async with Publisher(config) as publisher:
        for start in range(0, count, _CHUNK):
            batch = workload.penduduk_events(start, min(_CHUNK, count - start))
            failed = [r for r in await publisher.publish_many(batch) if isinstance(r, Exception)]
            if failed:
                raise RuntimeError(f"{len(failed)} events were not published: {failed[0]}")


async def _prepare(
    kafka: str, topic: str, subs: Sequence[Subscription], count: int, steward_secret: bytes
) -> bool:
    await create_topic(kafka, topic, PARTITIONS)
    for sub in subs:
        await create_topic(kafka, projected_topic(topic, sub.subscriber), PARTITIONS)
    await _publish(kafka, topic, count, steward_secret)
    return True


def _first_delivery(engine: sa.Engine) -> datetime:
    with engine.connect() as conn:
        first = conn.execute(sa.select(sa.func.min(ledger_table().c.delivered_at))).scalar()
    if not isinstance(first, datetime):
        raise RuntimeError("the ledger holds no delivery")
    return first if first.tzinfo else first.replace(tzinfo=UTC)


async def _run_service(service: ContractService, expected: int) -> tuple[int, datetime]:
    """Deliver until ``expected`` records are produced; the count and when that was."""
    produced = 0
    deadline = time.monotonic() + ROUND_CAP_S
    async with service:
        while produced < expected:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the contract service produced {produced} of {expected} records "
                    f"in {ROUND_CAP_S:.0f} s"
                )
            produced += await service.run_once()
        return produced, datetime.now(UTC)


def _service_round(
    kafka: str,
    server_url: str,
    subs: Sequence[Subscription],
    count: int,
    secret_of: dict[str, bytes],
    group: str,
) -> ServiceRound:
    url = create_database(server_url, "bench_contracts")
    engine = create_engine(url)
    try:
        create_ledger_table(engine)
        service = ContractService(
            subs,
            pairwise_secret=SecretBytes(secret_of["pairwise"]),
            ledger=LedgerStore(engine, secret_of["ledger"]),
            ledger_secret=SecretBytes(secret_of["ledger"]),
            kafka=KafkaConnection(bootstrap_servers=kafka),
            group_id=group,
        )
        today = datetime.now(UTC).date()
        per_event = sum(
            1 for r in service.routes if r.projected.event_type == EVENT_TYPE and r.active(today)
        )
        produced, finished = asyncio.run(_run_service(service, count * per_event))
        seconds = (finished - _first_delivery(engine)).total_seconds()
        committed = sum(asyncio.run(committed_offsets(kafka, group)).values())
        if committed != count:
            raise RuntimeError(f"the service committed {committed} of {count} raw events")
    finally:
        engine.dispose()
        drop_database(server_url, url)
    return ServiceRound(consumed=count, produced=produced, seconds=seconds)


def measure(kafka: str, server_url: str, *, events: int, rounds: int, step: Step) -> dict[str, Any]:
    """Publish the raw topic, run the interleaved rounds; the figures."""
    tag = uuid.uuid4().hex[:8]
    topic = f"spbe.bench{tag}.penduduk.v1"
    catalog, _ = load_catalog()
    subs = subscriptions_on(catalog.subscriptions, CATALOG_TOPIC, topic, datetime.now(UTC).date())
    if not subs:
        raise RuntimeError(f"the catalogue has no active subscription on {CATALOG_TOPIC}")
    secret_of = {name: secrets.token_bytes(32) for name in ("steward", "pairwise", "ledger")}
    published = step(
        f"contract service: publish {events:,} PendudukUpdated",
        lambda: asyncio.run(_prepare(kafka, topic, subs, events, secret_of["steward"])),
    )
    if not published:
        return {}
    plain: list[float | None] = []
    service: list[ServiceRound | None] = []
    for n in range(rounds):
        plain.append(
            step(
                f"contract service: plain subscriber round {n + 1}",
                lambda: consume.bus_subscriber(kafka, topic, events),
            )
        )
        service.append(
            step(
                f"contract service: service round {n + 1}",
                partial(
                    _service_round,
                    kafka,
                    server_url,
                    subs,
                    events,
                    secret_of,
                    f"spbe-contracts-{tag}-{n + 1}",
                ),
            )
        )
    per_event = sum(1 for s in subs if EVENT_TYPE in s.allowed_fields)
    return figures(
        plain,
        service,
        events=events,
        subscriptions=[s.subscriber for s in subs],
        records_per_event=per_event,
    )
