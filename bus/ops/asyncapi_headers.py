"""The CloudEvents Kafka headers of a message, as the JSON Schema an AsyncAPI message carries.

Every record on the bus carries its CloudEvents 1.0 context as Kafka headers in the
binding's binary mode (:mod:`bus.contract.envelope`); a record of a projected topic adds
the contract it was delivered under (:mod:`bus.contract.contract_headers`). Header values
are UTF-8 strings, so each header is a ``string`` here, with the rule the bus checks when
it reads one: a pattern, or a constant where the catalogue fixes the value (``ce_type``,
``ce_steward``, ``ce_dataclassification``, a projected topic's ``ce_subscription``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bus.contract.attributes import TRACEPARENT_PATTERN, UUID7_PATTERN
from bus.contract.contract_headers import HEADER_LEGALBASIS, HEADER_PURPOSE, HEADER_SUBSCRIPTION
from bus.contract.envelope import CONTENT_TYPE, OPTIONAL_HEADERS, REQUIRED_HEADERS, SPECVERSION
from bus.ops.catalog import CatalogTopic, Steward, Subscription

__all__ = [
    "OPTIONAL_HEADERS",
    "REQUIRED_HEADERS",
    "contract_headers",
    "envelope_headers",
    "with_contract",
]


_RFC3339 = "^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?(Z|[+-]\\d{2}:\\d{2})$"


def _text(description: str, **rule: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **rule}


def envelope_headers(
    steward: Steward, topic: CatalogTopic, event_type: str, *, projected: bool
) -> dict[str, Any]:
    """The CloudEvents headers of ``event_type`` on ``topic`` (or on a projection of it)."""
    sources = "|".join(steward.applications) or "[a-z][a-z0-9_-]*"
    key = (
        "the subscription's pairwise pseudonym of the aggregate id (docs/contracts.md)"
        if projected
        else "the Kafka key: the aggregate id, a keyed pseudonym (HMAC-SHA256) for personal data"
    )
    properties = {
        "ce_specversion": _text("CloudEvents specification version", const=SPECVERSION),
        "ce_id": _text(
            "event id, a UUIDv7 (ids sort by creation time)",
            pattern=_anchored(UUID7_PATTERN.pattern),
        ),
        "ce_source": _text(
            "the steward application that published the event (X-Road style identifier)",
            pattern=f"^ID/PEMDA-{steward.pemda}/{steward.id}/({sources})$",
        ),
        "ce_type": _text("the event type", const=event_type),
        "ce_time": _text("when the event happened, RFC 3339 in UTC", pattern=_RFC3339),
        "ce_subject": _text("optional subject of the event"),
        "ce_dataschema": _text(
            "urn:spbe:schema:<event type>:<fingerprint>: the exact writer schema",
            pattern="^urn:spbe:schema:.+:[0-9a-f]{16}$",
        ),
        "content-type": _text(
            "the data's media type: Avro single-object encoding", const=CONTENT_TYPE
        ),
        "ce_steward": _text("the steward OPD, the only publisher of the topic", const=steward.id),
        "ce_sequence": _text("the aggregate version, a non-negative integer", pattern="^\\d+$"),
        "ce_partitionkey": _text(key, minLength=1),
        "ce_dataclassification": _text(
            "the event's classification", const=topic.classification.value
        ),
        "ce_traceparent": _text(
            "W3C trace context of the change", pattern=_anchored(TRACEPARENT_PATTERN.pattern)
        ),
        "ce_snapshot": _text("present on events of a day-one snapshot", const="true"),
    }
    return {
        "type": "object",
        "description": "CloudEvents 1.0 context attributes, Kafka protocol binding, binary mode",
        "required": list(REQUIRED_HEADERS),
        "properties": properties,
    }


def contract_headers(subscription: Subscription) -> dict[str, dict[str, Any]]:
    """The contract headers the contract service adds on ``subscription``'s projected topic."""
    return {
        HEADER_SUBSCRIPTION: _text("the subscription delivered to", const=subscription.subscriber),
        HEADER_PURPOSE: _text("the purpose the catalogue records", const=subscription.purpose),
        HEADER_LEGALBASIS: _text("the agreement or regulation", const=subscription.legal_basis),
    }


def with_contract(headers: dict[str, Any], subscription: Subscription) -> dict[str, Any]:
    """``headers`` of a raw topic plus the contract headers, all required."""
    extra = contract_headers(subscription)
    required: Sequence[str] = [*headers["required"], *extra]
    return {
        **headers,
        "description": f"{headers['description']}, with the contract it was delivered under",
        "required": list(required),
        "properties": {**headers["properties"], **extra},
    }


def _anchored(pattern: str) -> str:
    return f"^{pattern}$"
