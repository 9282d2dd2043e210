"""A subscriber's dead letter topics: created at start, written with the cause in headers.

Each subscriber has one dead letter topic per topic it consumes,
``<topic>.dlq.<subscriber>`` (:func:`bus.delivery.dlq_topic`). A dead letter is the
original record (value, key, headers) plus ``dlq_*`` headers naming the cause; it is
written with an idempotent ``acks=all`` producer, retried while Kafka is away, and an
offset is committed only after its dead letter was acknowledged.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from bus.connection import KafkaConnection, as_connection
from bus.delivery import DeadLetterCause, dead_letter_headers, dlq_topic
from bus.errors import DeliveryError, LifecycleError
from bus.lifecycle import Lifecycle
from bus.startup import start_client
from bus.topics import ensure_topics

__all__ = ["DeadLetterWriter"]

_SEND_ATTEMPTS = 5


class DeadLetterWriter(Lifecycle):
    """Writes ``subscriber``'s dead letters for ``topics``; ``start`` creates their topics."""

    def __init__(
        self,
        kafka: KafkaConnection | str,
        subscriber: str,
        topics: Sequence[str],
        *,
        replication_factor: int | None = None,
        start_timeout_s: float | None = None,
    ) -> None:
        self.connection = as_connection(kafka)
        self.bootstrap_servers = self.connection.bootstrap_servers
        self.subscriber = subscriber
        self.topics = tuple(topics)
        self._replication_factor = replication_factor
        self._start_timeout_s = start_timeout_s
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        if self._producer is not None:
            return
        connection = self.connection
        bootstrap = connection.bootstrap_servers
        await ensure_topics(
            connection,
            {dlq_topic(t, self.subscriber): 1 for t in self.topics},
            replication_factor=self._replication_factor,
            timeout_s=self._start_timeout_s,
        )
        self._producer = await start_client(
            lambda: AIOKafkaProducer(
                **connection.aiokafka_options(), acks="all", enable_idempotence=True, linger_ms=5
            ),
            "start the dead letter producer",
            bootstrap_servers=bootstrap,
            security=connection.security,
            timeout_s=self._start_timeout_s,
        )

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def write(
        self,
        record: ConsumerRecord[bytes, bytes],
        exc: BaseException,
        *,
        attempts: int,
        first_failure: datetime,
    ) -> DeadLetterCause:
        """Write ``record`` with the cause ``exc``; return the cause once Kafka has it.

        Raises :class:`~bus.errors.DeliveryError` when Kafka does not take it after
        retries: the caller must then leave the record's offset uncommitted.
        """
        producer = self._producer
        if producer is None:
            raise LifecycleError("the dead letter writer is not started")
        cause = DeadLetterCause.of(
            exc,
            attempts=attempts,
            first_failure=first_failure,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            subscriber=self.subscriber,
        )
        target = dlq_topic(record.topic, self.subscriber)
        headers = dead_letter_headers(list(record.headers), cause)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(_SEND_ATTEMPTS),
            wait=wait_exponential_jitter(multiplier=0.5, max=10),
            retry=retry_if_exception(lambda e: isinstance(e, KafkaError)),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    await producer.send_and_wait(
                        target, record.value, key=record.key, headers=headers
                    )
        except KafkaError as send_error:
            raise DeliveryError(
                f"could not write {record.topic}[{record.partition}]@{record.offset} to the dead "
                f"letter topic {target}: {send_error}; its offset stays uncommitted",
                fix="check the broker and that the subscriber may write to its dead letter topic",
            ) from send_error
        return cause
