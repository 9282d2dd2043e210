"""What the contract service works out once per (subscription, event type), and per record.

A :class:`Route` is built at start for every subscription and every event type its
``allowed_fields`` names: the projected schema (``ProjectedSchema.derive``, once), the
projected topic, the ``ce_dataschema`` URI of the projected schema, the contract headers
already encoded and the subscriber's pairwise pseudonymiser. :meth:`Route.record` then
turns one decoded raw event into the record the subscriber receives: the datum projected
and encoded with the projected schema, ``changed_fields`` filtered to the allowed fields,
the Kafka key, ``ce_subject`` and ``ce_partitionkey`` replaced by the pairwise key, the
other envelope headers copied (``ce_id`` unchanged), the contract headers added.

``changed_fields`` keeps only entries the contract names exactly: ``alamat`` (a change
somewhere in the address) is dropped for a contract that lists ``alamat.kode_wilayah``,
because it would tell the subscriber that a field it may not receive changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from bus.contract import codec
from bus.contract.attributes import check_text
from bus.contract.contract_headers import (
    HEADER_LEGALBASIS,
    HEADER_PURPOSE,
    HEADER_SUBSCRIPTION,
    DeliveryContract,
    to_contract_headers,
)
from bus.contract.envelope import Envelope, to_headers
from bus.contract.message import IncomingEvent
from bus.contract.plan import OutgoingRecord, dataschema_uri
from bus.contract.projection import ProjectedSchema, project, projected_topic
from bus.contract.pseudonyms import PairwiseKeys, Pseudonymiser
from bus.contract.schema import AvroSchema
from bus.errors import ConfigError, ContractError
from bus.ledger import SUBJECT_LENGTH, LedgerEntry, LedgerKind
from bus.ops.catalog import Subscription

__all__ = [
    "CHANGED_FIELDS",
    "HeaderPlan",
    "Route",
    "aggregate_key",
    "build_routes",
    "filter_changed",
    "projected_subject",
]

#: The field of an event that lists which fields changed (``PendudukUpdated``).
CHANGED_FIELDS = "changed_fields"
#: Headers the service writes itself: never copied from the raw record.
_REPLACED = frozenset(
    {
        "ce_subject",
        "ce_partitionkey",
        "ce_dataschema",
        HEADER_SUBSCRIPTION,
        HEADER_PURPOSE,
        HEADER_LEGALBASIS,
    }
)
#: A UUIDv7 in the form of a decoded envelope's ``ce_id``, for checking a route's agreement.
_CHECK_EVENT_ID = "01890000-0000-7000-8000-000000000000"


def projected_subject(projected: ProjectedSchema) -> str:
    """The registry subject of a projected schema: ``<event type>.for.<subscriber>``.

    A subject of its own per subscription: two contracts' projections of one event type
    are different schemas, and neither is a version of the standard's subject.
    """
    return f"{projected.event_type}.for.{projected.subscriber}"


def filter_changed(changed: Sequence[str], allowed: frozenset[str]) -> list[str]:
    """The entries of ``changed`` that the contract names exactly, in their order."""
    return [name for name in changed if name in allowed]


@dataclass(frozen=True, slots=True)
class HeaderPlan:
    """An event's envelope headers as every route's record carries them, worked out once.

    The raw headers in their order, with ``ce_subject``, ``ce_partitionkey`` and
    ``ce_dataschema`` left as slots for the route's values and the contract headers (which
    the service writes itself) dropped; ``ce_partitionkey`` is added when it is missing.
    """

    kept: list[tuple[str, bytes]]
    key_slots: tuple[int, ...]
    schema_slot: int | None
    add_partitionkey: bool

    @classmethod
    def of(cls, envelope_headers: Sequence[tuple[str, bytes]]) -> HeaderPlan:
        kept: list[tuple[str, bytes]] = []
        key_slots: list[int] = []
        schema_slot: int | None = None
        for name, value in envelope_headers:
            if name == "ce_subject" or name == "ce_partitionkey":
                key_slots.append(len(kept))
            elif name == "ce_dataschema":
                schema_slot = len(kept)
            elif name in _REPLACED:
                continue
            kept.append((name, value))
        has_partitionkey = any(name == "ce_partitionkey" for name, _ in envelope_headers)
        return cls(kept, tuple(key_slots), schema_slot, not has_partitionkey)

    def build(
        self, key: bytes, dataschema: bytes, contract: Sequence[tuple[str, bytes]]
    ) -> list[tuple[str, bytes]]:
        """The headers of a record: the pairwise ``key``, projected ``dataschema``, ``contract``."""
        headers = self.kept.copy()
        for slot in self.key_slots:
            headers[slot] = (headers[slot][0], key)
        if self.schema_slot is not None:
            headers[self.schema_slot] = ("ce_dataschema", dataschema)
        if self.add_partitionkey:
            headers.append(("ce_partitionkey", key))
        headers.extend(contract)
        return headers


@dataclass(frozen=True, slots=True, eq=False)
class Route:
    """One subscription's delivery of one event type from one raw topic."""

    subscription: Subscription
    raw_topic: str
    projected: ProjectedSchema
    topic: str
    dataschema: bytes
    dataschema_uri: str
    contract_headers: tuple[tuple[str, bytes], ...]
    allowed: frozenset[str]
    keys: Pseudonymiser
    #: A checked entry of this route's constant values: each delivery's entry copies them.
    agreement: LedgerEntry

    @property
    def subscriber(self) -> str:
        return self.subscription.subscriber

    def active(self, today: date) -> bool:
        """True until the end of the subscription's ``expires`` day."""
        return today <= self.subscription.expires

    def record(
        self,
        incoming: IncomingEvent,
        key: str,
        *,
        datum: Mapping[str, Any] | None = None,
        headers: HeaderPlan | None = None,
    ) -> OutgoingRecord:
        """The projected record of ``incoming`` for this subscriber; ``key`` is the raw key.

        ``key`` is the aggregate's own value (the NIK of a ``PendudukUpdated``), never the
        steward's pseudonym: the subscriber's key is its pairwise pseudonym. ``datum``
        (``incoming.event.avro_datum()``) and ``headers`` (the :class:`HeaderPlan` of its
        envelope) may be passed when one event goes to several routes, to build them once.
        """
        if datum is None:
            datum = incoming.event.avro_datum()
        if headers is None:
            headers = HeaderPlan.of(to_headers(incoming.envelope))
        datum = project(datum, self.projected)
        changed = datum.get(CHANGED_FIELDS)
        if isinstance(changed, list | tuple):
            datum[CHANGED_FIELDS] = filter_changed(changed, self.allowed)
        pairwise = self.keys(key)
        key_bytes = pairwise.encode("utf-8")
        env = incoming.envelope
        # The raw envelope was checked when it was read, the pairwise key is a hex HMAC and
        # the data schema URI was checked when the route was built: nothing to check again.
        envelope = Envelope.unchecked(
            id=env.id,
            source=env.source,
            type=env.type,
            time=env.time,
            steward=env.steward,
            partitionkey=pairwise,
            dataclassification=env.dataclassification,
            subject=pairwise,
            dataschema=self.dataschema_uri,
            sequence=env.sequence,
            traceparent=env.traceparent,
            snapshot=env.snapshot,
        )
        return OutgoingRecord(
            topic=self.topic,
            key=key_bytes,
            value=codec.encode(self.projected.schema, datum, validated=True),
            headers=headers.build(key_bytes, self.dataschema, self.contract_headers),
            envelope=envelope,
        )

    def ledger_entry(self, incoming: IncomingEvent, subject: str, when: datetime) -> LedgerEntry:
        """The ledger entry of delivering ``incoming`` on this route; ``subject`` is its
        ledger pseudonym. A day-one snapshot event (``ce_snapshot``) is a ``snapshot`` entry.
        """
        # The agreement was checked when the route was built, the subject is a hex HMAC,
        # the event id a decoded envelope's UUIDv7 and the time the service's UTC clock.
        agreement = self.agreement
        return LedgerEntry.unchecked(
            subject=subject,
            event_id=incoming.envelope.id,
            event_type=agreement.event_type,
            subscriber=agreement.subscriber,
            opd=agreement.opd,
            purpose=agreement.purpose,
            legal_basis=agreement.legal_basis,
            kind=LedgerKind.SNAPSHOT if incoming.envelope.snapshot else LedgerKind.DELIVERY,
            delivered_at=when,
        )


