"""The transactional outbox source: events committed with the business row, then relayed.

An OPD application writes each event into its ``spbe_outbox`` table in the same database
transaction as the change it describes (:func:`add_to_outbox` from Python; plain SQL from
PHP or Java, see ``docs/outbox.md``). :class:`OutboxRelay` publishes the rows in
per-aggregate order and marks them published; a crash in between publishes again with
the same event id, so events are duplicated at worst, never lost.

Modules: ``config`` (settings), ``table`` (the table), ``writer`` (the insert helper),
``rows`` (pure decisions about one row), ``store`` (the relay's SQL), ``relay`` (the loop).
"""

from __future__ import annotations

from adapters.sources.outbox.config import DEFAULT_TABLE, OutboxRelayConfig
from adapters.sources.outbox.relay import OutboxRelay, RelayStats
from adapters.sources.outbox.rows import RowRejected
from adapters.sources.outbox.table import create_outbox_table, outbox_table
from adapters.sources.outbox.writer import add_to_outbox

__all__ = [
    "DEFAULT_TABLE",
    "OutboxRelay",
    "OutboxRelayConfig",
    "RelayStats",
    "RowRejected",
    "add_to_outbox",
    "create_outbox_table",
    "outbox_table",
]
