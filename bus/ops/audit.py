"""The audit trail of operator actions: one JSON record per action in ``_spbe.audit``.

Every replay and dead-letter command writes who did what, when, to which subscriber and
topics, with which parameters, why (``--reason``) and what came of it::

    async with AuditLog(kafka) as audit:          # the topic exists and is writable first
        result = await do_the_action()
        await audit.record(new_record("dlq.purge", subscriber="dinsos-penduduk", ...))

The topic is created when missing: one partition (records keep their order), deletion
rather than compaction (no record replaces another), and no time or size limit, so the
trail lasts until an operator decides otherwise. Records are keyed by subscriber.
Records name fields and offsets, never personal data.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from bus.connection import KafkaConnection, as_connection
from bus.contract.envelope import new_event_id
from bus.errors import BusError, KafkaRefusedError, LifecycleError
from bus.lifecycle import Lifecycle
from bus.registry.records import default_principal, utc_now
from bus.startup import start_client
from bus.topics import ensure_topics

__all__ = [
    "AUDIT_TOPIC",
    "AUDIT_TOPIC_CONFIGS",
    "AuditError",
    "AuditLog",
    "AuditRecord",
    "new_record",
    "read_audit",
]

AUDIT_TOPIC: Final = "_spbe.audit"
#: Never compacted, never expired: an audit trail is not trimmed behind the auditors' back.
AUDIT_TOPIC_CONFIGS: Final[Mapping[str, str]] = {
    "cleanup.policy": "delete",
    "retention.ms": "-1",
    "retention.bytes": "-1",
}


class AuditError(BusError):
    """The audit topic could not be created, written or read."""

    retriable = True


@dataclass(frozen=True, kw_only=True, slots=True)
class AuditRecord:
    """One operator action: who, when, what, on which subscriber and topics, why, outcome."""

    action: str
    principal: str
    subscriber: str
    topics: tuple[str, ...]
    parameters: Mapping[str, Any] = field(default_factory=dict)
    reason: str | None = None
    result: Mapping[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=new_event_id)
    at: datetime = field(default_factory=utc_now)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.astimezone(UTC).isoformat(timespec="milliseconds"),
            "principal": self.principal,
            "action": self.action,
            "subscriber": self.subscriber,
            "topics": list(self.topics),
            "parameters": dict(self.parameters),
            "reason": self.reason,
            "result": dict(self.result),
        }

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), sort_keys=True, default=str).encode("utf-8")

    @classmethod
    def from_bytes(cls, value: bytes) -> AuditRecord:
        data = json.loads(value)
        return cls(
            id=str(data["id"]),
            at=datetime.fromisoformat(data["at"]),
            principal=str(data["principal"]),
            action=str(data["action"]),
            subscriber=str(data["subscriber"]),
            topics=tuple(data.get("topics") or ()),
            parameters=dict(data.get("parameters") or {}),
            reason=data.get("reason"),
            result=dict(data.get("result") or {}),
        )


def new_record(
    action: str,
    *,
    subscriber: str,
    topics: Sequence[str],
    parameters: Mapping[str, Any] | None = None,
    reason: str | None = None,
    result: Mapping[str, Any] | None = None,
    principal: str | None = None,
) -> AuditRecord:
    """An audit record for ``action`` by ``principal`` (default ``$SPBE_PRINCIPAL``/OS user)."""
    return AuditRecord(
        action=action,
        principal=(principal or "").strip() or default_principal(),
        subscriber=subscriber,
        topics=tuple(topics),
        parameters=dict(parameters or {}),
        reason=reason,
        result=dict(result or {}),
    )


class AuditLog(Lifecycle):
    """Writes audit records; :meth:`start` creates the topic and connects before any action.

    ``kafka`` is a connection, or bootstrap servers with the ``SPBE_KAFKA_*`` security.
    """

    def __init__(self, kafka: KafkaConnection | str, *, topic: str = AUDIT_TOPIC) -> None:
        self.connection = as_connection(kafka)
        self.bootstrap_servers = self.connection.bootstrap_servers
        self.topic = topic
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        if self._producer is not None:
            return
        connection = self.connection
        bootstrap = connection.bootstrap_servers
        try:
            await ensure_topics(connection, {self.topic: 1}, configs=AUDIT_TOPIC_CONFIGS)
            producer = await start_client(
                lambda: AIOKafkaProducer(
                    **connection.aiokafka_options(), acks="all", enable_idempotence=True
                ),
                f"open the audit topic {self.topic}",
                bootstrap_servers=bootstrap,
                security=connection.security,
            )
        except (KafkaError, KafkaRefusedError) as exc:
            raise AuditError(
                f"cannot open the audit topic {self.topic} on {bootstrap}: {exc}",
                fix="check the broker, and that this principal may create and write the topic; "
                "no action is taken without its audit record",
            ) from exc
        self._producer = producer

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def record(self, entry: AuditRecord) -> int:
        """Write ``entry`` and wait for the broker's acknowledgement; returns its offset."""
        if self._producer is None:
            raise LifecycleError(
                "the audit log is not started",
                fix="use 'async with AuditLog(...)' or await audit.start() first",
            )
        try:
            meta = await self._producer.send_and_wait(
                self.topic, entry.to_bytes(), key=entry.subscriber.encode("utf-8")
            )
        except KafkaError as exc:
            raise AuditError(
                f"the action {entry.action} was carried out but its audit record could not be "
                f"written to {self.topic}: {exc}",
                fix=f"record it by hand; the action's parameters were {entry.to_json()}",
            ) from exc
        offset: int = meta.offset
        return offset

    async def record_many(self, entries: Sequence[AuditRecord]) -> None:
        """Write ``entries`` in order and wait until the broker acknowledged every one.

        For a service that audits every request: the records of many requests travel in
        one batch instead of one round trip each.
        """
        if self._producer is None:
            raise LifecycleError(
                "the audit log is not started",
                fix="use 'async with AuditLog(...)' or await audit.start() first",
            )
        producer = self._producer
        try:
            sent = [
                await producer.send(self.topic, e.to_bytes(), key=e.subscriber.encode("utf-8"))
                for e in entries
            ]
            await asyncio.gather(*sent)
        except KafkaError as exc:
            raise AuditError(
                f"{len(entries)} audit records could not be written to {self.topic}: {exc}",
                fix="check the broker and this principal's WRITE on the audit topic",
            ) from exc


