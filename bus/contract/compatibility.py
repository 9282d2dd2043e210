"""Schema evolution rules per subject, judged by the Apache ``avro`` compatibility checker.

The verdict always comes from :class:`avro.compatibility.ReaderWriterCompatibilityChecker`
(the port of the Java checker). This module picks which reader/writer pairs to check for a
mode and turns the checker's findings into sentences that name the field::

    field 'alamat.kode_pos' was added without a default: a reader of the new schema cannot
    read events written with version 2 (READER_FIELD_MISSING_DEFAULT_VALUE at
    /fields/1/type/fields/2)

The checker merges its findings into sets and loses which message belongs to which
location, so the explanation walks the two schemas' records side by side, matching fields
the way the checker does, and asks the checker about each pair of field types.

One rule is added on top of Avro's: a changed logical type (``decimal(18,2)`` to
``decimal(18,4)``, ``int`` to ``date``) is refused in every mode but NONE. Avro resolves the
underlying types and would read the same bytes as a different amount or date.

==================== ==============================================================
mode                 the new schema must ...
==================== ==============================================================
BACKWARD             read events written with the latest version (upgrade readers first)
BACKWARD_TRANSITIVE  read events written with every earlier version
FORWARD              be readable by a reader of the latest version (upgrade writers first)
FORWARD_TRANSITIVE   be readable by readers of every earlier version
FULL                 both, against the latest version
FULL_TRANSITIVE      both, against every earlier version
NONE                 nothing: every change is accepted
==================== ==============================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from avro.compatibility import (
    ReaderWriterCompatibilityChecker,
    SchemaCompatibilityResult,
    SchemaCompatibilityType,
    SchemaIncompatibilityType,
    lookup_writer_field,
    schema_name_equals,
)

from bus.contract.schema import AvroSchema
from bus.errors import ConfigError, IncompatibleSchemaError

__all__ = [
    "DEFAULT_MODE",
    "CompatibilityMode",
    "check_compatible",
    "incompatibilities",
    "parse_mode",
]


class CompatibilityMode(StrEnum):
    """How a subject's new schema version must relate to the versions before it."""

    BACKWARD = "BACKWARD"
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"
    FORWARD = "FORWARD"
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE"
    FULL = "FULL"
    FULL_TRANSITIVE = "FULL_TRANSITIVE"
    NONE = "NONE"

    @property
    def transitive(self) -> bool:
        """True when every earlier version is checked, not only the latest."""
        return self.value.endswith("_TRANSITIVE")

    @property
    def backward(self) -> bool:
        """True when the new schema must read data written with old versions."""
        return self.value.startswith(("BACKWARD", "FULL"))

    @property
    def forward(self) -> bool:
        """True when readers of old versions must read data written with the new schema."""
        return self.value.startswith(("FORWARD", "FULL"))


DEFAULT_MODE = CompatibilityMode.BACKWARD


def parse_mode(value: CompatibilityMode | str) -> CompatibilityMode:
    """Read a mode from configuration text (case-insensitive); ConfigError when unknown."""
    if isinstance(value, CompatibilityMode):
        return value
    try:
        return CompatibilityMode(value.strip().upper())
    except ValueError:
        allowed = ", ".join(mode.value for mode in CompatibilityMode)
        raise ConfigError(
            f"compatibility mode {value!r} is unknown; use one of {allowed}",
            fix=f"set the subject's compatibility to one of {allowed}",
        ) from None


def incompatibilities(
    new: AvroSchema, history: Sequence[AvroSchema], mode: CompatibilityMode | str
) -> list[str]:
    """Return why ``new`` breaks ``mode`` against ``history``; empty when it does not.

    ``history`` holds the subject's earlier versions, oldest first; reasons number them
    from 1 in that order.
    """
    mode = parse_mode(mode)
    if mode is CompatibilityMode.NONE or not history:
        return []
    versions = list(enumerate(history, start=1))
    if not mode.transitive:
        versions = versions[-1:]
    reasons: list[str] = []
    for number, old in versions:
        if mode.backward:
            reasons.extend(_Explainer(_Direction(True, number)).pair(new.apache, old.apache))
        if mode.forward:
            reasons.extend(_Explainer(_Direction(False, number)).pair(old.apache, new.apache))
        reasons.extend(_LogicalTypes(number).changes(old.apache, new.apache, "", ""))
    return list(dict.fromkeys(reasons))


def check_compatible(
    subject: str, new: AvroSchema, history: Sequence[AvroSchema], mode: CompatibilityMode | str
) -> None:
    """Raise :class:`~bus.errors.IncompatibleSchemaError` when ``new`` breaks ``mode``."""
    mode = parse_mode(mode)
    reasons = incompatibilities(new, history, mode)
    if reasons:
        raise IncompatibleSchemaError(subject, mode.value, reasons)


