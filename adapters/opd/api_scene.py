"""The demo's REST gateway: OPD applications that do not speak Kafka, over HTTPS.

Once the contract service has delivered the projections, the gateway runs from
``deploy/adapters/gateway.yaml`` exactly as shipped, everything given by its environment
variables: its hand-over file (principal ``spbe-gateway``), a certificate issued from the
demo cluster's local CA as ``spbe-bus gateway certificate`` issues it, the client secret
hashes made as ``spbe-bus gateway client-secret`` makes them, a fresh token key, the
contract service's ledger, and a database file of its own. Then, over HTTPS trusting that
CA only:

* DinkopUKM's SIUMKM (``dinkopukm-siumkm``) gets a token and posts an UMKM with an
  ``Idempotency-Key``: 202 with the offset, which the demo reads back from the topic; the
  retry with the same key answers the same offset;
* DPMPTSP's SiCantik (``dpmptsp-sicantik``) gets a token and reads the story's resident:
  200 with only the fields of ``dpmptsp-penduduk``'s contract, recorded in the ledger
  (kind ``api``), which the story's who-received then shows.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import SecretStr

from adapters.gateway.egress import PENDUDUK_EVENTS
from adapters.gateway.secrets import hash_client_secret, new_client_secret
from adapters.gateway.tls import issue_local_certificate
from adapters.opd.contract_scene import ReceivedBy
from bus.connection import KafkaConnection
from bus.contract.standard import example
from bus.localkafka.certificates import CertificateAuthority
from bus.ops.catalog import Catalog
from bus.startup import start_client

__all__ = [
    "GATEWAY_FILE",
    "WITHHELD",
    "ApiView",
    "GatewaySetup",
    "PostedUmkm",
    "ReadResident",
    "api_read_recorded",
    "play_api_scene",
    "prepare_gateway",
]

GATEWAY_FILE = "gateway.yaml"
POSTING_CLIENT = "dinkopukm-siumkm"
READING_CLIENT = "dpmptsp-sicantik"
READ_SUBSCRIPTION = "dpmptsp-penduduk"
#: Fields of a resident DPMPTSP's contract does not allow (Dinsos's does): never in its answer.
WITHHELD = ("tanggal_lahir", "pekerjaan", "no_kk")


@dataclass(frozen=True)
class GatewaySetup:
    """What the gateway file's variables point at, and the clients' secrets (demo only)."""

    env: dict[str, str]
    url: str
    ca_file: Path
    client_secrets: Mapping[str, SecretStr]

    def __repr__(self) -> str:
        return f"GatewaySetup(url={self.url!r}, secrets=***)"


@dataclass(frozen=True)
class PostedUmkm:
    """``POST /api/v1/umkm``: the answer, and the record read back at its offset."""

    status: int
    id: str | None = None
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    latency_ms: float | None = None
    #: The record at that offset carries the answer's id, with this ce_source.
    on_topic: bool = False
    source: str | None = None
    #: The same request with the same Idempotency-Key answered the same offset.
    retry_same_offset: bool = False


@dataclass(frozen=True)
class ReadResident:
    """``GET /api/v1/penduduk/{nik}``: the fields answered and those of the contract."""

    status: int
    subscription: str
    fields: tuple[str, ...] = ()
    allowed: tuple[str, ...] = ()

    @property
    def within_contract(self) -> bool:
        return bool(self.fields) and set(self.fields) <= set(self.allowed)

    @property
    def withheld_absent(self) -> tuple[str, ...]:
        """Of :data:`WITHHELD`, those the answer does not carry."""
        return tuple(f for f in WITHHELD if f not in {p.split(".")[0] for p in self.fields})


@dataclass(frozen=True)
class ApiView:
    """What the demo shows of the gateway."""

    url: str
    posted: PostedUmkm
    read: ReadResident

    @property
    def ok(self) -> bool:
        posted, read = self.posted, self.read
        return (
            posted.status == 202
            and posted.on_topic
            and posted.retry_same_offset
            and read.status == 200
            and read.within_contract
            and read.withheld_absent == WITHHELD
        )

    def as_json(self) -> dict[str, Any]:
        read = self.read
        return {
            "ok": self.ok,
            "url": self.url,
            "posted": asdict(self.posted),
            "read": {
                **asdict(read),
                "within_contract": read.within_contract,
                "withheld_absent": list(read.withheld_absent),
            },
        }


def api_read_recorded(who_received: tuple[ReceivedBy, ...]) -> bool:
    """The ledger's who-received shows the gateway's read under DPMPTSP's subscription."""
    return any(r.subscriber == READ_SUBSCRIPTION and "api" in r.kinds for r in who_received)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _hash_variable(client: str) -> str:
    """``SPBE_GATEWAY_DINKOPUKM_SIUMKM_HASH``: the variable deploy/adapters/gateway.yaml reads."""
    return f"SPBE_GATEWAY_{client.upper().replace('-', '_')}_HASH"


def prepare_gateway(folder: Path, ca_dir: Path | None, database_url: str) -> GatewaySetup:
    """Certificate, client secrets, token key and port for the gateway file's variables.

    ``ca_dir`` is the cluster's local CA (``<data dir>/tls``); without one (a plaintext
    broker) a CA is made in ``folder`` for the gateway alone.
    """
    if ca_dir is None:
        ca_dir = folder / "ca"
        CertificateAuthority.create(ca_dir, name="spbe-bus demo gateway CA")
    issued = issue_local_certificate(ca_dir, folder / "tls")
    port = _free_port()
    client_secrets = {c: SecretStr(new_client_secret()) for c in (POSTING_CLIENT, READING_CLIENT)}
    env = {
        "SPBE_GATEWAY_PORT": str(port),
        "SPBE_GATEWAY_TLS_CERT": str(issued.certificate),
        "SPBE_GATEWAY_TLS_KEY": str(issued.key),
        "SPBE_GATEWAY_TOKEN_KEY": secrets.token_urlsafe(48),
        "SPBE_GATEWAY_DATABASE_URL": database_url,
    }
    for client, secret in client_secrets.items():
        env[_hash_variable(client)] = hash_client_secret(secret.get_secret_value())
    return GatewaySetup(
        env,
        f"https://127.0.0.1:{port}",
        CertificateAuthority.load(ca_dir).cert_path,
        client_secrets,
    )


