"""``spbe-bus status``: lag, last applied event and dead letters of each subscriber.

Exit 1 when ``--max-lag`` (per partition) or ``--max-dlq`` (per subscriber) is exceeded
or a subscribed topic is missing, so cron and monitoring can alert on it; 0 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import date, datetime

from bus.cli.catalog_cmd import add_bootstrap_argument, bootstrap_of
from bus.ops.catalog import load_catalog
from bus.ops.status import StatusReport, collect_status

__all__ = ["add_status_command", "render_status"]


def add_status_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = sub.add_parser(
        "status", help="lag, last applied event and dead letters per subscriber; exit 1 on alert"
    )
    add_bootstrap_argument(status)
    status.add_argument(
        "--subscriber",
        action="append",
        default=None,
        metavar="ID",
        help="only this subscriber (repeatable; default: every subscriber of the catalogue)",
    )
    status.add_argument(
        "--max-lag", type=int, default=None, metavar="N", help="alert when a partition lags > N"
    )
    status.add_argument(
        "--max-dlq",
        type=int,
        default=None,
        metavar="N",
        help="alert when a subscriber has more than N dead letters",
    )
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(handler=_status)


def _status(args: argparse.Namespace) -> int:
    catalog, _ = load_catalog(args.catalog)
    report = asyncio.run(collect_status(bootstrap_of(args), catalog, subscribers=args.subscriber))
    breaches = report.breaches(max_lag=args.max_lag, max_dlq=args.max_dlq)
    expired = [s.subscriber for s in catalog.expired(date.today())]
    if args.json:
        data = report.to_json()
        data["breaches"] = breaches
        data["expired_subscriptions"] = expired
        print(json.dumps(data, indent=2))
    else:
        print(render_status(report))
        for name in expired:
            print(f"note: the subscription of {name} has expired (see the catalogue)")
        for line in breaches:
            print(f"ALERT {line}")
    return 1 if breaches else 0


def render_status(report: StatusReport) -> str:
    """A table per subscriber: one line per partition, then its dead letter topics."""
    lines: list[str] = []
    for sub in report.subscribers:
        lines.append(
            f"{sub.subscriber}: lag {sub.lag}, dead letters {sub.dead_letter_count}, "
            f"last applied {_when(sub.last_applied)}"
        )
        lines.append(
            f"  {'topic':<40} {'part':>4} {'committed':>10} {'end':>10} {'lag':>8}  last applied"
        )
        for p in sub.partitions:
            committed = "-" if p.committed is None else str(p.committed)
            lines.append(
                f"  {p.topic:<40} {p.partition:>4} {committed:>10} {p.end:>10} {p.lag:>8}  "
                f"{_when(p.last_applied)}"
            )
        for d in sub.dead_letters:
            state = str(d.count) if d.exists else "topic missing"
            lines.append(f"  dead letters {d.topic}: {state}")
        for name in sub.missing_topics:
            lines.append(f"  topic {name} does not exist (run 'spbe-bus catalog apply')")
    if not report.subscribers:
        lines.append("the catalogue has no subscriptions")
    return "\n".join(lines)


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")