async def read_audit(
    kafka: KafkaConnection | str,
    *,
    topic: str = AUDIT_TOPIC,
    subscriber: str | None = None,
    last: int | None = None,
) -> list[AuditRecord]:
    """Every audit record written so far (of ``subscriber`` when given), oldest first.

    With ``last``, only the records among the ``last`` newest offsets are read (a console
    showing the latest records reads the tail, not the whole trail).
    """
    connection = as_connection(kafka)
    consumer = await start_client(
        lambda: AIOKafkaConsumer(
            **connection.aiokafka_options(),
            enable_auto_commit=False,
            group_id=None,
            auto_offset_reset="earliest",
        ),
        "read the audit trail",
        bootstrap_servers=connection.bootstrap_servers,
        security=connection.security,
    )
    records: list[AuditRecord] = []
    try:
        tp = TopicPartition(topic, 0)
        if topic not in await consumer.topics():
            return []
        consumer.assign([tp])
        first: int = (await consumer.beginning_offsets([tp]))[tp]
        end: int = (await consumer.end_offsets([tp]))[tp]
        if last is not None:
            first = max(first, end - max(0, last))
        consumer.seek(tp, first)
        while await consumer.position(tp) < end:
            batch = await consumer.getmany(tp, timeout_ms=1000)
            for record in batch.get(tp, []):
                if record.value is None:
                    continue
                entry = AuditRecord.from_bytes(record.value)
                if subscriber is None or entry.subscriber == subscriber:
                    records.append(entry)
    finally:
        await consumer.stop()
    return records
