"""The catalogue as access control: exactly the bindings it grants, and a diff that removes
only what it manages."""

from __future__ import annotations

import copy
from datetime import date, timedelta
from typing import Any

import pytest
import yaml

from bus.errors import ConfigError
from bus.ops.access_plan import (
    CLUSTER_RESOURCE,
    EXPIRY_WARNING_DAYS,
    AclEntry,
    ClusterAccess,
    compute_access_plan,
    desired_access,
)
from bus.ops.catalog import Catalog, default_catalog_path, read_catalog
from bus.ops.contract_topics import read_topics

TODAY = date(2026, 6, 1)
PENDUDUK = "spbe.dukcapil.penduduk.v1"
IZIN = "spbe.dpmptsp.izin.v1"
UMKM = "spbe.dinkopukm.umkm.v1"
PAJAK = "spbe.bapenda.pajak.v1"


def allow(user: str, kind: str, name: str, *operations: str) -> set[AclEntry]:
    return {AclEntry.allow(user, kind, name, op) for op in operations}


def shipped() -> Catalog:
    return read_catalog(default_catalog_path())


def raw() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(default_catalog_path().read_text())
    return data


def with_expiry(subscriber: str, expires: date) -> Catalog:
    data = raw()
    for sub in data["subscriptions"]:
        if sub["subscriber"] == subscriber:
            sub["expires"] = expires
    return Catalog.model_validate(data)


def test_dpmptsp_application_writes_its_own_topic_only() -> None:
    """sicantik may write spbe.dpmptsp.izin.v1 (idempotently) and read the schemas, no more."""
    access = desired_access(shipped(), TODAY).principals["dpmptsp-sicantik"]
    assert access.kind == "application"
    assert access.role == "application sicantik of DPMPTSP"
    assert access.acls == (
        allow("dpmptsp-sicantik", "TOPIC", IZIN, "WRITE", "DESCRIBE")
        | allow("dpmptsp-sicantik", "CLUSTER", CLUSTER_RESOURCE, "IDEMPOTENT_WRITE")
        | allow("dpmptsp-sicantik", "TOPIC", "_spbe.schemas", "READ", "DESCRIBE")
    )


def test_dpmptsp_penduduk_reads_its_projection_of_the_restricted_topic_never_the_topic() -> None:
    access = desired_access(shipped(), TODAY).principals["dpmptsp-penduduk"]
    assert access.kind == "subscriber"
    mine = f"{PENDUDUK}.for.dpmptsp-penduduk"
    assert access.acls == (
        allow("dpmptsp-penduduk", "TOPIC", mine, "READ", "DESCRIBE")
        | allow("dpmptsp-penduduk", "GROUP", "dpmptsp-penduduk", "READ")
        | allow("dpmptsp-penduduk", "TOPIC", f"{mine}.dlq.dpmptsp-penduduk", "WRITE", "DESCRIBE")
        | allow("dpmptsp-penduduk", "TOPIC", "_spbe.schemas", "READ", "DESCRIBE")
    )


def test_dinkes_may_read_its_projection_only_and_write_nothing_of_disdukcapil() -> None:
    desired = desired_access(shipped(), TODAY)
    access = desired.principals["dinkes-penduduk"]
    mine = f"{PENDUDUK}.for.dinkes-penduduk"
    assert access.acls == (
        allow("dinkes-penduduk", "TOPIC", mine, "READ", "DESCRIBE")
        | allow("dinkes-penduduk", "GROUP", "dinkes-penduduk", "READ")
        | allow("dinkes-penduduk", "TOPIC", f"{mine}.dlq.dinkes-penduduk", "WRITE", "DESCRIBE")
        | allow("dinkes-penduduk", "TOPIC", "_spbe.schemas", "READ", "DESCRIBE")
    )
    writers = {
        a.user for a in desired.acls if a.resource_name == PENDUDUK and a.operation == "WRITE"
    }
    assert writers == {"disdukcapil-siak", "spbe-gateway"}  # siak also posts via the gateway


