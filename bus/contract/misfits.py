"""Why a datum does not fit its Avro schema, field by field, for the error message (pure).

:func:`misfits` runs only after fastavro refused a datum, so it may be thorough. The rules
mirror fastavro's validators. Values of fields tagged ``spbe.pii`` are never echoed.
"""

from __future__ import annotations

import datetime
import decimal
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from bus.contract.schema import ATTR_PII, AvroSchema

__all__ = ["misfits"]

_INT_RANGE = range(-(2**31), 2**31)
_LONG_RANGE = range(-(2**63), 2**63)
#: Python types fastavro converts for each logical type, besides the underlying Avro type.
_LOGICAL_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "decimal": (decimal.Decimal,),
    "date": (datetime.date, str),
    "time-millis": (datetime.time,),
    "time-micros": (datetime.time,),
    "timestamp-millis": (datetime.datetime,),
    "timestamp-micros": (datetime.datetime,),
    "local-timestamp-millis": (datetime.datetime,),
    "local-timestamp-micros": (datetime.datetime,),
    "uuid": (uuid.UUID, str),
}


def misfits(schema: AvroSchema, datum: Any) -> list[str]:
    """One line per field of ``datum`` that breaks ``schema`` (dotted path, what, no PII)."""
    return _Misfits(schema).of_record(schema.parsed, datum, "", secret=False)


class _Misfits:
    """Explains, field by field, why a datum does not fit a schema.

    It runs only after fastavro refused a datum, so it may be thorough. The rules mirror
    fastavro's validators. Values of fields tagged ``spbe.pii`` are never echoed.
    """

    def __init__(self, schema: AvroSchema) -> None:
        self.schema = schema

    def of_record(self, record: dict[str, Any], datum: Any, path: str, secret: bool) -> list[str]:
        here = path or "the event"
        if not isinstance(datum, Mapping):
            return [f"{here}: expected a mapping of field names, got {_show(datum, secret)}"]
        problems: list[str] = []
        names: set[str] = set()
        for spec in record["fields"]:
            name = spec["name"]
            names.add(name)
            field_path = f"{path}.{name}" if path else name
            hidden = secret or spec.get(ATTR_PII) is True
            if name not in datum:
                if "default" not in spec:
                    problems.append(f"{field_path}: is missing, and the field has no default")
                continue
            problems.extend(self.of_type(spec["type"], datum[name], field_path, hidden))
        for key in datum:
            if key not in names:
                problems.append(
                    f"{path + '.' if path else ''}{key}: is not a field of "
                    f"{record['name'].rpartition('.')[2]}"
                )
        return problems

    def of_type(self, avro_type: Any, datum: Any, path: str, secret: bool) -> list[str]:
        avro_type = self.schema.resolve(avro_type)
        if isinstance(avro_type, list):
            return self._of_union(avro_type, datum, path, secret)
        if isinstance(avro_type, str):
            return self._of_primitive(avro_type, datum, path, secret)
        kind = avro_type["type"]
        logical = avro_type.get("logicalType")
        if logical == "decimal" and isinstance(datum, decimal.Decimal):
            return _decimal_problems(avro_type, datum, path, secret)
        if logical in _LOGICAL_PYTHON_TYPES:
            return self._of_logical(avro_type, datum, path, secret)
        if kind == "record":
            return self.of_record(avro_type, datum, path, secret)
        if kind == "enum":
            if isinstance(datum, str) and datum in avro_type["symbols"]:
                return []
            symbols = ", ".join(avro_type["symbols"])
            return [
                f"{path}: {_show(datum, secret)} is not a symbol of {_describe(avro_type)} "
                f"({symbols})"
            ]
        if kind == "fixed":
            if isinstance(datum, bytes) and len(datum) == avro_type["size"]:
                return []
            return [f"{path}: expected {avro_type['size']} bytes, got {_show(datum, secret)}"]
        if kind == "array":
            if not isinstance(datum, Sequence) or isinstance(datum, str | bytes):
                return [f"{path}: expected a list, got {_show(datum, secret)}"]
            return [
                problem
                for index, item in enumerate(datum)
                for problem in self.of_type(avro_type["items"], item, f"{path}[{index}]", secret)
            ]
        if kind == "map":
            if not isinstance(datum, Mapping):
                return [f"{path}: expected a mapping, got {_show(datum, secret)}"]
            problems: list[str] = []
            for key, value in datum.items():
                if not isinstance(key, str):
                    problems.append(f"{path}: map keys must be strings, got {_show(key, secret)}")
                    continue
                shown = "[...]" if secret else f"[{key!r}]"
                problems.extend(self.of_type(avro_type["values"], value, path + shown, secret))
            return problems
        return self._of_primitive(kind, datum, path, secret)

    def _of_logical(
        self, avro_type: Mapping[str, Any], datum: Any, path: str, secret: bool
    ) -> list[str]:
        accepted = _LOGICAL_PYTHON_TYPES[avro_type["logicalType"]]
        if isinstance(datum, accepted) or not self._of_primitive(
            avro_type["type"], datum, path, secret
        ):
            if avro_type["logicalType"] == "date" and isinstance(datum, str):
                try:
                    datetime.date.fromisoformat(datum)
                except ValueError:
                    return [f"{path}: {_show(datum, secret)} is not an ISO date (YYYY-MM-DD)"]
            return []
        names = " or ".join(
            t.__name__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__name__}"
            for t in accepted
        )
        return [f"{path}: expected {_describe(avro_type)} as {names}, got {_show(datum, secret)}"]

    def _of_union(self, branches: list[Any], datum: Any, path: str, secret: bool) -> list[str]:
        if any(not self.of_type(branch, datum, path, secret) for branch in branches):
            return []
        described = _describe(branches)
        if datum is None:
            return [f"{path}: is null, but the field's type {described} does not allow null"]
        others = [b for b in branches if b != "null"]
        if len(others) == 1:
            return self.of_type(others[0], datum, path, secret)
        return [f"{path}: {_show(datum, secret)} fits none of the types {described}"]

    def _of_primitive(self, kind: str, datum: Any, path: str, secret: bool) -> list[str]:
        fits = {
            "null": lambda d: d is None,
            "boolean": lambda d: isinstance(d, bool),
            "string": lambda d: isinstance(d, str),
            "bytes": lambda d: isinstance(d, bytes | bytearray),
            "int": lambda d: _is_int(d) and d in _INT_RANGE,
            "long": lambda d: _is_int(d) and d in _LONG_RANGE,
            "float": lambda d: isinstance(d, int | float) and not isinstance(d, bool),
            "double": lambda d: isinstance(d, int | float) and not isinstance(d, bool),
        }.get(kind)
        if fits is None or fits(datum):
            return []
        if kind in ("int", "long") and _is_int(datum):
            bits = 32 if kind == "int" else 64
            return [f"{path}: {_show(datum, secret)} is out of range for {kind} ({bits}-bit)"]
        return [f"{path}: expected {_article(kind)}, got {_show(datum, secret)}"]


