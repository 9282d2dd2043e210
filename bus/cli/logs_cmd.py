"""``spbe-bus logs FILE...``: adapter errors from their JSON logs, grouped by cause.

One line per cause (where, event, error type) with its count, first and last time and one
masked example (:mod:`bus.ops.log_groups`); ``-`` reads standard input, so
``journalctl -u spbe-dinsos -o cat | spbe-bus logs -`` works too. Exit 0 when nothing at
``--level`` or above was found, 1 when something was, so cron can mail the table.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import TextIO

from bus.errors import ConfigError
from bus.ops.log_groups import LogReport, group_logs

__all__ = ["add_logs_command", "render_logs"]


def add_logs_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    logs = sub.add_parser(
        "logs",
        help="adapter errors from their JSON logs, grouped by cause (personal data masked)",
        description="Group the warnings and errors of adapters' JSON logs (spbe-bus --log-json "
        "run FILE) by where, event and error type: count, first and last time, one example "
        "with personal data masked. Exit 1 when any was found.",
    )
    logs.add_argument("files", nargs="+", metavar="FILE", help="JSON log files ('-': stdin)")
    logs.add_argument(
        "--level",
        choices=["warning", "error"],
        default="warning",
        help="the lowest level shown (default warning)",
    )
    logs.add_argument("--json", action="store_true", help="print JSON")
    logs.set_defaults(handler=_logs)


def _lines(stream: TextIO) -> Iterator[str]:
    yield from stream


def _logs(args: argparse.Namespace) -> int:
    with ExitStack() as stack:
        sources: dict[str, Iterator[str]] = {}
        for name in args.files:
            if name == "-":
                sources["stdin"] = _lines(sys.stdin)
                continue
            path = Path(name)
            if not path.is_file():
                raise ConfigError(
                    f"FILE: {path} is not a file",
                    fix="give the adapter's JSON log (its service's StandardError= file, or "
                    "journalctl -u UNIT -o cat | spbe-bus logs -)",
                )
            label = path.name if path.name not in sources else str(path)
            stream = stack.enter_context(path.open(encoding="utf-8", errors="replace"))
            sources[label] = _lines(stream)
        report = group_logs(sources, level=args.level)
    if args.json:
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        print(render_logs(report))
    return 1 if report.groups else 0


def render_logs(report: LogReport) -> str:
    """The groups as a table, most frequent first, each with its example below."""
    summary = (
        f"{len(report.groups)} cause{'s' if len(report.groups) != 1 else ''} at "
        f"{report.level} or above in {report.lines} line{'s' if report.lines != 1 else ''} "
        f"of {', '.join(report.logs)}"
    )
    notes = []
    if report.below_level:
        notes.append(f"{report.below_level} below {report.level}")
    if report.unparsable:
        notes.append(f"{report.unparsable} unparsable (not a JSON log line)")
    lines = [summary + (f" ({'; '.join(notes)})" if notes else "")]
    if not report.groups:
        return lines[0]
    lines.append(f"{'count':>6}  {'level':<8} {'first':<20} {'last':<20} cause")
    for g in report.groups:
        first = "-" if g.first is None else g.first.strftime("%Y-%m-%dT%H:%M:%S")
        last = "-" if g.last is None else g.last.strftime("%Y-%m-%dT%H:%M:%S")
        cause = f"{g.origin}  {g.event}  {g.error_type or '-'}"
        lines.append(f"{g.count:>6}  {g.level:<8} {first:<20} {last:<20} {cause}")
        lines.append(f"{'':>6}  e.g. {g.example}")
    return "\n".join(lines)
