"""JSON Schema (draft 2020-12, the dialect of OpenAPI 3.1) of an event's plain-JSON body.

The body an OPD application posts is the form :meth:`bus.contract.events.SpbeEvent.from_json`
accepts and ``schemas/avro/examples/*.json`` show, derived here from the event's Avro
schema in the data standard:

==========================================  =============================================
Avro                                        JSON body
==========================================  =============================================
record                                      object; fields without a default required,
                                            no other properties
``["null", T]`` (and other unions)          ``anyOf`` of the branches; ``null`` or omitted
                                            when the field has the default ``null``
enum                                        string, one of the symbols
``int`` / ``long``                          integer in the 32/64-bit range
``float`` / ``double``                      number
``int`` + ``date``                          string ``YYYY-MM-DD`` (``format: date``)
``long`` + ``timestamp-millis|micros``      string, ISO-8601 with a zone (``date-time``)
``bytes``/``fixed`` + ``decimal(p, s)``     string such as ``"1250000.00"``: at most
                                            p - s digits before the point and s after
array / map                                 array / object of the item type
``"spbe.pii": true``                        ``x-spbe-pii: true``
``"spbe.ref": CODE``                        ``x-spbe-ref: CODE`` and the code's pattern
==========================================  =============================================

Every decimal of the standard is an amount of money, which
:data:`bus.contract.values.Money` keeps non-negative, so the decimal pattern has no sign.
A pattern is the written shape of a code only: the gateway's validation checks more
(the birth date inside a NIK, province and kabupaten ranges) and answers 422 naming the rule.

Why this is hand-written: no maintained package on PyPI converts Avro to JSON Schema,
and a generic converter would describe Avro's own JSON encoding, which is not this body:
there a union value is wrapped (``{"string": "..."}``), a decimal is a string of raw bytes
and a date is a day number, while the bus's JSON form writes them plainly.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from bus.contract.refcodes import RULES, RefCode
from bus.contract.schema import ATTR_PII, ATTR_REF, AvroSchema
from bus.errors import ConfigError

__all__ = [
    "REF_PATTERNS",
    "X_PII",
    "X_REF",
    "event_json_schema",
    "optional_fields",
]

X_PII: Final = "x-spbe-pii"
X_REF: Final = "x-spbe-ref"

#: The written shape of each reference code (anchored; ECMA-262 and Python alike).
REF_PATTERNS: Final[Mapping[RefCode, str]] = MappingProxyType(
    {
        RefCode.NIK: "^[0-9]{16}$",
        RefCode.NO_KK: "^[0-9]{16}$",
        RefCode.KODE_WILAYAH_KEMENDAGRI: r"^[0-9]{2}(\.[0-9]{2}(\.[0-9]{2}(\.[0-9]{4})?)?)?$",
        RefCode.KODE_WILAYAH_BPS: "^[0-9]{10}$",
        RefCode.KBLI: "^[0-9]{5}$",
        RefCode.NIB: "^[0-9]{13}$",
        RefCode.NPWP: "^[0-9]{16}$",
        RefCode.NOP: "^[0-9]{18}$",
    }
)

_INT32 = {"type": "integer", "format": "int32", "minimum": -(2**31), "maximum": 2**31 - 1}
_INT64 = {"type": "integer", "format": "int64", "minimum": -(2**63), "maximum": 2**63 - 1}
_PRIMITIVES: Final[Mapping[str, Mapping[str, Any]]] = MappingProxyType(
    {
        "null": {"type": "null"},
        "boolean": {"type": "boolean"},
        "int": _INT32,
        "long": _INT64,
        "float": {"type": "number", "format": "float"},
        "double": {"type": "number", "format": "double"},
        "string": {"type": "string"},
    }
)
_INSTANT = {
    "type": "string",
    "format": "date-time",
    "description": "ISO-8601 date-time with a time zone, e.g. 2026-11-28T03:15:00Z.",
}
_LOGICAL: Final[Mapping[str, Mapping[str, Any]]] = MappingProxyType(
    {
        "date": {"type": "string", "format": "date", "description": "ISO-8601 date YYYY-MM-DD."},
        "timestamp-millis": _INSTANT,
        "timestamp-micros": _INSTANT,
        "uuid": {"type": "string", "format": "uuid"},
    }
)
_FIX = "describe the field with a type the JSON body can carry (see adapters.gateway.json_schema)"


def event_json_schema(schema: AvroSchema) -> dict[str, Any]:
    """The JSON Schema of the plain-JSON body of ``schema``'s event, with its docs and tags."""
    return _Converter(schema).type_schema(schema.parsed, ref=None, expanding=frozenset())


