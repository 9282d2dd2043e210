"""The catalogue's data flows as a graph: who sends, what travels, who receives (pure, no IO).

Operators plan integrations from a picture of the bus: each steward and its publishing
applications, the topics they write, and every subscription reading a topic under its
agreement (event types, classification, legal basis, expiry), and the REST gateway's
clients. :func:`flow_graph` derives that graph from the catalogue alone, so the drawing
(:mod:`bus.ops.flow_diagram`) never disagrees with what ``catalog apply`` grants.

A :class:`Flow` is one (subscriber, raw topic) pair of the catalogue; its ``reads`` is the
topic the subscriber really consumes (the projected ``<topic>.for.<subscriber>`` of a
restricted topic, :func:`~bus.ops.contract_topics.subscribed_topics`). Measured figures
(:mod:`bus.ops.flow_measures`) are keyed by :attr:`Flow.key`, and :func:`flow_state`
turns them into one :class:`FlowState` per flow, which the drawing colours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from bus.contract.names import DataClassification
from bus.ops.api_clients import client_access
from bus.ops.catalog import Catalog, Subscription
from bus.ops.contract_topics import subscribed_topics
from bus.ops.principals import application_principal

__all__ = [
    "ApiFlow",
    "Flow",
    "FlowGraph",
    "FlowMeasure",
    "FlowState",
    "StewardNode",
    "TopicNode",
    "flow_graph",
    "flow_state",
]


class FlowState(StrEnum):
    """How one flow is doing; the drawing gives each state one colour."""

    OK = "ok"
    LAGGING = "lagging"
    DEAD_LETTERING = "dead-lettering"
    EXPIRED = "expired"
    UNMEASURED = "unmeasured"


@dataclass(frozen=True, slots=True)
class StewardNode:
    """A steward OPD and its publishing applications."""

    id: str
    name: str
    #: Application names as in ``ce_source`` (``siak``), in the catalogue's order.
    applications: tuple[str, ...]

    @property
    def principals(self) -> tuple[str, ...]:
        """The Kafka principal of each application (``disdukcapil-siak``), in order."""
        return tuple(application_principal(self.id, a) for a in self.applications)


@dataclass(frozen=True, slots=True)
class TopicNode:
    """One raw event topic of the catalogue."""

    name: str
    steward: str
    event_types: tuple[str, ...]
    classification: DataClassification


@dataclass(frozen=True, slots=True)
class Flow:
    """One subscription's receipt of one topic."""

    #: The raw topic of the catalogue.
    topic: str
    subscriber: str
    #: The receiving OPD.
    opd: str
    #: The topic the subscriber reads: ``<topic>.for.<subscriber>`` when restricted.
    reads: str
    #: The event types it may receive (those of its allowed_fields carried by ``topic``).
    event_types: tuple[str, ...]
    classification: DataClassification
    legal_basis: str
    #: The last day of access.
    expires: date

    @property
    def key(self) -> str:
        """``<subscriber>:<topic>``: unique in a catalogue; measures are keyed by it."""
        return f"{self.subscriber}:{self.topic}"

    @property
    def projected(self) -> bool:
        """Whether the contract service delivers it (a projection of a restricted topic)."""
        return self.reads != self.topic


@dataclass(frozen=True, slots=True)
class ApiFlow:
    """One REST gateway client: the subscriptions it reads, the event types it posts."""

    client: str
    opd: str
    #: Subscriber ids whose projected data it may GET.
    reads: tuple[str, ...]
    #: Event types (``ce_type``) it may POST; empty when it is no steward application.
    posts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FlowMeasure:
    """What the cluster says about one flow (:func:`bus.ops.flow_measures.measure_flows`)."""

    #: Events per day on the topic it reads, over the measuring window; None: no records.
    events_per_day: float | None
    #: Events it has not recorded an outcome for; None: its topic does not exist.
    lag: int | None
    #: Dead letters waiting in its dead letter topic; None: that topic does not exist.
    dead_letters: int | None
    #: Kafka timestamp of the last event it recorded an outcome for.
    last_applied: datetime | None
    state: FlowState


@dataclass(frozen=True, slots=True)
class FlowGraph:
    """Stewards -> topics -> subscriptions, and the gateway's clients."""

    stewards: tuple[StewardNode, ...]
    topics: tuple[TopicNode, ...]
    flows: tuple[Flow, ...]
    api_clients: tuple[ApiFlow, ...]

    def flow(self, key: str) -> Flow:
        """The flow whose :attr:`Flow.key` is ``key``; KeyError if there is none."""
        for flow in self.flows:
            if flow.key == key:
                return flow
        raise KeyError(key)


def flow_graph(catalog: Catalog) -> FlowGraph:
    """The graph of ``catalog``, every part in the catalogue's order."""
    stewards = tuple(StewardNode(s.id, s.name, s.applications) for s in catalog.stewards)
    topics = tuple(
        TopicNode(t.name, t.steward, t.event_types, t.classification) for t in catalog.topics
    )
    subscriptions: dict[tuple[str, str], Subscription] = {}
    for sub in catalog.subscriptions:
        for name in sub.topics:
            subscriptions[(sub.subscriber, name)] = sub
    flows: list[Flow] = []
    for entry in subscribed_topics(catalog):
        sub = subscriptions[(entry.subscriber, entry.raw_topic)]
        topic = catalog.topic(entry.raw_topic)
        flows.append(
            Flow(
                topic=topic.name,
                subscriber=sub.subscriber,
                opd=sub.opd,
                reads=entry.topic,
                event_types=tuple(t for t in topic.event_types if t in sub.allowed_fields),
                classification=topic.classification,
                legal_basis=sub.legal_basis,
                expires=sub.expires,
            )
        )
    carried = [t for topic in catalog.topics for t in topic.event_types]
    clients: list[ApiFlow] = []
    for entry_client in catalog.api_clients:
        access = client_access(catalog, entry_client.client)
        assert access is not None  # it is an entry of the catalogue
        clients.append(
            ApiFlow(
                client=access.client,
                opd=access.opd,
                reads=entry_client.subscriptions,
                posts=tuple(t for t in carried if t in access.postable),
            )
        )
    return FlowGraph(stewards, topics, tuple(flows), tuple(clients))


def flow_state(
    flow: Flow, *, lag: int | None, dead_letters: int | None, today: date, max_lag: int
) -> FlowState:
    """The state of ``flow``: expired, else unmeasured (no lag known), else dead-lettering,
    lagging (more than ``max_lag`` events waiting) or ok."""
    if flow.expires < today:
        return FlowState.EXPIRED
    if lag is None:
        return FlowState.UNMEASURED
    if dead_letters:
        return FlowState.DEAD_LETTERING
    if lag > max_lag:
        return FlowState.LAGGING
    return FlowState.OK
