"""``catalog plan`` / ``apply``: what differs between the catalogue and the cluster, and the fix.

The diff itself is pure (:func:`desired_topics`, :func:`compute_plan`): given what the
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
from dataclasses import dataclass, field

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, for_code

from bus.delivery import dlq_topic
from bus.errors import BusError
from bus.ops.catalog import Catalog
from bus.startup import LiveNodeAdmin, start_client

log = structlog.get_logger(__name__)

__all__ = [
    "MANAGED_CONFIGS",
    "AddPartitions",
    "ChangeConfigs",
    "ClusterState",
    "CreateTopic",
    "DesiredTopic",
    "ObservedTopic",
    "Plan",
    "ProvisioningError",
    "Refusal",
    "apply_plan",
    "compute_plan",
    "desired_topics",
    "observe_cluster",
    "plan_catalog",
]

#: The topic configs the catalogue owns; any other dynamic config is left as it is.
MANAGED_CONFIGS = ("cleanup.policy", "min.insync.replicas", "retention.ms")
_DYNAMIC_TOPIC_CONFIG = 1  # DescribeConfigs config_source of a per-topic override
DEFAULT_SETTLE_TIMEOUT_S = 60.0


class ProvisioningError(BusError):
    """The cluster could not be read or changed, or the plan has refused changes.

    ``retriable`` is set when the cause may pass (a new topic not yet known to every broker).
    """

    def __init__(self, message: str, *, fix: str | None = None, retriable: bool = False) -> None:
        super().__init__(message, fix=fix)
        self.retriable = retriable  # type: ignore[misc]


@dataclass(frozen=True, slots=True)
class DesiredTopic:
    """A topic as the catalogue wants it; ``kind`` is ``event`` or ``dead letter``."""

    name: str
    partitions: int
    replication_factor: int
    configs: Mapping[str, str]
    kind: str = "event"


@dataclass(frozen=True, slots=True)
class ObservedTopic:
    """A topic as the cluster has it.

    ``configs`` holds the effective value of each managed config; ``overrides`` every
    per-topic (dynamic) config, managed or not; ``records`` how many records it holds now.
    """

    name: str
    partitions: int
    replication_factor: int
    configs: Mapping[str, str]
    overrides: Mapping[str, str]
    records: int


@dataclass(frozen=True, slots=True)
class ClusterState:
    """The brokers and the managed topics that exist."""

    brokers: int
    topics: Mapping[str, ObservedTopic]


@dataclass(frozen=True, slots=True)
class CreateTopic:
    topic: DesiredTopic

    def __str__(self) -> str:
        t = self.topic
        settings = ", ".join(f"{k}={v}" for k, v in sorted(t.configs.items()))
        return (
            f"+ create {t.kind} topic {t.name}: {t.partitions} partitions, "
            f"replication {t.replication_factor}, {settings}"
        )


@dataclass(frozen=True, slots=True)
class AddPartitions:
    name: str
    current: int
    target: int

    def __str__(self) -> str:
        return (
            f"~ add partitions to {self.name}: {self.current} -> {self.target} "
            "(keys re-hash: let subscribers catch up first so per-key order holds)"
        )


@dataclass(frozen=True, slots=True)
class ChangeConfigs:
    """Managed configs to change, and the topic's complete new set of overrides."""

    name: str
    changes: Mapping[str, tuple[str | None, str]]
    new_overrides: Mapping[str, str]

    def __str__(self) -> str:
        parts = ", ".join(f"{k}: {old} -> {new}" for k, (old, new) in sorted(self.changes.items()))
        return f"~ change configs of {self.name}: {parts}"


@dataclass(frozen=True, slots=True)
class Refusal:
    """A change the catalogue asks for that would destroy data or cannot be done here."""

    name: str
    reason: str
    fix: str

    def __str__(self) -> str:
        return f"! refused for {self.name}: {self.reason}\n    fix: {self.fix}"


