"""A Subscriber with ReadModels as its handler fills them from a projected topic on real Kafka.

The projected events are produced as the contract service produces them: the projection's
datum in single-object encoding, the envelope's and the contract headers, the projected
schema registered in a registry topic of this test.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from adapters.gateway.readmodels import ReadModels
from bus.contract import codec
from bus.contract.contract_headers import DeliveryContract, to_contract_headers
from bus.contract.envelope import DataClassification, Envelope, to_headers
from bus.contract.projection import project, projected_topic
from bus.registry import SchemaRegistry
from bus.subscriber import Subscriber, SubscriberConfig
from tests.integration.test_subscriber import eventually
from tests.support.events import SOURCE_DUKCAPIL, penduduk
from tests.support.kafka import create_topic, produce
from tests.support.projected import projection

pytestmark = pytest.mark.integration

ALLOWED = ["nik", "nama_lengkap", "alamat.kode_wilayah", "berlaku_sejak"]


async def test_the_gateways_subscriber_fills_the_read_model_from_a_projected_topic(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    subscriber = f"gwtest-{uuid.uuid4().hex[:8]}"  # a subscription of this test only
    topic = await create_topic(
        kafka_bootstrap, projected_topic("spbe.dukcapil.penduduk.v1", subscriber)
    )
    projected = projection("PendudukUpdated", subscriber, ALLOWED)
    registry_topic = f"_spbe.schemas.test.gateway.{uuid.uuid4().hex[:8]}"
    async with SchemaRegistry(kafka_bootstrap, topic=registry_topic) as registry:
        event_type = "id.go.spbe.dukcapil.PendudukUpdated.v1"
        await registry.register(projected.schema, subject=f"{event_type}.for.{subscriber}")

    resident = penduduk(uuid.uuid4().int % 9000 + 1000)
    key = "pairwise-key-of-this-test-0123456789abcdef"
    headers: list[tuple[str, bytes]] = []
    for sequence in (1, 2):
        envelope = Envelope(
            source=SOURCE_DUKCAPIL,
            type=event_type,
            steward="DISDUKCAPIL",
            partitionkey=key,
            dataclassification=DataClassification.RESTRICTED,
            sequence=sequence,
        )
        headers = to_headers(envelope) + to_contract_headers(
            DeliveryContract(subscriber, "Uji gateway", "PKS uji 1/2026")
        )
        value = codec.encode(projected.schema, project(resident.avro_datum(), projected))
        await produce(kafka_bootstrap, topic, [value], key=key.encode(), headers=headers)

    models = ReadModels.from_url(f"sqlite:///{tmp_path / 'gateway.db'}")
    models.create_tables()
    config = SubscriberConfig(
        bootstrap_servers=kafka_bootstrap,
        subscriber_id=f"spbe-gateway-{subscriber}",
        topics=(topic,),
        registry_topic=registry_topic,
    )
    try:
        async with Subscriber(config, models, batch_handler=models.apply_batch) as running:
            runner = asyncio.create_task(running.run())
            await eventually(
                lambda: (
                    (view := models.person(subscriber, resident.nik)) is not None
                    and view.sequence == 2
                ),
                watch=runner,
            )
            running.request_stop()
            await runner
    finally:
        models.dispose()

    view = models.person(subscriber, resident.nik)
    assert view is not None
    assert view.document == {
        "nik": resident.nik,
        "nama_lengkap": resident.nama_lengkap,
        "alamat": {"kode_wilayah": resident.alamat.kode_wilayah},
        "berlaku_sejak": resident.berlaku_sejak.isoformat(),
    }
    assert view.event_type == "PendudukUpdated"
    (found,) = models.people(subscriber, "32.73.02", limit=10).items
    assert found == view
