"""``catalog apply`` provisions subscription contracts on the secured broker: the contract
service alone reads the raw restricted topic, each subscriber reads only its projected topic,
and a subscriber's own credentials find no field outside its contract. The REST gateway reads
the projections its API clients' subscriptions name and writes for the steward's application,
never reading the raw topic."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiokafka.errors import TopicAuthorizationFailedError
from pydantic import SecretBytes

from adapters.contracts import ContractService
from adapters.db import create_engine
from adapters.ledger import LedgerStore, create_ledger_table
from bus.connection import KafkaConnection, KafkaSecurity
from bus.contract import codec
from bus.contract.codec import InMemorySchemas
from bus.contract.projection import projected_topic
from bus.errors import BusError
from bus.ops.access import rotate_password
from bus.ops.audit import AuditLog
from bus.ops.catalog import Catalog, Subscription, default_catalog_path
from bus.ops.principals import CONTRACT_SERVICE_PRINCIPAL, GATEWAY_GROUP, GATEWAY_PRINCIPAL
from bus.publisher import Publisher, PublisherConfig
from bus.registry import SchemaRegistry
from tests.integration.test_access import eventually, of, provision
from tests.support.events import penduduk
from tests.support.kafka import read_all
from tests.support.secured import read_refusal

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

PENDUDUK = "id.go.spbe.dukcapil.PendudukUpdated.v1"
TODAY = date(2026, 6, 1)
STEWARD_SECRET = b"dukcapil-provisioning-secret-0123"
PAIRWISE_SECRET = b"contracts-provisioning-pairwise-01"
LEDGER_SECRET = b"contracts-provisioning-ledger-0123"


def shipped_fields(subscriber: str) -> list[str]:
    """The allowed PendudukUpdated fields of ``subscriber`` in deploy/catalog.yaml."""
    data = yaml.safe_load(default_catalog_path().read_text(encoding="utf-8"))
    (found,) = [s for s in data["subscriptions"] if s["subscriber"] == subscriber]
    fields: list[str] = found["allowed_fields"][PENDUDUK]
    return fields


def catalogue(
    tag: str, *, dpmptsp: bool = True, dinsos_expires: date = date(2027, 12, 31)
) -> Catalog:
    """Disdukcapil's restricted penduduk topic; DPMPTSP and Dinsos subscribe to it with the
    fields the shipped catalogue allows them. SIAK posts through the gateway, and a DPMPTSP
    application reads DPMPTSP's subscription through it."""
    raw = f"spbe.dukcapil{tag}.penduduk.v1"

    def subscription(opd: str, fields: list[str], expires: date) -> dict[str, Any]:
        return {
            "subscriber": f"{opd.lower()}-{tag}",
            "opd": opd,
            "topics": [raw],
            "purpose": "Verifikasi identitas pemohon layanan.",
            "legal_basis": f"PKS 470/{tag}/DISDUKCAPIL/2025",
            "allowed_fields": {PENDUDUK: fields},
            "expires": expires.isoformat(),
        }

    subscriptions = [subscription("DINSOS", shipped_fields("dinsos-penduduk"), dinsos_expires)]
    clients: list[dict[str, Any]] = [{"client": f"disdukcapil-siak{tag}", "opd": "DISDUKCAPIL"}]
    if dpmptsp:
        subscriptions.insert(
            0, subscription("DPMPTSP", shipped_fields("dpmptsp-penduduk"), date(2027, 12, 31))
        )
        clients.append(
            {
                "client": f"dpmptsp-portal{tag}",
                "opd": "DPMPTSP",
                "subscriptions": [f"dpmptsp-{tag}"],
            }
        )
    return Catalog.model_validate(
        {
            "stewards": [
                {
                    "id": "DISDUKCAPIL",
                    "name": "Disdukcapil",
                    "pemda": "3273",
                    "applications": [f"siak{tag}"],
                }
            ],
            "topics": [
                {
                    "name": raw,
                    "steward": "DISDUKCAPIL",
                    "event_types": [PENDUDUK],
                    "partitions": 2,
                    "replication_factor": 1,
                    "retention_ms": -1,
                    "cleanup_policy": "delete",
                    "classification": "restricted",
                }
            ],
            "subscriptions": subscriptions,
            "api_clients": clients,
        }
    )


