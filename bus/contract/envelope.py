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
    ce_snapshot           optional, ``true`` for an event of a day-one snapshot

An :class:`Envelope` checks its values when it is built, so an invalid envelope cannot be
sent; :func:`from_headers` raises :class:`~bus.errors.EnvelopeError` naming the header and
the rule it breaks.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import uuid_utils

from bus.contract.attributes import (
    TRACEPARENT_PATTERN,
    UUID7_PATTERN,
    check_event_id,
    check_sequence,
    check_source,
    check_text,
    check_time,
    check_traceparent,
    check_type,
    parse_classification,
    parse_sequence,
    parse_snapshot,
    parse_time,
)
from bus.contract.names import (
    EVENT_TYPE_PATTERN,
    SOURCE_PATTERN,
    TOPIC_PATTERN,
    DataClassification,
    steward_of,
    topic_name,
)
from bus.contract.pseudonyms import MIN_SECRET_BYTES, pseudonymise
from bus.errors import EnvelopeError

__all__ = [
    "CONTENT_TYPE",
    "EVENT_TYPE_PATTERN",
    "MIN_SECRET_BYTES",
    "OPTIONAL_HEADERS",
    "REQUIRED_HEADERS",
    "SOURCE_PATTERN",
    "SPECVERSION",
    "TOPIC_PATTERN",
    "UUID7_PATTERN",
    "DataClassification",
    "Envelope",
    "check_event_id",
    "check_sequence",
    "check_time",
    "check_traceparent",
    "from_headers",
    "new_event_id",
    "pseudonymise",
    "steward_of",
    "to_headers",
    "topic_name",
]

SPECVERSION = "1.0"
CONTENT_TYPE = "application/avro"


def new_event_id() -> str:
    """Return a new event id: a UUIDv7, so ids sort by creation time."""
    return str(uuid_utils.uuid7())


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, kw_only=True)
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
    #: True for an event read from the steward's current table by a snapshot, not from a
    #: change: sinks and the ledger can tell an initial load from a live change.
    snapshot: bool = False

    def __post_init__(self) -> None:
        check_event_id(self.id)
        check_source(self.source)
        check_type(self.type)
        object.__setattr__(self, "time", check_time(self.time))
        if self.datacontenttype != CONTENT_TYPE:
            raise EnvelopeError(
                f"content-type must be {CONTENT_TYPE}, got {self.datacontenttype!r}",
                fix="event data on the bus is Avro single-object encoded",
            )
        for header, value in (
            ("ce_steward", self.steward),
            ("ce_partitionkey", self.partitionkey),
        ):
            check_text(header, value)
        for header, optional in (("ce_subject", self.subject), ("ce_dataschema", self.dataschema)):
            if optional is not None:
                check_text(header, optional)
        if not isinstance(self.dataclassification, DataClassification):
            object.__setattr__(
                self, "dataclassification", parse_classification(str(self.dataclassification))
            )
        if self.sequence is not None:
            check_sequence(self.sequence)
        if self.traceparent is not None:
            check_traceparent(self.traceparent)

    @classmethod
    def unchecked(
        cls,
        *,
        id: str,
        source: str,
        type: str,
        time: datetime,
        steward: str,
        partitionkey: str,
        dataclassification: DataClassification,
        subject: str | None = None,
        dataschema: str | None = None,
        sequence: int | None = None,
        traceparent: str | None = None,
        snapshot: bool = False,
    ) -> Envelope:
        """An envelope of values the caller has checked already, built without checking them.

        For a publishing plan, which checks the constant attributes once and generates the
        rest (:class:`bus.contract.plan.PublishingPlan`); everything else builds envelopes
        the ordinary way. ``time`` must be in UTC.
        """
        envelope = object.__new__(cls)
        _set(
            envelope,
            "__dict__",
            {
                "source": source,
                "type": type,
                "steward": steward,
                "partitionkey": partitionkey,
                "dataclassification": dataclassification,
                "id": id,
                "time": time,
                "subject": subject,
                "dataschema": dataschema,
                "datacontenttype": CONTENT_TYPE,
                "sequence": sequence,
                "traceparent": traceparent,
                "snapshot": snapshot,
            },
        )
        return envelope

    @property
    def domain(self) -> str:
        """The ``<domain>`` part of ``type`` (``dukcapil``)."""
        return _type_parts(self.type)[0]

    @property
    def event_name(self) -> str:
        """The ``<EventName>`` part of ``type`` (``PendudukUpdated``)."""
        return _type_parts(self.type)[1]

    @property
    def major(self) -> int:
        """The ``v<major>`` part of ``type``."""
        return _type_parts(self.type)[2]


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
        ("ce_snapshot", "true" if env.snapshot else None),
    ]
    return [(name, value.encode("utf-8")) for name, value in pairs if value is not None]


