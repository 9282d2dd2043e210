"""The events every measurement uses: IzinDiterbitkan, padded to a ~400-byte Avro value.

IzinDiterbitkan is keyed by its ``nomor_izin`` in clear (no pseudonym), so each event
gets its own key and every sink write is an insert. The raw-client variants send exactly
the bytes the bus would send for the same events (value, key and CloudEvents headers).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from bus.connection import KafkaConnection, as_connection
from bus.contract.events import IzinDiterbitkan
from bus.contract.message import OutgoingRecord, build_record
from bus.contract.standard import example, load_standard
from bus.publisher import PublisherConfig

__all__ = [
    "EVENT_NAME",
    "SOURCE",
    "WireRecord",
    "event",
    "events",
    "publisher_config",
    "wire_records",
]

EVENT_NAME = "IzinDiterbitkan"
SOURCE = "ID/PEMDA-3273/DPMPTSP/sicantik"
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
