"""``spbe-bus ledger who-received``: which OPDs received a resident's data, when, and why.

For a resident's own access request or an audit. The ledger's database comes from
``--ledger-url`` or ``$SPBE_LEDGER_URL``, the ledger secret from ``--secret-file`` or
``$SPBE_LEDGER_SECRET``. The NIK is checked (16 digits, plausible birth date) and turned
into its ledger subject inside; it is never printed, logged or repeated in an error.
``--nik -`` reads it from stdin, so it does not show in the process list or shell history.

Also the ``--ledger-url`` of ``spbe-bus replay`` and ``dlq redrive``, which record the
replays of a projected topic in the ledger (:func:`replay_ledger`; no secret needed).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

from bus.errors import ConfigError
from bus.ledger import LedgerSubjects, WhoReceived
from bus.ops.replay_ledger import ReplayLedger, is_projected, require_ledger

__all__ = [
    "LEDGER_SECRET_ENV",
    "LEDGER_URL_ENV",
    "add_ledger_commands",
    "add_ledger_option",
    "check_ledger_given",
    "parse_time",
    "replay_ledger",
]

LEDGER_URL_ENV = "SPBE_LEDGER_URL"
LEDGER_SECRET_ENV = "SPBE_LEDGER_SECRET"  # noqa: S105 - the variable's name, not a secret
_TIME_RULE = (
    "an ISO 8601 time with its UTC offset, e.g. 2026-12-01T00:00+07:00 or 2026-12-01T00:00Z"
)


def parse_time(text: str, option: str) -> datetime:
    """``text`` as a timezone-aware time; a ConfigError naming ``option`` and the rule if not."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{option} is not a time", fix=f"give {_TIME_RULE}") from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise ConfigError(f"{option} has no UTC offset", fix=f"give {_TIME_RULE}")
    return value


def add_ledger_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ledger = sub.add_parser(
        "ledger",
        help="the delivery ledger: who received a resident's data",
        description="Ask the delivery ledger, which records every delivery of a "
        "resident's data (live, snapshot, replay) before it is delivered.",
    )
    ledger_sub = ledger.add_subparsers(dest="ledger_command", required=True, metavar="COMMAND")
    who = ledger_sub.add_parser(
        "who-received",
        help="which OPDs received this resident's data, when, under which agreement",
        description="Every delivery of one resident's data, newest first, and one line per "
        "subscriber. The NIK is never printed.",
    )
    who.add_argument(
        "--nik", required=True, metavar="NIK", help="the resident's NIK (16 digits); - reads stdin"
    )
    who.add_argument(
        "--from", dest="frm", metavar="TIME", help=f"deliveries at or after TIME ({_TIME_RULE})"
    )
    who.add_argument("--to", metavar="TIME", help="deliveries before TIME (exclusive)")
    who.add_argument(
        "--ledger-url",
        default=None,
        metavar="URL",
        help=f"the ledger's database URL (default ${LEDGER_URL_ENV})",
    )
    who.add_argument(
        "--secret-file",
        type=Path,
        default=None,
        metavar="FILE",
        help=f"a file holding the ledger secret (default ${LEDGER_SECRET_ENV})",
    )
    who.add_argument("--json", action="store_true", help="print the answer as JSON")
    who.set_defaults(handler=_who_received)


def _secret(args: argparse.Namespace) -> bytes:
    if args.secret_file is not None:
        try:
            return bytes(args.secret_file.read_bytes().strip())
        except OSError as exc:
            raise ConfigError(
                f"--secret-file cannot be read ({exc.strerror})",
                fix="give the path of the file holding the ledger secret",
            ) from None
    value = os.environ.get(LEDGER_SECRET_ENV, "")
    if not value:
        raise ConfigError(
            "the ledger secret is not set",
            fix=f"set ${LEDGER_SECRET_ENV} or pass --secret-file FILE",
        )
    return value.encode("utf-8")


def _nik(args: argparse.Namespace) -> str:
    text: str = sys.stdin.readline() if args.nik == "-" else args.nik
    return text.strip()


