"""The typed event a subscriber of a projection reads: exactly its allowed fields (pure).

:func:`projected_event_class` makes a pydantic model from a
:class:`~bus.contract.projection.ProjectedSchema`, one per projected schema, with a nested
model per nested record and a :class:`~enum.StrEnum` per enum. It is a
:class:`~bus.contract.event_base.SpbeEvent`, so it is built like a standard event
(``from_trusted_avro`` on the read path, without a second validation; ``from_avro`` and
``from_json`` validate), and code reading events by field path (the SQL sink's readers,
the webhook's ``to_json``) reads it as it reads the standard event.

Field types follow the Avro types as the standard models hold them: ``string`` is
``str``, ``int``/``long`` ``int``, ``date`` a :class:`~datetime.date`, ``timestamp-*`` a
:class:`~datetime.datetime`, ``decimal`` a :class:`~decimal.Decimal`, an array a tuple,
a map a dict, a union with ``null`` optional. The standard models' own rules (a NIK's 16
digits) are not repeated: a projection carries values a standard model validated already.
Personal-data fields (``spbe.pii``) are kept out of the repr, as in the standard models.
"""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar, Union
from uuid import UUID

from pydantic import Field, create_model

from bus.contract.event_base import Record, SpbeEvent
from bus.contract.projection import ProjectedSchema
from bus.contract.schema import ATTR_PII, AvroSchema

__all__ = ["ProjectedEvent", "projected_event_class"]


class ProjectedEvent(SpbeEvent):
    """Base of every projected event class; :attr:`projection` is the schema it was made from."""

    projection: ClassVar[ProjectedSchema]


_PRIMITIVES: dict[str, Any] = {
    "null": type(None),
    "boolean": bool,
    "int": int,
    "long": int,
    "float": float,
    "double": float,
    "bytes": bytes,
    "string": str,
}
_LOGICAL: dict[str, Any] = {
    "date": date,
    "time-millis": time,
    "time-micros": time,
    "timestamp-millis": datetime,
    "timestamp-micros": datetime,
    "local-timestamp-millis": datetime,
    "local-timestamp-micros": datetime,
    "decimal": Decimal,
    "uuid": UUID,
}
_CLASSES: dict[tuple[str, int], type[ProjectedEvent]] = {}


def projected_event_class(projected: ProjectedSchema) -> type[ProjectedEvent]:
    """The event model of ``projected``, made once per subscriber and projected schema."""
    cache_key = (projected.subscriber, projected.fingerprint)
    found = _CLASSES.get(cache_key)
    if found is None:
        found = _Maker(projected.schema).event(projected)
        _CLASSES[cache_key] = found
    return found


class _Maker:
    def __init__(self, schema: AvroSchema) -> None:
        self.schema = schema
        self.types: dict[str, Any] = {}  # full name -> model or enum, each made once

    def event(self, projected: ProjectedSchema) -> type[ProjectedEvent]:
        parsed = self.schema.parsed
        model: type[ProjectedEvent] = create_model(
            self.schema.record_name,
            __base__=ProjectedEvent,
            __doc__=parsed.get("doc"),
            __module__=__name__,
            **self._fields(parsed),
        )
        model.event_name = self.schema.record_name
        model.avro_name = self.schema.name
        model.projection = projected
        return model

    def _fields(self, record: dict[str, Any]) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        for spec in record["fields"]:
            annotation = self._annotation(spec["type"])
            options: dict[str, Any] = {"description": spec.get("doc")}
            if spec.get(ATTR_PII) is True:
                options |= {"repr": False, "json_schema_extra": {ATTR_PII: True}}
            if "default" in spec:
                options["default"] = _default(spec["default"])
            fields[spec["name"]] = (annotation, Field(**options))
        return fields

    def _annotation(self, avro_type: Any) -> Any:
        avro_type = self.schema.resolve(avro_type)
        if isinstance(avro_type, str):
            return _PRIMITIVES[avro_type]
        if isinstance(avro_type, list):
            branches = tuple(self._annotation(branch) for branch in avro_type)
            return branches[0] if len(branches) == 1 else Union[branches]  # noqa: UP007
        kind = avro_type["type"]
        logical = _LOGICAL.get(avro_type.get("logicalType", ""))
        if logical is not None:
            return logical
        if kind in ("record", "error", "enum"):
            return self._named(avro_type)
        if kind == "fixed":
            return bytes
        if kind == "array":
            return tuple[self._annotation(avro_type["items"]), ...]  # type: ignore[misc]
        if kind == "map":
            return dict[str, self._annotation(avro_type["values"])]  # type: ignore[misc]
        return _PRIMITIVES[kind]  # a primitive written as {"type": ...}

    def _named(self, definition: dict[str, Any]) -> Any:
        full: str = definition["name"]
        found = self.types.get(full)
        if found is not None:
            return found
        name = full.rpartition(".")[2]
        made: Any
        if definition["type"] == "enum":
            made = _enum(name, definition["symbols"])
        else:
            made = create_model(
                name,
                __base__=Record,
                __doc__=definition.get("doc"),
                __module__=__name__,
                **self._fields(definition),
            )
        self.types[full] = made
        return made


def _enum(name: str, symbols: list[str]) -> type[StrEnum]:
    """A StrEnum whose members are the symbols, each its own value (as the standard's)."""
    made: type[StrEnum] = StrEnum(name, {symbol: symbol for symbol in symbols}, module=__name__)  # type: ignore[misc]
    return made


def _default(value: Any) -> Any:
    """A field's Avro default as the model holds it: arrays become tuples."""
    if isinstance(value, list):
        return tuple(value)
    return value
