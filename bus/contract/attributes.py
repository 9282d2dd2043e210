"""The rule of each CloudEvents attribute the bus checks, with the error that names it (pure)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from bus.contract.names import EVENT_TYPE_PATTERN, SOURCE_PATTERN
from bus.errors import EnvelopeError

__all__ = [
    "TRACEPARENT_PATTERN",
    "UUID7_PATTERN",
    "check_event_id",
    "check_sequence",
    "check_source",
    "check_text",
    "check_time",
    "check_traceparent",
    "check_type",
]

#: A UUIDv7 in canonical lowercase form: what ``ce_id`` accepts.
UUID7_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
TRACEPARENT_PATTERN = re.compile(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")


def check_event_id(value: str) -> None:
    """Raise :class:`EnvelopeError` unless ``value`` is a canonical lowercase UUIDv7."""
    if not isinstance(value, str) or not UUID7_PATTERN.fullmatch(value):
        raise EnvelopeError(
            f"ce_id {value!r} is not a UUIDv7 in canonical lowercase form",
            fix="create ids with bus.contract.envelope.new_event_id()",
        )


def check_time(value: datetime) -> datetime:
    """``value`` in UTC; :class:`EnvelopeError` for a naive datetime."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise EnvelopeError(
            "ce_time must be timezone-aware; got a naive datetime",
            fix="use datetime.now(UTC) or attach a tzinfo",
        )
    return value.astimezone(UTC)


def check_sequence(value: int) -> None:
    """Raise :class:`EnvelopeError` unless ``value`` is a non-negative integer."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise EnvelopeError(
            f"ce_sequence must be a non-negative integer, got {value!r}",
            fix="set sequence to the aggregate's version number",
        )


def check_traceparent(value: str) -> None:
    """Raise :class:`EnvelopeError` unless ``value`` is a W3C traceparent."""
    if not isinstance(value, str) or not TRACEPARENT_PATTERN.fullmatch(value):
        raise EnvelopeError(
            f"ce_traceparent {value!r} is not a W3C traceparent "
            "(version-traceid-parentid-flags, lowercase hex)",
            fix="pass the traceparent of the current span, or None",
        )


def check_source(value: str) -> None:
    if not SOURCE_PATTERN.fullmatch(value):
        raise EnvelopeError(
            f"ce_source {value!r} does not have the form "
            "ID/PEMDA-<kode wilayah>/<OPD>/<application> (kode wilayah: 2 or 4 digits; "
            "OPD: uppercase; application: lowercase), "
            "e.g. ID/PEMDA-3273/DISDUKCAPIL/siak",
            fix="set the adapter's source to its X-Road style identifier",
        )


def check_type(value: str) -> re.Match[str]:
    match = EVENT_TYPE_PATTERN.fullmatch(value)
    if match is None:
        raise EnvelopeError(
            f"ce_type {value!r} does not have the form id.go.spbe.<domain>.<EventName>.v<major>, "
            "e.g. id.go.spbe.dukcapil.PendudukUpdated.v1",
            fix="use the event type named by the schema's Dublin Core identifier",
        )
    return match


def check_text(header: str, value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise EnvelopeError(f"{header} must be a non-empty string, got {value!r}")
