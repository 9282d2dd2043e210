"""The access part of ``catalog plan`` / ``apply``, and ``catalog credentials rotate``.

``plan`` prints the users and ACLs the catalogue wants changed and the subscriptions about to
expire; ``apply`` registers the reviewed standard, creates the users (writing each new
password once to its hand-over file) and grants and revokes the ACLs. A cluster without an
authorizer (plaintext development) has no ACLs: both say so and leave access alone.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from datetime import date
from pathlib import Path

from bus.connection import KafkaConnection, as_connection
from bus.errors import ConfigError
from bus.ops.access import (
    DEFAULT_HANDOVER_DIR,
    apply_access,
    plan_access,
    register_reviewed_standard,
    rotate_password,
    unregistered_schemas,
)
from bus.ops.access_plan import AccessPlan
from bus.ops.acl_admin import NoAuthorizerError
from bus.ops.audit import AuditLog
from bus.ops.catalog import Catalog

__all__ = [
    "ConnectionOf",
    "add_access_arguments",
    "add_credentials_commands",
    "add_handover_argument",
    "apply_access_part",
    "plan_access_part",
]

ConnectionOf = Callable[[argparse.Namespace], "KafkaConnection | str"]

_NO_AUTHORIZER = (
    "access: the cluster has no authorizer (not secured), so it enforces no ACLs; users, "
    "ACLs and the registration of the standard are left alone"
)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def add_handover_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--handover-dir",
        type=Path,
        default=DEFAULT_HANDOVER_DIR,
        metavar="DIR",
        help="where each new principal's credentials file <principal>.json is written "
        f"(mode 0600; default ./{DEFAULT_HANDOVER_DIR})",
    )


def add_access_arguments(parser: argparse.ArgumentParser) -> None:
    """``--handover-dir`` and ``--as-of`` of ``catalog plan`` and ``apply``."""
    add_handover_argument(parser)
    parser.add_argument(
        "--as-of",
        type=_date,
        default=None,
        metavar="YYYY-MM-DD",
        help="decide subscription expiry as on this date (default: today)",
    )
    parser.add_argument("--reason", default=None, help="why, for the audit trail")


def _today(args: argparse.Namespace) -> date:
    as_of: date | None = getattr(args, "as_of", None)
    return as_of or date.today()


async def _plan(
    connection: KafkaConnection, catalog: Catalog, args: argparse.Namespace
) -> AccessPlan | None:
    try:
        return await plan_access(connection, catalog, today=_today(args))
    except NoAuthorizerError:
        return None


async def plan_access_part(
    kafka: KafkaConnection | str, catalog: Catalog, args: argparse.Namespace
) -> int:
    """Print the access plan and the schemas apply would register; 0 (nothing is refused)."""
    connection = as_connection(kafka)
    plan = await _plan(connection, catalog, args)
    if plan is None:
        print(_NO_AUTHORIZER)
        return 0
    missing = await unregistered_schemas(connection)
    if missing:
        print(f"+ register in _spbe.schemas, as the operator: {', '.join(missing)}")
    print(plan.render())
    return 0


async def apply_access_part(
    kafka: KafkaConnection | str, catalog: Catalog, args: argparse.Namespace
) -> int:
    """Register the standard, then make the access plan; 1 when the cluster does not match."""
    connection = as_connection(kafka)
    plan = await _plan(connection, catalog, args)
    if plan is None:
        print(_NO_AUTHORIZER)
        return 0
    if await unregistered_schemas(connection):
        registered = await register_reviewed_standard(connection)
        print(f"registered the data standard in _spbe.schemas ({len(registered)} schemas)")
    print(plan.render())
    if plan.in_sync:
        return 0
    async with AuditLog(connection) as audit:
        result = await apply_access(
            connection,
            catalog,
            today=_today(args),
            handover_dir=args.handover_dir,
            audit=audit,
            reason=args.reason,
        )
    for principal, path in sorted(result.handover_files.items()):
        print(
            f"wrote the credentials of {principal} to {path} (mode 0600): hand it to the "
            "application's administrators, then delete it here"
        )
    if not result.after.in_sync:
        print("access does not match the catalogue yet; still different:")
        print(result.after.render())
        return 1
    applied = result.applied
    print(
        f"access applied: {len(applied.users)} user(s) created, {len(applied.grants)} ACL(s) "
        f"granted, {len(applied.revocations)} revoked"
    )
    return 0


def add_credentials_commands(
    csub: argparse._SubParsersAction[argparse.ArgumentParser],
    add_connection_arguments: Callable[[argparse.ArgumentParser], None],
    connection_of: ConnectionOf,
) -> None:
    """``catalog credentials rotate PRINCIPAL``."""
    credentials = csub.add_parser("credentials", help="the SCRAM users of the catalogue")
    ccsub = credentials.add_subparsers(dest="credentials_command", required=True, metavar="COMMAND")
    rotate = ccsub.add_parser(
        "rotate", help="give one principal a new password and write its hand-over file again"
    )
    rotate.add_argument("principal", metavar="PRINCIPAL", help="e.g. disdukcapil-siak")
    add_connection_arguments(rotate)
    add_handover_argument(rotate)
    rotate.add_argument("--reason", default=None, help="why, for the audit trail")

    def run(args: argparse.Namespace) -> int:
        principal: str = args.principal.strip()
        if not principal:
            raise ConfigError("PRINCIPAL is empty", fix="name a user, e.g. disdukcapil-siak")
        connection = as_connection(connection_of(args))

        async def rotated() -> Path:
            async with AuditLog(connection) as audit:
                return await rotate_password(
                    connection,
                    principal,
                    handover_dir=args.handover_dir,
                    audit=audit,
                    reason=args.reason,
                )

        path = asyncio.run(rotated())
        print(
            f"rotated the password of {principal}; its new credentials are in {path} "
            "(mode 0600). The old password no longer works: restart the application with "
            "the new file"
        )
        return 0

    rotate.set_defaults(handler=run)
