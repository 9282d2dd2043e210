"""The REST gateway's Kafka access from the catalogue: exactly what its API clients need,
nothing without them, and its dead letter topics created like every other."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import yaml

from bus.ops.access_plan import (
    CLUSTER_RESOURCE,
    AclEntry,
    ClusterAccess,
    compute_access_plan,
    desired_access,
)
from bus.ops.catalog import Catalog, default_catalog_path, read_catalog
from bus.ops.catalog_diff import desired_topics

TODAY = date(2026, 6, 1)
GATEWAY = "spbe-gateway"
PENDUDUK = "spbe.dukcapil.penduduk.v1"
IZIN = "spbe.dpmptsp.izin.v1"
UMKM = "spbe.dinkopukm.umkm.v1"
PAJAK = "spbe.bapenda.pajak.v1"


def allow(kind: str, name: str, *operations: str) -> set[AclEntry]:
    return {AclEntry.allow(GATEWAY, kind, name, op) for op in operations}


def raw() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(default_catalog_path().read_text(encoding="utf-8"))
    return data


def reads(*projected: str) -> set[AclEntry]:
    acls: set[AclEntry] = set()
    for name in projected:
        acls |= allow("TOPIC", name, "READ", "DESCRIBE")
        acls |= allow("TOPIC", f"{name}.dlq.spbe-gateway", "WRITE", "DESCRIBE")
    return acls


BASE_ACLS = (
    allow("TOPIC", "_spbe.schemas", "READ", "DESCRIBE")
    | allow("TOPIC", "_spbe.audit", "WRITE", "DESCRIBE")
    | allow("CLUSTER", CLUSTER_RESOURCE, "IDEMPOTENT_WRITE")
    | allow("GROUP", "spbe-gateway", "READ")
)


def test_the_shipped_gateway_reads_its_clients_projections_and_writes_the_stewards_topics() -> None:
    """Every shipped client is a steward application, so it writes all four topics."""
    access = desired_access(read_catalog(default_catalog_path()), TODAY).principals[GATEWAY]
    assert access.kind == "service"
    assert access.role == "the REST gateway"
    assert access.acls == (
        BASE_ACLS
        | reads(
            f"{PENDUDUK}.for.dpmptsp-penduduk",
            f"{PENDUDUK}.for.bapenda-penduduk",
            f"{IZIN}.for.bapenda-izin",
            f"{IZIN}.for.dinkopukm-izin",
            f"{UMKM}.for.bapenda-umkm",
            f"{PAJAK}.for.dpmptsp-pajak",
        )
        | allow("TOPIC", PENDUDUK, "WRITE", "DESCRIBE")
        | allow("TOPIC", IZIN, "WRITE", "DESCRIBE")
        | allow("TOPIC", UMKM, "WRITE", "DESCRIBE")
        | allow("TOPIC", PAJAK, "WRITE", "DESCRIBE")
    )


def test_the_gateway_never_reads_a_raw_restricted_topic() -> None:
    access = desired_access(read_catalog(default_catalog_path()), TODAY).principals[GATEWAY]
    read = {a.resource_name for a in access.acls if a.operation == "READ"}
    assert not read & {PENDUDUK, IZIN, UMKM, PAJAK}


def test_a_client_that_is_no_steward_application_gives_the_gateway_no_write() -> None:
    data = raw()
    data["api_clients"] = [
        {"client": "dinsos-dtsen", "opd": "DINSOS", "subscriptions": ["dinsos-penduduk"]}
    ]
    access = desired_access(Catalog.model_validate(data), TODAY).principals[GATEWAY]
    assert access.acls == BASE_ACLS | reads(f"{PENDUDUK}.for.dinsos-penduduk")


def test_a_posting_only_client_gives_the_gateway_its_stewards_topics_and_no_reads() -> None:
    data = raw()
    data["api_clients"] = [{"client": "disdukcapil-siak", "opd": "DISDUKCAPIL"}]
    access = desired_access(Catalog.model_validate(data), TODAY).principals[GATEWAY]
    assert access.acls == BASE_ACLS | allow("TOPIC", PENDUDUK, "WRITE", "DESCRIBE")


def test_without_api_clients_the_gateway_has_nothing_and_is_not_named() -> None:
    data = raw()
    data.pop("api_clients")
    desired = desired_access(Catalog.model_validate(data), TODAY)
    assert GATEWAY not in desired.principals
    assert GATEWAY not in desired.named
    assert not {a for a in desired.acls if a.user == GATEWAY}


def test_an_expired_subscription_drops_out_of_the_gateways_reads_and_is_revoked() -> None:
    before = desired_access(read_catalog(default_catalog_path()), TODAY)
    data = raw()
    for sub in data["subscriptions"]:
        if sub["subscriber"] == "dinkopukm-izin":
            sub["expires"] = (TODAY - timedelta(days=1)).isoformat()
    after = desired_access(Catalog.model_validate(data), TODAY)
    mine = f"{IZIN}.for.dinkopukm-izin"
    assert after.principals[GATEWAY].acls == before.principals[GATEWAY].acls - reads(mine)
    plan = compute_access_plan(after, ClusterAccess(before.acls, frozenset(before.principals)))
    assert {a for a in plan.revocations if a.user == GATEWAY} == reads(mine)


def test_a_new_cluster_creates_the_gateway_user_for_its_hand_over_file() -> None:
    desired = desired_access(read_catalog(default_catalog_path()), TODAY)
    plan = compute_access_plan(desired, ClusterAccess(frozenset(), frozenset({"spbe-operator"})))
    assert GATEWAY in plan.users
    assert "access of spbe-gateway (the REST gateway):" in plan.render()
    assert "+ create SCRAM-SHA-512 user spbe-gateway" in plan.render()


def test_removing_every_api_client_revokes_the_gateway_once_it_was_managed() -> None:
    before = desired_access(read_catalog(default_catalog_path()), TODAY)
    data = raw()
    data.pop("api_clients")
    after = desired_access(Catalog.model_validate(data), TODAY)
    cluster = ClusterAccess(before.acls, frozenset(before.principals), before.named)
    plan = compute_access_plan(after, cluster)
    assert {a for a in plan.revocations if a.user == GATEWAY} == before.principals[GATEWAY].acls
    assert any(n.startswith("spbe-gateway: no longer in the catalogue") for n in plan.notes)


def test_catalog_apply_creates_the_gateways_dead_letter_topics_like_its_raw_topics_letters() -> (
    None
):
    catalog = read_catalog(default_catalog_path())
    desired = {t.name: t for t in desired_topics(catalog)}
    dead = desired[f"{PAJAK}.for.dpmptsp-pajak.dlq.spbe-gateway"]
    subscriber_dead = desired[f"{PAJAK}.for.dpmptsp-pajak.dlq.dpmptsp-pajak"]
    assert dead.kind == "dead letter"
    assert (dead.partitions, dead.replication_factor, dead.configs) == (
        subscriber_dead.partitions,
        subscriber_dead.replication_factor,
        subscriber_dead.configs,
    )
    gateway_dead = sorted(n for n in desired if n.endswith(".dlq.spbe-gateway"))
    assert len(gateway_dead) == 6
    assert f"{PENDUDUK}.for.dinsos-penduduk.dlq.spbe-gateway" not in desired  # no client's


def test_an_expired_subscriptions_gateway_dead_letter_topic_is_kept() -> None:
    data = raw()
    for sub in data["subscriptions"]:
        sub["expires"] = "2020-01-01"
    names = {t.name for t in desired_topics(Catalog.model_validate(data))}
    assert f"{UMKM}.for.bapenda-umkm.dlq.spbe-gateway" in names
