"""The contract service's routes: one raw event to each subscriber's projected record."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import SecretBytes

from adapters.contracts import ContractService
from adapters.contracts.routes import (
    HeaderPlan,
    aggregate_key,
    build_routes,
    filter_changed,
    projected_subject,
)
from adapters.ledger import LedgerStore
from bus.connection import KafkaConnection
from bus.contract import codec
from bus.contract.codec import InMemorySchemas
from bus.contract.contract_headers import HEADER_SUBSCRIPTION, from_contract_headers
from bus.contract.envelope import to_headers
from bus.contract.events import PendudukUpdated
from bus.contract.message import IncomingEvent, build_record, read_record
from bus.contract.plan import dataschema_uri
from bus.contract.pseudonyms import PairwiseKeys, pseudonymise
from bus.contract.standard import example, load_standard
from bus.errors import ConfigError
from bus.ledger import LedgerEntry, LedgerKind
from bus.ops.catalog import Subscription

STANDARD = load_standard()
BY_TYPE = {s.event_type: s for s in STANDARD.values() if s.event_type}
PENDUDUK = "id.go.spbe.dukcapil.PendudukUpdated.v1"
TOPIC = "spbe.dukcapil.penduduk.v1"
STEWARD_SECRET = b"steward-secret-0123456789abcdef"
PAIRWISE = PairwiseKeys(b"pairwise-secret-0123456789abcdef")
LEDGER_SECRET = b"ledger-secret-0123456789abcdef"


def subscription(subscriber: str, fields: list[str], **changes: Any) -> Subscription:
    return Subscription.model_validate(
        {
            "subscriber": subscriber,
            "opd": "DINSOS",
            "topics": [TOPIC],
            "purpose": "Pemutakhiran data penerima bantuan sosial.",
            "legal_basis": "PKS 470/0877/DISDUKCAPIL/2025",
            "allowed_fields": {PENDUDUK: fields},
            "expires": "2027-12-31",
            **changes,
        }
    )


def incoming() -> IncomingEvent:
    event = PendudukUpdated.from_json(example("PendudukUpdated"))
    record = build_record(
        event,
        STANDARD["PendudukUpdated"],
        source="ID/PEMDA-3273/DISDUKCAPIL/siak",
        key_secret=STEWARD_SECRET,
    )
    return read_record(record.value, record.headers, InMemorySchemas(STANDARD.values()), STANDARD)


def test_changed_fields_keep_only_what_the_contract_names_exactly() -> None:
    allowed = frozenset({"nik", "alamat.kode_wilayah", "status_perkawinan"})
    changed = ["alamat", "status_perkawinan", "agama", "alamat.kode_wilayah"]
    assert filter_changed(changed, allowed) == ["status_perkawinan", "alamat.kode_wilayah"]


def test_a_projection_registers_under_a_subject_of_its_own() -> None:
    routes = build_routes([subscription("dinsos-penduduk", ["nik"])], BY_TYPE, PAIRWISE)
    (route,) = routes[(TOPIC, PENDUDUK)]
    assert projected_subject(route.projected) == f"{PENDUDUK}.for.dinsos-penduduk"


def test_the_record_holds_only_allowed_fields_under_the_pairwise_key() -> None:
    fields = ["nik", "nama_lengkap", "alamat.kode_wilayah", "changed_fields"]
    routes = build_routes([subscription("dinsos-penduduk", fields)], BY_TYPE, PAIRWISE)
    (route,) = routes[(TOPIC, PENDUDUK)]
    raw = incoming()
    nik = aggregate_key(raw)
    record = route.record(raw, nik)

    assert record.topic == f"{TOPIC}.for.dinsos-penduduk"
    datum = codec.decode(record.value, InMemorySchemas([route.projected.schema])).datum
    assert set(datum) == {"nik", "nama_lengkap", "alamat", "changed_fields"}
    assert set(datum["alamat"]) == {"kode_wilayah"}
    assert datum["changed_fields"] == []  # the example changed alamat and status_perkawinan

    key = record.key.decode()
    assert key == PAIRWISE("dinsos-penduduk", nik)
    assert key not in {nik, pseudonymise(STEWARD_SECRET, nik)}
    headers = dict(record.headers)
    assert headers["ce_partitionkey"] == headers["ce_subject"] == record.key
    assert headers["ce_id"].decode() == raw.envelope.id
    assert headers["ce_dataschema"].decode() == dataschema_uri(route.projected.schema)
    assert from_contract_headers(record.headers).subscription == "dinsos-penduduk"
    assert record.envelope.partitionkey == key
    assert len([name for name, _ in record.headers if name == "ce_subject"]) == 1
    # Built unchecked from checked parts, the envelope is the one a checked build gives.
    assert record.envelope == replace(
        raw.envelope,
        subject=key,
        partitionkey=key,
        dataschema=dataschema_uri(route.projected.schema),
    )


def test_two_subscribers_get_different_keys_for_one_resident() -> None:
    subs = [subscription("dinsos-penduduk", ["nik"]), subscription("dpmptsp-penduduk", ["nik"])]
    routes = build_routes(subs, BY_TYPE, PAIRWISE)[(TOPIC, PENDUDUK)]
    raw = incoming()
    keys = {route.record(raw, aggregate_key(raw)).key for route in routes}
    assert len(keys) == 2


def test_a_subscription_is_active_through_its_expiry_day() -> None:
    (route,) = build_routes(
        [subscription("dinsos-penduduk", ["nik"], expires="2026-12-01")], BY_TYPE, PAIRWISE
    )[(TOPIC, PENDUDUK)]
    assert route.active(date(2026, 12, 1))
    assert not route.active(date(2026, 12, 2))


def test_an_event_type_outside_the_standard_is_refused_naming_the_subscription() -> None:
    sub = subscription("dinsos-penduduk", ["nik"])
    sub = sub.model_copy(update={"allowed_fields": {"id.go.spbe.dukcapil.Unknown.v1": ("nik",)}})
    with pytest.raises(ConfigError, match=r"dinsos-penduduk.*Unknown\.v1.*not in the data"):
        build_routes([sub], BY_TYPE, PAIRWISE)


def test_an_unknown_field_is_refused_naming_the_path() -> None:
    with pytest.raises(ConfigError, match="agama_x"):
        build_routes([subscription("dinsos-penduduk", ["nik", "agama_x"])], BY_TYPE, PAIRWISE)


def service(subscriptions: list[Subscription], **changes: Any) -> ContractService:
    options: dict[str, Any] = {
        "pairwise_secret": SecretBytes(b"pairwise-secret-0123456789abcdef"),
        "ledger": LedgerStore(sa.create_engine("sqlite://"), LEDGER_SECRET),
        "ledger_secret": SecretBytes(LEDGER_SECRET),
        "kafka": KafkaConnection(bootstrap_servers="127.0.0.1:9092"),
        "today": lambda: date(2026, 12, 1),
        **changes,
    }
    return ContractService(subscriptions, **options)


def test_the_service_reads_only_the_topics_of_active_subscriptions() -> None:
    other = "spbe.dukcapil.kematian.v1"
    found = service(
        [
            subscription("dinsos-penduduk", ["nik"]),
            subscription("bapenda-penduduk", ["nik"], topics=[other], expires="2026-11-30"),
        ]
    )
    assert found.topics == [TOPIC]
    assert "secret" not in repr(found).replace("secrets=**********", "")


def test_the_service_refuses_no_subscriptions_a_repeated_subscriber_and_one_secret() -> None:
    with pytest.raises(ConfigError, match="no subscriptions"):
        service([])
    sub = subscription("dinsos-penduduk", ["nik"])
    with pytest.raises(ConfigError, match="dinsos-penduduk has two subscriptions"):
        service([sub, sub])
    with pytest.raises(ConfigError, match="pairwise_secret and ledger_secret are the same"):
        service([sub], pairwise_secret=SecretBytes(LEDGER_SECRET))


def test_the_ledger_entry_names_the_contract_and_marks_snapshot_events() -> None:
    (route,) = build_routes([subscription("dinsos-penduduk", ["nik"])], BY_TYPE, PAIRWISE)[
        (TOPIC, PENDUDUK)
    ]
    raw = incoming()
    when = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    entry = route.ledger_entry(raw, "a" * 64, when)
    assert (entry.subscriber, entry.opd, entry.event_id) == (
        "dinsos-penduduk",
        "DINSOS",
        raw.envelope.id,
    )
    assert entry.legal_basis == "PKS 470/0877/DISDUKCAPIL/2025"
    assert entry.kind is LedgerKind.DELIVERY
    # Built unchecked from checked parts, the entry is the one a checked build gives.
    assert entry == LedgerEntry(
        subject="a" * 64,
        event_id=raw.envelope.id,
        event_type=PENDUDUK,
        subscriber="dinsos-penduduk",
        opd="DINSOS",
        purpose="Pemutakhiran data penerima bantuan sosial.",
        legal_basis="PKS 470/0877/DISDUKCAPIL/2025",
        kind=LedgerKind.DELIVERY,
        delivered_at=when,
    )
    snapshot = IncomingEvent(replace(raw.envelope, snapshot=True), raw.event, raw.writer)
    assert route.ledger_entry(snapshot, "a" * 64, when).kind is LedgerKind.SNAPSHOT
    assert route.record(snapshot, aggregate_key(raw)).envelope.snapshot


def test_a_purpose_the_ledger_cannot_hold_is_refused_at_start_naming_the_subscription() -> None:
    sub = subscription("dinsos-penduduk", ["nik"], purpose="Pemutakhiran data. " * 60)
    with pytest.raises(ConfigError, match=r"dinsos-penduduk.*purpose is 1140 characters") as err:
        build_routes([sub], BY_TYPE, PAIRWISE)
    assert err.value.fix == "shorten purpose"


def test_the_headers_keep_the_raw_order_with_the_routes_values_in_their_places() -> None:
    (route,) = build_routes([subscription("dinsos-penduduk", ["nik"])], BY_TYPE, PAIRWISE)[
        (TOPIC, PENDUDUK)
    ]
    raw = incoming()
    record = route.record(raw, aggregate_key(raw), headers=HeaderPlan.of(to_headers(raw.envelope)))
    contract = [name for name, _ in route.contract_headers]
    assert [name for name, _ in record.headers] == [
        *(name for name, _ in to_headers(raw.envelope)),
        *contract,
    ]
    key = record.key
    assert dict(record.headers)["ce_subject"] == dict(record.headers)["ce_partitionkey"] == key

    # A raw record without ce_subject gets none; contract headers it carried are replaced.
    bare = replace(raw.envelope, subject=None)
    sent = [*to_headers(bare), (HEADER_SUBSCRIPTION, b"someone-else")]
    record = route.record(
        IncomingEvent(bare, raw.event, raw.writer), aggregate_key(raw), headers=HeaderPlan.of(sent)
    )
    names = [name for name, _ in record.headers]
    assert "ce_subject" not in names
    assert names.count(HEADER_SUBSCRIPTION) == 1
    assert from_contract_headers(record.headers).subscription == "dinsos-penduduk"
