"""The bench's contract service step: its subscriptions, its figures, its goal and report rows."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from bench.cli import FULL, QUICK, STEPS, _parse, run_mode
from bench.contracts import CATALOG_TOPIC, EVENT_TYPE, ServiceRound, figures, subscriptions_on
from bench.report import GOALS, evaluate, markdown
from bench.workload import penduduk_events
from bus.contract.refcodes import RefCode, problem
from bus.ops.catalog import load_catalog

GOAL = "contract service events in >= 0.8 x plain subscriber"
TOPIC = "spbe.bench1a2b3c4d.penduduk.v1"
NAMES = ["dpmptsp-penduduk", "dinsos-penduduk"]


def measured() -> dict[str, Any]:
    return figures(
        [20000.0, 25000.0, 24000.0],
        [
            ServiceRound(consumed=5000, produced=20000, seconds=0.5),  # 10,000 in
            ServiceRound(consumed=5000, produced=20000, seconds=0.25),  # 20,000 in
            ServiceRound(consumed=5000, produced=20000, seconds=0.3125),  # 16,000 in
        ],
        events=5000,
        subscriptions=NAMES,
        records_per_event=4,
    )


def test_each_round_pairs_the_service_with_the_subscriber_of_that_round() -> None:
    got = measured()
    assert got["events_per_round"] == 5000
    assert got["records_per_event"] == 4
    assert got["subscriptions"] == NAMES
    assert got["plain_subscriber"]["median"] == 24000.0
    assert got["service_in"]["rounds"] == [10000.0, 20000.0, 16000.0]
    assert got["service_out"]["rounds"] == [40000.0, 80000.0, 64000.0]
    ratios = got["ratio_in_plain"]
    assert ratios["rounds"] == [0.5, 0.8, 0.6667]
    assert (ratios["median"], ratios["min"], ratios["max"]) == (
        pytest.approx(2 / 3),
        0.5,
        0.8,
    )


def test_a_failed_round_drops_out_of_both_sides() -> None:
    got = figures(
        [20000.0, None, 24000.0],
        [ServiceRound(5000, 20000, 0.5), ServiceRound(5000, 20000, 0.5), None],
        events=5000,
        subscriptions=NAMES,
        records_per_event=4,
    )
    assert got["plain_subscriber"]["rounds"] == [20000.0]
    assert got["ratio_in_plain"]["rounds"] == [0.5]
    assert figures([None], [None], events=1, subscriptions=NAMES, records_per_event=1) == {}


def test_a_round_timed_at_zero_seconds_rates_zero_not_a_division_error() -> None:
    assert ServiceRound(10, 40, 0.0).in_per_s == 0.0
    assert ServiceRound(10, 40, 0.0).out_per_s == 0.0


def test_the_catalogues_penduduk_subscriptions_active_that_day_read_the_bench_topic() -> None:
    catalog, _ = load_catalog(today=date(2026, 12, 1))
    on_topic = [s for s in catalog.subscriptions if CATALOG_TOPIC in s.topics]
    got = subscriptions_on(catalog.subscriptions, CATALOG_TOPIC, TOPIC, date(2026, 12, 1))
    assert [s.subscriber for s in got] == [s.subscriber for s in on_topic]
    assert all(s.topics == (TOPIC,) for s in got)
    assert sum(1 for s in got if EVENT_TYPE in s.allowed_fields) >= 3
    # A subscription past its expires day is left out, as the service would deliver it nothing.
    dinkes = next(s for s in on_topic if s.subscriber == "dinkes-penduduk")
    last_day = subscriptions_on(catalog.subscriptions, CATALOG_TOPIC, TOPIC, dinkes.expires)
    assert "dinkes-penduduk" in [s.subscriber for s in last_day]
    after = date.fromordinal(dinkes.expires.toordinal() + 1)
    expired = subscriptions_on(catalog.subscriptions, CATALOG_TOPIC, TOPIC, after)
    assert "dinkes-penduduk" not in [s.subscriber for s in expired]
    assert all(after <= s.expires for s in expired)


def test_the_workload_has_one_resident_with_a_valid_nik_per_event() -> None:
    events = penduduk_events(9990, 20)
    niks = [e.nik for e in events]
    assert len(set(niks)) == 20
    assert not [n for n in niks if problem(RefCode.NIK, n)]


def test_full_and_quick_runs_size_the_step_and_only_runs_the_named_steps() -> None:
    assert (FULL.contract_events, QUICK.contract_events) == (20_000, 5_000)
    assert "contract-service" in STEPS
    args = _parse(["--only", "contract-service", "--contract-events", "2000"])
    assert args.only == ["contract-service"]
    assert args.contract_events == 2000
    with pytest.raises(SystemExit):
        _parse(["--only", "no-such-step"])
    # A run of some steps is never taken for a full run (the README's figures come from one).
    assert run_mode(quick=False, peers=False, only=[]) == "full"
    assert run_mode(quick=False, peers=True, only=[]) == "full with peers"
    only = run_mode(quick=False, peers=False, only=["contract-service", "ledger"])
    assert only == "only contract-service, ledger (full)"
    assert not only.startswith("full")


def test_the_goal_reads_the_median_ratio_of_events_in() -> None:
    judged = {j["goal"]: j for j in evaluate({"contract_service": measured()})}
    assert judged[GOAL]["measured"] == pytest.approx(2 / 3)
    assert judged[GOAL]["verdict"] == "missed"
    fast = measured()
    fast["ratio_in_plain"]["median"] = 0.8
    assert {j["goal"]: j for j in evaluate({"contract_service": fast})}[GOAL]["verdict"] == "met"
    assert [g.path for g in GOALS if g.path[0] == "contract_service"] == [
        ("contract_service", "ratio_in_plain", "median")
    ]


def test_the_report_has_the_service_rows_and_names_the_subscriptions() -> None:
    results = {"started": "2026-12-01T22:00:00+00:00", "mode": "full"}
    text = markdown({**results, "contract_service": measured()})
    assert "| ContractService: raw events in | 16,000 | 10,000 | 20,000 |" in text
    assert "| ContractService: projected records out | 64,000 | 40,000 | 80,000 |" in text
    assert "| plain bus Subscriber (no-op handler): events in | 24,000 | 20,000 | 25,000 |" in text
    assert "| ContractService: ratio events in / plain subscriber | 0.67 | 0.50 | 0.80 |" in text
    assert "dpmptsp-penduduk, dinsos-penduduk; 4 projected records per event" in text
    assert "ContractService" not in markdown(results)
