"""``spbe-bus catalog check | plan | apply | credentials | diagram``: the catalogue, the
topics it provisions, the users and ACLs it grants (those in :mod:`bus.cli.access_cmd`),
and the picture of its data flows (:mod:`bus.cli.diagram_cmd`).

``plan`` exits 1 when a change is refused (destructive or impossible), 0 otherwise;
``apply`` exits 1 and changes nothing when the plan has a refusal.

``catalog asyncapi`` and ``catalog metadata`` (:mod:`bus.cli.describe_cmd`) write the
catalogue's machine-readable descriptions.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from bus.cli.access_cmd import (
    add_access_arguments,
    add_credentials_commands,
    apply_access_part,
    plan_access_part,
)
from bus.cli.connection_args import (
    DEFAULT_BOOTSTRAP,
    ENV_BOOTSTRAP,
    add_credentials_option,
    connection_of,
)
from bus.cli.describe_cmd import add_describe_commands
from bus.cli.diagram_cmd import add_diagram_command
from bus.connection import KafkaConnection
from bus.ops.catalog import default_catalog_path, load_catalog
from bus.ops.catalog_plan import apply_plan, plan_catalog

__all__ = ["ENV_BOOTSTRAP", "add_bootstrap_argument", "add_catalog_commands", "bootstrap_of"]


def add_bootstrap_argument(parser: argparse.ArgumentParser) -> None:
    """``--bootstrap``, ``--credentials`` and ``--catalog``, shared with ``spbe-bus status``."""
    parser.add_argument(
        "--catalog",
        type=Path,
        default=None,
        metavar="FILE",
        help=f"the catalogue (default: {default_catalog_path()})",
    )
    parser.add_argument(
        "--bootstrap",
        default=None,
        metavar="HOST:PORT",
        help=f"Kafka to use (default: ${ENV_BOOTSTRAP}, else {DEFAULT_BOOTSTRAP})",
    )
    add_credentials_option(parser)


def bootstrap_of(args: argparse.Namespace) -> KafkaConnection:
    """The connection of ``--bootstrap`` and ``--credentials`` over the ``SPBE_KAFKA_*``
    environment (bus.connection), else the local default."""
    return connection_of(args)


def add_catalog_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    catalog = sub.add_parser(
        "catalog", help="the catalogue: check it, plan and apply its topics, draw its flows"
    )
    csub = catalog.add_subparsers(dest="catalog_command", required=True, metavar="COMMAND")

    check = csub.add_parser("check", help="validate the catalogue against the data standard")
    check.add_argument("--catalog", type=Path, default=None, metavar="FILE")
    check.set_defaults(handler=_check)

    plan = csub.add_parser("plan", help="show what differs from the cluster; change nothing")
    add_bootstrap_argument(plan)
    add_access_arguments(plan)
    plan.set_defaults(handler=_plan)

    apply = csub.add_parser(
        "apply", help="create topics, add partitions, change configs, users and ACLs"
    )
    add_bootstrap_argument(apply)
    add_access_arguments(apply)
    apply.set_defaults(handler=_apply)

    add_credentials_commands(csub, add_bootstrap_argument, bootstrap_of)
    add_describe_commands(csub)
    add_diagram_command(csub, add_bootstrap_argument, bootstrap_of)


def _check(args: argparse.Namespace) -> int:
    catalog, report = load_catalog(args.catalog)
    for warning in report.warnings:
        print(f"warning: {warning}")
    subscribers = catalog.subscribers()
    print(
        f"catalogue valid: {len(catalog.stewards)} stewards, {len(catalog.topics)} topics, "
        f"{len(catalog.subscriptions)} subscriptions ({len(subscribers)} subscribers), "
        f"{len(catalog.api_clients)} API clients"
    )
    return 0


def _plan(args: argparse.Namespace) -> int:
    catalog, report = load_catalog(args.catalog)
    plan = asyncio.run(plan_catalog(bootstrap_of(args), catalog, notes=report.warnings))
    print(plan.render())
    access = asyncio.run(plan_access_part(bootstrap_of(args), catalog, args))
    return 1 if plan.refusals else access


def _apply(args: argparse.Namespace) -> int:
    catalog, report = load_catalog(args.catalog)
    bootstrap = bootstrap_of(args)

    async def run() -> int:
        plan = await plan_catalog(bootstrap, catalog, notes=report.warnings)
        print(plan.render())
        if plan.refusals:
            print("nothing applied: correct the catalogue as each refusal says, then plan again")
            return 1
        if not plan.in_sync:
            after = await apply_plan(bootstrap, catalog, plan)  # raises on refusals
            if not after.in_sync:
                print("the cluster does not match yet; still different:")
                print(after.render())
                return 1
            print(f"applied {len(plan.changes)} change(s); the cluster matches the catalogue")
        return await apply_access_part(bootstrap, catalog, args)

    return asyncio.run(run())
