"""Publish typed events: validated, Avro-encoded, keyed, acknowledged by every in-sync replica.

    async with Publisher(PublisherConfig(bootstrap_servers=..., source=...)) as publisher:
        result = await publisher.publish(event, sequence=12)

The producer is idempotent with ``acks=all``: a publish returns only once the broker has
acknowledged the event, and any failure raises :class:`~bus.errors.PublishError`;
nothing is dropped silently. At start the publisher registers the schemas of the event
types its source stewards, so readers can resolve every fingerprint it writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidProducerEpoch,
    KafkaError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    UnknownProducerId,
)
from pydantic import BaseModel, ConfigDict, Field, SecretBytes

from bus.contract.envelope import steward_of
from bus.contract.events import SpbeEvent
from bus.contract.message import OutgoingRecord, build_record
from bus.contract.schema import AvroSchema
from bus.contract.standard import load_standard
from bus.errors import BusError, ConfigError, LifecycleError, PublishError
from bus.lifecycle import Lifecycle
from bus.registry import DEFAULT_TOPIC as DEFAULT_REGISTRY_TOPIC
from bus.registry import SchemaRegistry
from bus.startup import (
    close_client,
    default_start_timeout_s,
    fix_for_unreachable,
    is_transient_failure,
    wait_for_kafka,
)

__all__ = [
    "DEFAULT_LINGER_MS",
    "DEFAULT_REQUEST_TIMEOUT_MS",
    "PublishResult",
    "Publisher",
    "PublisherConfig",
]

DEFAULT_LINGER_MS = 5
DEFAULT_REQUEST_TIMEOUT_MS = 30_000
DEFAULT_MAX_BATCH_SIZE = 256 * 1024
DEFAULT_DELIVERY_TIMEOUT_MS = 120_000

log = structlog.get_logger(__name__)


class PublisherConfig(BaseModel):
    """How a steward's adapter publishes. Kafka settings keep Kafka's names and units."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bootstrap_servers: str
    #: The publishing application, X-Road style: ``ID/PEMDA-3273/DISDUKCAPIL/siak``.
    source: str
    #: The steward's secret for key pseudonyms; default ``$SPBE_KEY_SECRET``.
    key_secret: SecretBytes | None = None
    schemas_dir: Path | None = None
    registry_topic: str = DEFAULT_REGISTRY_TOPIC
    register_schemas: bool = True
    linger_ms: int = Field(default=DEFAULT_LINGER_MS, ge=0)
    max_batch_size: int = Field(default=DEFAULT_MAX_BATCH_SIZE, ge=1024)
    request_timeout_ms: int = Field(default=DEFAULT_REQUEST_TIMEOUT_MS, ge=1000)
    #: How long a publish waits for the acknowledgement before it raises.
    delivery_timeout_ms: int = Field(default=DEFAULT_DELIVERY_TIMEOUT_MS, ge=1000)
    #: How long ``start`` waits for a cluster that is away or failing over.
    start_timeout_s: float = Field(default_factory=default_start_timeout_s, gt=0)
    compression_type: str | None = None
    client_id: str | None = None
    #: Event name -> topic, replacing the schema's ``spbe.topic`` (staging, tests).
    topic_overrides: dict[str, str] = Field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PublishResult:
    """Where an acknowledged event landed."""

    event_id: str
    topic: str
    partition: int
    offset: int