async def _healthy(http: httpx.AsyncClient, gateway: asyncio.Task[None], timeout_s: float) -> None:
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        if gateway.done():
            gateway.result()  # raises what stopped it
            raise RuntimeError("the gateway stopped before it was healthy")
        try:
            if (await http.get("/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise TimeoutError(f"the gateway did not become healthy within {timeout_s:.0f} s")


async def _token(http: httpx.AsyncClient, setup: GatewaySetup, client: str) -> str | int:
    """A bearer token for ``client`` (HTTP Basic client credentials), or the status refused."""
    secret = setup.client_secrets[client].get_secret_value()
    answer = await http.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client, secret)
    )
    if answer.status_code != 200:
        return answer.status_code
    token: str = answer.json()["access_token"]
    return token


async def _read_back(
    operator: KafkaConnection, accepted: dict[str, Any]
) -> tuple[bool, str | None]:
    """Whether the record at the 202's offset carries its id, and its ce_source."""
    consumer = await start_client(
        lambda: AIOKafkaConsumer(**operator.aiokafka_options(), enable_auto_commit=False),
        "read the posted event back",
        bootstrap_servers=operator.bootstrap_servers,
        security=operator.security,
    )
    try:
        tp = TopicPartition(accepted["topic"], accepted["partition"])
        consumer.assign([tp])
        consumer.seek(tp, accepted["offset"])
        record = await asyncio.wait_for(consumer.getone(tp), 60)
    finally:
        await consumer.stop()
    headers = {k: v.decode() for k, v in record.headers}
    return headers.get("ce_id") == accepted["id"], headers.get("ce_source")


async def _post_umkm(
    http: httpx.AsyncClient, setup: GatewaySetup, operator: KafkaConnection
) -> PostedUmkm:
    token = await _token(http, setup, POSTING_CLIENT)
    if isinstance(token, int):
        return PostedUmkm(status=token)
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Idempotency-Key": f"siumkm-demo-{secrets.token_hex(8)}",
    }
    body = json.dumps(example("UmkmTerdaftar"))
    started = time.perf_counter()
    answer = await http.post("/api/v1/umkm", content=body, headers=headers)
    latency = round((time.perf_counter() - started) * 1000, 1)
    if answer.status_code != 202:
        return PostedUmkm(status=answer.status_code)
    accepted = answer.json()
    on_topic, source = await _read_back(operator, accepted)
    retry = await http.post("/api/v1/umkm", content=body, headers=headers)
    same = retry.status_code == 202 and retry.json() == accepted
    return PostedUmkm(
        202,
        accepted["id"],
        accepted["topic"],
        accepted["partition"],
        accepted["offset"],
        latency,
        on_topic,
        source,
        same,
    )


def _paths(data: Mapping[str, Any]) -> tuple[str, ...]:
    """Dotted paths of an answer's fields (``alamat.jalan``); a death's under its own names."""
    paths: list[str] = []
    for key, value in data.items():
        if isinstance(value, Mapping):
            prefix = "" if key == "kematian" else f"{key}."
            paths += [f"{prefix}{sub}" for sub in value]
        else:
            paths.append(key)
    return tuple(paths)


async def _read_resident(
    http: httpx.AsyncClient, setup: GatewaySetup, catalog: Catalog, nik: str, timeout_s: float
) -> ReadResident:
    subscription = next(s for s in catalog.subscriptions if s.subscriber == READ_SUBSCRIPTION)
    allowed = tuple(
        dict.fromkeys(
            p
            for t, fields in subscription.allowed_fields.items()
            if t in PENDUDUK_EVENTS
            for p in fields
        )
    )
    token = await _token(http, setup, READING_CLIENT)
    if isinstance(token, int):
        return ReadResident(token, READ_SUBSCRIPTION, allowed=allowed)
    auth = {"Authorization": f"Bearer {token}"}
    deadline = time.perf_counter() + timeout_s
    while True:  # until the read model has followed the projected topic this far
        answer = await http.get(f"/api/v1/penduduk/{nik}", headers=auth)
        if answer.status_code != 404 or time.perf_counter() > deadline:
            break
        await asyncio.sleep(0.2)
    if answer.status_code != 200:
        return ReadResident(answer.status_code, READ_SUBSCRIPTION, allowed=allowed)
    return ReadResident(200, READ_SUBSCRIPTION, _paths(answer.json()["data"]), allowed)


async def play_api_scene(
    setup: GatewaySetup,
    gateway: asyncio.Task[None],
    operator: KafkaConnection,
    catalog: Catalog,
    nik: str,
    *,
    timeout_s: float,
) -> ApiView:
    """Once ``gateway`` is healthy: SIUMKM posts an UMKM, SiCantik reads resident ``nik``."""
    trust = ssl.create_default_context(cafile=str(setup.ca_file))
    async with httpx.AsyncClient(base_url=setup.url, verify=trust, timeout=30.0) as http:
        await _healthy(http, gateway, timeout_s)
        posted = await _post_umkm(http, setup, operator)
        read = await _read_resident(http, setup, catalog, nik, timeout_s)
    return ApiView(setup.url, posted, read)
