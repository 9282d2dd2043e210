"""``spbe-bus gateway openapi``: the REST gateway's OpenAPI 3.1 document from the standard.

``--output docs/api/openapi.json`` keeps the repository's copy current (a unit test
compares the two); without ``--output`` the document goes to stdout.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bus.contract.standard import default_schema_dir, example, load_standard

__all__ = ["add_gateway_commands"]

#: Where ``openapi --server-url`` points by default: the gateway on this machine.
_DEFAULT_SERVER_URL = "https://127.0.0.1:8443"


def add_gateway_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    gateway = sub.add_parser("gateway", help="the REST gateway (SPBE API table)")
    gsub = gateway.add_subparsers(dest="gateway_command", required=True, metavar="COMMAND")
    openapi = gsub.add_parser(
        "openapi", help="write the OpenAPI 3.1 document generated from the data standard"
    )
    openapi.add_argument(
        "--output", "-o", type=Path, default=None, help="write here instead of stdout"
    )
    openapi.add_argument(
        "--server-url",
        default=_DEFAULT_SERVER_URL,
        metavar="URL",
        help=f"the gateway's base URL in the document (default {_DEFAULT_SERVER_URL})",
    )
    openapi.add_argument(
        "--schemas",
        type=Path,
        default=None,
        help=f"the data standard's .avsc folder (default {default_schema_dir()})",
    )
    openapi.set_defaults(handler=_openapi)


def _openapi(args: argparse.Namespace) -> int:
    # The gateway is an adapter, above the core library; the CLI reaches up to it here only.
    from adapters.gateway.openapi import openapi_document, openapi_json

    standard = load_standard(args.schemas)
    examples = {name: example(name, args.schemas) for name in standard}
    text = openapi_json(openapi_document(standard, examples, server_url=args.server_url))
    if args.output is None:
        sys.stdout.write(text)
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"{args.output}: OpenAPI document of {len(standard)} event types")
    return 0