def _secret(config: PublisherConfig) -> bytes | None:
    if config.key_secret is not None:
        return config.key_secret.get_secret_value()
    env = os.environb.get(b"SPBE_KEY_SECRET")
    return env or None


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
        self._secret = _secret(config)
        self._producer: AIOKafkaProducer | None = None
        self._stale_producer = False
        self._renewing = asyncio.Lock()
        self._log = log.bind(source=config.source)

    # -- lifecycle -------------------------------------------------------------------------

    async def _new_producer(self) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(
            bootstrap_servers=self.config.bootstrap_servers,
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
        producer = await wait_for_kafka(
            "start the publisher",
            self._new_producer,
            bootstrap_servers=self.config.bootstrap_servers,
            timeout_s=self.config.start_timeout_s,
        )
        self._producer = producer
        try:
            if self.config.register_schemas:
                await self._register_own_schemas()
        except BaseException:
            await self.stop()
            raise
        self._log.info("publisher.started", bootstrap=self.config.bootstrap_servers)

    async def _register_own_schemas(self) -> None:
        if self._registry is None:
            self._registry = SchemaRegistry(
                self.config.bootstrap_servers,
                topic=self.config.registry_topic,
                start_timeout_s=self.config.start_timeout_s,
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
    ) -> OutgoingRecord:
        """The Kafka record ``event`` becomes (validates, encodes, keys, sets headers).

        ``event_id`` defaults to a new UUIDv7; pass a stored one when publishing again
        (an outbox row), so sinks recognise the duplicate.
        """
        assert self._standard is not None
        schema = self._standard.get(event.event_name)
        if schema is None:
            raise ConfigError(
                f"{event.event_name} is not in this publisher's data standard",
                fix="check schemas_dir points at the standard that defines it",
            )
        return build_record(
            event,
            schema,
            source=self.config.source,
            key_secret=self._secret,
            sequence=sequence,
            event_id=event_id,
            traceparent=traceparent,
            topic=self.config.topic_overrides.get(event.event_name),
        )

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

    def _failed(self, record: OutgoingRecord, exc: KafkaError) -> PublishError:
        if isinstance(exc, _LOST_IDEMPOTENCE):
            self._stale_producer = True
        return _publish_error(record, exc)

    async def _send(self, record: OutgoingRecord) -> asyncio.Future[Any]:
        self._started()
        if self._stale_producer:
            await self._renew_producer()
        producer = self._started()
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
    ) -> PublishResult:
        """Publish one event and wait until the broker acknowledged it."""
        self._started()
        record = self.record_for(
            event, sequence=sequence, event_id=event_id, traceparent=traceparent
        )
        future = await self._send(record)
        deadline = asyncio.get_running_loop().time() + self.config.delivery_timeout_ms / 1000
        return await self._await_ack(record, future, deadline)

    async def publish_many(
        self, events: Iterable[SpbeEvent | tuple[SpbeEvent, int | None]]
    ) -> list[PublishResult | BusError]:
        """Publish a batch without waiting for each send in turn.

        Returns one entry per event, in order: its :class:`PublishResult`, or the
        :class:`~bus.errors.BusError` that stopped it (a validation error or a
        :class:`~bus.errors.PublishError`). Events of one key keep their order.
        """
        self._started()
        pending: list[tuple[OutgoingRecord, asyncio.Future[Any]] | BusError] = []
        for item in events:
            event, sequence = item if isinstance(item, tuple) else (item, None)
            try:
                record = self.record_for(event, sequence=sequence)
                pending.append((record, await self._send(record)))
            except BusError as exc:
                pending.append(exc)
        deadline = asyncio.get_running_loop().time() + self.config.delivery_timeout_ms / 1000
        futures = [entry[1] for entry in pending if not isinstance(entry, BusError)]
        if futures:
            # One wait for the whole batch; a timer per event costs more than the send.
            await asyncio.wait(futures, timeout=self.config.delivery_timeout_ms / 1000)
        results: list[PublishResult | BusError] = []
        for entry in pending:
            if isinstance(entry, BusError):
                results.append(entry)
                continue
            record, future = entry
            try:
                if future.done():
                    results.append(self._settled(record, future))
                else:
                    results.append(await self._await_ack(record, future, deadline))
            except PublishError as exc:
                results.append(exc)
        return results

    def _settled(self, record: OutgoingRecord, future: asyncio.Future[Any]) -> PublishResult:
        exc = future.exception()
        if isinstance(exc, KafkaError):
            raise self._failed(record, exc) from exc
        if exc is not None:
            raise PublishError(
                f"event {record.envelope.id} to {record.topic} failed: {type(exc).__name__}: {exc}"
            ) from exc
        return self._acknowledged(record, future.result())

    async def _await_ack(
        self, record: OutgoingRecord, future: asyncio.Future[Any], deadline: float
    ) -> PublishResult:
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
        return self._acknowledged(record, meta)

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


#: Errors meaning the broker no longer accepts this producer's idempotence state.
_LOST_IDEMPOTENCE = (
    OutOfOrderSequenceNumber,
    UnknownProducerId,
    InvalidProducerEpoch,
    ProducerFenced,
)


def _publish_error(record: OutgoingRecord, exc: KafkaError) -> PublishError:
    retriable = bool(getattr(exc, "retriable", False)) or isinstance(
        exc, (asyncio.TimeoutError, *_LOST_IDEMPOTENCE)
    )
    return PublishError(
        f"event {record.envelope.id} ({record.envelope.event_name}) to {record.topic} was not "
        f"acknowledged: {type(exc).__name__}: {exc}",
        fix="publish it again with the same event_id, so sinks drop a duplicate"
        if retriable
        else "the event cannot be published as it is; see the cause",
        retriable=retriable,
    )
