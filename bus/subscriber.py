"""Consume SPBE events: typed, in per-key order, at least once, never an offset without outcome.

    async def apply(delivery: Delivery) -> Outcome | None:
        ...  # write delivery.event; dedupe on delivery.dedupe_key, guard on delivery.sequence

    async with Subscriber(SubscriberConfig(...), apply) as subscriber:
        await subscriber.run_until_signal()

Each fetched batch is split by partition; partitions are processed concurrently (up to
``max_concurrency``), the records of one partition strictly in offset order, so per-key
order holds. An offset is committed only after its event was applied, recognised as a
duplicate, or written to the dead letter topic ``<topic>.dlq.<subscriber>``. Transient
failures are retried with exponential backoff and jitter; undecodable events, permanent
failures and exhausted retries are dead-lettered with their cause, and the partition
moves on. A stop (SIGTERM/SIGINT) finishes the record in hand, commits, and leaves the
group within ``shutdown_timeout_s``.

A read or a consumer group an ACL refuses stops :meth:`Subscriber.run` with
:class:`~bus.errors.KafkaAuthorizationError` (a subscription missing, expired or not applied;
another subscriber's group), after committing what was done: nothing accepted is lost.

Why this module is longer than 400 lines: the loop, the per-event retries, the wait for a
registry that is away and the commits are one state machine over the consumer's offsets
(``_done`` and ``_committed``); split, the rule "never an offset without an outcome" would
be spread over several modules. What is not part of it lives elsewhere: the delivery types
and policy in :mod:`bus.delivery`, decoding in :mod:`bus.decoding`, dead letters in
:mod:`bus.dead_letters`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError, TopicAuthorizationFailedError
from aiokafka.structs import ConsumerRecord
from pydantic import BaseModel, ConfigDict, Field
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
)

from bus.connection import KafkaConnection, KafkaSecurity
from bus.contract.message import IncomingEvent
from bus.contract.schema import AvroSchema
from bus.contract.standard import load_standard
from bus.dead_letters import DeadLetterWriter
from bus.decoding import RecordDecoder
from bus.delivery import (
    BatchHandler,
    DecodeFailure,
    Delivery,
    Handler,
    Outcome,
    RetryPolicy,
    backoff_s,
    classify_decode_failure,
    dlq_topic,
    is_retriable,
)
from bus.diagnosis import AUTHORIZATION_ERRORS, authorization_error, sasl_user, unauthorized_topics
from bus.errors import KafkaAuthorizationError, LifecycleError
from bus.lifecycle import Lifecycle, run_until_stopped
from bus.logs import get_logger
from bus.registry import DEFAULT_TOPIC as DEFAULT_REGISTRY_TOPIC
from bus.registry import SchemaRegistry
from bus.startup import default_start_timeout_s, start_client

__all__ = [
    "DEFAULT_MAX_POLL_RECORDS",
    "Subscriber",
    "SubscriberConfig",
    "SubscriberStats",
]

log = get_logger(__name__)

DEFAULT_MAX_POLL_RECORDS = 2000


class SubscriberConfig(BaseModel):
    """One subscriber: its id (also its consumer group), its topics, how it retries."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bootstrap_servers: str
    #: How to authenticate and encrypt; default from the ``SPBE_KAFKA_*`` environment.
    security: KafkaSecurity = Field(default_factory=KafkaSecurity.from_environment)
    subscriber_id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=100)
    topics: tuple[str, ...] = Field(min_length=1)
    max_concurrency: int = Field(default=4, ge=1)
    #: Records per fetch across partitions: a batch sink applies a partition's share in one
    #: transaction, so bigger fetches mean fewer commits while catching up.
    max_poll_records: int = Field(default=DEFAULT_MAX_POLL_RECORDS, ge=1)
    retry: RetryPolicy = RetryPolicy()
    shutdown_timeout_s: float = Field(default=30.0, gt=0)
    auto_offset_reset: str = Field(default="earliest", pattern="^(earliest|latest)$")
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000
    max_poll_interval_ms: int = 300_000
    schemas_dir: Path | None = None
    registry_topic: str = DEFAULT_REGISTRY_TOPIC
    #: Replication of the dead letter topics it creates; default min(3, brokers).
    dlq_replication_factor: int | None = None
    #: How long ``start`` waits for a cluster that is away or failing over.
    start_timeout_s: float = Field(default_factory=default_start_timeout_s, gt=0)
    #: Validate every decoded event with its model again. Off: the publisher validated it
    #: and the codec resolved it to this subscriber's schema (see ``from_trusted_avro``).
    validate_events: bool = False

    @property
    def group_id(self) -> str:
        return self.subscriber_id

    @property
    def connection(self) -> KafkaConnection:
        return KafkaConnection(bootstrap_servers=self.bootstrap_servers, security=self.security)


