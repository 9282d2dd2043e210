"""The contract service: each active subscription gets its projected copy of the raw topics.

One consumer (group ``spbe-contracts``, manual commits) reads every raw topic an active
subscription names. Per fetched batch, in this order:

1. every record is decoded (:class:`bus.decoding.RecordDecoder`) and, for every active
   subscription whose ``allowed_fields`` names its event type, turned into the projected
   record (:class:`adapters.contracts.routes.Route`);
2. one ledger entry per projected record is appended, all in one call, and the service
   waits for it (``docs/contracts.md`` "Ledger first, then delivery");
3. the projected records are produced (idempotent, ``acks=all``, partitioned as the
   publisher partitions, over the pairwise key, so one person's events stay in order)
   and every acknowledgement is awaited;
4. a raw record that is no event goes to ``<topic>.dlq.<group>`` with its cause; then
   the consumed offsets are committed.

While a batch's acknowledgements are awaited (step 3), the next batch the consumer
already holds goes through steps 1 and 2; it is produced only after them, so batches
reach the projected topics in the order they were read. If its steps fail, the batch in
flight is still acknowledged and committed, and the failed one is read again.

A crash anywhere re-delivers the batch after a restart: duplicates are possible (sinks
drop them by event id, the ledger lists them), a loss is not, and no record is produced
without its ledger entry. A stop leaves the entries of the batch prepared meanwhile:
it is read again, and entered again, after the restart.

Why this module is longer than 400 lines: the delivery path (prepare, produce, commit,
rewind) and the lifecycle of its four clients share the service's state; split, each
half would reach into the other's.

A subscription past its ``expires`` day (by the service's clock) receives nothing; the
service logs ``contract.subscription_expired`` once with its subscriber id. Its offsets
are the service's: a renewed subscription continues from them, nothing is sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import SecretBytes

from adapters.contracts.config import DEFAULT_GROUP
from adapters.contracts.routes import HeaderPlan, Route, aggregate_key, build_routes
from adapters.contracts.subjects import register_projections
from adapters.db import run_sync
from bus.connection import KafkaConnection
from bus.contract.envelope import to_headers
from bus.contract.message import IncomingEvent
from bus.contract.plan import OutgoingRecord
from bus.contract.pseudonyms import PairwiseKeys, Pseudonymiser
from bus.contract.schema import AvroSchema
from bus.contract.standard import load_standard
from bus.dead_letters import DeadLetterWriter
from bus.decoding import RecordDecoder
from bus.delivery import dlq_topic
from bus.errors import (
    ConfigError,
    ContractError,
    DeliveryError,
    LifecycleError,
    PublishError,
    UnknownSchemaError,
)
from bus.ledger import Ledger, LedgerEntry, LedgerSubjects
from bus.lifecycle import Lifecycle
from bus.logs import get_logger
from bus.ops.catalog import Subscription
from bus.publisher.batches import RecordsInFlight, send_batched
from bus.publisher.config import DEFAULT_MAX_BATCH_SIZE
from bus.registry import SchemaRegistry
from bus.startup import close_client, start_client

__all__ = ["DEFAULT_GROUP", "ContractService"]

log = get_logger(__name__)
_DELIVERY_TIMEOUT_S = 120.0
_RETRY_PAUSE_S = 5.0


def _utc_today() -> date:
    return datetime.now(UTC).date()


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A fetched batch, projected and written to the ledger: ready to be produced."""

    outgoing: list[OutgoingRecord]
    offsets: dict[TopicPartition, int]
    undecodable: list[tuple[Any, ContractError]]
    consumed: int
    when: datetime


