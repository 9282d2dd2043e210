"""The events the measurements use: IzinDiterbitkan, padded to a ~400-byte Avro value.

IzinDiterbitkan is keyed by its ``nomor_izin`` in clear (no pseudonym), so each event
gets its own key and every sink write is an insert. The raw-client variants send exactly
the bytes the bus would send for the same events (value, key and CloudEvents headers).
The contract service's step reads PendudukUpdated instead (the events its catalogue
subscriptions name): the standard's example for one resident per serial, a valid NIK
each (:func:`bench.ledger.synthetic_nik`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from bench.ledger import synthetic_nik
from bus.connection import KafkaConnection, as_connection
from bus.contract.events import IzinDiterbitkan, PendudukUpdated
from bus.contract.message import OutgoingRecord, build_record
from bus.contract.standard import example, load_standard
from bus.publisher import PublisherConfig

__all__ = [
    "DUKCAPIL_SOURCE",
    "EVENT_NAME",
    "SOURCE",
    "WireRecord",
    "event",
    "events",
    "penduduk_events",
    "publisher_config",
    "wire_records",
]

EVENT_NAME = "IzinDiterbitkan"
SOURCE = "ID/PEMDA-3273/DPMPTSP/sicantik"
DUKCAPIL_SOURCE = "ID/PEMDA-3273/DISDUKCAPIL/siak"
#: Pads ``nama_usaha`` so that the encoded value is about 400 bytes.
_PADDING = "Usaha Mikro Kecil Menengah Sejahtera Bersama Kota Bandung " * 3


@dataclass(frozen=True, slots=True)
class WireRecord:
    """A record as the raw clients send it: already encoded."""

    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def event(serial: int) -> IzinDiterbitkan:
    """The permit numbered ``serial`` (a unique key per serial)."""
    data = example(EVENT_NAME)
    data["nomor_izin"] = f"503/{serial:07d}/PB-UMKU/DPMPTSP/2026"
    data["nama_usaha"] = f"{_PADDING.strip()} {serial}"[:200]
    return IzinDiterbitkan.from_json(data)


def events(start: int, count: int) -> list[IzinDiterbitkan]:
    return [event(serial) for serial in range(start, start + count)]


def penduduk_events(start: int, count: int) -> list[PendudukUpdated]:
    """The standard's PendudukUpdated example for ``count`` residents, one NIK each."""
    data = example("PendudukUpdated")
    result = []
    for serial in range(start, start + count):
        data["nik"] = synthetic_nik(serial)
        result.append(PendudukUpdated.from_json(data))
    return result


def publisher_config(kafka: KafkaConnection | str, topic: str) -> PublisherConfig:
    """The bus publisher with its defaults, writing ``IzinDiterbitkan`` to ``topic``."""
    connection = as_connection(kafka)
    return PublisherConfig(
        bootstrap_servers=connection.bootstrap_servers,
        security=connection.security,
        source=SOURCE,
        topic_overrides={EVENT_NAME: topic},
    )


def wire_records(start: int, count: int) -> Iterator[WireRecord]:
    """Pre-encoded records, byte for byte what the bus publisher sends for these events."""
    schema = load_standard()[EVENT_NAME]
    for item in events(start, count):
        record: OutgoingRecord = build_record(item, schema, source=SOURCE)
        yield WireRecord(key=record.key, value=record.value, headers=record.headers)
