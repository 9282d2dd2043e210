"""The one-by-one rules of a batch, worked out in Python from the rows' versions.

:class:`BatchPlan` takes the batch's changes in order, with what the database said of
each key's row (present, and its version) and which events are already processed, and
gives each change the verdict applying the changes one at a time would give:

1. its (``ce_source``, ``ce_id``) is already processed, or earlier in the batch:
   :attr:`Verdict.DUPLICATE`, nothing is written or recorded;
2. no row has the key: ``upsert`` inserts it (:attr:`~Verdict.INSERTED`, the version
   set to the event's sequence), ``update_only`` leaves it absent (:attr:`~Verdict.ABSENT`);
3. a row has it: an event with a sequence not above the row's version is
   :attr:`~Verdict.STALE` and writes nothing; any other is :attr:`~Verdict.UPDATED`, and
   sets the version to its sequence, or, without a sequence, leaves the version as it is
   (last writer wins);
4. every change but a duplicate is to be recorded as processed.

A change's verdict counts the batch's earlier changes of the same key, so per-key order
holds. :meth:`BatchPlan.row_writes` collapses the writes to one per key: the values of
its changes merged in order, an insert for a key no row had, else an update. Pure: no
database, no event loop.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from adapters.sinks.sql.config import MappingAction
from adapters.sinks.sql.rows import Change

__all__ = ["BatchPlan", "Result", "RowWrite", "Verdict", "same_columns"]


class Verdict(StrEnum):
    """What a change did to the table."""

    INSERTED = "inserted"
    UPDATED = "updated"
    #: The row holds a newer version; the event was recorded and changed nothing.
    STALE = "stale"
    #: ``update_only`` and no row has the key; recorded, nothing written.
    ABSENT = "absent"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class Result:
    """A change's verdict, and the row's version it was compared with."""

    verdict: Verdict
    row_version: int | None = None


@dataclass(slots=True)
class RowWrite:
    """What a batch writes to one key's row: an insert or an update, and from which changes."""

    key: object
    insert: bool
    #: Column -> value; the version column when a change set it (always for an insert).
    values: dict[str, object]
    changes: list[Change] = field(default_factory=list)


@dataclass(slots=True)
class _Row:
    present: bool
    version: int | None


class BatchPlan:
    """A batch's verdicts and writes, change by change (see the module docstring)."""

    def __init__(self, version_column: str, processed: Iterable[tuple[str, str]]) -> None:
        self._version = version_column
        self._seen = set(processed)
        self._rows: dict[object, _Row] = {}
        self._writes: dict[object, RowWrite] = {}
        #: The changes to record as processed, in order.
        self.records: list[Change] = []

    def is_duplicate(self, change: Change) -> bool:
        """Whether ``change``'s event is processed already, or earlier in the batch."""
        return change.dedupe_key in self._seen

    def knows(self, key: object) -> bool:
        """Whether the row of ``key`` was read (by :meth:`found`) or written in this batch."""
        return key in self._rows

    def found(self, key: object, version: int | None, *, present: bool = True) -> None:
        """What the database holds for ``key``; a key never found has no row."""
        self._rows[key] = _Row(present, version)

    def add(self, change: Change) -> tuple[Result, RowWrite | None]:
        """The verdict of ``change`` (the next one of the batch), and its own write if any."""
        if self.is_duplicate(change):
            return Result(Verdict.DUPLICATE), None
        self._seen.add(change.dedupe_key)
        self.records.append(change)
        row = self._rows.setdefault(change.key, _Row(present=False, version=None))
        sequence = change.sequence
        if not row.present:
            if change.action is MappingAction.UPDATE_ONLY:
                return Result(Verdict.ABSENT), None
            row.present, row.version = True, sequence
            write = RowWrite(change.key, True, {self._version: sequence, **change.values})
            return Result(Verdict.INSERTED), self._merge(write, change)
        version = row.version
        if sequence is not None and version is not None and sequence <= version:
            return Result(Verdict.STALE, row_version=version), None
        values = dict(change.values)
        if sequence is not None:
            values[self._version] = row.version = sequence
        return Result(Verdict.UPDATED, row_version=version), self._merge(
            RowWrite(change.key, False, values), change
        )

    def _merge(self, write: RowWrite, change: Change) -> RowWrite:
        write.changes.append(change)
        merged = self._writes.get(write.key)
        if merged is None:
            self._writes[write.key] = RowWrite(
                write.key, write.insert, dict(write.values), [change]
            )
        else:
            merged.values.update(write.values)
            merged.changes.append(change)
        return write

    def row_writes(self) -> list[RowWrite]:
        """One write per key: its changes' values merged in batch order."""
        return list(self._writes.values())


def same_columns(writes: Iterable[RowWrite]) -> Mapping[tuple[str, ...], list[RowWrite]]:
    """``writes`` grouped by the columns they set (sorted names), for multi-row statements."""
    groups: dict[tuple[str, ...], list[RowWrite]] = {}
    for write in writes:
        groups.setdefault(tuple(sorted(write.values)), []).append(write)
    return groups
