"""A SQL sink from an adapter file applies projected events from its projected topic.

The projected PendudukUpdated for dpmptsp-penduduk is produced as the contract service
will produce it: the projection's datum (``project``) in single-object encoding, its
pairwise key, the envelope's headers and the contract headers; its projected schema is
registered in a registry topic of this test. The subscriber decodes it into the
projection's event class and the sink writes the deployed mapping's columns.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from aiokafka.errors import TopicAlreadyExistsError

from adapters.kinds import SqlSinkFile
from adapters.runner import load_adapter
from adapters.sinks.sql import SqlSink
from bus.contract import codec
from bus.contract.contract_headers import DeliveryContract, to_contract_headers
from bus.contract.envelope import DataClassification, Envelope, to_headers
from bus.contract.projected_events import ProjectedEvent
from bus.contract.projection import ProjectedSchema, project, projected_topic
from bus.contract.pseudonyms import PairwiseKeys
from bus.contract.standard import load_standard
from bus.delivery import Delivery, Outcome
from bus.ops.catalog import default_catalog_path, read_catalog
from bus.registry import SchemaRegistry
from bus.subscriber import Subscriber
from tests.integration.test_subscriber import eventually
from tests.support.events import SOURCE_DUKCAPIL, penduduk
from tests.support.kafka import create_topic, produce

pytestmark = pytest.mark.integration

SUBSCRIBER = "dpmptsp-penduduk"
TOPIC = projected_topic("spbe.dukcapil.penduduk.v1", SUBSCRIBER)
SINK_FILE = Path(__file__).resolve().parents[2] / "deploy" / "adapters" / f"{SUBSCRIBER}-sink.yaml"
PAIRWISE_SECRET = b"contract-service-test-secret-0123456789"


def adapter_file(tmp_path: Path, bootstrap: str, registry_topic: str) -> Path:
    """The deployed dpmptsp-penduduk sink, on its projected topic, into a SQLite file."""
    data = yaml.safe_load(SINK_FILE.read_text(encoding="utf-8"))
    data["subscription"] |= {
        "bootstrap_servers": bootstrap,
        "topics": [TOPIC],
        "registry_topic": registry_topic,
    }
    data["sink"] |= {
        "database_url": f"sqlite:///{tmp_path / 'dpmptsp.db'}",
        "create_tables": True,
    }
    path = tmp_path / "dpmptsp-penduduk-sink.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


async def test_a_projected_event_is_applied_by_the_sql_sink_and_carries_its_contract(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    subscription = next(
        s for s in read_catalog(default_catalog_path()).subscriptions if s.subscriber == SUBSCRIBER
    )
    standard = load_standard()["PendudukUpdated"]
    projected = ProjectedSchema.derive(
        standard, SUBSCRIBER, subscription.allowed_fields[str(standard.event_type)]
    )
    registry_topic = f"_spbe.schemas.test.projected.{uuid.uuid4().hex[:8]}"
    async with SchemaRegistry(kafka_bootstrap, topic=registry_topic) as registry:
        # A subject of its own: the projection's history is not the standard's.
        await registry.register(projected.schema, subject=f"{standard.event_type}.for.{SUBSCRIBER}")
    with contextlib.suppress(TopicAlreadyExistsError):  # a broker shared with an earlier run
        await create_topic(kafka_bootstrap, TOPIC)

    resident = penduduk(uuid.uuid4().int % 9000 + 1000)
    key = PairwiseKeys(PAIRWISE_SECRET)(SUBSCRIBER, resident.nik)
    contract = DeliveryContract(SUBSCRIBER, subscription.purpose, subscription.legal_basis)
    envelope = Envelope(
        source=SOURCE_DUKCAPIL,
        type=str(standard.event_type),
        steward="DISDUKCAPIL",
        partitionkey=key,
        dataclassification=DataClassification.RESTRICTED,
        sequence=1,
    )
    value = codec.encode(projected.schema, project(resident.avro_datum(), projected))
    await produce(
        kafka_bootstrap,
        TOPIC,
        [value],
        key=key.encode(),
        headers=to_headers(envelope) + to_contract_headers(contract),
    )

    loaded = load_adapter(adapter_file(tmp_path, kafka_bootstrap, registry_topic))
    assert isinstance(loaded, SqlSinkFile)
    received: list[Delivery] = []
    async with SqlSink(loaded.sink) as sink:

        async def apply(delivery: Delivery) -> Outcome | None:
            outcome = await sink(delivery)
            if delivery.envelope.id == envelope.id:
                received.append(delivery)
            return outcome

        async with Subscriber(loaded.subscription, apply) as subscriber:
            runner = asyncio.create_task(subscriber.run())
            await eventually(lambda: bool(received), watch=runner)
            subscriber.request_stop()
            await runner

    (delivery,) = received
    assert delivery.contract == contract
    assert delivery.envelope.type == "id.go.spbe.dukcapil.PendudukUpdated.v1"
    assert isinstance(delivery.event, ProjectedEvent)
    assert not hasattr(delivery.event, "no_kk")
    engine = sa.create_engine(str(loaded.sink.database_url.get_secret_value()))
    try:
        with engine.connect() as connection:
            row = connection.execute(
                sa.text(
                    "SELECT nama_lengkap, jalan, kode_wilayah, spbe_sequence "
                    "FROM penduduk_replika WHERE nik = :nik"
                ),
                {"nik": resident.nik},
            ).one()
    finally:
        engine.dispose()
    assert tuple(row) == (
        resident.nama_lengkap,
        resident.alamat.jalan,
        resident.alamat.kode_wilayah,
        1,
    )
