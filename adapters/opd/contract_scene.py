"""The demo's subscription contracts: projected topics, the ledger, and what it shows.

The contract service (``deploy/adapters/contracts.yaml``) runs beside the OPD adapters:
it alone reads Disdukcapil's raw topic, and writes each active subscription of
``deploy/catalog.yaml`` its projected copy (``<raw topic>.for.<subscriber>``), recording
every delivery in the ledger first. The demo makes every topic the service and the
subscribers need (a local cluster does not create topics on use, and a subscriber may
not), gives the ledger its table, and at the end shows:

* the columns of DPMPTSP's replica (only what its contract allows: no No. KK) and of
  Dinsos's DTSEN register (No. KK included, as its contract allows);
* the ledger's answer to ``spbe-bus ledger who-received`` for the demo resident: which
  OPDs received her data, how often, under which agreement.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from adapters.db import create_engine
from adapters.ledger import LedgerStore, create_ledger_table
from bus.delivery import dlq_topic
from bus.ops.api_clients import gateway_dead_letter_topics
from bus.ops.catalog import Catalog, Subscription
from bus.ops.contract_topics import contract_service_dead_letter_topics, subscribed_topics

__all__ = [
    "ContractView",
    "ReceivedBy",
    "active_subscriptions",
    "demo_topics",
    "prepare_ledger",
    "table_columns",
    "who_received",
]

#: Partitions of the demo's event and projected topics (the catalogue's are for years).
EVENT_PARTITIONS = 3
DEAD_LETTER_PARTITIONS = 1


@dataclass(frozen=True)
class ReceivedBy:
    """One line of the ledger's answer: an OPD's subscription and what it received."""

    opd: str
    subscriber: str
    deliveries: int
    kinds: tuple[str, ...]
    legal_basis: str


@dataclass(frozen=True)
class ContractView:
    """What the demo shows of the contracts once the story has run."""

    #: Columns of DPMPTSP's ``penduduk_replika`` and of Dinsos's ``penduduk_dtsen``.
    dpmptsp_columns: tuple[str, ...]
    dinsos_columns: tuple[str, ...]
    #: Who received the demo resident's data, by the ledger.
    who_received: tuple[ReceivedBy, ...]

    @property
    def ok(self) -> bool:
        """DPMPTSP holds no No. KK, Dinsos does, and the ledger names who received her."""
        return (
            "no_kk" not in self.dpmptsp_columns
            and "no_kk" in self.dinsos_columns
            and bool(self.who_received)
        )


def active_subscriptions(catalog: Catalog, today: date) -> list[Subscription]:
    """The catalogue's subscriptions whose ``expires`` day has not passed."""
    return [sub for sub in catalog.subscriptions if sub.expires >= today]


def demo_topics(catalog: Catalog, today: date) -> dict[str, int]:
    """Every topic of the demo -> its partitions: raw, projected and dead letter topics.

    The raw topics of the catalogue, the projected topic of each active subscription and
    its dead letter topic, and the contract service's and the REST gateway's dead letter
    topics.
    """
    topics = dict.fromkeys((t.name for t in catalog.topics), EVENT_PARTITIONS)
    entries = subscribed_topics(catalog, active_subscriptions(catalog, today))
    for entry in entries:
        topics[entry.topic] = EVENT_PARTITIONS
        topics[dlq_topic(entry.topic, entry.subscriber)] = DEAD_LETTER_PARTITIONS
    for name in contract_service_dead_letter_topics(entries):
        topics[name] = DEAD_LETTER_PARTITIONS
    for _, name in gateway_dead_letter_topics(catalog):
        topics[name] = DEAD_LETTER_PARTITIONS
    return topics


def prepare_ledger(url: str) -> None:
    """Give the ledger database its append-only table (as its owner does once)."""
    engine = create_engine(url)
    try:
        create_ledger_table(engine)
    finally:
        engine.dispose()


def table_columns(engine: Engine, table: str) -> tuple[str, ...]:
    """The columns of ``table``, in the database's order (none if it does not exist)."""
    inspector = sa.inspect(engine)
    if not inspector.has_table(table):
        return ()
    return tuple(str(column["name"]) for column in inspector.get_columns(table))


def who_received(ledger_url: str, secret: bytes, nik: str) -> tuple[ReceivedBy, ...]:
    """The ledger's answer for ``nik``: one line per subscription that received her data."""
    store = LedgerStore.from_url(ledger_url, secret)
    try:
        answer = store.who_received(nik)
    finally:
        store.close()
    kinds: dict[str, set[str]] = {}
    for entry in answer.entries:
        kinds.setdefault(entry.subscriber, set()).add(entry.kind.value)
    return tuple(
        ReceivedBy(
            opd=line.opd,
            subscriber=line.subscriber,
            deliveries=line.deliveries,
            kinds=tuple(sorted(kinds.get(line.subscriber, ()))),
            legal_basis="; ".join(basis for _, basis in line.agreements),
        )
        for line in answer.subscribers
    )
