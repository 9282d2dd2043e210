"""The demo story: three OPDs, one citizen, data captured once and propagated everywhere.

0. Day one (:mod:`adapters.opd.day_one`): SIAK already holds residents no outbox row
   announces; the snapshot publishes them, some move house, and DPMPTSP's replica ends
   with every one at its latest version.
1. Disdukcapil registers Siti; DPMPTSP's resident replica gets her.
2. Siti moves house at Disdukcapil; DPMPTSP's replica shows the new address.
3. DPMPTSP issues Siti's warung a permit; Bapenda sees a new potential taxpayer.
4. Bapenda records a tax payment; the event reaches Kafka for BPKAD and DPMPTSP.

Every subscriber of a restricted topic reads its projection, written by the contract
service (:mod:`adapters.opd.contract_scene`): DPMPTSP's replica holds only the columns
its contract allows, Dinsos's register gets No. KK. Then the REST gateway runs
(:mod:`adapters.opd.api_scene`): DinkopUKM's application posts an UMKM over HTTPS, and
DPMPTSP's reads the resident within its contract. The story ends with the ledger's answer
to who received the resident's data, the gateway's read among them.

The adapters are the ones in ``deploy/adapters``, loaded from their files exactly as
``spbe-bus run`` would, each OPD with a database of its own.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from adapters.db import create_engine
from adapters.kinds import GatewayFile, OutboxRelayFile
from adapters.opd.api_scene import (
    GATEWAY_FILE,
    ApiView,
    api_read_recorded,
    play_api_scene,
    prepare_gateway,
)
from adapters.opd.bapenda import sipd
from adapters.opd.contract_scene import (
    ContractView,
    demo_topics,
    prepare_ledger,
    table_columns,
    who_received,
)
from adapters.opd.databases import GATEWAY, LEDGER, OPDS, database_urls
from adapters.opd.day_one import DayOne, legacy_residents, play_day_one
from adapters.opd.disdukcapil import siak
from adapters.opd.dpmptsp import sicantik
from adapters.opd.secured_scene import Refusal, grant_demo_access, try_what_dinkes_may_not
from adapters.runner import load_adapter, run_adapter
from bus.connection import KafkaConnection, as_connection
from bus.contract.events import IzinDiterbitkan, PajakDaerahDibayar, PendudukUpdated
from bus.contract.standard import example
from bus.logs import get_logger
from bus.ops.catalog import default_catalog_path, load_catalog
from bus.topics import ensure_topics

__all__ = ["OPDS", "Arrival", "StoryResult", "database_urls", "play_story"]

log = get_logger(__name__)

ADAPTER_FILES = (
    "disdukcapil-outbox-relay.yaml",
    "dpmptsp-outbox-relay.yaml",
    "contracts.yaml",
    "dpmptsp-penduduk-sink.yaml",
    "dinsos-penduduk-sink.yaml",
    "bapenda-izin-sink.yaml",
    "bapenda-outbox-relay.yaml",
    GATEWAY_FILE,  # started once the projections are delivered
)
#: Residents SIAK holds before it joins the bus (published by the day-one snapshot).
LEGACY_RESIDENTS = 20
# Demo only: a real steward keeps its key secret in a vault.
DEMO_KEY_SECRET = "demo-disdukcapil-secret-not-for-production"  # noqa: S105 - demo data
DEMO_PAIRWISE_SECRET = "demo-contracts-pairwise-secret-not-for-production"  # noqa: S105
DEMO_LEDGER_SECRET = "demo-ledger-secret-not-for-production"  # noqa: S105 - demo data
DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy" / "adapters"


@dataclass(frozen=True)
class Arrival:
    """One change: where it was captured, where it had to arrive, and whether it did."""

    step: str
    event: str
    steward: str
    subscriber: str
    arrived: bool
    latency_ms: float | None


@dataclass(frozen=True)
class StoryResult:
    arrivals: tuple[Arrival, ...]
    day_one: DayOne | None = None
    #: How the adapters connected: ``SASL_SSL``, each as its own principal, or plaintext.
    security: str = "PLAINTEXT"
    refusals: tuple[Refusal, ...] = ()
    contracts: ContractView | None = None
    api: ApiView | None = None

    @property
    def secured(self) -> bool:
        return self.security != "PLAINTEXT"

    @property
    def ok(self) -> bool:
        day_one_ok = self.day_one is None or self.day_one.arrived
        refused = all(r.refused for r in self.refusals)
        contracts_ok = self.contracts is None or self.contracts.ok
        api_ok = self.api is None or (
            self.api.ok
            and self.contracts is not None
            and api_read_recorded(self.contracts.who_received)
        )
        arrived = all(a.arrived for a in self.arrivals)
        return day_one_ok and refused and contracts_ok and api_ok and arrived

    def as_json(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "ok": self.ok,
            "secured": self.secured,
            "security": self.security,
            "arrivals": [asdict(a) for a in self.arrivals],
        }
        if self.day_one is not None:
            result["snapshot"] = asdict(self.day_one)
        if self.refusals:
            result["refusals"] = [asdict(r) for r in self.refusals]
        if self.contracts is not None:
            result["contracts"] = asdict(self.contracts)
        if self.api is not None:
            result["api"] = self.api.as_json()
        return result


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


async def _arrival(
    step: str,
    event: str,
    steward: str,
    subscriber: str,
    act: Callable[[], object],
    arrived: Callable[[], bool],
    timeout_s: float,
) -> Arrival:
    started = time.perf_counter()
    await asyncio.to_thread(act)
    deadline = started + timeout_s
    while time.perf_counter() < deadline:
        if await asyncio.to_thread(arrived):
            latency = (time.perf_counter() - started) * 1000
            log.info("story.arrived", step=step, latency_ms=round(latency, 1))
            return Arrival(step, event, steward, subscriber, True, round(latency, 1))
        await asyncio.sleep(0.02)
    return Arrival(step, event, steward, subscriber, False, None)


def _scalar(engine: Engine, sql: str, **params: object) -> Any:
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()
    except sa.exc.OperationalError:  # the sink has not created its table yet
        return None
    except sa.exc.ProgrammingError:
        return None


async def play_story(
    kafka: KafkaConnection | str,
    urls: dict[str, str],
    *,
    handover_dir: Path | None = None,
    gateway_dir: Path | None = None,
    ca_dir: Path | None = None,
    timeout_s: float = 120.0,
) -> StoryResult:
    """Run the OPD adapters, play the four steps, and report where each change arrived.

    On a secured cluster ``kafka`` is the operator's connection: it grants access from
    the catalogue (hand-over files in ``handover_dir``), every adapter then runs as its
    own principal, and the story ends with the attempts the brokers must refuse. The
    gateway's certificate is issued into ``gateway_dir`` from the local CA in ``ca_dir``
    (the cluster's ``<data dir>/tls``; without it, a CA of its own).
    """
    connection = as_connection(kafka)
    secured = connection.security.sasl
    engines = {opd: create_engine(urls[opd]) for opd in OPDS}
    siak.create_tables(engines["disdukcapil"])
    sicantik.create_tables(engines["dpmptsp"])
    sipd.create_tables(engines["bapenda"])
    legacy = legacy_residents(LEGACY_RESIDENTS)
    siak.impor_penduduk(engines["disdukcapil"], legacy)
    catalog, _ = load_catalog(default_catalog_path())
    await ensure_topics(connection, demo_topics(catalog, date.today()))
    prepare_ledger(urls[LEDGER])

    env = {
        "SPBE_KAFKA_BOOTSTRAP": connection.bootstrap_servers,
        "DISDUKCAPIL_DB_URL": urls["disdukcapil"],
        "DPMPTSP_DB_URL": urls["dpmptsp"],
        "BAPENDA_DB_URL": urls["bapenda"],
        "DINSOS_DB_URL": urls["dinsos"],
        "SPBE_LEDGER_URL": urls[LEDGER],
        "SPBE_LEDGER_SECRET": DEMO_LEDGER_SECRET,
        "SPBE_CONTRACTS_PAIRWISE_SECRET": DEMO_PAIRWISE_SECRET,
        "DISDUKCAPIL_KEY_SECRET": os.environ.get("DISDUKCAPIL_KEY_SECRET", DEMO_KEY_SECRET),
        "SPBE_CREATE_TABLES": "true",
    }
    gateway_setup = prepare_gateway(gateway_dir or Path("gateway"), ca_dir, urls[GATEWAY])
    env.update(gateway_setup.env)
    if secured:
        handover = handover_dir or Path("handover")
        env.update(await grant_demo_access(connection, handover))
    with _environment(env):
        adapters = [load_adapter(DEPLOY_DIR / name) for name in ADAPTER_FILES]
    gateway = adapters.pop()
    assert isinstance(gateway, GatewayFile)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(run_adapter(a, stop=stop)) for a in adapters]
    run_id = time.strftime("%H%M%S")
    siti = PendudukUpdated.from_json(example("PendudukUpdated"))
    izin_data = example("IzinDiterbitkan")
    izin_data["nomor_izin"] = f"503/{run_id}/PB-UMKU/DPMPTSP/2026"
    izin = IzinDiterbitkan.from_json(izin_data)
    bayar_data = example("PajakDaerahDibayar")
    bayar_data["ntpd"] = f"3273{run_id}0000000001"
    bayar = PajakDaerahDibayar.from_json(bayar_data)
    new_home = {
        "jalan": "Jl. Dipatiukur No. 12",
        "rt": "002",
        "rw": "005",
        "kode_wilayah": "32.73.02.1002",
        "kode_pos": "40132",
    }
    replica, wp, dtsen = engines["dpmptsp"], engines["bapenda"], engines["dinsos"]
    arrivals: list[Arrival] = []
    day_one: DayOne | None = None
    api: ApiView | None = None
    try:
        relay_file = adapters[0]
        assert isinstance(relay_file, OutboxRelayFile)
        day_one = await play_day_one(
            relay_file, engines["disdukcapil"], replica, legacy, timeout_s=timeout_s
        )
        arrivals.append(
            await _arrival(
                "Disdukcapil registers a resident",
                "PendudukUpdated",
                "Disdukcapil",
                "DPMPTSP penduduk_replika",
                lambda: siak.daftarkan(engines["disdukcapil"], siti),
                lambda: (
                    _scalar(
                        replica, "SELECT COUNT(*) FROM penduduk_replika WHERE nik = :n", n=siti.nik
                    )
                    == 1
                ),
                timeout_s,
            )
        )
        arrivals.append(
            await _arrival(
                "Dinsos's register gets her, with No. KK",
                "PendudukUpdated",
                "Disdukcapil",
                "Dinsos penduduk_dtsen",
                lambda: None,
                lambda: (
                    _scalar(dtsen, "SELECT no_kk FROM penduduk_dtsen WHERE nik = :n", n=siti.nik)
                    == siti.no_kk
                ),
                timeout_s,
            )
        )
        arrivals.append(
            await _arrival(
                "She moves house",
                "PendudukUpdated",
                "Disdukcapil",
                "DPMPTSP penduduk_replika",
                lambda: siak.pindah_alamat(
                    engines["disdukcapil"], siti.nik, new_home, date(2026, 11, 28)
                ),
                lambda: (
                    _scalar(
                        replica, "SELECT jalan FROM penduduk_replika WHERE nik = :n", n=siti.nik
                    )
                    == new_home["jalan"]
                ),
                timeout_s,
            )
        )
        arrivals.append(
            await _arrival(
                "DPMPTSP issues her warung a permit",
                "IzinDiterbitkan",
                "DPMPTSP",
                "Bapenda wajib_pajak_potensial",
                lambda: sicantik.terbitkan_izin(engines["dpmptsp"], izin),
                lambda: (
                    _scalar(
                        wp,
                        "SELECT COUNT(*) FROM wajib_pajak_potensial WHERE nomor_izin = :n",
                        n=izin.nomor_izin,
                    )
                    == 1
                ),
                timeout_s,
            )
        )
        arrivals.append(
            await _arrival(
                "Bapenda records a tax payment",
                "PajakDaerahDibayar",
                "Bapenda",
                "topic spbe.bapenda.pajak.v1",
                lambda: sipd.catat_pembayaran(engines["bapenda"], bayar),
                lambda: (
                    _scalar(
                        wp,
                        "SELECT COUNT(*) FROM spbe_outbox WHERE event_type = "
                        "'PajakDaerahDibayar' AND published_at IS NOT NULL",
                    )
                    == 1
                ),
                timeout_s,
            )
        )
        tasks.append(asyncio.create_task(run_adapter(gateway, stop=stop)))
        api = await play_api_scene(
            gateway_setup, tasks[-1], connection, catalog, siti.nik, timeout_s=timeout_s
        )
    finally:
        stop.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    try:
        if failures:
            raise failures[0]
        contracts = ContractView(
            dpmptsp_columns=table_columns(replica, "penduduk_replika"),
            dinsos_columns=table_columns(dtsen, "penduduk_dtsen"),
            who_received=who_received(urls[LEDGER], DEMO_LEDGER_SECRET.encode(), siti.nik),
        )
    finally:
        for engine in engines.values():
            engine.dispose()
    refusals: list[Refusal] = []
    if secured:
        refusals = await try_what_dinkes_may_not(
            connection, handover, key_secret=env["DISDUKCAPIL_KEY_SECRET"]
        )
    return StoryResult(
        tuple(arrivals),
        day_one,
        security=connection.security.describe().split(" as ")[0],
        refusals=tuple(refusals),
        contracts=contracts,
        api=api,
    )
