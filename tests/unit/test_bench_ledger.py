"""The bench's ledger step: its synthetic residents, its figures, its goal and report rows."""

from __future__ import annotations

from typing import Any

from bench.cli import FULL
from bench.ledger import APPEND_BATCH, figures, synthetic_nik
from bench.report import GOALS, evaluate, markdown
from bus.contract.refcodes import RefCode, problem

GOAL = "who-received with 1,000,000 deliveries <= 1 s (p99)"


def measured() -> dict[str, Any]:
    times = [float(t) for t in range(1, 201)]  # 1 ms .. 200 ms
    return {
        "entries": 1_000_000,
        "subjects": 200_000,
        "subscribers": 12,
        "fill_s": 9.5,
        "who_received": figures(times, [5] * 200),
        "who_received_30_days": figures([t / 2 for t in times], [1] * 200),
        "append": {"batch": APPEND_BATCH, "entries": 50_000, "entries_per_s": 40_000.0},
    }


def test_the_synthetic_residents_have_distinct_valid_niks() -> None:
    indexes = {*range(0, 300_000, 7), 9998, 9999, 279_971, 279_972, 3_359_664}
    niks = [synthetic_nik(i) for i in indexes]
    assert len(set(niks)) == len(niks)
    assert not [n for n in niks if problem(RefCode.NIK, n)]


def test_the_figures_are_percentiles_of_the_query_times() -> None:
    got = figures([1.0, 2.0, 3.0, 4.0, 100.0], [1, 2, 3, 4, 5])
    assert got == {
        "queries": 5,
        "p50_ms": 3.0,
        "p99_ms": 96.16,
        "max_ms": 100.0,
        "mean_entries": 3.0,
    }


def test_a_full_run_times_who_received_with_a_million_deliveries() -> None:
    assert FULL.ledger_entries == 1_000_000
    assert FULL.ledger_subjects == 200_000


def test_the_goal_reads_the_p99_and_is_met_up_to_one_second() -> None:
    judged = {j["goal"]: j for j in evaluate({"ledger": measured()})}
    assert judged[GOAL]["measured"] == measured()["who_received"]["p99_ms"]
    assert judged[GOAL]["verdict"] == "met"
    slow = measured()
    slow["who_received"]["p99_ms"] = 1000.5
    assert {j["goal"]: j for j in evaluate({"ledger": slow})}[GOAL]["verdict"] == "missed"
    assert [g.path for g in GOALS if g.path[0] == "ledger"] == [
        ("ledger", "who_received", "p99_ms")
    ]


def test_the_report_has_a_row_per_query_kind_and_the_append_rate() -> None:
    results = {"started": "2026-12-01T21:00:00+00:00", "mode": "quick", "ledger": measured()}
    results["goals"] = evaluate(results)
    text = markdown(results)
    assert "Delivery ledger: 1,000,000 deliveries (quick mode" in text
    assert "| every entry | 200 | 5.00 | 100 | 198 | 200 |" in text
    assert "| a 30-day window | 200 | 1.00 |" in text
    assert "batches of 500, 40,000 entries/s" in text
    assert f"| {GOAL} | 198 | met |" in text
