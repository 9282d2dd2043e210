"""Decode a Kafka record into its envelope and typed event, as every reader of the bus does.

Schemas come from the local data standard first, then from the registry's cache; a
fingerprint neither knows makes the registry read on once before the record is refused.
Shared by the subscriber and the operator tools (replay, dead letters), so they read
records exactly alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bus.contract.codec import InMemorySchemas
from bus.contract.message import IncomingEvent, read_record
from bus.contract.schema import AvroSchema
from bus.errors import ContractError, UnknownSchemaError
from bus.registry import SchemaRegistry

__all__ = ["RecordDecoder"]


class RecordDecoder:
    """The local standard, then the registry (whose lifecycle stays with its owner)."""

    def __init__(self, standard: Mapping[str, AvroSchema], registry: SchemaRegistry) -> None:
        self.standard = standard
        self._local = InMemorySchemas(standard.values())
        self._registry = registry

    def schema_for(self, fingerprint: int) -> AvroSchema | None:
        return self._local.schema_for(fingerprint) or self._registry.schema_for(fingerprint)

    async def decode(
        self, value: bytes | None, headers: Sequence[tuple[str, bytes | None]]
    ) -> IncomingEvent:
        """The record's envelope and typed event; :class:`ContractError` if it is none."""
        if value is None:
            raise ContractError("record has no value (a tombstone); event topics carry events only")
        try:
            return read_record(value, headers, self, self.standard)
        except UnknownSchemaError as exc:
            await self._registry.lookup(exc.fingerprint)  # read on once; raises if still unknown
            return read_record(value, headers, self, self.standard)
