"""The Kafka principals the catalogue names, pure: one identity per application and subscriber.

A steward application is ``<steward id lowercased>-<application>`` (``disdukcapil-siak`` for
``ID/PEMDA-3273/DISDUKCAPIL/siak``); a subscriber is its ``subscriber`` id; the operator is
:data:`OPERATOR_PRINCIPAL`, a super user the catalogue never names; the contract service,
which alone reads restricted topics for their subscribers, is
:data:`CONTRACT_SERVICE_PRINCIPAL`; the REST gateway, which reads projected topics for the
catalogue's API clients and posts for steward applications, is :data:`GATEWAY_PRINCIPAL`.
No two may be the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

__all__ = [
    "APPLICATION_PATTERN",
    "CONTRACT_SERVICE_GROUP",
    "CONTRACT_SERVICE_PRINCIPAL",
    "GATEWAY_GROUP",
    "GATEWAY_PRINCIPAL",
    "OPERATOR_PRINCIPAL",
    "RESERVED_PRINCIPALS",
    "application_principal",
    "principal_problems",
]

#: The application part of ``ce_source`` (``siak`` of ``ID/PEMDA-3273/DISDUKCAPIL/siak``).
APPLICATION_PATTERN: Final = r"^[a-z][a-z0-9_-]*$"
#: The operator: a super user, the only writer of ``_spbe.schemas`` and of ACLs.
OPERATOR_PRINCIPAL: Final = "spbe-operator"
#: The contract service: reads the raw restricted topics, writes each subscription's
#: projected topic (``bus.contract.projected_names``).
CONTRACT_SERVICE_PRINCIPAL: Final = "spbe-contracts"
#: The contract service's consumer group.
CONTRACT_SERVICE_GROUP: Final = "spbe-contracts"
#: The REST gateway (``adapters.gateway``): reads the projected topics of the subscriptions
#: API clients name, writes the topics of stewards whose applications are API clients.
GATEWAY_PRINCIPAL: Final = "spbe-gateway"
#: The gateway's consumer group.
GATEWAY_GROUP: Final = "spbe-gateway"
#: Principal -> whose it is; the catalogue may give none of them to anything else.
RESERVED_PRINCIPALS: Final = {
    OPERATOR_PRINCIPAL: "the operator's",
    CONTRACT_SERVICE_PRINCIPAL: "the contract service's",
    GATEWAY_PRINCIPAL: "the gateway's",
}
_RESERVED: Final = RESERVED_PRINCIPALS


def application_principal(steward_id: str, application: str) -> str:
    return f"{steward_id.lower()}-{application}"


def principal_problems(
    stewards: Sequence[tuple[str, Sequence[str]]], subscribers: Sequence[str]
) -> list[str]:
    """Every principal that is not its own, with its key path: an application listed twice,
    an application principal that is a subscriber id or a reserved principal (the operator,
    the contract service, the gateway), a subscriber called after a reserved principal.

    ``stewards`` holds (steward id, applications) in catalogue order, ``subscribers`` the
    ``subscriber`` of each subscription in order.
    """
    problems: list[str] = []
    taken = set(subscribers)
    for i, (steward_id, applications) in enumerate(stewards):
        where = f"stewards[{i}].applications"
        seen: set[str] = set()
        for application in applications:
            principal = application_principal(steward_id, application)
            if application in seen:
                problems.append(f"{where}: {application} is listed more than once")
            elif principal in _RESERVED:
                problems.append(
                    f"{where}: {application} would be the principal {principal}, "
                    f"{_RESERVED[principal]}"
                )
            elif principal in taken:
                problems.append(
                    f"{where}: {application} would be the principal {principal}, which is also "
                    "a subscriber id; an application and a subscriber need identities of their own"
                )
            seen.add(application)
    problems += [
        f"subscriptions[{i}].subscriber: {name} is {_RESERVED[name]} principal"
        for i, name in enumerate(subscribers)
        if name in _RESERVED
    ]
    return problems
