"""The catalogue as access control, pure: the ACLs and users it grants, and the diff.

:func:`desired_access` turns a :class:`~bus.ops.catalog.Catalog` and today's date into the
ACL bindings of every principal, exactly and no more (docs/security.md, "Access from the
catalogue"):

* a steward application (``disdukcapil-siak``): WRITE and DESCRIBE on each of its steward's
  topics, IDEMPOTENT_WRITE on the cluster, READ and DESCRIBE on ``_spbe.schemas``;
* a subscriber (its ``subscriber`` id): READ and DESCRIBE on each topic it reads for its
  subscriptions that have not expired, READ on its own consumer group, WRITE and DESCRIBE on
  its own dead letter topic of each (``<topic>.dlq.<subscriber>``, which ``catalog apply``
  creates), READ and DESCRIBE on ``_spbe.schemas``. Of a ``restricted`` topic it reads only
  its projected copy, ``<topic>.for.<subscriber>``, never the topic itself
  (:mod:`bus.ops.contract_topics`);
* the contract service (``spbe-contracts``), while a subscription of a restricted topic is
  active: READ and DESCRIBE on those raw topics, WRITE and DESCRIBE on their active projected
  topics and on its own dead letter topics ``<topic>.dlq.spbe-contracts``, IDEMPOTENT_WRITE
  on the cluster, READ on its group ``spbe-contracts``, and READ, DESCRIBE and WRITE on
  ``_spbe.schemas`` (it registers the projected schemas);
* the REST gateway (``spbe-gateway``), while the catalogue has ``api_clients``: READ and
  DESCRIBE on the projected topic of each active subscription a client names
  (:func:`~bus.ops.api_clients.gateway_read_topics`), WRITE and DESCRIBE on its dead letter
  topic of each (``<projected>.dlq.spbe-gateway``), READ on its group ``spbe-gateway``,
  WRITE and DESCRIBE on the topics of each steward one of whose applications is a client,
  IDEMPOTENT_WRITE on the cluster, READ and DESCRIBE on ``_spbe.schemas``, WRITE and
  DESCRIBE on ``_spbe.audit``.

Every binding is LITERAL, ALLOW, from any host. A subscription past its ``expires`` date
grants nothing; one that expires within :data:`EXPIRY_WARNING_DAYS` is warned about.

:func:`compute_access_plan` compares that with what the cluster has
(:class:`ClusterAccess`): SCRAM users to create, bindings to add, and bindings to remove.
Only *managed* principals lose bindings: those the catalogue names now, and those an earlier
``catalog apply`` created or granted (its audit records). The operator is never managed,
and a DENY binding is never removed (apply never makes one; an operator's DENY stays).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final, Literal

from bus.delivery import dlq_topic
from bus.ops.api_clients import client_access, gateway_read_topics
from bus.ops.audit import AUDIT_TOPIC
from bus.ops.catalog import Catalog, Subscription
from bus.ops.contract_topics import (
    SubscribedTopic,
    contract_service_dead_letter_topics,
    subscribed_topics,
)
from bus.ops.principals import (
    CONTRACT_SERVICE_GROUP,
    CONTRACT_SERVICE_PRINCIPAL,
    GATEWAY_GROUP,
    GATEWAY_PRINCIPAL,
    OPERATOR_PRINCIPAL,
)
from bus.registry import DEFAULT_TOPIC as SCHEMAS_TOPIC

__all__ = [
    "CLUSTER_RESOURCE",
    "EXPIRY_WARNING_DAYS",
    "SCHEMAS_TOPIC",
    "USER_PREFIX",
    "AccessPlan",
    "AclEntry",
    "ClusterAccess",
    "DesiredAccess",
    "PrincipalAccess",
    "compute_access_plan",
    "desired_access",
    "managed_principals",
]

#: The one resource name of Kafka's CLUSTER resource type.
CLUSTER_RESOURCE: Final = "kafka-cluster"
#: ``plan`` warns about a subscription this many days (or fewer) before it expires.
EXPIRY_WARNING_DAYS: Final = 30
#: How Kafka's authorizer names a SASL user.
USER_PREFIX: Final = "User:"

PrincipalKind = Literal["application", "subscriber", "service"]


@dataclass(frozen=True, order=True, slots=True)
class AclEntry:
    """One ACL binding, in Kafka's own names (``TOPIC``, ``READ``, ``LITERAL``, ``ALLOW``)."""

    principal: str
    resource_type: str
    resource_name: str
    operation: str
    pattern_type: str = "LITERAL"
    permission: str = "ALLOW"
    host: str = "*"

    @classmethod
    def allow(cls, user: str, resource_type: str, name: str, operation: str) -> AclEntry:
        return cls(USER_PREFIX + user, resource_type, name, operation)

    @property
    def user(self) -> str | None:
        """The SASL user name of a ``User:`` principal, else ``None``."""
        if self.principal.startswith(USER_PREFIX):
            return self.principal.removeprefix(USER_PREFIX)
        return None

    def describe(self) -> str:
        """``ALLOW READ on topic spbe.dukcapil.penduduk.v1`` (pattern and host if unusual)."""
        text = f"{self.permission} {self.operation} on {self.resource_type.lower()} "
        text += self.resource_name
        if self.pattern_type != "LITERAL":
            text += f" ({self.pattern_type.lower()})"
        if self.host != "*":
            text += f" from {self.host}"
        return text

    def to_json(self) -> dict[str, str]:
        return {
            "principal": self.principal,
            "resource_type": self.resource_type,
            "resource_name": self.resource_name,
            "pattern_type": self.pattern_type,
            "operation": self.operation,
            "permission": self.permission,
            "host": self.host,
        }