def _who_received(args: argparse.Namespace) -> int:
    # The ledger's store does SQL IO: it sits above the core library, like run and snapshot.
    from adapters.ledger import LedgerStore

    frm = None if args.frm is None else parse_time(args.frm, "--from")
    to = None if args.to is None else parse_time(args.to, "--to")
    if frm is not None and to is not None and to <= frm:
        raise ConfigError("--to is not after --from", fix="give a --to later than --from")
    url = args.ledger_url or os.environ.get(LEDGER_URL_ENV, "")
    if not url:
        raise ConfigError(
            "the ledger's database URL is not set",
            fix=f"pass --ledger-url URL or set ${LEDGER_URL_ENV}",
        )
    secret = _secret(args)
    nik = _nik(args)
    LedgerSubjects(secret).subject(nik, field_name="--nik")  # refused before any database
    with LedgerStore.from_url(url, secret) as store:
        answer = store.who_received(nik, frm=frm, to=to)
    if args.json:
        print(json.dumps(answer.as_json(), indent=2, ensure_ascii=False))
    else:
        _print_answer(answer)
    return 0


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    return [line.format(*headers).rstrip(), *(line.format(*r).rstrip() for r in rows)]


def _print_answer(answer: WhoReceived) -> None:
    window = ""
    if answer.frm is not None or answer.to is not None:
        start = answer.frm.isoformat() if answer.frm else "the first entry"
        end = answer.to.isoformat() if answer.to else "now"
        window = f" from {start} to {end}"
    if not answer.entries:
        print(f"no delivery of this resident's data is recorded{window}")
        return
    print(
        f"{len(answer.entries):,} deliveries of this resident's data to "
        f"{len(answer.subscribers)} subscribers{window}, newest first:"
    )
    print()
    rows = [
        (
            e.opd,
            e.subscriber,
            e.delivered_at.isoformat(timespec="seconds"),
            e.event_type + ("" if e.kind == "delivery" else f" ({e.kind})"),
            e.purpose,
            e.legal_basis,
        )
        for e in answer.entries
    ]
    headers = ("OPD", "SUBSCRIBER", "WHEN (UTC)", "EVENT", "PURPOSE", "LEGAL BASIS")
    for line in _table(headers, rows):
        print(line)
    print()
    summary = [
        (
            s.opd,
            s.subscriber,
            f"{s.deliveries:,}",
            s.first.isoformat(timespec="seconds"),
            s.last.isoformat(timespec="seconds"),
            "; ".join(basis for _, basis in s.agreements),
        )
        for s in answer.subscribers
    ]
    headers = ("OPD", "SUBSCRIBER", "DELIVERIES", "FIRST", "LAST", "LEGAL BASIS")
    for line in _table(headers, summary):
        print(line)


# -- the ledger of a replay or redrive ---------------------------------------------------------


def add_ledger_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ledger-url",
        default=None,
        metavar="URL",
        help="the delivery ledger's database URL, needed for a projected topic "
        f"(<raw>.for.<subscriber>; default ${LEDGER_URL_ENV})",
    )


def _ledger_url(args: argparse.Namespace) -> str:
    return str(args.ledger_url or os.environ.get(LEDGER_URL_ENV, ""))


def check_ledger_given(
    args: argparse.Namespace, subscriber: str, topics: Sequence[str], *, action: str
) -> None:
    """Refuse, before Kafka is reached, a replay or redrive of a projected topic without
    a ledger URL (a ConfigError naming --ledger-url), or of another subscriber's topic."""
    require_ledger(topics, subscriber, ledger_given=bool(_ledger_url(args)), action=action)


@contextlib.contextmanager
def replay_ledger(
    args: argparse.Namespace, subscriber: str, topics: Sequence[str], *, action: str
) -> Iterator[ReplayLedger | None]:
    """The ledger recording a replay or redrive of ``topics``; None when none is projected.

    Refused (a ConfigError naming --ledger-url) for a projected topic without a ledger URL.
    """
    check_ledger_given(args, subscriber, topics, action=action)
    if not any(is_projected(t) for t in topics):
        yield None
        return
    # The ledger's store does SQL IO: it sits above the core library, like the sinks.
    from adapters.ledger import LedgerStore

    with LedgerStore.from_url(_ledger_url(args), None) as store:
        yield ReplayLedger(store, subscriber)
