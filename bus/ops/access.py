"""``catalog plan`` / ``apply`` for access: SCRAM users, ACLs and the reviewed standard.

:func:`plan_access` reads the cluster's ACLs and SCRAM users and the principals an earlier
apply managed (``_spbe.audit``), and returns the :class:`~bus.ops.access_plan.AccessPlan`
from the catalogue (changes nothing). :func:`apply_access` makes it: it creates each
missing user with a generated password written once to the principal's hand-over file
(``<handover_dir>/<principal>.json``, a credentials file an adapter reads with
``credentials_file:``), grants the missing bindings, revokes the ones the catalogue no
longer grants, waits until the cluster reports the result, and writes an audit record for
each principal's user, grants and revocations. :func:`rotate_password` gives one existing
user a new password and writes its hand-over file again.

:func:`register_reviewed_standard` registers every schema of the data standard in
``_spbe.schemas`` as the operator, the topic's only writer; a publisher then finds its
schemas registered and writes nothing there.

Every call takes the operator's :class:`~bus.connection.KafkaConnection` (or bootstrap
servers, security from the environment).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Final

from bus.connection import KafkaConnection, KafkaSecurity, as_connection, write_credentials_file
from bus.contract.schema import AvroSchema
from bus.contract.standard import load_standard
from bus.logs import get_logger
from bus.ops.access_plan import (
    AccessPlan,
    AclEntry,
    ClusterAccess,
    compute_access_plan,
    desired_access,
)
from bus.ops.acl_admin import SCRAM_ITERATIONS, AclAdmin
from bus.ops.audit import AuditLog, new_record, read_audit
from bus.ops.catalog import Catalog
from bus.ops.catalog_diff import ProvisioningError
from bus.ops.principals import OPERATOR_PRINCIPAL
from bus.registry import DEFAULT_TOPIC as SCHEMAS_TOPIC
from bus.registry import RegisteredSchema, SchemaRegistry, register_standard
from bus.registry.records import subject_of

__all__ = [
    "ACCESS_ACTIONS",
    "DEFAULT_HANDOVER_DIR",
    "AccessResult",
    "apply_access",
    "handover_file",
    "handover_security",
    "new_password",
    "plan_access",
    "register_reviewed_standard",
    "rotate_password",
    "unregistered_schemas",
]

#: Where hand-over files go unless ``--handover-dir`` says otherwise (relative to the cwd).
DEFAULT_HANDOVER_DIR: Final = Path("handover")
#: The audit actions of access changes; a principal named in one is managed from then on.
ACCESS_ACTIONS: Final = (
    "access.user_created",
    "access.grant",
    "access.revoke",
    "access.password_rotated",
)
_MANAGING_ACTIONS: Final = frozenset({"access.user_created", "access.grant"})
_SETTLE_TIMEOUT_S: Final = 60.0

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class AccessResult:
    """What :func:`apply_access` did, and the plan computed afterwards."""

    applied: AccessPlan
    after: AccessPlan
    handover_files: Mapping[str, Path] = field(default_factory=dict)


def new_password() -> str:
    """A random password of 43 URL-safe characters (256 bits; never a comma)."""
    return secrets.token_urlsafe(32)


def handover_file(handover_dir: Path, principal: str) -> Path:
    return handover_dir / f"{principal}.json"


def handover_security(operator: KafkaSecurity, principal: str, password: str) -> KafkaSecurity:
    """The operator's cluster settings (protocol, CA) for ``principal``: its own user and
    password, no client certificate of the operator's."""
    protocol = operator.protocol
    if not operator.sasl:
        protocol = "SASL_SSL" if operator.tls else "SASL_PLAINTEXT"
    return operator.model_copy(
        update={
            "protocol": protocol,
            "sasl_mechanism": "SCRAM-SHA-512",
            "cert_file": None,
            "key_file": None,
            "credentials_file": None,
        }
    ).with_user(principal, password)


async def _managed_before(connection: KafkaConnection) -> frozenset[str]:
    """Principals an earlier apply created a user for or granted (from ``_spbe.audit``)."""
    records = await read_audit(connection)
    return frozenset(r.subscriber for r in records if r.action in _MANAGING_ACTIONS)


async def _observe(admin: AclAdmin, connection: KafkaConnection) -> ClusterAccess:
    acls = await admin.acls()  # first: a cluster without an authorizer stops here
    users = await admin.scram_users()
    return ClusterAccess(acls=acls, users=users, managed_before=await _managed_before(connection))


async def plan_access(kafka: KafkaConnection | str, catalog: Catalog, *, today: date) -> AccessPlan:
    """What apply would change in users and ACLs (changes nothing).

    Raises :class:`~bus.ops.acl_admin.NoAuthorizerError` on a cluster without an authorizer.
    """
    connection = as_connection(kafka)
    admin = AclAdmin(connection)
    return compute_access_plan(desired_access(catalog, today), await _observe(admin, connection))