@dataclass
class SubscriberStats:
    """Counters since start (Prometheus export builds on these)."""

    applied: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    retries: int = 0
    committed: dict[TopicPartition, int] = field(default_factory=dict)


class _CommitOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, subscriber: Subscriber) -> None:
        self._subscriber = subscriber

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self._subscriber._commit(set(revoked), reason="revoked")
        for tp in revoked:
            self._subscriber._done.pop(tp, None)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info(
            "subscriber.assigned", partitions=sorted(f"{t.topic}[{t.partition}]" for t in assigned)
        )


class Subscriber(Lifecycle):
    """Consume the configured topics and hand each event to ``handler``."""

    def __init__(
        self,
        config: SubscriberConfig,
        handler: Handler,
        *,
        batch_handler: BatchHandler | None = None,
        registry: SchemaRegistry | None = None,
        standard: Mapping[str, AvroSchema] | None = None,
    ) -> None:
        self.config = config
        self._handler = handler
        self._batch_handler = batch_handler
        self._standard = dict(standard) if standard is not None else None
        self._registry = registry
        self._owns_registry = registry is None
        self._consumer: AIOKafkaConsumer | None = None
        self._dlq: DeadLetterWriter | None = None
        self._decoder: RecordDecoder | None = None
        self._done: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._stopping = asyncio.Event()
        self._running: asyncio.Task[None] | None = None
        self.stats = SubscriberStats(committed=self._committed)
        self._log = log.bind(subscriber=config.subscriber_id)

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if self._consumer is not None:
            return
        if self._standard is None:
            self._standard = load_standard(self.config.schemas_dir)
        try:
            if self._registry is None:
                self._registry = SchemaRegistry(
                    self.config.connection,
                    topic=self.config.registry_topic,
                    start_timeout_s=self.config.start_timeout_s,
                )
            await self._registry.start()
            self._decoder = RecordDecoder(
                self._standard, self._registry, validate_events=self.config.validate_events
            )
            self._dlq = DeadLetterWriter(
                self.config.connection,
                self.config.subscriber_id,
                self.config.topics,
                replication_factor=self.config.dlq_replication_factor,
                start_timeout_s=self.config.start_timeout_s,
            )
            await self._dlq.start()
            connection = self.config.connection
            bootstrap = connection.bootstrap_servers
            consumer = await start_client(
                lambda: AIOKafkaConsumer(
                    **connection.aiokafka_options(),
                    group_id=self.config.group_id,
                    client_id=f"spbe-{self.config.subscriber_id}",
                    enable_auto_commit=False,
                    auto_offset_reset=self.config.auto_offset_reset,
                    max_poll_records=self.config.max_poll_records,
                    session_timeout_ms=self.config.session_timeout_ms,
                    heartbeat_interval_ms=self.config.heartbeat_interval_ms,
                    max_poll_interval_ms=self.config.max_poll_interval_ms,
                ),
                "start the consumer",
                bootstrap_servers=bootstrap,
                security=connection.security,
                timeout_s=self.config.start_timeout_s,
            )
            consumer.subscribe(list(self.config.topics), listener=_CommitOnRevoke(self))
            self._consumer = consumer
        except BaseException:
            await self._close_clients()
            raise
        self._log.info("subscriber.started", topics=list(self.config.topics))

    async def _close_clients(self) -> None:
        consumer, self._consumer = self._consumer, None
        dlq, self._dlq = self._dlq, None
        if consumer is not None:
            await consumer.stop()  # leaves the group
        if dlq is not None:
            await dlq.stop()
        if self._registry is not None and self._owns_registry:
            await self._registry.stop()

    async def stop(self) -> None:
        """Ask a running loop to stop and wait for it; then close every client."""
        self._stopping.set()
        running = self._running
        if running is not None and not running.done():
            try:
                await asyncio.wait_for(asyncio.shield(running), self.config.shutdown_timeout_s)
            except TimeoutError:
                self._log.warning(
                    "subscriber.stop_timeout", timeout_s=self.config.shutdown_timeout_s
                )
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await running
        await self._close_clients()
        self._log.info("subscriber.stopped", committed=_offsets(self._committed))

    def request_stop(self) -> None:
        """Stop fetching; the loop finishes the records in hand, commits and returns."""
        self._stopping.set()

    # -- the loop --------------------------------------------------------------------------

    async def run(self) -> None:
        """Consume until :meth:`request_stop` or :meth:`stop`."""
        if self._consumer is None:
            raise LifecycleError(
                "the subscriber is not started",
                fix="use 'async with Subscriber(...)' or await subscriber.start() first",
            )
        self._running = asyncio.current_task()
        consumer = self._consumer
        try:
            while not self._stopping.is_set():
                try:
                    batch = await consumer.getmany(
                        timeout_ms=500, max_records=self.config.max_poll_records
                    )
                except AUTHORIZATION_ERRORS as exc:
                    raise self._refused(exc) from exc
                if batch:
                    await self._process_batch(batch)
                    await self._commit(set(batch), reason="batch")
                self._check_access(consumer)
        finally:
            await self._commit(set(self._done), reason="stop")
            self._running = None

    def _refused(self, exc: BaseException) -> KafkaAuthorizationError | BaseException:
        """An aiokafka authorization error as the named error of this subscriber."""
        return (
            authorization_error(
                exc,
                principal=sasl_user(self.config),
                what="read",
                subscriber=self.config.subscriber_id,
                group=self.config.group_id,
            )
            or exc
        )

    def _check_access(self, consumer: AIOKafkaConsumer) -> None:
        """Stop on a topic the metadata says this principal may not read: aiokafka assigns
        none of its partitions and raises nothing, so the subscriber would wait for ever."""
        refused = sorted(unauthorized_topics(consumer) & set(self.config.topics))
        if refused:
            raise self._refused(TopicAuthorizationFailedError(refused[0]))

    async def run_until_signal(self) -> None:
        """:meth:`run`, stopping gracefully on SIGTERM or SIGINT."""
        await run_until_stopped(self.run, self.request_stop)

    async def _process_batch(
        self, batch: Mapping[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        limit = asyncio.Semaphore(self.config.max_concurrency)

        async def one_partition(
            tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]
        ) -> None:
            async with limit:
                if self._batch_handler is not None and len(records) > 1:
                    await self._process_together(tp, records)
                    return
                await self._process_one_by_one(tp, records)

        results = await asyncio.gather(
            *(one_partition(tp, records) for tp, records in batch.items()),
            return_exceptions=True,
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise failures[0]

    async def _commit(self, partitions: set[TopicPartition], *, reason: str) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        offsets = {
            tp: self._done[tp]
            for tp in partitions
            if tp in self._done and self._committed.get(tp) != self._done[tp]
        }
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except AUTHORIZATION_ERRORS as exc:
            if reason != "batch":  # stopping or revoked: the error that stops it is raised
                self._log.warning("subscriber.commit_refused", reason=reason, error=exc.message)
                return
            raise self._refused(exc) from exc  # not committed: delivered again once allowed
        except (CommitFailedError, KafkaError) as exc:
            # Not lost: uncommitted events are delivered again and sinks drop the duplicates.
            self._log.warning("subscriber.commit_failed", reason=reason, error=type(exc).__name__)
            return
        self._committed.update(offsets)
        self._log.debug("subscriber.committed", reason=reason, offsets=_offsets(offsets))

    # -- one record ------------------------------------------------------------------------

    async def _decode(self, record: ConsumerRecord[bytes, bytes]) -> IncomingEvent:
        assert self._decoder is not None
        return await self._decoder.decode(record.value, list(record.headers))

    async def _process_together(
        self, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]
    ) -> None:
        """Apply one partition's records with the batch handler.

        Records that do not decode are dead-lettered first, as one by one. The batch is
        tried once: any failure (a refused event, a busy database) sends the whole batch
        down the per-event path, which retries and dead-letters each event on its own, so
        a batch is only a faster way to the same outcomes.
        """
        assert self._batch_handler is not None
        decoded: list[tuple[ConsumerRecord[bytes, bytes], IncomingEvent]] = []
        poison: list[tuple[ConsumerRecord[bytes, bytes], Exception, datetime]] = []
        for record in records:
            try:
                decoded.append((record, await self._decode(record)))
            except Exception as exc:
                if classify_decode_failure(exc) is not DecodeFailure.POISON:
                    # Waiting on the registry is done one event at a time, in order.
                    await self._process_one_by_one(tp, records)
                    return
                poison.append((record, exc, datetime.now(UTC)))
        for record, error, first_failure in poison:  # a poison message: never a crash loop
            await self._dead_letter(record, error, attempts=1, first_failure=first_failure)
        deliveries = [Delivery.of(record, incoming) for record, incoming in decoded]
        if not deliveries:
            self._done[tp] = records[-1].offset + 1
            return
        try:
            outcomes = await self._batch_handler(deliveries)
        except Exception as exc:
            self._log.warning(
                "subscriber.batch_failed",
                topic=records[0].topic,
                partition=records[0].partition,
                first_offset=records[0].offset,
                size=len(deliveries),
                error=type(exc).__name__,
            )
            offsets = {d.offset for d in deliveries}
            for record in records:
                if self._stopping.is_set():
                    return
                if record.offset in offsets and await self._process_record(record) is None:
                    return
                self._done[tp] = record.offset + 1
            return
        for outcome in outcomes:
            if outcome is Outcome.DUPLICATE:
                self.stats.duplicates += 1
            else:
                self.stats.applied += 1
        self._done[tp] = records[-1].offset + 1

    async def _process_one_by_one(
        self, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]
    ) -> None:
        for record in records:
            if self._stopping.is_set() or await self._process_record(record) is None:
                return  # not finished: the offset stays where it is
            self._done[tp] = record.offset + 1

    async def _decode_patiently(
        self, record: ConsumerRecord[bytes, bytes]
    ) -> IncomingEvent | Outcome | None:
        """Decode ``record``, waiting out a registry that is away (see :class:`DecodeFailure`).

        Returns the event, or :attr:`Outcome.DEAD_LETTERED` for a record that cannot
        decode, or ``None`` when the subscriber was asked to stop while waiting.
        """
        policy = self.config.retry
        first_failure: datetime | None = None
        attempt = unknown = 0  # every try; the tries that found the schema unknown
        while True:
            attempt += 1
            try:
                return await self._decode(record)
            except Exception as exc:
                first_failure = first_failure or datetime.now(UTC)
                failure = classify_decode_failure(exc)
                unknown += failure is DecodeFailure.UNKNOWN_SCHEMA
                if failure is DecodeFailure.POISON or unknown >= policy.max_attempts:
                    return await self._dead_letter(
                        record, exc, attempts=attempt, first_failure=first_failure
                    )
                self.stats.retries += 1
                self._log.warning(
                    "subscriber.decode_retry",
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    attempt=attempt,
                    failure=failure.value,
                    error=type(exc).__name__,
                )
            if await self._stopped_within(backoff_s(policy, attempt)):
                return None

    async def _stopped_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def _process_record(self, record: ConsumerRecord[bytes, bytes]) -> Outcome | None:
        """Apply one record; ``None`` when it was left unfinished because of a stop."""
        incoming = await self._decode_patiently(record)
        if incoming is None or isinstance(incoming, Outcome):
            return incoming
        envelope = incoming.envelope

        async def attempt(number: int) -> Outcome | None:
            delivery = Delivery.of(record, incoming, number)
            try:
                return await self._handler(delivery)
            except Exception as exc:
                self._log.warning(
                    "subscriber.handler_failed",
                    event_id=envelope.id,
                    type=envelope.type,
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    attempt=number,
                    error=type(exc).__name__,
                    retriable=is_retriable(exc),
                )
                raise

        # The first attempt runs bare: building the retry machinery for every event costs
        # more than most handlers; it is built only once an event has failed.
        attempts = 1
        try:
            result = await attempt(1)
        except Exception as first_error:
            first_failure = datetime.now(UTC)
            policy = self.config.retry
            if not is_retriable(first_error) or policy.max_attempts <= 1:
                return await self._dead_letter(
                    record,
                    first_error,
                    attempts=1,
                    first_failure=first_failure,
                    event_id=envelope.id,
                )
            retrying = AsyncRetrying(
                stop=stop_after_attempt(policy.max_attempts - 1),
                wait=policy.wait(),
                retry=retry_if_exception(is_retriable),
                reraise=True,
            )
            await asyncio.sleep(backoff_s(policy, 1))
            try:
                async for retry in retrying:
                    with retry:
                        attempts = retry.retry_state.attempt_number + 1
                        self.stats.retries += 1
                        result = await attempt(attempts)
            except Exception as exc:
                return await self._dead_letter(
                    record,
                    exc,
                    attempts=attempts,
                    first_failure=first_failure,
                    event_id=envelope.id,
                )
        outcome = Outcome.DUPLICATE if result is Outcome.DUPLICATE else Outcome.APPLIED
        if outcome is Outcome.DUPLICATE:
            self.stats.duplicates += 1
        else:
            self.stats.applied += 1
        self._log.debug(
            "subscriber.outcome",
            event_id=envelope.id,
            offset=record.offset,
            outcome=outcome.value,
            attempt=attempts,
        )
        return outcome

    async def _dead_letter(
        self,
        record: ConsumerRecord[bytes, bytes],
        exc: BaseException,
        *,
        attempts: int,
        first_failure: datetime,
        event_id: str | None = None,
    ) -> Outcome:
        assert self._dlq is not None
        cause = await self._dlq.write(record, exc, attempts=attempts, first_failure=first_failure)
        self.stats.dead_lettered += 1
        self._log.warning(
            "subscriber.dead_lettered",
            event_id=event_id,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            dlq=dlq_topic(record.topic, self.config.subscriber_id),
            error=cause.error_class,
            attempts=attempts,
        )
        return Outcome.DEAD_LETTERED


def _offsets(offsets: Mapping[TopicPartition, int]) -> dict[str, int]:
    return {f"{tp.topic}[{tp.partition}]": offset for tp, offset in sorted(offsets.items())}