def build_routes(
    subscriptions: Sequence[Subscription],
    standard: Mapping[str, AvroSchema],
    pairwise: PairwiseKeys,
) -> dict[tuple[str, str], list[Route]]:
    """Every route, by (raw topic, event type), in catalogue order.

    ``standard`` maps event types (``id.go.spbe.dukcapil.PendudukUpdated.v1``) to their
    schemas. Raises :class:`~bus.errors.ConfigError` naming the subscription and event
    type when an event type is not in the standard or travels on none of its topics.
    """
    routes: dict[tuple[str, str], list[Route]] = {}
    for sub in subscriptions:
        for event_type, fields in sub.allowed_fields.items():
            schema = standard.get(event_type)
            if schema is None:
                raise ConfigError(
                    f"subscription {sub.subscriber}: allowed_fields names event type "
                    f"{event_type!r}, which is not in the data standard",
                    fix="name an event type of schemas/ (id.go.spbe.<domain>.<Event>.v<major>)",
                )
            if schema.key_field is None:
                raise ContractError(f"schema {schema.name} names no key field (spbe.key)")
            projected = ProjectedSchema.derive(schema, sub.subscriber, fields)
            contract = DeliveryContract(sub.subscriber, sub.purpose, sub.legal_basis)
            uri = dataschema_uri(projected.schema)
            check_text("ce_dataschema", uri)
            try:
                agreement = LedgerEntry(  # checks the values every entry of the route copies
                    subject="0" * SUBJECT_LENGTH,
                    event_id=_CHECK_EVENT_ID,
                    event_type=event_type,
                    subscriber=sub.subscriber,
                    opd=sub.opd,
                    purpose=sub.purpose,
                    legal_basis=sub.legal_basis,
                    kind=LedgerKind.DELIVERY,
                    delivered_at=datetime.now(UTC),
                )
            except ConfigError as exc:
                raise ConfigError(
                    f"subscription {sub.subscriber}: the ledger cannot record its deliveries: "
                    f"{exc.message}",
                    fix=exc.fix,
                ) from None
            for raw_topic in sub.topics:
                route = Route(
                    subscription=sub,
                    raw_topic=raw_topic,
                    projected=projected,
                    topic=projected_topic(raw_topic, sub.subscriber),
                    dataschema=uri.encode("utf-8"),
                    dataschema_uri=uri,
                    contract_headers=tuple(to_contract_headers(contract)),
                    allowed=frozenset(projected.allowed_fields),
                    keys=pairwise.for_subscriber(sub.subscriber),
                    agreement=agreement,
                )
                routes.setdefault((raw_topic, event_type), []).append(route)
    return routes


def aggregate_key(incoming: IncomingEvent) -> str:
    """The aggregate's own key value (``nik`` of a ``PendudukUpdated``)."""
    name = incoming.writer.key_field
    value: Any = getattr(incoming.event, name) if name else None
    if not isinstance(value, str) or not value:
        raise ContractError(
            f"{incoming.envelope.event_name} has no key value in its key field {name!r}",
            fix="publish events whose spbe.key field holds the aggregate's id",
        )
    return value
