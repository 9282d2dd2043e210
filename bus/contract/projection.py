"""A subscription's view of the data standard: its topic, its schema and its data (pure).

The contract service delivers each active subscription a projected copy of a restricted
topic: only the fields the subscription's ``allowed_fields`` names, on a topic of its own
(:func:`projected_topic`, ``<raw topic>.for.<subscriber>``) that only that subscriber may
read (docs/contracts.md says why this and not field-level encryption).

A :class:`ProjectedSchema` is the standard's record schema pruned to the allowed paths:
top-level fields and nested record fields by dotted path (``alamat.jalan``), a nested
record kept with only its allowed subfields. Everything a kept field says stays as written
(doc, default, logical type, ``spbe.pii``, ``spbe.ref``), and so do the standard's
governance attributes and Dublin Core metadata; its named types move to a namespace of
their own (``<namespace>.projected.<subscriber>``), so a projected ``Alamat`` is never
mistaken for the standard's. A path must end at a value holding no record: listing a
whole record would let every subfield a later version of the standard adds through, and a
field reaches a subscriber only once its contract names it.

:func:`project` restricts a standard datum (as :meth:`SpbeEvent.avro_datum` gives it) to
the projection, with a plan made once per schema: records are rebuilt with their kept
fields, and a value holding no record is passed on as it is, never walked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bus.contract.projected_names import (
    PROJECTED_TOPIC_PATTERN,
    SUBSCRIBER_PATTERN,
    ProjectedTopic,
    check_subscriber,
    parse_projected_topic,
    projected_namespace,
    projected_topic,
)
from bus.contract.pruning import (
    ATTR_PROJECTION_OF,
    ATTR_SUBSCRIPTION,
    FIX_FIELDS,
    holds_record,
    pruned_schema,
)
from bus.contract.schema import AvroSchema
from bus.errors import ConfigError, ContractError

__all__ = [
    "ATTR_PROJECTION_OF",
    "ATTR_SUBSCRIPTION",
    "PROJECTED_TOPIC_PATTERN",
    "SUBSCRIBER_PATTERN",
    "ProjectedSchema",
    "ProjectedTopic",
    "is_projected",
    "parse_projected_topic",
    "project",
    "projected_namespace",
    "projected_topic",
]

_Projector = Callable[[Any], Any]


@dataclass(frozen=True, eq=False, repr=False)
class ProjectedSchema:
    """The standard schema of one event type as one subscription may receive it.

    Build it with :meth:`derive`. :attr:`schema` is an :class:`AvroSchema` like the
    standard's (fingerprint, canonical form, fastavro and Apache ``avro`` parses), so the
    codec, the registry and the compatibility checker take it as they take a standard one.
    """

    standard: AvroSchema
    subscriber: str
    #: The allowed paths, as the subscription lists them (duplicates dropped).
    allowed_fields: tuple[str, ...]
    schema: AvroSchema
    _projector: _Projector = field(repr=False)

    @classmethod
    def derive(
        cls, standard: AvroSchema, subscriber: str, allowed_fields: Iterable[str]
    ) -> ProjectedSchema:
        """Prune ``standard`` to ``allowed_fields`` for ``subscriber``.

        Raises :class:`~bus.errors.ConfigError` naming the subscriber, the event type and
        the path when a path is not a field of the schema or names a whole record.
        """
        check_subscriber(subscriber)
        allowed = tuple(dict.fromkeys(allowed_fields))
        event_type = standard.event_type or standard.name
        where = f"subscription {subscriber}, event type {event_type}"
        if not allowed:
            raise ConfigError(f"{where}: allowed_fields is empty", fix=FIX_FIELDS)
        raw = pruned_schema(standard, subscriber, allowed, where)
        schema = AvroSchema.from_json(raw)
        return cls(standard, subscriber, allowed, schema, _plan(schema, schema.parsed))

    @classmethod
    def from_registered(cls, schema: AvroSchema, standard: AvroSchema) -> ProjectedSchema:
        """The projection ``schema`` is, as its deriver registered it, of ``standard``.

        ``schema`` carries ``spbe.subscription`` and ``spbe.projection_of`` (as
        :meth:`derive` writes them); its allowed fields are read back from its fields, and
        it is kept as registered (its fingerprint is the one on the wire). Raises
        :class:`~bus.errors.ContractError` when ``schema`` is no projection, or a
        projection of another schema than ``standard``.
        """
        subscriber = schema.raw.get(ATTR_SUBSCRIPTION)
        projection_of = schema.raw.get(ATTR_PROJECTION_OF)
        if not isinstance(subscriber, str) or not isinstance(projection_of, str):
            raise ContractError(
                f"schema {schema.name} is not a projected schema: it needs both "
                f"{ATTR_SUBSCRIPTION} and {ATTR_PROJECTION_OF}",
                fix="register the schema ProjectedSchema.derive made for the subscription",
            )
        check_subscriber(subscriber)
        if projection_of != standard.name:
            raise ContractError(
                f"schema {schema.name} is a projection of {projection_of}, not of {standard.name}",
                fix="read it against the standard schema its spbe.projection_of names",
            )
        allowed = tuple(
            path for path, spec in schema.fields() if not holds_record(schema, spec["type"])
        )
        return cls(standard, subscriber, allowed, schema, _plan(schema, schema.parsed))

    @property
    def name(self) -> str:
        """The projected schema's full name (``<namespace>.projected.<subscriber>.<Event>``)."""
        return self.schema.name

    @property
    def fingerprint(self) -> int:
        """The CRC-64-AVRO fingerprint of the projected schema, as on the wire."""
        return self.schema.fingerprint

    @property
    def event_type(self) -> str | None:
        """The CloudEvents type, the standard's: a projection is the same event, fewer fields."""
        return self.standard.event_type

    @property
    def topic(self) -> str | None:
        """The projected topic the subscriber reads (None when the standard names no topic)."""
        raw = self.standard.topic
        return None if raw is None else projected_topic(raw, self.subscriber)

    def __repr__(self) -> str:
        return (
            f"ProjectedSchema(name={self.name!r}, subscriber={self.subscriber!r}, "
            f"fingerprint={self.fingerprint:#018x})"
        )


