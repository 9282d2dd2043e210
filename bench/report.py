"""The results as files: ``<date>.json`` (every figure), ``<date>.md`` (tables), ``<date>.png``.

Goals come from issue 7; each is reported as met or missed with the measured number,
never asserted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["GOALS", "Goal", "evaluate", "markdown", "write_report"]


@dataclass(frozen=True, slots=True)
class Goal:
    name: str
    path: tuple[str, ...]
    target: float
    at_most: bool = False
    unit: str = ""

    def judge(self, results: dict[str, Any]) -> dict[str, Any]:
        value: Any = results
        for part in self.path:
            value = value.get(part) if isinstance(value, dict) else None
        if not isinstance(value, int | float):
            value = None
        judged = {"goal": self.name, "target": self.target, "at_most": self.at_most}
        if value is None:
            return judged | {"measured": None, "verdict": "not measured"}
        met = value <= self.target if self.at_most else value >= self.target
        return judged | {"measured": value, "verdict": "met" if met else "missed"}


GOALS = (
    Goal("publisher >= 0.8 x raw aiokafka", ("publish", "ratio_bus_raw", "median"), 0.8),
    Goal("subscriber >= 0.8 x raw aiokafka", ("consume", "ratio_bus_raw", "median"), 0.8),
    Goal(
        "end to end >= 5,000 events/s sustained",
        ("end_to_end", "sustained", "median"),
        5000,
        unit="events/s",
    ),
    Goal(
        "p99 <= 250 ms at 1,000 events/s",
        ("end_to_end", "latency", "p99_ms"),
        250,
        at_most=True,
        unit="ms",
    ),
    Goal(
        "replay >= 10,000 events/s into PostgreSQL",
        ("replay", "events_per_s"),
        10000,
        unit="events/s",
    ),
    Goal(
        "relay with a big backlog >= 0.9 x with 1,000 rows",
        ("relay_backlog", "ratio_big_small", "median"),
        0.9,
    ),
)


def evaluate(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [goal.judge(results) for goal in GOALS]


def _n(value: float) -> str:
    return f"{value:,.2f}" if abs(value) < 10 else f"{value:,.0f}"


def _row(name: str, figure: dict[str, Any] | None) -> str:
    if not figure:
        return f"| {name} | not measured | | |"
    return f"| {name} | {_n(figure['median'])} | {_n(figure['min'])} | {_n(figure['max'])} |"


def _backlog_lines(results: dict[str, Any]) -> list[str]:
    """The relay's rows/s from a big and a 1,000-row backlog, and their ratio."""
    figure = results.get("relay_backlog") or {}
    if not figure:
        return []
    big = f"{figure['backlog']:,}-row backlog"
    if results.get("mode") == "quick":
        big += " (quick mode: the full run uses 1,000,000)"
    each = f"{figure['measured_rows']:,} rows per round"
    return [
        _row(f"relay, {big}, {each}", figure["big_rows_per_s"]),
        _row(f"relay, 1,000-row backlog, {each}", figure["small_rows_per_s"]),
        _row("relay: ratio big / 1,000-row backlog", figure["ratio_big_small"]),
        f"| relay process peak RSS with the {figure['backlog']:,}-row backlog, MiB "
        f"(of it after start: {_n(figure['big_relay_rss_growth_mib'])}) | "
        f"{_n(figure['big_relay_peak_rss_mib'])} | | |",
    ]


