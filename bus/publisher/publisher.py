"""The publisher: one idempotent ``acks=all`` producer and a publishing plan per event type."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from bus.contract.envelope import steward_of
from bus.contract.events import SpbeEvent
from bus.contract.plan import OutgoingRecord, PublishingPlan
from bus.contract.pseudonyms import Pseudonymiser
from bus.contract.schema import AvroSchema
from bus.contract.standard import load_standard
from bus.diagnosis import sasl_user
from bus.errors import BusError, ConfigError, LifecycleError, PublishError
from bus.lifecycle import Lifecycle
from bus.logs import get_logger
from bus.publisher.batches import Placed, RecordsInFlight, send_batched
from bus.publisher.config import (
    PublisherConfig,
    PublishRequest,
    PublishResult,
    key_secret_of,
    request_of,
)
from bus.publisher.failures import LOST_IDEMPOTENCE, send_failure
from bus.registry import SchemaRegistry
from bus.startup import close_client, fix_for_unreachable, is_transient_failure, wait_for_kafka

__all__ = ["Publisher"]

log = get_logger(__name__)


class Publisher(Lifecycle):
    """An idempotent, ``acks=all`` publisher of typed SPBE events for one source."""

    def __init__(
        self,
        config: PublisherConfig,
        *,
        registry: SchemaRegistry | None = None,
        standard: Mapping[str, AvroSchema] | None = None,
    ) -> None:
        self.config = config
        self._standard = dict(standard) if standard is not None else None
        self._registry = registry
        self._owns_registry = registry is None
        secret = key_secret_of(config)
        self._pseudonymiser = Pseudonymiser(secret) if secret is not None else None
        self._plans: dict[str, PublishingPlan] = {}
        self._producer: AIOKafkaProducer | None = None
        self._stale_producer = False
        self._renewing = asyncio.Lock()
        self._log = log.bind(source=config.source)

    # -- lifecycle -------------------------------------------------------------------------

    async def _new_producer(self) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(
            **self.config.connection.aiokafka_options(),
            client_id=self.config.client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=self.config.linger_ms,
            max_batch_size=self.config.max_batch_size,
            request_timeout_ms=self.config.request_timeout_ms,
            compression_type=self.config.compression_type,
        )
        try:
            await producer.start()
        except BaseException as exc:
            await close_client(producer)
            if not isinstance(exc, KafkaError):
                raise
            raise PublishError(
                f"cannot reach Kafka at {self.config.bootstrap_servers}: {exc}",
                fix=fix_for_unreachable(self.config.bootstrap_servers),
                retriable=is_transient_failure(exc),
            ) from exc
        return producer

    async def start(self) -> None:
        if self._producer is not None:
            return
        if self._standard is None:
            self._standard = load_standard(self.config.schemas_dir)
        self._plans = self._own_plans(self._standard)
        producer = await wait_for_kafka(
            "start the publisher",
            self._new_producer,
            bootstrap_servers=self.config.bootstrap_servers,
            security=self.config.security,
            timeout_s=self.config.start_timeout_s,
        )
        self._producer = producer
        try:
            if self.config.register_schemas:
                await self._register_own_schemas()
        except BaseException:
            await self.stop()
            raise
        self._log.info(
            "publisher.started",
            bootstrap=self.config.bootstrap_servers,
            security=self.config.security.describe(),
        )

    def _own_plans(self, standard: Mapping[str, AvroSchema]) -> dict[str, PublishingPlan]:
        """A publishing plan for every event type this publisher's source stewards."""
        opd = steward_of(self.config.source)
        return {
            name: self._plan(schema)
            for name, schema in standard.items()
            if schema.steward is None or schema.steward == opd
        }

    def _plan(self, schema: AvroSchema) -> PublishingPlan:
        return PublishingPlan.for_source(
            schema,
            source=self.config.source,
            key_secret=self._pseudonymiser,
            topic=self.config.topic_overrides.get(schema.record_name),
        )

    async def _register_own_schemas(self) -> None:
        if self._registry is None:
            config = self.config
            self._registry = SchemaRegistry(
                config.connection,
                topic=config.registry_topic,
                start_timeout_s=config.start_timeout_s,
            )
        await self._registry.start()
        opd = steward_of(self.config.source)
        assert self._standard is not None
        for schema in self._standard.values():
            if schema.steward == opd:
                registered = await self._registry.register(schema)
                self._log.info(
                    "publisher.schema_registered",
                    subject=registered.subject,
                    version=registered.version,
                )

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()
        if self._registry is not None and self._owns_registry:
            await self._registry.stop()

    # -- publishing ------------------------------------------------------------------------

    def _started(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise LifecycleError(
                "the publisher is not started",
                fix="use 'async with Publisher(...)' or await publisher.start() first",
            )
        return self._producer

    def record_for(
        self,
        event: SpbeEvent,
        *,
        sequence: int | None = None,
        event_id: str | None = None,
        traceparent: str | None = None,
        snapshot: bool = False,
    ) -> OutgoingRecord:
        """The Kafka record ``event`` becomes (validates, encodes, keys, sets headers).

        ``event_id`` defaults to a new UUIDv7; pass a stored one when publishing again
        (an outbox row), so sinks recognise the duplicate. ``snapshot`` marks an event of a
        day-one snapshot (header ``ce_snapshot: true``).
        """
        plan = self._plans.get(event.event_name)
        if plan is None:
            plan = self._plan_for_stranger(event)
        return plan.record(
            event, sequence=sequence, event_id=event_id, traceparent=traceparent, snapshot=snapshot
        )

    def _plan_for_stranger(self, event: SpbeEvent) -> PublishingPlan:
        """An event type without a plan: unknown, or another steward's (both refused)."""
        schema = (self._standard or {}).get(event.event_name)
        if schema is None:
            raise ConfigError(
                f"{event.event_name} is not in this publisher's data standard",
                fix="check schemas_dir points at the standard that defines it",
            )
        return self._plan(schema)  # raises: the steward check

    async def _renew_producer(self) -> None:
        """Replace a producer whose idempotence state the broker no longer accepts.

        aiokafka keeps its producer id and sequence numbers after a broker loses the
        batches in flight (a restart); the broker then answers OutOfOrderSequenceNumber
        to every later send. Java clients bump the epoch; here a new producer gets a new id.
        """
        async with self._renewing:
            if not self._stale_producer:
                return
            old, self._producer = self._producer, await self._new_producer()
            self._stale_producer = False
            self._log.warning("publisher.producer_renewed", reason="idempotence state lost")
            if old is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(old.stop(), self.config.delivery_timeout_ms / 1000)

    def _failed(self, record: OutgoingRecord, exc: BaseException) -> PublishError:
        if isinstance(exc, LOST_IDEMPOTENCE):
            self._stale_producer = True
        # Its source stewards the event (the plans say so): send_failure names that steward.
        return send_failure(record, exc, principal=sasl_user(self.config))

    async def _ready_producer(self) -> AIOKafkaProducer:
        """The producer, renewed first if the broker no longer accepts its idempotence state."""
        self._started()
        if self._stale_producer:
            await self._renew_producer()
        return self._started()

    async def _send(self, record: OutgoingRecord) -> asyncio.Future[Any]:
        producer = await self._ready_producer()
        try:
            future: asyncio.Future[Any] = await producer.send(
                record.topic, record.value, key=record.key, headers=record.headers
            )
        except KafkaError as exc:
            raise self._failed(record, exc) from exc
        return future

    async def publish(
        self,
        event: SpbeEvent,
        *,
        sequence: int | None = None,
        event_id: str | None = None,
        traceparent: str | None = None,
        snapshot: bool = False,
    ) -> PublishResult:
        """Publish one event and wait until the broker acknowledged it."""
        self._started()
        record = self.record_for(
            event,
            sequence=sequence,
            event_id=event_id,
            traceparent=traceparent,
            snapshot=snapshot,
        )
        future = await self._send(record)
        deadline = asyncio.get_running_loop().time() + self.config.delivery_timeout_ms / 1000
        return self._acknowledged(record, await self._await_ack(record, future, deadline))

    async def publish_many(
        self,
        events: Iterable[SpbeEvent | tuple[SpbeEvent, int | None] | PublishRequest],
        *,
        snapshot: bool = False,
    ) -> list[PublishResult | BusError]:
        """Publish a batch without waiting for each send in turn.

        Each item is an event, an ``(event, sequence)`` pair or a :class:`PublishRequest`.
        Returns one entry per event, in order: its :class:`PublishResult`, or the
        :class:`~bus.errors.BusError` that stopped it (a validation error or a
        :class:`~bus.errors.PublishError`). Events of one key keep their order.
        ``snapshot`` marks every event as part of a day-one snapshot.
        """
        self._started()
        built: list[OutgoingRecord | BusError] = []
        for item in events:
            request = request_of(item)
            try:
                built.append(
                    self.record_for(
                        request.event,
                        sequence=request.sequence,
                        event_id=request.event_id,
                        traceparent=request.traceparent,
                        snapshot=snapshot,
                    )
                )
            except BusError as exc:
                built.append(exc)
        records = [entry for entry in built if isinstance(entry, OutgoingRecord)]
        sent = iter(await self.publish_records(records))
        return [entry if isinstance(entry, BusError) else next(sent) for entry in built]

    async def publish_records(
        self, records: Sequence[OutgoingRecord]
    ) -> list[PublishResult | PublishError]:
        """Publish records built by :meth:`record_for`, as :meth:`publish_many` does.

        For a caller that builds the records itself (the outbox relay, to stop an
        aggregate at its first bad row before anything after it is sent). One entry per
        record, in order; records of one key keep their order.
        """
        if not records:
            return []
        placed = await send_batched(await self._ready_producer(), records)
        deadline = asyncio.get_running_loop().time() + self.config.delivery_timeout_ms / 1000
        # One wait for every batch; a timer per event costs more than the send.
        futures = {entry.future for entry in placed if entry.future is not None}
        if futures:
            await asyncio.wait(futures, timeout=self.config.delivery_timeout_ms / 1000)
        results: list[PublishResult | PublishError] = []
        for entry in placed:
            try:
                results.append(await self._outcome(entry, deadline))
            except PublishError as exc:
                results.append(exc)
        acknowledged = sum(isinstance(result, PublishResult) for result in results)
        self._log.debug("publisher.batch_acknowledged", events=acknowledged, of=len(results))
        return results

    async def send_records(self, records: Sequence[OutgoingRecord]) -> RecordsInFlight:
        """Hand records built by :meth:`record_for` to Kafka as record batches; do not wait.

        For bulk publishing that reads on while Kafka acknowledges (the day-one snapshot):
        the batches :meth:`publish_many` sends, without waiting. Await ``acknowledged()``
        on the result: it returns once the broker acknowledged every record, and raises
        :class:`~bus.errors.PublishError` otherwise.
        """
        placed = await send_batched(await self._ready_producer(), records)
        return RecordsInFlight(
            placed,
            timeout_s=self.config.delivery_timeout_ms / 1000,
            on_lost_idempotence=self._lost_idempotence,
            explain=self._failed,
        )

    def _lost_idempotence(self) -> None:
        self._stale_producer = True

    async def _outcome(self, placed: Placed, deadline: float) -> PublishResult:
        """A batched record's result: its batch's offset plus its place, or its error."""
        record = placed.record
        if placed.error is not None:
            raise self._failed(record, placed.error)
        assert placed.future is not None
        future = placed.future
        meta = self._settled(record, future) if future.done() else None
        if meta is None:
            meta = await self._await_ack(record, future, deadline)
        return PublishResult(
            event_id=record.envelope.id,
            topic=meta.topic,
            partition=meta.partition,
            offset=meta.offset + placed.index,
        )

    def _settled(self, record: OutgoingRecord, future: asyncio.Future[Any]) -> Any:
        """The record metadata of a done future, or its error as a PublishError."""
        exc = future.exception()
        if exc is not None:
            raise self._failed(record, exc) from exc
        return future.result()

    async def _await_ack(
        self, record: OutgoingRecord, future: asyncio.Future[Any], deadline: float
    ) -> Any:
        """The record metadata once acknowledged; a PublishError on failure or timeout."""
        remaining = max(0.0, deadline - asyncio.get_running_loop().time())
        try:
            meta = await asyncio.wait_for(asyncio.shield(future), remaining)
        except KafkaError as exc:
            raise self._failed(record, exc) from exc
        except TimeoutError as exc:
            raise PublishError(
                f"event {record.envelope.id} ({record.envelope.event_name}) to {record.topic} was "
                f"not acknowledged within {self.config.delivery_timeout_ms} ms; the producer "
                "may still deliver it later",
                fix="publish it again with the same event_id; sinks drop the duplicate",
                retriable=True,
            ) from exc
        return meta

    def _acknowledged(self, record: OutgoingRecord, meta: Any) -> PublishResult:
        result = PublishResult(
            event_id=record.envelope.id,
            topic=meta.topic,
            partition=meta.partition,
            offset=meta.offset,
        )
        self._log.debug(
            "publisher.acknowledged",
            event_id=result.event_id,
            type=record.envelope.type,
            topic=result.topic,
            partition=result.partition,
            offset=result.offset,
        )
        return result
