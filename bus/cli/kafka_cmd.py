"""``spbe-bus kafka up | down | status | logs | fetch``: a real local broker, no Docker."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from bus.localkafka.artifacts import resolve_kafka
from bus.localkafka.layout import default_kafka_version
from bus.localkafka.manager import (
    DEFAULT_READY_TIMEOUT_S,
    DEFAULT_STOP_TIMEOUT_S,
    LocalKafka,
    default_data_dir,
)

__all__ = ["add_kafka_commands"]


def add_kafka_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    kafka = sub.add_parser("kafka", help="run a local Apache Kafka (KRaft) from its jars")
    ksub = kafka.add_subparsers(dest="kafka_command", required=True, metavar="COMMAND")

    def with_data_dir(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--data-dir",
            type=Path,
            default=None,
            help=f"where the cluster lives (default: $SPBE_KAFKA_HOME or {default_data_dir()})",
        )
        return p

    up = with_data_dir(ksub.add_parser("up", help="start the broker(s) and wait until ready"))
    up.add_argument("--nodes", type=int, choices=(1, 3), default=None, help="1 (default) or 3")
    up.add_argument(
        "--port", type=int, default=None, help="first client port (default 9092, or as stored)"
    )
    up.add_argument(
        "--kafka-version",
        default=None,
        help=f"for a new cluster (default $SPBE_KAFKA_VERSION or {default_kafka_version()})",
    )
    up.add_argument("--heap-mb", type=int, default=None, help="JVM heap per node (default 512)")
    up.add_argument(
        "--secure",
        action="store_true",
        default=None,
        help="a new cluster in the production shape: SASL_SSL (SCRAM-SHA-512) for clients, "
        "TLS between nodes, ACLs enforced; the operator's credentials go to "
        "<data-dir>/credentials.json",
    )
    up.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_READY_TIMEOUT_S,
        help=f"seconds to wait for readiness (default {DEFAULT_READY_TIMEOUT_S:g})",
    )
    up.set_defaults(handler=_up)

    down = with_data_dir(ksub.add_parser("down", help="stop the broker(s) started by 'up'"))
    down.add_argument("--purge", action="store_true", help="also delete the data directory")
    down.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_STOP_TIMEOUT_S,
        help=f"seconds before a graceful stop is forced (default {DEFAULT_STOP_TIMEOUT_S:g})",
    )
    down.set_defaults(handler=_down)

    status = with_data_dir(ksub.add_parser("status", help="show each node; exit 1 if not healthy"))
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(handler=_status)

    logs = with_data_dir(ksub.add_parser("logs", help="print the tail of the broker logs"))
    logs.add_argument("--node", type=int, default=None, help="only this node id")
    logs.add_argument("--lines", type=int, default=50)
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing new lines")
    logs.set_defaults(handler=_logs)

    fetch = ksub.add_parser("fetch", help="resolve the Kafka jars into the cache, start nothing")
    fetch.add_argument(
        "--kafka-version",
        default=None,
        help=f"default $SPBE_KAFKA_VERSION or {default_kafka_version()}",
    )
    fetch.set_defaults(handler=_fetch)


def _up(args: argparse.Namespace) -> int:
    manager = LocalKafka(args.data_dir, ready_timeout_s=args.timeout)
    layout = manager.up(
        nodes=args.nodes,
        port=args.port,
        kafka_version=args.kafka_version,
        heap_mb=args.heap_mb,
        secure=args.secure,
    )
    shape = "secured: SASL_SSL, ACLs enforced" if layout.secure else "plaintext"
    print(
        f"Kafka {layout.kafka_version} is up ({layout.nodes} node(s), {shape}, "
        f"data in {manager.data_dir})"
    )
    print(f"bootstrap: {layout.bootstrap_servers}")
    if layout.secure:
        print(f"operator credentials: {manager.credentials_file}")
        print(f"  export SPBE_KAFKA_CREDENTIALS={manager.credentials_file}")
    return 0


def _down(args: argparse.Namespace) -> int:
    manager = LocalKafka(args.data_dir, stop_timeout_s=args.timeout)
    outcome = manager.down(purge=args.purge)
    if not outcome:
        print(f"nothing to stop in {manager.data_dir}")
    for node_id, what in sorted(outcome.items()):
        print(f"node {node_id}: {what}")
    if args.purge:
        print(f"removed {manager.data_dir}")
    return 0


def _status(args: argparse.Namespace) -> int:
    status = LocalKafka(args.data_dir).status()
    if args.json:
        print(
            json.dumps(
                {
                    "data_dir": str(status.data_dir),
                    "healthy": status.healthy,
                    "bootstrap": status.layout.bootstrap_servers if status.layout else None,
                    "nodes": [
                        {
                            "node_id": n.node_id,
                            "pid": n.pid,
                            "running": n.running,
                            "answering": n.node_id in status.answering,
                            "broker_port": n.broker_port,
                            "controller_port": n.controller_port,
                            "log_file": str(n.log_file),
                        }
                        for n in status.nodes
                    ],
                },
                indent=2,
            )
        )
        return 0 if status.healthy else 1
    if status.layout is None:
        print(f"no cluster in {status.data_dir} (start one with 'spbe-bus kafka up')")
        return 1
    print(f"data dir:  {status.data_dir}")
    print(f"bootstrap: {status.layout.bootstrap_servers}  (Kafka {status.layout.kafka_version})")
    print(f"{'node':>4}  {'pid':>8}  {'port':>5}  {'running':<7}  answering")
    for n in status.nodes:
        print(
            f"{n.node_id:>4}  {n.pid or '-':>8}  {n.broker_port:>5}  "
            f"{'yes' if n.running else 'no':<7}  {'yes' if n.node_id in status.answering else 'no'}"
        )
    if status.healthy:
        print("healthy")
        return 0
    down = [n.node_id for n in status.nodes if not n.running]
    silent = [n.node_id for n in status.nodes if n.running and n.node_id not in status.answering]
    reasons = [f"node {n} is not running" for n in down]
    reasons += [f"node {n} runs but does not answer" for n in silent]
    print("NOT healthy: " + "; ".join(reasons))
    if down:
        print(f"start it again with 'spbe-bus kafka up --data-dir {status.data_dir}'")
    return 1


def _logs(args: argparse.Namespace) -> int:
    manager = LocalKafka(args.data_dir)
    layout = manager.stored_layout()
    node_ids = [args.node] if args.node else list(layout.node_ids if layout else [1])
    for node_id in node_ids:
        print(manager.log_tail(node_id, args.lines))
    if args.follow:
        paths = [manager.log_file(n) for n in node_ids]
        offsets = {p: p.stat().st_size if p.exists() else 0 for p in paths}
        try:
            while True:
                for path in paths:
                    if path.exists() and path.stat().st_size > offsets[path]:
                        with path.open("rb") as handle:
                            handle.seek(offsets[path])
                            chunk = handle.read()
                        offsets[path] += len(chunk)
                        sys.stdout.write(chunk.decode(errors="replace"))
                        sys.stdout.flush()
                time.sleep(0.5)
        except KeyboardInterrupt:
            return 0
    return 0


def _fetch(args: argparse.Namespace) -> int:
    version = args.kafka_version or default_kafka_version()
    libs = resolve_kafka(version)
    print(f"Kafka {version} jars: {libs}")
    return 0
