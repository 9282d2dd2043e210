"""The schema registry, stored in a compacted Kafka topic: no registry server to run.

- :mod:`bus.registry.records`: the topic's records, to and from bytes (pure);
- :mod:`bus.registry.state`: the registry's content, folded from records (pure);
- :mod:`bus.registry.kafka`: :class:`SchemaRegistry`, which reads and writes the topic;
- :mod:`bus.registry.errors`: the registry's errors under :class:`~bus.errors.BusError`.
"""

from __future__ import annotations

from bus.registry.errors import RegistryError, RegistryUnavailableError, SchemasRefusedError
from bus.registry.kafka import (
    DEFAULT_TIMEOUT_S,
    DEFAULT_TOPIC,
    MAX_REGISTER_ATTEMPTS,
    SchemaRegistry,
    register_standard,
)
from bus.registry.records import RegisteredSchema, SubjectConfig, default_principal
from bus.registry.state import RegistryState, Skipped

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "DEFAULT_TOPIC",
    "MAX_REGISTER_ATTEMPTS",
    "RegisteredSchema",
    "RegistryError",
    "RegistryState",
    "RegistryUnavailableError",
    "SchemaRegistry",
    "SchemasRefusedError",
    "Skipped",
    "SubjectConfig",
    "default_principal",
    "register_standard",
]