def is_projected(schema: AvroSchema) -> bool:
    """Whether ``schema`` is a projection (it names the standard schema it was derived from)."""
    return isinstance(schema.raw.get(ATTR_PROJECTION_OF), str)


def project(datum: Mapping[str, Any], projected: ProjectedSchema) -> dict[str, Any]:
    """``datum`` of the standard schema, restricted to the fields ``projected`` keeps.

    Records are rebuilt with their kept fields; every other value is shared with ``datum``.
    Raises :class:`~bus.errors.ContractError` naming the field when ``datum`` lacks one the
    projection keeps.
    """
    try:
        result: dict[str, Any] = projected._projector(datum)
    except _MissingField as missing:
        raise ContractError(
            f"{projected.standard.record_name} datum has no field {missing.path!r}, which "
            f"the projection for {projected.subscriber} keeps",
            fix="project the datum of a standard event (SpbeEvent.avro_datum())",
        ) from None
    return result


# -- projecting data ---------------------------------------------------------------------


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


class _MissingField(Exception):
    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


def _plan(schema: AvroSchema, avro_type: Any) -> _Projector:
    """A function restricting a standard value of ``avro_type`` to the projection."""
    found = _plan_or_none(schema, avro_type, "", {})
    return found if found is not None else _same


def _same(value: Any) -> Any:
    return value


def _plan_or_none(
    schema: AvroSchema, avro_type: Any, path: str, memo: dict[str, _Projector]
) -> _Projector | None:
    """``None`` when a value passes unchanged (it holds no record)."""
    avro_type = schema.resolve(avro_type)
    if isinstance(avro_type, str):
        return None
    if isinstance(avro_type, list):
        return _union_plan(schema, avro_type, path, memo)
    kind = avro_type.get("type")
    if kind in ("record", "error"):
        return _record_plan(schema, avro_type, path, memo)
    if kind == "array":
        items = _plan_or_none(schema, avro_type["items"], f"{path}[]", memo)
        if items is None:
            return None
        return lambda value: [items(item) for item in value]
    if kind == "map":
        values = _plan_or_none(schema, avro_type["values"], f"{path}{{}}", memo)
        if values is None:
            return None
        return lambda value: {key: values(item) for key, item in value.items()}
    return None


def _record_plan(
    schema: AvroSchema, record: Mapping[str, Any], path: str, memo: dict[str, _Projector]
) -> _Projector:
    name: str = record["name"]
    if name in memo:  # a recursive type: bound once its plan is made
        return lambda value: memo[name](value)
    memo[name] = _same  # replaced below, before any value is projected
    steps = tuple(
        (
            spec["name"],
            _join(path, spec["name"]),
            _plan_or_none(schema, spec["type"], _join(path, spec["name"]), memo),
        )
        for spec in record["fields"]
    )

    def restrict(value: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for field_name, field_path, inner in steps:
            try:
                item = value[field_name]
            except KeyError:
                raise _MissingField(field_path) from None
            out[field_name] = item if inner is None or item is None else inner(item)
        return out

    memo[name] = restrict
    return restrict


def _union_plan(
    schema: AvroSchema, branches: list[Any], path: str, memo: dict[str, _Projector]
) -> _Projector | None:
    records: list[tuple[frozenset[str], _Projector]] = []
    lists: list[_Projector] = []
    maps: list[_Projector] = []
    for branch in map(schema.resolve, branches):
        kind = branch.get("type") if isinstance(branch, dict) else None
        if kind in ("record", "error"):
            names = frozenset(spec["name"] for spec in branch["fields"])
            records.append((names, _record_plan(schema, branch, path, memo)))
        elif kind in ("array", "map"):
            inner = _plan_or_none(schema, branch, path, memo)
            if inner is not None:
                (lists if kind == "array" else maps).append(inner)
    if not records and not lists and not maps:
        return None

    def restrict(value: Any) -> Any:
        if isinstance(value, Mapping):
            keys = value.keys()
            for names, restrict_record in records:
                if names <= keys:
                    return restrict_record(value)
            return maps[0](value) if maps else value
        if isinstance(value, list | tuple) and lists:
            return lists[0](value)
        return value

    return restrict