def test_a_restricted_topic_is_read_by_its_contract_service_alone() -> None:
    """Of the subscribers, none reads a raw topic; each projection has one reader, and the
    gateway too where an API client names the subscription."""
    desired = desired_access(shipped(), TODAY)
    raw_topics = {PENDUDUK, IZIN, UMKM, PAJAK}
    readers = {
        a.user for a in desired.acls if a.resource_name in raw_topics and a.operation == "READ"
    }
    assert readers == {"spbe-contracts"}
    via_gateway = {name for c in shipped().api_clients for name in c.subscriptions}
    for sub in shipped().subscriptions:
        (topic,) = sub.topics
        projected = f"{topic}.for.{sub.subscriber}"
        gateway = {"spbe-gateway"} if sub.subscriber in via_gateway else set()
        assert {
            a.user for a in desired.acls if a.resource_name == projected and a.operation == "READ"
        } == {sub.subscriber} | gateway
        assert {
            a.user for a in desired.acls if a.resource_name == projected and a.operation == "WRITE"
        } == {"spbe-contracts"}


def test_the_contract_service_reads_raw_writes_projections_and_registers_their_schemas() -> None:
    data = raw()
    data["subscriptions"] = [
        s for s in data["subscriptions"] if s["subscriber"] in {"dinsos-penduduk", "bapenda-izin"}
    ]
    data.pop("api_clients")
    access = desired_access(Catalog.model_validate(data), TODAY).principals["spbe-contracts"]
    assert access.kind == "service"
    user = "spbe-contracts"
    assert access.acls == (
        allow(user, "TOPIC", PENDUDUK, "READ", "DESCRIBE")
        | allow(user, "TOPIC", IZIN, "READ", "DESCRIBE")
        | allow(user, "TOPIC", f"{PENDUDUK}.for.dinsos-penduduk", "WRITE", "DESCRIBE")
        | allow(user, "TOPIC", f"{IZIN}.for.bapenda-izin", "WRITE", "DESCRIBE")
        | allow(user, "TOPIC", f"{PENDUDUK}.dlq.spbe-contracts", "WRITE", "DESCRIBE")
        | allow(user, "TOPIC", f"{IZIN}.dlq.spbe-contracts", "WRITE", "DESCRIBE")
        | allow(user, "CLUSTER", CLUSTER_RESOURCE, "IDEMPOTENT_WRITE")
        | allow(user, "GROUP", "spbe-contracts", "READ")
        | allow(user, "TOPIC", "_spbe.schemas", "READ", "DESCRIBE", "WRITE")
    )


def test_a_topic_below_restricted_is_read_directly_without_the_contract_service() -> None:
    data = raw()
    for topic in data["topics"]:
        topic["classification"] = "confidential" if topic["name"] == PAJAK else "restricted"
    data["subscriptions"] = [s for s in data["subscriptions"] if s["topics"] == [PAJAK]]
    data.pop("api_clients")
    desired = desired_access(Catalog.model_validate(data), TODAY)
    assert desired.principals["bpkad-pajak"].acls == (
        allow("bpkad-pajak", "TOPIC", PAJAK, "READ", "DESCRIBE")
        | allow("bpkad-pajak", "GROUP", "bpkad-pajak", "READ")
        | allow("bpkad-pajak", "TOPIC", f"{PAJAK}.dlq.bpkad-pajak", "WRITE", "DESCRIBE")
        | allow("bpkad-pajak", "TOPIC", "_spbe.schemas", "READ", "DESCRIBE")
    )
    assert "spbe-contracts" not in desired.named


def test_the_contract_service_drops_an_expired_projection_and_keeps_the_rest() -> None:
    before = desired_access(shipped(), TODAY)
    cluster = ClusterAccess(acls=before.acls, users=frozenset(before.principals))
    expired = with_expiry("dinkes-penduduk", TODAY - timedelta(days=1))
    plan = compute_access_plan(desired_access(expired, TODAY), cluster)
    mine = f"{PENDUDUK}.for.dinkes-penduduk"
    assert set(plan.revocations) == before.principals["dinkes-penduduk"].acls | allow(
        "spbe-contracts", "TOPIC", mine, "WRITE", "DESCRIBE"
    )
    assert not plan.grants


