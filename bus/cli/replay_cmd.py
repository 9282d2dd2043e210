"""``spbe-bus replay``: replay topics into a subscriber, recorded in the audit topic.

Also the pieces ``spbe-bus dlq`` shares: where Kafka is, the subscriber's sink from its
adapter file (adapters are imported only inside the command functions, as ``run`` does),
and the audit record of a command that failed part way.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from bus.cli.connection_args import (
    DEFAULT_BOOTSTRAP,
    ENV_BOOTSTRAP,
    add_credentials_option,
    connection_of,
)
from bus.cli.ledger_cmd import add_ledger_option, check_ledger_given, replay_ledger
from bus.connection import KafkaConnection
from bus.decoding import RecordDecoder
from bus.errors import BusError, ConfigError
from bus.ops.audit import AuditLog, new_record
from bus.ops.dlq_records import mask_message
from bus.ops.reapply import ReapplyReport, reapply
from bus.ops.replay import plan_replay, rewind
from bus.ops.replay_ledger import ReplayLedger
from bus.ops.replay_plan import (
    PartitionWindow,
    ReplayMode,
    ReplayRequest,
    parse_offsets,
    parse_time,
)
from bus.subscriber import SubscriberConfig

if TYPE_CHECKING:
    from adapters.runner import SubscriberSink

__all__ = [
    "DEFAULT_BOOTSTRAP",
    "ENV_BOOTSTRAP",
    "ProgressLine",
    "add_replay_command",
    "run_async",
]

_DESCRIPTION = """\
Replay events of TOPIC(s) into one subscriber, after an outage or a database restore.

  rewind   (default) commit earlier offsets for the subscriber's own consumer group; it
           reads the events again when it next starts. Refused while the subscriber runs.
  reapply  read the window with a separate consumer and apply it through the subscriber's
           sink (--adapter, its sql-sink or webhook-sink file) while it keeps running;
           --to-time and --key narrow the window.

Sinks are idempotent (processed-event table, version guard): events already applied come
back as duplicates, so replaying twice is harmless. Every replay is recorded, with
--reason, in the audit topic _spbe.audit. A replay of a projected topic
(<raw>.for.<subscriber>) delivers residents' data again: each event's replay entry is
appended to the delivery ledger (--ledger-url) before it is delivered."""

_EPILOG = """\
examples:
  spbe-bus replay --subscriber dinsos-penduduk --topic spbe.dukcapil.penduduk.v1 \\
      --from-time 2026-03-01T00:00:00+07:00 --dry-run --reason "restore DB, tiket #123"
  spbe-bus replay --subscriber dinsos-penduduk --topic spbe.dukcapil.penduduk.v1 \\
      --from-offsets 0:0,1:0,2:0 --reason "restore DB, tiket #123"
  spbe-bus replay --subscriber dinsos-penduduk --topic spbe.dukcapil.penduduk.v1 \\
      --mode reapply --adapter deploy/adapters/dinsos-penduduk-sink.yaml \\
      --from-time 2026-03-01T00:00:00+07:00 --to-time 2026-03-02T00:00:00+07:00 \\
      --key <pseudonym> --reason "koreksi data, tiket #124"

--key takes the Kafka key; for residents that is the NIK's pseudonym, never the NIK."""


def add_replay_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    replay = sub.add_parser(
        "replay",
        help="replay topics into a subscriber (rewind its group, or re-apply through its sink)",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    replay.add_argument("--subscriber", required=True, metavar="ID", help="subscriber id")
    replay.add_argument("--topic", required=True, action="append", dest="topics", metavar="TOPIC")
    start = replay.add_mutually_exclusive_group()
    start.add_argument("--from-time", metavar="ISO", help="e.g. 2026-03-01T00:00:00+07:00")
    start.add_argument(
        "--from-offsets", metavar="P:O,...", help="start offsets (TOPIC:P:O with several topics)"
    )
    replay.add_argument("--to-time", metavar="ISO", help="reapply only: stop before this time")
    replay.add_argument(
        "--key", action="append", default=[], dest="keys", metavar="KEY",
        help="reapply only: only events with this Kafka key (repeatable)",
    )  # fmt: skip
    replay.add_argument("--reason", help="why (incident, ticket); required, audited")
    replay.add_argument(
        "--dry-run", action="store_true", help="print events per partition, change nothing"
    )
    replay.add_argument(
        "--mode", choices=[m.value for m in ReplayMode], default=ReplayMode.REWIND.value
    )
    replay.add_argument(
        "--adapter", type=Path, metavar="FILE.yaml", help="the subscriber's adapter file"
    )
    add_bootstrap_option(replay)
    add_ledger_option(replay)
    replay.set_defaults(handler=run_async(_replay), parser=replay)


def add_bootstrap_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--bootstrap",
        default=None,
        metavar="HOST:PORT",
        help=f"Kafka (default: the adapter file's, else ${ENV_BOOTSTRAP}, else "
        f"{DEFAULT_BOOTSTRAP})",
    )
    add_credentials_option(parser)


