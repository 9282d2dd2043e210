"""The gateway acceptance tests' deployment: set up once, called as each API client.

:func:`set_up` provisions nothing itself (``catalog apply`` ran already): it takes the
hand-over files, starts the contract service, publishes Disdukcapil's residents and
Bapenda's payment with the stewards' own credentials, starts the gateway process and
waits until its read models hold them. :class:`Caller` makes one client's requests with
its bearer token and keeps every answer in :attr:`Deployment.answers`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import SecretBytes

from bus.connection import KafkaConnection, KafkaSecurity
from bus.contract import codec
from bus.contract.contract_headers import DeliveryContract, to_contract_headers
from bus.contract.envelope import DataClassification, Envelope, to_headers
from bus.contract.events import PajakDaerahDibayar
from bus.contract.projection import project, projected_topic
from bus.contract.standard import example
from bus.errors import BusError
from bus.publisher import Publisher, PublisherConfig
from tests.support.events import penduduk
from tests.support.gateway import DUKCAPIL_KEY_SECRET, GatewayScene
from tests.support.gateway_deployment import (
    DINKOPUKM_PENDUDUK_FIELDS,
    GatewayProcess,
    handover_file_of,
    start_process,
    wait_for,
    write_contract_file,
    write_gateway_file,
)
from tests.support.kafka import partitions_of, produce
from tests.support.projected import catalog_subscription, projection

__all__ = [
    "NTPD",
    "PAJAK",
    "READS",
    "SIAK",
    "SICANTIK",
    "SIPD",
    "SIUMKM",
    "Answer",
    "Caller",
    "Deployment",
    "caller",
    "field_paths",
    "records_with_id",
    "set_up",
    "umkm_body",
    "wait_healthy",
]

SICANTIK, SIUMKM, SIPD, SIAK = (
    "dpmptsp-sicantik",
    "dinkopukm-siumkm",
    "bapenda-sipd",
    "disdukcapil-siak",
)
PENDUDUK = "id.go.spbe.dukcapil.PendudukUpdated.v1"
PAJAK = "id.go.spbe.bapenda.PajakDaerahDibayar.v1"
#: The allowed PendudukUpdated fields of each reading client's subscription.
READS = {
    SICANTIK: set(catalog_subscription("dpmptsp-penduduk").allowed_fields[PENDUDUK]),
    SIPD: set(catalog_subscription("bapenda-penduduk").allowed_fields[PENDUDUK]),
    SIUMKM: set(DINKOPUKM_PENDUDUK_FIELDS),
}
RESIDENT_SERIALS = (11, 12, 13)
NTPD = "32730126112800009911"


@dataclass
class Answer:
    client: str
    method: str
    path: str
    status: int
    headers: httpx.Headers
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


@dataclass
class Deployment:
    scene: GatewayScene
    operator: KafkaConnection
    handover: Path
    gateway_credentials: Path
    contracts: GatewayProcess
    gateway: GatewayProcess
    residents: dict[str, dict[str, Any]]
    umkm_topic: str
    processes: list[GatewayProcess] = field(default_factory=list)
    #: A resident only Bapenda's subscription received.
    only_bapenda: str = ""
    answers: list[Answer] = field(default_factory=list)

    def restart(self, name: str, **overrides: Any) -> GatewayProcess:
        """Stop the gateway (SIGTERM: exit 0) and start another on the same database."""
        assert self.gateway.stop() == 0, self.gateway.output()[-4000:]
        adapter = write_gateway_file(
            self.scene, self.gateway_credentials, f"{name}.yaml", **overrides
        )
        self.gateway = start_process(name, adapter, self.scene.folder / "logs")
        self.processes.append(self.gateway)
        return self.gateway


def _publisher(credentials: Path, source: str, **settings: Any) -> PublisherConfig:
    return PublisherConfig(
        bootstrap_servers=json.loads(credentials.read_text())["bootstrap"],
        security=KafkaSecurity(credentials_file=credentials),
        source=source,
        **settings,
    )


async def _publish_until_accepted(config: PublisherConfig, events: list[Any]) -> None:
    async def published() -> bool:
        try:
            async with Publisher(config) as publisher:
                outcomes = await publisher.publish_many(events)
        except BusError:
            return False  # the new user's ACLs are still on their way to the broker
        return not any(isinstance(o, Exception) for o in outcomes)

    await wait_for(published, f"{config.source} publishes to its topic")


async def wait_healthy(deployment: Deployment) -> None:
    async def healthy() -> bool:
        try:
            async with deployment.scene.client() as http:
                return (await http.get("/healthz")).status_code == 200
        except httpx.TransportError:
            return False

    await wait_for(healthy, "the gateway answers /healthz", watch=deployment.gateway)


async def set_up(operator: KafkaConnection, scene: GatewayScene, handover: Path) -> Deployment:
    contracts_file = write_contract_file(
        scene, await handover_file_of(operator, handover, "spbe-contracts")
    )
    gateway_credentials = await handover_file_of(operator, handover, "spbe-gateway")
    siak = await handover_file_of(operator, handover, SIAK)
    sipd = await handover_file_of(operator, handover, SIPD)
    logs = scene.folder / "logs"
    contracts = start_process("contracts", contracts_file, logs)
    residents = [penduduk(serial) for serial in RESIDENT_SERIALS]
    raw = scene.topic("spbe.dukcapil.penduduk.v1")
    await _publish_until_accepted(
        _publisher(
            siak,
            "ID/PEMDA-3273/DISDUKCAPIL/siak",
            key_secret=SecretBytes(DUKCAPIL_KEY_SECRET.encode()),
            topic_overrides={"PendudukUpdated": raw},
        ),
        residents,
    )
    payment = example("PajakDaerahDibayar")
    payment["ntpd"] = NTPD
    await _publish_until_accepted(
        _publisher(
            sipd,
            "ID/PEMDA-3273/BAPENDA/sipd",
            topic_overrides={"PajakDaerahDibayar": scene.topic("spbe.bapenda.pajak.v1")},
        ),
        [PajakDaerahDibayar.from_json(payment)],
    )
    gateway = start_process(
        "gateway", write_gateway_file(scene, gateway_credentials), scene.folder / "logs"
    )
    deployment = Deployment(
        scene=scene,
        operator=operator,
        handover=handover,
        gateway_credentials=gateway_credentials,
        contracts=contracts,
        gateway=gateway,
        residents={r.nik: r.to_json() for r in residents},
        umkm_topic=scene.topic("spbe.dinkopukm.umkm.v1"),
        processes=[gateway],
    )
    await wait_healthy(deployment)
    async with caller(deployment, SICANTIK) as sicantik:

        async def all_read() -> bool:
            for nik in deployment.residents:
                if (await sicantik.get(f"/api/v1/penduduk/{nik}")).status != 200:
                    return False
            return (await sicantik.get(f"/api/v1/pajak?ntpd={NTPD}")).status == 200

        await wait_for(all_read, "the read models hold every resident and the payment",
                       watch=gateway)  # fmt: skip
    deployment.only_bapenda = await _deliver_to_one(deployment, "bapenda-penduduk", 41)
    async with caller(deployment, SIPD) as sipd:

        async def delivered() -> bool:
            path = f"/api/v1/penduduk/{deployment.only_bapenda}"
            return (await sipd.get(path)).status == 200

        await wait_for(delivered, "Bapenda's own delivery is in its read model", watch=gateway)
    return deployment


async def _deliver_to_one(deployment: Deployment, subscriber: str, serial: int) -> str:
    """A resident delivered on ``subscriber``'s projected topic only, as the contract service
    delivers a snapshot to one new subscriber (the projected schema is registered: the
    service delivered the other residents); the resident's NIK."""
    raw = deployment.scene.topic("spbe.dukcapil.penduduk.v1")
    projected = projection("PendudukUpdated", subscriber)
    resident = penduduk(serial)
    sub = catalog_subscription(subscriber)
    envelope = Envelope(
        source="ID/PEMDA-3273/DISDUKCAPIL/siak",
        type=PENDUDUK,
        steward="DISDUKCAPIL",
        partitionkey=f"pairwise-key-of-one-delivery-{serial:04d}-0123456789",
        dataclassification=DataClassification.RESTRICTED,
        sequence=1,
    )
    headers = to_headers(envelope) + to_contract_headers(
        DeliveryContract(subscriber, sub.purpose, sub.legal_basis)
    )
    value = codec.encode(projected.schema, project(resident.avro_datum(), projected))
    topic = projected_topic(raw, subscriber)
    await produce(deployment.operator, topic, [value], key=b"one-delivery", headers=headers)
    return resident.nik


