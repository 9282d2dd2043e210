"""The catalogue's diff, pure: what the catalogue wants, what the cluster has, what to do.

Given :func:`desired_topics` (from the catalogue) and a :class:`ClusterState` (read by
:mod:`bus.ops.catalog_plan`), :func:`compute_plan` lists topics to create, partitions to
add and configs to change, and *refuses* what cannot be done safely (see
:mod:`bus.ops.catalog_plan`). No IO: tested without a broker.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from bus.errors import BusError
from bus.ops.api_clients import gateway_dead_letter_topics
from bus.ops.catalog import Catalog, CatalogTopic
from bus.ops.contract_topics import contract_service_dead_letter_topics, subscribed_topics

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
    "compute_plan",
    "desired_topics",
]

#: The topic configs the catalogue owns; any other dynamic config is left as it is.
MANAGED_CONFIGS = ("cleanup.policy", "min.insync.replicas", "retention.ms")


class ProvisioningError(BusError):
    """The cluster could not be read or changed, or the plan has refused changes.

    ``retriable`` is set when the cause may pass (a new topic not yet known to every broker).
    """


@dataclass(frozen=True, slots=True)
class DesiredTopic:
    """A topic as the catalogue wants it; ``kind`` is ``event``, ``projected`` (a
    subscription's copy of a restricted topic) or ``dead letter``."""

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
    """Every event topic; each subscription's projected topic of a restricted topic; the
    dead letter topic of each subscriber per topic it reads; the contract service's; the
    gateway's of each projected topic an API client's subscription reads.

    Expired subscriptions count: a topic holds what was delivered and apply deletes none.
    """
    result = [_like(t, t.name, "event") for t in catalog.topics]
    entries = subscribed_topics(catalog)
    for entry in entries:
        source = catalog.topic(entry.raw_topic)
        if entry.projected:
            result.append(_like(source, entry.topic, "projected"))
        result.append(_dead_letters(catalog, source, entry.dead_letter_topic))
    for raw in sorted({e.raw_topic for e in entries if e.projected}):
        (dead,) = contract_service_dead_letter_topics(e for e in entries if e.raw_topic == raw)
        result.append(_dead_letters(catalog, catalog.topic(raw), dead))
    for raw, dead in gateway_dead_letter_topics(catalog):
        result.append(_dead_letters(catalog, catalog.topic(raw), dead))
    return result


def _like(topic: CatalogTopic, name: str, kind: str) -> DesiredTopic:
    """A topic called ``name`` with ``topic``'s partitions, replication and configs."""
    return DesiredTopic(
        name=name,
        partitions=topic.partitions,
        replication_factor=topic.replication_factor,
        configs={
            "cleanup.policy": topic.cleanup_policy,
            "min.insync.replicas": str(topic.effective_min_insync_replicas),
            "retention.ms": str(topic.retention_ms),
        },
        kind=kind,
    )


def _dead_letters(catalog: Catalog, source: CatalogTopic, name: str) -> DesiredTopic:
    dead = catalog.dead_letters
    return DesiredTopic(
        name=name,
        partitions=dead.partitions,
        replication_factor=source.replication_factor,
        configs={
            "cleanup.policy": "delete",
            "min.insync.replicas": str(source.effective_min_insync_replicas),
            "retention.ms": str(dead.retention_ms),
        },
        kind="dead letter",
    )


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