@dataclass(frozen=True, slots=True)
class PrincipalAccess:
    """One principal the catalogue grants access to, and every binding it grants."""

    name: str
    kind: PrincipalKind
    #: ``application siak of DISDUKCAPIL`` / ``subscriber of DINSOS``
    role: str
    acls: frozenset[AclEntry]


@dataclass(frozen=True, slots=True)
class DesiredAccess:
    """What the catalogue grants today."""

    #: Principals with at least one grant; each needs a SCRAM user.
    principals: Mapping[str, PrincipalAccess]
    #: Every principal the catalogue names, expired subscribers included.
    named: frozenset[str]
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def acls(self) -> frozenset[AclEntry]:
        return frozenset(a for p in self.principals.values() for a in p.acls)


@dataclass(frozen=True, slots=True)
class ClusterAccess:
    """What the cluster has: every ACL binding, the SCRAM-SHA-512 users, the history."""

    acls: frozenset[AclEntry]
    users: frozenset[str]
    #: Principals an earlier ``catalog apply`` created or granted (from ``_spbe.audit``).
    managed_before: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class AccessPlan:
    """The users to create and the bindings to add and remove, per principal."""

    users: tuple[str, ...] = ()
    grants: tuple[AclEntry, ...] = ()
    revocations: tuple[AclEntry, ...] = ()
    roles: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def in_sync(self) -> bool:
        return not (self.users or self.grants or self.revocations)

    def principals(self) -> list[str]:
        """Every principal with a change, sorted."""
        names = set(self.users)
        names.update(a.user or a.principal for a in (*self.grants, *self.revocations))
        return sorted(names)

    def changes_of(self, principal: str) -> tuple[list[AclEntry], list[AclEntry]]:
        """The grants and the revocations of one principal."""
        grants = [a for a in self.grants if (a.user or a.principal) == principal]
        revocations = [a for a in self.revocations if (a.user or a.principal) == principal]
        return grants, revocations

    def render(self) -> str:
        """Warnings, notes, then each principal's changes, as lines a person reads."""
        lines = [f"warning: {w}" for w in self.warnings]
        lines += [f"note: {n}" for n in self.notes]
        for name in self.principals():
            lines.append(f"access of {name} ({self.roles.get(name, 'not in the catalogue')}):")
            if name in self.users:
                lines.append(
                    f"  + create SCRAM-SHA-512 user {name} (password to its hand-over file)"
                )
            grants, revocations = self.changes_of(name)
            lines += [f"  + grant {a.describe()}" for a in grants]
            lines += [f"  - revoke {a.describe()}" for a in revocations]
        if self.in_sync:
            lines.append("access: nothing to do: users and ACLs match the catalogue")
        else:
            lines.append(
                f"access: {len(self.users)} user(s) to create, {len(self.grants)} ACL(s) to "
                f"grant, {len(self.revocations)} to revoke"
            )
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "users_to_create": list(self.users),
            "grants": [a.to_json() for a in self.grants],
            "revocations": [a.to_json() for a in self.revocations],
            "warnings": list(self.warnings),
            "notes": list(self.notes),
        }


