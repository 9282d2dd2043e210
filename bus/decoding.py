"""Decode a Kafka record into its envelope and typed event, as every reader of the bus does.

Schemas come from the local data standard first, then from the registry's cache; a
fingerprint neither knows makes the registry read on once before the record is refused.
A record written with a subscription's projected schema (registered by the contract
service) decodes into that projection's event class, and its contract headers into
:attr:`~bus.contract.message.IncomingEvent.contract` (:func:`~bus.contract.message.read_record`).
Shared by the subscriber and the operator tools (replay, dead letters), so they read
records exactly alike. A subscriber hands its decoder the registry it runs; an operator
tool uses :meth:`RecordDecoder.connect`, whose decoder owns its registry and is started
and stopped with ``async with``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from bus.connection import KafkaConnection
from bus.contract.codec import InMemorySchemas
from bus.contract.message import IncomingEvent, read_record
from bus.contract.schema import AvroSchema
from bus.contract.standard import load_standard
from bus.errors import ContractError, LifecycleError, UnknownSchemaError
from bus.lifecycle import Lifecycle
from bus.registry import DEFAULT_TOPIC as DEFAULT_REGISTRY_TOPIC
from bus.registry import SchemaRegistry

__all__ = ["RecordDecoder"]


class RecordDecoder(Lifecycle):
    """The local standard, then the registry (started and stopped by whoever owns it)."""

    def __init__(
        self,
        standard: Mapping[str, AvroSchema],
        registry: SchemaRegistry,
        *,
        owns_registry: bool = False,
        validate_events: bool = False,
    ) -> None:
        self.standard = standard
        #: Validate each decoded event with its model again (its publisher already did).
        self.validate_events = validate_events
        self._local = InMemorySchemas(standard.values())
        self._registry = registry
        self._owns_registry = owns_registry

    @classmethod
    def connect(
        cls,
        kafka: KafkaConnection | str,
        *,
        schemas_dir: Path | None = None,
        registry_topic: str = DEFAULT_REGISTRY_TOPIC,
    ) -> RecordDecoder:
        """A decoder with a registry of its own on ``kafka``; use ``async with``."""
        registry = SchemaRegistry(kafka, topic=registry_topic)
        return cls(load_standard(schemas_dir), registry, owns_registry=True)

    async def start(self) -> None:
        if self._owns_registry:
            await self._registry.start()

    async def stop(self) -> None:
        if self._owns_registry:
            await self._registry.stop()

    def schema_for(self, fingerprint: int) -> AvroSchema | None:
        return self._local.schema_for(fingerprint) or self._registry.schema_for(fingerprint)

    async def decode(
        self, value: bytes | None, headers: Sequence[tuple[str, bytes | None]]
    ) -> IncomingEvent:
        """The record's envelope and typed event; :class:`ContractError` if it is none."""
        if not self._registry.started:
            raise LifecycleError(
                "the decoder's schema registry is not started",
                fix="use 'async with RecordDecoder.connect(...)', or start the registry first",
            )
        if value is None:
            raise ContractError("record has no value (a tombstone); event topics carry events only")
        try:
            return read_record(value, headers, self, self.standard, validate=self.validate_events)
        except UnknownSchemaError as exc:
            await self._registry.lookup(exc.fingerprint)  # read on once; raises if still unknown
            return read_record(value, headers, self, self.standard, validate=self.validate_events)
