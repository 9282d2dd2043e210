"""Is this plain JSON a valid event of the standard? The one answer for every edge (pure).

``spbe-bus events validate`` and the REST gateway's ingress both ask
:func:`validate_json_event`, so a file the command accepts is a body the gateway accepts,
and the problems the command prints are the ``errors`` the gateway returns:

1. the event model validates the data (:meth:`SpbeEvent.from_json`): every broken rule is
   one :class:`~bus.errors.FieldProblem` (field, problem, rule), values never shown;
2. the datum the model produces is checked against the data standard's Avro schema
   (:func:`bus.contract.codec.encode`), which catches what a model cannot: a datum the
   ``.avsc`` would not accept. A field that does not fit is a problem too, named by its
   path and the schema, without its value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bus.contract import codec
from bus.contract.event_base import SpbeEvent
from bus.contract.events import EVENT_TYPES
from bus.contract.misfits import misfits
from bus.contract.schema import AvroSchema
from bus.errors import CodecError, ConfigError, EventValidationError, FieldProblem

__all__ = ["event_class_of", "known_event_names", "schema_problems", "validate_json_event"]


def known_event_names(standard: Mapping[str, AvroSchema]) -> list[str]:
    """The event names that have a model and a schema in ``standard``, sorted."""
    return sorted(name for name in EVENT_TYPES if name in standard)


def event_class_of(event_name: str) -> type[SpbeEvent]:
    """The model of ``event_name``; a :class:`~bus.errors.ConfigError` listing the known ones."""
    event_class = EVENT_TYPES.get(event_name)
    if event_class is None:
        raise ConfigError(
            f"unknown event type {event_name!r}",
            fix=f"use one of: {', '.join(sorted(EVENT_TYPES))}",
        )
    return event_class


def _schema_of(standard: Mapping[str, AvroSchema], event_name: str) -> AvroSchema:
    schema = standard.get(event_name)
    if schema is None:
        raise ConfigError(
            f"the data standard has no schema for {event_name}",
            fix="point at the standard that defines it (--schemas or SPBE_SCHEMAS_DIR)",
        )
    return schema


def schema_problems(schema: AvroSchema, event: SpbeEvent) -> list[FieldProblem]:
    """Every field of ``event``'s datum that ``schema`` refuses; empty when it fits."""
    datum = event.to_avro()
    try:
        codec.encode(schema, datum)
    except CodecError:
        rule = f"the data standard's schema {schema.name}"
        fields = [line.partition(": ")[0] for line in misfits(schema, datum)]
        if not fields:
            fields = ["(event)"]
        return [
            FieldProblem(field, "does not fit its type in the schema", rule) for field in fields
        ]
    return []


def validate_json_event(
    event_type_name: str, data: Any, standard: Mapping[str, AvroSchema]
) -> SpbeEvent:
    """The typed event ``data`` (decoded JSON) is, checked by its model and its schema.

    Raises :class:`~bus.errors.EventValidationError` listing every problem (the model's
    first; the schema is asked only about a datum the model accepted), and
    :class:`~bus.errors.ConfigError` for an event name with no model or no schema.
    """
    event_class = event_class_of(event_type_name)
    schema = _schema_of(standard, event_type_name)
    event = event_class.from_json(data)
    problems = schema_problems(schema, event)
    if problems:
        raise EventValidationError(event_type_name, problems)
    return event
