"""The gateway step's figures: where the goals read them, and how the load generator counts."""

from __future__ import annotations

import asyncio

from bench.gateway import figures
from bench.gateway_load import closed_loop, latency_figures, open_loop
from bench.report import GOALS, markdown


def _phase(**extra: float) -> dict[str, object]:
    return {
        "requests": 100,
        "p50_ms": 1.0,
        "p95_ms": 2.0,
        "p99_ms": 3.0,
        "max_ms": 4.0,
        "generator_cpu_share": 0.5,
        "gateway_cpu_share": 0.5,
        "statuses": {"200": 100},
        **extra,
    }


LOAD = {
    "ceiling": _phase(per_s=5000.0, concurrency=64),
    "ceiling_open_loop": _phase(target_per_s=500.0, answered_per_s=500.0),
    "post": _phase(per_s=2100.0, concurrency=64),
    "post_without_key": _phase(per_s=2500.0, concurrency=64),
    "get": _phase(target_per_s=500.0, answered_per_s=500.0),
}


def test_every_gateway_goal_reads_a_figure_the_step_writes() -> None:
    results = {"gateway": figures(LOAD, posts=100, seconds=1.0, fill_s=2.0)}
    gateway_goals = [g for g in GOALS if g.path[0] == "gateway"]
    assert len(gateway_goals) == 3
    judged = {g.name: g.judge(results) for g in gateway_goals}
    assert all(j["measured"] is not None for j in judged.values()), judged
    verdicts = {j["verdict"] for j in judged.values()}
    assert verdicts == {"met", "reported (no goal)"}


def test_the_report_has_a_row_per_gateway_phase_with_the_generator_ceiling_first() -> None:
    results = {
        "started": "2026-12-02T00:00:00+00:00",
        "mode": "only gateway (quick)",
        "gateway": figures(LOAD, posts=100, seconds=1.0, fill_s=2.0),
    }
    text = markdown(results)
    rows = [line for line in text.splitlines() if line.startswith("| generator ceiling")]
    assert rows
    assert "| 5,000 |" in rows[0]
    assert "GET /api/v1/penduduk/{nik}, open loop (answered/s) at 500/s" in text
    assert "rate limit 1,000,000 requests/s per client" in text


def test_latency_percentiles_are_nearest_rank_in_milliseconds() -> None:
    figures_ms = latency_figures([n / 1000 for n in range(100, 0, -1)])
    assert figures_ms == {"p50_ms": 50.0, "p95_ms": 95.0, "p99_ms": 99.0, "max_ms": 100.0}
    assert latency_figures([]) == {}


def test_the_closed_loop_keeps_exactly_its_concurrency_in_flight() -> None:
    in_flight = 0
    most = 0

    async def send(_: int) -> tuple[int, bytes]:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0)
        in_flight -= 1
        return 202, b""

    figure = asyncio.run(closed_loop(send, 50, 8, 202))
    assert most == 8
    assert figure["statuses"] == {"202": 50}
    assert figure["requests"] == 50


def test_the_open_loop_sends_on_schedule_without_waiting_for_answers() -> None:
    """No answer comes until every request was sent: a loop that waited would never end."""
    total = 40
    started = 0
    everyone_sent = asyncio.Event()

    async def send(_: int) -> tuple[int, bytes]:
        nonlocal started
        started += 1
        if started == total:
            everyone_sent.set()
        await everyone_sent.wait()
        return 200, b""

    async def run() -> dict[str, object]:
        return await asyncio.wait_for(open_loop(send, 4000.0, total / 4000.0, 200), 60)

    figure = asyncio.run(run())
    assert figure["requests"] == total
    assert figure["statuses"] == {"200": total}


def test_refused_and_failed_requests_are_counted_but_not_timed() -> None:
    async def send(index: int) -> tuple[int, bytes]:
        if index % 2:
            raise ConnectionError("the gateway closed the connection")
        return 503, b""

    figure = asyncio.run(closed_loop(send, 10, 2, 202))
    assert figure["statuses"] == {"0": 5, "503": 5}
    assert figure["per_s"] == 0.0