# -- what the catalogue grants -------------------------------------------------------------


def _topic(user: str, name: str, *operations: str) -> set[AclEntry]:
    return {AclEntry.allow(user, "TOPIC", name, op) for op in operations}


def _group(user: str, group: str) -> AclEntry:
    return AclEntry.allow(user, "GROUP", group, "READ")


def _schemas(user: str) -> set[AclEntry]:
    return _topic(user, SCHEMAS_TOPIC, "READ", "DESCRIBE")


def _contract_service(entries: list[SubscribedTopic]) -> PrincipalAccess | None:
    """The contract service's bindings for the active ``entries``; None without a projection.

    It reads each contracted raw topic and writes its dead letters there, writes each
    projected topic (idempotently), reads with its own group, and registers the projected
    schemas in ``_spbe.schemas``.
    """
    projected = [e for e in entries if e.projected]
    if not projected:
        return None
    user = CONTRACT_SERVICE_PRINCIPAL
    acls = _topic(user, SCHEMAS_TOPIC, "READ", "DESCRIBE", "WRITE")
    acls.add(AclEntry.allow(user, "CLUSTER", CLUSTER_RESOURCE, "IDEMPOTENT_WRITE"))
    acls.add(_group(user, CONTRACT_SERVICE_GROUP))
    for entry in projected:
        acls |= _topic(user, entry.raw_topic, "READ", "DESCRIBE")
        acls |= _topic(user, entry.topic, "WRITE", "DESCRIBE")
    for dead in contract_service_dead_letter_topics(projected):
        acls |= _topic(user, dead, "WRITE", "DESCRIBE")
    return PrincipalAccess(user, "service", "the contract service", frozenset(acls))


def _gateway(catalog: Catalog, today: date) -> PrincipalAccess | None:
    """The gateway's bindings; None when the catalogue has no API client."""
    if not catalog.api_clients:
        return None
    user = GATEWAY_PRINCIPAL
    acls = _schemas(user) | _topic(user, AUDIT_TOPIC, "WRITE", "DESCRIBE")
    acls.add(AclEntry.allow(user, "CLUSTER", CLUSTER_RESOURCE, "IDEMPOTENT_WRITE"))
    acls.add(_group(user, GATEWAY_GROUP))
    for projected in gateway_read_topics(catalog, today):
        acls |= _topic(user, projected, "READ", "DESCRIBE")
        acls |= _topic(user, dlq_topic(projected, GATEWAY_GROUP), "WRITE", "DESCRIBE")
    stewards: set[str] = set()
    for entry in catalog.api_clients:
        access = client_access(catalog, entry.client)
        if access is not None and access.steward is not None:
            stewards.add(access.steward)
    for topic in catalog.topics:
        if topic.steward in stewards:
            acls |= _topic(user, topic.name, "WRITE", "DESCRIBE")
    return PrincipalAccess(user, "service", "the REST gateway", frozenset(acls))


