"""The day-one snapshot: a steward's current table published once, one event per row.

    async with Snapshot(relay_config, snapshot_config) as snapshot:
        summary = await snapshot.run()

:meth:`Snapshot.run` reads the table in key order (:mod:`.reader`), turns each row into
the event live changes use (:mod:`.rows`), and publishes each page as a batch marked
``ce_snapshot: true`` with the row's version as ``ce_sequence``. After Kafka acknowledged
a batch, its last key is stored (:mod:`.progress`); a run that is stopped, fails or is
killed resumes there, republishing at most the one batch that was in flight. Sinks keep
the newer of a snapshot event and a live change of one key (the version guard), so the
relay may run all along and the two streams may interleave in any order.

One page is in flight at a time, while the next is read and converted: that overlap is
the pipeline, and it bounds the duplicates after a crash to one batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy.engine import Engine

from adapters.db import create_engine, run_sync
from adapters.sources.outbox.config import OutboxRelayConfig
from adapters.sources.snapshot.config import SnapshotConfig
from adapters.sources.snapshot.lock import RunLock
from adapters.sources.snapshot.meter import SnapshotProgress, SnapshotSummary
from adapters.sources.snapshot.pace import Pace, paced_batch_size
from adapters.sources.snapshot.progress import Progress, ProgressStore
from adapters.sources.snapshot.reader import SourceTable, reflect_source
from adapters.sources.snapshot.rows import Converted, SnapshotError, convert_rows
from bus.contract.events import SpbeEvent
from bus.contract.plan import OutgoingRecord
from bus.contract.pseudonyms import Pseudonymiser
from bus.errors import LifecycleError, PublishError
from bus.lifecycle import Lifecycle, run_until_stopped
from bus.logs import get_logger
from bus.publisher import Publisher, RecordsInFlight
from bus.publisher.config import key_secret_of

__all__ = ["Snapshot"]

T = TypeVar("T")

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class _Flight:
    """A batch Kafka has not acknowledged yet, and the progress it leads to."""

    records: RecordsInFlight
    after: Progress


class Snapshot(Lifecycle):
    """Publishes one steward table as it stands, as the relay's ``source``, resumably."""

    def __init__(
        self,
        relay: OutboxRelayConfig,
        config: SnapshotConfig,
        *,
        restart: bool = False,
        max_rate_per_s: float | None = None,
        on_progress: Callable[[SnapshotProgress], None] | None = None,
        publisher: Publisher | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.relay = relay
        self.config = config
        self.name = config.snapshot_name
        self._restart = restart
        self._rate = max_rate_per_s if max_rate_per_s is not None else config.max_rate_per_s
        self._on_progress = on_progress
        self._publisher = publisher
        self._owns_publisher = publisher is None
        self._clock = clock
        secret = key_secret_of(relay.publisher_config())
        # Without a steward secret a pseudonym only tells reported rows apart in one run.
        self._pseudonymiser = Pseudonymiser(secret or secrets.token_bytes(32))
        self._engine: Engine | None = None
        self._source: SourceTable | None = None
        self._store: ProgressStore | None = None
        self._lock: RunLock | None = None
        self._make_event = config.row_to_event()
        self._total = 0
        self._began = 0.0
        self._first_done = 0
        self._stopping = asyncio.Event()
        self._log = log.bind(snapshot=self.name, table=config.table)

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Reflect the table, create the progress table if absent, lock the run, start Kafka."""
        if self._engine is not None:
            return
        engine = create_engine(self.relay.database_url.get_secret_value())
        lock = RunLock(engine, self.name)
        try:
            c = self.config
            source = await run_sync(reflect_source, engine, c.table, c.key_column, c.version_column)
            store = ProgressStore(engine, c.progress_table)
            await run_sync(store.create)
            await run_sync(lock.acquire)
            if self._publisher is None:
                self._publisher = Publisher(self.relay.publisher_config())
            await self._publisher.start()
        except BaseException:
            await run_sync(lock.release)
            engine.dispose()
            raise
        self._engine, self._source, self._store, self._lock = engine, source, store, lock
        self._stopping.clear()

    async def stop(self) -> None:
        """Release the lock, close the database and (if it is this snapshot's) the publisher."""
        self._stopping.set()
        lock, self._lock = self._lock, None
        engine, self._engine = self._engine, None
        if lock is not None:
            with contextlib.suppress(Exception):
                await run_sync(lock.release)
        if engine is not None:
            await run_sync(engine.dispose)
        if self._publisher is not None and self._owns_publisher:
            await self._publisher.stop()
            self._publisher = None

    def request_stop(self) -> None:
        """Ask :meth:`run` to return after the batch in flight is acknowledged and stored."""
        self._stopping.set()

    async def run_until_signal(self) -> SnapshotSummary:
        """:meth:`run`, stopping after the batch in flight on SIGTERM or SIGINT."""
        result: list[SnapshotSummary] = []

        async def run() -> None:
            result.append(await self.run())

        await run_until_stopped(run, self.request_stop)
        return result[0]

    def _started(self) -> tuple[Engine, SourceTable, ProgressStore, Publisher]:
        if self._engine is None or self._source is None or self._store is None:
            raise LifecycleError(
                "the snapshot is not started",
                fix="use 'async with Snapshot(...)' or await snapshot.start() first",
            )
        assert self._publisher is not None
        return self._engine, self._source, self._store, self._publisher

    # -- the run ---------------------------------------------------------------------------

    async def run(self) -> SnapshotSummary:
        """Publish from the stored key (or the first) to the last; return what was done.

        Raises :class:`SnapshotError` (the event function failed, too many invalid rows,
        Kafka did not acknowledge a batch); what was acknowledged before stays stored,
        and the next run resumes after it.
        """
        engine, source, store, _ = self._started()
        first = await run_sync(
            store.begin, self.name, self.config.table, _now(), restart=self._restart
        )
        if first.table_name != self.config.table:
            raise SnapshotError(
                f"the progress of snapshot {self.name!r} is that of table {first.table_name!r}, "
                f"not {self.config.table!r}",
                fix="give this snapshot a name of its own (snapshot.name), or --restart",
            )
        resumed = first.last_key is not None
        if first.finished_at is not None:
            self._log.info("snapshot.already_finished", published=first.rows_published)
            return self._summary(first, first, first.rows_done, 0.0, already_finished=True)
        after = None if first.last_key is None else source.codec.from_text(first.last_key)
        remaining = await run_sync(source.count_after, engine, after)
        self._total = first.rows_done + remaining
        batch_size = paced_batch_size(self.config.batch_size, self._rate)
        self._log.info(
            "snapshot.started",
            total=self._total,
            resumed=resumed,
            already_done=first.rows_done,
            batch_size=batch_size,
            max_rate_per_s=self._rate,
        )
        self._began = self._clock()
        self._first_done = first.rows_done
        try:
            last = await self._pipeline(first, after, batch_size)
        except PublishError as exc:
            self._log.error("snapshot.failed", error=type(exc).__name__, detail=exc.message)
            raise SnapshotError(
                f"a batch was not published: {exc.message}",
                fix="run the snapshot again once Kafka answers: it resumes after the last "
                "acknowledged batch",
                retriable=exc.retriable,
            ) from exc
        except SnapshotError as exc:
            self._log.error("snapshot.failed", error=type(exc).__name__, detail=exc.message)
            raise
        elapsed = self._clock() - self._began
        finished = last.finished_at is not None
        summary = self._summary(first, last, self._total, elapsed, resumed=resumed)
        event = "snapshot.finished" if finished else "snapshot.stopped"
        self._log.info(
            event,
            published=last.rows_published,
            invalid=last.rows_invalid,
            excluded=last.rows_excluded,
            elapsed_s=round(elapsed, 3),
            rate_per_s=round(summary.rate_per_s, 1),
        )
        return summary

    async def _pipeline(self, progress: Progress, after: object | None, size: int) -> Progress:
        """Read, convert and publish page by page; one page in flight at a time."""
        engine, source, _, publisher = self._started()
        pace = Pace(self._rate)
        flight: _Flight | None = None
        reading = asyncio.ensure_future(run_sync(source.read_page, engine, after, size))
        try:
            while True:
                rows = await reading
                if not rows:
                    if flight is not None:
                        progress = await self._settle(flight)
                    return await self._finish(progress)
                planned = progress if flight is None else flight.after
                try:
                    converted = self._convert(rows, publisher, planned.rows_done + 1)
                    self._check_invalid(planned, converted)
                except SnapshotError:
                    if flight is not None:
                        await self._settle(flight)
                    raise
                next_key = rows[-1][source.key.name]
                reading = asyncio.ensure_future(run_sync(source.read_page, engine, next_key, size))
                if flight is not None:
                    progress = await self._settle(flight)
                    flight = None
                if self._stopping.is_set() or not await self._paced(pace, len(rows)):
                    return progress
                records = await publisher.send_records(converted.records)
                flight = _Flight(records, self._after(planned, converted, next_key))
        finally:
            if not reading.done():
                with contextlib.suppress(BaseException):
                    await reading  # a thread cannot be cancelled: let the page read end

    def _convert(
        self, rows: Sequence[Mapping[str, Any]], publisher: Publisher, position: int
    ) -> Converted:
        source = self._source
        assert source is not None
        key_name = source.key.name

        def encode(event: SpbeEvent, version: int) -> OutgoingRecord:
            return publisher.record_for(event, sequence=version, snapshot=True)

        def pseudonym(row: Mapping[str, Any]) -> str:
            return self._pseudonymiser(source.codec.to_text(row[key_name]))

        converted = convert_rows(
            rows,
            make_event=self._make_event,
            encode=encode,
            version_column=source.version.name,
            pseudonym=pseudonym,
            first_position=position,
            entry_point=self.config.event,
        )
        for invalid in converted.invalid:
            self._log.warning("snapshot.row_invalid", **invalid.report())
        return converted

    def _check_invalid(self, progress: Progress, converted: Converted) -> None:
        limit = self.config.max_invalid_rows
        invalid = progress.rows_invalid + len(converted.invalid)
        if limit is not None and invalid > limit:
            raise SnapshotError(
                f"{invalid} rows of {self.config.table} failed validation, more than "
                f"max_invalid_rows ({limit}); stopped before the batch holding the last of them",
                fix="correct those rows (the log names each by position and key pseudonym, "
                "with the field and rule) and run the snapshot again: it resumes there",
            )

    def _after(self, progress: Progress, converted: Converted, last_key: object) -> Progress:
        assert self._source is not None
        return replace(
            progress,
            last_key=self._source.codec.to_text(last_key),
            rows_published=progress.rows_published + len(converted.records),
            rows_invalid=progress.rows_invalid + len(converted.invalid),
            rows_excluded=progress.rows_excluded + converted.excluded,
        )

    async def _settle(self, flight: _Flight) -> Progress:
        """Wait for Kafka's acknowledgement, then store the batch's progress."""
        _, _, store, _ = self._started()
        await flight.records.acknowledged()
        progress = replace(flight.after, updated_at=_now())
        await _db(store.save, progress)
        self._report(progress, finished=False)
        return progress

    async def _finish(self, progress: Progress) -> Progress:
        _, _, store, _ = self._started()
        now = _now()
        done = replace(progress, updated_at=now, finished_at=now)
        await _db(store.save, done)
        self._report(done, finished=True)
        return done

    async def _paced(self, pace: Pace, rows: int) -> bool:
        """Wait for the batch's turn under ``--max-rate``; False if asked to stop meanwhile."""
        delay = pace.delay(self._clock(), rows)
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
        return not self._stopping.is_set()

    def _report(self, progress: Progress, *, finished: bool) -> None:
        if self._on_progress is None:
            return
        self._on_progress(
            SnapshotProgress(
                name=self.name,
                done=progress.rows_done,
                total=max(self._total, progress.rows_done),
                published=progress.rows_published,
                invalid=progress.rows_invalid,
                excluded=progress.rows_excluded,
                done_this_run=progress.rows_done - self._first_done,
                elapsed_s=self._clock() - self._began,
                finished=finished,
            )
        )

    def _summary(
        self,
        first: Progress,
        last: Progress,
        total: int,
        elapsed: float,
        *,
        resumed: bool = False,
        already_finished: bool = False,
    ) -> SnapshotSummary:
        return SnapshotSummary(
            name=self.name,
            table=self.config.table,
            finished=last.finished_at is not None,
            already_finished=already_finished,
            resumed=resumed,
            total=max(total, last.rows_done),
            published=last.rows_published,
            invalid=last.rows_invalid,
            excluded=last.rows_excluded,
            published_this_run=last.rows_published - first.rows_published,
            done_this_run=last.rows_done - first.rows_done,
            elapsed_s=round(elapsed, 3),
        )


def _now() -> datetime:
    return datetime.now(UTC)


async def _db(func: Callable[..., T], *args: object) -> T:
    """Run ``func`` in a worker thread; if cancelled, let it finish before re-raising."""
    task = asyncio.ensure_future(run_sync(func, *args))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(BaseException):
            await task
        raise
