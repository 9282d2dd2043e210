"""The ``spbe-bus`` command: a thin layer over the library.

Exit codes: 0 done, 1 the bus refused or failed (the message says why and how to fix
it), 2 the command line itself was wrong.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from aiokafka.errors import KafkaError

from bus.cli.catalog_cmd import add_catalog_commands
from bus.cli.console_cmd import add_console_commands
from bus.cli.demo_cmd import add_demo_command
from bus.cli.dlq_cmd import add_dlq_commands
from bus.cli.events_cmd import add_events_commands
from bus.cli.gateway_cmd import add_gateway_commands
from bus.cli.kafka_cmd import add_kafka_commands
from bus.cli.ledger_cmd import add_ledger_commands
from bus.cli.logs_cmd import add_logs_command
from bus.cli.replay_cmd import add_replay_command
from bus.cli.run_cmd import add_run_command
from bus.cli.schemas_cmd import add_schemas_commands
from bus.cli.snapshot_cmd import add_snapshot_command
from bus.cli.status_cmd import add_status_command
from bus.errors import BusError
from bus.logs import configure_logging
from bus.startup import DEFAULT_START_TIMEOUT_S, START_TIMEOUT_ENV, parse_seconds

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spbe-bus",
        description="SPBE data exchange bus: events between OPD applications over Kafka.",
    )
    parser.add_argument(
        "--log-level",
        default=None,
        help="DEBUG, INFO, WARNING or ERROR (default WARNING; INFO for snapshot, whose "
        "progress lines are INFO)",
    )
    parser.add_argument(
        "--log-json", action="store_true", default=None, help="log JSON lines to stderr"
    )
    parser.add_argument(
        "--start-timeout",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help=f"how long to wait for a Kafka cluster that is away or failing over "
        f"(default ${START_TIMEOUT_ENV} or {DEFAULT_START_TIMEOUT_S:g})",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_kafka_commands(sub)
    add_demo_command(sub)
    add_schemas_commands(sub)
    add_events_commands(sub)
    add_run_command(sub)
    add_snapshot_command(sub)
    add_catalog_commands(sub)
    add_status_command(sub)
    add_logs_command(sub)
    add_replay_command(sub)
    add_dlq_commands(sub)
    add_ledger_commands(sub)
    add_gateway_commands(sub)
    add_console_commands(sub)
    return parser


def _seconds(text: str) -> float:
    value = parse_seconds(text)
    if value is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds greater than 0")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.log_level is None:
        args.log_level = getattr(args, "default_log_level", "WARNING")
    configure_logging(json=args.log_json, level=args.log_level)
    if args.start_timeout is not None:
        os.environ[START_TIMEOUT_ENV] = str(args.start_timeout)
    try:
        code: int = args.handler(args)
    except BusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KafkaError as exc:  # one the bus did not name: still a message, not a traceback
        print(f"error: Kafka failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        print(
            "  fix: run the command again; if it keeps failing, check the cluster with "
            "'spbe-bus kafka status' or the broker logs",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``| head``): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
