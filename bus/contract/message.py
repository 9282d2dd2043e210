"""One event as one Kafka record, and back (pure: no IO).

Writing: a typed event plus its schema and the publishing application's ``ce_source``
become the record's topic, key, value (Avro single-object encoding) and CloudEvents
headers. The key is the aggregate id; when the schema marks it pseudonymised
(``spbe.key_pseudonymised``), it is the HMAC-SHA256 pseudonym of the id under the
steward's secret, never the id itself.

Reading: headers become an :class:`~bus.contract.envelope.Envelope`, the value is decoded
with writer→reader resolution against the local standard's schema for the event type,
and the datum becomes the typed event.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from bus.contract import codec
from bus.contract.codec import SchemaResolver
from bus.contract.envelope import (
    Envelope,
    from_headers,
    new_event_id,
    pseudonymise,
    steward_of,
    to_headers,
)
from bus.contract.events import EVENT_TYPES, SpbeEvent
from bus.contract.schema import AvroSchema
from bus.errors import ConfigError, ContractError

__all__ = ["IncomingEvent", "OutgoingRecord", "build_record", "dataschema_uri", "read_record"]


@dataclass(frozen=True, slots=True)
class OutgoingRecord:
    """What a producer sends: topic, key, value and headers, plus the envelope they carry."""

    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]
    envelope: Envelope


@dataclass(frozen=True, slots=True)
class IncomingEvent:
    """A record read back: its envelope, the typed event, and the schema it was written with."""

    envelope: Envelope
    event: SpbeEvent
    writer: AvroSchema


def dataschema_uri(schema: AvroSchema) -> str:
    """``urn:spbe:schema:<event type>:<fingerprint hex>``: names the exact writer schema."""
    return f"urn:spbe:schema:{schema.event_type}:{schema.fingerprint:016x}"


def _partition_key(event: SpbeEvent, schema: AvroSchema, key_secret: bytes | None) -> str:
    key_field = schema.key_field
    if key_field is None:
        raise ContractError(f"schema {schema.name} names no key field (spbe.key)")
    raw = getattr(event, key_field)
    if not isinstance(raw, str) or not raw:
        raise ContractError(f"{schema.name}.{key_field} is the Kafka key and must be a string")
    if not schema.key_pseudonymised:
        return raw
    if key_secret is None:
        raise ConfigError(
            f"{schema.record_name} is keyed by a pseudonym of {key_field}, and no steward "
            "secret was given",
            fix="set the steward's key secret (SPBE_KEY_SECRET or key_secret in the "
            "adapter config); the raw value is never used as a Kafka key",
        )
    return pseudonymise(key_secret, raw)


def build_record(
    event: SpbeEvent,
    schema: AvroSchema,
    *,
    source: str,
    key_secret: bytes | None = None,
    sequence: int | None = None,
    event_id: str | None = None,
    time: datetime | None = None,
    traceparent: str | None = None,
    topic: str | None = None,
) -> OutgoingRecord:
    """Turn a typed event into the Kafka record that carries it.

    ``topic`` overrides the schema's ``spbe.topic`` (a staging or test topic).

    Refuses an event whose ``source`` is not the schema's steward: each event type has
    one steward (the *Once Only* principle), and a second publisher is a defect.
    """
    if schema.record_name != event.event_name:
        raise ContractError(
            f"schema {schema.record_name} does not describe a {event.event_name} event"
        )
    opd = steward_of(source)
    if opd is None:
        raise ContractError(
            f"ce_source {source!r} is not ID/PEMDA-<kode wilayah>/<OPD>/<application>",
            fix="use the X-Road style identifier, e.g. ID/PEMDA-3273/DISDUKCAPIL/siak",
        )
    if schema.steward is not None and opd != schema.steward:
        raise ContractError(
            f"{event.event_name} may only be published by its steward {schema.steward}; "
            f"ce_source names {opd}",
            fix="publish the event from the steward's adapter; other OPDs subscribe to it",
        )
    if schema.topic is None or schema.event_type is None or schema.classification is None:
        raise ContractError(
            f"schema {schema.name} lacks spbe.topic, its Dublin Core identifier or "
            "spbe.classification"
        )
    key = _partition_key(event, schema, key_secret)
    envelope = Envelope(
        id=event_id or new_event_id(),
        time=time or datetime.now(UTC),
        source=source,
        type=schema.event_type,
        steward=schema.steward or opd,
        partitionkey=key,
        subject=key,
        dataclassification=schema.classification,
        dataschema=dataschema_uri(schema),
        sequence=sequence,
        traceparent=traceparent,
    )
    return OutgoingRecord(
        topic=topic or schema.topic,
        key=key.encode("utf-8"),
        value=codec.encode(schema, event.to_avro()),
        headers=to_headers(envelope),
        envelope=envelope,
    )


def read_record(
    value: bytes,
    headers: Sequence[tuple[str, bytes | None]],
    resolver: SchemaResolver,
    readers: Mapping[str, AvroSchema],
) -> IncomingEvent:
    """Decode a record into its envelope and typed event.

    ``readers`` maps event names to the schemas this application was built against;
    events are decoded into those (writer→reader resolution), so a v1 reader reads data
    written with a compatible v2 schema.
    """
    envelope = from_headers(headers)
    event_class = EVENT_TYPES.get(envelope.event_name)
    if event_class is None:
        raise ContractError(
            f"event type {envelope.type} is not part of this application's data standard",
            fix="update the application's schemas (spbe-bus schemas list shows the registry)",
        )
    reader = readers.get(envelope.event_name)
    writer, datum = codec.decode(value, resolver, reader)
    return IncomingEvent(envelope=envelope, event=event_class.from_avro(datum), writer=writer)
