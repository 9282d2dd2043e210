"""The names of the bus: sources, event types, topics, classifications (pure).

``ce_source`` mirrors X-Road member identifiers; event types and topics carry the domain
and the major version of the schema, so a breaking change gets new ones.
"""

from __future__ import annotations

import re
from enum import StrEnum

from bus.errors import ContractError

__all__ = [
    "EVENT_TYPE_PATTERN",
    "SOURCE_PATTERN",
    "TOPIC_PATTERN",
    "DataClassification",
    "steward_of",
    "topic_name",
]

#: ``ID/PEMDA-<kode wilayah>/<OPD>/<application>``, mirroring X-Road member identifiers. The
#: kode wilayah is a 2-digit province or 4-digit kabupaten/kota code (Kemendagri).
SOURCE_PATTERN = re.compile(
    r"ID/PEMDA-(?P<wilayah>\d{2}|\d{4})/(?P<opd>[A-Z][A-Z0-9_-]*)/(?P<app>[a-z][a-z0-9_-]*)"
)
#: ``id.go.spbe.<domain>.<EventName>.v<major>``
EVENT_TYPE_PATTERN = re.compile(
    r"id\.go\.spbe\.(?P<domain>[a-z][a-z0-9]*)\.(?P<event>[A-Z][A-Za-z0-9]*)\.v(?P<major>[1-9]\d*)"
)
#: ``spbe.<domain>.<aggregate>.v<major>``
TOPIC_PATTERN = re.compile(
    r"spbe\.(?P<domain>[a-z][a-z0-9]*)\.(?P<aggregate>[a-z][a-z0-9_]*)\.v(?P<major>[1-9]\d*)"
)
_NAME_PART = re.compile(r"[a-z][a-z0-9]*")
_AGGREGATE_PART = re.compile(r"[a-z][a-z0-9_]*")


class DataClassification(StrEnum):
    """How sensitive an event is; decides who may subscribe and how it is stored."""

    PUBLIC = "public"
    INTERNAL = "internal"
    CONFIDENTIAL = "confidential"
    RESTRICTED = "restricted"


def steward_of(source: str) -> str | None:
    """The OPD of a ``ce_source`` (``DISDUKCAPIL`` of ``ID/PEMDA-3273/DISDUKCAPIL/siak``).

    ``None`` when ``source`` is not of the form :data:`SOURCE_PATTERN` describes.
    """
    match = SOURCE_PATTERN.fullmatch(source)
    return match["opd"] if match else None


def topic_name(domain: str, aggregate: str, major: int) -> str:
    """Return the topic of an aggregate: ``spbe.<domain>.<aggregate>.v<major>``.

    Every event type of one aggregate shares the topic, so per-key order holds across them.
    """
    if not _NAME_PART.fullmatch(domain):
        raise ContractError(f"domain {domain!r} must be lowercase letters and digits (dukcapil)")
    if not _AGGREGATE_PART.fullmatch(aggregate):
        raise ContractError(
            f"aggregate {aggregate!r} must be lowercase letters, digits and _ (penduduk)"
        )
    if isinstance(major, bool) or not isinstance(major, int) or major < 1:
        raise ContractError(f"major version must be an integer of 1 or more, got {major!r}")
    return f"spbe.{domain}.{aggregate}.v{major}"