# -- explaining the checker's verdict ------------------------------------------------------


@dataclass(frozen=True)
class _Direction:
    """Which schema reads: the new one (a backward check) or an old version (forward)."""

    backward: bool
    version: int

    @property
    def consequence(self) -> str:
        if self.backward:
            return (
                f"a reader of the new schema cannot read events written with version {self.version}"
            )
        return f"a reader of version {self.version} cannot read events written with the new schema"

    @property
    def rename_hint(self) -> str:
        if self.backward:
            return "keep the name, or list the old name in the new type's aliases"
        return f"keep the name: readers of version {self.version} know only the old one"

    def old_new(self, reader: Any, writer: Any) -> tuple[Any, Any]:
        """Return ``(old, new)`` from a reader/writer pair."""
        return (writer, reader) if self.backward else (reader, writer)


def _check(reader: Any, writer: Any) -> SchemaCompatibilityResult:
    checker = ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]
    result: SchemaCompatibilityResult = checker.get_compatibility(reader, writer)
    return result


class _Explainer:
    def __init__(self, direction: _Direction) -> None:
        self.direction = direction
        self._seen: set[tuple[int, int]] = set()  # record pairs walked: recursive types

    def pair(self, reader: Any, writer: Any) -> list[str]:
        """Explain one reader/writer check; empty when the checker finds them compatible."""
        return self._walk(reader, writer, "", "") or []

    def _walk(self, reader: Any, writer: Any, path: str, location: str) -> list[str] | None:
        """Reasons for one pair of types; ``None`` when a recursive type was explained already."""
        verdict = _check(reader, writer)
        if verdict.compatibility is not SchemaCompatibilityType.incompatible:
            return []
        parts: list[list[str] | None] = []
        if reader.type == writer.type == "record":
            pair = (id(reader), id(writer))
            if pair in self._seen:
                return None  # the walk that first reached this pair names its fields
            self._seen.add(pair)
            parts.append(self._records(reader, writer, path, location))
        elif reader.type == writer.type == "array":
            parts.append(self._walk(reader.items, writer.items, f"{path}[]", f"{location}/items"))
        elif reader.type == writer.type == "map":
            parts.append(
                self._walk(reader.values, writer.values, f"{path}{{}}", f"{location}/values")
            )
        elif reader.type == writer.type == "union" and _aligned(reader.schemas, writer.schemas):
            for index, (r, w) in enumerate(zip(reader.schemas, writer.schemas, strict=True)):
                parts.append(self._walk(r, w, path, f"{location}/{index}"))
        found = [reason for part in parts if part for reason in part]
        if found:
            return found
        if None in parts:
            return None
        return [self._leaf(verdict, reader, writer, path, location)]

    def _records(self, reader: Any, writer: Any, path: str, location: str) -> list[str]:
        found: list[str] = []
        if not schema_name_equals(reader, writer):
            old, new = self.direction.old_new(reader, writer)
            subject = f"the record type of field '{path}'" if path else "the record"
            found.append(
                f"{subject} was renamed from {old.fullname} to {new.fullname}: "
                f"{self.direction.consequence} "
                f"(NAME_MISMATCH at {location}/name; {self.direction.rename_hint})"
            )
        for index, reader_field in enumerate(reader.fields):
            field_path = f"{path}.{reader_field.name}" if path else reader_field.name
            field_location = f"{location}/fields/{index}"
            writer_field = lookup_writer_field(writer_schema=writer, reader_field=reader_field)
            if writer_field is not None:
                found.extend(
                    self._walk(
                        reader_field.type, writer_field.type, field_path, f"{field_location}/type"
                    )
                    or []
                )
            elif not reader_field.has_default:
                found.append(self._missing_default(field_path, field_location))
        return found

    def _missing_default(self, path: str, location: str) -> str:
        if self.direction.backward:
            what = "was added without a default"
        else:
            what = f"was removed, and version {self.direction.version} has no default for it"
        return (
            f"field '{path}' {what}: {self.direction.consequence} "
            f"(READER_FIELD_MISSING_DEFAULT_VALUE at {location})"
        )

    def _leaf(
        self,
        verdict: SchemaCompatibilityResult,
        reader: Any,
        writer: Any,
        path: str,
        location: str,
    ) -> str:
        kinds = list(dict.fromkeys(kind.name.upper() for kind in verdict.incompatibilities))
        where = sorted(
            {location + ("" if found == "/" else found) for found in verdict.locations}
            - ({location} if len(verdict.locations) > 1 else set())
        )
        tag = f"{'/'.join(kinds)} at {', '.join(w or '/' for w in where)}"
        subject = _subject(path, "the record")
        old, new = self.direction.old_new(reader, writer)
        first = verdict.incompatibilities[0]
        if first is SchemaIncompatibilityType.missing_enum_symbols and reader.type == "enum":
            symbols = ", ".join(sorted(set(writer.symbols) - set(reader.symbols)))
            if self.direction.backward:
                what = f"lost enum symbol(s) {symbols}"
            else:
                what = (
                    f"gained enum symbol(s) {symbols}, which version {self.direction.version} "
                    "does not know and has no enum default for"
                )
            return f"{subject} {what}: {self.direction.consequence} ({tag})"
        if first is SchemaIncompatibilityType.fixed_size_mismatch:
            what = f"changed its fixed size from {old.size} to {new.size}"
            return f"{subject} {what}: {self.direction.consequence} ({tag})"
        if first is SchemaIncompatibilityType.name_mismatch:
            what = f"changed its type name from {old.fullname} to {new.fullname}"
            hint = self.direction.rename_hint
            return f"{subject} {what}: {self.direction.consequence} ({tag}; {hint})"
        messages = "; ".join(sorted(verdict.messages))
        what = f"changed type from {_describe(old)} to {_describe(new)}"
        return f"{subject} {what}: {self.direction.consequence} ({tag}: {messages})"


