"""The base of every event model: JSON and Avro forms, and errors that name every rule (pure).

:class:`SpbeEvent` converts between plain JSON, the fastavro datum and the model;
pydantic's errors become one :class:`~bus.errors.EventValidationError` listing each broken
rule with its dotted field path and no input value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from enum import Enum
from types import UnionType
from typing import Any, ClassVar, Final, Self, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationError,
)

from bus.contract.refcodes import (
    RuleViolation,
)
from bus.errors import EventValidationError, FieldProblem

__all__ = [
    "CrossFieldViolation",
    "Record",
    "SpbeEvent",
]

# --- base classes -----------------------------------------------------------------------


class CrossFieldViolation(RuleViolation):
    """A rule linking fields broke; ``field`` names the field to fix, relative to the record."""

    def __init__(self, field: str, problem: str, rule: str) -> None:
        super().__init__(problem, rule)
        self.field = field


class Record(BaseModel):
    """An Avro record: frozen, no fields beyond the schema's, inputs kept out of errors."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)


class SpbeEvent(Record):
    """Base of every event model; subclasses set :attr:`event_name` and :attr:`avro_name`.

    Build events with :meth:`from_json` or :meth:`from_avro`, which raise
    :class:`~bus.errors.EventValidationError`. Calling the class directly validates too but
    raises pydantic's ``ValidationError`` (with input values hidden).
    """

    #: The event type name, e.g. ``"PendudukUpdated"``.
    event_name: ClassVar[str]
    #: The full Avro name of the schema, e.g. ``"id.go.spbe.dukcapil.PendudukUpdated"``.
    avro_name: ClassVar[str]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """Validate plain-JSON input; raise :class:`EventValidationError` naming every problem."""
        return cls._validate(data)

    @classmethod
    def from_avro(cls, datum: Mapping[str, Any]) -> Self:
        """Build the event from a datum decoded by fastavro (validated like JSON input)."""
        return cls._validate(datum)

    @classmethod
    def from_trusted_avro(cls, datum: Mapping[str, Any]) -> Self:
        """Build the event from a datum its publisher validated, without validating it again.

        For the read path: a :class:`~bus.publisher.Publisher` only writes events that its
        model validated, and the codec resolved the datum to this model's schema, so each
        value already has its type; only symbols become enum members and nested records
        models. A datum that does not have this shape is validated as :meth:`from_avro`
        does (and refused the same way).
        """
        try:
            built: Self = _builder(cls)(datum)
        except (KeyError, TypeError, ValueError, AttributeError):
            return cls._validate(datum)
        return built

    def to_json(self) -> dict[str, Any]:
        """The plain-JSON form, the same shape as ``schemas/avro/examples/<EventName>.json``."""
        return self.model_dump(mode="json")

    def to_avro(self) -> dict[str, Any]:
        """The datum for fastavro: ``date``, UTC ``datetime``, ``Decimal``, symbol strings."""
        return {key: _avro_value(value) for key, value in self.model_dump().items()}

    def avro_datum(self) -> dict[str, Any]:
        """The datum the codec writes: :meth:`to_avro` with enum members left as they are.

        Every enum of the standard is a :class:`~enum.StrEnum`, so a member already is its
        symbol string to fastavro; this skips :meth:`to_avro`'s second walk of the model.
        """
        return self.model_dump()

    @classmethod
    def _validate(cls, data: Mapping[str, Any]) -> Self:
        if not isinstance(data, Mapping):
            problem = FieldProblem("(event)", "is not a JSON object", "an event is a JSON object")
            raise EventValidationError(cls.event_name, [problem])
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            # `from None`: the pydantic error would put input values (a NIK) in tracebacks.
            raise EventValidationError(cls.event_name, _problems(error)) from None


_Convert = Callable[[Any], Any]
_set = object.__setattr__
_BUILDERS: dict[type[BaseModel], _Convert] = {}


