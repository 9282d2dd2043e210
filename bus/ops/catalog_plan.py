"""``catalog plan`` / ``apply``: what differs between the catalogue and the cluster, and the fix.

The diff itself is pure (:mod:`bus.ops.catalog_diff`): given what the
catalogue wants and what the cluster has, it lists topics to create, partitions to add and
configs to change, and *refuses* what cannot be done safely:

* fewer partitions than the topic has (Kafka cannot remove partitions; keys would move);
* another ``cleanup.policy`` on a topic that holds records (compaction would delete events
  subscribers replay from, or a delete policy would expire a table's history);
* another replication factor (lower loses copies; either way it needs a partition
  reassignment, which this tool does not do);
* more replicas than the cluster has brokers.

:func:`plan_catalog` reads the cluster and :func:`apply_plan` applies a plan with
aiokafka's admin client. ``apply`` does nothing while the plan has refusals, and after
applying it waits until the brokers report the new state, so a second ``apply`` finds
nothing to do.

Kafka's AlterConfigs request (the one aiokafka speaks) *replaces* a topic's dynamic
configs; :class:`ChangeConfigs` therefore carries the topic's complete new set, the
configs this tool does not manage included.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, for_code

from bus.connection import KafkaConnection, as_connection
from bus.logs import get_logger
from bus.ops.catalog import Catalog
from bus.ops.catalog_diff import (
    MANAGED_CONFIGS,
    ClusterState,
    ObservedTopic,
    Plan,
    ProvisioningError,
    compute_plan,
    desired_topics,
)
from bus.startup import LiveNodeAdmin, start_client

log = get_logger(__name__)

__all__ = [
    "DEFAULT_SETTLE_TIMEOUT_S",
    "apply_plan",
    "observe_cluster",
    "plan_catalog",
]

DEFAULT_SETTLE_TIMEOUT_S = 60.0
_DYNAMIC_TOPIC_CONFIG = 1  # DescribeConfigs config_source of a per-topic override


# -- the cluster ---------------------------------------------------------------------------


async def observe_cluster(
    admin: LiveNodeAdmin, kafka: KafkaConnection | str, names: list[str]
) -> ClusterState:
    """Read brokers, partitions, replication, configs and record counts of ``names``."""
    brokers = len((await admin.describe_cluster())["brokers"])
    existing = set(await admin.list_topics()) & set(names)
    if not existing:
        return ClusterState(brokers, {})
    described = await admin.describe_topics(sorted(existing))
    layout: dict[str, tuple[int, int]] = {}
    for topic in described:
        parts = topic["partitions"]
        replication = max((len(p["replicas"]) for p in parts), default=0)
        layout[topic["topic"]] = (len(parts), replication)
    configs = await _describe_configs(admin, sorted(existing))
    records = await _record_counts(as_connection(kafka), {n: layout[n][0] for n in existing})
    topics = {
        name: ObservedTopic(
            name=name,
            partitions=layout[name][0],
            replication_factor=layout[name][1],
            configs={k: v for k, (v, _) in configs[name].items() if k in MANAGED_CONFIGS},
            overrides={
                k: v for k, (v, src) in configs[name].items() if src == _DYNAMIC_TOPIC_CONFIG
            },
            records=records.get(name, 0),
        )
        for name in existing
    }
    return ClusterState(brokers, topics)


async def _describe_configs(
    admin: LiveNodeAdmin, names: list[str]
) -> dict[str, dict[str, tuple[str, int]]]:
    """Topic -> config name -> (value, config_source)."""
    responses = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
    )
    result: dict[str, dict[str, tuple[str, int]]] = {}
    for response in responses:
        for resource in response.to_object()["resources"]:
            if resource["error_code"]:
                error = for_code(resource["error_code"])
                raise ProvisioningError(
                    f"cannot read the configs of {resource['resource_name']}: "
                    f"{error.__name__} {resource['error_message'] or ''}".strip(),
                    retriable=bool(error.retriable),
                )
            result[resource["resource_name"]] = {
                entry["config_names"]: (entry["config_value"], entry["config_source"])
                for entry in resource["config_entries"]
                if entry["config_value"] is not None
            }
    return result


async def _record_counts(
    connection: KafkaConnection, partitions: Mapping[str, int]
) -> dict[str, int]:
    """Topic -> records it holds now (end minus start offsets over its partitions)."""
    tps = [TopicPartition(t, p) for t, n in partitions.items() for p in range(n)]
    if not tps:
        return {}
    consumer = await start_client(
        lambda: AIOKafkaConsumer(**connection.aiokafka_options(), enable_auto_commit=False),
        "count records",
        bootstrap_servers=connection.bootstrap_servers,
        security=connection.security,
    )
    try:
        starts = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    counts: dict[str, int] = {}
    for tp in tps:
        counts[tp.topic] = counts.get(tp.topic, 0) + ends[tp] - starts[tp]
    return counts


async def plan_catalog(
    kafka: KafkaConnection | str, catalog: Catalog, *, notes: Iterable[str] = ()
) -> Plan:
    """The plan that would bring the cluster to the catalogue (changes nothing)."""
    connection = as_connection(kafka)
    desired = desired_topics(catalog)
    async with _admin(connection) as admin:
        cluster = await observe_cluster(admin, connection, [t.name for t in desired])
    plan = compute_plan(desired, cluster)
    plan.notes[:0] = list(notes)
    return plan


async def apply_plan(
    kafka: KafkaConnection | str,
    catalog: Catalog,
    plan: Plan,
    *,
    settle_timeout_s: float = DEFAULT_SETTLE_TIMEOUT_S,
) -> Plan:
    """Apply ``plan``; return the plan computed afterwards (in sync unless someone raced).

    Raises :class:`ProvisioningError` without changing anything when the plan has refusals.
    """
    if plan.refusals:
        raise ProvisioningError(
            f"{len(plan.refusals)} change(s) refused, nothing applied:\n"
            + "\n".join(str(r) for r in plan.refusals),
            fix="correct the catalogue as each refusal says, then plan again",
        )
    connection = as_connection(kafka)
    async with _admin(connection) as admin:
        if plan.creates:
            response = await admin.create_topics(
                [
                    NewTopic(
                        c.topic.name,
                        c.topic.partitions,
                        c.topic.replication_factor,
                        topic_configs=dict(c.topic.configs),
                    )
                    for c in plan.creates
                ]
            )
            _raise_errors(
                "create", response.to_object()["topic_errors"], tolerate=frozenset({36})
            )  # 36: already exists (a race)
        if plan.partitions:
            await admin.create_partitions(
                {p.name: NewPartitions(p.target) for p in plan.partitions}
            )
        if plan.configs:
            responses = await admin.alter_configs(
                [
                    ConfigResource(ConfigResourceType.TOPIC, c.name, configs=dict(c.new_overrides))
                    for c in plan.configs
                ]
            )
            for response in responses:
                _raise_errors("alter configs of", response.to_object()["resources"])
    return await _settle(connection, catalog, settle_timeout_s)


async def _settle(connection: KafkaConnection, catalog: Catalog, timeout_s: float) -> Plan:
    """Plan again until the brokers report the applied state (metadata propagates)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        try:
            after = await plan_catalog(connection, catalog)
        except ProvisioningError as exc:
            # A broker that has not heard of a topic just created answers UnknownTopic.
            if not exc.retriable or loop.time() > deadline:
                raise
            log.debug("catalog.settling", error=exc.message)
        else:
            if after.in_sync or loop.time() > deadline:
                return after
        await asyncio.sleep(0.5)


