"""``spbe-bus gateway``: the REST gateway's operator commands.

``gateway client-secret CLIENT`` registers an API client: it prints a new client secret,
once, and the ``secret_hash`` line for the client's entry in the gateway file, which keeps
only the hash. The secret goes to standard output and nowhere else: no log line, no file.

``gateway certificate --ca-dir DIR --output OUT`` issues the gateway's HTTPS certificate
from the local CA of a secured development cluster (``<data dir>/tls``), for the hosts
given (default ``127.0.0.1`` and ``localhost``).

``gateway openapi --output docs/api/openapi.json`` writes the OpenAPI 3.1 document generated
from the data standard (a unit test compares the repository's copy with it); without
``--output`` the document goes to stdout.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from bus.contract.standard import default_schema_dir, example, load_standard
from bus.errors import ConfigError

__all__ = ["add_gateway_commands"]

#: An API client id is its Kafka principal: a subscriber id or an application principal.
_CLIENT_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")

#: Where ``openapi --server-url`` points by default: the gateway on this machine.
_DEFAULT_SERVER_URL = "https://127.0.0.1:8443"


def add_gateway_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``gateway`` command group and its subcommands."""
    gateway = sub.add_parser(
        "gateway",
        help="the REST gateway: register API clients, write its OpenAPI document",
        description="Operator commands of the REST gateway (OAuth 2.0 client credentials, "
        "JSON over HTTPS for OPD applications without Kafka).",
    )
    gateway_sub = gateway.add_subparsers(dest="gateway_command", required=True, metavar="COMMAND")
    _add_client_secret_command(gateway_sub)
    _add_openapi_command(gateway_sub)
    _add_certificate_command(gateway_sub)


def _add_client_secret_command(
    gateway_sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    command = gateway_sub.add_parser(
        "client-secret",
        help="a new secret for an API client, and the hash line for the gateway file",
        description="Make a new client secret for CLIENT and print it once, with the "
        "secret_hash line to put in the client's entry of the gateway file. The gateway "
        "keeps only the hash: hand the secret to the client's operators over a secure "
        "channel; a lost secret is replaced by running this again (the old one stops "
        "working when the gateway file has the new hash).",
    )
    command.add_argument(
        "client", metavar="CLIENT", help="the client id, its Kafka principal (dpmptsp-sicantik)"
    )
    command.set_defaults(handler=_client_secret)


def _client_secret(args: argparse.Namespace) -> int:
    from adapters.gateway.secrets import hash_client_secret, new_client_secret

    client: str = args.client
    if _CLIENT_ID.fullmatch(client) is None:
        raise ConfigError(
            "CLIENT is not a client id (rule: its Kafka principal: lowercase letters, digits, "
            "'.', '_' and '-', starting with a letter or digit, at most 100 characters)",
            fix="give the subscriber id or application principal the catalogue's api_clients "
            "names, e.g. dpmptsp-sicantik",
        )
    secret = new_client_secret()
    hashed = hash_client_secret(secret)
    print(f"client_id: {client}")
    print(f"client_secret: {secret}")
    print(f"secret_hash: {hashed}")
    print(
        "The client secret is shown only this once: give it to the client's operators over "
        "a secure channel. Put the secret_hash line in the client's entry of the gateway file.",
        file=sys.stderr,
    )
    return 0


def _add_openapi_command(gateway_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    openapi = gateway_sub.add_parser(
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


def _add_certificate_command(
    gateway_sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    command = gateway_sub.add_parser(
        "certificate",
        help="issue the gateway's HTTPS certificate from the local development CA",
        description="Issue spbe-gateway.pem (with the CA in its chain) and spbe-gateway.key "
        "(0600) into OUTPUT, signed by the local CA of a secured development cluster. In "
        "production the gateway uses the Pemda's own certificate instead.",
    )
    command.add_argument(
        "--ca-dir",
        type=Path,
        required=True,
        metavar="DIR",
        help="the folder of the local CA (ca.pem, ca.key): <cluster data dir>/tls",
    )
    command.add_argument("--output", "-o", type=Path, required=True, metavar="OUTPUT")
    command.add_argument(
        "--host",
        action="append",
        dest="hosts",
        metavar="HOST",
        help="a DNS name or IP address clients use (repeatable; default 127.0.0.1, localhost)",
    )
    command.set_defaults(handler=_certificate)


def _certificate(args: argparse.Namespace) -> int:
    from adapters.gateway.tls import DEFAULT_CERTIFICATE_HOSTS, issue_local_certificate

    issued = issue_local_certificate(
        args.ca_dir, args.output, args.hosts or DEFAULT_CERTIFICATE_HOSTS
    )
    print(f"certificate: {issued.certificate}")
    print(f"key: {issued.key}")
    return 0