@dataclass(frozen=True, slots=True)
class Plan:
    """Every difference between the catalogue and the cluster."""

    creates: list[CreateTopic] = field(default_factory=list)
    partitions: list[AddPartitions] = field(default_factory=list)
    configs: list[ChangeConfigs] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def changes(self) -> list[CreateTopic | AddPartitions | ChangeConfigs]:
        return [*self.creates, *self.partitions, *self.configs]

    @property
    def in_sync(self) -> bool:
        """True when the cluster matches the catalogue: nothing to do, nothing refused."""
        return not self.changes and not self.refusals

    def render(self) -> str:
        """The plan as lines a person reads: notes, refusals, then changes."""
        lines = [f"note: {n}" for n in self.notes]
        lines += [str(r) for r in self.refusals]
        lines += [str(c) for c in self.changes]
        if self.in_sync:
            lines.append("nothing to do: the cluster matches the catalogue")
        else:
            lines.append(
                f"{len(self.creates)} to create, {len(self.partitions)} to grow, "
                f"{len(self.configs)} to reconfigure, {len(self.refusals)} refused"
            )
        return "\n".join(lines)


# -- the pure diff -------------------------------------------------------------------------


def desired_topics(catalog: Catalog) -> list[DesiredTopic]:
    """Every event topic, then each subscription's dead letter topic per topic."""
    result = [
        DesiredTopic(
            name=t.name,
            partitions=t.partitions,
            replication_factor=t.replication_factor,
            configs={
                "cleanup.policy": t.cleanup_policy,
                "min.insync.replicas": str(t.effective_min_insync_replicas),
                "retention.ms": str(t.retention_ms),
            },
        )
        for t in catalog.topics
    ]
    dead = catalog.dead_letters
    for subscriber, topics in catalog.subscribers().items():
        for name in topics:
            source = catalog.topic(name)
            result.append(
                DesiredTopic(
                    name=dlq_topic(name, subscriber),
                    partitions=dead.partitions,
                    replication_factor=source.replication_factor,
                    configs={
                        "cleanup.policy": "delete",
                        "min.insync.replicas": str(source.effective_min_insync_replicas),
                        "retention.ms": str(dead.retention_ms),
                    },
                    kind="dead letter",
                )
            )
    return result


def _policy(value: str | None) -> frozenset[str]:
    return frozenset(p.strip() for p in (value or "").split(",") if p.strip())


def _same(key: str, current: str | None, wanted: str) -> bool:
    if key == "cleanup.policy":
        return _policy(current) == _policy(wanted)
    return current == wanted


def compute_plan(desired: Iterable[DesiredTopic], cluster: ClusterState) -> Plan:
    """Compare the desired topics with the cluster (pure: no IO)."""
    plan = Plan()
    for want in desired:
        have = cluster.topics.get(want.name)
        if have is None:
            if want.replication_factor > cluster.brokers:
                plan.refusals.append(
                    Refusal(
                        want.name,
                        f"replication_factor {want.replication_factor} needs that many brokers; "
                        f"the cluster has {cluster.brokers}",
                        "run against the production cluster, or lower replication_factor in a "
                        "development copy of the catalogue",
                    )
                )
            else:
                plan.creates.append(CreateTopic(want))
            continue
        _diff_existing(plan, want, have)
    return plan


