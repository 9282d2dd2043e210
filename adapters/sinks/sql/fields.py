"""Dotted field paths into the typed event models: ``nik``, ``alamat.kode_wilayah``.

A mapping names event fields by path. :func:`resolve` walks the pydantic model fields
(through nested records, ``Optional`` and ``Annotated``) to check that a path exists and
ends at a single value, and says what kind of value it holds, so the sink can pick a
column type and check the target table. :func:`reader` turns a path into a function taking
the value out of an event (built once per mapped field when the sink starts);
:func:`read` is the same for a single use. Pure: no database, no event loop.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum, StrEnum
from operator import attrgetter
from typing import Annotated, get_args, get_origin

from pydantic import BaseModel

__all__ = [
    "FieldPath",
    "PathError",
    "ValueKind",
    "kind_of_constant",
    "read",
    "reader",
    "resolve",
]


class ValueKind(StrEnum):
    """What a field or constant holds, as far as a column type is concerned."""

    TEXT = "text"
    INTEGER = "integer"
    FLOAT = "float"
    DECIMAL = "decimal"
    DATE = "date"
    DATETIME = "datetime"
    BOOLEAN = "boolean"


@dataclass(frozen=True, slots=True)
class FieldPath:
    """A checked path: where it points and what it holds."""

    path: str
    kind: ValueKind
    #: False when the field, or a record on the way to it, may be absent (None).
    required: bool


class PathError(ValueError):
    """A path does not name a single value of the model; ``fix`` says what would."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix


def _unwrap(annotation: object) -> tuple[object, bool]:
    """Strip ``Annotated`` and ``X | None``; return the inner type and whether None is allowed."""
    optional = False
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [arg for arg in get_args(annotation) if arg is not type(None)]
            optional = optional or len(members) < len(get_args(annotation))
            if len(members) != 1:
                return annotation, optional
            annotation = members[0]
        else:
            return annotation, optional


def _kind_of_type(annotation: object) -> ValueKind | None:
    if not isinstance(annotation, type):
        return None
    # Order matters: bool is an int, datetime is a date, a StrEnum is a str.
    checks: tuple[tuple[type, ValueKind], ...] = (
        (bool, ValueKind.BOOLEAN),
        (Enum, ValueKind.TEXT),
        (int, ValueKind.INTEGER),
        (float, ValueKind.FLOAT),
        (Decimal, ValueKind.DECIMAL),
        (datetime, ValueKind.DATETIME),
        (date, ValueKind.DATE),
        (str, ValueKind.TEXT),
    )
    for base, kind in checks:
        if issubclass(annotation, base):
            return kind
    return None


def _scalar_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    paths: list[str] = []
    for name, field in model.model_fields.items():
        inner, _ = _unwrap(field.annotation)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            paths.extend(_scalar_paths(inner, f"{prefix}{name}."))
        elif _kind_of_type(inner) is not None:
            paths.append(f"{prefix}{name}")
    return paths


def resolve(model: type[BaseModel], path: str) -> FieldPath:
    """Check ``path`` against ``model``; raise :class:`PathError` naming what is wrong."""
    current: type[BaseModel] = model
    required = True
    walked: list[str] = []
    parts = path.split(".")
    for position, part in enumerate(parts):
        field = current.model_fields.get(part)
        if field is None:
            prefix = "".join(f"{step}." for step in walked)
            close = difflib.get_close_matches(part, list(current.model_fields), n=1)
            hint = (
                f"did you mean '{prefix}{close[0]}'?"
                if close
                else "use one of: " + ", ".join(_scalar_paths(current, prefix))
            )
            where = f"{model.__name__}" + (f" record {'.'.join(walked)}" if walked else "")
            raise PathError(f"'{path}' is not a field of {where}", hint)
        inner, optional = _unwrap(field.annotation)
        required = required and not optional and field.is_required()
        walked.append(part)
        last = position == len(parts) - 1
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            if last:
                fields = ", ".join(_scalar_paths(inner, f"{path}."))
                raise PathError(
                    f"'{path}' is a record, not a single value", f"map one of its fields: {fields}"
                )
            current = inner
            continue
        if not last:
            raise PathError(
                f"'{'.'.join(walked)}' is a single value and has no field '{parts[position + 1]}'",
                f"map '{'.'.join(walked)}' itself",
            )
        kind = _kind_of_type(inner)
        if kind is None:
            raise PathError(
                f"'{path}' is a list or another value a column cannot hold",
                "map a field that holds one text, number, date or code",
            )
        return FieldPath(path=path, kind=kind, required=required)
    raise PathError("the path is empty", "name an event field, e.g. nik")  # pragma: no cover


def reader(path: str) -> Callable[[BaseModel], object]:
    """A function reading the value at ``path`` (None when a record on the way is absent)."""
    if "." not in path:
        return attrgetter(path)
    parts = tuple(path.split("."))

    def read_nested(event: BaseModel) -> object:
        value: object = event
        for part in parts:
            if value is None:
                return None
            value = getattr(value, part)
        return value

    return read_nested


def read(event: BaseModel, path: str) -> object:
    """The value at ``path`` (None when a record on the way is absent)."""
    return reader(path)(event)


def kind_of_constant(value: object) -> ValueKind | None:
    """The kind of a ``set`` constant from a config file; None for null (fits any column)."""
    if value is None:
        return None
    kind = _kind_of_type(type(value))
    if kind is None:  # pragma: no cover - the config model only admits scalars
        raise TypeError(f"unsupported constant type {type(value).__name__}")
    return kind
