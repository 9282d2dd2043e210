"""REST gateway: POST events/s acknowledged and GET p50/p99 at a fixed rate, over HTTPS.

The gateway runs as a service runs: ``spbe-bus run gateway.yaml`` in a process of its
own (``python -m bus.cli.main --log-level INFO --log-json run``, its JSON lines appended
to the run's service log), with the settings of deploy/adapters/gateway.yaml: HTTPS
(a certificate from a CA made for the step), OAuth client credentials and bearer tokens,
the audit trail on ``_spbe.audit``, the delivery ledger and the read models in
PostgreSQL (one database of the bench's server, ``fsync=on``), on the bench's plaintext
broker (as every step but ``security-cost``). Its catalogue is deploy/catalog.yaml with
the topics renamed for the step (:class:`tests.support.gateway.GatewayScene`). Only the
rate limit differs from the reference file: :data:`RATE_LIMIT` per client, so no 429
caps the figures.

Before measuring, :data:`RESIDENTS` PendudukUpdated are produced on DPMPTSP's projected
topic, as the contract service produces them (projected fields, contract headers, the
projected schema registered), and the step waits until the gateway's group has
committed all of them: its read model holds every resident. The load generator
(:mod:`bench.gateway_load`) is another process; its own ceiling (``GET /healthz``,
same connections and concurrency) is reported beside the figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from aiokafka import AIOKafkaProducer

from adapters.db import create_engine
from adapters.ledger import create_ledger_table
from bench.environment import SERVICE_LOG_ENV, create_topic
from bench.ledger import create_database, drop_database
from bus.contract import codec
from bus.contract.contract_headers import DeliveryContract, to_contract_headers
from bus.contract.envelope import DataClassification, Envelope, to_headers
from bus.contract.projection import project, projected_topic
from bus.contract.standard import example
from bus.registry import SchemaRegistry
from tests.support.events import SOURCE_DUKCAPIL, penduduk
from tests.support.gateway import CLIENT_SECRETS, GatewayScene
from tests.support.kafka import committed_offsets
from tests.support.projected import catalog_subscription, projection

__all__ = [
    "CONCURRENCY",
    "GET_RATE",
    "PARTITIONS",
    "RATE_LIMIT",
    "READER",
    "RESIDENTS",
    "WRITER",
    "figures",
    "measure",
]

#: Partitions of the posted events' topic and of the projected topic, as other steps'.
PARTITIONS = 4
#: Residents in the read model before GETs start.
RESIDENTS = 1_000
#: Requests per second of the GET phase (the goal's rate).
GET_RATE = 500
#: Posts in flight, and the generator's connections (keep-alive).
CONCURRENCY = 64
#: Each client's rate limit in the step: far above what the machine serves.
RATE_LIMIT = {"requests_per_s": 1_000_000.0, "burst": 1_000_000}
#: The steward application that posts (UmkmTerdaftar), and the subscriber that reads.
WRITER = "dinkopukm-siumkm"
READER = "dpmptsp-sicantik"
_SUBSCRIPTION = "dpmptsp-penduduk"
_PENDUDUK = "id.go.spbe.dukcapil.PendudukUpdated.v1"
_READY_CAP_S = 180.0


async def _fill_read_model(scene: GatewayScene, count: int) -> list[str]:
    """``count`` projected PendudukUpdated on DPMPTSP's projected topic; their NIKs."""
    raw = scene.topic("spbe.dukcapil.penduduk.v1")
    topic = await create_topic(scene.bootstrap, projected_topic(raw, _SUBSCRIPTION), PARTITIONS)
    projected = projection("PendudukUpdated", _SUBSCRIPTION)
    async with SchemaRegistry(scene.bootstrap, topic=scene.registry_topic) as registry:
        await registry.register(projected.schema, subject=f"{_PENDUDUK}.for.{_SUBSCRIPTION}")
    sub = catalog_subscription(_SUBSCRIPTION)
    contract = to_contract_headers(DeliveryContract(_SUBSCRIPTION, sub.purpose, sub.legal_basis))
    producer = AIOKafkaProducer(bootstrap_servers=scene.bootstrap, acks="all")
    await producer.start()
    niks = []
    try:
        sent = []
        for serial in range(1, count + 1):
            resident = penduduk(serial)
            envelope = Envelope(
                source=SOURCE_DUKCAPIL,
                type=_PENDUDUK,
                steward="DISDUKCAPIL",
                partitionkey=f"pairwise-key-{serial:06d}-of-the-bench-0123456789",
                dataclassification=DataClassification.RESTRICTED,
                sequence=1,
            )
            value = codec.encode(projected.schema, project(resident.avro_datum(), projected))
            key = f"pairwise-{serial:06d}".encode()
            headers = to_headers(envelope) + contract
            sent.append(await producer.send(topic, value, key=key, headers=headers))
            niks.append(resident.nik)
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
    return niks