class Caller:
    """One API client's requests with its bearer token; every answer kept."""

    def __init__(self, deployment: Deployment, client: str, http: httpx.AsyncClient) -> None:
        self.deployment, self.client, self.http = deployment, client, http
        self.token: str | None = None

    async def _keep(self, method: str, path: str, response: httpx.Response) -> Answer:
        answer = Answer(
            self.client, method, path, response.status_code, response.headers, response.text
        )
        self.deployment.answers.append(answer)
        return answer

    async def authorization(self) -> dict[str, str]:
        if self.token is None:
            self.token = await self.deployment.scene.token(self.http, self.client)
        return {"Authorization": f"Bearer {self.token}"}

    async def get(self, path: str, headers: dict[str, str] | None = None) -> Answer:
        sent = {**await self.authorization(), **(headers or {})}
        return await self._keep("GET", path, await self.http.get(path, headers=sent))

    async def post(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> Answer:
        sent = {
            **await self.authorization(),
            "Content-Type": "application/json",
            **(headers or {}),
        }
        return await self._keep("POST", path, await self.http.post(path, content=body,
                                                                    headers=sent))  # fmt: skip


@asynccontextmanager
async def caller(deployment: Deployment, client: str) -> AsyncIterator[Caller]:
    async with deployment.scene.client() as http:
        yield Caller(deployment, client, http)


def umkm_body(serial: int) -> bytes:
    data = example("UmkmTerdaftar")
    data["id_umkm"] = f"UMKM-3273-2026-{serial:06d}"
    return json.dumps(data).encode()


def field_paths(document: dict[str, Any], prefix: str = "") -> set[str]:
    found: set[str] = set()
    for name, value in document.items():
        if isinstance(value, dict):
            found |= field_paths(value, f"{prefix}{name}.")
        else:
            found.add(f"{prefix}{name}")
    return found


async def records_with_id(deployment: Deployment, event_id: str) -> int:
    """How many records of the UMKM topic, read to its end offsets, carry ``ce_id``."""
    topic = deployment.umkm_topic
    consumer = AIOKafkaConsumer(
        **deployment.operator.aiokafka_options(),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in await partitions_of(
            deployment.operator, topic)]  # fmt: skip
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning()
        count = 0
        for tp in partitions:
            while await consumer.position(tp) < ends[tp]:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                count += sum(
                    1
                    for r in batch.get(tp, [])
                    if dict(r.headers).get("ce_id") == event_id.encode()
                )
        return count
    finally:
        await consumer.stop()
