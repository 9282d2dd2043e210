"""The results as files: ``<date>.json`` (every figure), ``<date>.md`` (tables), ``<date>.png``.

Each goal is reported as met or missed with the measured number,
never asserted. A figure with no goal (``target`` ``None``) is listed with the goals as
"reported (no goal)".

Why this module is longer than 400 lines: the goals and the table of every step are
written in one place, so that a goal and the rows it reads are changed together and the
Markdown's layout stays one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "GOALS",
    "README_END",
    "README_START",
    "REPORTED",
    "Goal",
    "evaluate",
    "markdown",
    "update_readme",
    "write_report",
]

#: The verdict of a figure without a goal.
REPORTED = "reported (no goal)"

#: The README block a full run replaces with its tables.
README_START = "<!-- bench:start (written by a full make bench run) -->"
README_END = "<!-- bench:end -->"


@dataclass(frozen=True, slots=True)
class Goal:
    name: str
    path: tuple[str, ...]
    #: ``None``: a figure the report lists with the goals, to be read, not judged.
    target: float | None
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
        if self.target is None:
            return judged | {"measured": value, "verdict": REPORTED}
        met = value <= self.target if self.at_most else value >= self.target
        return judged | {"measured": value, "verdict": "met" if met else "missed"}


GOALS = (
    Goal("publisher >= 0.8 x raw aiokafka send", ("publish", "ratio_bus_raw", "median"), 0.8),
    Goal("subscriber >= 0.8 x raw aiokafka getmany", ("consume", "ratio_bus_raw", "median"), 0.8),
    Goal(
        "outbox → Kafka → SQL sink >= 5,000 events/s sustained",
        ("end_to_end", "sustained", "median"),
        5000,
        unit="events/s",
    ),
    Goal(
        "p99 outbox commit → sink commit <= 100 ms at 1,000 events/s",
        ("end_to_end", "latency", "p99_ms"),
        100,
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
        "RSS of the replaying subscriber <= 300 MiB",
        ("replay", "subscriber_peak_rss_mib"),
        300,
        at_most=True,
        unit="MiB",
    ),
    Goal(
        "codec encode >= 0.9 x fastavro (worst event type)",
        ("codec_summary", "encode_ratio_min"),
        0.9,
    ),
    Goal(
        "codec decode >= 0.95 x fastavro (worst event type)",
        ("codec_summary", "decode_ratio_min"),
        0.95,
    ),
    Goal(
        "our relay >= 1.0 x Debezium outbox connector",
        ("peers", "backlog", "ratio_relay_debezium", "median"),
        1.0,
    ),
    Goal(
        "snapshot >= 20,000 rows/s from PostgreSQL into Kafka",
        ("snapshot", "rows_per_s"),
        20000,
        unit="rows/s",
    ),
    Goal(
        "relay with a big backlog >= 0.9 x with 1,000 rows",
        ("relay_backlog", "ratio_big_small", "median"),
        0.9,
    ),
    Goal(
        "who-received with 1,000,000 deliveries <= 1 s (p99)",
        ("ledger", "who_received", "p99_ms"),
        1000,
        at_most=True,
        unit="ms",
    ),
    Goal(
        "contract service events in >= 0.8 x plain subscriber",
        ("contract_service", "ratio_in_plain", "median"),
        0.8,
    ),
    Goal(
        "gateway POST >= 2,000 events/s acknowledged (202)",
        ("gateway", "post", "events_per_s"),
        2000,
        unit="events/s",
    ),
    Goal(
        "gateway GET p99 <= 20 ms at 500 requests/s",
        ("gateway", "get", "p99_ms"),
        20,
        at_most=True,
        unit="ms",
    ),
    Goal(
        "gateway: load generator ceiling, GET /healthz requests/s",
        ("gateway", "ceiling", "per_s"),
        None,
    ),
    Goal(
        "security cost: publish secured / plaintext",
        ("security_cost", "publish", "ratio_secured_plaintext", "median"),
        None,
    ),
    Goal(
        "security cost: consume secured / plaintext",
        ("security_cost", "consume", "ratio_secured_plaintext", "median"),
        None,
    ),
)


def evaluate(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [goal.judge(results) for goal in GOALS]


def _n(value: float) -> str:
    return f"{value:,.2f}" if abs(value) < 10 else f"{value:,.0f}"


def _mib(value: float | None) -> str:
    return "not measured" if value is None else f"{value:,.0f} MiB"


def _row(name: str, figure: dict[str, Any] | None) -> str:
    if not figure:
        return f"| {name} | not measured | | |"
    return f"| {name} | {_n(figure['median'])} | {_n(figure['min'])} | {_n(figure['max'])} |"


def _latency_row(name: str, figure: dict[str, Any] | None) -> str:
    if not figure:
        return f"| {name} | not measured | | | | | |"
    return (
        f"| {name} | {figure['events']:,} | {_n(figure['p50_ms'])} | {_n(figure['p95_ms'])} | "
        f"{_n(figure['p99_ms'])} | {_n(figure['max_ms'])} | {figure['not_arrived']:,} |"
    )


def _peers(peers: dict[str, Any] | None) -> list[str]:
    """The ``--peers`` tables: Debezium's outbox connector beside our relay, the JDBC sink."""
    if not peers:
        return []
    versions, backlog = peers.get("versions", {}), peers.get("backlog", {})
    relay, debezium = backlog.get("relay", {}), backlog.get("debezium", {})
    lines = [
        "",
        f"Peers: Kafka Connect {versions.get('kafka-connect')} standalone with Debezium "
        f"{versions.get('debezium')} (PostgreSQL connector, pgoutput, outbox EventRouter), "
        "on the same broker and database as our relay. Debezium: "
        f"{peers.get('settings', {}).get('debezium')}; our relay: "
        f"{peers.get('settings', {}).get('relay')}.",
        "",
        f"| outbox → Kafka, backlog of {backlog.get('rows', 0):,} rows (rows/s, start to last "
        "record) | median | min | max |",
        "|---|---:|---:|---:|",
        _row("outbox → Kafka: our relay", relay.get("rows_per_s")),
        _row("outbox → Kafka: Debezium outbox connector", debezium.get("rows_per_s")),
        _row("outbox → Kafka: ratio our relay / Debezium", backlog.get("ratio_relay_debezium")),
        _row("first to last record: our relay", relay.get("steady_rows_per_s")),
        _row("first to last record: Debezium outbox connector", debezium.get("steady_rows_per_s")),
    ]
    latency = peers.get("latency") or {}
    if latency:
        lines += [
            "",
            f"| commit → Kafka append at {latency['target_per_s']:,} rows/s for "
            f"{latency['seconds']:g} s | rows | p50 ms | p95 ms | p99 ms | max ms | not arrived |",
            "|---|---:|---:|---:|---:|---:|---:|",
            _latency_row("our relay", latency.get("relay")),
            _latency_row("Debezium outbox connector", latency.get("debezium")),
        ]
        if "debezium_tuned" in latency:
            tuned = ", ".join(f"{k} {v}" for k, v in latency["debezium_tuned_settings"].items())
            lines.append(
                _latency_row(f"Debezium outbox connector, {tuned}", latency["debezium_tuned"])
            )
    sink = peers.get("jdbc_sink")
    if sink:
        tried = "; ".join(t["outcome"] for t in sink["tried"])
        lines += [
            "",
            f"JDBC sink peer: not measured (tried from Maven Central: {tried}). Published "
            f"reference instead: {sink['reference']}.",
        ]
    return lines


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


