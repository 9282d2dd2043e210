"""``python -m bench [--quick] [--peers] [--only STEP ...]``: the measurements, then the report.

Without ``--only`` every step runs (``--peers`` adds the peers); ``--only`` runs the
named steps alone, into results of their own (``<date>-only-<steps>``) that never
rewrite a full run's files or the README.

Why this module is longer than 400 lines: it is the run's one script, a short function
per step that sizes it, times it and files its figures, next to the sizes of both run
modes; split, a step's sizes, call and results would sit in different files.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from bench import (
    backlog,
    codec,
    consume,
    contracts,
    endtoend,
    gateway,
    ledger,
    peer_steps,
    profiles,
    publish,
    replay,
    security_cost,
    snapshot,
    workload,
)
from bench.environment import (
    SERVICE_LOG_ENV,
    Services,
    cpu_times,
    create_topic,
    machine,
    service_log_lines,
    service_logging,
    services,
)
from bench.report import update_readme, write_report
from bench.stats import spread
from bus.connection import KafkaConnection

T = TypeVar("T")

#: Where results go; a full run into it also refreshes the README's table.
DEFAULT_OUT = Path(__file__).parent / "results"

__all__ = ["STEPS", "Sizes", "main", "run_mode"]

#: The steps ``--only`` can name, in the order a run takes them.
STEPS = (
    "codec",
    "publish-consume",
    "security-cost",
    "profiles",
    "end-to-end",
    "replay",
    "snapshot",
    "relay-backlog",
    "ledger",
    "contract-service",
    "gateway",
    "peers",
)


@dataclass(frozen=True, slots=True)
class Sizes:
    rounds: int
    publish_events: int
    consume_events: int
    e2e_events: int
    latency_rate: int
    latency_seconds: float
    replay_events: int
    codec_iterations: int
    profile_events: int
    #: --peers: outbox rows waiting for each contender, then the offered load and its length.
    peer_backlog: int
    peer_rate: int
    peer_seconds: float
    snapshot_rows: int
    #: Rows in the relay's big backlog, and rows timed per round from each backlog.
    backlog_rows: int
    backlog_measured: int
    #: Deliveries in the ledger who-received is timed on, and the residents they are of.
    ledger_entries: int
    ledger_subjects: int
    #: PendudukUpdated events the contract service and the plain subscriber read per round.
    contract_events: int
    #: Events the gateway's POST phase sends, and the seconds of its GETs at 500/s.
    gateway_posts: int
    gateway_seconds: float
    chunk: int = 1000


FULL = Sizes(
    rounds=3,
    publish_events=20_000,
    consume_events=20_000,
    e2e_events=20_000,
    latency_rate=1_000,
    latency_seconds=30.0,
    replay_events=1_000_000,
    codec_iterations=3_000,
    profile_events=10_000,
    peer_backlog=20_000,
    peer_rate=1_000,
    peer_seconds=20.0,
    snapshot_rows=1_000_000,
    backlog_rows=1_000_000,
    backlog_measured=20_000,
    ledger_entries=1_000_000,
    ledger_subjects=200_000,
    contract_events=20_000,
    gateway_posts=20_000,
    gateway_seconds=30.0,
)
QUICK = Sizes(
    rounds=3,
    publish_events=5_000,
    consume_events=5_000,
    e2e_events=1_000,
    latency_rate=1_000,
    latency_seconds=10.0,
    replay_events=10_000,
    codec_iterations=500,
    profile_events=3_000,
    peer_backlog=5_000,
    peer_rate=1_000,
    peer_seconds=10.0,
    snapshot_rows=100_000,
    backlog_rows=100_000,
    backlog_measured=5_000,
    ledger_entries=100_000,
    ledger_subjects=20_000,
    contract_events=5_000,
    gateway_posts=5_000,
    gateway_seconds=10.0,
)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (about 3 minutes)")
    parser.add_argument("--rounds", type=int, help="rounds per figure (default 3)")
    parser.add_argument(
        "--peers",
        action="store_true",
        help="also run Debezium's outbox connector (Kafka Connect) beside our relay",
    )
    parser.add_argument(
        "--replay-events", type=int, help="events in the replay topic (default 1000000)"
    )
    parser.add_argument(
        "--snapshot-rows",
        type=int,
        help="rows in the register the snapshot publishes (default 1000000; --quick 100000)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=STEPS,
        metavar="STEP",
        help=f"run only these steps ({', '.join(STEPS)}); never rewrites the README",
    )
    parser.add_argument(
        "--contract-events",
        type=int,
        help="events the contract service reads per round (default 20000; --quick 5000)",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results folder")
    return parser.parse_args(argv)


def _step(name: str, errors: dict[str, str], func: Callable[[], T]) -> T | None:
    print(f"[bench] {name} ...", file=sys.stderr, flush=True)
    started = time.monotonic()
    try:
        result = func()
    except Exception as exc:
        errors[name] = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
        return None
    print(f"[bench] {name} done in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    return result


def _publish_and_consume(
    bootstrap: KafkaConnection | str, sizes: Sizes, errors: dict[str, str]
) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    topics = {
        v: asyncio.run(create_topic(bootstrap, f"bench.{v}.{tag}", 4))
        for v in ("raw", "rawbatch", "bus", "ck")
    }
    events = workload.events(1, sizes.publish_events)
    records = list(workload.wire_records(1, sizes.publish_events))
    samples: dict[str, list[float]] = {"raw": [], "rawbatch": [], "bus": [], "confluent": []}
    for n in range(sizes.rounds):
        label = f"publish round {n + 1}"
        figures = _step(
            label,
            errors,
            lambda: (
                publish.raw_aiokafka(bootstrap, topics["raw"], records, sizes.chunk),
                publish.raw_aiokafka_batches(bootstrap, topics["rawbatch"], records, sizes.chunk),
                publish.bus_publisher(bootstrap, topics["bus"], events, sizes.chunk),
                publish.confluent_producer(bootstrap, topics["ck"], records),
            ),
        )
        if figures:
            for key, value in zip(samples, figures, strict=True):
                samples[key].append(value)
    consumed: dict[str, list[float]] = {"raw": [], "bus": []}
    count = min(sizes.consume_events, sizes.publish_events * max(1, len(samples["bus"])))
    for n in range(sizes.rounds):
        got = _step(
            f"consume round {n + 1}",
            errors,
            lambda: (
                consume.raw_aiokafka(bootstrap, topics["bus"], count),
                consume.bus_subscriber(bootstrap, topics["bus"], count),
            ),
        )
        if got:
            consumed["raw"].append(got[0])
            consumed["bus"].append(got[1])
    result: dict[str, Any] = {}
    if samples["raw"]:
        ratios = [b / r for b, r in zip(samples["bus"], samples["raw"], strict=True)]
        batch_ratios = [b / r for b, r in zip(samples["bus"], samples["rawbatch"], strict=True)]
        result["publish"] = {
            "events_per_round": sizes.publish_events,
            "value_bytes": len(records[0].value),
            "raw_aiokafka": spread(samples["raw"]).as_dict(),
            "raw_aiokafka_batches": spread(samples["rawbatch"]).as_dict(),
            "ratio_bus_raw_batches": spread(batch_ratios).as_dict(),
            "bus_publisher": spread(samples["bus"]).as_dict(),
            "confluent_kafka": spread(samples["confluent"]).as_dict(),
            "ratio_bus_raw": spread(ratios).as_dict(),
        }
    if consumed["raw"]:
        ratios = [b / r for b, r in zip(consumed["bus"], consumed["raw"], strict=True)]
        result["consume"] = {
            "events_per_round": count,
            "raw_aiokafka": spread(consumed["raw"]).as_dict(),
            "bus_subscriber": spread(consumed["bus"]).as_dict(),
            "ratio_bus_raw": spread(ratios).as_dict(),
        }
    return result


def _security_cost(running: Services, sizes: Sizes, errors: dict[str, str]) -> dict[str, Any]:
    """The bus's publish and consume, secured vs plaintext, rounds interleaved."""
    measured = _step(
        "security cost (a second, secured broker for this step)",
        errors,
        lambda: security_cost.measure(
            running.bootstrap,
            kafka_version=running.kafka_version,
            heap_mb=running.heap_mb,
            rounds=sizes.rounds,
            publish_events=sizes.publish_events,
            consume_events=sizes.consume_events,
            chunk=sizes.chunk,
            step=lambda name, func: _step(name, errors, func),
        ),
    )
    return measured or {}