async def apply_access(
    kafka: KafkaConnection | str,
    catalog: Catalog,
    *,
    today: date,
    handover_dir: Path = DEFAULT_HANDOVER_DIR,
    audit: AuditLog,
    reason: str | None = None,
) -> AccessResult:
    """Create the missing users, grant and revoke ACLs; return the plan and the one after.

    ``audit`` must be started: each change is recorded there once it is made.
    """
    connection = as_connection(kafka)
    admin = AclAdmin(connection)
    desired = desired_access(catalog, today)
    plan = compute_access_plan(desired, await _observe(admin, connection))
    operator = _operator(connection)
    files: dict[str, Path] = {}
    for principal in plan.users:
        path = handover_file(handover_dir, principal)
        password = new_password()
        security = handover_security(connection.security, principal, password)
        write_credentials_file(path, connection.bootstrap_servers, security)
        try:
            await admin.set_password(principal, password)
        except BaseException:
            path.unlink(missing_ok=True)  # the password in it was never valid
            raise
        files[principal] = path
        log.info("access.user_created", principal=principal, handover_file=str(path))
        await audit.record(
            new_record(
                "access.user_created",
                subscriber=principal,
                topics=(),
                parameters={
                    "mechanism": "SCRAM-SHA-512",
                    "iterations": SCRAM_ITERATIONS,
                    "handover_file": str(path.resolve()),
                },
                reason=reason,
                principal=operator,
            )
        )
    await admin.create_acls(plan.grants)
    await _record_changes(audit, plan, "access.grant", operator, reason)
    await admin.delete_acls(plan.revocations)
    await _record_changes(audit, plan, "access.revoke", operator, reason)
    after = await _settle(admin, connection, catalog, today)
    return AccessResult(applied=plan, after=after, handover_files=files)


async def _record_changes(
    audit: AuditLog, plan: AccessPlan, action: str, operator: str, reason: str | None
) -> None:
    for principal in plan.principals():
        grants, revocations = plan.changes_of(principal)
        entries = grants if action == "access.grant" else revocations
        if not entries:
            continue
        log.info(action, principal=principal, acls=len(entries))
        await audit.record(
            new_record(
                action,
                subscriber=principal,
                topics=sorted({a.resource_name for a in entries if a.resource_type == "TOPIC"}),
                parameters={"acls": [_audited(a) for a in entries]},
                reason=reason,
                result={"count": len(entries)},
                principal=operator,
            )
        )


def _audited(entry: AclEntry) -> str:
    return f"{entry.describe()} ({entry.pattern_type.lower()}, host {entry.host})"


async def _settle(
    admin: AclAdmin, connection: KafkaConnection, catalog: Catalog, today: date
) -> AccessPlan:
    """Plan again until the cluster reports what was applied (metadata propagates)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _SETTLE_TIMEOUT_S
    desired = desired_access(catalog, today)
    while True:
        after = compute_access_plan(desired, await _observe(admin, connection))
        if after.in_sync or loop.time() > deadline:
            return after
        await asyncio.sleep(0.5)


async def rotate_password(
    kafka: KafkaConnection | str,
    principal: str,
    *,
    handover_dir: Path = DEFAULT_HANDOVER_DIR,
    audit: AuditLog,
    reason: str | None = None,
) -> Path:
    """Give ``principal``'s existing SCRAM-SHA-512 user a new password; return its new
    hand-over file. The old password stops working once the brokers have the new one."""
    connection = as_connection(kafka)
    if principal == OPERATOR_PRINCIPAL:
        raise ProvisioningError(
            f"{principal} is the operator, whose credential belongs to the cluster's set-up",
            fix="rotate the operator with kafka-configs.sh --alter --entity-type users "
            "--add-config 'SCRAM-SHA-512=[password=...]' and update its credentials file",
        )
    admin = AclAdmin(connection)
    if principal not in await admin.scram_users():
        raise ProvisioningError(
            f"there is no SCRAM-SHA-512 user {principal} to rotate",
            fix="check the name (a steward application such as disdukcapil-siak, or a "
            "subscriber id); 'spbe-bus catalog apply' creates the users of the catalogue",
        )
    password = new_password()
    await admin.set_password(principal, password)
    path = handover_file(handover_dir, principal)
    try:
        write_credentials_file(
            path,
            connection.bootstrap_servers,
            handover_security(connection.security, principal, password),
        )
    except OSError as exc:
        raise ProvisioningError(
            f"the password of {principal} was replaced but its hand-over file {path} could "
            f"not be written: {exc.strerror}",
            fix=f"correct the directory, then rotate {principal} again",
        ) from exc
    log.info("access.password_rotated", principal=principal, handover_file=str(path))
    await audit.record(
        new_record(
            "access.password_rotated",
            subscriber=principal,
            topics=(),
            parameters={"mechanism": "SCRAM-SHA-512", "handover_file": str(path.resolve())},
            reason=reason,
            principal=_operator(connection),
        )
    )
    return path


def _operator(connection: KafkaConnection) -> str:
    """Who acts in audit records: the connection's SASL user, else the default principal."""
    return (connection.security.username or "") if connection.security.sasl else ""


# -- the reviewed standard -----------------------------------------------------------------


async def unregistered_schemas(
    kafka: KafkaConnection | str, standard: Mapping[str, AvroSchema] | None = None
) -> list[str]:
    """The standard's schemas ``_spbe.schemas`` does not hold yet (by event name).

    Reads the registry only when its topic exists, so planning creates nothing.
    """
    schemas = standard if standard is not None else load_standard()
    connection = as_connection(kafka)
    if SCHEMAS_TOPIC not in await AclAdmin(connection).topics():
        return sorted(schemas)
    async with SchemaRegistry(connection) as registry:
        return sorted(
            name
            for name, schema in schemas.items()
            if registry.find(subject_of(schema), schema.fingerprint) is None
        )


async def register_reviewed_standard(
    kafka: KafkaConnection | str, standard: Mapping[str, AvroSchema] | None = None
) -> list[RegisteredSchema]:
    """Register every schema of the data standard (those registered already write nothing)."""
    schemas = standard if standard is not None else load_standard()
    connection = as_connection(kafka)
    principal = _operator(connection) or None
    async with SchemaRegistry(connection, principal=principal) as registry:
        return await register_standard(registry, schemas)
