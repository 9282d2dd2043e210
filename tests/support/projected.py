"""Deliveries of projected events, as a subscriber of a projected topic receives them.

The event is projected as the contract service projects it (the catalogue's
``allowed_fields`` of the subscription, or the ones given), then read back into the
projection's event class, exactly the subscriber's decoding path without the broker.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from bus.contract.contract_headers import DeliveryContract
from bus.contract.envelope import DataClassification, Envelope, new_event_id
from bus.contract.events import SpbeEvent
from bus.contract.projected_events import projected_event_class
from bus.contract.projection import ProjectedSchema, project, projected_topic
from bus.contract.standard import load_standard
from bus.delivery import Delivery
from bus.ops.catalog import Subscription, default_catalog_path, read_catalog

__all__ = ["STEWARDS", "catalog_subscription", "projected_delivery", "projection"]

#: event name -> (raw topic, steward, ce_source)
STEWARDS = {
    "PendudukUpdated": (
        "spbe.dukcapil.penduduk.v1",
        "DISDUKCAPIL",
        "ID/PEMDA-3273/DISDUKCAPIL/siak",
    ),
    "KematianDicatat": (
        "spbe.dukcapil.penduduk.v1",
        "DISDUKCAPIL",
        "ID/PEMDA-3273/DISDUKCAPIL/siak",
    ),
    "PajakDaerahDibayar": ("spbe.bapenda.pajak.v1", "BAPENDA", "ID/PEMDA-3273/BAPENDA/sipd"),
    "IzinDiterbitkan": ("spbe.dpmptsp.izin.v1", "DPMPTSP", "ID/PEMDA-3273/DPMPTSP/sicantik"),
}


@cache
def catalog_subscription(subscriber: str) -> Subscription:
    """The subscription ``subscriber`` of deploy/catalog.yaml."""
    subscriptions = read_catalog(default_catalog_path()).subscriptions
    return next(s for s in subscriptions if s.subscriber == subscriber)


def projection(
    event_name: str, subscriber: str, allowed: Sequence[str] | None = None
) -> ProjectedSchema:
    """The projected schema of ``event_name`` for ``subscriber`` (catalogue fields by default)."""
    standard = load_standard()[event_name]
    if allowed is None:
        allowed = catalog_subscription(subscriber).allowed_fields[str(standard.event_type)]
    return ProjectedSchema.derive(standard, subscriber, allowed)


def projected_delivery(
    event: SpbeEvent,
    subscriber: str,
    *,
    sequence: int | None,
    allowed: Sequence[str] | None = None,
    topic: str | None = None,
    contract_subscription: str | None = None,
    event_id: str | None = None,
    offset: int = 0,
) -> Delivery:
    """``event`` projected for ``subscriber`` and delivered on its projected topic.

    ``topic`` overrides the topic (e.g. a raw one); ``contract_subscription`` the
    subscription the contract header names (the subscriber by default).
    """
    projected = projection(event.event_name, subscriber, allowed)
    model = projected_event_class(projected)
    projected_event = model.from_trusted_avro(project(event.avro_datum(), projected))
    raw_topic, steward, source = STEWARDS[event.event_name]
    standard = load_standard()[event.event_name]
    envelope = Envelope(
        source=source,
        type=str(standard.event_type),
        steward=steward,
        partitionkey="k" * 43,
        dataclassification=DataClassification.RESTRICTED,
        sequence=sequence,
        id=event_id if event_id is not None else new_event_id(),
    )
    contract = None
    if topic is None or contract_subscription is not None:
        contract = DeliveryContract(
            contract_subscription or subscriber, "Tujuan uji", "PKS uji 1/2026"
        )
    return Delivery(
        event=projected_event,
        envelope=envelope,
        topic=topic if topic is not None else projected_topic(raw_topic, subscriber),
        partition=0,
        offset=offset,
        key=b"k" * 43,
        attempt=1,
        contract=contract,
    )