def desired_access(catalog: Catalog, today: date) -> DesiredAccess:
    """Every principal's bindings as the catalogue grants them on ``today``."""
    principals: dict[str, PrincipalAccess] = {}
    named: set[str] = set()
    for steward in catalog.stewards:
        topics = [t.name for t in catalog.topics if t.steward == steward.id]
        for application, user in zip(steward.applications, steward.principals, strict=True):
            named.add(user)
            acls = _schemas(user)
            acls.add(AclEntry.allow(user, "CLUSTER", CLUSTER_RESOURCE, "IDEMPOTENT_WRITE"))
            for topic in topics:
                acls |= _topic(user, topic, "WRITE", "DESCRIBE")
            principals[user] = PrincipalAccess(
                user, "application", f"application {application} of {steward.id}", frozenset(acls)
            )
    warnings: list[str] = []
    notes: list[str] = []
    active: list[Subscription] = []
    opds: dict[str, str] = {}
    for i, sub in enumerate(catalog.subscriptions):
        named.add(sub.subscriber)
        opds.setdefault(sub.subscriber, sub.opd)
        where = f"subscriptions[{i}] ({sub.subscriber})"
        if sub.expires < today:
            notes.append(
                f"{where}: expired on {sub.expires.isoformat()}; it grants no access "
                f"to {', '.join(sub.topics)}"
            )
            continue
        active.append(sub)
        days = (sub.expires - today).days
        if days <= EXPIRY_WARNING_DAYS:
            when = "today" if days == 0 else f"in {days} day{'s' if days != 1 else ''}"
            warnings.append(
                f"{where}: expires on {sub.expires.isoformat()} ({when}; {sub.legal_basis}); "
                "after that day the next apply revokes its access: renew the agreement"
            )
    entries = subscribed_topics(catalog, active)
    grants: dict[str, set[AclEntry]] = {}
    for entry in entries:
        user = entry.subscriber
        acls = grants.setdefault(user, _schemas(user) | {_group(user, user)})
        acls |= _topic(user, entry.topic, "READ", "DESCRIBE")
        acls |= _topic(user, entry.dead_letter_topic, "WRITE", "DESCRIBE")
    for user, acls in grants.items():
        principals[user] = PrincipalAccess(
            user, "subscriber", f"subscriber of {opds[user]}", frozenset(acls)
        )
    if any(e.projected for e in subscribed_topics(catalog)):
        named.add(CONTRACT_SERVICE_PRINCIPAL)
        service = _contract_service(entries)
        if service is not None:
            principals[CONTRACT_SERVICE_PRINCIPAL] = service
    gateway = _gateway(catalog, today)
    if gateway is not None:
        named.add(GATEWAY_PRINCIPAL)
        principals[GATEWAY_PRINCIPAL] = gateway
    for user in sorted(named - set(principals)):
        if user == CONTRACT_SERVICE_PRINCIPAL:
            notes.append(
                f"{user}: every subscription of a restricted topic has expired; it keeps its "
                "user, no ACLs"
            )
        else:
            notes.append(f"{user}: every subscription has expired; it keeps its user, no ACLs")
    return DesiredAccess(principals, frozenset(named), tuple(warnings), tuple(notes))


# -- the diff ------------------------------------------------------------------------------


def managed_principals(desired: DesiredAccess, cluster: ClusterAccess) -> frozenset[str]:
    """Principals whose bindings apply may remove: named now or managed before, not the
    operator."""
    return (desired.named | cluster.managed_before) - {OPERATOR_PRINCIPAL}


def compute_access_plan(desired: DesiredAccess, cluster: ClusterAccess) -> AccessPlan:
    """Users to create, bindings to grant, and managed ALLOW bindings to revoke (no IO)."""
    wanted = desired.acls
    managed = managed_principals(desired, cluster)
    grants = sorted(wanted - cluster.acls)
    revocations = sorted(
        a for a in cluster.acls - wanted if a.user in managed and a.permission == "ALLOW"
    )
    users = sorted(set(desired.principals) - cluster.users)
    roles = {name: p.role for name, p in desired.principals.items()}
    for name in desired.named - set(desired.principals):
        roles[name] = (
            "the contract service, every subscription of a restricted topic expired"
            if name == CONTRACT_SERVICE_PRINCIPAL
            else "subscriber, every subscription expired"
        )
    notes = list(desired.notes)
    leftover = sorted((cluster.users & cluster.managed_before) - desired.named)
    notes += [
        f"{u}: no longer in the catalogue; its ACLs are revoked, its SCRAM user is kept "
        "(delete it with kafka-configs.sh --delete-config SCRAM-SHA-512 once nothing uses it)"
        for u in leftover
    ]
    return AccessPlan(
        users=tuple(users),
        grants=tuple(grants),
        revocations=tuple(revocations),
        roles=roles,
        warnings=desired.warnings,
        notes=tuple(notes),
    )
