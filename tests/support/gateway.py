"""A REST gateway of one test: its catalogue, certificate, clients, secrets and databases.

The catalogue is deploy/catalog.yaml with every topic renamed for this test
(``spbe.dukcapil.penduduk.v1`` -> ``spbe.dukcapil.pendudukt<tag>.v1``), so tests share a
broker without sharing topics; the gateway's ``topic_overrides`` send posted events to
the renamed topics. The certificate comes from a CA made for the test, which clients
trust through ``ca_file``.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from adapters.db import create_engine
from adapters.gateway.config import GatewayConfig
from adapters.gateway.secrets import hash_client_secret
from adapters.gateway.service import Gateway
from adapters.ledger import LedgerStore, create_ledger_table
from bus.connection import KafkaSecurity
from bus.contract.standard import load_standard
from bus.localkafka.certificates import CertificateAuthority
from bus.ops.catalog import default_catalog_path
from tests.support.ports import free_port_block

__all__ = ["CLIENT_SECRETS", "LEDGER_SECRET", "TOKEN_KEY", "GatewayScene", "running_gateway"]

TOKEN_KEY = "gateway-token-key-of-the-tests-0123456789abcdef"
LEDGER_SECRET = "ledger-secret-of-the-gateway-tests-0123"
DUKCAPIL_KEY_SECRET = "dukcapil-key-secret-of-the-tests-0123"
#: Every API client of deploy/catalog.yaml, with the secret each authenticates with.
CLIENT_SECRETS = {
    "dinkopukm-siumkm": "siumkm-secret-0123456789",
    "dpmptsp-sicantik": "sicantik-secret-0123456789",
    "bapenda-sipd": "sipd-secret-0123456789",
    "disdukcapil-siak": "siak-secret-0123456789",
}
_TOPIC = re.compile(r"\bspbe\.([a-z0-9]+)\.([a-z0-9]+)\.v(\d+)\b")


@dataclass
class GatewayScene:
    """Files and settings of one test's gateway (nothing runs until :func:`running_gateway`)."""

    folder: Path
    bootstrap: str
    security: KafkaSecurity | None = None
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.catalog = self.folder / "catalog.yaml"
        text = default_catalog_path().read_text(encoding="utf-8")
        self.catalog.write_text(
            _TOPIC.sub(lambda m: self.topic(m.group(0)), text), encoding="utf-8"
        )
        ca = CertificateAuthority.create(self.folder / "ca", name="gateway test CA")
        self.ca_file = ca.cert_path
        self.certificate = ca.issue("spbe-gateway", hosts=["127.0.0.1", "localhost"])
        self.port = free_port_block(1)
        self.ledger_url = f"sqlite:///{self.folder / 'ledger.db'}"
        create_ledger_table(create_engine(self.ledger_url))
        self.database_url = f"sqlite:///{self.folder / 'gateway.db'}"
        self.registry_topic = f"_spbe.schemas.gateway.{self.tag}"

    def topic(self, standard_topic: str) -> str:
        """This test's name of a topic of the standard."""
        match = _TOPIC.fullmatch(standard_topic)
        assert match is not None, standard_topic
        domain, aggregate, major = match.groups()
        return f"spbe.{domain}.{aggregate}t{self.tag}.v{major}"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ledger(self) -> LedgerStore:
        return LedgerStore.from_url(self.ledger_url, LEDGER_SECRET.encode())

    def settings(self) -> dict[str, Any]:
        """The ``gateway:`` section of this test's gateway file."""
        standard = load_standard()
        settings: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap,
            "catalog": str(self.catalog),
            "port": self.port,
            "tls_certificate": str(self.certificate.certificate),
            "tls_key": str(self.certificate.key),
            "clients": [
                {"id": client, "secret_hash": hash_client_secret(secret)}
                for client, secret in CLIENT_SECRETS.items()
            ],
            "token_key": TOKEN_KEY,
            "key_secrets": {"DISDUKCAPIL": DUKCAPIL_KEY_SECRET},
            "database_url": self.database_url,
            "ledger_url": self.ledger_url,
            "ledger_secret": LEDGER_SECRET,
            "registry_topic": self.registry_topic,
            "group_id": f"spbe-gateway-{self.tag}",
            "topic_overrides": {
                name: self.topic(str(schema.topic)) for name, schema in standard.items()
            },
        }
        if self.security is not None:
            settings["security"] = self.security.model_dump(mode="json")
        settings.update(self.overrides)
        return settings

    def config(self) -> GatewayConfig:
        return GatewayConfig.model_validate(self.settings())

    def client(self) -> httpx.AsyncClient:
        """An HTTPS client of this gateway that trusts the test's CA."""
        trust = ssl.create_default_context(cafile=str(self.ca_file))
        return httpx.AsyncClient(base_url=self.url, verify=trust, timeout=30.0)

    async def token(self, http: httpx.AsyncClient, client: str, scope: str | None = None) -> str:
        form = {"grant_type": "client_credentials"}
        if scope is not None:
            form["scope"] = scope
        answer = await http.post("/oauth/token", data=form, auth=(client, CLIENT_SECRETS[client]))
        assert answer.status_code == 200, answer.text
        token: str = answer.json()["access_token"]
        return token


async def wait_until_healthy(scene: GatewayScene, watch: asyncio.Task[Any] | None = None) -> None:
    """Wait until ``/healthz`` answers 200 (or fail with what ``watch`` raised)."""
    async with scene.client() as http:
        for _ in range(600):
            if watch is not None and watch.done():
                watch.result()
                raise AssertionError("the gateway stopped before it was healthy")
            try:
                if (await http.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("the gateway did not become healthy within 60 s")


@asynccontextmanager
async def running_gateway(scene: GatewayScene) -> AsyncIterator[Gateway]:
    """The scene's gateway, started in this process and serving until the block ends."""
    async with Gateway(scene.config()) as gateway:
        serving = asyncio.create_task(gateway.run())
        try:
            await wait_until_healthy(scene, serving)
            yield gateway
        finally:
            gateway.request_stop()
            await serving
