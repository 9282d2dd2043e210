"""A full benchmark run replaces exactly the README's marked block with its tables."""

from __future__ import annotations

from pathlib import Path

from bench.report import README_END, README_START, evaluate, update_readme

RESULTS = {
    "started": "2026-12-01T17:00:00+00:00",
    "mode": "full",
    "machine": {"cores": 2, "versions": {}},
    "publish": {
        "raw_aiokafka": {"median": 30000.0, "min": 29000.0, "max": 31000.0},
        "ratio_bus_raw": {"median": 0.9, "min": 0.8, "max": 1.0},
    },
}


def test_the_marked_block_is_replaced_and_the_rest_is_kept(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n{README_START}\nold table\n{README_END}\n\nafter\n")
    results = {**RESULTS, "goals": evaluate(RESULTS)}
    assert update_readme(results, readme)
    text = readme.read_text()
    assert text.startswith("# Title\n\nbefore\n")
    assert text.endswith(f"{README_END}\n\nafter\n")
    assert "old table" not in text
    assert "| publish: raw aiokafka send | 30,000 | 29,000 | 31,000 |" in text
    assert "| publisher >= 0.8 x raw aiokafka send | 0.90 | met |" in text
    assert "Latest full run (2026-12-01T17:00:00+00:00)" in text


def test_a_readme_without_the_markers_is_left_alone(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# Title\n")
    assert not update_readme(RESULTS, readme)
    assert readme.read_text() == "# Title\n"


def test_the_projects_readme_has_the_markers() -> None:
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert text.index(README_START) < text.index(README_END)


def test_every_goal_reads_a_figure_the_latest_full_run_has() -> None:
    import json

    from bench.report import GOALS

    results_dir = Path(__file__).resolve().parents[2] / "bench" / "results"
    runs = sorted(results_dir.glob("*.json"))
    full = [r for r in runs if json.loads(r.read_text()).get("mode", "").startswith("full")]
    assert full, "a full run's results are committed"
    latest = json.loads(full[-1].read_text())
    # A figure without a goal is checked once a full run has its section (until then
    # tests/unit/test_bench_security_cost.py checks its path against what the bench writes).
    # A step newer than the latest full run is checked once a full run has its section
    # (until then its own unit test checks its path against what it writes).
    newer: set[str] = {"gateway"}
    judged = [
        g for g in GOALS if g.path[0] in latest or (g.target is not None and g.path[0] not in newer)
    ]
    missing = [g.name for g in judged if g.judge(latest)["measured"] is None]
    assert not missing, f"goals whose path the report does not hold: {missing}"
