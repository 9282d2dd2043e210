"""A gateway deployed as a service runs: on the secured broker, provisioned by ``catalog apply``.

The scene's catalogue (tests.support.gateway) is provisioned with the real ``spbe-bus
catalog apply`` (topics, the standard in ``_spbe.schemas``, users, ACLs, hand-over files);
the contract service (``spbe-bus run``, principal ``spbe-contracts``) projects the raw
events the stewards publish with their own hand-over credentials; the gateway runs as a
process (``spbe-bus run``, principal ``spbe-gateway``) whose JSON log lines are kept in
files. The single test broker needs a replication factor of 1, so the scene's catalogue is
rewritten with it; DINKOPUKM gets a narrow penduduk subscription so one documented client
(token, POST UMKM, GET resident) runs against one API client.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

from bus.connection import KafkaConnection, KafkaSecurity, read_credentials_file
from bus.ops.access import rotate_password
from bus.ops.audit import AuditLog
from tests.support.gateway import LEDGER_SECRET, GatewayScene

__all__ = [
    "DINKOPUKM_PENDUDUK_FIELDS",
    "PAIRWISE_SECRET",
    "GatewayProcess",
    "connection_of",
    "handover_file_of",
    "provision_scene",
    "single_broker_catalogue",
    "start_process",
    "wait_for",
    "write_contract_file",
    "write_gateway_file",
]

PENDUDUK = "id.go.spbe.dukcapil.PendudukUpdated.v1"
PAIRWISE_SECRET = "pairwise-secret-of-the-gateway-acceptance-0123"
#: What DINKOPUKM may read of a resident: enough to check an UMKM owner's identity.
DINKOPUKM_PENDUDUK_FIELDS = ["nik", "nama_lengkap", "alamat.kode_wilayah"]
REPO = Path(__file__).resolve().parents[2]


def single_broker_catalogue(scene: GatewayScene) -> None:
    """Rewrite the scene's catalogue for one broker, with DINKOPUKM reading residents."""
    data = yaml.safe_load(scene.catalog.read_text(encoding="utf-8"))
    for topic in data["topics"]:
        topic["replication_factor"] = 1
        topic["min_insync_replicas"] = 1
    raw = scene.topic("spbe.dukcapil.penduduk.v1")
    data["subscriptions"].append(
        {
            "subscriber": "dinkopukm-penduduk",
            "opd": "DINKOPUKM",
            "topics": [raw],
            "purpose": "Verifikasi identitas pemilik UMKM yang mendaftar.",
            "legal_basis": "PKS 470/1101/DISDUKCAPIL/2026 - 500/PKS.07/DINKOPUKM/2026",
            "allowed_fields": {PENDUDUK: DINKOPUKM_PENDUDUK_FIELDS},
            "expires": "2030-12-31",
        }
    )
    for client in data["api_clients"]:
        if client["client"] == "dinkopukm-siumkm":
            client["subscriptions"] = [*client.get("subscriptions", []), "dinkopukm-penduduk"]
    scene.catalog.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def connection_of(path: Path) -> KafkaConnection:
    """The connection a hand-over file describes, as an adapter reads it."""
    return KafkaConnection(
        bootstrap_servers=read_credentials_file(path)["bootstrap"],
        security=KafkaSecurity(credentials_file=path),
    )


async def handover_file_of(operator: KafkaConnection, handover: Path, principal: str) -> Path:
    """``principal``'s hand-over file: the one apply wrote, else a rotation's (the user was
    made by an earlier apply on this session's broker)."""
    path = handover / f"{principal}.json"
    if not path.exists():
        async with AuditLog(operator) as audit:
            path = await rotate_password(operator, principal, handover_dir=handover, audit=audit)
    return path