def test_when_every_restricted_subscription_expires_the_service_keeps_its_user_only() -> None:
    data = raw()
    for sub in data["subscriptions"]:
        sub["expires"] = TODAY - timedelta(days=1)
    desired = desired_access(Catalog.model_validate(data), TODAY)
    assert "spbe-contracts" in desired.named
    assert "spbe-contracts" not in desired.principals
    assert any(n.startswith("spbe-contracts: every subscription") for n in desired.notes)


def test_every_principal_of_the_shipped_catalogue() -> None:
    desired = desired_access(shipped(), TODAY)
    apps = {"disdukcapil-siak", "dpmptsp-sicantik", "dinkopukm-siumkm", "bapenda-sipd"}
    subscribers = {s.subscriber for s in shipped().subscriptions}
    services = {"spbe-contracts", "spbe-gateway"}
    assert set(desired.principals) == apps | subscribers | services
    assert desired.named == apps | subscribers | services
    assert all(a.pattern_type == "LITERAL" and a.host == "*" for a in desired.acls)
    assert all(a.permission == "ALLOW" for a in desired.acls)
    assert "spbe-operator" not in desired.named


def test_a_subscription_grants_through_its_expiry_day_and_nothing_after() -> None:
    on_the_day = desired_access(with_expiry("dinkes-penduduk", TODAY), TODAY)
    assert "dinkes-penduduk" in on_the_day.principals
    day_after = desired_access(with_expiry("dinkes-penduduk", TODAY - timedelta(days=1)), TODAY)
    assert "dinkes-penduduk" not in day_after.principals
    assert "dinkes-penduduk" in day_after.named  # still managed: its ACLs get revoked
    assert not {a for a in day_after.acls if a.user == "dinkes-penduduk"}
    assert any("dinkes-penduduk" in n and "expired on" in n for n in day_after.notes)


@pytest.mark.parametrize(
    ("days_left", "warned"),
    [(EXPIRY_WARNING_DAYS + 1, False), (EXPIRY_WARNING_DAYS, True), (1, True), (0, True)],
)
def test_plan_warns_thirty_days_ahead_of_expiry(days_left: int, warned: bool) -> None:
    desired = desired_access(
        with_expiry("dinkes-penduduk", TODAY + timedelta(days=days_left)), TODAY
    )
    mine = [w for w in desired.warnings if "dinkes-penduduk" in w]
    assert bool(mine) is warned
    if warned:
        assert "expires on" in mine[0]
        assert "PKS 470/0933" in mine[0]


def test_an_expired_subscription_revokes_only_its_own_grants() -> None:
    """dpmptsp-penduduk expires: its bindings go, every other principal's stay."""
    before = desired_access(shipped(), TODAY)
    cluster = ClusterAccess(acls=before.acls, users=frozenset(before.principals))
    after = desired_access(with_expiry("dpmptsp-penduduk", TODAY - timedelta(days=1)), TODAY)
    plan = compute_access_plan(after, cluster)
    assert not plan.grants
    assert not plan.users
    mine = f"{PENDUDUK}.for.dpmptsp-penduduk"
    assert set(plan.revocations) == (
        before.principals["dpmptsp-penduduk"].acls
        | allow("spbe-contracts", "TOPIC", mine, "WRITE", "DESCRIBE")
        | allow("spbe-gateway", "TOPIC", mine, "READ", "DESCRIBE")
        | allow("spbe-gateway", "TOPIC", f"{mine}.dlq.spbe-gateway", "WRITE", "DESCRIBE")
    ), "dpmptsp-sicantik names it: the gateway stops reading it too"
    assert "dpmptsp-penduduk" in plan.render()


