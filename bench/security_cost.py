"""Security cost: the bus's publish and consume on a secured cluster next to the plaintext one.

A second local cluster (``spbe-bus kafka up --secure``: SASL_SSL with SCRAM-SHA-512, TLS
with a local CA, the StandardAuthorizer with ``allow.everyone.if.no.acl.found=false``) of
the plaintext broker's Kafka version and heap runs only while this step does, so the two
brokers compete with no other figure. The clients are not the operator: Kafka's
StandardAuthorizer answers a super user before it looks at any ACL, so the operator's
figures would leave ACL evaluation out. The operator creates what ``catalog apply`` would:
a steward application (WRITE and DESCRIBE on the topic, IDEMPOTENT_WRITE on the cluster,
READ on ``_spbe.schemas``) and one subscriber per round (READ on the topic, its own group
and dead letter topic), each a SCRAM-SHA-512 user with a random password that is never
written anywhere; the data standard registered, the dead letter topics made.

Each round publishes ``events`` with ``Publisher.publish_many`` and reads ``count`` of them
back with a ``Subscriber`` in a new group (the paths and clocks of the publish and consume
figures), first on the plaintext broker, then on the secured one: machine noise hits both
alike, and each round gives one secured / plaintext ratio.
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from bench import consume, publish, workload
from bench.environment import create_topic
from bench.stats import spread
from bus.connection import KafkaConnection
from bus.delivery import dlq_topic
from bus.localkafka.manager import LocalKafka
from bus.ops.access import handover_security, new_password, register_reviewed_standard
from bus.ops.access_plan import CLUSTER_RESOURCE, SCHEMAS_TOPIC, AclEntry
from bus.ops.acl_admin import AclAdmin
from tests.support.ports import free_port_block

__all__ = ["STEWARD", "Principals", "figures", "grants", "measure", "secured_cluster"]

Step = Callable[[str, Callable[[], Any]], Any]

#: The publishing principal, named as ``catalog apply`` names a steward application.
STEWARD = "dpmptsp-bench"
#: Partitions of the measured topics, as the publish figure's.
PARTITIONS = 4
#: How the report describes the secured side.
SHAPE = (
    "SASL_SSL, SCRAM-SHA-512, TLS 1.2+ with a local CA, StandardAuthorizer with "
    "allow.everyone.if.no.acl.found=false; clients are catalogue-style principals, not super users"
)


def subscriber_ids(tag: str, rounds: int) -> list[str]:
    """One subscriber (its principal and group) per round, so each reads from the start."""
    return [f"bench-subscriber-{tag}-{n + 1}" for n in range(rounds)]


def grants(topic: str, steward: str, subscribers: Sequence[str]) -> frozenset[AclEntry]:
    """The ACLs ``catalog apply`` would give these principals for ``topic``, no more."""
    acls = {AclEntry.allow(steward, "CLUSTER", CLUSTER_RESOURCE, "IDEMPOTENT_WRITE")}
    acls.update(AclEntry.allow(steward, "TOPIC", topic, op) for op in ("WRITE", "DESCRIBE"))
    for user in (steward, *subscribers):
        acls.update(AclEntry.allow(user, "TOPIC", SCHEMAS_TOPIC, op) for op in ("READ", "DESCRIBE"))
    for user in subscribers:
        acls.add(AclEntry.allow(user, "GROUP", user, "READ"))
        acls.update(AclEntry.allow(user, "TOPIC", topic, op) for op in ("READ", "DESCRIBE"))
        dead = dlq_topic(topic, user)
        acls.update(AclEntry.allow(user, "TOPIC", dead, op) for op in ("WRITE", "DESCRIBE"))
    return frozenset(acls)


@dataclass(frozen=True, slots=True)
class Principals:
    """The secured side's clients: the steward's connection and each round's subscriber's."""

    topic: str
    steward: KafkaConnection
    subscribers: dict[str, KafkaConnection]


@contextmanager
def secured_cluster(
    workdir: Path, *, kafka_version: str, heap_mb: int
) -> Iterator[KafkaConnection]:
    """A single-node secured cluster in ``workdir``; the operator's connection; stopped after."""
    kafka = LocalKafka(workdir / "kafka-secured", ready_timeout_s=240)
    layout = kafka.up(
        port=free_port_block(3), kafka_version=kafka_version, heap_mb=heap_mb, secure=True
    )
    try:
        yield kafka.connection(layout)
    finally:
        kafka.down()