def _raise_errors(
    what: str, results: list[dict[str, object]], tolerate: frozenset[int] = frozenset()
) -> None:
    failures = []
    for result in results:
        code = result["error_code"]
        assert isinstance(code, int)
        if code and code not in tolerate:
            name = result.get("topic") or result.get("resource_name")
            failures.append(
                f"{name}: {for_code(code).__name__} {result.get('error_message') or ''}"
            )
    if failures:
        raise ProvisioningError(
            f"the broker refused to {what} {len(failures)} topic(s):\n"
            + "\n".join(f"  - {f}" for f in failures),
            fix="read the broker's reason above; check ACLs and broker limits",
        )


@asynccontextmanager
async def _admin(connection: KafkaConnection) -> AsyncIterator[LiveNodeAdmin]:
    """An admin client for the block; Kafka's errors come out as :class:`ProvisioningError`."""
    bootstrap = connection.bootstrap_servers
    try:
        client = await start_client(
            lambda: LiveNodeAdmin(**connection.aiokafka_options()),
            "read the cluster's topics",
            bootstrap_servers=bootstrap,
            security=connection.security,
        )
        try:
            yield client
        finally:
            await client.close()
    except KafkaError as exc:
        raise ProvisioningError(
            f"Kafka at {bootstrap} failed: {type(exc).__name__}: {exc}",
            fix="check --bootstrap (or $SPBE_KAFKA_BOOTSTRAP), that the brokers run, and the "
            "broker's message above",
        ) from exc
