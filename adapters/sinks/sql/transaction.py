"""Apply a batch of changes in one database transaction: dedupe, version guard, write, record.

For each change, in the order given (so per-key order holds within a batch):

1. its (``ce_source``, ``ce_id``) is in the processed-event table, or earlier in the
   batch: a duplicate, nothing is written;
2. the key's row is read with ``SELECT ... FOR UPDATE`` (SQLite holds its write lock
   from ``BEGIN IMMEDIATE``), so no other writer changes it until the commit;
3. absent: ``upsert`` inserts it, ``update_only`` leaves it absent; present: only an
   event with a higher sequence than the row's version changes it (a stale one is
   recorded but writes nothing); an event without a sequence changes it and leaves the
   version as it is (last writer wins);
4. the event is recorded in the processed-event table.

Then one commit: all of it, or (on any error, or a kill) none of it.

Two writers can still meet where no row exists to lock: both insert the same new key,
or both record the same event. The second one's statement fails on the unique key; its
transaction is rolled back and run again, and then finds the row or the record. A
deadlock is handled the same way. After :data:`MAX_ATTEMPTS` it is a TransientError.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from adapters.sinks.sql.config import MappingAction
from adapters.sinks.sql.dialects import DialectSupport
from adapters.sinks.sql.failures import FailureKind, classify, handler_error
from adapters.sinks.sql.rows import Change
from adapters.sinks.sql.tables import SinkTables
from bus.errors import TransientError
from bus.logs import get_logger

__all__ = ["MAX_ATTEMPTS", "Result", "Verdict", "apply_changes"]

MAX_ATTEMPTS: Final = 5

log = get_logger(__name__)


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


class _Retry(Exception):
    """Another transaction got there first; run the whole batch again."""

    def __init__(self, reason: str, *, key: object = None) -> None:
        super().__init__(reason)
        self.reason = reason
        #: The key another writer inserted first, when that was the cause.
        self.key = key


def apply_changes(
    engine: Engine, tables: SinkTables, changes: Sequence[Change], support: DialectSupport
) -> list[Result]:
    """Apply ``changes`` in one transaction (blocking; run it off the event loop)."""
    raced: set[object] = set()
    table = tables.target.fullname
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            with engine.begin() as connection:
                return _Transaction(connection, tables, support, raced).run(changes)
        except _Retry as retry:
            if retry.key is not None:
                raced.add(retry.key)
            log.info("sink.retry", table=table, reason=retry.reason, attempt=attempt)
        except sa.exc.DBAPIError as exc:  # connecting, BEGIN or COMMIT failed
            failure = classify(exc, support.describe(exc.orig))
            raise handler_error(failure, table=table, driver=support.dialect.value) from None
        except (sa.exc.TimeoutError, sa.exc.DisconnectionError) as exc:
            raise TransientError(
                f"no database connection for {table} ({type(exc).__name__}); "
                "the batch was rolled back and may apply when tried again"
            ) from None
    raise TransientError(
        f"writing to {table} met concurrent writers {MAX_ATTEMPTS} times in a row; "
        "the batch was rolled back and may apply when tried again"
    )


class _Transaction:
    def __init__(
        self,
        connection: sa.Connection,
        tables: SinkTables,
        support: DialectSupport,
        raced: set[object],
    ) -> None:
        self._connection = connection
        self._tables = tables
        self._support = support
        self._raced = raced

    def run(self, changes: Sequence[Change]) -> list[Result]:
        if self._support.row_locks and len({c.key for c in changes}) > 1:
            self._lock_in_key_order(changes)
        seen = self._already_processed(changes)
        results: list[Result] = []
        records: list[dict[str, object]] = []
        applied_at = datetime.now(UTC)
        for change in changes:
            if change.dedupe_key in seen:
                results.append(Result(Verdict.DUPLICATE))
                continue
            seen.add(change.dedupe_key)
            results.append(self._apply(change))
            records.append(_record(change, applied_at))
        if records:
            race = "an event was recorded by a concurrent writer"
            self._execute(sa.insert(self._tables.processed), None, records, race=race)
        return results

    def _lock_in_key_order(self, changes: Sequence[Change]) -> None:
        """Lock every existing row of the batch up front, in key order: no lock cycles."""
        key = self._tables.key
        keys = sorted({c.key for c in changes}, key=str)
        query = sa.select(key).where(key.in_(keys)).order_by(key).with_for_update()
        self._execute(query, None)

    def _already_processed(self, changes: Sequence[Change]) -> set[tuple[str, str]]:
        processed = self._tables.processed
        wanted = {c.dedupe_key for c in changes}
        query = sa.select(processed.c.source, processed.c.event_id).where(
            processed.c.source.in_(sorted({source for source, _ in wanted})),
            processed.c.event_id.in_(sorted({event_id for _, event_id in wanted})),
        )
        rows = self._execute(query, None)
        return {(row[0], row[1]) for row in rows} & wanted

    def _apply(self, change: Change) -> Result:
        tables = self._tables
        query = sa.select(tables.version).where(tables.key == change.key).with_for_update()
        row = self._execute(query, change).first()
        sequence = change.sequence
        if row is None:
            if change.action is MappingAction.UPDATE_ONLY:
                return Result(Verdict.ABSENT)
            values = {tables.key.name: change.key, tables.version.name: sequence, **change.values}
            self._insert(change, values)
            return Result(Verdict.INSERTED)
        version = row[0]
        if sequence is not None and version is not None and sequence <= version:
            return Result(Verdict.STALE, row_version=version)
        values = dict(change.values)
        if sequence is not None:
            values[tables.version.name] = sequence
        update = sa.update(tables.target).where(tables.key == change.key).values(values)
        self._execute(update, change)
        return Result(Verdict.UPDATED, row_version=version)

    def _insert(self, change: Change, values: dict[str, object]) -> None:
        # A unique key refusing the insert means another writer inserted the key first,
        # unless it happened before for this key: then the row is still absent, and the
        # refusal comes from another unique column.
        first = change.key not in self._raced
        race = "the key was inserted by a concurrent writer" if first else None
        statement = sa.insert(self._tables.target).values(values)
        self._execute(statement, change, race=race, race_key=change.key)

    def _execute(
        self,
        statement: sa.Executable,
        change: Change | None,
        params: Any = None,
        *,
        race: str | None = None,
        race_key: object = None,
    ) -> sa.CursorResult[*tuple[Any, ...]]:
        try:
            return self._connection.execute(statement, params)
        except sa.exc.DBAPIError as exc:
            failure = classify(exc, self._support.describe(exc.orig))
            if failure.kind is FailureKind.DEADLOCK:
                raise _Retry("deadlock") from None
            if race is not None and failure.kind is FailureKind.UNIQUE:
                raise _Retry(race, key=race_key) from None
            raise handler_error(
                failure,
                table=self._tables.target.fullname,
                event_name=change.event_name if change else None,
                event_id=change.delivery.envelope.id if change else None,
                index=change.index if change else None,
                driver=self._support.dialect.value,
            ) from None


def _record(change: Change, applied_at: datetime) -> dict[str, object]:
    source, event_id = change.dedupe_key
    delivery = change.delivery
    return {
        "source": source,
        "event_id": event_id,
        "kafka_topic": delivery.topic,
        "kafka_partition": delivery.partition,
        "kafka_offset": delivery.offset,
        "applied_at": applied_at,
    }
