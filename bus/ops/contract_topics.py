"""Which topic each subscription reads, and what the contract service reads and writes (pure).

A topic of classification ``restricted`` is *contracted*: its subscribers never read it.
The contract service (:data:`~bus.ops.principals.CONTRACT_SERVICE_PRINCIPAL`) reads it and
writes each subscription its projected copy, ``<raw topic>.for.<subscriber>``
(:func:`~bus.contract.projected_names.projected_topic`), which only that subscriber reads.
A topic of any lower classification is read directly, as it is.

:func:`subscribed_topics` lists, per subscription and topic, the topic the subscriber
reads and its dead letter topic; ``catalog apply`` creates them (:mod:`bus.ops.catalog_diff`)
and grants them (:mod:`bus.ops.access_plan`); ``spbe-bus status`` watches them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bus.contract.envelope import DataClassification
from bus.contract.projected_names import projected_topic
from bus.delivery import dlq_topic
from bus.ops.catalog import Catalog, CatalogTopic, Subscription
from bus.ops.principals import CONTRACT_SERVICE_GROUP

__all__ = [
    "SubscribedTopic",
    "contract_service_dead_letter_topics",
    "is_contracted",
    "read_topics",
    "subscribed_topics",
]


def is_contracted(topic: CatalogTopic) -> bool:
    """Whether subscribers receive ``topic`` only through the contract service."""
    return topic.classification is DataClassification.RESTRICTED


@dataclass(frozen=True, order=True, slots=True)
class SubscribedTopic:
    """One topic of one subscription: the raw topic, and the topic the subscriber reads."""

    subscriber: str
    raw_topic: str
    #: The projected topic of a contracted raw topic, else the raw topic itself.
    topic: str

    @property
    def projected(self) -> bool:
        return self.topic != self.raw_topic

    @property
    def dead_letter_topic(self) -> str:
        """The subscriber's own dead letter topic of what it reads."""
        return dlq_topic(self.topic, self.subscriber)


def subscribed_topics(
    catalog: Catalog, subscriptions: Iterable[Subscription] | None = None
) -> list[SubscribedTopic]:
    """Every (subscriber, raw topic) of ``subscriptions`` (default: all), catalogue order."""
    chosen = catalog.subscriptions if subscriptions is None else tuple(subscriptions)
    result: list[SubscribedTopic] = []
    seen: set[tuple[str, str]] = set()
    for sub in chosen:
        for name in sub.topics:
            if (sub.subscriber, name) in seen:
                continue
            seen.add((sub.subscriber, name))
            read = (
                projected_topic(name, sub.subscriber)
                if is_contracted(catalog.topic(name))
                else name
            )
            result.append(SubscribedTopic(sub.subscriber, name, read))
    return result


def read_topics(catalog: Catalog) -> dict[str, tuple[str, ...]]:
    """Subscriber id -> every topic it reads (projected where contracted), in order."""
    result: dict[str, list[str]] = {}
    for entry in subscribed_topics(catalog):
        result.setdefault(entry.subscriber, []).append(entry.topic)
    return {name: tuple(topics) for name, topics in result.items()}


def contract_service_dead_letter_topics(entries: Iterable[SubscribedTopic]) -> list[str]:
    """``<raw>.dlq.spbe-contracts`` of every contracted raw topic of ``entries``, sorted."""
    return sorted({dlq_topic(e.raw_topic, CONTRACT_SERVICE_GROUP) for e in entries if e.projected})