def _diff_existing(plan: Plan, want: DesiredTopic, have: ObservedTopic) -> None:
    if want.partitions < have.partitions:
        plan.refusals.append(
            Refusal(
                want.name,
                f"the catalogue asks for {want.partitions} partitions, the topic has "
                f"{have.partitions}; Kafka cannot remove partitions and keys would move",
                f"set partitions: {have.partitions} (or more) in the catalogue",
            )
        )
    elif want.partitions > have.partitions:
        plan.partitions.append(AddPartitions(want.name, have.partitions, want.partitions))
    if want.replication_factor != have.replication_factor:
        lower = want.replication_factor < have.replication_factor
        plan.refusals.append(
            Refusal(
                want.name,
                f"replication_factor {want.replication_factor} differs from the topic's "
                f"{have.replication_factor}; "
                + (
                    "fewer replicas would give up copies of the data"
                    if lower
                    else "more replicas need a partition reassignment"
                ),
                f"set replication_factor: {have.replication_factor} in the catalogue"
                + ("" if lower else ", then reassign with kafka-reassign-partitions.sh"),
            )
        )
    changes: dict[str, tuple[str | None, str]] = {}
    for key, wanted in sorted(want.configs.items()):
        current = have.configs.get(key)
        if _same(key, current, wanted):
            continue
        if key == "cleanup.policy" and have.records > 0:
            plan.refusals.append(
                Refusal(
                    want.name,
                    f"cleanup.policy {wanted} differs from {current} on a topic that holds "
                    f"{have.records} records; the change would delete or compact away events "
                    "subscribers replay from",
                    f"keep cleanup_policy: {current}, or publish to a new topic version "
                    "(….v<major+1>) with the new policy and migrate subscribers",
                )
            )
            continue
        changes[key] = (current, wanted)
    if "retention.ms" in changes and _shortens(*changes["retention.ms"]):
        old, new = changes["retention.ms"]
        plan.notes.append(
            f"{want.name}: retention.ms {old} -> {new} deletes records older than "
            f"{_duration(int(new))}"
        )
    if changes:
        overrides = dict(have.overrides)
        overrides.update({k: new for k, (_, new) in changes.items()})
        plan.configs.append(ChangeConfigs(want.name, changes, overrides))


def _duration(ms: int) -> str:
    days, rest = divmod(ms, 86_400_000)
    if days and not rest:
        return f"{days} day{'s' if days != 1 else ''}"
    return f"{ms / 3_600_000:g} hours"


def _shortens(old: str | None, new: str) -> bool:
    try:
        before, after = int(old or "-1"), int(new)
    except ValueError:
        return False
    return after != -1 and (before == -1 or after < before)


# -- the cluster ---------------------------------------------------------------------------


async def observe_cluster(admin: LiveNodeAdmin, bootstrap: str, names: list[str]) -> ClusterState:
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
    records = await _record_counts(bootstrap, {n: layout[n][0] for n in existing})
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


async def _record_counts(bootstrap: str, partitions: Mapping[str, int]) -> dict[str, int]:
    """Topic -> records it holds now (end minus start offsets over its partitions)."""
    tps = [TopicPartition(t, p) for t, n in partitions.items() for p in range(n)]
    if not tps:
        return {}
    consumer = await start_client(
        lambda: AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False),
        "count records",
        bootstrap_servers=bootstrap,
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


async def plan_catalog(bootstrap: str, catalog: Catalog, *, notes: Iterable[str] = ()) -> Plan:
    """The plan that would bring the cluster to the catalogue (changes nothing)."""
    desired = desired_topics(catalog)
    async with _admin(bootstrap) as admin:
        cluster = await observe_cluster(admin, bootstrap, [t.name for t in desired])
    plan = compute_plan(desired, cluster)
    plan.notes[:0] = list(notes)
    return plan


async def apply_plan(
    bootstrap: str,
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
    async with _admin(bootstrap) as admin:
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
    return await _settle(bootstrap, catalog, settle_timeout_s)


async def _settle(bootstrap: str, catalog: Catalog, timeout_s: float) -> Plan:
    """Plan again until the brokers report the applied state (metadata propagates)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        try:
            after = await plan_catalog(bootstrap, catalog)
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
async def _admin(bootstrap: str) -> AsyncIterator[LiveNodeAdmin]:
    """An admin client for the block; Kafka's errors come out as :class:`ProvisioningError`."""
    try:
        client = await start_client(
            lambda: LiveNodeAdmin(bootstrap_servers=bootstrap),
            "read the cluster's topics",
            bootstrap_servers=bootstrap,
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
