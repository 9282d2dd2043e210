"""The catalogue's API clients: who may use the REST gateway, and for what (pure).

An entry of ``api_clients:`` names an application that calls the gateway over HTTPS. Its
``client`` is its OAuth ``client_id`` and the Kafka principal name it would have; its
``opd`` is the OPD it works for; its ``subscriptions`` are the subscriber ids (of that
same OPD) whose data it may GET. A client whose id is a steward application principal
(:func:`~bus.ops.principals.application_principal`, e.g. ``disdukcapil-siak``) may also
POST the event types of that steward's topics, with that application's ``ce_source``.

The gateway (:data:`~bus.ops.principals.GATEWAY_PRINCIPAL`) reads the projected topic
(``<raw>.for.<subscriber>``) of each active subscription a client names
(:func:`gateway_read_topics`) and writes the topics of the stewards whose applications
are clients; ``bus.ops.access_plan`` grants it exactly that.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from bus.contract.envelope import DataClassification
from bus.contract.projected_names import projected_topic
from bus.delivery import dlq_topic
from bus.ops.principals import GATEWAY_GROUP, RESERVED_PRINCIPALS, application_principal

if TYPE_CHECKING:
    from bus.ops.catalog import Catalog, Steward, Subscription

__all__ = [
    "ApiClient",
    "ClientAccess",
    "api_client_problems",
    "client_access",
    "gateway_dead_letter_topics",
    "gateway_read_topics",
]

_CLIENT_ID = r"^[a-z0-9][a-z0-9._-]*$"  # a Kafka principal name, like a subscriber id
_RESTRICTED = DataClassification.RESTRICTED


class ApiClient(BaseModel):
    """One application allowed to call the REST gateway."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    client: str = Field(pattern=_CLIENT_ID, max_length=100, description="OAuth client_id")
    opd: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$", description="the OPD it works for")
    #: Subscriber ids of its OPD whose data it may read through the gateway.
    subscriptions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ClientAccess:
    """What one API client may do through the gateway."""

    client: str
    opd: str
    #: The steward whose application this client is, else None.
    steward: str | None
    #: Its ``ce_source`` (``ID/PEMDA-<pemda>/<STEWARD>/<application>``), else None.
    source: str | None
    #: The ``ce_type`` values it may post (empty when it is no steward application).
    postable: frozenset[str]
    #: Every subscription it names, expired ones too (the gateway checks ``expires``).
    subscriptions: tuple[Subscription, ...]


def _application_of(catalog: Catalog, client: str) -> tuple[Steward, str] | None:
    """The steward and application whose principal is ``client``, if any."""
    for steward in catalog.stewards:
        for application in steward.applications:
            if application_principal(steward.id, application) == client:
                return steward, application
    return None


def client_access(catalog: Catalog, client: str) -> ClientAccess | None:
    """The access of ``client`` as the catalogue grants it; None when it is no API client."""
    entry = next((c for c in catalog.api_clients if c.client == client), None)
    if entry is None:
        return None
    named = [s for s in catalog.subscriptions if s.subscriber in entry.subscriptions]
    found = _application_of(catalog, client)
    if found is None:
        return ClientAccess(client, entry.opd, None, None, frozenset(), tuple(named))
    steward, application = found
    postable = frozenset(
        t for topic in catalog.topics if topic.steward == steward.id for t in topic.event_types
    )
    source = f"ID/PEMDA-{steward.pemda}/{steward.id}/{application}"
    return ClientAccess(client, entry.opd, steward.id, source, postable, tuple(named))


def _projected(catalog: Catalog, subscriptions: Iterable[Subscription]) -> list[tuple[str, str]]:
    """(raw topic, projected topic) of each restricted topic of ``subscriptions``, in order."""
    result: list[tuple[str, str]] = []
    for sub in subscriptions:
        for name in sub.topics:
            if catalog.topic(name).classification is _RESTRICTED:
                pair = (name, projected_topic(name, sub.subscriber))
                if pair not in result:
                    result.append(pair)
    return result


def _named(catalog: Catalog) -> list[Subscription]:
    names = {name for c in catalog.api_clients for name in c.subscriptions}
    return [s for s in catalog.subscriptions if s.subscriber in names]


def gateway_read_topics(catalog: Catalog, today: date) -> list[str]:
    """The projected topics of the active subscriptions API clients name, catalogue order."""
    return [p for _, p in _projected(catalog, [s for s in _named(catalog) if s.expires >= today])]


def gateway_dead_letter_topics(catalog: Catalog) -> list[tuple[str, str]]:
    """(raw topic, ``<projected>.dlq.spbe-gateway``) of every subscription API clients name,
    expired ones too (``catalog apply`` creates them and deletes no topic)."""
    return [(raw, dlq_topic(p, GATEWAY_GROUP)) for raw, p in _projected(catalog, _named(catalog))]


def api_client_problems(catalog: Catalog) -> list[str]:
    """Every problem of ``catalog.api_clients`` with its key path (``api_clients[1]...``)."""
    problems: list[str] = []
    counts = Counter(c.client for c in catalog.api_clients)
    seen: set[str] = set()
    by_subscriber: dict[str, list[Subscription]] = {}
    for sub in catalog.subscriptions:
        by_subscriber.setdefault(sub.subscriber, []).append(sub)
    for i, entry in enumerate(catalog.api_clients):
        where = f"api_clients[{i}]"
        name = entry.client
        if counts[name] > 1 and name in seen:
            problems.append(f"{where}.client: {name} is listed more than once")
        seen.add(name)
        if name in RESERVED_PRINCIPALS:
            problems.append(f"{where}.client: {name} is {RESERVED_PRINCIPALS[name]} principal")
        elif name in by_subscriber:
            problems.append(
                f"{where}.client: {name} is also a subscriber id; an API client and a "
                "subscriber need identities of their own"
            )
        found = _application_of(catalog, name)
        if found is not None and found[0].id != entry.opd:
            problems.append(
                f"{where}.opd: {name} is the application {found[1]} of {found[0].id}, so its "
                f"opd must be {found[0].id}, not {entry.opd}"
            )
        if found is None and not entry.subscriptions:
            problems.append(
                f"{where}: {name} names no subscription and is no steward application, so it "
                "may neither read nor post; name its subscriptions or remove it"
            )
        problems += _subscription_problems(catalog, where, entry, by_subscriber)
    return problems


def _subscription_problems(
    catalog: Catalog, where: str, entry: ApiClient, by_subscriber: dict[str, list[Subscription]]
) -> list[str]:
    problems: list[str] = []
    listed: set[str] = set()
    for j, name in enumerate(entry.subscriptions):
        at = f"{where}.subscriptions[{j}]"
        if name in listed:
            problems.append(f"{at}: {name} is listed more than once")
            continue
        listed.add(name)
        subs = by_subscriber.get(name)
        if subs is None:
            problems.append(f"{at}: {name} is not a subscriber of this catalogue's subscriptions")
            continue
        for sub in subs:
            if sub.opd != entry.opd:
                problems.append(
                    f"{at}: {name} is a subscription of {sub.opd}; a client of {entry.opd} "
                    "reads only its own OPD's subscriptions"
                )
                break
        classes = {t.name: t.classification for t in catalog.topics}
        for sub in subs:
            plain = [t for t in sub.topics if classes.get(t, _RESTRICTED) is not _RESTRICTED]
            if plain:
                problems.append(
                    f"{at}: {name} reads {', '.join(plain)}, which is not restricted; the "
                    "gateway serves only projected topics of restricted topics"
                )
                break
    return problems
