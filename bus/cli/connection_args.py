"""Where Kafka is and how to reach it, for every command that talks to Kafka.

``--bootstrap HOST:PORT`` and ``--credentials FILE`` (the credentials file ``spbe-bus kafka
up --secure`` or ``catalog apply`` wrote). The security itself comes from
:mod:`bus.connection`: an adapter file's ``security:`` section where the command reads one,
else the ``SPBE_KAFKA_*`` environment; ``--credentials`` replaces
``$SPBE_KAFKA_CREDENTIALS``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from bus.connection import KafkaConnection
from bus.subscriber import SubscriberConfig

__all__ = [
    "DEFAULT_BOOTSTRAP",
    "ENV_BOOTSTRAP",
    "ENV_CREDENTIALS",
    "add_credentials_option",
    "connection_of",
]

ENV_BOOTSTRAP = "SPBE_KAFKA_BOOTSTRAP"
ENV_CREDENTIALS = "SPBE_KAFKA_CREDENTIALS"
#: The local development cluster, when nothing else names one.
DEFAULT_BOOTSTRAP = "127.0.0.1:9092"


def add_credentials_option(parser: argparse.ArgumentParser) -> None:
    """``--credentials FILE``: the Kafka credentials file to connect with."""
    parser.add_argument(
        "--credentials",
        type=Path,
        default=None,
        metavar="FILE",
        help=f"Kafka credentials file (0600 JSON) to connect with (default: ${ENV_CREDENTIALS}; "
        "docs/security.md)",
    )


def connection_of(
    args: argparse.Namespace, subscription: SubscriberConfig | None = None
) -> KafkaConnection:
    """The connection of a command: its options over the adapter file's, over the environment.

    Servers: ``--bootstrap``, else the adapter file's (``subscription``), else
    ``$SPBE_KAFKA_BOOTSTRAP``, else the credentials file's, else the local default.
    Security: ``--credentials`` (with the ``SPBE_KAFKA_*`` overrides), else the adapter
    file's ``security:``, else the ``SPBE_KAFKA_*`` environment.
    """
    credentials: Path | None = getattr(args, "credentials", None)
    servers: str | None = getattr(args, "bootstrap", None) or None
    if subscription is not None:
        if credentials is None:
            return KafkaConnection(
                bootstrap_servers=servers or subscription.bootstrap_servers,
                security=subscription.security,
            )
        servers = servers or subscription.bootstrap_servers
    env = dict(os.environ)
    if credentials is not None:
        env[ENV_CREDENTIALS] = str(credentials)
    if servers is None and not any(
        env.get(n, "").strip() for n in (ENV_BOOTSTRAP, ENV_CREDENTIALS)
    ):
        servers = DEFAULT_BOOTSTRAP
    return KafkaConnection.from_environment(servers, env)