def _subject(path: str, root: str) -> str:
    return f"field '{path}'" if path else root


def _aligned(readers: Sequence[Any], writers: Sequence[Any]) -> bool:
    """True when two unions list the same kinds of branch in the same order."""
    return len(readers) == len(writers) and all(
        r.type == w.type and getattr(r, "fullname", None) == getattr(w, "fullname", None)
        for r, w in zip(readers, writers, strict=True)
    )


def _describe(schema: Any) -> str:
    logical = _logical(schema)
    if logical is not None:
        return logical
    kind = schema.type
    if kind == "union":
        return "[" + ", ".join(_describe(branch) for branch in schema.schemas) + "]"
    if kind in ("record", "enum", "fixed"):
        return f"{kind} {schema.name}"
    if kind == "array":
        return f"array of {_describe(schema.items)}"
    if kind == "map":
        return f"map of {_describe(schema.values)}"
    return str(kind)


# -- the logical-type rule -----------------------------------------------------------------


def _logical(schema: Any) -> str | None:
    props = getattr(schema, "props", {})
    logical = props.get("logicalType")
    if logical is None:
        return None
    if logical == "decimal":
        return f"decimal({props.get('precision')},{props.get('scale', 0)})"
    return f"{logical} ({schema.type})"


class _LogicalTypes:
    """Finds fields whose underlying type stayed but whose logical type changed."""

    def __init__(self, version: int) -> None:
        self.version = version
        self._seen: set[tuple[int, int]] = set()  # record pairs walked: recursive types

    def changes(self, old: Any, new: Any, path: str, location: str) -> list[str]:
        if old.type != new.type:
            return []  # a change of the underlying type is the checker's to judge
        if old.type == "record":
            return self._records(old, new, path, location)
        if old.type == "array":
            return self.changes(old.items, new.items, f"{path}[]", f"{location}/items")
        if old.type == "map":
            return self.changes(old.values, new.values, f"{path}{{}}", f"{location}/values")
        if old.type == "union":
            if not _aligned(old.schemas, new.schemas):
                return []
            return [
                change
                for index, (o, n) in enumerate(zip(old.schemas, new.schemas, strict=True))
                for change in self.changes(o, n, path, f"{location}/{index}")
            ]
        before, after = _logical(old), _logical(new)
        if before == after:
            return []
        return [
            f"{_subject(path, 'the record')} changed logical type from {before or old.type} to "
            f"{after or new.type} since version {self.version}: the same bytes would be read as "
            f"a different value (LOGICAL_TYPE_MISMATCH at {location or '/'}, a bus rule on top "
            "of Avro's; add a new field instead)"
        ]

    def _records(self, old: Any, new: Any, path: str, location: str) -> list[str]:
        pair = (id(old), id(new))
        if pair in self._seen:
            return []
        self._seen.add(pair)
        found: list[str] = []
        for index, new_field in enumerate(new.fields):
            old_field = lookup_writer_field(writer_schema=old, reader_field=new_field)
            if old_field is not None:
                field_path = f"{path}.{new_field.name}" if path else new_field.name
                found.extend(
                    self.changes(
                        old_field.type,
                        new_field.type,
                        field_path,
                        f"{location}/fields/{index}/type",
                    )
                )
        return found
