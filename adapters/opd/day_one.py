"""Day one in the demo: the residents SIAK already held reach DPMPTSP's replica by a snapshot.

SIAK is seeded with residents that have no outbox rows, as a register has before it
joins the bus. The snapshot in ``deploy/adapters/disdukcapil-outbox-relay.yaml`` publishes
them; then some of them move house (live changes through the outbox). DPMPTSP's replica
ends with every one of them at the version SIAK holds: snapshot events and live changes
meet at the sink's version guard, whatever order they arrive in.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from adapters.kinds import OutboxRelayFile
from adapters.opd.disdukcapil import siak
from adapters.sources.snapshot import Snapshot
from bus.contract.events import PendudukUpdated
from bus.contract.standard import example
from bus.logs import get_logger

__all__ = ["DayOne", "legacy_residents", "play_day_one"]

log = get_logger(__name__)

_NAMES = (
    "Dewi Lestari",
    "Rina Marlina",
    "Sri Wahyuni",
    "Nur Aini",
    "Putri Ayu Lestari",
    "Ratna Sari",
    "Yuni Kartika",
    "Wulan Dari",
    "Indah Permatasari",
    "Fitri Handayani",
)
#: How many of them move house after the snapshot.
MOVERS = 3


@dataclass(frozen=True)
class DayOne:
    """What the day-one step did, and whether the replica caught up."""

    residents: int
    published: int
    live_changes: int
    at_latest_version: int
    arrived: bool
    latency_ms: float | None


def legacy_residents(count: int) -> list[tuple[PendudukUpdated, int]]:
    """``count`` residents at versions 1 to 3 (NIK serials from 0101: never Siti's 0003)."""
    base = example("PendudukUpdated")
    residents = []
    for i in range(count):
        data = {**base, "nik": f"327302570890{101 + i:04d}", "nama_lengkap": _NAMES[i % 10]}
        residents.append((PendudukUpdated.from_json(data), 1 + i % 3))
    return residents


def _versions(engine: Engine, sql: str) -> dict[str, int]:
    try:
        with engine.connect() as conn:
            return {str(nik): int(v) for nik, v in conn.execute(sa.text(sql)) if v is not None}
    except (sa.exc.OperationalError, sa.exc.ProgrammingError):  # no replica table yet
        return {}


def _at_latest(register: Engine, replica: Engine, niks: set[str]) -> int:
    held = _versions(register, "SELECT nik, versi FROM penduduk")
    copied = _versions(replica, "SELECT nik, spbe_sequence FROM penduduk_replika")
    return sum(1 for nik in niks if nik in copied and copied[nik] == held.get(nik))


async def play_day_one(
    relay_file: OutboxRelayFile,
    register: Engine,
    replica: Engine,
    residents: list[tuple[PendudukUpdated, int]],
    *,
    timeout_s: float,
) -> DayOne:
    """Snapshot SIAK's register, move a few residents, wait for the replica to hold all."""
    assert relay_file.snapshot is not None
    started = time.perf_counter()
    async with Snapshot(relay_file.relay, relay_file.snapshot) as snapshot:
        summary = await snapshot.run()
    new_home = {"jalan": "Jl. Tubagus Ismail No. 7", "rt": "001", "rw": "003"}
    new_home |= {"kode_wilayah": "32.73.02.1003", "kode_pos": "40134"}
    for penduduk, _ in residents[:MOVERS]:
        await asyncio.to_thread(
            siak.pindah_alamat, register, penduduk.nik, new_home, date(2026, 11, 27)
        )
    niks = {p.nik for p, _ in residents}
    deadline = started + timeout_s
    at_latest = 0
    while time.perf_counter() < deadline:
        at_latest = await asyncio.to_thread(_at_latest, register, replica, niks)
        if at_latest == len(niks):
            latency = round((time.perf_counter() - started) * 1000, 1)
            log.info("story.day_one_arrived", residents=len(niks), latency_ms=latency)
            return DayOne(len(niks), summary.published, MOVERS, at_latest, True, latency)
        await asyncio.sleep(0.05)
    return DayOne(len(niks), summary.published, MOVERS, at_latest, False, None)
