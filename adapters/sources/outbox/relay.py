"""The outbox relay: publish committed outbox rows in per-aggregate order, then mark them.

    async with OutboxRelay(OutboxRelayConfig(database_url=..., bootstrap_servers=...,
                                             source="ID/PEMDA-3273/DISDUKCAPIL/siak")) as relay:
        await relay.run_until_signal()

One cycle (:meth:`OutboxRelay.run_once`):

1. claims a batch: the lowest unpublished rows of each aggregate it can own (see
   ``store.py``), in id order;
2. turns every row into its Kafka record (a typed event with its stored ``event_id`` and
   ``sequence``, :meth:`~bus.publisher.Publisher.record_for`); a row that cannot be one
   (its payload breaks the standard, its event type is not this steward's, ...) is
   refused, and the rows after it in its aggregate are not even sent;
3. publishes the rest with **one** :meth:`~bus.publisher.Publisher.publish_records`: every
   send goes out before the first acknowledgement is awaited, and records of one key
   keep their order (the producer is idempotent, so a partition never reorders);
4. marks what the broker acknowledged, up to each aggregate's first failure, in one
   ``UPDATE`` (per 1000 ids), records the failures in one ``executemany``, and commits,
   in the transaction that holds the claim.

A row that fails gets ``attempts``, ``last_error`` and a retry time, and stops its own
aggregate there: the rows after it wait, because order matters; other aggregates keep
flowing. When the broker fails a send, the aggregate's later rows in the batch may have
been sent already; they are not marked, and are published again after the failed row,
with the same ``event_id`` (sinks drop the duplicate). A crash between publish and mark
publishes the batch again the same way; nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import sqlalchemy as sa

from adapters.db import run_sync
from adapters.sources.outbox.config import OutboxRelayConfig
from adapters.sources.outbox.rows import (
    OutboxRow,
    decode_event,
    error_text,
    next_attempt_at,
    valid_event_id,
)
from adapters.sources.outbox.store import Claim, OutboxStore, RowFailure, relay_engine
from adapters.sources.outbox.table import outbox_table
from bus.contract.envelope import steward_of
from bus.contract.plan import OutgoingRecord
from bus.contract.standard import load_standard
from bus.errors import BusError, ConfigError, ContractError, LifecycleError, PublishError
from bus.lifecycle import Lifecycle, run_until_stopped
from bus.logs import get_logger
from bus.ops.metrics import count_published, expect_published
from bus.publisher import Publisher, PublisherConfig

__all__ = ["OutboxRelay", "RelayStats", "next_idle_pause"]

T = TypeVar("T")

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RelayStats:
    """What one cycle (or, summed, a relay's life so far) did."""

    #: Rows claimed: aggregate heads and the rows that follow them.
    claimed: int = 0
    #: Rows the broker acknowledged and that were marked published.
    published: int = 0
    #: Rows that failed (invalid payload, refused or unacknowledged); each blocks its aggregate.
    failed: int = 0

    def __add__(self, other: RelayStats) -> RelayStats:
        return RelayStats(
            claimed=self.claimed + other.claimed,
            published=self.published + other.published,
            failed=self.failed + other.failed,
        )


@dataclass(frozen=True, slots=True)
class _Outcome:
    published: list[int]
    failures: list[RowFailure]


def _now() -> datetime:
    return datetime.now(UTC)


def _detail(exc: Exception) -> str:
    """A one-line reason for a failed cycle, without SQL parameters or row values.

    Bus errors never carry field values; for a database error only the driver's first
    line is kept (PostgreSQL puts the values of a violated key on later lines).
    """
    if isinstance(exc, BusError):
        return exc.message
    if isinstance(exc, sa.exc.DBAPIError):
        lines = str(exc.orig).strip().splitlines()
        return lines[0] if lines else ""
    return ""


def _steward_topics(config: PublisherConfig) -> set[str]:
    """The topics of the event types the publisher's source stewards (for the metrics)."""
    opd = steward_of(config.source)
    own = {n: s.topic for n, s in load_standard(config.schemas_dir).items() if s.steward == opd}
    topics = (config.topic_overrides.get(name, topic) for name, topic in own.items())
    return {topic for topic in topics if topic}


def _record(publisher: Publisher, row: OutboxRow) -> OutgoingRecord:
    """The Kafka record of ``row``; raise what makes the row unpublishable.

    Built here, not inside the publish, so that a bad row (its payload, its ids, or an
    event type the publisher refuses) is known before anything after it is sent.
    """
    event_id = valid_event_id(row.event_id)
    return publisher.record_for(decode_event(row), sequence=row.sequence, event_id=event_id)


class OutboxRelay(Lifecycle):
    """Publishes one application's outbox table to Kafka, as its steward ``source``."""

    def __init__(self, config: OutboxRelayConfig, *, publisher: Publisher | None = None) -> None:
        self.config = config
        self._publisher = publisher
        self._owns_publisher = publisher is None
        self._store: OutboxStore | None = None
        self._stopping = asyncio.Event()
        self._running: asyncio.Task[None] | None = None
        self.stats = RelayStats()
        self._log = log.bind(source=config.source, table=config.table)

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect to the database (checking the table exists) and start the publisher."""
        if self._store is not None:
            return
        engine = relay_engine(self.config.database_url.get_secret_value())
        store = OutboxStore(engine, outbox_table(self.config.table))
        try:
            await run_sync(store.check_table)
            await self._check_indexes(store)
            if self._publisher is None:
                self._publisher = Publisher(self.config.publisher_config())
            await self._publisher.start()
        except BaseException:
            engine.dispose()
            raise
        expect_published(_steward_topics(self._publisher.config))
        self._store = store
        self._stopping.clear()
        self._log.info("outbox.started", database=store.dialect.value)

    async def _check_indexes(self, store: OutboxStore) -> None:
        """Warn once when the claim would not find its indexes (it works, but scans)."""
        try:
            statements = await run_sync(store.index_statements)
        except sa.exc.SQLAlchemyError as exc:  # e.g. no right to read the catalogue
            self._log.warning("outbox.index_check_failed", error=type(exc).__name__)
            return
        if statements:
            self._log.warning(
                "outbox.index_missing",
                run=statements,
                fix="run these statements once (docs/outbox.md, 'Upgrading'); until then "
                "every claim reads the whole backlog",
            )

    async def stop(self) -> None:
        """Stop a running loop (it finishes its cycle), then close the database and publisher."""
        self._stopping.set()
        running = self._running
        if running is not None and not running.done():
            with contextlib.suppress(Exception):
                await asyncio.shield(running)
        store, self._store = self._store, None
        if store is not None:
            await run_sync(store.engine.dispose)
        if self._publisher is not None and self._owns_publisher:
            await self._publisher.stop()
            self._publisher = None
        self._log.info("outbox.stopped", published=self.stats.published, failed=self.stats.failed)

    def request_stop(self) -> None:
        """Ask :meth:`run` to return after the cycle in hand."""
        self._stopping.set()

    def _started(self) -> tuple[OutboxStore, Publisher]:
        if self._store is None or self._publisher is None:
            raise LifecycleError(
                "the outbox relay is not started",
                fix="use 'async with OutboxRelay(...)' or await relay.start() first",
            )
        return self._store, self._publisher

    # -- the loop --------------------------------------------------------------------------

    async def run(self) -> None:
        """Relay until :meth:`request_stop` or :meth:`stop`; purge published rows hourly.

        A relay that finds nothing looks again after ``min_poll_interval_ms``, then after
        twice as long each time, up to ``poll_interval_ms``: right after activity a new row
        waits milliseconds, not a whole poll interval, and an idle relay queries rarely.
        A cycle that fails (the database is away) is logged and tried again after a
        bounded, growing pause; the relay does not exit for it.
        """
        self._started()
        self._running = asyncio.current_task()
        failures_in_a_row = 0
        idle_ms = 0
        next_purge = asyncio.get_running_loop().time()
        try:
            while not self._stopping.is_set():
                if self.config.purge_interval_minutes and self._due(next_purge):
                    next_purge += self.config.purge_interval_minutes * 60
                    await self._purge_logged()
                try:
                    cycle = await self.run_once()
                except Exception as exc:  # the database or the broker is away: try again
                    failures_in_a_row += 1
                    await self._cycle_failed(exc, failures_in_a_row)
                    continue
                failures_in_a_row = 0
                if cycle.claimed:
                    idle_ms = 0
                    continue
                idle_ms = next_idle_pause(
                    idle_ms, self.config.min_poll_interval_ms, self.config.poll_interval_ms
                )
                await self._pause(idle_ms)
        finally:
            self._running = None

    async def run_until_signal(self) -> None:
        """:meth:`run`, stopping after the cycle in hand on SIGTERM or SIGINT."""
        await run_until_stopped(self.run, self.request_stop)

    @staticmethod
    def _due(deadline: float) -> bool:
        return asyncio.get_running_loop().time() >= deadline

    async def _pause(self, milliseconds: int) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), milliseconds / 1000)

    async def _cycle_failed(self, exc: Exception, in_a_row: int) -> None:
        delay_ms = min(
            self.config.max_retry_backoff_ms,
            self.config.retry_backoff_ms * 2 ** min(in_a_row - 1, 30),
        )
        self._log.warning(
            "outbox.cycle_failed",
            error=type(exc).__name__,
            detail=_detail(exc),
            failures_in_a_row=in_a_row,
            retry_in_ms=delay_ms,
        )
        await self._pause(delay_ms)

    async def _purge_logged(self) -> None:
        try:
            await self.purge()
        except Exception as exc:
            self._log.warning("outbox.purge_failed", error=type(exc).__name__)

    # -- one cycle -------------------------------------------------------------------------

    async def run_once(self) -> RelayStats:
        """Claim, publish and mark one batch; return what happened.

        For tests and for running from cron; :meth:`run` calls it in a loop.
        """
        store, publisher = self._started()
        claim = await self._db(store.claim, self.config.batch_size, _now())
        try:
            if not claim.rows:
                return RelayStats()
            outcome = await self._publish(publisher, claim.rows)
            await self._mark(claim, outcome)
        finally:
            await self._db(claim.close)
        stats = RelayStats(
            claimed=len(claim.rows),
            published=len(outcome.published),
            failed=len(outcome.failures),
        )
        self.stats += stats
        if stats.published:
            self._log.info(
                "outbox.published",
                count=stats.published,
                aggregates=len({row.aggregate_id for row in claim.rows}),
                failed=stats.failed,
            )
        return stats

    async def _publish(self, publisher: Publisher, rows: Sequence[OutboxRow]) -> _Outcome:
        """Publish ``rows`` (id order) at once, each aggregate up to its first failure.

        A row refused before sending stops its aggregate before anything later is sent.
        A row the broker fails stops what is marked: its aggregate's later rows were sent
        and are published again next time, after it, with the same event ids.
        """
        refused: dict[str, tuple[OutboxRow, BusError]] = {}
        records: list[OutgoingRecord] = []
        sent: list[OutboxRow] = []
        for row in rows:
            if row.aggregate_id in refused:
                continue
            try:
                records.append(_record(publisher, row))
            except (ContractError, ConfigError) as exc:
                refused[row.aggregate_id] = (row, exc)
                continue
            sent.append(row)
        results = await publisher.publish_records(records)
        # spbe_published_total per topic: what the steward-silent alert watches
        count_published(zip((r.topic for r in records), results, strict=True))
        published: list[int] = []
        failed: dict[str, tuple[OutboxRow, BusError]] = {}
        for row, result in zip(sent, results, strict=True):
            if row.aggregate_id in failed:
                continue
            if isinstance(result, BusError):
                failed[row.aggregate_id] = (row, result)
            else:
                published.append(row.id)
        for aggregate, first in refused.items():  # unless a send failure came first
            failed.setdefault(aggregate, first)
        ordered = sorted(failed.values(), key=lambda failure: failure[0].id)
        return _Outcome(published, [self._failure(row, exc) for row, exc in ordered])

    def _failure(self, row: OutboxRow, exc: BusError) -> RowFailure:
        attempts = row.attempts + 1
        retry_at = next_attempt_at(
            _now(),
            attempts,
            initial_ms=self.config.retry_backoff_ms,
            max_ms=self.config.max_retry_backoff_ms,
        )
        log_event = "outbox.publish_failed" if isinstance(exc, PublishError) else "outbox.rejected"
        self._log.warning(
            log_event,
            row_id=row.id,
            event_id=row.event_id,
            type=row.event_type,
            attempts=attempts,
            error=error_text(exc),
            retry_in_s=round((retry_at - _now()) / timedelta(seconds=1), 3),
        )
        return RowFailure(row=row, error=error_text(exc), retry_at=retry_at)

    async def _mark(self, claim: Claim, outcome: _Outcome) -> None:
        """Record the cycle's outcome and commit, releasing the claim."""
        await self._db(claim.finish, outcome.published, outcome.failures, _now())

    # -- housekeeping ----------------------------------------------------------------------

    async def purge(self) -> int:
        """Delete rows published more than ``retention_hours`` ago; return how many."""
        store, _ = self._started()
        cutoff = _now() - timedelta(hours=self.config.retention_hours)
        deleted = await self._db(store.purge, cutoff)
        self._log.info("outbox.purged", count=deleted, retention_hours=self.config.retention_hours)
        return deleted

    @staticmethod
    async def _db(func: Callable[..., T], *args: object) -> T:
        """Run ``func`` in a worker thread; if cancelled, let it finish before re-raising.

        The claim's connection must never be used by two threads at once, so a cancelled
        cycle waits for the database call in flight before it closes the connection.
        """
        task = asyncio.ensure_future(run_sync(func, *args))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            with contextlib.suppress(BaseException):
                await task
            raise


def next_idle_pause(previous_ms: int, shortest_ms: int, longest_ms: int) -> int:
    """The pause after one more empty cycle: ``shortest_ms``, then doubling to ``longest_ms``."""
    if previous_ms <= 0:
        return min(shortest_ms, longest_ms)
    return min(previous_ms * 2, longest_ms)