def _end_to_end(bootstrap: str, url: str, sizes: Sizes, errors: dict[str, str]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    rates = [
        r
        for n in range(sizes.rounds)
        if (
            r := _step(
                f"end to end round {n + 1}",
                errors,
                lambda: endtoend.sustained(bootstrap, url, sizes.e2e_events),
            )
        )
        is not None
    ]
    if rates:
        result["sustained"] = {"events_per_round": sizes.e2e_events, **spread(rates).as_dict()}
    measured = _step(
        "latency at fixed load",
        errors,
        lambda: endtoend.latency(bootstrap, url, sizes.latency_rate, sizes.latency_seconds),
    )
    if measured is not None:
        result["latency"] = {"target_per_s": sizes.latency_rate, **asdict(measured)}
    return result


def _replay(bootstrap: str, url: str, sizes: Sizes, errors: dict[str, str]) -> dict[str, Any]:
    topic = _step("replay fill", errors, lambda: replay.fill_topic(bootstrap, sizes.replay_events))
    if topic is None:
        return {}
    got = _step("replay", errors, lambda: replay.replay(bootstrap, url, topic, sizes.replay_events))
    if got is None:
        return {}
    return {
        "events": sizes.replay_events,
        "applied": got[1],
        "cap_s": replay.REPLAY_CAP_S,
        "events_per_s": got[0],
        "subscriber_peak_rss_mib": round(got[2], 1),
    }


def _snapshot(bootstrap: str, url: str, sizes: Sizes, errors: dict[str, str]) -> dict[str, Any]:
    measured = _step(
        f"snapshot of a {sizes.snapshot_rows:,}-row register",
        errors,
        lambda: snapshot.measure(bootstrap, url, sizes.snapshot_rows),
    )
    return measured or {}


def _relay_backlog(
    bootstrap: str, url: str, sizes: Sizes, errors: dict[str, str]
) -> dict[str, Any]:
    measured = _step(
        f"relay with a {sizes.backlog_rows:,}-row backlog vs {backlog.SMALL:,}",
        errors,
        lambda: backlog.measure(
            bootstrap, url, sizes.backlog_rows, sizes.backlog_measured, sizes.rounds
        ),
    )
    return {} if measured is None else measured.as_dict()


def _ledger(url: str, sizes: Sizes, errors: dict[str, str]) -> dict[str, Any]:
    measured = _step(
        f"ledger who-received with {sizes.ledger_entries:,} deliveries",
        errors,
        lambda: ledger.measure(url, sizes.ledger_entries, sizes.ledger_subjects),
    )
    return measured or {}


def _contract_service(
    bootstrap: str, url: str, sizes: Sizes, errors: dict[str, str]
) -> dict[str, Any]:
    """The contract service (PostgreSQL ledger) against the plain subscriber, interleaved."""
    measured = _step(
        f"contract service with {sizes.contract_events:,} PendudukUpdated per round",
        errors,
        lambda: contracts.measure(
            bootstrap,
            url,
            events=sizes.contract_events,
            rounds=sizes.rounds,
            step=lambda name, func: _step(name, errors, func),
        ),
    )
    return measured or {}


def _gateway(bootstrap: str, url: str, sizes: Sizes, errors: dict[str, str]) -> dict[str, Any]:
    """The gateway as its own process, a load generator as another, over HTTPS."""
    measured = _step(
        f"gateway: {sizes.gateway_posts:,} posts, GETs at {gateway.GET_RATE}/s for "
        f"{sizes.gateway_seconds:g} s",
        errors,
        lambda: gateway.measure(
            bootstrap, url, posts=sizes.gateway_posts, seconds=sizes.gateway_seconds
        ),
    )
    return measured or {}


def _profiles(
    bootstrap: str, sizes: Sizes, out: Path, stem: str, errors: dict[str, str]
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    pub = _step(
        "profile publish",
        errors,
        lambda: profiles.profile_publish(bootstrap, sizes.profile_events, out, f"{stem}-publish"),
    )
    if pub is None:
        return result
    result["publish"] = pub
    sub = _step(
        "profile subscribe",
        errors,
        lambda: profiles.profile_subscribe(
            bootstrap, pub.pop("topic"), sizes.profile_events, out, f"{stem}-subscribe"
        ),
    )
    if sub is not None:
        result["subscribe"] = sub
    return result


def _peers(bootstrap: str, url: str, sizes: Sizes, errors: dict[str, str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="spbe-bench-peers-") as workdir:
        return peer_steps.measure(
            bootstrap,
            url,
            Path(workdir),
            rows=sizes.peer_backlog,
            rounds=sizes.rounds,
            per_second=sizes.peer_rate,
            seconds=sizes.peer_seconds,
            step=lambda name, func: _step(name, errors, func),
        )


def run_mode(*, quick: bool, peers: bool, only: Sequence[str]) -> str:
    """The run's ``mode``: never ``full ...`` for a run of some steps (the README's test
    and table read the latest full run)."""
    mode = ("quick" if quick else "full") + (" with peers" if peers else "")
    return f"only {', '.join(only)} ({mode})" if only else mode


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    # SystemExit unwinds the with-blocks: the broker, PostgreSQL and Connect are stopped.
    sys.exit(128 + signum)


def _codec_summary(codec_figures: dict[str, Any] | None) -> dict[str, float]:
    """The worst event type's encode and decode ratio: the figure the goals judge."""
    if not codec_figures:
        return {}
    return {
        "encode_ratio_min": min(f["encode_ratio"]["median"] for f in codec_figures.values()),
        "decode_ratio_min": min(f["decode_ratio"]["median"] for f in codec_figures.values()),
    }


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    base = QUICK if args.quick else FULL
    sizes = Sizes(
        **{
            **asdict(base),
            **({"rounds": args.rounds} if args.rounds else {}),
            **({"replay_events": args.replay_events} if args.replay_events else {}),
            **({"snapshot_rows": args.snapshot_rows} if args.snapshot_rows else {}),
            **({"contract_events": args.contract_events} if args.contract_events else {}),
        }
    )
    only: list[str] = args.only or []
    wanted = set(only) or {s for s in STEPS if s != "peers" or args.peers}
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    # Measured as services run: JSON at INFO, into a log file of the run (not the results).
    service_log = Path(tempfile.mkdtemp(prefix="spbe-bench-log-")) / "service.log"
    os.environ[SERVICE_LOG_ENV] = str(service_log)
    service_logging()
    print(f"[bench] services log JSON at INFO into {service_log}", file=sys.stderr)
    started = datetime.now(UTC)
    stem = started.strftime("%Y-%m-%d") + ("-only-" + "-".join(only) if only else "")
    errors: dict[str, str] = {}
    cpu_before = cpu_times()
    results: dict[str, Any] = {
        "started": started.isoformat(timespec="seconds"),
        "mode": run_mode(quick=args.quick, peers=args.peers, only=only),
        "sizes": asdict(sizes),
    }
    if "codec" in wanted:
        results["codec"] = _step(
            "codec", errors, lambda: codec.measure(sizes.codec_iterations, max(3, sizes.rounds))
        )
    with services(logical_replication="peers" in wanted) as running:
        bootstrap, url = running.bootstrap, running.database_url
        results["machine"] = machine(url)
        if "publish-consume" in wanted:
            results.update(_publish_and_consume(bootstrap, sizes, errors))
        if "security-cost" in wanted:
            results["security_cost"] = _security_cost(running, sizes, errors)
        if "profiles" in wanted:
            results["profiles"] = _profiles(bootstrap, sizes, out, stem, errors)
        if "end-to-end" in wanted:
            results["end_to_end"] = _end_to_end(bootstrap, url, sizes, errors)
        if "replay" in wanted:
            results["replay"] = _replay(bootstrap, url, sizes, errors)
        if "snapshot" in wanted:
            results["snapshot"] = _snapshot(bootstrap, url, sizes, errors)
        if "relay-backlog" in wanted:
            results["relay_backlog"] = _relay_backlog(bootstrap, url, sizes, errors)
        if "ledger" in wanted:
            results["ledger"] = _ledger(url, sizes, errors)
        if "contract-service" in wanted:
            results["contract_service"] = _contract_service(bootstrap, url, sizes, errors)
        if "gateway" in wanted:
            results["gateway"] = _gateway(bootstrap, url, sizes, errors)
        if "peers" in wanted:
            results["peers"] = _peers(bootstrap, url, sizes, errors)
    cpu_after = cpu_times()
    if cpu_before and cpu_after:
        total = cpu_after["total"] - cpu_before["total"]
        steal = cpu_after["steal"] - cpu_before["steal"]
        results["machine"]["cpu_steal_share"] = round(steal / total, 4) if total else None
    results["duration_s"] = round((datetime.now(UTC) - started).total_seconds(), 1)
    results["codec_summary"] = _codec_summary(results.get("codec"))
    results["errors"] = errors
    results["service_log"] = {"level": "INFO", "lines": service_log_lines()}
    written = write_report(results, out, stem)
    readme = Path(__file__).resolve().parents[1] / "README.md"
    full_run = not args.quick and not only and out.resolve() == DEFAULT_OUT.resolve()
    if full_run and update_readme(results, readme):
        written.append(readme)
    for path in written:
        print(f"[bench] wrote {path}", file=sys.stderr)
    return 1 if errors else 0
