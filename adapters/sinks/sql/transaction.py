"""Apply a batch of changes in one database transaction, with a fixed number of statements.

However many changes a batch holds, its transaction runs the same few statements:

1. one ``SELECT key, version ... WHERE key IN (...) ORDER BY key FOR UPDATE`` reads and
   locks the row of every key of the batch, in key order, so two writers never wait on
   each other in a cycle, and no other writer changes those rows until the commit
   (SQLite has no row locks: it holds its write lock from ``BEGIN IMMEDIATE``);
2. one ``SELECT`` finds which of the batch's events are in the processed-event table (on
   PostgreSQL, one ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` records them instead,
   and the ones it did not insert are those; step 5 is then done);
3. Python works out each change's verdict from those two reads, by the one-by-one rules
   of :mod:`adapters.sinks.sql.verdicts` (earlier changes of the same key in the batch
   counted, so per-key order holds), and collapses the writes to one per key;
4. one multi-row ``INSERT`` writes the new keys, and one ``UPDATE`` run for many rows
   (executemany) the keys that have a row, per set of columns written (one set per
   event type, or per mix of types hitting a key);
5. one multi-row ``INSERT`` records the batch's events in the processed-event table.

Then one commit: all of it, or (on any error, or a kill) none of it. Longer lists are cut
into statements of at most :data:`ROWS_PER_STATEMENT` rows (or keys to read). The table
ends as if the changes were applied one by one; the database only sees each key's final
row, so a row a later event of the batch overwrites is not checked by its constraints.

A statement for several events that the database refuses (a value a column or constraint
refuses, which the sink's own checks before any SQL could not see) does not say whose
row it was. The transaction is rolled back and the batch run again **step by step**: the
same rules with one read and one write per change, so the refusal names its event
(:class:`~adapters.sinks.sql.failures.RejectedEventError`, ``index``); the subscriber
then applies the batch's events one by one and dead-letters that one alone. Step by
step locks rows in the batch's order, not in key order; a deadlock it meets is retried
like any other.

Two writers can still meet where no row exists to lock: both insert the same new key,
or both record the same event. The second one's statement fails on the unique key; its
transaction is rolled back and run again, and then finds the row or the record. When a
multi-row insert is refused on a unique key again after that, another unique column may
be the cause: the batch is run step by step, where one event's insert refused a second
time, with no row of its key found in between, is refused for good. A deadlock is
retried the same way. After :data:`MAX_ATTEMPTS` it is a TransientError.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine

from adapters.db import Dialect
from adapters.sinks.sql.dialects import DialectSupport
from adapters.sinks.sql.failures import PERMANENT, FailureKind, classify, handler_error
from adapters.sinks.sql.rows import Change
from adapters.sinks.sql.tables import SinkTables
from adapters.sinks.sql.verdicts import BatchPlan, Result, RowWrite, same_columns
from bus.errors import TransientError
from bus.logs import get_logger

__all__ = ["MAX_ATTEMPTS", "ROWS_PER_STATEMENT", "apply_changes"]

MAX_ATTEMPTS: Final = 5
#: The most rows (or keys to read) one statement carries; more go in several statements.
ROWS_PER_STATEMENT: Final = 500
#: The most values bound in one statement (SQLite allows 32766, PostgreSQL 65535).
_VALUES_PER_STATEMENT: Final = 30_000

log = get_logger(__name__)

T = TypeVar("T")


@dataclass(slots=True)
class _Attempts:
    """What the attempts at one batch learnt, carried from one attempt to the next."""

    #: Keys whose insert, for one event, was refused on a unique key once already.
    raced: set[object] = field(default_factory=set)
    #: A multi-row insert was refused on a unique key once already.
    bulk_raced: bool = False
    #: Run the batch step by step: a statement for several events was refused.
    stepwise: bool = False


class _Retry(Exception):
    """Run the whole batch again: another transaction got there first, or step by step."""

    def __init__(
        self, reason: str, *, key: object = None, bulk: bool = False, stepwise: bool = False
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        #: The key another writer inserted first, when that was the cause.
        self.key = key
        #: A multi-row insert met a unique key.
        self.bulk = bulk
        self.stepwise = stepwise


def apply_changes(
    engine: Engine, tables: SinkTables, changes: Sequence[Change], support: DialectSupport
) -> list[Result]:
    """Apply ``changes`` in one transaction (blocking; run it off the event loop)."""
    attempts = _Attempts()
    table = tables.target.fullname
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            with engine.begin() as connection:
                run = _Transaction(connection, tables, support, attempts)
                return run.step_by_step(changes) if attempts.stepwise else run.set_based(changes)
        except _Retry as retry:
            if retry.key is not None:
                attempts.raced.add(retry.key)
            attempts.bulk_raced = attempts.bulk_raced or retry.bulk
            attempts.stepwise = attempts.stepwise or retry.stepwise
            log.info(
                "sink.retry",
                table=table,
                reason=retry.reason,
                attempt=attempt,
                step_by_step=attempts.stepwise,
            )
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
        attempts: _Attempts,
    ) -> None:
        self._connection = connection
        self._tables = tables
        self._support = support
        self._attempts = attempts

    def set_based(self, changes: Sequence[Change]) -> list[Result]:
        """The batch in a fixed number of statements (the module docstring's steps)."""
        keys = sorted({c.key for c in changes}, key=str)
        versions = self._read_versions(keys, changes)
        recorded_first = self._support.dialect is Dialect.POSTGRESQL
        processed = (
            self._record_new(changes) if recorded_first else self._already_processed(changes)
        )
        plan = BatchPlan(self._tables.version.name, processed)
        for key, version in versions:
            plan.found(key, version)
        results = [plan.add(change)[0] for change in changes]
        self._write(plan.row_writes())
        if not recorded_first:
            self._record(plan.records)
        return results

    def step_by_step(self, changes: Sequence[Change]) -> list[Result]:
        """The batch with a read and a write per change, each naming its change if refused."""
        plan = BatchPlan(self._tables.version.name, self._already_processed(changes))
        results: list[Result] = []
        for change in changes:
            if not plan.is_duplicate(change) and not plan.knows(change.key):
                found = self._read_versions([change.key], [change])
                if found:
                    plan.found(*found[0])
                else:
                    plan.found(change.key, None, present=False)
            result, write = plan.add(change)
            if write is not None:
                self._write([write])
            results.append(result)
        self._record(plan.records)
        return results

    # -- reading -----------------------------------------------------------------------------

    def _read_versions(
        self, keys: Sequence[object], changes: Sequence[Change]
    ) -> list[tuple[object, int | None]]:
        key, version = self._tables.key, self._tables.version
        found: list[tuple[object, int | None]] = []
        for chunk in _chunks(keys, ROWS_PER_STATEMENT):
            query = sa.select(key, version).where(key.in_(chunk)).order_by(key)
            if self._support.row_locks:
                query = query.with_for_update()
            found += [(row[0], row[1]) for row in self._execute(query, changes)]
        return found

    def _record_new(self, changes: Sequence[Change]) -> set[tuple[str, str]]:
        """PostgreSQL: record the batch's events first; return those recorded before.

        ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` finds an event in the table through
        its primary key's own conflict check, where a ``SELECT ... IN`` is planned, and on a
        processed table PostgreSQL has no statistics for yet (a replay into a new sink)
        it read every row of the table for every batch. A concurrent writer recording the
        same event makes this one wait for it, then finds it recorded: no race to retry.
        """
        first: dict[tuple[str, str], Change] = {}
        for change in changes:
            first.setdefault(change.dedupe_key, change)
        applied_at = datetime.now(UTC)
        records = sorted(
            (_record(change, applied_at) for change in first.values()),
            key=lambda r: (str(r["source"]), str(r["event_id"])),
        )
        processed = self._tables.processed
        statement = (
            postgresql.insert(processed)
            .on_conflict_do_nothing(index_elements=[processed.c.source, processed.c.event_id])
            .returning(processed.c.source, processed.c.event_id)
        )
        inserted: set[tuple[str, str]] = set()
        for chunk in _chunks(records, ROWS_PER_STATEMENT):
            result = self._execute(statement, (), chunk)
            inserted |= {(row[0], row[1]) for row in result}
        return set(first) - inserted

    def _already_processed(self, changes: Sequence[Change]) -> set[tuple[str, str]]:
        processed = self._tables.processed
        wanted = {c.dedupe_key for c in changes}
        sources = sorted({source for source, _ in wanted})
        found: set[tuple[str, str]] = set()
        for chunk in _chunks(sorted({event_id for _, event_id in wanted}), ROWS_PER_STATEMENT):
            query = sa.select(processed.c.source, processed.c.event_id).where(
                processed.c.source.in_(sources), processed.c.event_id.in_(chunk)
            )
            found |= {(row[0], row[1]) for row in self._execute(query, ())}
        return found & wanted

    # -- writing -----------------------------------------------------------------------------

    def _write(self, writes: Sequence[RowWrite]) -> None:
        """Inserts and updates in key order (the same order for every writer)."""
        ordered = sorted(writes, key=lambda w: str(w.key))
        inserts = same_columns(w for w in ordered if w.insert)
        for columns, group in inserts.items():
            for chunk in _chunks(group, _rows_per_statement(len(columns) + 1)):
                self._insert(chunk)
        for columns, group in same_columns(w for w in ordered if not w.insert).items():
            self._update(columns, group)

    def _insert(self, chunk: Sequence[RowWrite]) -> None:
        key = self._tables.key.name
        # executemany of one compiled INSERT: SQLAlchemy sends it as multi-row VALUES pages
        # ("insertmanyvalues") without compiling a statement per batch size and content.
        statement = sa.insert(self._tables.target)
        rows = [{key: w.key, **w.values} for w in chunk]
        changes = [change for w in chunk for change in w.changes]
        race: _Retry | None
        if len(changes) == 1:
            # One event's row: a unique key refusing it means another writer inserted the
            # key first, unless it happened before for this key: then the row is still
            # absent, and the refusal comes from another unique column.
            first = chunk[0].key not in self._attempts.raced
            reason = "the key was inserted by a concurrent writer"
            race = _Retry(reason, key=chunk[0].key) if first else None
        elif not self._attempts.bulk_raced:
            race = _Retry("a key was inserted by a concurrent writer", bulk=True)
        else:
            race = None  # refused again: find the event step by step
        self._execute(statement, changes, rows, race=race)

    def _update(self, columns: Sequence[str], group: Sequence[RowWrite]) -> None:
        names = {column: f"spbe_v{i}" for i, column in enumerate(columns)}
        statement = (
            sa.update(self._tables.target)
            .where(self._tables.key == sa.bindparam("spbe_key"))
            .values({column: sa.bindparam(name) for column, name in names.items()})
        )
        params = [
            {"spbe_key": w.key, **{name: w.values[column] for column, name in names.items()}}
            for w in group
        ]
        self._execute(statement, [change for w in group for change in w.changes], params)

    def _record(self, changes: Sequence[Change]) -> None:
        applied_at = datetime.now(UTC)
        records = sorted(
            (_record(change, applied_at) for change in changes),
            key=lambda r: (str(r["source"]), str(r["event_id"])),
        )
        race = "an event was recorded by a concurrent writer"
        statement = sa.insert(self._tables.processed)
        for chunk in _chunks(records, ROWS_PER_STATEMENT):
            self._execute(statement, (), chunk, race=_Retry(race))

    def _execute(
        self,
        statement: sa.Executable,
        changes: Sequence[Change],
        params: Any = None,
        *,
        race: _Retry | None = None,
    ) -> sa.CursorResult[*tuple[Any, ...]]:
        """Run ``statement`` for ``changes`` (none: the batch's own bookkeeping)."""
        try:
            return self._connection.execute(statement, params)
        except sa.exc.DBAPIError as exc:
            failure = classify(exc, self._support.describe(exc.orig))
            if failure.kind is FailureKind.DEADLOCK:
                raise _Retry("deadlock") from None
            if race is not None and failure.kind is FailureKind.UNIQUE:
                raise race from None
            if failure.kind in PERMANENT and len(changes) > 1 and not self._attempts.stepwise:
                raise _Retry("a statement for several events was refused", stepwise=True) from None
            change = changes[0] if len(changes) == 1 else None
            raise handler_error(
                failure,
                table=self._tables.target.fullname,
                event_name=change.event_name if change else None,
                event_id=change.delivery.envelope.id if change else None,
                index=change.index if change else None,
                driver=self._support.dialect.value,
            ) from None


def _chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def _rows_per_statement(columns: int) -> int:
    return max(1, min(ROWS_PER_STATEMENT, _VALUES_PER_STATEMENT // columns))


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
