"""From a delivery to a :class:`Change`: the key and column values, fitted to the table.

Values take the column's type: enum symbols become text, instants become UTC (naive for a
column without a time zone), and a value for a text column is written as text. Before any
SQL runs, each value is checked against its column (length, digits, NOT NULL), so an event
the table cannot hold is refused with the column named, the same way on every database,
SQLite included (which would store a too long value silently). Messages name fields,
columns and lengths, never values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from enum import Enum
from typing import Any

import sqlalchemy as sa

from adapters.sinks.sql.config import EventMapping, MappingAction
from adapters.sinks.sql.failures import RejectedEventError
from adapters.sinks.sql.fields import read
from adapters.sinks.sql.tables import SinkTables
from bus.delivery import Delivery

__all__ = ["Change", "plan_change"]


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


def plan_change(
    index: int, delivery: Delivery, mapping: EventMapping, tables: SinkTables
) -> Change:
    """The change ``delivery`` makes; :class:`RejectedEventError` if the table cannot hold it."""
    event = delivery.event
    fit = _Fitter(index, delivery, tables.target)
    key = fit(read(event, mapping.key), tables.key, f"field {mapping.key}")
    values = {
        column: fit(read(event, path), tables.target.c[column], f"field {path}")
        for column, path in mapping.columns.items()
    }
    values |= {
        column: fit(constant, tables.target.c[column], f"set.{column}")
        for column, constant in mapping.set_.items()
    }
    return Change(index=index, delivery=delivery, action=mapping.action, key=key, values=values)


class _Fitter:
    """Converts values for columns and refuses those a column cannot hold."""

    def __init__(self, index: int, delivery: Delivery, table: sa.Table) -> None:
        self._index = index
        self._delivery = delivery
        self._table = table.fullname

    def __call__(self, value: object, column: sa.Column[Any], source: str) -> object:
        if isinstance(value, Enum):
            value = value.value
        if value is None:
            if not column.nullable and column.server_default is None:
                raise self._reject(
                    column,
                    f"{source} is empty in this event, and column {column.name} is NOT NULL",
                    "make the column nullable, or map a field every event carries",
                )
            return None
        kind = column.type
        if isinstance(kind, sa.String):
            return self._text(value, column, kind.length, source)
        if isinstance(kind, sa.DateTime):
            return _instant(value, timezone=bool(kind.timezone))
        if isinstance(kind, sa.Date) and isinstance(value, datetime):
            return value.astimezone(UTC).date()
        if isinstance(kind, sa.Numeric) and not isinstance(kind, sa.Float):
            self._check_digits(value, column, kind, source)
        return value

    def _text(self, value: object, column: sa.Column[Any], length: int | None, source: str) -> str:
        if isinstance(value, datetime):
            text = value.astimezone(UTC).isoformat()
        elif isinstance(value, date):
            text = value.isoformat()
        elif isinstance(value, bool):
            text = "true" if value else "false"
        else:
            text = str(value)
        if length is not None and len(text) > length:
            raise self._reject(
                column,
                f"{source} is {len(text)} characters long in this event, and column "
                f"{column.name} holds at most {length}",
                f"widen the column (e.g. to varchar({max(len(text), 255)})), or map a shorter "
                "field",
            )
        return text

    def _check_digits(
        self, value: object, column: sa.Column[Any], kind: sa.Numeric[Any], source: str
    ) -> None:
        if kind.precision is None or not isinstance(value, Decimal | int):
            return
        scale = kind.scale or 0
        integral = abs(int(value))
        whole = len(str(integral)) if integral else 0
        if whole > kind.precision - scale:
            raise self._reject(
                column,
                f"{source} has {whole} digits before the point in this event, and column "
                f"{column.name} (numeric({kind.precision},{scale})) holds at most "
                f"{kind.precision - scale}",
                "widen the column's precision",
            )

    def _reject(self, column: sa.Column[Any], problem: str, fix: str) -> RejectedEventError:
        envelope = self._delivery.envelope
        return RejectedEventError(
            f"{self._delivery.event.event_name} {envelope.id} cannot be written to "
            f"{self._table}: {problem}",
            fix=fix,
            index=self._index,
            event_id=envelope.id,
            column=column.name,
        )


def _instant(value: object, *, timezone: bool) -> object:
    if isinstance(value, datetime):
        moment = value.astimezone(UTC)
    elif isinstance(value, date):
        moment = datetime.combine(value, time(), tzinfo=UTC)
    else:
        return value
    return moment if timezone else moment.replace(tzinfo=None)