def optional_fields(json_schema: Mapping[str, Any]) -> dict[str, Any]:
    """``json_schema`` with no property required, nested records included.

    The shape of what a reader gets: a subscription's projection keeps only the fields its
    contract allows, at any depth, so any property may be absent.
    """
    result: dict[str, Any] = {}
    for key, value in json_schema.items():
        if key == "required":
            continue
        if key == "properties":
            result[key] = {name: optional_fields(spec) for name, spec in value.items()}
        elif key in ("anyOf", "oneOf"):
            result[key] = [optional_fields(branch) for branch in value]
        elif key in ("items", "additionalProperties") and isinstance(value, Mapping):
            result[key] = optional_fields(value)
        else:
            result[key] = value
    return result


class _Converter:
    def __init__(self, schema: AvroSchema) -> None:
        self._schema = schema

    def type_schema(
        self, avro_type: Any, *, ref: str | None, expanding: frozenset[str]
    ) -> dict[str, Any]:
        if isinstance(avro_type, str):
            if avro_type in _PRIMITIVES:
                return self._primitive(avro_type, ref)
            if avro_type in expanding:
                raise ConfigError(
                    f"{self._schema.record_name}: {avro_type} refers to itself; a recursive "
                    "type has no finite JSON body",
                    fix=_FIX,
                )
            resolved = self._schema.resolve(avro_type)
            if resolved is avro_type:
                raise ConfigError(
                    f"{self._schema.record_name}: unknown Avro type {avro_type!r}", fix=_FIX
                )
            avro_type = resolved
        if isinstance(avro_type, list):
            branches = [self.type_schema(b, ref=ref, expanding=expanding) for b in avro_type]
            return branches[0] if len(branches) == 1 else {"anyOf": branches}
        logical = avro_type.get("logicalType")
        if logical == "decimal":
            return _decimal(avro_type)
        if logical in _LOGICAL:
            return dict(_LOGICAL[logical])
        kind = avro_type.get("type")
        if kind == "record":
            return self._record(avro_type, expanding | {avro_type["name"]})
        if kind == "enum":
            return _named(avro_type, {"type": "string", "enum": list(avro_type["symbols"])})
        if kind == "array":
            items = self.type_schema(avro_type["items"], ref=ref, expanding=expanding)
            return {"type": "array", "items": items}
        if kind == "map":
            values = self.type_schema(avro_type["values"], ref=ref, expanding=expanding)
            return {"type": "object", "additionalProperties": values}
        if isinstance(kind, str) and kind in _PRIMITIVES:
            return self._primitive(kind, ref)
        raise ConfigError(
            f"{self._schema.record_name}: Avro type {kind!r} has no plain-JSON form in the bus",
            fix=_FIX,
        )

    def _primitive(self, name: str, ref: str | None) -> dict[str, Any]:
        found = dict(_PRIMITIVES[name])
        if name == "string" and ref is not None:
            found["pattern"] = REF_PATTERNS[RefCode(ref)]
        return found

    def _record(self, record: Mapping[str, Any], expanding: frozenset[str]) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        required: list[str] = []
        for spec in record["fields"]:
            ref = spec.get(ATTR_REF)
            if ref is not None and ref not in {code.value for code in RefCode}:
                raise ConfigError(
                    f"{self._schema.record_name}: field {spec['name']} names an unknown "
                    f"reference code {ref!r}",
                    fix=f"use one of: {', '.join(code.value for code in RefCode)}",
                )
            properties[spec["name"]] = self._field(spec, ref, expanding)
            if "default" not in spec:
                required.append(spec["name"])
        result = _named(record, {"type": "object"})
        result.update(properties=properties, required=required, additionalProperties=False)
        return result

    def _field(
        self, spec: Mapping[str, Any], ref: str | None, expanding: frozenset[str]
    ) -> dict[str, Any]:
        found = self.type_schema(spec["type"], ref=ref, expanding=expanding)
        docs = [text for text in (spec.get("doc"), found.get("description")) if text]
        if ref is not None:
            docs.append(f"Rule: {RULES[RefCode(ref)]}.")
        if docs:
            found["description"] = "\n\n".join(dict.fromkeys(docs))
        if "default" in spec and spec["default"] is None:
            found["default"] = None
        if spec.get(ATTR_PII) is True:
            found[X_PII] = True
        if ref is not None:
            found[X_REF] = ref
        return found


def _named(avro_type: Mapping[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    result = {"title": str(avro_type["name"]).rpartition(".")[2], **base}
    if avro_type.get("doc"):
        result["description"] = avro_type["doc"]
    return result


def _decimal(avro_type: Mapping[str, Any]) -> dict[str, Any]:
    precision = int(avro_type["precision"])
    scale = int(avro_type.get("scale", 0))
    whole = f"[0-9]{{1,{precision - scale}}}"
    pattern = f"^{whole}(\\.[0-9]{{1,{scale}}})?$" if scale else f"^{whole}$"
    return {
        "type": "string",
        "pattern": pattern,
        "description": (
            f"Decimal ({precision} digits, {scale} after the point) written as a JSON "
            'string with a point before the decimals, e.g. "1250000.00".'
        ),
    }
