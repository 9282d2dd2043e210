"""ReadModels: what the gateway answers GET requests from, kept as a subscriber of projections.

    models = ReadModels.from_url("sqlite:///spbe-gateway.db")
    models.create_tables()
    async with Subscriber(config, models, batch_handler=models.apply_batch) as subscriber:
        await subscriber.run_until_signal()
    models.person("dpmptsp-penduduk", nik)

The gateway reads each API client's projected topics (``<raw topic>.for.<subscriber>``,
:mod:`bus.contract.projected_names`); an event's payload holds only its subscription's
``allowed_fields``, and a row is stored under that subscription and read back only by it.

- PendudukUpdated upserts (subscriber, nik): the projected event's JSON as ``document``,
  ``kode_wilayah`` from ``alamat.kode_wilayah`` when projected (else NULL).
- KematianDicatat sets ``kematian`` on the same row, creating it for a resident not known
  so far.
- PajakDaerahDibayar upserts (subscriber, ntpd), ``nop`` from ``objek.nop`` when projected.

Documents are the events' JSON form (:meth:`~bus.contract.event_base.SpbeEvent.to_json`):
decimals and dates read back exactly as ``schemas/avro/examples`` writes them. The version
guard is :mod:`adapters.gateway.readmodels_apply`'s. An event whose projection lacks the
row's key (a subscription without ``nik``) or of another type changes nothing and is
reported :attr:`~bus.delivery.Outcome.APPLIED` (its offset may be committed). An event
read from a topic that is not projected, or whose contract names another subscription than
its topic, is refused with :class:`~bus.errors.PermanentError` (dead-lettered).
Logs carry event ids, subscriber ids and coordinates, never a NIK, NTPD or name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from adapters.db import create_engine, run_sync
from adapters.gateway.readmodels_apply import Part, RowChange, Verdict, apply_changes
from adapters.gateway.readmodels_queries import (
    DEFAULT_PAGE_LIMIT,
    MAX_PAGE_LIMIT,
    Page,
    PaymentView,
    PersonView,
    ReadModelQueryError,
    query_payments,
    query_people,
    query_person,
)
from adapters.gateway.readmodels_tables import (
    ReadModelTables,
    create_read_model_tables,
    read_model_tables,
)
from bus.contract.projected_names import parse_projected_topic
from bus.delivery import Delivery, Outcome
from bus.errors import ContractError, PermanentError
from bus.logs import get_logger

__all__ = [
    "DEFAULT_DATABASE_URL",
    "DEFAULT_PAGE_LIMIT",
    "MAX_PAGE_LIMIT",
    "Page",
    "PaymentView",
    "PersonView",
    "ReadModelQueryError",
    "ReadModels",
    "delivery_subscriber",
]

log = get_logger(__name__)

DEFAULT_DATABASE_URL = "sqlite:///spbe-gateway.db"

#: event type -> (the part it writes, the field holding the row's key, the path of its ref)
_PLANS: dict[str, tuple[Part, str, tuple[str, str] | None]] = {
    "PendudukUpdated": (Part.PERSON, "nik", ("alamat", "kode_wilayah")),
    "KematianDicatat": (Part.DEATH, "nik", None),
    "PajakDaerahDibayar": (Part.PAYMENT, "ntpd", ("objek", "nop")),
}


def _utc_now() -> datetime:
    return datetime.now(UTC)


def delivery_subscriber(delivery: Delivery) -> str:
    """The subscription ``delivery`` was delivered under: its projected topic's subscriber.

    Raises :class:`~bus.errors.PermanentError` when the topic is not a projected topic, or
    when the delivery's contract header names another subscription than the topic.
    """
    try:
        subscriber = parse_projected_topic(delivery.topic).subscriber
    except ContractError:
        raise PermanentError(
            f"topic {delivery.topic} is not a projected topic "
            "(<raw topic>.for.<subscriber>); the gateway keeps read models of projections only",
            fix="subscribe the gateway to the projected topics of its API clients' "
            "subscriptions (bus.ops.api_clients.gateway_read_topics)",
        ) from None
    contract = delivery.contract
    if contract is not None and contract.subscription != subscriber:
        raise PermanentError(
            f"the event's ce_subscription {contract.subscription} is not the subscriber "
            f"{subscriber} of its topic {delivery.topic}",
            fix="deliver through the contract service, which sets ce_subscription to the "
            "topic's subscriber",
        )
    return subscriber


def _where(delivery: Delivery, subscriber: str) -> dict[str, object]:
    return {
        "subscriber": subscriber,
        "event_id": delivery.envelope.id,
        "type": delivery.event.event_name,
        "topic": delivery.topic,
        "partition": delivery.partition,
        "offset": delivery.offset,
        "sequence": delivery.sequence,
    }


class ReadModels:
    """The gateway's read models on ``engine``: a subscriber's handler and the GET queries.

    Call :meth:`create_tables` once before use. ``clock`` gives ``updated_at`` (UTC).
    """

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] = _utc_now) -> None:
        self.engine = engine
        self.tables: ReadModelTables = read_model_tables()
        self._clock = clock

    @classmethod
    def from_url(cls, url: str = DEFAULT_DATABASE_URL) -> ReadModels:
        """Read models on a new engine for ``url``.

        A SQLite file is put in write-ahead-log mode, so GET requests read while events
        are written, each reader seeing the last committed batch.
        """
        engine = create_engine(url)
        if engine.dialect.name == "sqlite":
            sa.event.listen(engine, "connect", _write_ahead_log)
        return cls(engine)

    def create_tables(self) -> None:
        """Create the read-model tables and indexes where missing."""
        create_read_model_tables(self.engine, self.tables)

    def dispose(self) -> None:
        """Close the engine's pooled connections."""
        self.engine.dispose()

    # -- applying --------------------------------------------------------------------------

    async def __call__(self, delivery: Delivery) -> Outcome | None:
        """Apply one delivery (a :data:`~bus.delivery.Handler`)."""
        (outcome,) = await self.apply_batch([delivery])
        return outcome

    async def apply_batch(self, deliveries: Sequence[Delivery]) -> Sequence[Outcome | None]:
        """Apply ``deliveries`` in order in one transaction; one outcome per delivery.

        All or nothing: when one delivery is refused (a topic that is not projected) or
        the database fails, nothing of the batch is committed and the error is raised.
        """
        outcomes: list[Outcome | None] = [Outcome.APPLIED] * len(deliveries)
        changes: list[tuple[int, RowChange, dict[str, object]]] = []
        for index, delivery in enumerate(deliveries):
            subscriber = delivery_subscriber(delivery)
            where = _where(delivery, subscriber)
            change = self._change(delivery, subscriber, where)
            if change is not None:
                changes.append((index, change, where))
        if not changes:
            return outcomes
        verdicts = await run_sync(
            apply_changes, self.engine, self.tables, [c for _, c, _ in changes], self._clock()
        )
        for (index, _, where), verdict in zip(changes, verdicts, strict=True):
            if verdict is Verdict.DUPLICATE:
                outcomes[index] = Outcome.DUPLICATE
                log.debug("readmodels.duplicate", **where)
            elif verdict is Verdict.STALE:
                log.info("readmodels.stale", **where)
            else:
                log.debug("readmodels.applied", **where)
        return outcomes

    def _change(
        self, delivery: Delivery, subscriber: str, where: dict[str, object]
    ) -> RowChange | None:
        event = delivery.event
        plan = _PLANS.get(event.event_name)
        if plan is None:
            log.debug("readmodels.ignored", **where)
            return None
        part, key_field, ref_path = plan
        document = event.to_json()
        key = document.get(key_field)
        if not isinstance(key, str) or not key:
            # The subscription does not receive the row's key: nothing to file it under.
            log.debug("readmodels.skipped", reason=f"projection holds no {key_field}", **where)
            return None
        return RowChange(
            part=part,
            subscriber=subscriber,
            key=key,
            document=document,
            ref=_ref(document, ref_path),
            event_id=delivery.envelope.id,
            event_type=event.event_name,
            sequence=delivery.sequence,
        )

    # -- queries (sync: the HTTP layer runs them with adapters.db.run_sync) ----------------

    def person(self, subscriber: str, nik: str) -> PersonView | None:
        """The resident ``nik`` as ``subscriber`` sees them, or None when not delivered."""
        with self.engine.connect() as conn:
            return query_person(conn, self.tables, subscriber, nik)

    def people(
        self,
        subscriber: str,
        kode_wilayah_prefix: str,
        *,
        limit: int = DEFAULT_PAGE_LIMIT,
        after: str | None = None,
    ) -> Page[PersonView]:
        """Residents of ``subscriber`` in a Kemendagri region (whole segments), page by page.

        Raises :class:`ReadModelQueryError` for a limit out of range, a code that is not a
        Kemendagri code, or a cursor that is not this list's.
        """
        with self.engine.connect() as conn:
            return query_people(
                conn, self.tables, subscriber, kode_wilayah_prefix, limit=limit, after=after
            )

    def payments(
        self,
        subscriber: str,
        *,
        ntpd: str | None = None,
        nop: str | None = None,
        limit: int = DEFAULT_PAGE_LIMIT,
        after: str | None = None,
    ) -> Page[PaymentView]:
        """Payments of ``subscriber`` by NTPD or NOP (all when neither), page by page."""
        with self.engine.connect() as conn:
            return query_payments(
                conn, self.tables, subscriber, ntpd=ntpd, nop=nop, limit=limit, after=after
            )

    def __repr__(self) -> str:
        url = sa.engine.make_url(self.engine.url).render_as_string(hide_password=True)
        return f"ReadModels({url!r})"


def _write_ahead_log(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
    finally:
        cursor.close()


def _ref(document: dict[str, Any], path: tuple[str, str] | None) -> str | None:
    if path is None:
        return None
    outer = document.get(path[0])
    value = outer.get(path[1]) if isinstance(outer, dict) else None
    return value if isinstance(value, str) else None
