"""The day-one snapshot source: a steward's existing records, published once as events.

An OPD joining the bus holds years of records no outbox row will ever announce. A
snapshot reads the steward's current table in key order and publishes one event per
row, of the type live changes use, marked ``ce_snapshot: true`` with the row's version
as ``ce_sequence``, so the sinks' version guard keeps whichever of a snapshot event and
a live change is newer. It is described by the ``snapshot:`` section of the steward's
``outbox-relay`` file and run with ``spbe-bus snapshot FILE``; it resumes after a crash
from the last key Kafka acknowledged (stored in ``spbe_snapshot_progress``).

Modules: ``config`` (the section), ``reader`` (keyset pages of the table), ``rows`` (a
row to its record or its report), ``progress`` (the progress table), ``lock`` (one run at
a time), ``pace`` (``--max-rate``), ``meter`` (bar, log lines, summary), ``snapshot`` (the
run).
"""

from __future__ import annotations

from adapters.sources.snapshot.config import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_PROGRESS_TABLE,
    RowToEvent,
    SnapshotConfig,
)
from adapters.sources.snapshot.meter import (
    ProgressLog,
    SnapshotProgress,
    SnapshotSummary,
    TerminalBar,
    progress_reporter,
)
from adapters.sources.snapshot.pace import Pace
from adapters.sources.snapshot.progress import Progress, ProgressStore, progress_table
from adapters.sources.snapshot.rows import InvalidRow, SnapshotError
from adapters.sources.snapshot.snapshot import Snapshot

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_PROGRESS_TABLE",
    "InvalidRow",
    "Pace",
    "Progress",
    "ProgressLog",
    "ProgressStore",
    "RowToEvent",
    "Snapshot",
    "SnapshotConfig",
    "SnapshotError",
    "SnapshotProgress",
    "SnapshotSummary",
    "TerminalBar",
    "progress_reporter",
    "progress_table",
]
