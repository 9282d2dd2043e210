"""``spbe-bus dlq list | show | redrive | purge``: a subscriber's dead letters, audited.

Personal fields are masked in everything printed (see :mod:`bus.ops.dlq`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bus.cli.ledger_cmd import add_ledger_option, check_ledger_given, replay_ledger
from bus.cli.replay_cmd import (
    add_bootstrap_option,
    bootstrap_of,
    failure_result,
    run_async,
)
from bus.connection import KafkaConnection
from bus.contract.message import IncomingEvent
from bus.decoding import RecordDecoder
from bus.errors import BusError, ContractError
from bus.ops.audit import AuditLog, new_record
from bus.ops.dlq import RedriveReport, dlq_topics_of, purge, read_dead_letters, redrive
from bus.ops.dlq_records import DeadLetter, DeadLetterError, describe, select
from bus.ops.replay_ledger import ReplayLedger

if TYPE_CHECKING:
    from adapters.runner import SubscriberSink

__all__ = ["add_dlq_commands"]

_REDRIVE_DESCRIPTION = """\
Apply selected dead letters again, once their cause is fixed (a mapping corrected, a
column widened, an endpoint back).

They are applied directly through the subscriber's own sink, built from its adapter file
(--adapter), exactly as the subscriber would apply them; nothing is published to the
original topic, so other subscribers of that topic see nothing. The sink's idempotency
(dedupe by ce_source + ce_id, version guard) makes a dead letter that was applied meanwhile
a duplicate, and keeps newer data from being overwritten. The subscriber may keep running.

Redrive does not delete: review the outcome, then remove the resolved dead letters with
'spbe-bus dlq purge ... --to-offset N' (the command prints N). Dead letters that fail
again stay, with their new cause printed.

Dead letters of a projected topic (<raw>.for.<subscriber>) deliver residents' data again:
each one's replay entry is appended to the delivery ledger (--ledger-url) first."""

_PURGE_DESCRIPTION = """\
Delete the reviewed dead letters of one partition at offsets up to and including
--to-offset (Kafka deletes a prefix of a partition, never single records)."""


