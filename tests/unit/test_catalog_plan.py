"""The catalogue-to-cluster diff (pure): what is created, grown, reconfigured or refused."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from bus.ops.catalog import read_catalog
from bus.ops.catalog_diff import (
    ClusterState,
    DesiredTopic,
    ObservedTopic,
    compute_plan,
    desired_topics,
)
from tests.unit.test_catalog import BASE

CONFIGS = {"cleanup.policy": "delete", "min.insync.replicas": "2", "retention.ms": "-1"}


def want(**overrides: object) -> DesiredTopic:
    fields: dict[str, object] = {
        "name": "spbe.dukcapil.penduduk.v1",
        "partitions": 6,
        "replication_factor": 3,
        "configs": CONFIGS,
    }
    fields.update(overrides)
    return DesiredTopic(**fields)  # type: ignore[arg-type]


def have(**overrides: object) -> ObservedTopic:
    fields: dict[str, object] = {
        "name": "spbe.dukcapil.penduduk.v1",
        "partitions": 6,
        "replication_factor": 3,
        "configs": CONFIGS,
        "overrides": {"min.insync.replicas": "2"},
        "records": 0,
    }
    fields.update(overrides)
    return ObservedTopic(**fields)  # type: ignore[arg-type]


def cluster(*topics: ObservedTopic, brokers: int = 3) -> ClusterState:
    return ClusterState(brokers, {t.name: t for t in topics})


def desired_of(tmp_path: Path, data: dict[str, object]) -> list[DesiredTopic]:
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(data))
    return desired_topics(read_catalog(path))


def test_a_restricted_topic_gets_a_projected_topic_per_subscriber_and_their_dead_letters(
    tmp_path: Path,
) -> None:
    desired = desired_of(tmp_path, BASE)
    raw = "spbe.dukcapil.penduduk.v1"
    projected = f"{raw}.for.dinsos-penduduk"
    assert [(t.name, t.kind) for t in desired] == [
        (raw, "event"),
        (projected, "projected"),
        (f"{projected}.dlq.dinsos-penduduk", "dead letter"),
        (f"{raw}.dlq.spbe-contracts", "dead letter"),
    ]
    event, copy, dead, service_dead = desired
    assert (copy.partitions, copy.replication_factor, copy.configs) == (
        event.partitions,
        event.replication_factor,
        event.configs,
    ), "a projection is laid out as its raw topic (per-key order, retention, cleanup)"
    for topic in (dead, service_dead):
        assert topic.partitions == 1
        assert topic.replication_factor == 3
        assert topic.configs["cleanup.policy"] == "delete", "never compact dead letters"
        assert topic.configs["retention.ms"] == "-1"
    assert "+ create projected topic spbe.dukcapil.penduduk.v1.for.dinsos-penduduk: 6 " in str(
        compute_plan(desired, cluster()).creates[1]
    )


def test_a_topic_below_restricted_is_read_directly_with_its_own_dead_letter_topic(
    tmp_path: Path,
) -> None:
    data = copy.deepcopy(BASE)
    data["topics"][0]["classification"] = "confidential"
    data["topics"][0]["event_types"] = ["id.go.spbe.dukcapil.KematianDicatat.v1"]
    data["subscriptions"][0]["allowed_fields"] = {"id.go.spbe.dukcapil.KematianDicatat.v1": ["nik"]}
    desired = desired_of(tmp_path, data)
    assert [(t.name, t.kind) for t in desired] == [
        ("spbe.dukcapil.penduduk.v1", "event"),
        ("spbe.dukcapil.penduduk.v1.dlq.dinsos-penduduk", "dead letter"),
    ]


def test_an_expired_subscription_keeps_its_projected_topic(tmp_path: Path) -> None:
    """What was delivered stays; apply deletes no topic (it only revokes the ACLs)."""
    data = copy.deepcopy(BASE)
    data["subscriptions"][0]["expires"] = "2020-01-01"
    names = [t.name for t in desired_of(tmp_path, data)]
    assert "spbe.dukcapil.penduduk.v1.for.dinsos-penduduk" in names


def test_a_missing_topic_is_created() -> None:
    plan = compute_plan([want()], cluster())
    assert [c.topic.name for c in plan.creates] == ["spbe.dukcapil.penduduk.v1"]
    assert not plan.in_sync


def test_a_matching_topic_needs_nothing() -> None:
    plan = compute_plan([want()], cluster(have()))
    assert plan.in_sync
    assert "nothing to do" in plan.render()


def test_equal_cleanup_policies_written_in_another_order_match() -> None:
    configs = {**CONFIGS, "cleanup.policy": "compact,delete"}
    observed = {**CONFIGS, "cleanup.policy": "delete,compact"}
    plan = compute_plan([want(configs=configs)], cluster(have(configs=observed)))
    assert plan.in_sync


def test_more_partitions_are_added() -> None:
    plan = compute_plan([want(partitions=12)], cluster(have()))
    assert [(p.current, p.target) for p in plan.partitions] == [(6, 12)]


def test_fewer_partitions_are_refused_with_the_count_to_keep() -> None:
    plan = compute_plan([want(partitions=3)], cluster(have()))
    assert not plan.partitions
    (refusal,) = plan.refusals
    assert "cannot remove partitions" in refusal.reason
    assert "partitions: 6" in refusal.fix


def test_a_config_change_keeps_the_topics_other_overrides() -> None:
    observed = have(overrides={"min.insync.replicas": "2", "segment.ms": "3600000"})
    plan = compute_plan([want(configs={**CONFIGS, "retention.ms": "604800000"})], cluster(observed))
    (change,) = plan.configs
    assert change.changes == {"retention.ms": ("-1", "604800000")}
    assert change.new_overrides == {
        "min.insync.replicas": "2",
        "segment.ms": "3600000",
        "retention.ms": "604800000",
    }
    assert any("deletes records older than 7 days" in n for n in plan.notes)


def test_another_cleanup_policy_on_a_topic_with_records_is_refused() -> None:
    compact = {**CONFIGS, "cleanup.policy": "compact"}
    plan = compute_plan([want(configs=compact)], cluster(have(records=42)))
    assert not plan.configs
    (refusal,) = plan.refusals
    assert "holds 42 records" in refusal.reason


def test_another_cleanup_policy_on_an_empty_topic_is_changed() -> None:
    compact = {**CONFIGS, "cleanup.policy": "compact"}
    plan = compute_plan([want(configs=compact)], cluster(have(records=0)))
    assert plan.configs[0].changes == {"cleanup.policy": ("delete", "compact")}
    assert not plan.refusals


def test_lower_replication_is_refused() -> None:
    plan = compute_plan([want(replication_factor=1)], cluster(have()))
    (refusal,) = plan.refusals
    assert "give up copies" in refusal.reason


def test_more_replicas_than_brokers_is_refused_for_a_new_topic() -> None:
    plan = compute_plan([want()], cluster(brokers=1))
    assert not plan.creates
    assert "the cluster has 1" in plan.refusals[0].reason
