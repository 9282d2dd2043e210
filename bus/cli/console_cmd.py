"""``spbe-bus console``: the operator console (a read-only HTTPS page of the bus's state).

``console serve --config deploy/console.yaml`` runs it until SIGTERM or SIGINT.
``console operator-password`` makes a new random password for an operator and prints it
once, with the ``password_hash`` line for the operator's entry in the console file, which
keeps only the hash. The password goes to standard output and nowhere else.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

__all__ = ["add_console_commands"]


def add_console_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``console`` command group and its subcommands."""
    console = sub.add_parser(
        "console",
        help="the operator console: a live HTTPS page of lag, dead letters, adapters, audit",
        description="A read-only web page for operators, behind a login over HTTPS: per "
        "subscription lag, last applied event, dead letters (masked) and contract expiry; "
        "per adapter up or down; the latest audit records. It updates itself.",
    )
    console_sub = console.add_subparsers(dest="console_command", required=True, metavar="COMMAND")
    serve = console_sub.add_parser(
        "serve", help="serve the console (HTTPS) until SIGTERM or SIGINT"
    )
    serve.add_argument(
        "--config",
        type=Path,
        required=True,
        metavar="FILE",
        help="the console file (deploy/console.yaml)",
    )
    serve.add_argument(
        "--check", action="store_true", help="validate the file and exit without serving"
    )
    serve.set_defaults(handler=_serve, default_log_level="INFO")
    password = console_sub.add_parser(
        "operator-password",
        help="a new operator password, and the hash line for the console file",
        description="Make a new random password and print it once, with the password_hash "
        "line to put in the operator's entry of the console file. The console keeps only the "
        "hash: give the password to the operator in person or over a secure channel; a lost "
        "password is replaced by running this again.",
    )
    password.set_defaults(handler=_operator_password)


def _serve(args: argparse.Namespace) -> int:
    # The console sits above the core library; only the CLI reaches up to it.
    from adapters.console import Console, ConsoleFile
    from bus.lifecycle import run_until_stopped

    config = ConsoleFile.from_file(args.config).console
    if args.check:
        print(f"{args.config}: valid console configuration")
        return 0

    async def serve() -> None:
        async with Console(config) as console:
            await run_until_stopped(console.run, console.request_stop)

    asyncio.run(serve())
    return 0


def _operator_password(args: argparse.Namespace) -> int:
    from adapters.gateway.secrets import hash_client_secret, new_client_secret

    secret = new_client_secret()
    print(f"password: {secret}")
    print(f"password_hash: {hash_client_secret(secret)}")
    print(
        "The password is shown only this once: give it to the operator over a secure "
        "channel. Put the password_hash line in the operator's entry of the console file.",
        file=sys.stderr,
    )
    return 0