def run_async(
    handler: Callable[[argparse.Namespace], Coroutine[Any, Any, int]],
) -> Callable[[argparse.Namespace], int]:
    """A command handler running ``handler`` in an event loop."""

    def run(args: argparse.Namespace) -> int:
        if str(getattr(args, "log_level", "WARNING")).upper() != "DEBUG":
            # The client logs every refused connection; our error says it once, clearly.
            logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
        return asyncio.run(handler(args))

    return run


def bootstrap_of(
    args: argparse.Namespace, subscription: SubscriberConfig | None
) -> KafkaConnection:
    """The options' connection over the adapter file's (``subscription``) and the environment."""
    return connection_of(args, subscription)


# -- the subscriber's sink -------------------------------------------------------------------


# -- progress --------------------------------------------------------------------------------


class ProgressLine:
    """Events done / total and the rate, on stderr.

    On a terminal one line is redrawn at most every ``tty_interval_s``; otherwise (a log
    file, a pipe) a plain line is written every ``log_interval_s``.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        tty: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        tty_interval_s: float = 0.5,
        log_interval_s: float = 10.0,
    ) -> None:
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty() if tty is None else tty
        self._clock = clock
        self._interval = tty_interval_s if self._tty else log_interval_s
        self._started = clock()
        self._last: float | None = None

    def line(self, done: int, total: int) -> str:
        elapsed = max(self._clock() - self._started, 1e-9)
        percent = f" ({100 * done // total}%)" if total else ""
        return f"replay: {done}/{total} events{percent}, {done / elapsed:.0f} events/s"

    def __call__(self, done: int, total: int) -> None:
        now = self._clock()
        if self._last is not None and now - self._last < self._interval:
            return
        self._last = now
        self._write(self.line(done, total))

    def finish(self, done: int, total: int) -> None:
        """The final count; ends the redrawn line on a terminal."""
        self._write(self.line(done, total))
        if self._tty:
            self._stream.write("\n")
            self._stream.flush()

    def _write(self, text: str) -> None:
        self._stream.write(f"\r{text}\x1b[K" if self._tty else f"{text}\n")
        self._stream.flush()


# -- replay ----------------------------------------------------------------------------------


def _request(args: argparse.Namespace) -> ReplayRequest:
    parser: argparse.ArgumentParser = args.parser
    try:
        mode = ReplayMode(args.mode)
        if mode is ReplayMode.REAPPLY and args.adapter is None:
            raise ConfigError(
                "--mode reapply applies events through the subscriber's sink, so it needs "
                "--adapter FILE.yaml (its sql-sink or webhook-sink file)"
            )
        return ReplayRequest(
            subscriber=args.subscriber,
            topics=tuple(dict.fromkeys(args.topics)),
            reason=args.reason or "",
            mode=mode,
            from_time=parse_time(args.from_time) if args.from_time else None,
            from_offsets=parse_offsets(args.from_offsets, args.topics)
            if args.from_offsets
            else None,
            to_time=parse_time(args.to_time, option="--to-time") if args.to_time else None,
            keys=frozenset(k.encode("utf-8") for k in args.keys),
        )
    except ConfigError as exc:
        parser.error(str(exc))


def _print_windows(windows: list[PartitionWindow], *, dry_run: bool) -> None:
    verb = "would replay" if dry_run else "replaying"
    print(f"{'TOPIC':<40} {'PARTITION':>9} {'FROM':>10} {'TO':>10} {'EVENTS':>8}")
    for w in windows:
        print(f"{w.topic:<40} {w.partition:>9} {w.start:>10} {w.end:>10} {w.count:>8}")
    print(f"{verb} {sum(w.count for w in windows)} event(s) in {len(windows)} partition(s)")


async def _replay(args: argparse.Namespace) -> int:
    # Adapters sit above the core library; only CLI commands reach up to them.
    from adapters.runner import load_subscriber_sink

    request = _request(args)
    if not args.dry_run:
        check_ledger_given(args, request.subscriber, request.topics, action="replay")
    target = (
        load_subscriber_sink(args.adapter, request.subscriber, list(request.topics))
        if args.adapter is not None
        else None
    )
    bootstrap = bootstrap_of(args, target.subscription if target else None)
    windows = await plan_replay(bootstrap, request)
    _print_windows(windows, dry_run=args.dry_run)
    if args.dry_run:
        return 0
    parameters = {**request.parameters(), "windows": [str(w) for w in windows]}
    with replay_ledger(args, request.subscriber, request.topics, action="replay") as ledger:
        return await _replay_recorded(bootstrap, request, windows, target, parameters, ledger)


async def _replay_recorded(
    bootstrap: KafkaConnection,
    request: ReplayRequest,
    windows: list[PartitionWindow],
    target: SubscriberSink | None,
    parameters: dict[str, Any],
    ledger: ReplayLedger | None,
) -> int:
    async with AuditLog(bootstrap) as audit:

        async def record(result: dict[str, Any]) -> None:
            await audit.record(
                new_record(
                    f"replay.{request.mode.value}",
                    subscriber=request.subscriber,
                    topics=request.topics,
                    parameters=parameters,
                    reason=request.reason,
                    result=result,
                )
            )

        report: ReapplyReport | None = None
        try:
            if request.mode is ReplayMode.REWIND:
                offsets = await rewind(bootstrap, request.subscriber, windows, ledger=ledger)
                result: dict[str, Any] = {"rewound_partitions": len(offsets)}
                result["events"] = _total(windows)
                result["ledger_replay_entries"] = ledger.recorded if ledger else 0
            else:
                assert target is not None
                report = await _reapply(bootstrap, request, windows, target, ledger)
                result = report.as_result()
        except BusError as exc:
            await record(failure_result(exc))
            raise
        await record(result)
    if ledger is not None:
        print(f"recorded {ledger.recorded} replay entries in the delivery ledger")
    if report is None:
        print(
            f"group {request.subscriber} rewound on {len(windows)} partition(s); the "
            "subscriber replays them when it next starts"
        )
        return 0
    return _print_report(report)


def _total(windows: list[PartitionWindow]) -> int:
    return sum(w.count for w in windows)


def failure_result(exc: BaseException) -> dict[str, Any]:
    """What the audit record stores of a command that failed (personal data masked)."""
    return {"error": type(exc).__name__, "message": mask_message(str(exc))[:500]}


async def _reapply(
    bootstrap: KafkaConnection,
    request: ReplayRequest,
    windows: list[PartitionWindow],
    target: SubscriberSink,
    ledger: ReplayLedger | None,
) -> ReapplyReport:
    subscription = target.subscription
    progress = ProgressLine()
    async with (
        RecordDecoder.connect(
            bootstrap,
            schemas_dir=subscription.schemas_dir,
            registry_topic=subscription.registry_topic,
        ) as decoder,
        target.sink as handler,
    ):
        report = await reapply(
            bootstrap,
            windows,
            handler,
            decoder,
            batch_handler=target.batch_handler,
            keys=request.keys,
            retry=subscription.retry,
            on_progress=progress,
            ledger=ledger,
        )
    progress.finish(report.done, report.total)
    return report


def _print_report(report: ReapplyReport) -> int:
    print(
        f"re-applied {report.applied}, duplicates {report.duplicates}, other keys skipped "
        f"{report.skipped_keys}, failed {len(report.failed)} (of {report.done} read)"
    )
    for failure in report.failed:
        print(
            f"  failed {failure.topic}[{failure.partition}]@{failure.offset}: "
            f"{failure.error_class}: {mask_message(failure.message)[:300]}"
        )
    return 1 if report.failed else 0
