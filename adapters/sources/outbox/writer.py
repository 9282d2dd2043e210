"""Write an event into the outbox from a SQLAlchemy application, in its own transaction.

    with engine.begin() as conn:
        conn.execute(penduduk.update().where(...).values(...))     # the business change
        add_to_outbox(conn, event, aggregate_id=event.nik, sequence=versi)

Both rows commit together or not at all; the relay publishes the event afterwards. With
an ORM ``Session``, pass ``session.connection()``. Write the business change first: it
locks the aggregate's row, so two transactions changing one aggregate get outbox ids in
the order they commit.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from pydantic_core import PydanticSerializationError
from sqlalchemy.engine import Connection

from adapters.sources.outbox.config import DEFAULT_TABLE
from adapters.sources.outbox.rows import valid_event_id
from adapters.sources.outbox.table import outbox_table
from bus.contract.envelope import new_event_id
from bus.contract.events import EVENT_TYPES, SpbeEvent
from bus.errors import ContractError

__all__ = ["add_to_outbox"]

_tables: dict[str, sa.Table] = {}


def _table(name: str) -> sa.Table:
    if name not in _tables:
        _tables[name] = outbox_table(name)
    return _tables[name]


def add_to_outbox(
    connection: Connection,
    event: SpbeEvent,
    *,
    aggregate_id: str,
    sequence: int | None = None,
    event_id: str | None = None,
    table: str = DEFAULT_TABLE,
) -> str:
    """Insert ``event`` into the outbox in ``connection``'s transaction; return its event id.

    The event is validated again before it is stored (a model built without validation,
    or copied with changes, is refused with :class:`~bus.errors.EventValidationError`
    naming the fields), and stored as plain JSON. ``aggregate_id`` orders the events of
    one aggregate (the NIK, the nomor izin); ``sequence`` is the aggregate's version.
    ``event_id`` defaults to a new UUIDv7; one given must be a UUIDv7
    (:class:`RowRejected` otherwise).
    """
    if EVENT_TYPES.get(event.event_name) is not type(event):
        raise ContractError(f"{type(event).__name__} is not an event type of the standard")
    try:
        as_json = event.to_json()
    except PydanticSerializationError:
        raise ContractError(
            f"{event.event_name} cannot be written as JSON: a value has the wrong type",
            fix=f"build the event with {event.event_name}.from_json(...)",
        ) from None
    payload = type(event).from_json(as_json).to_json()
    if not aggregate_id or len(aggregate_id) > 255:
        raise ContractError("aggregate_id must be 1 to 255 characters")
    if sequence is not None and (isinstance(sequence, bool) or sequence < 0):
        raise ContractError("sequence must be a non-negative integer (the aggregate version)")
    stored_id = new_event_id() if event_id is None else valid_event_id(event_id)
    connection.execute(
        _table(table)
        .insert()
        .values(
            event_id=stored_id,
            event_type=event.event_name,
            aggregate_id=aggregate_id,
            sequence=sequence,
            payload=json.dumps(payload, ensure_ascii=False, separators=(",", ":")),
        )
    )
    return stored_id
