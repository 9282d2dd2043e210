"""The gateway end to end in this process: token, POST to Kafka, GET from its read models.

Plain broker (the secured one is the acceptance tests'); the projected events are produced
as the contract service produces them, on this test's projected topic of dpmptsp-penduduk.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from bus.contract import codec
from bus.contract.contract_headers import DeliveryContract, to_contract_headers
from bus.contract.envelope import DataClassification, Envelope, to_headers
from bus.contract.projection import project, projected_topic
from bus.contract.standard import example
from bus.registry import SchemaRegistry
from tests.support.events import SOURCE_DUKCAPIL, penduduk
from tests.support.gateway import GatewayScene, running_gateway
from tests.support.kafka import create_topic, produce
from tests.support.projected import catalog_subscription, projection

pytestmark = pytest.mark.integration

PENDUDUK = "id.go.spbe.dukcapil.PendudukUpdated.v1"


async def _publish_projected(scene: GatewayScene, subscriber: str, serial: int) -> str:
    """One resident's PendudukUpdated on ``subscriber``'s projected topic; its NIK."""
    raw = scene.topic("spbe.dukcapil.penduduk.v1")
    topic = await create_topic(scene.bootstrap, projected_topic(raw, subscriber))
    projected = projection("PendudukUpdated", subscriber)
    async with SchemaRegistry(scene.bootstrap, topic=scene.registry_topic) as registry:
        await registry.register(projected.schema, subject=f"{PENDUDUK}.for.{subscriber}")
    resident = penduduk(serial)
    sub = catalog_subscription(subscriber)
    envelope = Envelope(
        source=SOURCE_DUKCAPIL,
        type=PENDUDUK,
        steward="DISDUKCAPIL",
        partitionkey="pairwise-key-of-this-test-0123456789abcdef",
        dataclassification=DataClassification.RESTRICTED,
        sequence=3,
    )
    headers = to_headers(envelope) + to_contract_headers(
        DeliveryContract(subscriber, sub.purpose, sub.legal_basis)
    )
    value = codec.encode(projected.schema, project(resident.avro_datum(), projected))
    await produce(scene.bootstrap, topic, [value], key=b"pairwise", headers=headers)
    return resident.nik


async def test_a_posted_umkm_is_on_kafka_and_a_resident_is_read_within_the_subscription(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    scene = GatewayScene(tmp_path, kafka_bootstrap)
    umkm_topic = await create_topic(kafka_bootstrap, scene.topic("spbe.dinkopukm.umkm.v1"))
    nik = await _publish_projected(scene, "dpmptsp-penduduk", 4321)
    async with running_gateway(scene), scene.client() as http:
        token = await scene.token(http, "dinkopukm-siumkm")
        posted = await http.post(
            "/api/v1/umkm",
            content=json.dumps(example("UmkmTerdaftar")),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        assert posted.status_code == 202, posted.text
        accepted = posted.json()
        assert accepted["topic"] == umkm_topic

        reader = await scene.token(http, "dpmptsp-sicantik")
        auth = {"Authorization": f"Bearer {reader}"}

        for _ in range(900):  # until the read model has the resident (the broker may stall)
            answer = await http.get(f"/api/v1/penduduk/{nik}", headers=auth)
            if answer.status_code != 404:
                break
            await asyncio.sleep(0.2)
        assert answer.status_code == 200, answer.text
        allowed = catalog_subscription("dpmptsp-penduduk").allowed_fields[PENDUDUK]
        tops = {path.split(".")[0] for path in allowed}
        assert set(answer.json()["data"]) <= tops
        assert answer.json()["data"]["nik"] == nik
        assert answer.headers["etag"]
        again = await http.get(
            f"/api/v1/penduduk/{nik}", headers={**auth, "If-None-Match": answer.headers["etag"]}
        )
        assert again.status_code == 304

    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(umkm_topic, accepted["partition"])
        consumer.assign([tp])
        consumer.seek(tp, accepted["offset"])
        record = await consumer.getone()
        assert dict(record.headers)["ce_id"].decode() == accepted["id"]
    finally:
        await consumer.stop()
    who = scene.ledger.who_received(nik)
    assert [s.subscriber for s in who.subscribers] == ["dpmptsp-penduduk"]
    # The read is recorded as the contract service records a delivery: by its ce_type.
    assert [(e.kind.value, e.event_type) for e in who.entries] == [("api", PENDUDUK)]