def test_removing_a_subscription_removes_only_its_grants() -> None:
    """A subscriber with two subscriptions loses one: that topic only, group and schemas stay."""
    data = raw()
    data["subscriptions"].append(
        {
            "subscriber": "dinkes-penduduk",
            "opd": "DINKES",
            "topics": [IZIN],
            "purpose": "Pendataan fasilitas kesehatan swasta berizin.",
            "legal_basis": "PKS 027/PKS.40/DPMPTSP/2025",
            "allowed_fields": {"id.go.spbe.dpmptsp.IzinDiterbitkan.v1": ["nomor_izin"]},
            "expires": "2027-12-31",
        }
    )
    both = desired_access(Catalog.model_validate(data), TODAY)
    cluster = ClusterAccess(acls=both.acls, users=frozenset(both.principals))
    plan = compute_access_plan(desired_access(shipped(), TODAY), cluster)
    mine = f"{IZIN}.for.dinkes-penduduk"
    assert set(plan.revocations) == (
        allow("dinkes-penduduk", "TOPIC", mine, "READ", "DESCRIBE")
        | allow("dinkes-penduduk", "TOPIC", f"{mine}.dlq.dinkes-penduduk", "WRITE", "DESCRIBE")
        | allow("spbe-contracts", "TOPIC", mine, "WRITE", "DESCRIBE")
    )


def test_a_subscriber_removed_from_the_catalogue_loses_its_projection_acls() -> None:
    """Named by an earlier apply's audit records, it is managed: every binding goes."""
    before = desired_access(shipped(), TODAY)
    cluster = ClusterAccess(
        acls=before.acls, users=frozenset(before.principals), managed_before=before.named
    )
    data = raw()
    data["subscriptions"] = [
        s for s in data["subscriptions"] if s["subscriber"] != "dinsos-penduduk"
    ]
    plan = compute_access_plan(desired_access(Catalog.model_validate(data), TODAY), cluster)
    assert set(plan.revocations) == before.principals["dinsos-penduduk"].acls | allow(
        "spbe-contracts", "TOPIC", f"{PENDUDUK}.for.dinsos-penduduk", "WRITE", "DESCRIBE"
    )
    assert any(n.startswith("dinsos-penduduk: no longer in the catalogue") for n in plan.notes)


def test_acls_of_unmanaged_principals_are_never_revoked() -> None:
    desired = desired_access(shipped(), TODAY)
    foreign = {
        AclEntry.allow("spbe-operator", "TOPIC", PENDUDUK, "ALL"),
        AclEntry.allow("monitoring", "TOPIC", PENDUDUK, "DESCRIBE"),
        AclEntry("User:legacy-etl", "TOPIC", "spbe.", "READ", pattern_type="PREFIXED"),
        AclEntry("Group:admins", "CLUSTER", CLUSTER_RESOURCE, "ALTER"),
    }
    cluster = ClusterAccess(acls=desired.acls | foreign, users=frozenset(desired.principals))
    plan = compute_access_plan(desired, cluster)
    assert plan.in_sync
    assert "nothing to do" in plan.render()


def test_a_managed_principals_extra_allow_is_revoked_but_its_deny_is_kept() -> None:
    desired = desired_access(shipped(), TODAY)
    extra = AclEntry("User:dinkes-penduduk", "TOPIC", "spbe.", "READ", pattern_type="PREFIXED")
    deny = AclEntry("User:dinkes-penduduk", "TOPIC", PENDUDUK, "READ", permission="DENY")
    cluster = ClusterAccess(acls=desired.acls | {extra, deny}, users=frozenset(desired.principals))
    plan = compute_access_plan(desired, cluster)
    assert plan.revocations == (extra,)


def test_a_principal_apply_managed_before_loses_its_acls_when_it_leaves_the_catalogue() -> None:
    gone = AclEntry.allow("satpolpp-lama", "TOPIC", IZIN, "READ")
    desired = desired_access(shipped(), TODAY)
    users = frozenset(desired.principals) | {"satpolpp-lama"}
    unmanaged = compute_access_plan(desired, ClusterAccess(desired.acls | {gone}, users))
    assert unmanaged.in_sync  # never recorded as managed: left alone
    managed = compute_access_plan(
        desired, ClusterAccess(desired.acls | {gone}, users, frozenset({"satpolpp-lama"}))
    )
    assert managed.revocations == (gone,)
    assert any("satpolpp-lama" in n and "SCRAM user is kept" in n for n in managed.notes)
    assert "not in the catalogue" in managed.render()


