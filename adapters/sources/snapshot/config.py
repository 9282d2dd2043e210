"""A snapshot's settings: the ``snapshot:`` section of a steward's outbox-relay file.

The section names the steward's current table, its key and version columns, and the
Python function that turns one row into a typed event. The database, the broker, the
steward (``source``) and its key secret are the relay's: a snapshot publishes as the
relay does, to the same topics, keyed the same way.

    kind: outbox-relay
    relay: {database_url: ..., bootstrap_servers: ..., source: ID/PEMDA-3273/DISDUKCAPIL/siak}
    snapshot:
      table: penduduk
      key_column: nik
      version_column: versi
      event: adapters.opd.disdukcapil.siak:snapshot_event

``event`` is checked in two steps. Its form (``module:function``) with the rest of the
file, and its import by :func:`adapters.runner.load_snapshot` (so ``spbe-bus snapshot
--check`` and every run): a module missing where the relay runs must not stop the relay,
which never calls it.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from typing import Any, Self, cast

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from adapters.config_file import FromFile
from bus.contract.events import SpbeEvent
from bus.errors import ConfigError

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_PROGRESS_TABLE",
    "RowToEvent",
    "SnapshotConfig",
    "load_entry_point",
]

DEFAULT_BATCH_SIZE = 1000
DEFAULT_PROGRESS_TABLE = "spbe_snapshot_progress"

#: What the ``event`` entry point is: a row (column name -> value) to the event it states,
#: or ``None`` for a row the snapshot leaves out on purpose (counted as excluded).
RowToEvent = Callable[[Mapping[str, Any]], SpbeEvent | None]

_IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"
_ENTRY_POINT = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")


_FORM = "must be 'module:function', e.g. adapters.opd.disdukcapil.siak:snapshot_event"


def load_entry_point(spec: str) -> RowToEvent:
    """The function ``module:function`` names; a ConfigError naming ``snapshot.event`` if not."""
    if not _ENTRY_POINT.fullmatch(spec):
        raise ConfigError(f"snapshot.event: {spec!r} {_FORM}")
    module_name, _, name = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"snapshot.event: module {module_name!r} cannot be imported ({type(exc).__name__})",
            fix="check the name, and that the module is installed or on PYTHONPATH where "
            "the snapshot runs",
        ) from None
    function = getattr(module, name, None)
    if function is None:
        raise ConfigError(
            f"snapshot.event: module {module_name!r} has no {name!r}",
            fix="name the function turning a row into an event",
        )
    if not callable(function):
        raise ConfigError(
            f"snapshot.event: {spec} is not a function",
            fix="name the function turning a row into an event",
        )
    return cast(RowToEvent, function)


class SnapshotConfig(FromFile, BaseModel):
    """One table of the steward's, published once as it stands: one event per row."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: The steward's table holding the current state (a plain SQL identifier; put a
    #: PostgreSQL schema on the search path in database_url to reach another schema).
    table: str = Field(pattern=_IDENTIFIER)
    #: The column the rows are read in order of: unique and never NULL (the primary key).
    #: Text, integer or UUID.
    key_column: str = Field(pattern=_IDENTIFIER)
    #: The row's version, a non-negative integer: it travels as ``ce_sequence``, so a
    #: sink keeps the newer of a snapshot event and a live change.
    version_column: str = Field(pattern=_IDENTIFIER)
    #: ``module:function`` turning a row mapping into a typed event (or ``None`` to leave
    #: the row out), e.g. ``adapters.opd.disdukcapil.siak:snapshot_event``.
    event: str
    #: The progress row's name; default the table's. Runs of one name resume each other.
    name: str | None = Field(default=None, pattern=_IDENTIFIER)
    #: Rows read, published and acknowledged together; progress is stored after each.
    batch_size: int = Field(default=DEFAULT_BATCH_SIZE, ge=1, le=50_000)
    #: At most this many rows per second (``--max-rate`` overrides it); default no limit.
    max_rate_per_s: float | None = Field(default=None, gt=0)
    #: Stop once more than this many rows failed validation; default: skip and report
    #: every one and carry on.
    max_invalid_rows: int | None = Field(default=None, ge=0)
    #: Where the last acknowledged key is kept, in the steward's own database.
    progress_table: str = Field(default=DEFAULT_PROGRESS_TABLE, pattern=_IDENTIFIER)

    @field_validator("event")
    @classmethod
    def _entry_point_form(cls, value: str) -> str:
        if not _ENTRY_POINT.fullmatch(value):
            raise ValueError(_FORM)
        return value

    @model_validator(mode="after")
    def _distinct_columns(self) -> Self:
        if self.key_column == self.version_column:
            raise ValueError("key_column and version_column must be different columns")
        return self

    @property
    def snapshot_name(self) -> str:
        """The name its progress is stored under."""
        return self.name or self.table

    def row_to_event(self) -> RowToEvent:
        """The ``event`` function itself (imported now; ConfigError if it cannot be)."""
        return load_entry_point(self.event)
