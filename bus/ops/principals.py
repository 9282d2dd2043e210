"""The Kafka principals the catalogue names, pure: one identity per application and subscriber.

A steward application is ``<steward id lowercased>-<application>`` (``disdukcapil-siak`` for
``ID/PEMDA-3273/DISDUKCAPIL/siak``); a subscriber is its ``subscriber`` id; the operator is
:data:`OPERATOR_PRINCIPAL`, a super user the catalogue never names. No two may be the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

__all__ = [
    "APPLICATION_PATTERN",
    "OPERATOR_PRINCIPAL",
    "application_principal",
    "principal_problems",
]

#: The application part of ``ce_source`` (``siak`` of ``ID/PEMDA-3273/DISDUKCAPIL/siak``).
APPLICATION_PATTERN: Final = r"^[a-z][a-z0-9_-]*$"
#: The operator: a super user, the only writer of ``_spbe.schemas`` and of ACLs.
OPERATOR_PRINCIPAL: Final = "spbe-operator"


def application_principal(steward_id: str, application: str) -> str:
    return f"{steward_id.lower()}-{application}"


def principal_problems(
    stewards: Sequence[tuple[str, Sequence[str]]], subscribers: Sequence[str]
) -> list[str]:
    """Every principal that is not its own, with its key path: an application listed twice,
    an application principal that is a subscriber id or the operator, an operator subscriber.

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
            elif principal == OPERATOR_PRINCIPAL:
                problems.append(
                    f"{where}: {application} would be the principal {principal}, the operator's"
                )
            elif principal in taken:
                problems.append(
                    f"{where}: {application} would be the principal {principal}, which is also "
                    "a subscriber id; an application and a subscriber need identities of their own"
                )
            seen.add(application)
    problems += [
        f"subscriptions[{i}].subscriber: {name} is the operator's principal"
        for i, name in enumerate(subscribers)
        if name == OPERATOR_PRINCIPAL
    ]
    return problems