class ContractService(Lifecycle):
    """Delivers each active subscription its projection of the raw topics it names."""

    def __init__(
        self,
        subscriptions: Sequence[Subscription],
        *,
        pairwise_secret: SecretBytes,
        ledger: Ledger,
        ledger_secret: SecretBytes,
        kafka: KafkaConnection,
        group_id: str = DEFAULT_GROUP,
        today: Callable[[], date] = _utc_today,
        standard: Mapping[str, AvroSchema] | None = None,
        registry_topic: str | None = None,
        max_poll_records: int = 500,
    ) -> None:
        if not subscriptions:
            raise ConfigError(
                "the contract service has no subscriptions",
                fix="give it the catalogue's subscriptions (deploy/catalog.yaml)",
            )
        seen: set[str] = set()
        for sub in subscriptions:
            if sub.subscriber in seen:
                raise ConfigError(
                    f"subscriber {sub.subscriber} has two subscriptions; a subscriber id "
                    "names one projected topic per raw topic",
                    fix="merge them into one subscription in the catalogue",
                )
            seen.add(sub.subscriber)
        if pairwise_secret.get_secret_value() == ledger_secret.get_secret_value():
            raise ConfigError(
                "pairwise_secret and ledger_secret are the same secret; the ledger's subjects "
                "would then be computable by whoever holds the subscribers' key secret",
                fix="give the ledger a secret of its own "
                "(python -c 'import secrets; print(secrets.token_hex(32))')",
            )
        by_name = standard if standard is not None else load_standard()
        by_type = {s.event_type: s for s in by_name.values() if s.event_type is not None}
        self._routes = build_routes(
            subscriptions, by_type, PairwiseKeys(pairwise_secret.get_secret_value())
        )
        self._standard = dict(by_name)
        secret = ledger_secret.get_secret_value()
        self._subjects = LedgerSubjects(secret)
        self._other_subjects = Pseudonymiser(secret)
        self._ledger = ledger
        self._kafka = kafka
        self._group_id = group_id
        self._today = today
        self._registry_topic = registry_topic
        self._max_poll_records = max_poll_records
        self._expired_logged: set[str] = set()
        self._registry: SchemaRegistry | None = None
        self._decoder: RecordDecoder | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._dlq: DeadLetterWriter | None = None
        self._stale_producer = False
        self._ready: _Prepared | None = None
        self._stopping = asyncio.Event()

    @property
    def routes(self) -> list[Route]:
        """Every (subscription, raw topic, event type) route, grouped by topic and type."""
        return [route for routes in self._routes.values() for route in routes]

    @property
    def topics(self) -> list[str]:
        """The raw topics the service reads: those of subscriptions active today."""
        today = self._today()
        return sorted({r.raw_topic for r in self.routes if r.active(today)})

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if self._consumer is not None:
            return
        topics = self.topics
        if not topics:
            raise ConfigError(
                "every subscription of the contract service has expired",
                fix="renew a subscription's expires date in the catalogue",
            )
        kafka = self._kafka
        try:
            options: dict[str, Any] = {}
            if self._registry_topic is not None:
                options["topic"] = self._registry_topic
            self._registry = SchemaRegistry(kafka, **options)
            await self._registry.start()
            projections = {id(r.projected): r.projected for r in self.routes}.values()
            await register_projections(self._registry, projections)
            self._decoder = RecordDecoder(self._standard, self._registry)
            self._producer = await self._new_producer()
            consumer = await start_client(
                lambda: AIOKafkaConsumer(
                    **kafka.aiokafka_options(),
                    group_id=self._group_id,
                    client_id="spbe-contracts",
                    enable_auto_commit=False,
                    auto_offset_reset="earliest",
                    max_poll_records=self._max_poll_records,
                ),
                "start the contract service's consumer",
                bootstrap_servers=kafka.bootstrap_servers,
                security=kafka.security,
            )
            self._dlq = DeadLetterWriter(kafka, self._group_id, topics)
            await self._dlq.start()
            consumer.subscribe(topics)
            self._consumer = consumer
        except BaseException:
            await self.stop()
            raise
        self._stopping.clear()
        log.info("contract.started", topics=topics, routes=len(self.routes))

    async def _new_producer(self) -> AIOKafkaProducer:
        kafka = self._kafka
        return await start_client(
            lambda: AIOKafkaProducer(
                **kafka.aiokafka_options(),
                client_id="spbe-contracts",
                acks="all",
                enable_idempotence=True,
                # The publisher's batches: a fetched batch's records for one partition
                # go in one produce request, not one per 16 KiB (aiokafka's default).
                max_batch_size=DEFAULT_MAX_BATCH_SIZE,
            ),
            "start the contract service's producer",
            bootstrap_servers=kafka.bootstrap_servers,
            security=kafka.security,
        )

    async def stop(self) -> None:
        self._stopping.set()
        consumer, self._consumer = self._consumer, None
        producer, self._producer = self._producer, None
        registry, self._registry = self._registry, None
        dlq, self._dlq = self._dlq, None
        self._ready = None  # its offsets are not committed: read again after a restart
        if consumer is not None:
            await close_client(consumer)
        if producer is not None:
            await close_client(producer)
        if dlq is not None:
            await dlq.stop()
        if registry is not None:
            await registry.stop()

    # -- delivering ------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Ask :meth:`run` to return after the batch in hand."""
        self._stopping.set()

    async def run(self) -> None:
        """Deliver batch after batch until :meth:`request_stop` or :meth:`stop`.

        A batch that fails (the ledger or the broker is away) is logged and read again
        from the committed offsets after a pause: its deliveries may be duplicated, never
        lost, and never made without their ledger entries.
        """
        while not self._stopping.is_set():
            try:
                await self.run_once()
            except (DeliveryError, PublishError) as exc:
                log.warning("contract.batch_failed", error=exc.message, fix=exc.fix)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), _RETRY_PAUSE_S)

    async def _rewind(self) -> None:
        """Go back to the committed offsets, so the failed batch is read again."""
        consumer = self._consumer
        if consumer is None:
            return
        for tp in consumer.assignment():
            committed = await consumer.committed(tp)
            if committed is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, committed)

    async def run_once(self, timeout_ms: int = 1000) -> int:
        """Deliver one batch (ledger, produce, commit); return the records produced.

        The batch is the one prepared while the previous batch's acknowledgements were
        awaited, else a new fetch. While this batch's are awaited, the next fetched batch
        is decoded, projected and written to the ledger (never produced) for the next call.
        On an error the consumer goes back to its committed offsets before it is raised,
        so the next call reads the failed batch (and the one prepared after it) again.
        """
        consumer, producer, decoder = self._consumer, self._producer, self._decoder
        if consumer is None or producer is None or decoder is None:
            raise LifecycleError(
                "the contract service is not started",
                fix="use 'async with ContractService(...)' or await service.start() first",
            )
        ready, self._ready = self._ready, None
        try:
            if ready is None:
                batch = await consumer.getmany(timeout_ms=timeout_ms)
                if not batch:
                    return 0
                ready = await self._prepare(decoder, batch)
            return await self._deliver(consumer, producer, decoder, ready)
        except Exception:
            self._ready = None  # read again after the rewind
            await self._rewind()  # the next fetch reads this batch again: nothing is skipped
            raise

    async def _prepare(
        self, decoder: RecordDecoder, batch: Mapping[TopicPartition, Sequence[Any]]
    ) -> _Prepared:
        """Decode and project one fetched batch and append its ledger entries."""
        today = self._today()
        outgoing: list[OutgoingRecord] = []
        entries: list[LedgerEntry] = []
        offsets: dict[TopicPartition, int] = {}
        undecodable: list[tuple[Any, ContractError]] = []
        now = datetime.now(UTC)
        for tp, records in batch.items():
            for message in records:
                offsets[tp] = message.offset + 1
                try:
                    incoming = await decoder.decode(message.value, message.headers)
                except UnknownSchemaError:
                    raise  # a schema not registered yet: the batch waits for it
                except ContractError as exc:
                    undecodable.append((message, exc))
                    continue
                routes = self._routes.get((tp.topic, incoming.envelope.type), ())
                active = [route for route in routes if self._active(route, today)]
                if not active:
                    continue
                key = aggregate_key(incoming)
                datum = incoming.event.avro_datum()
                headers = HeaderPlan.of(to_headers(incoming.envelope))
                subject = self._subject(incoming, key)  # once per event, not per route
                for route in active:
                    outgoing.append(route.record(incoming, key, datum=datum, headers=headers))
                    entries.append(route.ledger_entry(incoming, subject, now))
        if entries:
            try:
                await run_sync(self._ledger.append, entries)
            except Exception as exc:
                raise DeliveryError(
                    f"the ledger did not record {len(entries)} deliveries "
                    f"({type(exc).__name__}); nothing of the batch was delivered or committed",
                    fix="check the ledger database (its table: create_ledger_table) and "
                    "restart the contract service; it reads the batch again",
                ) from exc
        return _Prepared(outgoing, offsets, undecodable, sum(map(len, batch.values())), now)

    async def _deliver(
        self,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        decoder: RecordDecoder,
        ready: _Prepared,
    ) -> int:
        """Produce and commit a prepared batch; prepare the next while the broker acknowledges.

        The next batch is produced only in the next call, after this one's
        acknowledgements, so a key's records reach the projected topic in order. When
        preparing it fails, this batch is still acknowledged and committed before the
        error is raised.
        """
        failed: Exception | None = None
        if ready.outgoing:
            if self._stale_producer:
                producer = await self._renew_producer(producer)
            placed = await send_batched(producer, ready.outgoing)
            in_flight = RecordsInFlight(
                placed, timeout_s=_DELIVERY_TIMEOUT_S, on_lost_idempotence=self._lost_idempotence
            )
            try:
                following = await consumer.getmany(timeout_ms=0)  # what the fetcher holds
                if following:
                    self._ready = await self._prepare(decoder, following)
            except Exception as exc:
                failed = exc
            await in_flight.acknowledged()
        for message, problem in ready.undecodable:
            await self._dead_letter(message, problem, ready.when)
        await consumer.commit(ready.offsets)
        log.debug("contract.delivered", records=len(ready.outgoing), consumed=ready.consumed)
        if failed is not None:
            raise failed
        return len(ready.outgoing)

    async def _dead_letter(self, message: Any, exc: ContractError, when: datetime) -> None:
        """Write a raw record that is no event to ``<topic>.dlq.<group>``, before the commit."""
        if self._dlq is None:
            raise LifecycleError("the contract service's dead letter writer is not started")
        cause = await self._dlq.write(message, exc, attempts=1, first_failure=when)
        log.warning(
            "contract.dead_lettered",
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            dlq=dlq_topic(message.topic, self._group_id),
            error=cause.error_class,
        )

    def _lost_idempotence(self) -> None:
        self._stale_producer = True

    async def _renew_producer(self, old: AIOKafkaProducer) -> AIOKafkaProducer:
        """A new producer (a new producer id) for one whose sequence the broker refused."""
        self._producer = producer = await self._new_producer()
        self._stale_producer = False
        log.warning("contract.producer_renewed", reason="idempotence state lost")
        await close_client(old)
        return producer

    def _subject(self, incoming: IncomingEvent, key: str) -> str:
        """The ledger subject of ``incoming``: of its NIK, else of its aggregate key."""
        nik = getattr(incoming.event, "nik", None)
        if isinstance(nik, str) and nik:
            return self._subjects.subject(nik)
        return self._other_subjects(key)

    def _active(self, route: Route, today: date) -> bool:
        """True when ``route``'s subscription is active; an expired one is logged once."""
        if route.active(today):
            return True
        if route.subscriber in self._expired_logged:
            return False
        self._expired_logged.add(route.subscriber)
        log.warning(
            "contract.subscription_expired",
            subscriber=route.subscriber,
            expires=route.subscription.expires.isoformat(),
        )
        return False

    def __repr__(self) -> str:
        return (
            f"ContractService(group_id={self._group_id!r}, routes={len(self.routes)}, "
            "secrets=**********)"
        )
