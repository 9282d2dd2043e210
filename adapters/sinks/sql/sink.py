"""SqlSink: apply events into a subscriber OPD's table, idempotently, as a Subscriber handler.

    config = SqlSinkConfig.from_file("deploy/sinks/dinsos-penduduk.yaml")
    async with SqlSink(config) as sink, Subscriber(subscriber_config, sink) as subscriber:
        await subscriber.run_until_signal()

Each event is written in one transaction with its processed-event record, so a crash at
any point leaves either both or neither; a redelivered event is recognised by its
(``ce_source``, ``ce_id``) and reported as :attr:`~bus.subscriber.Outcome.DUPLICATE`; a
stale event (a sequence not above the row's version) changes nothing and is logged as
``sink.stale``. :meth:`SqlSink.apply_batch` applies many events in one transaction with
the same rules, in a fixed number of statements (:mod:`adapters.sinks.sql.transaction`).
How each mapped event type becomes a row is worked out once, at :meth:`SqlSink.start`
(:func:`~adapters.sinks.sql.rows.plan_rows`). Database failures become
:class:`~bus.errors.TransientError` (retried) or
:class:`~adapters.sinks.sql.failures.RejectedEventError` (dead-lettered, the column named).
Logs carry event ids and coordinates, never a key value or a field value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from adapters.db import create_engine, run_sync
from adapters.sinks.sql.config import SqlSinkConfig
from adapters.sinks.sql.dialects import DialectSupport, support_for
from adapters.sinks.sql.failures import FailureKind, RejectedEventError, classify
from adapters.sinks.sql.rows import Change, RowPlan, plan_rows
from adapters.sinks.sql.tables import SinkTables, prepare_tables
from adapters.sinks.sql.transaction import apply_changes
from adapters.sinks.sql.verdicts import Result, Verdict
from bus.delivery import Delivery, Outcome
from bus.errors import ConfigError, LifecycleError, TransientError
from bus.lifecycle import Lifecycle
from bus.logs import get_logger

__all__ = ["SqlSink"]

log = get_logger(__name__)

_UNREACHABLE = frozenset(
    {FailureKind.CONNECTION, FailureKind.LOCK_TIMEOUT, FailureKind.DEADLOCK, FailureKind.OTHER}
)


@dataclass(frozen=True, slots=True)
class _Open:
    engine: Engine
    base: Engine
    support: DialectSupport
    tables: SinkTables
    #: Event type -> how its events become a row, worked out once at start.
    plans: Mapping[str, RowPlan]


class SqlSink(Lifecycle):
    """A handler applying mapped events into ``config.table``; start it before use."""

    def __init__(self, config: SqlSinkConfig) -> None:
        self.config = config
        self._open: _Open | None = None
        self._log = log.bind(table=config.table)

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, prepare the tables (creating what is configured), plan each type's rows."""
        if self._open is not None:
            return
        self._open = await run_sync(_open, self.config)
        self._log.info(
            "sink.started",
            database=_redacted(self.config.database_url.get_secret_value()),
            dialect=self._open.support.dialect.value,
        )

    async def stop(self) -> None:
        """Close the database connections."""
        opened, self._open = self._open, None
        if opened is not None:
            await run_sync(opened.base.dispose)
            self._log.info("sink.stopped")

    def _started(self) -> _Open:
        if self._open is None:
            raise LifecycleError(
                "the SQL sink is not started",
                fix="use 'async with SqlSink(...)' or await sink.start() first",
            )
        return self._open

    # -- applying --------------------------------------------------------------------------

    async def __call__(self, delivery: Delivery) -> Outcome:
        """Apply one event (a :data:`~bus.subscriber.Handler`)."""
        (outcome,) = await self.apply_batch([delivery])
        return outcome

    async def apply_batch(self, deliveries: Sequence[Delivery]) -> list[Outcome]:
        """Apply ``deliveries`` in one transaction, in order; one outcome per delivery.

        All or nothing: on :class:`~adapters.sinks.sql.failures.RejectedEventError`
        (``index`` names the refused delivery) or
        :class:`~bus.errors.TransientError`, nothing of the batch was committed. Events
        of types the mapping does not name are left alone and reported as applied.
        """
        opened = self._started()
        changes: list[Change] = []
        try:
            for index, delivery in enumerate(deliveries):
                plan = opened.plans.get(delivery.event.event_name)
                if plan is None:
                    self._log.debug("sink.ignored", **_where(delivery))
                    continue
                changes.append(plan.change(index, delivery))
            results = (
                await run_sync(apply_changes, opened.engine, opened.tables, changes, opened.support)
                if changes
                else []
            )
        except RejectedEventError as exc:
            self._log.warning("sink.rejected", column=exc.column, **_where(deliveries[exc.index]))
            raise
        outcomes = [Outcome.APPLIED] * len(deliveries)
        unsequenced = 0
        for change, result in zip(changes, results, strict=True):
            unsequenced += self._report(change, result)
            if result.verdict is Verdict.DUPLICATE:
                outcomes[change.index] = Outcome.DUPLICATE
        if unsequenced:  # once per batch, not once per event: all of them may lack one
            first = next(c for c in changes if c.sequence is None)
            self._log.info("sink.unsequenced", events=unsequenced, **_where(first.delivery))
        return outcomes

    def _report(self, change: Change, result: Result) -> bool:
        """Log what ``change`` did; ``True`` when it carried no sequence (last writer won)."""
        where = _where(change.delivery)
        if result.verdict is Verdict.STALE:
            self._log.info("sink.stale", row_version=result.row_version, **where)
        elif result.verdict is Verdict.ABSENT:
            self._log.info("sink.absent", **where)
        elif result.verdict is Verdict.DUPLICATE:
            self._log.debug("sink.duplicate", **where)
        else:
            self._log.debug("sink.applied", verdict=result.verdict.value, **where)
            return change.sequence is None
        return False


def _where(delivery: Delivery) -> dict[str, object]:
    return {
        "event_id": delivery.envelope.id,
        "type": delivery.event.event_name,
        "topic": delivery.topic,
        "partition": delivery.partition,
        "offset": delivery.offset,
        "sequence": delivery.sequence,
    }


def _redacted(url: str) -> str:
    return sa.engine.make_url(url).render_as_string(hide_password=True)


def _open(config: SqlSinkConfig) -> _Open:
    url = config.database_url.get_secret_value()
    base = create_engine(url)
    try:
        support = support_for(base)
        engine = support.prepare(base)
        try:
            with engine.begin() as connection:
                tables = prepare_tables(connection, config)
        except sa.exc.DBAPIError as exc:
            failure = classify(exc, support.describe(exc.orig))
            code = f", error {failure.code}" if failure.code else ""
            if failure.kind in _UNREACHABLE:
                raise TransientError(
                    f"cannot reach the database at {_redacted(url)} ({failure.kind.value}{code})"
                ) from None
            raise ConfigError(
                f"the database at {_redacted(url)} refused to prepare the sink's tables "
                f"({failure.kind.value}{code})",
                fix=f"let the sink's user create {config.processed_table} and read and write "
                f"{config.table}, or create the tables beforehand",
            ) from None
    except BaseException:
        base.dispose()
        raise
    plans = {event: plan_rows(mapping, tables) for event, mapping in config.events.items()}
    return _Open(engine=engine, base=base, support=support, tables=tables, plans=plans)