async def _wait_until_followed(scene: GatewayScene, group: str, count: int) -> float:
    """Seconds until ``group`` has committed ``count`` records of the projected topic."""
    started = time.monotonic()
    while time.monotonic() - started < _READY_CAP_S:
        committed = await committed_offsets(scene.bootstrap, group)
        if sum(committed.values()) >= count:
            return time.monotonic() - started
        await asyncio.sleep(0.5)
    raise RuntimeError(f"the gateway's read model did not take {count} residents in time")


def _start_gateway(scene: GatewayScene, folder: Path) -> subprocess.Popen[bytes]:
    path = folder / "gateway.yaml"
    path.write_text(yaml.safe_dump({"kind": "gateway", "gateway": scene.settings()}))
    log_path = os.environ.get(SERVICE_LOG_ENV)
    log = open(log_path, "ab") if log_path else None  # noqa: SIM115 - the child keeps it
    command = [sys.executable, "-m", "bus.cli.main", "--log-level", "INFO", "--log-json"]
    command += ["run", str(path)]
    try:
        return subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log
        )
    finally:
        if log is not None:
            log.close()


async def _wait_until_healthy(scene: GatewayScene, process: subprocess.Popen[bytes]) -> None:
    async with scene.client() as http:
        for _ in range(int(_READY_CAP_S * 10)):
            if process.poll() is not None:
                raise RuntimeError(f"the gateway exited {process.returncode} before it served")
            with contextlib.suppress(httpx.TransportError):  # not listening yet
                if (await http.get("/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError("the gateway did not answer /healthz in time")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _generate(plan: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Run :mod:`bench.gateway_load` on ``plan``; its figures."""
    path = folder / "plan.json"
    path.write_text(json.dumps(plan))
    done = subprocess.run(
        [sys.executable, "-m", "bench.gateway_load", str(path)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"the load generator exited {done.returncode}: {done.stderr.decode()[-2000:]}"
        )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def figures(load: dict[str, Any], *, posts: int, seconds: float, fill_s: float) -> dict[str, Any]:
    """The report's ``gateway`` section from the generator's figures."""
    return {
        "server": "spbe-bus run gateway.yaml, own process, uvicorn, HTTPS, INFO JSON logs",
        "broker": "plaintext (the bench's local broker)",
        "databases": "PostgreSQL (read models, idempotency keys, ledger; fsync on)",
        "rate_limit": dict(RATE_LIMIT),
        "generator": "own process, asyncio + h11, HTTP/1.1 keep-alive over TLS",
        "connections": CONCURRENCY,
        "residents": RESIDENTS,
        "read_model_fill_s": round(fill_s, 2),
        "posts": posts,
        "get_seconds": seconds,
        "ceiling": load["ceiling"],
        "ceiling_open_loop": load["ceiling_open_loop"],
        "post": {"events_per_s": load["post"]["per_s"], **load["post"]},
        "post_without_key": {
            "events_per_s": load["post_without_key"]["per_s"],
            **load["post_without_key"],
        },
        "get": load["get"],
    }


def measure(kafka: str, server_url: str, *, posts: int, seconds: float) -> dict[str, Any]:
    """Start the gateway, fill its read model, run the generator; the figures."""
    url = create_database(server_url, "bench_gateway")
    try:
        with tempfile.TemporaryDirectory(prefix="spbe-bench-gateway-") as tmp:
            folder = Path(tmp)
            scene = GatewayScene(
                folder,
                kafka,
                overrides={"database_url": url, "ledger_url": url, "rate_limit": RATE_LIMIT},
            )
            engine = create_engine(url)
            try:
                create_ledger_table(engine)
            finally:
                engine.dispose()
            asyncio.run(create_topic(kafka, scene.topic("spbe.dinkopukm.umkm.v1"), PARTITIONS))
            started = time.monotonic()
            niks = asyncio.run(_fill_read_model(scene, RESIDENTS))
            process = _start_gateway(scene, folder)
            try:
                asyncio.run(_wait_until_healthy(scene, process))
                asyncio.run(_wait_until_followed(scene, scene.settings()["group_id"], RESIDENTS))
                fill_s = time.monotonic() - started
                plan = {
                    "url": scene.url,
                    "ca_file": str(scene.ca_file),
                    "gateway_pid": process.pid,
                    "connections": CONCURRENCY,
                    "concurrency": CONCURRENCY,
                    "posts": posts,
                    "get_rate": GET_RATE,
                    "get_seconds": seconds,
                    "poster": WRITER,
                    "poster_secret": CLIENT_SECRETS[WRITER],
                    "reader": READER,
                    "reader_secret": CLIENT_SECRETS[READER],
                    "umkm": example("UmkmTerdaftar"),
                    "niks": niks,
                }
                load = _generate(plan, folder)
            finally:
                _stop(process)
    finally:
        drop_database(server_url, url)
    return figures(load, posts=posts, seconds=seconds, fill_s=fill_s)