async def service_connection(
    operator: KafkaConnection, handover: Path, principal: str = CONTRACT_SERVICE_PRINCIPAL
) -> KafkaConnection:
    """A service's hand-over credentials (the contract service's, the gateway's). An earlier
    apply on this broker may have created its user (one per cluster): then a rotation hands
    over a new password."""
    path = handover / f"{principal}.json"
    if not path.exists():
        async with AuditLog(operator) as audit:
            path = await rotate_password(operator, principal, handover_dir=handover, audit=audit)
    return of(path)


def paths(datum: dict[str, Any], prefix: str = "") -> set[str]:
    found: set[str] = set()
    for name, value in datum.items():
        if isinstance(value, dict):
            found |= paths(value, f"{prefix}{name}.")
        else:
            found.add(f"{prefix}{name}")
    return found


def catalog_subscription(catalog: Catalog, subscriber: str) -> Subscription:
    return next(sub for sub in catalog.subscriptions if sub.subscriber == subscriber)


async def test_a_subscriber_reads_only_its_projection_and_loses_it_on_the_next_apply(
    secured_kafka: KafkaConnection, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    raw = f"spbe.dukcapil{tag}.penduduk.v1"
    dpmptsp_id, dinsos_id = f"dpmptsp-{tag}", f"dinsos-{tag}"
    mine, theirs = projected_topic(raw, dpmptsp_id), projected_topic(raw, dinsos_id)
    catalog = catalogue(tag)
    result = await provision(secured_kafka, catalog, tmp_path)
    assert result.after.in_sync, result.after.render()
    dpmptsp = of(tmp_path / f"{dpmptsp_id}.json")

    # The steward publishes with its own credentials.
    steward = tmp_path / f"disdukcapil-siak{tag}.json"
    config = PublisherConfig(
        bootstrap_servers=of(steward).bootstrap_servers,
        security=KafkaSecurity(credentials_file=steward),
        source=f"ID/PEMDA-3273/DISDUKCAPIL/siak{tag}",
        key_secret=SecretBytes(STEWARD_SECRET),
        topic_overrides={"PendudukUpdated": raw},
    )
    events = [penduduk(serial) for serial in (1, 2)]

    async def published() -> bool:
        try:
            async with Publisher(config) as publisher:
                outcomes = await publisher.publish_many(events)
        except BusError:
            return False  # ACLs still on their way to the broker
        return not any(isinstance(o, Exception) for o in outcomes)

    await eventually(published, "the steward publishes to its restricted topic")

    # The contract service, with its hand-over credentials, projects them.
    engine = create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    create_ledger_table(engine)
    ledger = LedgerStore(engine, LEDGER_SECRET)
    service = ContractService(
        catalog.subscriptions,
        pairwise_secret=SecretBytes(PAIRWISE_SECRET),
        ledger=ledger,
        ledger_secret=SecretBytes(LEDGER_SECRET),
        kafka=await service_connection(secured_kafka, tmp_path),
        today=lambda: TODAY,
    )
    async with service:
        produced = 0
        for _ in range(60):  # fetches, not time: each waits for records at most 1 s
            produced += await service.run_once()
            if produced >= 2 * len(events):
                break
    assert produced == 2 * len(events)
    projection = next(r.projected for r in service.routes if r.subscriber == dpmptsp_id)

    # With DPMPTSP's own credentials: the raw topic and Dinsos's projection are refused.
    refused = await read_refusal(dpmptsp, raw, dpmptsp_id)
    assert isinstance(refused, TopicAuthorizationFailedError), refused
    refused = await read_refusal(dpmptsp, theirs, dpmptsp_id)
    assert isinstance(refused, TopicAuthorizationFailedError), refused
    assert await read_refusal(dpmptsp, mine, dpmptsp_id) is None

    # Its projection holds exactly its allowed fields, in bytes as in the decoded record.
    records = await read_all(dpmptsp, mine, expected=len(events))
    assert len(records) == len(events)
    async with SchemaRegistry(dpmptsp) as registry:  # the subscriber's own registry reads
        writer = await registry.lookup(projection.schema.fingerprint)
    allowed = set(shipped_fields("dpmptsp-penduduk"))
    by_nik = {e.nik: e for e in events}
    for record in records:
        assert record.value is not None
        datum = codec.decode(record.value, InMemorySchemas([writer])).datum
        assert paths(datum) == allowed
        assert "no_kk" not in datum
        assert "agama" not in datum
        event = by_nik[datum["nik"]]
        assert event.no_kk.encode() not in record.value
        assert event.nama_lengkap == datum["nama_lengkap"]
        headers = {name: value.decode() for name, value in record.headers}
        assert headers["ce_subscription"] == dpmptsp_id
        assert headers["ce_legalbasis"] == catalog_subscription(catalog, dpmptsp_id).legal_basis

    # Dinsos, with its own credentials, reads the same residents under other keys.
    dinsos = of(tmp_path / f"{dinsos_id}.json")
    theirs_records = await read_all(dinsos, theirs, expected=len(events))
    mine_keys = {r.key for r in records}
    their_keys = {r.key for r in theirs_records}
    assert len(mine_keys) == len(their_keys) == len(events)
    assert not mine_keys & their_keys, "two subscribers' keys of one NIK differ"
    assert not {e.nik.encode() for e in events} & (mine_keys | their_keys)

    # The gateway, with its hand-over credentials, reads DPMPTSP's projection (a client names
    # it), neither Dinsos's (none does) nor the raw topic, and writes it for SIAK.
    gateway = await service_connection(secured_kafka, tmp_path, GATEWAY_PRINCIPAL)

    async def gateway_reads_mine() -> bool:
        return await read_refusal(gateway, mine, GATEWAY_GROUP) is None

    await eventually(gateway_reads_mine, "the gateway reads its client's projection")
    refused = await read_refusal(gateway, raw, GATEWAY_GROUP)
    assert isinstance(refused, TopicAuthorizationFailedError), refused
    refused = await read_refusal(gateway, theirs, GATEWAY_GROUP)
    assert isinstance(refused, TopicAuthorizationFailedError), refused
    as_gateway = config.model_copy(
        update={"bootstrap_servers": gateway.bootstrap_servers, "security": gateway.security}
    )

    async def gateway_publishes() -> bool:
        try:
            async with Publisher(as_gateway) as publisher:
                result = await publisher.publish(penduduk(3))
        except BusError:
            return False  # the rotated password may still be on its way to the brokers
        return result.topic == raw

    await eventually(gateway_publishes, "the gateway publishes SIAK's event to its topic")

    # DPMPTSP leaves the catalogue and Dinsos's agreement expires: the next apply revokes.
    later = catalogue(tag, dpmptsp=False, dinsos_expires=TODAY)
    second = await provision(
        secured_kafka, later, tmp_path / "later", today=TODAY + timedelta(days=1)
    )
    revoked = {(a.user, a.resource_name, a.operation) for a in second.applied.revocations}
    assert {
        (dpmptsp_id, mine, "READ"),
        (dinsos_id, theirs, "READ"),
        (CONTRACT_SERVICE_PRINCIPAL, mine, "WRITE"),
        (CONTRACT_SERVICE_PRINCIPAL, theirs, "WRITE"),
        (CONTRACT_SERVICE_PRINCIPAL, raw, "READ"),
        (GATEWAY_PRINCIPAL, mine, "READ"),
    } <= revoked
    assert (GATEWAY_PRINCIPAL, raw, "WRITE") not in revoked, "SIAK still posts through it"
    assert second.after.in_sync, second.after.render()

    async def mine_refused() -> bool:
        return isinstance(
            await read_refusal(dpmptsp, mine, dpmptsp_id), TopicAuthorizationFailedError
        )

    await eventually(mine_refused, "the removed subscriber is refused its projection")
    # What was delivered stays on the projected topic.
    assert len(await read_all(secured_kafka, mine, expected=len(events))) == len(events)
    assert {s.subscriber for s in ledger.who_received(events[0].nik).subscribers} == {
        dpmptsp_id,
        dinsos_id,
    }
    engine.dispose()