def provision_scene(operator: KafkaConnection, scene: GatewayScene, handover: Path) -> str:
    """``spbe-bus catalog apply`` of the scene's catalogue as the operator; what it printed."""
    credentials = operator.security.credentials_file
    assert credentials is not None, "the secured broker's operator has a credentials file"
    argv = [
        "catalog",
        "apply",
        "--catalog",
        str(scene.catalog),
        "--credentials",
        str(credentials),
        "--handover-dir",
        str(handover),
        "--reason",
        "gateway acceptance",
    ]
    done = subprocess.run(
        [sys.executable, "-m", "bus.cli.main", *argv],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=_environment(),
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, (
        f"catalog apply exited {done.returncode}:\n{done.stdout}{done.stderr}"
    )
    return done.stdout


def _environment() -> dict[str, str]:
    """This process's environment without SPBE_* settings: the files alone say what runs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPBE_")}
    env["PYTHONPATH"] = str(REPO)
    return env


def write_contract_file(scene: GatewayScene, credentials: Path) -> Path:
    """The contract service's adapter file (deploy/adapters/contracts.yaml, for this scene)."""
    path = scene.folder / "contracts.yaml"
    contracts = {
        "bootstrap_servers": scene.bootstrap,
        "security": {"credentials_file": str(credentials)},
        "catalog": str(scene.catalog),
        "pairwise_secret": PAIRWISE_SECRET,
        "ledger_secret": LEDGER_SECRET,
        "ledger_url": scene.ledger_url,
    }
    path.write_text(yaml.safe_dump({"kind": "contract-service", "contracts": contracts}))
    return path


def write_gateway_file(
    scene: GatewayScene, credentials: Path, name: str = "gateway.yaml", **overrides: Any
) -> Path:
    """The gateway's file (deploy/adapters/gateway.yaml, for this scene) as principal
    spbe-gateway: its group and the cluster's registry are the ones its ACLs name."""
    settings = scene.settings()
    settings.pop("registry_topic", None)
    settings.pop("group_id", None)
    settings["security"] = {"credentials_file": str(credentials)}
    settings.update(overrides)
    path = scene.folder / name
    path.write_text(yaml.safe_dump({"kind": "gateway", "gateway": settings}))
    return path


@dataclass
class GatewayProcess:
    """One ``spbe-bus run FILE`` process; its stdout and stderr in files."""

    name: str
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path
    exit_code: int | None = field(default=None)

    def output(self) -> str:
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")

    def log_lines(self) -> list[dict[str, Any]]:
        """Every JSON line it wrote (stdout and stderr)."""
        found = []
        for line in self.output().splitlines():
            if line.startswith("{"):
                try:
                    found.append(json.loads(line))
                except ValueError:
                    continue
        return found

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> int:
        """SIGTERM by its PID; its exit code (killed after two minutes: -9)."""
        if self.exit_code is not None:
            return self.exit_code
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.exit_code = self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            self.exit_code = -9
        return self.exit_code


def start_process(name: str, adapter_file: Path, logs: Path) -> GatewayProcess:
    """``spbe-bus --log-json run FILE`` as a service runs it, logging JSON lines."""
    logs.mkdir(parents=True, exist_ok=True)
    stdout, stderr = logs / f"{name}.out", logs / f"{name}.err"
    out: IO[bytes] = stdout.open("wb")
    err: IO[bytes] = stderr.open("wb")
    try:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bus.cli.main",
                "--log-level",
                "INFO",
                "--log-json",
                "run",
                str(adapter_file),
            ],
            stdout=out,
            stderr=err,
            cwd=REPO,
            env=_environment(),
        )
    finally:
        out.close()
        err.close()
    return GatewayProcess(name, process, stdout, stderr)


async def wait_for(check: Any, what: str, *, timeout_s: float = 180.0, watch: Any = None) -> Any:
    """Poll the async ``check()`` until it returns a truthy value; that value.

    ``watch`` (a :class:`GatewayProcess`) failing ends the wait with its output."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        result = await check()
        if result:
            return result
        if watch is not None and not watch.running():
            raise AssertionError(f"{watch.name} exited before {what}:\n{watch.output()[-4000:]}")
        if loop.time() > deadline:
            raise AssertionError(f"not so within {timeout_s:g} s: {what}")
        await asyncio.sleep(0.5)
