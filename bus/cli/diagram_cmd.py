"""``spbe-bus catalog diagram``: the catalogue's data flows as a picture (docs/operator/diagram.md).

Without ``--bootstrap`` it draws from the catalogue alone (no cluster needed): stewards and
their applications, topics, subscriptions and REST clients, each flow labelled with its event
types, classification, legal basis and expiry, expired ones marked. With ``--bootstrap`` it
adds each flow's events per day over ``--window-days`` and colours lagging and
dead-lettering flows (:mod:`bus.ops.flow_measures`).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from bus.connection import KafkaConnection
from bus.errors import ConfigError
from bus.ops.catalog import load_catalog
from bus.ops.flow_diagram import DIAGRAM_FORMATS, render
from bus.ops.flow_measures import measure_flows
from bus.ops.flows import flow_graph

__all__ = ["add_diagram_command"]

#: ``--output`` suffixes that choose the format when ``--format`` is not given.
_SUFFIXES = {".svg": "svg", ".png": "png", ".mmd": "mermaid", ".mermaid": "mermaid", ".dot": "dot"}


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 0 or more")
    return value


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def add_diagram_command(
    csub: argparse._SubParsersAction[argparse.ArgumentParser],
    add_bootstrap_argument: Callable[[argparse.ArgumentParser], None],
    bootstrap_of: Callable[[argparse.Namespace], KafkaConnection],
) -> None:
    """Register ``catalog diagram`` (the catalogue's connection options passed in)."""
    diagram = csub.add_parser(
        "diagram",
        help="draw the data flows (svg, png, mermaid, dot); with --bootstrap, measured",
    )
    add_bootstrap_argument(diagram)
    diagram.add_argument(
        "--format",
        choices=DIAGRAM_FORMATS,
        default=None,
        help="svg, png, mermaid or dot (default: from --output's suffix, else svg)",
    )
    diagram.add_argument(
        "--output", type=Path, default=None, metavar="FILE", help="write here (default: stdout)"
    )
    diagram.add_argument(
        "--window-days",
        type=_positive,
        default=7,
        metavar="N",
        help="with --bootstrap: events per day over the last N days (default 7)",
    )
    diagram.add_argument(
        "--max-lag",
        type=_count,
        default=1000,
        metavar="N",
        help="with --bootstrap: a flow lagging more than N events is 'lagging' (default 1000)",
    )
    diagram.add_argument(
        "--today",
        type=_day,
        default=None,
        metavar="YYYY-MM-DD",
        help="mark subscriptions expired as of this day (default: today, UTC)",
    )
    diagram.set_defaults(handler=lambda args: _diagram(args, bootstrap_of))


def _diagram(
    args: argparse.Namespace, bootstrap_of: Callable[[argparse.Namespace], KafkaConnection]
) -> int:
    today = args.today or datetime.now(UTC).date()
    catalog, _ = load_catalog(args.catalog, today=today)
    fmt = args.format
    if fmt is None:
        fmt = _SUFFIXES.get(args.output.suffix.lower(), "svg") if args.output else "svg"
    measures = None
    if args.bootstrap is not None:
        measures = asyncio.run(
            measure_flows(
                bootstrap_of(args),
                catalog,
                window=timedelta(days=args.window_days),
                max_lag=args.max_lag,
                today=today,
            )
        )
    drawn = render(flow_graph(catalog), fmt, measures, today=today)
    if args.output is None:
        sys.stdout.flush()
        sys.stdout.buffer.write(drawn)
        sys.stdout.buffer.flush()
        return 0
    try:
        args.output.write_bytes(drawn)
    except OSError as exc:
        raise ConfigError(
            f"--output: cannot write {args.output}: {exc.strerror}",
            fix="choose a file in a directory that exists and you may write",
        ) from None
    print(f"wrote {args.output} ({fmt}, {len(drawn)} bytes)", file=sys.stderr)
    return 0
