"""Relay throughput against the size of its backlog: 1,000,000 pending rows vs 1,000.

Each backlog is a fresh outbox table in PostgreSQL, filled by one ``INSERT ... SELECT
generate_series`` with valid rows of the workload's event type (each row its own permit,
a UUIDv7 and a payload like :func:`bench.outbox_side.fill_outbox` writes), then
``ANALYZE``. A relay with the default settings runs in a process of its own and times
only its cycles (:meth:`OutboxRelay.run_once`), not the filling:

* small backlog: 1,000 rows are written and all published, again and again, until
  ``measured`` rows have been published;
* big backlog: ``backlog`` rows are written once, then the first ``measured`` of them are
  published (the backlog stays near its size throughout).

Each case first publishes 1,000 rows untimed (producer start, topic metadata). The
figure is rows/s for each and their ratio (goal: at least 0.9), plus the peak RSS of
the relay process of the big backlog (``getrusage``), and how much of it came after the
relay had started (a spawned process also imports the bench's own modules).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import queue
import resource
import time
import uuid
from dataclasses import asdict, dataclass
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from typing import Any

import sqlalchemy as sa

from adapters.db import create_engine
from adapters.sources.outbox import (
    OutboxRelay,
    OutboxRelayConfig,
    create_outbox_table,
    outbox_table,
)
from bench import workload
from bench.environment import create_topic
from bench.stats import Spread, spread
from bus.logs import configure_logging

__all__ = ["SMALL", "BacklogResult", "fill_backlog", "measure"]

_mp = multiprocessing.get_context("spawn")
#: Rows in the small backlog, and in each untimed warm-up.
SMALL = 1_000
_SERIAL = "@@serial@@"


def _payload_template() -> str:
    """The workload's event as stored JSON, with a marker where the permit's serial goes."""
    data = workload.event(1).to_json()
    data["nomor_izin"] = f"503/{_SERIAL}/PB-UMKU/DPMPTSP/2026"
    data["nama_usaha"] = f"Usaha Mikro Kecil Menengah Sejahtera Bersama {_SERIAL}"
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _fill_statement(table: str, first: int, count: int) -> sa.Insert:
    """``INSERT ... SELECT`` of rows ``first`` .. ``first + count - 1`` (PostgreSQL)."""
    g = sa.func.generate_series(first, first + count - 1, type_=sa.BigInteger).column_valued("g")
    serial = sa.func.lpad(sa.cast(g, sa.Text), 7, "0", type_=sa.String)
    # A UUIDv7 per row: 48 bits of this millisecond, version 7, variant 8, the row number.
    ts = f"{int(time.time() * 1000):012x}"
    r = sa.func.lpad(sa.func.to_hex(g, type_=sa.String), 18, "0", type_=sa.String)

    def part(start: int, length: int) -> sa.ColumnElement[str]:
        return sa.func.substr(r, start, length, type_=sa.String)

    event_id = (
        sa.literal(f"{ts[:8]}-{ts[8:]}-7") + part(1, 3) + "-8" + part(4, 3) + "-" + part(7, 12)
    )
    izin = sa.literal(f"503/{_SERIAL}/PB-UMKU/DPMPTSP/2026")
    rows = sa.select(
        event_id,
        sa.literal(workload.EVENT_NAME),
        sa.func.replace(izin, _SERIAL, serial, type_=sa.String),
        sa.literal(1),
        sa.func.replace(sa.literal(_payload_template()), _SERIAL, serial, type_=sa.String),
    )
    columns = ["event_id", "event_type", "aggregate_id", "sequence", "payload"]
    return outbox_table(table).insert().from_select(columns, rows)


def fill_backlog(database_url: str, table: str, first: int, count: int) -> None:
    """Write rows ``first`` .. ``first + count - 1`` into ``table`` in one statement."""
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(_fill_statement(table, first, count))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("ANALYZE " + conn.dialect.identifier_preparer.quote(table)))
    finally:
        engine.dispose()


async def _serve(config: OutboxRelayConfig, commands: Queue[Any], answers: Queue[Any]) -> None:
    async with OutboxRelay(config) as relay:
        answers.put(("ready", _peak_rss_kib()))
        while (wanted := await asyncio.to_thread(commands.get)) is not None:
            published, busy = 0, 0.0
            while published < wanted:
                began = time.perf_counter()
                cycle = await relay.run_once()
                busy += time.perf_counter() - began
                if cycle.claimed == 0:
                    break
                published += cycle.published
            answers.put((published, busy))
    answers.put(_peak_rss_kib())


def _peak_rss_kib() -> int:
    """The process's peak resident set size so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _relay(config: OutboxRelayConfig, commands: Queue[Any], answers: Queue[Any]) -> None:
    """The relay process: publish as many rows as each command asks, report the time."""
    configure_logging(json=True, level="WARNING")
    asyncio.run(_serve(config, commands, answers))