def test_a_new_cluster_needs_every_user_and_binding_and_then_nothing() -> None:
    desired = desired_access(shipped(), TODAY)
    first = compute_access_plan(desired, ClusterAccess(frozenset(), frozenset({"spbe-operator"})))
    assert set(first.users) == set(desired.principals)
    assert set(first.grants) == desired.acls
    assert not first.revocations
    text = first.render()
    assert "access of disdukcapil-siak (application siak of DISDUKCAPIL):" in text
    assert "  + grant ALLOW WRITE on topic spbe.dukcapil.penduduk.v1" in text
    assert "+ create SCRAM-SHA-512 user disdukcapil-siak" in text
    assert first.to_json()["users_to_create"] == list(first.users)
    again = compute_access_plan(
        desired, ClusterAccess(frozenset(first.grants), frozenset(first.users) | {"spbe-operator"})
    )
    assert again.in_sync


# -- the catalogue's applications ----------------------------------------------------------


def refused(data: dict[str, Any]) -> str:
    with pytest.raises((ConfigError, ValueError)) as info:
        Catalog.model_validate(data)
    return str(info.value)


def test_shipped_stewards_name_their_applications() -> None:
    principals = {p for s in shipped().stewards for p in s.principals}
    assert principals == {
        "disdukcapil-siak",
        "dpmptsp-sicantik",
        "dinkopukm-siumkm",
        "bapenda-sipd",
    }


@pytest.mark.parametrize("name", ["SIAK", "1siak", "si ak", "siak/v2", ""])
def test_an_application_name_is_lowercase(name: str) -> None:
    data = copy.deepcopy(raw())
    data["stewards"][0]["applications"] = [name]
    message = refused(data)
    assert "stewards.0.applications.0" in message


def test_an_application_listed_twice_is_refused() -> None:
    data = raw()
    data["stewards"][0]["applications"] = ["siak", "siak"]
    assert "stewards[0].applications: siak is listed more than once" in refused(data)


def test_an_application_principal_may_not_be_a_subscriber_id() -> None:
    data = raw()
    data["stewards"][1]["applications"] = ["penduduk"]  # dpmptsp-penduduk is a subscriber
    message = refused(data)
    assert "stewards[1].applications: penduduk would be the principal dpmptsp-penduduk" in message


def test_the_operator_is_no_subscriber() -> None:
    data = raw()
    data["subscriptions"][0]["subscriber"] = "spbe-operator"
    assert "subscriptions[0].subscriber: spbe-operator is the operator's principal" in refused(data)


def test_the_contract_service_is_no_subscriber_and_no_application() -> None:
    data = raw()
    data["subscriptions"][0]["subscriber"] = "spbe-contracts"
    assert (
        "subscriptions[0].subscriber: spbe-contracts is the contract service's principal"
        in refused(data)
    )
    data = raw()
    data["stewards"].append(
        {"id": "SPBE", "name": "Tim SPBE", "pemda": "3273", "applications": ["contracts"]}
    )
    assert (
        "stewards[4].applications: contracts would be the principal spbe-contracts, "
        "the contract service's" in refused(data)
    )


def test_read_catalog_names_the_application_key(tmp_path: Any) -> None:
    data = raw()
    data["stewards"][0]["applications"] = ["Siak"]
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, default_flow_style=False))
    with pytest.raises(ConfigError) as info:
        read_catalog(path)
    assert "stewards[0].applications[0]" in str(info.value)


def test_each_subscriber_reads_its_projection_of_the_shipped_restricted_topics() -> None:
    reads = read_topics(shipped())
    assert reads["dpmptsp-penduduk"] == (f"{PENDUDUK}.for.dpmptsp-penduduk",)
    assert reads["bpkad-pajak"] == (f"{PAJAK}.for.bpkad-pajak",)
    assert set(reads) == {s.subscriber for s in shipped().subscriptions}
