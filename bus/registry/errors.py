"""The errors of the schema registry, where they hang in the bus's one tree.

BusError
├── RegistryError                         the registry topic cannot be used as asked
│   └── RegistryUnavailableError          Kafka did not answer in time (retriable; also a
│                                         bus.errors.KafkaUnavailableError)
└── ContractError (ValueError)
    ├── CodecError
    │   └── UnknownSchemaError            (bus.errors) fingerprint in no registered schema
    └── IncompatibleSchemaError           (bus.errors) one schema breaks its subject's mode
        └── SchemasRefusedError           some schemas of a set were refused, the rest kept
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from bus.errors import BusError, ContractError, IncompatibleSchemaError, KafkaUnavailableError

if TYPE_CHECKING:
    from bus.registry.records import RegisteredSchema

__all__ = ["RegistryError", "RegistryUnavailableError", "SchemasRefusedError"]


class RegistryError(BusError):
    """The schema registry cannot do what was asked: topic unfit, record corrupt, no version."""


class RegistryUnavailableError(RegistryError, KafkaUnavailableError):
    """Kafka, which stores the registry, did not answer or refused the connection in time."""

    retriable = True


class SchemasRefusedError(IncompatibleSchemaError):
    """Some schemas of a set broke their subject's compatibility; every other one is registered.

    ``refused`` holds one :class:`~bus.errors.IncompatibleSchemaError` per refused schema and
    ``registered`` what the registry holds for the accepted ones.
    """

    def __init__(
        self,
        registered: Sequence[RegisteredSchema],
        refused: Sequence[IncompatibleSchemaError],
    ) -> None:
        self.registered = tuple(registered)
        self.refused = tuple(refused)
        self.subject = ", ".join(error.subject for error in self.refused)
        self.mode = ", ".join(dict.fromkeys(error.mode for error in self.refused))
        self.reasons = tuple(
            f"{error.subject}: {reason}" for error in self.refused for reason in error.reasons
        )
        count = len(self.refused)
        details = "\n".join(str(error) for error in self.refused)
        ContractError.__init__(
            self,
            f"{count} of {count + len(self.registered)} schemas refused "
            f"({len(self.registered)} registered):\n{details}",
        )