def _decimal_problems(
    avro_type: Mapping[str, Any], datum: decimal.Decimal, path: str, secret: bool
) -> list[str]:
    precision, scale = avro_type["precision"], avro_type.get("scale", 0)
    shown = "the value" if secret else str(datum)
    _, digits, exponent = datum.as_tuple()
    if isinstance(exponent, str):  # NaN or infinity
        return [f"{path}: {shown} is not a finite number"]
    if -exponent > scale:
        return [
            f"{path}: {shown} has {-exponent} decimal places; "
            f"decimal({precision},{scale}) allows {scale}"
        ]
    if len(digits) > precision:
        return [f"{path}: {shown} has more than {precision} digits (decimal({precision},{scale}))"]
    return []


def _is_int(datum: Any) -> bool:
    return isinstance(datum, int) and not isinstance(datum, bool)


def _article(kind: str) -> str:
    if kind == "bytes":
        return kind
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _show(datum: Any, secret: bool) -> str:
    """Describe a value for an error message; values of personal fields stay hidden."""
    if datum is None:
        return "null"
    kind = type(datum).__name__
    if secret:
        return f"{_article(kind)} (value hidden: personal data)"
    text = repr(datum)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{kind} {text}"


def _describe(avro_type: Any) -> str:
    if isinstance(avro_type, str):
        return avro_type.rpartition(".")[2]
    if isinstance(avro_type, list):
        return "[" + ", ".join(_describe(b) for b in avro_type) + "]"
    kind = avro_type["type"]
    if avro_type.get("logicalType") == "decimal":
        return f"decimal({avro_type['precision']},{avro_type.get('scale', 0)})"
    if "logicalType" in avro_type:
        return f"{avro_type['logicalType']} ({kind})"
    if kind in ("record", "enum", "fixed"):
        return f"{kind} {avro_type['name'].rpartition('.')[2]}"
    if kind == "array":
        return f"array of {_describe(avro_type['items'])}"
    if kind == "map":
        return f"map of {_describe(avro_type['values'])}"
    return str(kind)
