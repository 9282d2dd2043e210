"""The CloudEvents 1.0 envelope of every event, carried as Kafka headers (binary mode).

In the Kafka protocol binding's binary mode the event data is the record value (Avro
single-object bytes) and every context attribute is a header named ``ce_<attribute>``;
extensions included. ``datacontenttype`` travels as ``content-type``::

    ce_specversion        1.0
    ce_id                 UUIDv7                          01963b9e-6c1d-7c3e-9a4b-...
    ce_source             ID/PEMDA-<kode>/<OPD>/<app>     ID/PEMDA-3273/DISDUKCAPIL/siak
    ce_type               id.go.spbe.<domain>.<EventName>.v<major>
    ce_time               RFC 3339, UTC                   2025-06-01T08:30:00.000000Z
    ce_subject            optional
    ce_dataschema         optional
    content-type          application/avro
    ce_steward            the steward OPD                 DISDUKCAPIL
    ce_sequence           optional, the aggregate version 42
    ce_partitionkey       the Kafka key                   (a pseudonym for personal data)
    ce_dataclassification public | internal | confidential | restricted
    ce_traceparent        optional, W3C trace context

An :class:`Envelope` checks its values when it is built, so an invalid envelope cannot be
sent; :func:`from_headers` raises :class:`~bus.errors.EnvelopeError` naming the header and
the rule it breaks.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

import uuid_utils

from bus.errors import ConfigError, ContractError, EnvelopeError

__all__ = [
    "CONTENT_TYPE",
    "EVENT_TYPE_PATTERN",
    "MIN_SECRET_BYTES",
    "SOURCE_PATTERN",
    "SPECVERSION",
    "TOPIC_PATTERN",
    "UUID7_PATTERN",
    "DataClassification",
    "Envelope",
    "from_headers",
    "new_event_id",
    "pseudonymise",
    "steward_of",
    "to_headers",
    "topic_name",
]

SPECVERSION = "1.0"
CONTENT_TYPE = "application/avro"
#: A pseudonymisation secret shorter than this is refused.
MIN_SECRET_BYTES = 16

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

#: A UUIDv7 in canonical lowercase form: what ``ce_id`` accepts.
UUID7_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
_RFC3339 = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt](?P<clock>\d{2}:\d{2}:\d{2})(?:\.(?P<fraction>\d+))?"
    r"(?P<offset>[Zz]|[+-]\d{2}:\d{2})"
)
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")
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


def new_event_id() -> str:
    """Return a new event id: a UUIDv7, so ids sort by creation time."""
    return str(uuid_utils.uuid7())


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, kw_only=True, slots=True)
class Envelope:
    """The CloudEvents context of one event; ``id`` and ``time`` default to fresh values.

    Every value is checked when the envelope is built; ``time`` is stored in UTC.
    """

    source: str
    type: str
    steward: str
    partitionkey: str
    dataclassification: DataClassification
    id: str = field(default_factory=new_event_id)
    time: datetime = field(default_factory=_now)
    subject: str | None = None
    dataschema: str | None = None
    datacontenttype: str = CONTENT_TYPE
    sequence: int | None = None
    traceparent: str | None = None

    def __post_init__(self) -> None:
        _check_id(self.id)
        _check_source(self.source)
        _check_type(self.type)
        if self.time.tzinfo is None or self.time.utcoffset() is None:
            raise EnvelopeError(
                "ce_time must be timezone-aware; got a naive datetime",
                fix="use datetime.now(UTC) or attach a tzinfo",
            )
        object.__setattr__(self, "time", self.time.astimezone(UTC))
        if self.datacontenttype != CONTENT_TYPE:
            raise EnvelopeError(
                f"content-type must be {CONTENT_TYPE}, got {self.datacontenttype!r}",
                fix="event data on the bus is Avro single-object encoded",
            )
        for header, value in (
            ("ce_steward", self.steward),
            ("ce_partitionkey", self.partitionkey),
        ):
            _check_text(header, value)
        for header, optional in (("ce_subject", self.subject), ("ce_dataschema", self.dataschema)):
            if optional is not None:
                _check_text(header, optional)
        if not isinstance(self.dataclassification, DataClassification):
            object.__setattr__(
                self, "dataclassification", _classification(str(self.dataclassification))
            )
        if self.sequence is not None and (
            isinstance(self.sequence, bool)
            or not isinstance(self.sequence, int)
            or self.sequence < 0
        ):
            raise EnvelopeError(
                f"ce_sequence must be a non-negative integer, got {self.sequence!r}",
                fix="set sequence to the aggregate's version number",
            )
        if self.traceparent is not None and not _TRACEPARENT.fullmatch(self.traceparent):
            raise EnvelopeError(
                f"ce_traceparent {self.traceparent!r} is not a W3C traceparent "
                "(version-traceid-parentid-flags, lowercase hex)",
                fix="pass the traceparent of the current span, or None",
            )

    @property
    def domain(self) -> str:
        """The ``<domain>`` part of ``type`` (``dukcapil``)."""
        return _type_part(self.type, "domain")

    @property
    def event_name(self) -> str:
        """The ``<EventName>`` part of ``type`` (``PendudukUpdated``)."""
        return _type_part(self.type, "event")

    @property
    def major(self) -> int:
        """The ``v<major>`` part of ``type``."""
        return int(_type_part(self.type, "major"))


def to_headers(env: Envelope) -> list[tuple[str, bytes]]:
    """Render an envelope as Kafka headers (CloudEvents Kafka binding, binary mode).

    Absent optional attributes are left out rather than sent empty.
    """
    pairs: list[tuple[str, str | None]] = [
        ("ce_specversion", SPECVERSION),
        ("ce_id", env.id),
        ("ce_source", env.source),
        ("ce_type", env.type),
        ("ce_time", env.time.strftime("%Y-%m-%dT%H:%M:%S.%fZ")),
        ("ce_subject", env.subject),
        ("ce_dataschema", env.dataschema),
        ("content-type", env.datacontenttype),
        ("ce_steward", env.steward),
        ("ce_sequence", None if env.sequence is None else str(env.sequence)),
        ("ce_partitionkey", env.partitionkey),
        ("ce_dataclassification", env.dataclassification.value),
        ("ce_traceparent", env.traceparent),
    ]
    return [(name, value.encode("utf-8")) for name, value in pairs if value is not None]


_REQUIRED = (
    "ce_specversion",
    "ce_id",
    "ce_source",
    "ce_type",
    "ce_time",
    "content-type",
    "ce_steward",
    "ce_partitionkey",
    "ce_dataclassification",
)
_KNOWN = frozenset((*_REQUIRED, "ce_subject", "ce_dataschema", "ce_sequence", "ce_traceparent"))


def from_headers(headers: Sequence[tuple[str, bytes | None]]) -> Envelope:
    """Read an envelope from Kafka headers; raise EnvelopeError naming the header and rule.

    Headers other than ours are ignored, as CloudEvents asks of unknown extensions. An
    invalid ``ce_traceparent`` is dropped rather than refused, as W3C Trace Context asks:
    a broken trace header must not cost the event.
    """
    values: dict[str, str] = {}
    for name, raw in headers:
        if name not in _KNOWN:
            continue
        if name in values:
            raise EnvelopeError(
                f"header {name} appears more than once; CloudEvents allows one value",
                fix="send each ce_ header once",
            )
        if raw is None:
            raise EnvelopeError(
                f"header {name} has no value", fix="send a value or omit the header"
            )
        try:
            values[name] = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise EnvelopeError(
                f"header {name} is not valid UTF-8", fix="encode header values as UTF-8"
            ) from None
    for name in _REQUIRED:
        if name not in values:
            raise EnvelopeError(
                f"required header {name} is missing",
                fix="publish through the bus publisher, which sets every CloudEvents header",
            )
    if values["ce_specversion"] != SPECVERSION:
        raise EnvelopeError(
            f"header ce_specversion is {values['ce_specversion']!r}; only {SPECVERSION!r} is "
            "supported",
            fix="send CloudEvents 1.0 headers",
        )
    traceparent = values.get("ce_traceparent")
    if traceparent is not None and not _TRACEPARENT.fullmatch(traceparent):
        traceparent = None
    return Envelope(
        id=values["ce_id"],
        source=values["ce_source"],
        type=values["ce_type"],
        time=_parse_time(values["ce_time"]),
        subject=values.get("ce_subject"),
        dataschema=values.get("ce_dataschema"),
        datacontenttype=values["content-type"],
        steward=values["ce_steward"],
        sequence=_parse_sequence(values.get("ce_sequence")),
        partitionkey=values["ce_partitionkey"],
        dataclassification=_classification(values["ce_dataclassification"]),
        traceparent=traceparent,
    )


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


def pseudonymise(secret: bytes, value: str) -> str:
    """Return the keyed pseudonym of ``value``: HMAC-SHA256 with the steward's secret, hex.

    A NIK has 16 digits, but its structure (6-digit kecamatan code, birth date, 4-digit
    serial) leaves a space small enough to enumerate: a plain SHA-256 of a NIK is reversed
    by hashing every candidate. Keying the hash with a secret held only by the steward
    makes the pseudonym stable (the same person always gets the same Kafka key, so order
    and compaction work) while nobody without the secret can link it back to the NIK.

    ``value`` is hashed exactly as given: normalise it (strip spaces) before calling.
    Raises :class:`~bus.errors.ConfigError` for a secret shorter than 16 bytes.
    """
    if len(secret) < MIN_SECRET_BYTES:
        raise ConfigError(
            f"the pseudonymisation secret is {len(secret)} bytes; at least {MIN_SECRET_BYTES} "
            "are needed",
            fix="generate one with `python -c 'import secrets; print(secrets.token_hex(32))'` "
            "and keep it with the steward",
        )
    return hmac.new(secret, value.encode("utf-8"), hashlib.sha256).hexdigest()


def _check_id(value: str) -> None:
    if not UUID7_PATTERN.fullmatch(value):
        raise EnvelopeError(
            f"ce_id {value!r} is not a UUIDv7 in canonical lowercase form",
            fix="create ids with bus.contract.envelope.new_event_id()",
        )


def _check_source(value: str) -> None:
    if not SOURCE_PATTERN.fullmatch(value):
        raise EnvelopeError(
            f"ce_source {value!r} does not have the form "
            "ID/PEMDA-<kode wilayah>/<OPD>/<application> (kode wilayah: 2 or 4 digits; "
            "OPD: uppercase; application: lowercase), "
            "e.g. ID/PEMDA-3273/DISDUKCAPIL/siak",
            fix="set the adapter's source to its X-Road style identifier",
        )


def _check_type(value: str) -> re.Match[str]:
    match = EVENT_TYPE_PATTERN.fullmatch(value)
    if match is None:
        raise EnvelopeError(
            f"ce_type {value!r} does not have the form id.go.spbe.<domain>.<EventName>.v<major>, "
            "e.g. id.go.spbe.dukcapil.PendudukUpdated.v1",
            fix="use the event type named by the schema's Dublin Core identifier",
        )
    return match


def _check_text(header: str, value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise EnvelopeError(f"{header} must be a non-empty string, got {value!r}")


def _type_part(event_type: str, group: str) -> str:
    return _check_type(event_type)[group]


def _parse_time(value: str) -> datetime:
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


def _parse_sequence(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isascii() or not value.isdigit():
        raise EnvelopeError(
            f"ce_sequence {value!r} is not a non-negative decimal integer",
            fix="send the aggregate version as digits only",
        )
    return int(value)


def _classification(value: str) -> DataClassification:
    try:
        return DataClassification(value)
    except ValueError:
        allowed = ", ".join(c.value for c in DataClassification)
        raise EnvelopeError(
            f"ce_dataclassification {value!r} is not one of {allowed}",
            fix="classify the event with one of the four levels",
        ) from None