def add_dlq_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dlq = sub.add_parser("dlq", help="a subscriber's dead letters: list, show, redrive, purge")
    dsub = dlq.add_subparsers(dest="dlq_command", required=True, metavar="COMMAND")

    def common(p: argparse.ArgumentParser, *, topic_required: bool = True) -> None:
        p.add_argument("--subscriber", required=True, metavar="ID", help="subscriber id")
        p.add_argument(
            "--topic",
            required=topic_required,
            metavar="TOPIC",
            help="the original topic (its dead letters are in TOPIC.dlq.ID)",
        )
        add_bootstrap_option(p)

    listing = dsub.add_parser("list", help="dead letters with their causes (personal data masked)")
    common(listing, topic_required=False)
    listing.add_argument("--json", action="store_true", help="one JSON document")
    listing.set_defaults(handler=run_async(_list), parser=listing)

    show = dsub.add_parser("show", help="one dead letter in full (personal data masked)")
    common(show)
    show.add_argument("--offset", type=int, required=True, metavar="N")
    show.add_argument("--partition", type=int, default=0, metavar="P")
    show.set_defaults(handler=run_async(_show), parser=show)

    again = dsub.add_parser(
        "redrive",
        help="apply dead letters through the subscriber's sink once the cause is fixed",
        description=_REDRIVE_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common(again)
    again.add_argument("--adapter", type=Path, required=True, metavar="FILE.yaml")
    again.add_argument("--from-offset", type=int, metavar="A", help="first dead letter offset")
    again.add_argument("--to-offset", type=int, metavar="B", help="last one (included)")
    again.add_argument(
        "--error-class", metavar="X", help="only this cause (full or short class name)"
    )
    again.add_argument("--partition", type=int, default=0, metavar="P")
    again.add_argument("--reason", help="why (incident, ticket); required, audited")
    add_ledger_option(again)
    again.set_defaults(handler=run_async(_redrive), parser=again)

    remove = dsub.add_parser(
        "purge",
        help="delete reviewed dead letters up to an offset",
        description=_PURGE_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common(remove)
    remove.add_argument("--to-offset", type=int, required=True, metavar="N", help="included")
    remove.add_argument("--partition", type=int, default=0, metavar="P")
    remove.add_argument("--reason", help="why (incident, ticket); required, audited")
    remove.set_defaults(handler=run_async(_purge), parser=remove)


def _reason(args: argparse.Namespace) -> str:
    reason = (args.reason or "").strip()
    if not reason:
        parser: argparse.ArgumentParser = args.parser
        parser.error(
            f"--reason is required: every 'dlq {args.dlq_command}' is recorded in the audit "
            'topic with why; add e.g. --reason "mapping kbli diperbaiki, tiket #125"'
        )
    return reason


async def _views(
    decoder: RecordDecoder, letters: list[DeadLetter], *, full: bool = False
) -> list[dict[str, Any]]:
    views = []
    for letter in letters:
        incoming: IncomingEvent | None = None
        problem: str | None = None
        try:
            incoming = await decoder.decode(letter.value, letter.original_headers)
        except ContractError as exc:
            problem = f"{type(exc).__name__}: {exc.message}"
        views.append(describe(letter, incoming, problem=problem, full=full))
    return views


async def _audit(
    bootstrap: KafkaConnection,
    action: str,
    args: argparse.Namespace,
    topics: list[str],
    **extra: Any,
) -> None:
    async with AuditLog(bootstrap) as audit:
        await audit.record(
            new_record(
                action,
                subscriber=args.subscriber,
                topics=topics,
                reason=getattr(args, "reason", None),
                **extra,
            )
        )


# -- list / show -----------------------------------------------------------------------------


async def _list(args: argparse.Namespace) -> int:
    bootstrap = bootstrap_of(args, None)
    topics = [args.topic] if args.topic else await dlq_topics_of(bootstrap, args.subscriber)
    found: dict[str, list[dict[str, Any]]] = {}
    async with RecordDecoder.connect(bootstrap) as decoder:
        for topic in topics:
            found[topic] = await _views(
                decoder, await read_dead_letters(bootstrap, args.subscriber, topic)
            )
    total = sum(len(v) for v in found.values())
    await _audit(bootstrap, "dlq.list", args, topics, result={"dead_letters": total})
    if args.json:
        print(json.dumps({"subscriber": args.subscriber, "topics": found}, indent=2))
        return 0
    if not total:
        print(f"no dead letters for subscriber {args.subscriber}")
        return 0
    for topic, views in found.items():
        if views:
            print(f"{topic}: {len(views)} dead letter(s)")
        for view in views:
            _print_summary(view)
    return 0


def _print_summary(view: dict[str, Any]) -> None:
    original = view["original"]
    print(
        f"  [{view['partition']}]@{view['offset']}  from {original['topic']}"
        f"[{original['partition']}]@{original['offset']}  {view['error_class']}  "
        f"attempts {view['attempts']}  {view['first_failure']} .. {view['last_failure']}"
    )
    print(f"      message: {view['error_message']}")
    if "event" in view:
        event = json.dumps(view["event"], ensure_ascii=False, sort_keys=True)
        print(f"      {view['event_type']} {view['event_id']}: {event}")
    else:
        print(f"      not an event: {view['undecodable']}")


async def _show(args: argparse.Namespace) -> int:
    bootstrap = bootstrap_of(args, None)
    letters = await read_dead_letters(bootstrap, args.subscriber, args.topic)
    chosen = [x for x in letters if x.partition == args.partition and x.offset == args.offset]
    if not chosen:
        held = [x.offset for x in letters if x.partition == args.partition]
        raise DeadLetterError(
            f"no dead letter at offset {args.offset} of partition {args.partition}",
            fix=f"held offsets: {held[0]}..{held[-1]}" if held else "this partition is empty",
        )
    async with RecordDecoder.connect(bootstrap) as decoder:
        (view,) = await _views(decoder, chosen, full=True)
    await _audit(
        bootstrap,
        "dlq.show",
        args,
        [args.topic],
        parameters={"partition": args.partition, "offset": args.offset},
    )
    print(json.dumps(view, indent=2, ensure_ascii=False))
    return 0


# -- redrive / purge -------------------------------------------------------------------------


async def _redrive(args: argparse.Namespace) -> int:
    reason = _reason(args)
    check_ledger_given(args, args.subscriber, [args.topic], action="redrive")
    from adapters.runner import load_subscriber_sink  # adapters sit above the library

    target = load_subscriber_sink(args.adapter, args.subscriber, [args.topic])
    bootstrap = bootstrap_of(args, target.subscription)
    letters = [
        x
        for x in await read_dead_letters(bootstrap, args.subscriber, args.topic)
        if x.partition == args.partition
    ]
    chosen = select(
        letters,
        from_offset=args.from_offset,
        to_offset=args.to_offset,
        error_class=args.error_class,
    )
    parameters = {
        "partition": args.partition,
        "from_offset": args.from_offset,
        "to_offset": args.to_offset,
        "error_class": args.error_class,
        "adapter": str(args.adapter),
        "mode": "apply-through-sink",
    }
    with replay_ledger(args, args.subscriber, [args.topic], action="redrive") as ledger:
        report = await _redrive_recorded(
            bootstrap, args, target, chosen, letters, parameters, reason, ledger
        )
    if ledger is not None:
        print(f"recorded {ledger.recorded} replay entries in the delivery ledger")
    return _print_redrive(args, report)


async def _redrive_recorded(
    bootstrap: KafkaConnection,
    args: argparse.Namespace,
    target: SubscriberSink,
    chosen: list[DeadLetter],
    letters: list[DeadLetter],
    parameters: dict[str, Any],
    reason: str,
    ledger: ReplayLedger | None,
) -> RedriveReport:
    subscription = target.subscription
    async with AuditLog(bootstrap) as audit:

        async def record(result: dict[str, Any]) -> None:
            await audit.record(
                new_record(
                    "dlq.redrive",
                    subscriber=args.subscriber,
                    topics=[args.topic],
                    parameters=parameters,
                    reason=reason,
                    result=result,
                )
            )

        try:
            async with (
                RecordDecoder.connect(
                    bootstrap,
                    schemas_dir=subscription.schemas_dir,
                    registry_topic=subscription.registry_topic,
                ) as decoder,
                target.sink as handler,
            ):
                report = await redrive(
                    chosen,
                    handler,
                    decoder,
                    batch_handler=target.batch_handler,
                    all_offsets=[x.offset for x in letters],
                    retry=subscription.retry,
                    ledger=ledger,
                )
        except BusError as exc:
            await record(failure_result(exc))
            raise
        await record(report.as_result())
    return report


def _print_redrive(args: argparse.Namespace, report: RedriveReport) -> int:
    print(
        f"selected {report.selected}: applied {len(report.applied)}, already applied "
        f"(duplicates) {len(report.duplicates)}, failed again {len(report.failed)}"
    )
    for failure in report.failed:
        print(f"  @{failure['offset']}: {failure['error_class']}: {failure['message'][:300]}")
    if report.purge_to is not None:
        print(
            f"every dead letter up to offset {report.purge_to} is resolved; after review, "
            f"remove them with:\n  spbe-bus dlq purge --subscriber {args.subscriber} "
            f"--topic {args.topic} --partition {args.partition} --to-offset {report.purge_to} "
            '--reason "..."'
        )
    return 1 if report.failed else 0


async def _purge(args: argparse.Namespace) -> int:
    reason = _reason(args)
    bootstrap = bootstrap_of(args, None)
    parameters = {"partition": args.partition, "to_offset": args.to_offset}
    async with AuditLog(bootstrap) as audit:

        async def record(result: dict[str, Any]) -> None:
            await audit.record(
                new_record(
                    "dlq.purge",
                    subscriber=args.subscriber,
                    topics=[args.topic],
                    parameters=parameters,
                    reason=reason,
                    result=result,
                )
            )

        try:
            report = await purge(
                bootstrap,
                args.subscriber,
                args.topic,
                to_offset=args.to_offset,
                partition=args.partition,
            )
        except BusError as exc:
            await record(failure_result(exc))
            raise
        await record({"deleted": report.deleted, "first_offset_now": report.after})
    print(
        f"purged {report.deleted} dead letter(s) of {report.topic}[{report.partition}]; "
        f"it now starts at offset {report.after}"
    )
    return 0