class _RelayProcess:
    def __init__(self, config: OutboxRelayConfig) -> None:
        self.commands: Queue[Any] = _mp.Queue()
        self.answers: Queue[Any] = _mp.Queue()
        self.process: BaseProcess = _mp.Process(
            target=_relay, args=(config, self.commands, self.answers)
        )
        self.started_rss_mib = 0.0

    def __enter__(self) -> _RelayProcess:
        self.process.start()
        ready, peak = self._answer(300)
        if ready != "ready":
            raise RuntimeError("the relay process did not start")
        # The peak once started (imports, the producer, the schemas), before any row.
        self.started_rss_mib = peak / 1024
        return self

    def _answer(self, timeout_s: float) -> Any:
        """The relay's next answer; fail at once if the process died meanwhile."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                return self.answers.get(True, 1)
            except queue.Empty:
                if not self.process.is_alive():
                    raise RuntimeError(
                        f"the relay process exited with code {self.process.exitcode}"
                    ) from None
        raise TimeoutError(f"the relay process did not answer within {timeout_s:.0f} s")

    def publish(self, rows: int) -> tuple[int, float]:
        """Publish ``rows`` rows (fewer if the table runs out); the count and the busy time."""
        self.commands.put(rows)
        published, busy = self._answer(1800)
        return int(published), float(busy)

    def peak_rss_mib(self) -> float:
        """Stop the relay; its peak resident set size."""
        self.commands.put(None)
        return float(self._answer(120)) / 1024

    def __exit__(self, *exc: object) -> None:
        self.process.join(60)
        if self.process.is_alive():
            self.process.terminate()


@dataclass(frozen=True, slots=True)
class BacklogResult:
    backlog: int
    measured_rows: int
    small_rows_per_s: Spread
    big_rows_per_s: Spread
    ratio_big_small: Spread
    #: The big backlog's relay process: its peak RSS, and how much of it came after start.
    big_relay_peak_rss_mib: float
    big_relay_rss_growth_mib: float
    fill_seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "small_rows_per_s": self.small_rows_per_s.as_dict(),
            "big_rows_per_s": self.big_rows_per_s.as_dict(),
            "ratio_big_small": self.ratio_big_small.as_dict(),
        }


def _case(bootstrap: str, database_url: str) -> tuple[str, OutboxRelayConfig]:
    """A new outbox table and topic, and the relay's config for them (default settings)."""
    tag = uuid.uuid4().hex[:8]
    table = f"backlog_{tag}"
    engine = create_engine(database_url)
    try:
        create_outbox_table(engine, table=table)
    finally:
        engine.dispose()
    topic = asyncio.run(create_topic(bootstrap, f"bench.backlog.{tag}", 4))
    config = OutboxRelayConfig(
        database_url=database_url,
        bootstrap_servers=bootstrap,
        source=workload.SOURCE,
        table=table,
        topic_overrides={workload.EVENT_NAME: topic},
        purge_interval_minutes=0,
    )
    return table, config


def _rate(runs: list[tuple[int, float]]) -> float:
    rows = sum(published for published, _ in runs)
    busy = sum(seconds for _, seconds in runs)
    return rows / busy if busy > 0 else 0.0


def measure(
    bootstrap: str, database_url: str, backlog: int, measured: int, rounds: int
) -> BacklogResult:
    """Rows/s of the relay publishing ``measured`` rows from each backlog, per round.

    Rounds alternate between the two backlogs, so a busy spell of the machine falls on
    both; the big backlog must hold ``rounds * measured + 1000`` rows.
    """
    small_table, small_config = _case(bootstrap, database_url)
    big_table, big_config = _case(bootstrap, database_url)
    try:
        return _measure(database_url, backlog, measured, rounds, small_config, big_config)
    finally:
        engine = create_engine(database_url)
        try:
            for table in (small_table, big_table):
                outbox_table(table).drop(engine, checkfirst=True)
        finally:
            engine.dispose()


def _measure(
    database_url: str,
    backlog: int,
    measured: int,
    rounds: int,
    small_config: OutboxRelayConfig,
    big_config: OutboxRelayConfig,
) -> BacklogResult:
    small_table, big_table = small_config.table, big_config.table
    began = time.monotonic()
    fill_backlog(database_url, big_table, 1, backlog)
    fill_seconds = time.monotonic() - began
    small_rates: list[float] = []
    big_rates: list[float] = []
    with _RelayProcess(small_config) as small, _RelayProcess(big_config) as big:
        fill_backlog(database_url, small_table, 1, SMALL)
        small.publish(SMALL)  # warm-up: producer start, topic metadata
        big.publish(SMALL)
        written = SMALL
        for _ in range(rounds):
            runs = []
            for _ in range(max(1, measured // SMALL)):
                fill_backlog(database_url, small_table, written + 1, SMALL)
                written += SMALL
                runs.append(small.publish(SMALL))
            small_rates.append(_rate(runs))
            big_rates.append(_rate([big.publish(measured)]))
        small.peak_rss_mib()
        peak = big.peak_rss_mib()
        growth = peak - big.started_rss_mib
    return BacklogResult(
        backlog=backlog,
        measured_rows=measured,
        small_rows_per_s=spread(small_rates),
        big_rows_per_s=spread(big_rates),
        ratio_big_small=spread([b / s for b, s in zip(big_rates, small_rates, strict=True)]),
        big_relay_peak_rss_mib=round(peak, 1),
        big_relay_rss_growth_mib=round(growth, 1),
        fill_seconds=round(fill_seconds, 1),
    )
