"""From a delivery to a :class:`Change`: the key and column values, fitted to the table.

:func:`plan_rows` works out, once per event type when the sink starts, how its events
become a row: which field feeds which column, and how each value is fitted to its
column; :meth:`RowPlan.change` then only reads and fits the values of one event.

Values take the column's type: enum symbols become text, instants become UTC (naive for a
column without a time zone), and a value for a text column is written as text. Before any
SQL runs, each value is checked against its column (length, digits, NOT NULL), so an event
the table cannot hold is refused with the column named, the same way on every database,
SQLite included (which would store a too long value silently). Messages name fields,
columns and lengths, never values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from enum import Enum
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel

from adapters.sinks.sql.config import EventMapping, MappingAction
from adapters.sinks.sql.failures import RejectedEventError
from adapters.sinks.sql.fields import reader
from adapters.sinks.sql.tables import SinkTables
from bus.delivery import Delivery

__all__ = ["Change", "RowPlan", "plan_change", "plan_rows"]

#: Fits a value (from ``source``, e.g. ``field nik``) to a column, or raises _Refused.
_Fit = Callable[[object, str], object]


@dataclass(frozen=True, slots=True)
class Change:
    """What one delivery asks of the target table."""

    index: int
    delivery: Delivery
    action: MappingAction
    key: object
    values: Mapping[str, object]

    @property
    def dedupe_key(self) -> tuple[str, str]:
        return self.delivery.dedupe_key

    @property
    def sequence(self) -> int | None:
        return self.delivery.sequence

    @property
    def event_name(self) -> str:
        return self.delivery.event.event_name


class _Refused(Exception):
    """A value its column cannot hold: the column, what is wrong, and the fix."""

    def __init__(self, column: str, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.column = column
        self.problem = problem
        self.fix = fix


@dataclass(frozen=True, slots=True)
class _Feed:
    """One column fed from one event field."""

    column: str
    source: str
    read: Callable[[BaseModel], object]
    fit: _Fit


@dataclass(frozen=True, slots=True)
class RowPlan:
    """How the events of one type become a row: built once, when the sink starts."""

    action: MappingAction
    table: str
    key: _Feed
    columns: tuple[_Feed, ...]
    #: The ``set`` constants, already fitted to their columns.
    constants: Mapping[str, object]
    #: A constant its column cannot hold: then every event of the type is refused.
    refused: _Refused | None = None

    def change(self, index: int, delivery: Delivery) -> Change:
        """The change ``delivery`` makes; :class:`RejectedEventError` if the table refuses it."""
        event = delivery.event
        try:
            key = self.key.fit(self.key.read(event), self.key.source)
            values = {feed.column: feed.fit(feed.read(event), feed.source) for feed in self.columns}
            if self.refused is not None:
                raise self.refused
        except _Refused as refused:
            envelope = delivery.envelope
            raise RejectedEventError(
                f"{event.event_name} {envelope.id} cannot be written to {self.table}: "
                f"{refused.problem}",
                fix=refused.fix,
                index=index,
                event_id=envelope.id,
                column=refused.column,
            ) from None
        values |= self.constants
        return Change(index=index, delivery=delivery, action=self.action, key=key, values=values)


def plan_rows(mapping: EventMapping, tables: SinkTables) -> RowPlan:
    """The plan for events mapped by ``mapping`` into ``tables.target``."""
    target = tables.target
    key = _Feed(tables.key.name, f"field {mapping.key}", reader(mapping.key), _fitter(tables.key))
    columns = tuple(
        _Feed(column, f"field {path}", reader(path), _fitter(target.c[column]))
        for column, path in mapping.columns.items()
    )
    constants: dict[str, object] = {}
    refused: _Refused | None = None
    for column, constant in mapping.set_.items():
        try:
            constants[column] = _fitter(target.c[column])(constant, f"set.{column}")
        except _Refused as error:
            refused = refused or error
    return RowPlan(mapping.action, target.fullname, key, columns, constants, refused)


def plan_change(
    index: int, delivery: Delivery, mapping: EventMapping, tables: SinkTables
) -> Change:
    """The change ``delivery`` makes, planning its rows for this one use (see :func:`plan_rows`)."""
    return plan_rows(mapping, tables).change(index, delivery)


# -- fitting values to columns ---------------------------------------------------------------


def _fitter(column: sa.Column[Any]) -> _Fit:
    """The function fitting values to ``column``, chosen once from its type."""
    kind = column.type
    required = not column.nullable and column.server_default is None
    fit_value: _Fit
    if isinstance(kind, sa.String):
        fit_value = _text_fitter(column.name, kind.length)
    elif isinstance(kind, sa.DateTime):
        timezone = bool(kind.timezone)

        def fit_value(value: object, _source: str) -> object:
            return _instant(value, timezone=timezone)
    elif isinstance(kind, sa.Date):

        def fit_value(value: object, _source: str) -> object:
            return value.astimezone(UTC).date() if isinstance(value, datetime) else value
    elif isinstance(kind, sa.Numeric) and not isinstance(kind, sa.Float):
        fit_value = _digits_fitter(column.name, kind)
    else:

        def fit_value(value: object, _source: str) -> object:
            return value

    def fit(value: object, source: str) -> object:
        if isinstance(value, Enum):
            value = value.value
        if value is None:
            if required:
                raise _Refused(
                    column.name,
                    f"{source} is empty in this event, and column {column.name} is NOT NULL",
                    "make the column nullable, or map a field every event carries",
                )
            return None
        return fit_value(value, source)

    return fit


def _text_fitter(name: str, length: int | None) -> _Fit:
    def fit(value: object, source: str) -> object:
        if isinstance(value, datetime):
            text = value.astimezone(UTC).isoformat()
        elif isinstance(value, date):
            text = value.isoformat()
        elif isinstance(value, bool):
            text = "true" if value else "false"
        else:
            text = str(value)
        if length is not None and len(text) > length:
            raise _Refused(
                name,
                f"{source} is {len(text)} characters long in this event, and column "
                f"{name} holds at most {length}",
                f"widen the column (e.g. to varchar({max(len(text), 255)})), or map a shorter "
                "field",
            )
        return text

    return fit


def _digits_fitter(name: str, kind: sa.Numeric[Any]) -> _Fit:
    precision, scale = kind.precision, kind.scale or 0

    def fit(value: object, source: str) -> object:
        if precision is None or not isinstance(value, Decimal | int):
            return value
        integral = abs(int(value))
        whole = len(str(integral)) if integral else 0
        if whole > precision - scale:
            raise _Refused(
                name,
                f"{source} has {whole} digits before the point in this event, and column "
                f"{name} (numeric({precision},{scale})) holds at most {precision - scale}",
                "widen the column's precision",
            )
        return value

    return fit


def _instant(value: object, *, timezone: bool) -> object:
    if isinstance(value, datetime):
        moment = value.astimezone(UTC)
    elif isinstance(value, date):
        moment = datetime.combine(value, time(), tzinfo=UTC)
    else:
        return value
    return moment if timezone else moment.replace(tzinfo=None)
