"""What a subscription of the catalogue may receive, as projected schemas and event classes.

A subscriber of projected topics (``<raw topic>.for.<subscriber>``) reads events with only
the fields its contract names. :func:`subscription_projections` derives, from the
catalogue's subscription and the data standard, the projected schema of every event type
the subscription receives; :func:`contract_models` reads the catalogue for a subscriber's
topics and gives the event class per event name a sink checks its mapping against (None
for raw topics, which carry the whole standard event).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from bus.contract.projected_events import ProjectedEvent, projected_event_class
from bus.contract.projection import PROJECTED_TOPIC_PATTERN, ProjectedSchema, parse_projected_topic
from bus.contract.schema import AvroSchema
from bus.contract.standard import load_standard
from bus.errors import ConfigError
from bus.ops.catalog import Catalog, Subscription, load_catalog

__all__ = ["contract_models", "find_subscription", "subscription_projections"]

_FIX_CATALOG = "add the subscription to the catalogue (deploy/catalog.yaml), or fix subscriber_id"


def find_subscription(catalog: Catalog, subscriber: str) -> Subscription:
    """The catalogue's subscription of ``subscriber``; ConfigError when it has none."""
    for subscription in catalog.subscriptions:
        if subscription.subscriber == subscriber:
            return subscription
    known = ", ".join(s.subscriber for s in catalog.subscriptions) or "none"
    raise ConfigError(
        f"the catalogue has no subscription {subscriber} (it has: {known})", fix=_FIX_CATALOG
    )


def subscription_projections(
    catalog: Catalog,
    subscription: Subscription,
    standard: Mapping[str, AvroSchema],
    raw_topics: Sequence[str] | None = None,
) -> dict[str, ProjectedSchema]:
    """Event name -> the projected schema ``subscription`` receives it with.

    Only the event types of ``raw_topics`` (default: every topic of the subscription).
    Raises :class:`~bus.errors.ConfigError` for a topic the subscription does not have,
    or an allowed path the standard does not know.
    """
    topics = tuple(raw_topics) if raw_topics is not None else subscription.topics
    by_type = {schema.event_type: schema for schema in standard.values() if schema.event_type}
    projections: dict[str, ProjectedSchema] = {}
    for topic in topics:
        if topic not in subscription.topics:
            raise ConfigError(
                f"subscription {subscription.subscriber} does not receive topic {topic} "
                f"(its topics: {', '.join(subscription.topics)})",
                fix="read only the topics the catalogue grants the subscription",
            )
        for event_type in catalog.topic(topic).event_types:
            allowed = subscription.allowed_fields.get(event_type)
            schema = by_type.get(event_type)
            if allowed is None or schema is None:
                continue  # not in the contract, or not in the standard (the catalogue says)
            projected = ProjectedSchema.derive(schema, subscription.subscriber, allowed)
            projections[schema.record_name] = projected
    return projections


def contract_models(
    topics: Sequence[str],
    subscriber: str,
    *,
    catalog_path: Path | None = None,
    standard: Mapping[str, AvroSchema] | None = None,
) -> dict[str, type[ProjectedEvent]] | None:
    """Event name -> projected event class for a subscriber of ``topics``; None for raw ones.

    Reads the catalogue (``catalog_path``, default ``deploy/catalog.yaml``) only when the
    topics are projected topics. Raises :class:`~bus.errors.ConfigError` when raw and
    projected topics are mixed, a projected topic is another subscriber's, or the
    catalogue has no such subscription.
    """
    projected = [t for t in topics if PROJECTED_TOPIC_PATTERN.fullmatch(t)]
    if not projected:
        return None
    if len(projected) != len(topics):
        raw = ", ".join(t for t in topics if t not in projected)
        raise ConfigError(
            f"topics mix projected topics with raw ones ({raw})",
            fix="subscribe to the projected topics of the subscription only "
            f"(<raw topic>.for.{subscriber})",
        )
    raw_topics: list[str] = []
    for topic in projected:
        parsed = parse_projected_topic(topic)
        if parsed.subscriber != subscriber:
            raise ConfigError(
                f"topic {topic} is the projection for {parsed.subscriber}, not for "
                f"subscriber_id {subscriber}",
                fix=f"read {parsed.raw_topic}.for.{subscriber}",
            )
        raw_topics.append(parsed.raw_topic)
    standard = standard if standard is not None else load_standard()
    catalog, _ = load_catalog(catalog_path, standard=standard)
    subscription = find_subscription(catalog, subscriber)
    projections = subscription_projections(catalog, subscription, standard, raw_topics)
    return {name: projected_event_class(p) for name, p in projections.items()}
