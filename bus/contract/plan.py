"""What a publisher works out once per event type, so that each event costs only its own values.

A :class:`PublishingPlan` is built when a publisher starts, one per event type its source
stewards: the steward check, the topic, the ``ce_dataschema`` URI, the headers that are
the same for every event of the type (already encoded), the 10-byte single-object header
and a keyed HMAC for the key pseudonym. :meth:`PublishingPlan.record` then adds only what
differs per event: the id, the time, the key, the sequence and the Avro body.

The event itself was validated when its model was built (``from_json``, ``from_avro``),
so its datum is encoded without a second validation (:func:`bus.contract.codec.encode`
with ``validated=True``); values the plan did not produce (a caller's event id, time,
sequence, traceparent) are checked as an :class:`~bus.contract.envelope.Envelope` would.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from bus.contract import codec
from bus.contract.attributes import (
    check_event_id,
    check_sequence,
    check_time,
    check_traceparent,
)
from bus.contract.envelope import CONTENT_TYPE, SPECVERSION, Envelope, new_event_id
from bus.contract.events import SpbeEvent
from bus.contract.names import DataClassification, steward_of
from bus.contract.pseudonyms import Pseudonymiser
from bus.contract.schema import AvroSchema
from bus.errors import ConfigError, ContractError

__all__ = ["OutgoingRecord", "PublishingPlan", "dataschema_uri"]

_Header = tuple[str, bytes]


@dataclass(frozen=True, slots=True)
class OutgoingRecord:
    """What a producer sends: topic, key, value and headers, plus the envelope they carry."""

    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]
    envelope: Envelope


def dataschema_uri(schema: AvroSchema) -> str:
    """``urn:spbe:schema:<event type>:<fingerprint hex>``: names the exact writer schema."""
    return f"urn:spbe:schema:{schema.event_type}:{schema.fingerprint:016x}"


def _header(name: str, value: str) -> _Header:
    return (name, value.encode("utf-8"))


@dataclass(frozen=True, slots=True)
class PublishingPlan:
    """One event type as published by one source; build it with :meth:`for_source`."""

    schema: AvroSchema
    source: str
    topic: str
    event_type: str
    record_name: str
    steward: str
    classification: DataClassification
    key_field: str
    key_pseudonymised: bool
    pseudonymiser: Pseudonymiser | None
    # The constant headers, encoded, in the order of to_headers: ce_specversion (before
    # ce_id), ce_source and ce_type (after it), then ce_dataschema, content-type and
    # ce_steward (after ce_subject), and ce_dataclassification (after ce_partitionkey).
    _leading: tuple[_Header, _Header, _Header]
    _dataschema_uri: str
    _middle: tuple[_Header, _Header, _Header]
    _trailing: _Header

    @classmethod
    def for_source(
        cls,
        schema: AvroSchema,
        *,
        source: str,
        key_secret: bytes | Pseudonymiser | None = None,
        topic: str | None = None,
    ) -> PublishingPlan:
        """The plan for ``schema``'s event type published by ``source``.

        Raises :class:`~bus.errors.ContractError` when ``source`` is not an X-Road style
        identifier, is not the schema's steward (each event type has one steward: the
        *Once Only* principle), or the schema lacks the attributes an event needs.
        """
        opd = steward_of(source)
        if opd is None:
            raise ContractError(
                f"ce_source {source!r} is not ID/PEMDA-<kode wilayah>/<OPD>/<application>",
                fix="use the X-Road style identifier, e.g. ID/PEMDA-3273/DISDUKCAPIL/siak",
            )
        if schema.steward is not None and opd != schema.steward:
            raise ContractError(
                f"{schema.record_name} may only be published by its steward {schema.steward}; "
                f"ce_source names {opd}",
                fix="publish the event from the steward's adapter; other OPDs subscribe to it",
            )
        if schema.topic is None or schema.event_type is None or schema.classification is None:
            raise ContractError(
                f"schema {schema.name} lacks spbe.topic, its Dublin Core identifier or "
                "spbe.classification"
            )
        if schema.key_field is None:
            raise ContractError(f"schema {schema.name} names no key field (spbe.key)")
        pseudonymiser = None
        if schema.key_pseudonymised and key_secret is not None:
            pseudonymiser = (
                key_secret if isinstance(key_secret, Pseudonymiser) else Pseudonymiser(key_secret)
            )
        steward = schema.steward or opd
        return cls(
            schema=schema,
            source=source,
            topic=topic or schema.topic,
            event_type=schema.event_type,
            record_name=schema.record_name,
            steward=steward,
            classification=schema.classification,
            key_field=schema.key_field,
            key_pseudonymised=schema.key_pseudonymised,
            pseudonymiser=pseudonymiser,
            _leading=(
                _header("ce_specversion", SPECVERSION),
                _header("ce_source", source),
                _header("ce_type", schema.event_type),
            ),
            _dataschema_uri=dataschema_uri(schema),
            _middle=(
                _header("ce_dataschema", dataschema_uri(schema)),
                _header("content-type", CONTENT_TYPE),
                _header("ce_steward", steward),
            ),
            _trailing=_header("ce_dataclassification", schema.classification.value),
        )

    def _key(self, event: SpbeEvent) -> str:
        raw = getattr(event, self.key_field)
        if not isinstance(raw, str) or not raw:
            raise ContractError(
                f"{self.schema.name}.{self.key_field} is the Kafka key and must be a string"
            )
        if not self.key_pseudonymised:
            return raw
        if self.pseudonymiser is None:
            raise ConfigError(
                f"{self.record_name} is keyed by a pseudonym of {self.key_field}, and no "
                "steward secret was given",
                fix="set the steward's key secret (SPBE_KEY_SECRET or key_secret in the "
                "adapter config); the raw value is never used as a Kafka key",
            )
        return self.pseudonymiser(raw)

    def record(
        self,
        event: SpbeEvent,
        *,
        sequence: int | None = None,
        event_id: str | None = None,
        time: datetime | None = None,
        traceparent: str | None = None,
        snapshot: bool = False,
    ) -> OutgoingRecord:
        """The Kafka record carrying ``event``: topic, key, value, headers and envelope."""
        if event.event_name != self.record_name:
            raise ContractError(
                f"schema {self.record_name} does not describe a {event.event_name} event"
            )
        if event_id is None:
            event_id = new_event_id()
        else:
            check_event_id(event_id)
        when = datetime.now(UTC) if time is None else check_time(time)
        if sequence is not None:
            check_sequence(sequence)
        if traceparent is not None:
            check_traceparent(traceparent)
        key = self._key(event)
        key_bytes = key.encode("utf-8")
        envelope = Envelope.unchecked(
            id=event_id,
            source=self.source,
            type=self.event_type,
            time=when,
            subject=key,
            dataschema=self._dataschema_uri,
            steward=self.steward,
            sequence=sequence,
            partitionkey=key,
            dataclassification=self.classification,
            traceparent=traceparent,
            snapshot=snapshot,
        )
        spec, source, event_type = self._leading
        headers = [
            spec,
            ("ce_id", event_id.encode()),
            source,
            event_type,
            ("ce_time", (when.isoformat(timespec="microseconds")[:-6] + "Z").encode()),
            ("ce_subject", key_bytes),
            *self._middle,
        ]
        if sequence is not None:
            headers.append(("ce_sequence", str(sequence).encode()))
        headers.append(("ce_partitionkey", key_bytes))
        headers.append(self._trailing)
        if traceparent is not None:
            headers.append(("ce_traceparent", traceparent.encode()))
        if snapshot:
            headers.append(("ce_snapshot", b"true"))
        return OutgoingRecord(
            topic=self.topic,
            key=key_bytes,
            value=codec.encode(self.schema, event.avro_datum(), validated=True),
            headers=headers,
            envelope=envelope,
        )
