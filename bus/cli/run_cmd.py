"""``spbe-bus run CONFIG``: run an outbox relay, the contract service or a sink from its file."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

__all__ = ["add_run_command"]


def add_run_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = sub.add_parser(
        "run",
        help="run an adapter (outbox-relay, contract-service, sql-sink, webhook-sink)",
    )
    run.add_argument("config", type=Path, metavar="CONFIG", help="e.g. deploy/adapters/*.yaml")
    run.add_argument(
        "--check", action="store_true", help="validate the file and exit without running"
    )
    run.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve Prometheus /metrics and /healthz on this port (loopback)",
    )
    run.add_argument(
        "--metrics-host", default="127.0.0.1", help="address for --metrics-port (default loopback)"
    )
    run.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    # Adapters sit above the core library; only the CLI's run and demo reach up to them.
    from adapters.runner import load_adapter, run_adapter

    adapter = load_adapter(args.config)
    if args.check:
        print(f"{args.config}: valid {adapter.kind} configuration")
        return 0
    asyncio.run(
        run_adapter(adapter, metrics_port=args.metrics_port, metrics_host=args.metrics_host)
    )
    return 0
