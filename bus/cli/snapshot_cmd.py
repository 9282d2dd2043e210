"""``spbe-bus snapshot ADAPTER_FILE``: publish a steward's existing records once, resumably.

The file is the steward's outbox-relay file; its ``snapshot:`` section names the table,
its key and version columns and the function turning a row into an event
(:mod:`adapters.sources.snapshot`). A progress bar (on a terminal) or ``snapshot.progress``
log lines (otherwise) go to stderr, the summary to stdout. Exit 0 once every row was
passed; 1 when the run stopped before (a signal, a failure): running the same command
again resumes after the last batch Kafka acknowledged.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import sys
from pathlib import Path
from typing import Any

from bus.logs import configure_logging

__all__ = ["add_snapshot_command"]


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number greater than 0")
    return value


def add_snapshot_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    snapshot = sub.add_parser(
        "snapshot",
        help="publish a steward's current table once, one event per row (day one; resumable)",
        description="Publish every row of the table named in the file's snapshot: section "
        "as one event (ce_snapshot: true, ce_sequence = the row's version), resuming after "
        "the last batch Kafka acknowledged.",
    )
    snapshot.add_argument(
        "config",
        type=Path,
        metavar="ADAPTER_FILE",
        help="the steward's outbox-relay file with a snapshot: section",
    )
    snapshot.add_argument(
        "--restart",
        action="store_true",
        help="forget the stored progress and publish from the first key again",
    )
    snapshot.add_argument(
        "--max-rate",
        type=_positive,
        default=None,
        metavar="ROWS_PER_S",
        help="at most this many rows per second (default: the file's max_rate_per_s, else "
        "no limit)",
    )
    snapshot.add_argument(
        "--progress",
        choices=["auto", "bar", "log", "none"],
        default="auto",
        help="a bar on a terminal, snapshot.progress log lines otherwise (default auto)",
    )
    snapshot.add_argument(
        "--progress-interval",
        type=_positive,
        default=10.0,
        metavar="SECONDS",
        help="seconds between snapshot.progress log lines (default 10)",
    )
    snapshot.add_argument(
        "--check", action="store_true", help="validate the file and exit without publishing"
    )
    snapshot.add_argument("--json", action="store_true", help="print the summary as JSON")
    snapshot.set_defaults(handler=_snapshot, default_log_level="INFO")


def _snapshot(args: argparse.Namespace) -> int:
    # Adapters sit above the core library; the CLI's run, demo and snapshot reach up.
    from adapters.runner import load_snapshot
    from adapters.sources.snapshot import Snapshot, TerminalBar, progress_reporter

    adapter = load_snapshot(args.config)
    config = adapter.snapshot
    assert config is not None
    if args.check:
        print(
            f"{args.config}: valid {adapter.kind} configuration with snapshot "
            f"{config.snapshot_name!r} of table {config.table}"
        )
        return 0
    if args.log_level.upper() != "DEBUG":
        # aiokafka logs each metadata retry (a topic not created yet: one line per 100 ms);
        # the error that ends the wait says what to do.
        logging.getLogger("aiokafka").setLevel(logging.ERROR)
    reporter = progress_reporter(args.progress, sys.stderr, interval_s=args.progress_interval)
    if isinstance(reporter, TerminalBar):
        configure_logging(json=args.log_json, level=args.log_level, stream=reporter.log_stream)

    async def go() -> Any:
        async with Snapshot(
            adapter.relay,
            config,
            restart=args.restart,
            max_rate_per_s=args.max_rate,
            on_progress=reporter,
        ) as snapshot:
            return await snapshot.run_until_signal()

    try:
        summary = asyncio.run(go())
    finally:
        if isinstance(reporter, TerminalBar):
            reporter.close()
    if args.json:
        print(json.dumps(summary.as_json(), indent=2))
    else:
        _print_summary(summary)
    return 0 if summary.finished else 1


def _print_summary(summary: Any) -> None:
    name = f"snapshot {summary.name!r} of {summary.table}"
    if summary.already_finished:
        print(
            f"{name} was finished by an earlier run ({summary.published:,} events published); "
            "nothing to do. --restart publishes the table again."
        )
        return
    state = "finished" if summary.finished else "STOPPED before the last row"
    print(f"{name}: {state}")
    print(
        f"  rows       {summary.total:,} in the table; published {summary.published:,}, "
        f"invalid {summary.invalid:,}, excluded {summary.excluded:,}"
    )
    print(
        f"  this run   {summary.done_this_run:,} rows in {summary.elapsed_s:.1f} s "
        f"({summary.rate_per_s:,.0f} rows/s){', resumed' if summary.resumed else ''}"
    )
    if summary.invalid:
        print(
            f"  {summary.invalid:,} rows failed validation and were not published; "
            "snapshot.row_invalid log lines name each by position and key pseudonym, with "
            "the field and rule. Correct them in the application: the correction reaches "
            "subscribers as a live change."
        )
    if not summary.finished:
        print(
            "  run the same command again to resume after the last acknowledged batch "
            "(--restart starts over)"
        )
