"""Avro single-object encoding: the bytes of every event value on the bus.

Layout (Avro specification, "Single-object encoding")::

    C3 01 | fingerprint: 8 bytes, little-endian | Avro binary datum
    marker  CRC-64-AVRO of the writer schema's
            Parsing Canonical Form

Any Avro library reads it given the schema; no registry server is needed. Readers find the
writer schema by fingerprint through a :class:`SchemaResolver` and resolve it to their own
reader schema, so a reader built for version 1 of a schema reads data written with a
compatible version 2.

Schemas arrive parsed (:class:`~bus.contract.schema.AvroSchema`), so encoding and decoding
never parse a schema. Encoding validates the datum first: fastavro's writer would otherwise
write ``True`` or ``1.5`` into an ``int`` field and truncate an out-of-range number. A
datum from a validated event model (whose field types bound every value to its Avro type)
is encoded with ``validated=True``, which skips that second validation.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple, Protocol

import fastavro
import fastavro.read
import fastavro.validation

from bus.contract.misfits import misfits
from bus.contract.schema import AvroSchema
from bus.errors import CodecError, UnknownSchemaError

__all__ = [
    "HEADER_LENGTH",
    "MARKER",
    "Decoded",
    "InMemorySchemas",
    "SchemaResolver",
    "decode",
    "encode",
    "header",
    "read_header",
]

MARKER = b"\xc3\x01"
HEADER_LENGTH = len(MARKER) + 8
_MAX_PROBLEMS = 10


class SchemaResolver(Protocol):
    """Finds a writer schema by its fingerprint; ``None`` when it does not know it."""

    def schema_for(self, fingerprint: int) -> AvroSchema | None:
        """Return the schema with this CRC-64-AVRO fingerprint, or ``None``."""
        ...


class InMemorySchemas:
    """A :class:`SchemaResolver` over schemas held in memory (tests, a static catalogue)."""

    def __init__(self, schemas: Iterable[AvroSchema] = ()) -> None:
        self._by_fingerprint: dict[int, AvroSchema] = {}
        self._by_name: dict[str, AvroSchema] = {}
        for schema in schemas:
            self.add(schema)

    def add(self, schema: AvroSchema) -> None:
        """Make ``schema`` known; the latest added schema of a name wins :meth:`by_name`."""
        self._by_fingerprint[schema.fingerprint] = schema
        self._by_name[schema.name] = schema
        self._by_name[schema.record_name] = schema

    def schema_for(self, fingerprint: int) -> AvroSchema | None:
        """Return the schema with this fingerprint, or ``None``."""
        return self._by_fingerprint.get(fingerprint)

    def by_name(self, name: str) -> AvroSchema | None:
        """Return the latest added schema with this full name or record name, or ``None``."""
        return self._by_name.get(name)

    def __contains__(self, fingerprint: object) -> bool:
        return fingerprint in self._by_fingerprint

    def __iter__(self) -> Iterator[AvroSchema]:
        return iter(self._by_fingerprint.values())

    def __len__(self) -> int:
        return len(self._by_fingerprint)


class Decoded(NamedTuple):
    """A decoded value: the schema it was written with, and the datum as the reader sees it."""

    writer: AvroSchema
    datum: dict[str, Any]


def header(schema: AvroSchema) -> bytes:
    """Return the 10-byte single-object header for data written with ``schema``."""
    return schema.single_object_header


def encode(schema: AvroSchema, datum: Mapping[str, Any], *, validated: bool = False) -> bytes:
    """Encode ``datum`` as an Avro single-object value written with ``schema``.

    Fields left out of ``datum`` take their schema default. Raises
    :class:`~bus.errors.CodecError` naming every field that does not fit (wrong type,
    missing without a default, unknown field, enum symbol or decimal out of range).
    ``validated=True`` says the datum comes from a validated event model
    (:meth:`~bus.contract.event_base.SpbeEvent.avro_datum`): it is written without the
    validation pass, and a value the writer still refuses raises the same CodecError.
    """
    stream = io.BytesIO()
    stream.write(schema.single_object_header)
    try:
        # raise_errors=False: a union's non-matching branches then cost a bool, not an
        # exception each; the detailed explanation below is built only on failure.
        if not validated and not fastavro.validation.validate(
            datum, schema.parsed, raise_errors=False
        ):
            raise ValueError("datum does not fit its schema")
        fastavro.schemaless_writer(stream, schema.parsed, datum, strict_allow_default=True)
    except (fastavro.validation.ValidationError, ValueError, TypeError, OverflowError) as exc:
        problems = misfits(schema, datum)
        if not problems:
            problems = [str(exc)]
        lines = "\n".join(f"  - {p}" for p in problems[:_MAX_PROBLEMS])
        more = len(problems) - _MAX_PROBLEMS
        if more > 0:
            lines += f"\n  - ... and {more} more"
        raise CodecError(
            f"{schema.record_name} does not fit its schema {schema.name} "
            f"({schema.fingerprint:#018x}):\n{lines}",
            fix="correct the listed fields of the event before publishing it",
        ) from None
    return stream.getvalue()


def read_header(data: bytes) -> int:
    """Return the writer-schema fingerprint from a single-object header.

    Raises :class:`~bus.errors.CodecError` when ``data`` is empty, too short or does not
    start with the ``C3 01`` marker; the message says what the bytes look like instead.
    """
    if not data:
        raise CodecError(
            "the value is empty (0 bytes): a tombstone or an empty message is not an event",
            fix="skip tombstones before decoding, or check what produced the message",
        )
    if data[:2] != MARKER[: len(data[:2])]:
        found = data[:2].hex(" ")
        raise CodecError(
            f"not an Avro single-object value: expected marker c3 01, found {found}"
            f"{_looks_like(data)}",
            fix="produce values with bus.contract.codec.encode (Avro single-object encoding)",
        )
    if len(data) < HEADER_LENGTH:
        raise CodecError(
            f"value too short: {len(data)} bytes, but a single-object header alone is "
            f"{HEADER_LENGTH} bytes (c3 01 + 8-byte fingerprint)",
        )
    return int.from_bytes(data[2:HEADER_LENGTH], "little")


def decode(data: bytes, resolver: SchemaResolver, reader: AvroSchema | None = None) -> Decoded:
    """Decode a single-object value, resolving the writer schema to ``reader``.

    Without ``reader`` the datum is read as written. Raises
    :class:`~bus.errors.UnknownSchemaError` when ``resolver`` does not know the writer's
    fingerprint and :class:`~bus.errors.CodecError` for bad headers, truncated data,
    trailing bytes and writer schemas the reader schema cannot resolve.
    """
    if data[:2] != MARKER or len(data) < HEADER_LENGTH:
        read_header(data)  # raises, saying what the bytes look like instead
    fingerprint = int.from_bytes(data[2:HEADER_LENGTH], "little")
    writer = resolver.schema_for(fingerprint)
    if writer is None:
        raise UnknownSchemaError(fingerprint)
    if writer.fingerprint != fingerprint:
        raise CodecError(
            f"the schema resolver returned {writer.name} ({writer.fingerprint:#018x}) "
            f"for fingerprint {fingerprint:#018x}"
        )
    resolve_to = None if reader is None or reader.fingerprint == fingerprint else reader
    stream = io.BytesIO(data)
    stream.seek(HEADER_LENGTH)
    try:
        datum = fastavro.schemaless_reader(
            stream, writer.parsed, None if resolve_to is None else resolve_to.parsed
        )
    except fastavro.read.SchemaResolutionError as exc:
        target = (
            "the reader schema"
            if resolve_to is None
            else (f"{resolve_to.name} ({resolve_to.fingerprint:#018x})")
        )
        raise CodecError(
            f"{writer.name} ({writer.fingerprint:#018x}) cannot be read as {target}: {exc}",
            fix="the reader schema must be able to read the writer's: give added fields a "
            "default, keep enum symbols, keep record names (or list the old name in aliases)",
        ) from None
    except (EOFError, ValueError, IndexError, KeyError, TypeError, OverflowError) as exc:
        if isinstance(exc, EOFError) or stream.tell() >= len(data):
            raise CodecError(
                f"{writer.record_name} value is truncated: its {len(data) - HEADER_LENGTH} "
                "bytes after the header end before the datum does",
                fix="check that the whole message value reached the consumer",
            ) from None
        raise CodecError(
            f"bytes are not a valid {writer.record_name} datum "
            f"({type(exc).__name__}: {exc}); the value is corrupt or was written with "
            "another schema than its fingerprint names"
        ) from None
    if stream.tell() != len(data):
        extra = len(data) - stream.tell()
        raise CodecError(
            f"{extra} unexpected bytes after the {writer.record_name} datum (it ends at byte "
            f"{stream.tell()} of {len(data)}): the value holds more than one datum or is corrupt"
        )
    if not isinstance(datum, dict):
        raise CodecError(f"{writer.record_name} did not decode to a record")
    return Decoded(writer, datum)


def _looks_like(data: bytes) -> str:
    if data[0] == 0x00:
        detail = ""
        if len(data) >= 5:
            detail = f", here schema id {int.from_bytes(data[1:5], 'big')}"
        return (
            "; this looks like Confluent wire format (magic 0x00 + 4-byte id"
            f"{detail}), which needs a Confluent schema registry"
        )
    if data[:4] == b"Obj\x01":
        return "; this looks like an Avro object container file, not a single datum"
    if data[:1] in (b"{", b"["):
        return "; this looks like JSON"
    return ""
