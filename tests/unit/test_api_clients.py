"""The catalogue's API clients: what each may read and post through the gateway, what the
gateway reads, and every client entry the catalogue refuses (with its key path)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from bus.errors import ConfigError
from bus.ops.api_clients import (
    client_access,
    gateway_dead_letter_topics,
    gateway_read_topics,
)
from bus.ops.catalog import Catalog, default_catalog_path, read_catalog
from bus.ops.principals import GATEWAY_GROUP, GATEWAY_PRINCIPAL

TODAY = date(2026, 6, 1)
PENDUDUK = "spbe.dukcapil.penduduk.v1"
IZIN = "spbe.dpmptsp.izin.v1"
UMKM = "spbe.dinkopukm.umkm.v1"
PAJAK = "spbe.bapenda.pajak.v1"


def raw() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(default_catalog_path().read_text(encoding="utf-8"))
    return data


def shipped() -> Catalog:
    return read_catalog(default_catalog_path())


def with_clients(*clients: dict[str, Any]) -> dict[str, Any]:
    data = raw()
    data["api_clients"] = list(clients)
    return data


def refused(data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        Catalog.model_validate(data)
    return str(info.value)


def test_the_gateway_principal_and_group_are_spbe_gateway() -> None:
    assert GATEWAY_PRINCIPAL == GATEWAY_GROUP == "spbe-gateway"


def test_the_shipped_catalogue_names_four_clients() -> None:
    clients = {c.client: (c.opd, c.subscriptions) for c in shipped().api_clients}
    assert clients == {
        "dpmptsp-sicantik": ("DPMPTSP", ("dpmptsp-penduduk", "dpmptsp-pajak")),
        "dinkopukm-siumkm": ("DINKOPUKM", ("dinkopukm-izin",)),
        "bapenda-sipd": ("BAPENDA", ("bapenda-penduduk", "bapenda-izin", "bapenda-umkm")),
        "disdukcapil-siak": ("DISDUKCAPIL", ()),
    }


def test_a_steward_application_client_posts_its_stewards_events_with_its_source() -> None:
    access = client_access(shipped(), "dinkopukm-siumkm")
    assert access is not None
    assert access.steward == "DINKOPUKM"
    assert access.source == "ID/PEMDA-3273/DINKOPUKM/siumkm"
    assert access.postable == frozenset({"id.go.spbe.dinkopukm.UmkmTerdaftar.v1"})
    assert [s.subscriber for s in access.subscriptions] == ["dinkopukm-izin"]


def test_a_posting_only_client_has_no_subscriptions() -> None:
    access = client_access(shipped(), "disdukcapil-siak")
    assert access is not None
    assert access.subscriptions == ()
    assert access.postable == frozenset(
        {"id.go.spbe.dukcapil.PendudukUpdated.v1", "id.go.spbe.dukcapil.KematianDicatat.v1"}
    )
    assert access.source == "ID/PEMDA-3273/DISDUKCAPIL/siak"


def test_a_client_that_is_no_steward_application_may_read_but_not_post() -> None:
    data = with_clients(
        {"client": "dinsos-dtsen", "opd": "DINSOS", "subscriptions": ["dinsos-penduduk"]}
    )
    access = client_access(Catalog.model_validate(data), "dinsos-dtsen")
    assert access is not None
    assert (access.steward, access.source, access.postable) == (None, None, frozenset())
    assert [s.subscriber for s in access.subscriptions] == ["dinsos-penduduk"]


def test_an_unknown_client_has_no_access() -> None:
    assert client_access(shipped(), "dinsos-dtsen") is None
    assert client_access(shipped(), "dpmptsp-penduduk") is None  # a subscriber, not a client


def test_a_client_gets_every_entry_of_a_subscriber_expired_ones_too() -> None:
    data = raw()
    data["subscriptions"].append(
        {
            "subscriber": "dpmptsp-pajak",
            "opd": "DPMPTSP",
            "topics": [UMKM],
            "purpose": "Pendataan UMKM pemohon izin reklame.",
            "legal_basis": "PKS 518/PKS.20/DINKOPUKM/2025",
            "allowed_fields": {"id.go.spbe.dinkopukm.UmkmTerdaftar.v1": ["id_umkm"]},
            "expires": (TODAY - timedelta(days=1)).isoformat(),
        }
    )
    access = client_access(Catalog.model_validate(data), "dpmptsp-sicantik")
    assert access is not None
    assert [(s.subscriber, s.topics) for s in access.subscriptions] == [
        ("dpmptsp-penduduk", (PENDUDUK,)),
        ("dpmptsp-pajak", (PAJAK,)),
        ("dpmptsp-pajak", (UMKM,)),
    ]


def test_the_gateway_reads_the_projection_of_each_subscription_a_client_names() -> None:
    assert gateway_read_topics(shipped(), TODAY) == [
        f"{PENDUDUK}.for.dpmptsp-penduduk",
        f"{PENDUDUK}.for.bapenda-penduduk",
        f"{IZIN}.for.bapenda-izin",
        f"{IZIN}.for.dinkopukm-izin",
        f"{UMKM}.for.bapenda-umkm",
        f"{PAJAK}.for.dpmptsp-pajak",
    ]


def test_an_expired_subscription_drops_out_of_the_gateways_reads_on_the_day_after() -> None:
    data = raw()
    for sub in data["subscriptions"]:
        if sub["subscriber"] == "dpmptsp-pajak":
            sub["expires"] = TODAY.isoformat()
    catalog = Catalog.model_validate(data)
    assert f"{PAJAK}.for.dpmptsp-pajak" in gateway_read_topics(catalog, TODAY)
    assert f"{PAJAK}.for.dpmptsp-pajak" not in gateway_read_topics(
        catalog, TODAY + timedelta(days=1)
    )
    # Its dead letter topic stays: apply deletes no topic.
    assert (PAJAK, f"{PAJAK}.for.dpmptsp-pajak.dlq.spbe-gateway") in gateway_dead_letter_topics(
        catalog
    )


def test_two_clients_naming_one_subscription_give_the_gateway_one_topic() -> None:
    data = with_clients(
        {"client": "dinsos-dtsen", "opd": "DINSOS", "subscriptions": ["dinsos-penduduk"]},
        {"client": "dinsos-siks", "opd": "DINSOS", "subscriptions": ["dinsos-penduduk"]},
    )
    catalog = Catalog.model_validate(data)
    assert gateway_read_topics(catalog, TODAY) == [f"{PENDUDUK}.for.dinsos-penduduk"]
    assert gateway_dead_letter_topics(catalog) == [
        (PENDUDUK, f"{PENDUDUK}.for.dinsos-penduduk.dlq.spbe-gateway")
    ]


def test_without_api_clients_the_gateway_reads_nothing() -> None:
    data = raw()
    data.pop("api_clients")
    catalog = Catalog.model_validate(data)
    assert catalog.api_clients == ()
    assert gateway_read_topics(catalog, TODAY) == []
    assert gateway_dead_letter_topics(catalog) == []


# -- refusals ------------------------------------------------------------------------------


def test_a_client_listed_twice_is_refused_at_its_second_entry() -> None:
    data = raw()
    data["api_clients"].append({"client": "dinkopukm-siumkm", "opd": "DINKOPUKM"})
    assert "api_clients[4].client: dinkopukm-siumkm is listed more than once" in refused(data)


@pytest.mark.parametrize("name", ["Dinsos-DTSEN", "-dtsen", "dinsos dtsen", "dinsos/dtsen", ""])
def test_a_client_id_must_be_a_principal_name(name: str) -> None:
    message = refused(with_clients({"client": name, "opd": "DINSOS"}))
    assert "api_clients.0.client" in message
    assert "String should match pattern" in message or "at least" in message


def test_a_client_id_is_at_most_100_characters() -> None:
    assert "api_clients.0.client" in refused(with_clients({"client": "a" * 101, "opd": "DINSOS"}))


@pytest.mark.parametrize(
    ("name", "whose"),
    [
        ("spbe-operator", "the operator's"),
        ("spbe-contracts", "the contract service's"),
        ("spbe-gateway", "the gateway's"),
    ],
)
def test_a_reserved_principal_is_no_client(name: str, whose: str) -> None:
    data = with_clients({"client": name, "opd": "DINSOS", "subscriptions": ["dinsos-penduduk"]})
    assert f"api_clients[0].client: {name} is {whose} principal" in refused(data)


def test_a_subscriber_id_is_no_client() -> None:
    data = with_clients(
        {"client": "dinsos-penduduk", "opd": "DINSOS", "subscriptions": ["dinsos-penduduk"]}
    )
    assert (
        "api_clients[0].client: dinsos-penduduk is also a subscriber id; an API client and a "
        "subscriber need identities of their own" in refused(data)
    )


def test_a_subscription_the_catalogue_does_not_have_is_refused() -> None:
    data = raw()
    data["api_clients"][1]["subscriptions"] = ["dinkopukm-izin", "dinkopukm-pajak"]
    assert (
        "api_clients[1].subscriptions[1]: dinkopukm-pajak is not a subscriber of this "
        "catalogue's subscriptions" in refused(data)
    )


def test_a_subscription_of_another_opd_is_refused() -> None:
    data = raw()
    data["api_clients"][0]["subscriptions"] = ["dpmptsp-penduduk", "dinsos-penduduk"]
    assert (
        "api_clients[0].subscriptions[1]: dinsos-penduduk is a subscription of DINSOS; a client "
        "of DPMPTSP reads only its own OPD's subscriptions" in refused(data)
    )


def test_a_subscription_listed_twice_by_a_client_is_refused() -> None:
    data = raw()
    data["api_clients"][1]["subscriptions"] = ["dinkopukm-izin", "dinkopukm-izin"]
    assert "api_clients[1].subscriptions[1]: dinkopukm-izin is listed more than once" in refused(
        data
    )


def test_a_steward_application_client_must_have_its_steward_as_opd() -> None:
    data = raw()
    data["api_clients"][3]["opd"] = "DINSOS"
    assert (
        "api_clients[3].opd: disdukcapil-siak is the application siak of DISDUKCAPIL, so its "
        "opd must be DISDUKCAPIL, not DINSOS" in refused(data)
    )


def test_a_client_that_may_neither_read_nor_post_is_refused() -> None:
    data = with_clients({"client": "dinsos-dtsen", "opd": "DINSOS"})
    assert (
        "api_clients[0]: dinsos-dtsen names no subscription and is no steward application"
        in refused(data)
    )


def test_a_subscription_of_a_topic_below_restricted_is_refused_the_gateway_serves_projections() -> (
    None
):
    data = raw()
    for topic in data["topics"]:
        if topic["name"] == PAJAK:
            topic["classification"] = "confidential"
    assert (
        f"api_clients[0].subscriptions[1]: dpmptsp-pajak reads {PAJAK}, which is not restricted"
        in refused(data)
    )


def test_an_unknown_key_of_a_client_is_refused() -> None:
    data = raw()
    data["api_clients"][0]["secret"] = "x"
    assert "api_clients.0.secret" in refused(data)


def test_a_steward_application_called_after_the_gateway_is_refused() -> None:
    data = raw()
    data["stewards"].append(
        {"id": "SPBE", "name": "Tim SPBE", "pemda": "3273", "applications": ["gateway"]}
    )
    assert (
        "stewards[4].applications: gateway would be the principal spbe-gateway, the gateway's"
        in refused(data)
    )


def test_a_subscriber_called_after_the_gateway_is_refused() -> None:
    data = raw()
    data["subscriptions"][1]["subscriber"] = "spbe-gateway"  # dinsos-penduduk: no client's
    assert "subscriptions[1].subscriber: spbe-gateway is the gateway's principal" in refused(data)


def test_read_catalog_lists_client_problems_with_their_key_paths(tmp_path: Path) -> None:
    data = raw()
    data["api_clients"][0]["subscriptions"] = ["dinsos-penduduk"]
    data["api_clients"][1]["client"] = "spbe-gateway"
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        read_catalog(path)
    text = str(info.value)
    assert (
        "  - api_clients[0].subscriptions[0]: dinsos-penduduk is a subscription of DINSOS" in text
    )
    assert "  - api_clients[1].client: spbe-gateway is the gateway's principal" in text
