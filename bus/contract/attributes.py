"""The rule of each CloudEvents attribute the bus checks, with the error that names it (pure)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from bus.contract.names import EVENT_TYPE_PATTERN, SOURCE_PATTERN, DataClassification
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
    "parse_classification",
    "parse_sequence",
    "parse_snapshot",
    "parse_time",
]

#: A UUIDv7 in canonical lowercase form: what ``ce_id`` accepts.
UUID7_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
_RFC3339 = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt](?P<clock>\d{2}:\d{2}:\d{2})(?:\.(?P<fraction>\d+))?"
    r"(?P<offset>[Zz]|[+-]\d{2}:\d{2})"
)
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


def parse_time(value: str) -> datetime:
    """A ``ce_time`` value as a UTC datetime; :class:`EnvelopeError` unless RFC 3339."""
    if (
        len(value) == 27  # what every publisher of the bus writes: 2025-06-01T08:30:00.000000Z
        and value[26] == "Z"
        and value[10] == "T"
        and value[4] == value[7] == "-"
        and value[13] == value[16] == ":"
        and value[19] == "."
    ):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass  # the general path names the problem
    match = _RFC3339.fullmatch(value)
    if match is None:
        raise EnvelopeError(
            f"ce_time {value!r} is not an RFC 3339 timestamp with an offset (2025-06-01T08:30:00Z)",
            fix="send the event time in UTC with a trailing Z",
        )
    fraction = (match["fraction"] or "0")[:6].ljust(6, "0")
    offset = "+00:00" if match["offset"] in ("Z", "z") else match["offset"]
    try:
        parsed = datetime.fromisoformat(f"{match['date']}T{match['clock']}.{fraction}{offset}")
    except ValueError as exc:
        raise EnvelopeError(f"ce_time {value!r} is not a valid date and time: {exc}") from None
    return parsed.astimezone(UTC)


def parse_sequence(value: str | None) -> int | None:
    """A ``ce_sequence`` value as an int (``None`` when absent); digits only."""
    if value is None:
        return None
    if not value.isascii() or not value.isdigit():
        raise EnvelopeError(
            f"ce_sequence {value!r} is not a non-negative decimal integer",
            fix="send the aggregate version as digits only",
        )
    return int(value)


def parse_snapshot(value: str | None) -> bool:
    """A ``ce_snapshot`` value: ``true``, ``false`` or absent."""
    if value is None or value == "false":
        return False
    if value == "true":
        return True
    raise EnvelopeError(
        f"ce_snapshot {value!r} is not 'true' or 'false'",
        fix="mark snapshot events with ce_snapshot: true, or leave the header out",
    )


_CLASSIFICATIONS = {level.value: level for level in DataClassification}


def parse_classification(value: str) -> DataClassification:
    """A ``ce_dataclassification`` value as its level."""
    try:
        return _CLASSIFICATIONS[value]
    except KeyError:
        allowed = ", ".join(c.value for c in DataClassification)
        raise EnvelopeError(
            f"ce_dataclassification {value!r} is not one of {allowed}",
            fix="classify the event with one of the four levels",
        ) from None
