"""Every adapter kind in one table, keyed by the ``kind:`` of its file.

An adapter is either a **source** (it publishes what it reads: the outbox relay from an
OPD's database, the contract service from the raw topics, the REST gateway from the
applications' posts) or a **sink** (a subscriber
hands it each event: the SQL and webhook sinks). Both have the same parts: a config model
with ``from_file``, ``start``/``stop``/``async with`` (:class:`bus.lifecycle.Lifecycle`),
errors under the bus's one tree, and an ``__all__``.
A source runs its own loop (``run``/``request_stop``); a sink is a handler, and may apply
a partition's events together (``apply_batch``).

``spbe-bus run``, ``replay --mode reapply`` and ``dlq redrive`` all find an adapter here.
Adding a kind is one package under ``adapters/sources`` or ``adapters/sinks`` and one entry
in :data:`KINDS`; ``docs/architecture.md`` has the recipe.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol, Self, runtime_checkable

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from adapters.contracts.app import ContractServiceAdapter
from adapters.contracts.config import ContractServiceConfig
from adapters.gateway.config import GatewayConfig
from adapters.gateway.service import Gateway
from adapters.sinks.sql import SqlSink, SqlSinkConfig
from adapters.sinks.sql.contract import contract_problems
from adapters.sinks.webhook import WebhookSink, WebhookSinkConfig
from adapters.sources.outbox import OutboxRelay, OutboxRelayConfig
from adapters.sources.snapshot import SnapshotConfig
from bus.delivery import BatchHandler, Delivery, Outcome
from bus.ops.projections import contract_models
from bus.subscriber import SubscriberConfig

__all__ = [
    "KINDS",
    "AdapterFile",
    "ContractServiceFile",
    "GatewayFile",
    "OutboxRelayFile",
    "SinkAdapter",
    "SinkFile",
    "SinkKind",
    "SourceAdapter",
    "SourceFile",
    "SourceKind",
    "SqlSinkFile",
    "WebhookSinkFile",
    "batch_handler_of",
]


class _Managed(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class SourceAdapter(_Managed, Protocol):
    """A source: started and stopped, with a loop that publishes until asked to stop."""

    async def run(self) -> None: ...
    def request_stop(self) -> None: ...


class SinkAdapter(_Managed, Protocol):
    """A sink: started and stopped, applying one delivery per call."""

    async def __call__(self, delivery: Delivery) -> Outcome | None: ...


@runtime_checkable
class _AppliesBatches(Protocol):
    async def apply_batch(self, deliveries: Sequence[Delivery]) -> Sequence[Outcome | None]: ...


def batch_handler_of(sink: SinkAdapter) -> BatchHandler | None:
    """The sink's way to apply a partition's events in one go, if it has one."""
    return sink.apply_batch if isinstance(sink, _AppliesBatches) else None


class OutboxRelayFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["outbox-relay"]
    relay: OutboxRelayConfig
    #: The steward's day-one snapshot (``spbe-bus snapshot FILE``); ``run`` ignores it.
    snapshot: SnapshotConfig | None = None


class ContractServiceFile(BaseModel):
    """The contract service's file: its ``contracts`` section (deploy/adapters/contracts.yaml)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["contract-service"]
    contracts: ContractServiceConfig


class GatewayFile(BaseModel):
    """The REST gateway's file: its ``gateway`` section (deploy/adapters/gateway.yaml)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["gateway"]
    gateway: GatewayConfig


class SqlSinkFile(BaseModel):
    """A SQL sink's file; on projected topics its mapping is checked against the contract.

    When ``subscription.topics`` are projected topics (``<raw topic>.for.<subscriber>``),
    the catalogue (``catalog``, default ``deploy/catalog.yaml``) gives the fields the
    subscription receives, and a column mapped from any other field is refused at load.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["sql-sink"]
    subscription: SubscriberConfig
    sink: SqlSinkConfig
    #: The catalogue holding the subscription's contract (projected topics only).
    catalog: Path | None = None

    @model_validator(mode="after")
    def _within_contract(self) -> Self:
        subscriber = self.subscription.subscriber_id
        models = contract_models(self.subscription.topics, subscriber, catalog_path=self.catalog)
        if models is None:
            return self
        errors = contract_problems(self.sink, models, subscriber, loc=("sink",))
        if errors:
            raise ValidationError.from_exception_data(type(self).__name__, errors)
        return self


class WebhookSinkFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["webhook-sink"]
    subscription: SubscriberConfig
    webhook: WebhookSinkConfig


SinkFile = SqlSinkFile | WebhookSinkFile
SourceFile = OutboxRelayFile | ContractServiceFile | GatewayFile
AdapterFile = OutboxRelayFile | ContractServiceFile | GatewayFile | SqlSinkFile | WebhookSinkFile


@dataclass(frozen=True)
class SourceKind:
    """A kind of source: its file's model, and how to build the source from a file."""

    file: type[BaseModel]
    build: Callable[[Any], SourceAdapter]
    role: Literal["source"] = "source"


@dataclass(frozen=True)
class SinkKind:
    """A kind of sink: its file's model (with a ``subscription``), and how to build it."""

    file: type[BaseModel]
    build: Callable[[Any], SinkAdapter]
    role: Literal["sink"] = "sink"


def _relay(file: OutboxRelayFile) -> OutboxRelay:
    return OutboxRelay(file.relay)


def _contract_service(file: ContractServiceFile) -> ContractServiceAdapter:
    return ContractServiceAdapter(file.contracts)


def _gateway(file: GatewayFile) -> Gateway:
    return Gateway(file.gateway)


def _sql_sink(file: SqlSinkFile) -> SqlSink:
    return SqlSink(file.sink)


def _webhook_sink(file: WebhookSinkFile) -> WebhookSink:
    return WebhookSink(file.webhook)


#: ``kind:`` -> what it is. The one place that knows every adapter.
KINDS: dict[str, SourceKind | SinkKind] = {
    "outbox-relay": SourceKind(OutboxRelayFile, _relay),
    "contract-service": SourceKind(ContractServiceFile, _contract_service),
    "gateway": SourceKind(GatewayFile, _gateway),
    "sql-sink": SinkKind(SqlSinkFile, _sql_sink),
    "webhook-sink": SinkKind(WebhookSinkFile, _webhook_sink),
}
