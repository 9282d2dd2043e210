"""The names a subscription's projection goes by: its topic and its Avro namespace (pure).

The contract service delivers a subscription its projected copy of a raw topic on
``<raw topic>.for.<subscriber>`` (``spbe.dukcapil.penduduk.v1.for.dpmptsp-penduduk``), a
topic only that subscriber may read. A raw topic has exactly four dot-separated parts, so
the name reads back unambiguously even for a subscriber id holding dots.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from bus.contract.names import TOPIC_PATTERN
from bus.errors import ContractError

__all__ = [
    "PROJECTED_TOPIC_PATTERN",
    "SUBSCRIBER_PATTERN",
    "ProjectedTopic",
    "check_subscriber",
    "parse_projected_topic",
    "projected_namespace",
    "projected_topic",
]

#: A subscriber id: also its consumer group and Kafka principal (as ``bus.ops.catalog``).
SUBSCRIBER_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
#: ``spbe.<domain>.<aggregate>.v<major>.for.<subscriber>``
PROJECTED_TOPIC_PATTERN = re.compile(
    rf"(?P<raw>{TOPIC_PATTERN.pattern})\.for\.(?P<subscriber>{SUBSCRIBER_PATTERN.pattern})"
)
_MAX_TOPIC_LENGTH = 249  # Kafka's limit on a topic name
_SEPARATOR = ".for."


def check_subscriber(subscriber: str) -> None:
    """Raise :class:`~bus.errors.ContractError` unless ``subscriber`` is a subscriber id."""
    if not isinstance(subscriber, str) or not SUBSCRIBER_PATTERN.fullmatch(subscriber):
        raise ContractError(
            f"subscriber id {subscriber!r} must be 1 to 100 lowercase letters, digits, '.', "
            "'_' or '-', starting with a letter or digit",
            fix="use the subscriber id of the catalogue's subscription (dpmptsp-penduduk)",
        )


class ProjectedTopic(NamedTuple):
    """A projected topic read back: the raw topic it copies and the subscriber it is for."""

    raw_topic: str
    subscriber: str


def projected_topic(raw_topic: str, subscriber: str) -> str:
    """The topic delivering ``raw_topic`` to ``subscriber``: ``<raw topic>.for.<subscriber>``.

    Raises :class:`~bus.errors.ContractError` for a topic that is not a standard topic, an
    invalid subscriber id, or a name longer than Kafka allows.
    """
    if not isinstance(raw_topic, str) or not TOPIC_PATTERN.fullmatch(raw_topic):
        raise ContractError(
            f"topic {raw_topic!r} is not of the form spbe.<domain>.<aggregate>.v<major>",
            fix="project a raw topic of the catalogue, e.g. spbe.dukcapil.penduduk.v1",
        )
    check_subscriber(subscriber)
    name = f"{raw_topic}{_SEPARATOR}{subscriber}"
    if len(name) > _MAX_TOPIC_LENGTH:
        raise ContractError(
            f"projected topic of {raw_topic} for {subscriber} would be {len(name)} characters; "
            f"Kafka allows {_MAX_TOPIC_LENGTH}",
            fix="give the subscription a shorter subscriber id",
        )
    return name


def parse_projected_topic(topic: str) -> ProjectedTopic:
    """Read a projected topic back into its raw topic and subscriber.

    Raises :class:`~bus.errors.ContractError` when ``topic`` is not a projected topic.
    """
    match = PROJECTED_TOPIC_PATTERN.fullmatch(topic) if isinstance(topic, str) else None
    if match is None or len(topic) > _MAX_TOPIC_LENGTH:
        raise ContractError(
            f"topic {topic!r} is not a projected topic "
            "(spbe.<domain>.<aggregate>.v<major>.for.<subscriber>)",
            fix="build projected topic names with bus.contract.projection.projected_topic",
        )
    return ProjectedTopic(match["raw"], match["subscriber"])


def projected_namespace(namespace: str, subscriber: str) -> str:
    """``<namespace>.projected.<subscriber>``, the subscriber id made an Avro name part."""
    check_subscriber(subscriber)
    part = re.sub(r"[^a-z0-9_]", "_", subscriber)
    if part[0].isdigit():
        part = f"_{part}"
    return f"{namespace}.projected.{part}" if namespace else f"projected.{part}"
