"""Another team's Avro library and ours agree on the bytes.

The Apache ``avro`` package is an implementation independent of fastavro (which the
codec uses): it reads what we write, and we read what it writes with the framing from
the Avro specification.
"""

from __future__ import annotations

import io
import json
import struct

import avro.io
import avro.schema
import pytest

from bus.contract import codec
from bus.contract.codec import InMemorySchemas
from bus.contract.events import EVENT_TYPES
from bus.contract.standard import example, load_standard

STANDARD = load_standard()


def _apache(name: str) -> avro.schema.Schema:
    return avro.schema.parse(json.dumps(STANDARD[name].raw))


@pytest.mark.parametrize("name", sorted(STANDARD))
def test_apache_avro_reads_what_the_bus_writes(name: str) -> None:
    event = EVENT_TYPES[name].from_json(example(name))
    data = codec.encode(STANDARD[name], event.to_avro())
    assert data[:2] == b"\xc3\x01"
    assert struct.unpack("<Q", data[2:10])[0] == STANDARD[name].fingerprint
    reader = avro.io.DatumReader(_apache(name))
    datum = reader.read(avro.io.BinaryDecoder(io.BytesIO(data[10:])))
    assert EVENT_TYPES[name].from_avro(datum) == event


@pytest.mark.parametrize("name", sorted(STANDARD))
def test_the_bus_reads_what_apache_avro_writes_framed_by_hand(name: str) -> None:
    event = EVENT_TYPES[name].from_json(example(name))
    body = io.BytesIO()
    avro.io.DatumWriter(_apache(name)).write(event.to_avro(), avro.io.BinaryEncoder(body))
    framed = b"\xc3\x01" + struct.pack("<Q", STANDARD[name].fingerprint) + body.getvalue()
    writer, datum = codec.decode(framed, InMemorySchemas(STANDARD.values()))
    assert writer == STANDARD[name]
    assert EVENT_TYPES[name].from_avro(datum) == event