#: The headers :func:`from_headers` refuses a record without.
REQUIRED_HEADERS: tuple[str, ...] = (
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
#: The headers a record may carry besides those.
OPTIONAL_HEADERS: tuple[str, ...] = (
    "ce_subject",
    "ce_dataschema",
    "ce_sequence",
    "ce_traceparent",
    "ce_snapshot",
)
_KNOWN = (*REQUIRED_HEADERS, *OPTIONAL_HEADERS)


def from_headers(headers: Sequence[tuple[str, bytes | None]]) -> Envelope:
    """Read an envelope from Kafka headers; raise EnvelopeError naming the header and rule.

    Headers other than ours are ignored, as CloudEvents asks of unknown extensions. An
    invalid ``ce_traceparent`` is dropped rather than refused, as W3C Trace Context asks:
    a broken trace header must not cost the event.
    """
    raw_values = dict(headers)
    if len(raw_values) != len(headers):
        _refuse_repeated(headers)
    values: dict[str, str] = {}
    for name in _KNOWN:
        raw = raw_values.get(name)
        if raw is None:
            if name in raw_values:
                raise EnvelopeError(
                    f"header {name} has no value", fix="send a value or omit the header"
                )
            continue
        try:
            values[name] = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise EnvelopeError(
                f"header {name} is not valid UTF-8", fix="encode header values as UTF-8"
            ) from None
    for name in REQUIRED_HEADERS:
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
    # Each value is checked once, here; the constant ones (the same for every event of a
    # producer) once per distinct value. Then the envelope is built without checking again.
    event_id = values["ce_id"]
    check_event_id(event_id)
    if values["content-type"] != CONTENT_TYPE:
        raise EnvelopeError(
            f"content-type must be {CONTENT_TYPE}, got {values['content-type']!r}",
            fix="event data on the bus is Avro single-object encoded",
        )
    for name in ("ce_subject", "ce_dataschema", "ce_steward", "ce_partitionkey"):
        if name in values:
            check_text(name, values[name])
    traceparent = values.get("ce_traceparent")
    if traceparent is not None and not TRACEPARENT_PATTERN.fullmatch(traceparent):
        traceparent = None
    return Envelope.unchecked(
        id=event_id,
        source=_known_source(values["ce_source"]),
        type=_known_type(values["ce_type"]),
        time=parse_time(values["ce_time"]),
        subject=values.get("ce_subject"),
        dataschema=values.get("ce_dataschema"),
        steward=values["ce_steward"],
        sequence=parse_sequence(values.get("ce_sequence")),
        partitionkey=values["ce_partitionkey"],
        dataclassification=parse_classification(values["ce_dataclassification"]),
        traceparent=traceparent,
        snapshot=parse_snapshot(values.get("ce_snapshot")),
    )


def _refuse_repeated(headers: Sequence[tuple[str, bytes | None]]) -> None:
    seen: set[str] = set()
    for name, _ in headers:
        if name in _KNOWN and name in seen:
            raise EnvelopeError(
                f"header {name} appears more than once; CloudEvents allows one value",
                fix="send each ce_ header once",
            )
        seen.add(name)


@functools.lru_cache(maxsize=256)
def _known_source(value: str) -> str:
    check_source(value)
    return value


@functools.lru_cache(maxsize=1024)
def _known_type(value: str) -> str:
    check_type(value)
    return value


@functools.lru_cache(maxsize=1024)
def _type_parts(event_type: str) -> tuple[str, str, int]:
    match = check_type(event_type)
    return match["domain"], match["event"], int(match["major"])


_set = object.__setattr__