def _ledger_lines(results: dict[str, Any]) -> list[str]:
    """who_received's query times on a big ledger, and the rate of appends."""
    figure = results.get("ledger") or {}
    if not figure:
        return []
    quick = " (quick mode: the full run has 1,000,000)" if results.get("mode") == "quick" else ""
    lines = [
        "",
        f"Delivery ledger: {figure['entries']:,} deliveries{quick} of {figure['subjects']:,} "
        f"residents to {figure['subscribers']} subscribers in PostgreSQL (filled by COPY in "
        f"{figure['fill_s']:,.1f} s); LedgerStore.who_received timed for random residents, "
        "NIK check, HMAC, query and summary included.",
        "",
        "| ledger who-received (ms) | queries | entries per answer | p50 | p99 | max |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, key in (("every entry", "who_received"), ("a 30-day window", "who_received_30_days")):
        q = figure.get(key)
        if q:
            lines.append(
                f"| {name} | {q['queries']:,} | {_n(q['mean_entries'])} | {_n(q['p50_ms'])} | "
                f"{_n(q['p99_ms'])} | {_n(q['max_ms'])} |"
            )
    append = figure.get("append")
    if append:
        lines += [
            "",
            f"Ledger append (the write before each delivery): {append['entries']:,} entries in "
            f"batches of {append['batch']:,}, {_n(append['entries_per_s'])} entries/s.",
        ]
    return lines


def _contract_lines(results: dict[str, Any]) -> list[str]:
    """The contract service's events/s in and out beside the plain subscriber's."""
    figure = results.get("contract_service") or {}
    if not figure:
        return []
    subscriptions = ", ".join(figure["subscriptions"])
    return [
        "",
        f"Contract service: {figure['events_per_round']:,} PendudukUpdated on a raw topic of "
        f"{figure['partitions']} partitions, read per round first by the bus Subscriber "
        "(no-op handler, new group), then by the ContractService (new group, its defaults: "
        f"idempotent acks=all producer, a ledger of its own in {figure['ledger']}) with the "
        f"catalogue's subscriptions on spbe.dukcapil.penduduk.v1 active that day "
        f"({subscriptions}; {figure['records_per_event']} projected records per event). "
        "The service's clock runs from its first fetched batch until every event is "
        "committed (ledger entries written, projections acknowledged); each ratio is one "
        "round's service figure over the same round's subscriber figure.",
        "",
        "| contract service (events/s) | median | min | max |",
        "|---|---:|---:|---:|",
        _row("plain bus Subscriber (no-op handler): events in", figure["plain_subscriber"]),
        _row("ContractService: raw events in", figure["service_in"]),
        _row("ContractService: projected records out", figure["service_out"]),
        _row("ContractService: ratio events in / plain subscriber", figure["ratio_in_plain"]),
    ]


def _gateway_lines(results: dict[str, Any]) -> list[str]:
    """The gateway's POST events/s and GET latency, beside the load generator's ceiling."""
    g = results.get("gateway") or {}
    if not g:
        return []
    limit = g["rate_limit"]
    lines = [
        "",
        f"REST gateway: {g['server']}; broker {g['broker']}; {g['databases']}; rate limit "
        f"{limit['requests_per_s']:,.0f} requests/s per client (burst {limit['burst']:,}), "
        f"so no 429 caps a figure. Load generator: {g['generator']}, {g['connections']} "
        f"connections. The read model held {g['residents']:,} residents (filled through "
        "the projected topic before measuring). POST: closed loop, "
        f"{g['connections']} in flight, {g['posts']:,} UmkmTerdaftar; events/s = 202s per "
        "second from first send to last answer. GET: open loop at a fixed rate for "
        f"{g['get_seconds']:g} s, latency from each request's scheduled send time "
        "(no coordinated omission). CPU shares are of one core, over the phase.",
        "",
        "| gateway | requests | per s | p50 ms | p99 ms | max ms | generator CPU | gateway CPU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rows = (
        ("generator ceiling: GET /healthz, closed loop", g.get("ceiling"), "per_s"),
        ("GET /healthz, open loop", g.get("ceiling_open_loop"), "answered_per_s"),
        ("POST /api/v1/umkm with Idempotency-Key (202/s)", g.get("post"), "per_s"),
        ("POST /api/v1/umkm without Idempotency-Key (202/s)", g.get("post_without_key"), "per_s"),
        ("GET /api/v1/penduduk/{nik}, open loop (answered/s)", g.get("get"), "answered_per_s"),
    )
    for name, f, rate in rows:
        if not f:
            continue
        offered = f" at {f['target_per_s']:,.0f}/s" if "target_per_s" in f else ""
        lines.append(
            f"| {name}{offered} | {f['requests']:,} | {_n(f[rate])} | {_n(f['p50_ms'])} | "
            f"{_n(f['p99_ms'])} | {_n(f['max_ms'])} | {f['generator_cpu_share']:.0%} | "
            f"{_share(f.get('gateway_cpu_share'))} |"
        )
    return lines


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _security_cost(results: dict[str, Any]) -> list[str]:
    """The bus on a secured cluster next to plaintext: events/s of each, and the ratio."""
    cost = results.get("security_cost") or {}
    if not cost:
        return []
    pub, con = cost.get("publish") or {}, cost.get("consume") or {}
    events = ", ".join(
        f"{name} {figure['events_per_round']:,}"
        for name, figure in (("publish", pub), ("consume", con))
        if figure
    )
    return [
        "",
        f"Security cost: the same bus paths on a second, secured single-node cluster "
        f"({cost.get('shape')}), running only for this step, rounds interleaved with the "
        f"plaintext broker (events per round: {events or 'none measured'}). Each ratio is "
        "one round's secured figure over the same round's plaintext one, so their median "
        "is not the ratio of the medians.",
        "",
        "| Security cost (events/s, median of rounds) | median | min | max |",
        "|---|---:|---:|---:|",
        _row("publish plaintext: bus Publisher.publish_many", pub.get("plaintext")),
        _row("publish secured: bus Publisher.publish_many", pub.get("secured")),
        _row("publish: ratio secured / plaintext", pub.get("ratio_secured_plaintext")),
        _row("consume plaintext: bus Subscriber (no-op handler)", con.get("plaintext")),
        _row("consume secured: bus Subscriber (no-op handler)", con.get("secured")),
        _row("consume: ratio secured / plaintext", con.get("ratio_secured_plaintext")),
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
        _row("publish: raw aiokafka send", pub.get("raw_aiokafka")),
        _row("publish: raw aiokafka send_batch", pub.get("raw_aiokafka_batches")),
        _row("publish: bus Publisher.publish_many", pub.get("bus_publisher")),
        _row("publish: confluent-kafka Producer", pub.get("confluent_kafka")),
        _row("publish: ratio bus / raw aiokafka send", pub.get("ratio_bus_raw")),
        _row("publish: ratio bus / raw aiokafka send_batch", pub.get("ratio_bus_raw_batches")),
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
        if replay.get("subscriber_peak_rss_mib") is not None:
            lines.append(
                "| replay: peak RSS of the subscriber process, MiB | "
                f"{_n(replay['subscriber_peak_rss_mib'])} | | |"
            )
    snap = results.get("snapshot") or {}
    if snap:
        quick = " (--quick; a full run has 1,000,000)" if results.get("mode") == "quick" else ""
        lines.append(
            f"| snapshot of a {snap['rows']:,}-row register (PostgreSQL) into Kafka, rows/s"
            f"{quick}, 1 run | {_n(snap['rows_per_s'])} | | |"
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
    if snap:
        lines += [
            "",
            f"Snapshot: `spbe-bus snapshot` on the reference SIAK section (batches of "
            f"{snap['batch_size']:,}, {snap['partitions']} partitions) took "
            f"{snap['elapsed_s']:,.1f} s from first read to last acknowledgement "
            f"({snap['wall_s']:,.1f} s with start-up); "
            f"peak RSS of the snapshot process {_mib(snap.get('peak_rss_mib'))}; the register "
            f"was filled in {snap['fill_s']:,.1f} s.",
        ]
    lines += _ledger_lines(results)
    lines += _contract_lines(results)
    lines += _gateway_lines(results)
    lines += _security_cost(results)
    lines += _peers(results.get("peers"))
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


def update_readme(results: dict[str, Any], readme: Path) -> bool:
    """Put this run's tables between the README's bench markers; ``False`` if it has none."""
    text = readme.read_text(encoding="utf-8")
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        return False
    body = markdown(results).split("\n", 1)[1].strip()  # the tables, not the title
    block = f"{README_START}\nLatest full run ({results['started']}):\n\n{body}\n"
    readme.write_text(text[:start] + block + text[end:], encoding="utf-8")
    return True
