"""Pruning a standard schema's JSON to the fields one subscription may receive (pure).

Every kept field stays as the standard writes it (doc, default, logical type, ``spbe.pii``,
``spbe.ref``, aliases); a nested record keeps only its allowed subfields. Every named type
moves to ``<its namespace>.projected.<subscriber>``: a pruned ``Alamat`` is another type
than the standard's and must not share its name. A record the schema uses at two places
must be allowed the same fields at both (one name, one definition).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from bus.contract.projected_names import projected_namespace
from bus.contract.schema import ATTR_KEY, AvroSchema
from bus.errors import ConfigError

__all__ = [
    "ATTR_PROJECTION_OF",
    "ATTR_SUBSCRIPTION",
    "FIX_FIELDS",
    "check_allowed_path",
    "holds_record",
    "pruned_schema",
]

#: The subscriber a projected schema was derived for.
ATTR_SUBSCRIPTION = "spbe.subscription"
#: The full name of the standard schema a projected schema was derived from.
ATTR_PROJECTION_OF = "spbe.projection_of"

FIX_FIELDS = "list dotted field paths of the schema in the subscription's allowed_fields"
_NAMED = ("record", "error", "enum", "fixed")
_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})


def pruned_schema(
    standard: AvroSchema, subscriber: str, allowed: Iterable[str], where: str
) -> dict[str, Any]:
    """The JSON of ``standard`` with only the ``allowed`` paths, for ``subscriber``.

    ``where`` starts every error (``subscription S, event type T``). Raises
    :class:`~bus.errors.ConfigError` when a path is not a field or names a whole record.
    """
    paths = tuple(allowed)
    _check_paths(standard, paths, where)
    return _Pruner(standard, subscriber, frozenset(paths), where).schema()


def _check_paths(standard: AvroSchema, allowed: tuple[str, ...], where: str) -> None:
    for path in allowed:
        check_allowed_path(standard, path, where)


def check_allowed_path(standard: AvroSchema, path: str, where: str) -> None:
    """Raise :class:`~bus.errors.ConfigError` unless ``path`` is a field of ``standard``
    holding no record: the rule every allowed field of a contract follows.

    ``where`` starts the message (``subscription S, event type T``); the fix names the
    closest field, or the fields of a whole record.
    """
    specs = dict(standard.fields())
    leaves = [p for p, spec in specs.items() if not holds_record(standard, spec["type"])]
    spec = specs.get(path)
    if spec is None:
        close = difflib.get_close_matches(path, leaves, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"use one of: {', '.join(leaves)}"
        raise ConfigError(
            f"{where}: allowed field {path!r} is not a field of {standard.record_name}",
            fix=hint,
        )
    if holds_record(standard, spec["type"]):
        inner = [p for p in leaves if p.startswith((f"{path}.", f"{path}[", f"{path}{{"))]
        raise ConfigError(
            f"{where}: allowed field {path!r} is a whole record; a contract names the "
            "fields of a record it may receive, so fields the standard adds later stay out",
            fix="list the fields you need instead: " + ", ".join(inner),
        )


def holds_record(standard: AvroSchema, avro_type: Any) -> bool:
    """Whether a value of ``avro_type`` is or holds a record (a path naming it is no leaf)."""
    avro_type = standard.resolve(avro_type)
    if isinstance(avro_type, str):
        return False
    if isinstance(avro_type, list):
        return any(holds_record(standard, branch) for branch in avro_type)
    kind = avro_type.get("type")
    if kind in ("record", "error"):
        return True
    if kind == "array":
        return holds_record(standard, avro_type["items"])
    if kind == "map":
        return holds_record(standard, avro_type["values"])
    return False


# -- pruning the schema ------------------------------------------------------------------


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _full_name(definition: Mapping[str, Any], enclosing: str) -> str:
    name: str = definition["name"]
    if "." in name:
        return name
    namespace = definition.get("namespace", enclosing)
    return f"{namespace}.{name}" if namespace else name


class _Pruner:
    """Walks the standard's JSON and writes the projected JSON, renaming every named type."""

    def __init__(
        self, standard: AvroSchema, subscriber: str, allowed: frozenset[str], where: str
    ) -> None:
        self.standard = standard
        self.subscriber = subscriber
        self.allowed = allowed
        self.where = where
        self.definitions: dict[str, tuple[Mapping[str, Any], str]] = {}
        self._collect(standard.raw, "")
        self.emitted: dict[str, frozenset[str] | None] = {}  # new name -> record's view

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = self._named(dict(self.standard.raw), "", "", keep_all=False)
        if out.get(ATTR_KEY) not in {spec["name"] for spec in out["fields"]}:
            out.pop(ATTR_KEY, None)  # the key field is not the subscriber's to see
        out[ATTR_SUBSCRIPTION] = self.subscriber
        out[ATTR_PROJECTION_OF] = self.standard.name
        return out

    def _collect(self, node: Any, enclosing: str) -> None:
        if isinstance(node, list):
            for branch in node:
                self._collect(branch, enclosing)
        elif isinstance(node, dict):
            if node.get("type") in _NAMED:
                full = _full_name(node, enclosing)
                enclosing = full.rpartition(".")[0]
                self.definitions.setdefault(full, (node, enclosing))
                for spec in node.get("fields", ()):
                    self._collect(spec["type"], enclosing)
            for key in ("items", "values"):
                if key in node:
                    self._collect(node[key], enclosing)

    def _rename(self, full: str) -> str:
        namespace, _, name = full.rpartition(".")
        return f"{projected_namespace(namespace, self.subscriber)}.{name}"

    def _wanted(self, path: str) -> bool:
        return path in self.allowed or any(
            allowed.startswith((f"{path}.", f"{path}[", f"{path}{{")) for allowed in self.allowed
        )

    def _type(self, avro_type: Any, enclosing: str, path: str, keep_all: bool) -> Any:
        if isinstance(avro_type, str):
            if avro_type in _PRIMITIVES:
                return avro_type
            full = avro_type if "." in avro_type else _join(enclosing, avro_type)
            if full not in self.definitions:
                full = avro_type  # a name in the null namespace
            definition, _ = self.definitions[full]
            return self._named(definition, enclosing, path, keep_all)
        if isinstance(avro_type, list):
            return [self._type(branch, enclosing, path, keep_all) for branch in avro_type]
        kind = avro_type.get("type")
        if kind in _NAMED:
            return self._named(avro_type, enclosing, path, keep_all)
        if kind == "array":
            items = self._type(avro_type["items"], enclosing, f"{path}[]", keep_all)
            return {**avro_type, "items": items}
        if kind == "map":
            values = self._type(avro_type["values"], enclosing, f"{path}{{}}", keep_all)
            return {**avro_type, "values": values}
        return dict(avro_type)  # a primitive with attributes (a logical type)

    def _named(
        self, definition: Mapping[str, Any], enclosing: str, path: str, keep_all: bool
    ) -> Any:
        full = _full_name(definition, enclosing)
        namespace, _, name = full.rpartition(".")
        renamed = self._rename(full)
        record = definition["type"] in ("record", "error")
        view = self._view(path) if record and not keep_all else None
        if renamed in self.emitted:
            if self.emitted[renamed] != view:
                raise ConfigError(
                    f"{self.where}: record {name} is used at '{path}' and elsewhere with "
                    "different allowed fields, which one projected schema cannot express",
                    fix="allow the same fields of the record wherever the schema uses it",
                )
            return renamed
        self.emitted[renamed] = view
        out: dict[str, Any] = {
            "type": definition["type"],
            "name": name,
            "namespace": projected_namespace(namespace, self.subscriber),
        }
        out |= {k: v for k, v in definition.items() if k not in ("name", "namespace", "fields")}
        if "aliases" in definition:
            out["aliases"] = [
                self._rename(alias) if "." in alias else alias for alias in definition["aliases"]
            ]
        if record:
            out["fields"] = [
                self._field(spec, namespace, path, keep_all)
                for spec in definition["fields"]
                if keep_all or self._wanted(_join(path, spec["name"]))
            ]
        return out

    def _view(self, path: str) -> frozenset[str]:
        """The allowed paths below a record at ``path``, relative to it."""
        if not path:
            return self.allowed
        return frozenset(
            allowed[len(path) + 1 :] for allowed in self.allowed if allowed.startswith(f"{path}.")
        )

    def _field(
        self, spec: Mapping[str, Any], enclosing: str, prefix: str, keep_all: bool
    ) -> dict[str, Any]:
        path = _join(prefix, spec["name"])
        keep_all = keep_all or path in self.allowed
        return {**spec, "type": self._type(spec["type"], enclosing, path, keep_all)}