async def provision(
    operator: KafkaConnection, topic: str, subscribers: Sequence[str]
) -> Principals:
    """As the operator: the topics, the standard, the users and their ACLs."""
    await create_topic(operator, topic, PARTITIONS)
    for user in subscribers:
        await create_topic(operator, dlq_topic(topic, user), 1)
    await register_reviewed_standard(operator)
    admin = AclAdmin(operator)  # awaited to the end of each call: its futures resolve first
    connections: dict[str, KafkaConnection] = {}
    for user in (STEWARD, *subscribers):
        password = new_password()
        await admin.set_password(user, password)
        connections[user] = operator.model_copy(
            update={"security": handover_security(operator.security, user, password)}
        )
    await admin.create_acls(grants(topic, STEWARD, subscribers))
    steward = connections.pop(STEWARD)
    return Principals(topic=topic, steward=steward, subscribers=connections)


def figures(
    plaintext: dict[str, list[float | None]],
    secured: dict[str, list[float | None]],
    sizes: dict[str, int],
) -> dict[str, Any]:
    """The report's ``security_cost``: events/s on each side and secured / plaintext.

    Each list holds one entry per round (``None``: that round failed). A ratio pairs the
    two sides of one round, so only rounds measured on both sides give one; a path
    without such a round is left out.
    """
    result: dict[str, Any] = {"shape": SHAPE}
    for path, events in (("publish", sizes["publish"]), ("consume", sizes["consume"])):
        rounds = list(zip(plaintext.get(path, []), secured.get(path, []), strict=False))
        pairs = [(p, s) for p, s in rounds if p is not None and s is not None and p > 0]
        if not pairs:
            continue
        result[path] = {
            "events_per_round": events,
            "plaintext": spread([p for p, _ in pairs]).as_dict(),
            "secured": spread([s for _, s in pairs]).as_dict(),
            "ratio_secured_plaintext": spread([s / p for p, s in pairs]).as_dict(),
        }
    return result


def measure(
    plaintext: str,
    *,
    kafka_version: str,
    heap_mb: int,
    rounds: int,
    publish_events: int,
    consume_events: int,
    chunk: int,
    step: Step,
) -> dict[str, Any]:
    """Start the secured cluster, run the interleaved rounds, stop it; the figures."""
    tag = uuid.uuid4().hex[:8]
    topic = f"bench.secured.{tag}"
    subscribers = subscriber_ids(tag, rounds)
    events = workload.events(1, publish_events)
    count = min(consume_events, publish_events)
    samples: dict[str, dict[str, list[float | None]]] = {
        side: {"publish": [], "consume": []} for side in ("plaintext", "secured")
    }
    with (
        tempfile.TemporaryDirectory(prefix="spbe-bench-secured-") as workdir,
        secured_cluster(Path(workdir), kafka_version=kafka_version, heap_mb=heap_mb) as operator,
    ):
        principals: Principals | None = step(
            "security cost: users and ACLs on the secured cluster",
            lambda: asyncio.run(provision(operator, topic, subscribers)),
        )
        if principals is None:
            return {}
        asyncio.run(create_topic(plaintext, topic, PARTITIONS))
        for n, user in enumerate(subscribers):
            publishers: dict[str, KafkaConnection | str] = {
                "plaintext": plaintext,
                "secured": principals.steward,
            }
            readers: dict[str, KafkaConnection | str] = {
                "plaintext": plaintext,
                "secured": principals.subscribers[user],
            }
            for side, kafka in publishers.items():
                samples[side]["publish"].append(
                    step(
                        f"security cost: {side} publish round {n + 1}",
                        partial(publish.bus_publisher, kafka, topic, events, chunk),
                    )
                )
            for side, kafka in readers.items():
                if not any(samples[side]["publish"]):
                    samples[side]["consume"].append(None)  # nothing to read: it would wait
                    continue
                samples[side]["consume"].append(
                    step(
                        f"security cost: {side} consume round {n + 1}",
                        partial(consume.bus_subscriber, kafka, topic, count, user),
                    )
                )
    return figures(
        samples["plaintext"], samples["secured"], {"publish": publish_events, "consume": count}
    )