def markdown(results: dict[str, Any]) -> str:
    m = results.get("machine", {})
    versions = m.get("versions", {})
    lines = [
        f"# Benchmark {results['started']} ({results['mode']})",
        "",
        f"{m.get('cores')} cores, {m.get('cpu_model')}, CPU steal during the run "
        f"{100 * (m.get('cpu_steal_share') or 0):.1f} %; Python {versions.get('python')}, "
        f"Kafka {versions.get('kafka')} (1 node), PostgreSQL {versions.get('postgresql')}, "
        f"aiokafka {versions.get('aiokafka')}, confluent-kafka {versions.get('confluent-kafka')}, "
        f"fastavro {versions.get('fastavro')}. Run took {results.get('duration_s')} s.",
        "",
        "| events/s (median of rounds) | median | min | max |",
        "|---|---:|---:|---:|",
    ]
    pub, con = results.get("publish", {}), results.get("consume", {})
    lines += [
        _row("publish: raw aiokafka", pub.get("raw_aiokafka")),
        _row("publish: bus Publisher.publish_many", pub.get("bus_publisher")),
        _row("publish: confluent-kafka Producer", pub.get("confluent_kafka")),
        _row("publish: ratio bus / raw aiokafka", pub.get("ratio_bus_raw")),
        _row("consume: raw aiokafka getmany", con.get("raw_aiokafka")),
        _row("consume: bus Subscriber (no-op handler)", con.get("bus_subscriber")),
        _row("consume: ratio bus / raw aiokafka", con.get("ratio_bus_raw")),
        _row(
            "end to end: outbox → relay → Kafka → SQL sink",
            results.get("end_to_end", {}).get("sustained"),
        ),
    ]
    replay = results.get("replay", {})
    if replay:
        value = _n(replay["events_per_s"])
        lines.append(
            f"| replay into PostgreSQL ({replay['applied']:,} of {replay['events']:,} events "
            f"applied within {replay['cap_s']:.0f} s, 1 run) | {value} | | |"
        )
    lines += _backlog_lines(results)
    latency = results.get("end_to_end", {}).get("latency")
    if latency:
        lines += [
            "",
            f"Latency outbox commit → sink commit at {_n(latency['offered_per_s'])} events/s "
            f"offered ({latency['events']:,} events): p50 {_n(latency['p50_ms'])} ms, "
            f"p95 {_n(latency['p95_ms'])} ms, p99 {_n(latency['p99_ms'])} ms, "
            f"max {_n(latency['max_ms'])} ms; {latency['not_arrived']:,} events had not "
            "arrived when waiting ended (then the percentiles are lower bounds).",
        ]
    codec = results.get("codec") or {}
    if codec:
        lines += [
            "",
            "| codec (per second, median) | value bytes | bus encode | fastavro encode | ratio "
            "| bus decode | fastavro decode | ratio |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name, f in codec.items():
            lines.append(
                f"| {name} | {f['value_bytes']} | {_n(f['bus_encode']['median'])} | "
                f"{_n(f['fastavro_encode']['median'])} | {_n(f['encode_ratio']['median'])} | "
                f"{_n(f['bus_decode']['median'])} | {_n(f['fastavro_decode']['median'])} | "
                f"{_n(f['decode_ratio']['median'])} |"
            )
    lines += ["", "| goal | measured | verdict |", "|---|---:|---|"]
    for judged in results.get("goals", []):
        measured = "—" if judged["measured"] is None else _n(judged["measured"])
        lines.append(f"| {judged['goal']} | {measured} | {judged['verdict']} |")
    for path, profile in (results.get("profiles") or {}).items():
        lines += ["", f"Profile of the {path} path ({profile['html']}), most self time:", ""]
        lines += [f"- {p['share']:.0%} {p['function']}" for p in profile["top_self"][:6]]
    if results.get("errors"):
        lines += ["", "Steps that failed:", ""]
        lines += [f"- {step}: {error}" for step, error in results["errors"].items()]
    return "\n".join(lines) + "\n"


def write_report(results: dict[str, Any], out: Path, stem: str) -> list[Path]:
    """Write the JSON, the Markdown and the chart; return their paths."""
    results["goals"] = evaluate(results)
    json_path = out / f"{stem}.json"
    json_path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    md_path = out / f"{stem}.md"
    md_path.write_text(markdown(results))
    written = [json_path, md_path]
    try:
        from bench.chart import draw

        written.append(draw(results, out / f"{stem}.png"))
    except ImportError as exc:
        results.setdefault("errors", {})["chart"] = str(exc)
    return written
