"""One event as one Kafka record, and back (pure: no IO).

Writing: a typed event plus its schema and the publishing application's ``ce_source``
become the record's topic, key, value (Avro single-object encoding) and CloudEvents
headers. The key is the aggregate id; when the schema marks it pseudonymised
(``spbe.key_pseudonymised``), it is the HMAC-SHA256 pseudonym of the id under the
steward's secret, never the id itself.

Reading: headers become an :class:`~bus.contract.envelope.Envelope`, the value is decoded
with writer→reader resolution against the local standard's schema for the event type,
and the datum becomes the typed event. A value written with a subscription's projected
schema (it carries ``spbe.projection_of``) is read as written, into the projection's own
event class (:func:`~bus.contract.projected_events.projected_event_class`): exactly the
fields the subscription may receive. The contract headers (``ce_subscription``,
``ce_purpose``, ``ce_legalbasis``) become :attr:`IncomingEvent.contract` when present.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from bus.contract import codec
from bus.contract.codec import SchemaResolver
from bus.contract.contract_headers import (
    HEADER_SUBSCRIPTION,
    DeliveryContract,
    from_contract_headers,
)
from bus.contract.envelope import Envelope, from_headers
from bus.contract.events import EVENT_TYPES, SpbeEvent
from bus.contract.plan import OutgoingRecord, PublishingPlan, dataschema_uri
from bus.contract.projected_events import projected_event_class
from bus.contract.projection import ProjectedSchema, is_projected
from bus.contract.schema import AvroSchema
from bus.errors import ContractError

__all__ = ["IncomingEvent", "OutgoingRecord", "build_record", "dataschema_uri", "read_record"]


@dataclass(frozen=True, slots=True)
class IncomingEvent:
    """A record read back: its envelope, the typed event, and the schema it was written with.

    :attr:`contract` is the subscription it was delivered under (the contract headers),
    None on a raw topic.
    """

    envelope: Envelope
    event: SpbeEvent
    writer: AvroSchema
    contract: DeliveryContract | None = None


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
    snapshot: bool = False,
) -> OutgoingRecord:
    """Turn a typed event into the Kafka record that carries it.

    ``topic`` overrides the schema's ``spbe.topic`` (a staging or test topic). One event's
    worth of :class:`~bus.contract.plan.PublishingPlan`: a publisher keeps the plan.

    Refuses an event whose ``source`` is not the schema's steward: each event type has
    one steward (the *Once Only* principle), and a second publisher is a defect.
    """
    if schema.record_name != event.event_name:
        raise ContractError(
            f"schema {schema.record_name} does not describe a {event.event_name} event"
        )
    plan = PublishingPlan.for_source(schema, source=source, key_secret=key_secret, topic=topic)
    return plan.record(
        event,
        sequence=sequence,
        event_id=event_id,
        time=time,
        traceparent=traceparent,
        snapshot=snapshot,
    )


def read_record(
    value: bytes,
    headers: Sequence[tuple[str, bytes | None]],
    resolver: SchemaResolver,
    readers: Mapping[str, AvroSchema],
    *,
    validate: bool = True,
) -> IncomingEvent:
    """Decode a record into its envelope and typed event.

    ``readers`` maps event names to the schemas this application was built against;
    events are decoded into those (writer→reader resolution), so a v1 reader reads data
    written with a compatible v2 schema. ``validate=False`` trusts that the publisher
    validated the event (:meth:`~bus.contract.event_base.SpbeEvent.from_trusted_avro`):
    the subscriber's hot path.

    A projected writer schema is read as written into its projection's event class; it
    must be a projection of the reader schema (the standard's for the event type) and, when
    the record carries contract headers, for the subscription they name.
    """
    envelope = from_headers(headers)
    contract = _contract_of(headers)
    event_class: type[SpbeEvent] | None = EVENT_TYPES.get(envelope.event_name)
    if event_class is None:
        raise ContractError(
            f"event type {envelope.type} is not part of this application's data standard",
            fix="update the application's schemas (spbe-bus schemas list shows the registry)",
        )
    reader = readers.get(envelope.event_name)
    fingerprint = codec.read_header(value)
    if reader is None or reader.fingerprint != fingerprint:
        # Not the local standard's schema (the common case is): a newer standard, or a
        # subscription's projection, which is read as written.
        writer = resolver.schema_for(fingerprint)
        if writer is not None and is_projected(writer):
            event_class = _projected_class(writer, reader, envelope, contract)
            reader = writer
    writer, datum = codec.decode(value, resolver, reader)
    event = event_class.from_avro(datum) if validate else event_class.from_trusted_avro(datum)
    return IncomingEvent(envelope=envelope, event=event, writer=writer, contract=contract)


#: (writer, reader) fingerprints -> the projection: read back once, not once per record.
_PROJECTIONS: dict[tuple[int, int], ProjectedSchema] = {}


def _contract_of(headers: Sequence[tuple[str, bytes | None]]) -> DeliveryContract | None:
    if not any(name == HEADER_SUBSCRIPTION for name, _ in headers):
        return None
    return from_contract_headers(headers)


def _projected_class(
    writer: AvroSchema,
    reader: AvroSchema | None,
    envelope: Envelope,
    contract: DeliveryContract | None,
) -> type[SpbeEvent]:
    if reader is None:
        raise ContractError(
            f"event type {envelope.type} has no schema in this application's data standard, "
            f"so its projection {writer.name} cannot be read",
            fix="update the application's schemas",
        )
    cache_key = (writer.fingerprint, reader.fingerprint)
    projected = _PROJECTIONS.get(cache_key)
    if projected is None:
        projected = ProjectedSchema.from_registered(writer, reader)
        _PROJECTIONS[cache_key] = projected
    if projected.event_type != envelope.type:
        raise ContractError(
            f"the record's ce_type {envelope.type} is not the event type of its projected "
            f"schema {writer.name} ({projected.event_type})",
            fix="publish a projection with the ce_type of the standard event it projects",
        )
    if contract is not None and contract.subscription != projected.subscriber:
        raise ContractError(
            f"the record was delivered under subscription {contract.subscription}, but its "
            f"schema {writer.name} is the projection for {projected.subscriber}",
            fix="deliver each subscription the projection derived for it",
        )
    return projected_event_class(projected)
