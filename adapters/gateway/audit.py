"""The gateway's audit trail: one ``_spbe.audit`` record per API call, written in batches.

A call's record names the client, the endpoint (its route template, never the path: a
path may hold a NIK), the outcome (status and problem name), how many persons the answer
carried, and the subscription with its purpose and legal basis. Requests do not wait for
the broker: :meth:`ApiAudit.record` queues the record and one task writes what is queued
in batches (:meth:`bus.ops.audit.AuditLog.record_many`), so auditing every GET costs no
round trip. :meth:`ApiAudit.stop` writes what is still queued. When the queue is full or
the broker refuses, the loss is logged (``gateway.audit_lost``) and counted
(``spbe_gateway_audit_lost_total``), never hidden.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from prometheus_client import Counter

from bus.connection import KafkaConnection
from bus.errors import BusError
from bus.lifecycle import Lifecycle
from bus.logs import get_logger
from bus.ops.audit import AUDIT_TOPIC, AuditLog, AuditRecord, new_record

__all__ = ["API_CALL_ACTION", "ApiAudit", "ApiCall"]

log = get_logger("adapters.gateway.audit")

API_CALL_ACTION: Final = "api.call"
_MAX_QUEUED: Final = 50_000
_MAX_BATCH: Final = 1_000

AUDIT_LOST = Counter(
    "spbe_gateway_audit_lost_total",
    "API call audit records that could not be written to the audit topic",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiCall:
    """What the audit trail keeps of one call (no personal data, no submitted values)."""

    client: str
    method: str
    endpoint: str
    status: int
    outcome: str
    persons: int = 0
    subscription: str | None = None
    purpose: str | None = None
    legal_basis: str | None = None
    topics: tuple[str, ...] = ()
    details: Mapping[str, Any] | None = None

    def to_record(self) -> AuditRecord:
        return new_record(
            API_CALL_ACTION,
            principal=self.client,
            subscriber=self.subscription or self.client,
            topics=self.topics,
            parameters={"method": self.method, "endpoint": self.endpoint, **(self.details or {})},
            result={
                "status": self.status,
                "outcome": self.outcome,
                "persons": self.persons,
                "subscription": self.subscription,
                "purpose": self.purpose,
                "legal_basis": self.legal_basis,
            },
        )


class ApiAudit(Lifecycle):
    """Queues API call records and writes them to ``topic`` in batches."""

    def __init__(self, kafka: KafkaConnection, *, topic: str = AUDIT_TOPIC) -> None:
        self._log = AuditLog(kafka, topic=topic)
        self._queue: asyncio.Queue[AuditRecord] = asyncio.Queue(maxsize=_MAX_QUEUED)
        self._writer: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._writer is not None:
            return
        await self._log.start()
        self._writer = asyncio.create_task(self._write_forever(), name="gateway-audit")

    async def stop(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            while not self._queue.empty():
                await self._write(self._drain())
        await self._log.stop()

    def record(self, call: ApiCall) -> None:
        """Queue ``call``'s record; never blocks a request."""
        try:
            self._queue.put_nowait(call.to_record())
        except asyncio.QueueFull:
            AUDIT_LOST.inc()
            log.error("gateway.audit_lost", records=1, cause="the audit queue is full")

    def _drain(self) -> list[AuditRecord]:
        batch: list[AuditRecord] = []
        while len(batch) < _MAX_BATCH and not self._queue.empty():
            batch.append(self._queue.get_nowait())
        return batch

    async def _write_forever(self) -> None:
        while True:
            first = await self._queue.get()
            await self._write([first, *self._drain()])

    async def _write(self, batch: list[AuditRecord]) -> None:
        if not batch:
            return
        try:
            await self._log.record_many(batch)
        except BusError as exc:
            AUDIT_LOST.inc(len(batch))
            log.error("gateway.audit_lost", records=len(batch), cause=exc.message)