def _builder(cls: type[BaseModel]) -> _Convert:
    """A function building ``cls`` from its Avro datum by ``model_construct`` (made once)."""
    found = _BUILDERS.get(cls)
    if found is not None:
        return found
    converters = [
        (name, convert)
        for name, info in cls.model_fields.items()
        if (convert := _converter(info.annotation)) is not None
    ]
    names = tuple(cls.model_fields)
    fields_set = frozenset(names)
    plain = not cls.__pydantic_post_init__ and not cls.__private_attributes__
    plain = plain and not cls.__pydantic_root_model__ and cls.model_config.get("extra") != "allow"

    def build(datum: Mapping[str, Any]) -> BaseModel:
        values = {name: datum[name] for name in names}
        for name, convert in converters:
            values[name] = convert(values[name])
        if not plain:
            return cls.model_construct(**values)
        # What model_construct does for a model without aliases, extras, private
        # attributes or post-init (every Record), without its per-field alias lookups.
        model = cls.__new__(cls)
        _set(model, "__dict__", values)
        _set(model, "__pydantic_fields_set__", set(fields_set))
        _set(model, "__pydantic_extra__", None)
        _set(model, "__pydantic_private__", None)
        return model

    _BUILDERS[cls] = build
    return build


def _converter(annotation: Any) -> _Convert | None:
    """How a decoded value becomes the field's value; ``None`` when it already is."""
    if get_origin(annotation) in (Union, UnionType):
        branches = [arg for arg in get_args(annotation) if arg is not type(None)]
        inner = _converter(branches[0]) if len(branches) == 1 else None
        if inner is None:
            return None
        return lambda value: None if value is None else inner(value)
    if get_origin(annotation) is tuple:  # an Avro array: tuple[X, ...]
        items = _converter(get_args(annotation)[0]) if get_args(annotation) else None
        if items is None:
            return tuple
        return lambda value: tuple(items(item) for item in value)
    if get_origin(annotation) is dict:  # an Avro map: dict[str, X]
        values = _converter(get_args(annotation)[1]) if len(get_args(annotation)) == 2 else None
        if values is None:
            return None
        return lambda value: {key: values(item) for key, item in value.items()}
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return annotation._value2member_map_.__getitem__
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _builder(annotation)
    return None


def _avro_value(value: object) -> object:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {key: _avro_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_avro_value(item) for item in value]
    return value


_BUILTIN_RULES: Final[Mapping[str, tuple[str, str]]] = {
    "missing": ("is missing", "required field"),
    "extra_forbidden": ("is not a field of the schema", "only the fields the schema defines"),
    "string_type": ("must be a string", "JSON string"),
    "model_type": ("must be a JSON object", "JSON object with the record's fields"),
    "model_attributes_type": ("must be a JSON object", "JSON object with the record's fields"),
    "dict_type": ("must be a JSON object", "JSON object with the record's fields"),
    "tuple_type": ("must be a JSON array", "JSON array"),
    "list_type": ("must be a JSON array", "JSON array"),
}


def _path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path


def _problems(error: ValidationError) -> list[FieldProblem]:
    """One :class:`FieldProblem` per pydantic error, with a dotted path and a rule text."""
    problems = []
    for item in error.errors(include_url=False, include_input=False):
        path = _path(item["loc"])
        cause = item.get("ctx", {}).get("error")
        if isinstance(cause, CrossFieldViolation):
            path = f"{path}.{cause.field}" if path else cause.field
        if isinstance(cause, RuleViolation):
            problems.append(FieldProblem(path or "(event)", cause.problem, cause.rule))
        elif item["type"] == "enum":
            symbols = re.findall(r"'([^']*)'", item.get("ctx", {}).get("expected", ""))
            problem, rule = "is not one of the allowed values", "one of: " + ", ".join(symbols)
            problems.append(FieldProblem(path, problem, rule))
        else:
            problem, rule = _BUILTIN_RULES.get(item["type"], (item["msg"], item["type"]))
            problems.append(FieldProblem(path or "(event)", problem, rule))
    return problems
