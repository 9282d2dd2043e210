"""Event schemas as values: parsed once, fingerprinted, and read for their governance attributes.

An :class:`AvroSchema` is one ``.avsc`` file of the data standard (*Standar Data*). It holds
the schema three ways: the JSON as written, the schema parsed by fastavro (used to encode
and decode) and the schema parsed by the Apache ``avro`` package (used by the compatibility
checker). Parsing with both libraries at load time means a schema that either would refuse
is refused once, with the file named, instead of failing later on the hot path.

Its identity on the wire is the CRC-64-AVRO fingerprint of its Parsing Canonical Form (Avro
specification, "Schema Fingerprints"). The fingerprint is kept as an unsigned 64-bit int; the
Java reference implementation prints the same 64 bits as a signed ``long``. On the wire it is
little-endian (:attr:`AvroSchema.single_object_header`, :mod:`bus.contract.codec`).

Governance lives in schema attributes, which Avro carries along and ignores:

=============================  =========================================================
``spbe.steward``               the steward OPD that alone may publish the event
``spbe.aggregate``             the aggregate the event belongs to (``penduduk``)
``spbe.topic``                 ``spbe.<domain>.<aggregate>.v<major>``
``spbe.key``                   the top-level field that is the Kafka key
``spbe.key_pseudonymised``     true when the key is a keyed pseudonym (HMAC), not a raw id
``spbe.classification``        public | internal | confidential | restricted
``spbe.version``               the major version (an int, 1 or more)
``spbe.dublincore``            Dublin Core metadata; its ``identifier`` is the event type
``spbe.pii`` (on a field)      true on personal data
``spbe.ref`` (on a field)      the reference-code type of the field (``KodeWilayahKemendagri``)
=============================  =========================================================
"""

from __future__ import annotations

import copy
import functools
import json
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import avro.errors
import avro.schema
import fastavro
import fastavro.schema

from bus.contract.envelope import EVENT_TYPE_PATTERN, TOPIC_PATTERN, DataClassification
from bus.errors import ConfigError

__all__ = [
    "ATTR_AGGREGATE",
    "ATTR_CLASSIFICATION",
    "ATTR_DUBLINCORE",
    "ATTR_KEY",
    "ATTR_KEY_PSEUDONYMISED",
    "ATTR_PII",
    "ATTR_REF",
    "ATTR_STEWARD",
    "ATTR_TOPIC",
    "ATTR_VERSION",
    "AvroSchema",
    "fingerprint64",
    "load_schema_dir",
]

ATTR_STEWARD = "spbe.steward"
ATTR_AGGREGATE = "spbe.aggregate"
ATTR_TOPIC = "spbe.topic"
ATTR_KEY = "spbe.key"
ATTR_KEY_PSEUDONYMISED = "spbe.key_pseudonymised"
ATTR_CLASSIFICATION = "spbe.classification"
ATTR_VERSION = "spbe.version"
ATTR_DUBLINCORE = "spbe.dublincore"
ATTR_PII = "spbe.pii"
ATTR_REF = "spbe.ref"

_STRING_ATTRS = (ATTR_STEWARD, ATTR_AGGREGATE, ATTR_TOPIC, ATTR_KEY)
_FIX_SCHEMA = "correct the schema so that it is valid Avro (Avro 1.11 specification)"
_FIX_ATTRIBUTE = "correct the spbe.* attribute of the schema (see the table in bus.contract.schema)"


def fingerprint64(canonical_form: str) -> int:
    """Return the CRC-64-AVRO fingerprint of a Parsing Canonical Form as an unsigned int.

    fastavro returns the fingerprint as the hex of its little-endian bytes (the order the
    single-object encoding writes them), so the bytes are read back little-endian.
    """
    digest = fastavro.schema.fingerprint(canonical_form, "CRC-64-AVRO")
    return int.from_bytes(bytes.fromhex(digest), "little")


@dataclass(frozen=True, eq=False, repr=False)
class AvroSchema:
    """One record schema of the data standard, parsed and fingerprinted.

    Build it with :meth:`from_json` or :func:`load_schema_dir`. Two schemas are equal when
    their JSON is equal (attributes and docs included), not merely their canonical form.
    The mappings it holds are shared: treat them as read-only.
    """

    raw: Mapping[str, Any]
    parsed: dict[str, Any]
    apache: Any  # the same schema parsed by the Apache avro package
    name: str  # full name, namespace included
    canonical_form: str
    fingerprint: int
    _text: str = field(repr=False)

    @classmethod
    def from_json(cls, schema: str | Mapping[str, Any]) -> AvroSchema:
        """Parse a record schema from JSON text or an already decoded JSON object.

        Raises :class:`~bus.errors.ConfigError` when the text is not JSON, the schema is
        not a valid Avro record schema, or one of the ``spbe.*`` attributes is malformed.
        """
        if isinstance(schema, str):
            try:
                decoded = json.loads(schema)
            except json.JSONDecodeError as exc:
                raise ConfigError(
                    f"schema is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                    fix="fix the JSON syntax of the schema",
                ) from None
        else:
            decoded = copy.deepcopy(dict(schema))
        try:
            text = json.dumps(decoded, sort_keys=True, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"schema is not plain JSON data: {exc}") from None
        if not isinstance(decoded, dict) or decoded.get("type") != "record":
            raise ConfigError(
                'an event schema must be a JSON object with "type": "record"',
                fix="wrap the event's fields in a record schema",
            )
        parsed = _parse_fastavro(decoded)
        apache = _parse_apache(decoded)
        canonical = fastavro.schema.to_parsing_canonical_form(decoded)
        _check_attributes(decoded, parsed)
        return cls(
            raw=decoded,
            parsed=parsed,
            apache=apache,
            name=parsed["name"],
            canonical_form=canonical,
            fingerprint=fingerprint64(canonical),
            _text=text,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AvroSchema):
            return NotImplemented
        return self._text == other._text

    def __hash__(self) -> int:
        return hash(self._text)

    def __repr__(self) -> str:
        return f"AvroSchema(name={self.name!r}, fingerprint={self.fingerprint:#018x})"

    @functools.cached_property
    def single_object_header(self) -> bytes:
        """``C3 01`` and the little-endian fingerprint: the first 10 bytes of every value."""
        return b"\xc3\x01" + self.fingerprint.to_bytes(8, "little")

    # -- names -----------------------------------------------------------------------------

    @property
    def record_name(self) -> str:
        """The record's name without its namespace (the EventName)."""
        return self.name.rpartition(".")[2]

    @property
    def named_types(self) -> Mapping[str, Any]:
        """Every named type the schema defines, by full name, as fastavro parsed it."""
        named: Mapping[str, Any] = self.parsed["__named_schemas"]
        return named

    def resolve(self, avro_type: Any) -> Any:
        """Return the definition behind a named-type reference; any other type unchanged."""
        if isinstance(avro_type, str):
            return self.named_types.get(avro_type, avro_type)
        return avro_type

    # -- governance attributes ---------------------------------------------------------------

    @property
    def steward(self) -> str | None:
        """The steward OPD (``spbe.steward``), e.g. ``DISDUKCAPIL``."""
        return self._str_attr(ATTR_STEWARD)

    @property
    def aggregate(self) -> str | None:
        """The aggregate (``spbe.aggregate``), e.g. ``penduduk``."""
        return self._str_attr(ATTR_AGGREGATE)

    @property
    def topic(self) -> str | None:
        """The topic the event is published to (``spbe.topic``)."""
        return self._str_attr(ATTR_TOPIC)

    @property
    def key_field(self) -> str | None:
        """The top-level field whose value is the Kafka key (``spbe.key``)."""
        return self._str_attr(ATTR_KEY)

    @property
    def key_pseudonymised(self) -> bool:
        """True when the key is a keyed pseudonym of personal data (``spbe.key_pseudonymised``)."""
        return self.raw.get(ATTR_KEY_PSEUDONYMISED) is True

    @property
    def classification(self) -> DataClassification | None:
        """The data classification of the event (``spbe.classification``)."""
        value = self.raw.get(ATTR_CLASSIFICATION)
        return None if value is None else DataClassification(value)

    @property
    def major(self) -> int | None:
        """The major version (``spbe.version``)."""
        value = self.raw.get(ATTR_VERSION)
        return value if isinstance(value, int) else None

    @property
    def dublincore(self) -> Mapping[str, Any]:
        """The Dublin Core metadata (``spbe.dublincore``); empty when absent."""
        value = self.raw.get(ATTR_DUBLINCORE)
        return value if isinstance(value, dict) else {}

    @property
    def event_type(self) -> str | None:
        """The CloudEvents type, ``id.go.spbe.<domain>.<EventName>.v<major>``.

        It is the Dublin Core ``identifier`` of the schema.
        """
        value = self.dublincore.get("identifier")
        return value if isinstance(value, str) else None

    def pii_fields(self) -> list[str]:
        """Dotted paths of every field tagged ``"spbe.pii": true``, nested ones included.

        Items of an array add ``[]`` to the path and values of a map add ``{}``
        (``anggota[].nik_token``); a branch of a union keeps the field's path.
        """
        return [path for path, spec in self.fields() if spec.get(ATTR_PII) is True]

    def ref_fields(self) -> dict[str, str]:
        """Dotted path to reference-code type of every field carrying ``spbe.ref``."""
        return {path: spec[ATTR_REF] for path, spec in self.fields() if ATTR_REF in spec}

    def fields(self) -> Iterator[tuple[str, Mapping[str, Any]]]:
        """Yield ``(dotted path, field definition)`` for every field, depth first."""
        yield from self._fields(self.parsed, "", frozenset())

    def _fields(
        self, avro_type: Any, prefix: str, seen: frozenset[str]
    ) -> Iterator[tuple[str, Mapping[str, Any]]]:
        if isinstance(avro_type, str):
            if avro_type in seen or avro_type not in self.named_types:
                return  # a primitive, or a recursive reference already being walked
            avro_type = self.named_types[avro_type]
        if isinstance(avro_type, list):
            for branch in avro_type:
                yield from self._fields(branch, prefix, seen)
            return
        kind = avro_type.get("type")
        if kind == "record":
            inner = seen | {avro_type["name"]}
            for spec in avro_type["fields"]:
                path = f"{prefix}.{spec['name']}" if prefix else spec["name"]
                yield path, spec
                yield from self._fields(spec["type"], path, inner)
        elif kind == "array":
            yield from self._fields(avro_type["items"], f"{prefix}[]", seen)
        elif kind == "map":
            yield from self._fields(avro_type["values"], f"{prefix}{{}}", seen)

    def _str_attr(self, name: str) -> str | None:
        value = self.raw.get(name)
        return value if isinstance(value, str) else None


def load_schema_dir(path: str | Path) -> dict[str, AvroSchema]:
    """Load every ``*.avsc`` file of a directory, keyed by record name (the EventName).

    Raises :class:`~bus.errors.ConfigError` naming the file for unreadable or invalid
    schemas, and naming both files when two define the same record name.
    """
    directory = Path(path)
    if not directory.is_dir():
        raise ConfigError(
            f"schema directory {directory} does not exist or is not a directory",
            fix="point to the folder holding the .avsc files (schemas/avro)",
        )
    schemas: dict[str, AvroSchema] = {}
    origins: dict[str, Path] = {}
    for file in sorted(directory.glob("*.avsc")):
        try:
            schema = AvroSchema.from_json(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{file}: cannot read the schema file: {exc}") from None
        except ConfigError as exc:
            raise ConfigError(f"{file}: {exc.message}", fix=exc.fix) from None
        name = schema.record_name
        if name in schemas:
            raise ConfigError(
                f"{file}: record {name} is already defined in {origins[name]}",
                fix="give every event schema its own record name, one file per event type",
            )
        schemas[name] = schema
        origins[name] = file
    return schemas


def _parse_fastavro(decoded: dict[str, Any]) -> dict[str, Any]:
    try:
        parsed = fastavro.parse_schema(copy.deepcopy(decoded))
    except Exception as exc:  # fastavro raises several unrelated types for a bad schema
        raise ConfigError(f"not a valid Avro schema: {exc}", fix=_FIX_SCHEMA) from None
    if not isinstance(parsed, dict):  # a record schema parses to a dict
        raise ConfigError("not a valid Avro record schema", fix=_FIX_SCHEMA)
    return parsed


def _parse_apache(decoded: dict[str, Any]) -> Any:
    # Unknown or inconsistent logical types are only a warning to the avro package (the
    # spec says to fall back to the underlying type); in the data standard they are typos.
    with warnings.catch_warnings():
        warnings.simplefilter("error", avro.errors.IgnoredLogicalType)
        try:
            return avro.schema.parse(json.dumps(decoded))
        except (avro.errors.AvroException, avro.errors.IgnoredLogicalType) as exc:
            raise ConfigError(f"not a valid Avro schema: {exc}", fix=_FIX_SCHEMA) from None


def _check_attributes(raw: dict[str, Any], parsed: dict[str, Any]) -> None:
    """Refuse malformed ``spbe.*`` attributes, naming the attribute and the rule."""
    name = parsed["name"].rpartition(".")[2]

    def fail(message: str) -> NoReturn:
        raise ConfigError(f"record {name}: {message}", fix=_FIX_ATTRIBUTE)

    for attr in _STRING_ATTRS:
        if attr in raw and (not isinstance(raw[attr], str) or not raw[attr]):
            fail(f"{attr} must be a non-empty string, found {raw[attr]!r}")
    if ATTR_KEY_PSEUDONYMISED in raw and not isinstance(raw[ATTR_KEY_PSEUDONYMISED], bool):
        fail(f"{ATTR_KEY_PSEUDONYMISED} must be true or false")
    topic = raw.get(ATTR_TOPIC)
    if topic is not None and not TOPIC_PATTERN.fullmatch(topic):
        fail(f"{ATTR_TOPIC} {topic!r} does not have the form spbe.<domain>.<aggregate>.v<major>")
    key = raw.get(ATTR_KEY)
    if key is not None and key not in {spec["name"] for spec in parsed["fields"]}:
        fail(f"{ATTR_KEY} names field {key!r}, which is not a top-level field of the record")
    classification = raw.get(ATTR_CLASSIFICATION)
    allowed = [c.value for c in DataClassification]
    if classification is not None and classification not in allowed:
        fail(f"{ATTR_CLASSIFICATION} {classification!r} is not one of {', '.join(allowed)}")
    major = raw.get(ATTR_VERSION)
    if major is not None and (isinstance(major, bool) or not isinstance(major, int) or major < 1):
        fail(f"{ATTR_VERSION} must be an integer of 1 or more, found {major!r}")
    dublincore = raw.get(ATTR_DUBLINCORE)
    if dublincore is not None and not isinstance(dublincore, dict):
        fail(f"{ATTR_DUBLINCORE} must be a JSON object")
    identifier = (dublincore or {}).get("identifier")
    if identifier is not None:
        match = EVENT_TYPE_PATTERN.fullmatch(identifier) if isinstance(identifier, str) else None
        if match is None:
            fail(
                f"{ATTR_DUBLINCORE}.identifier {identifier!r} does not have the form "
                "id.go.spbe.<domain>.<EventName>.v<major>"
            )
        elif match["event"] != name:
            fail(f"{ATTR_DUBLINCORE}.identifier {identifier!r} names {match['event']}, not {name}")
        elif major is not None and int(match["major"]) != major:
            fail(
                f"{ATTR_DUBLINCORE}.identifier {identifier!r} disagrees with {ATTR_VERSION} {major}"
            )
    _check_field_attributes(parsed)


def _check_field_attributes(parsed: dict[str, Any]) -> None:
    stack: list[Any] = [parsed]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            for spec in node.get("fields", ()):
                where = f"record {node['name'].rpartition('.')[2]}, field {spec['name']}"
                if ATTR_PII in spec and not isinstance(spec[ATTR_PII], bool):
                    problem = f"{where}: {ATTR_PII} must be true or false"
                    raise ConfigError(problem, fix=_FIX_ATTRIBUTE)
                ref = spec.get(ATTR_REF)
                if ATTR_REF in spec and (not isinstance(ref, str) or not ref):
                    raise ConfigError(
                        f"{where}: {ATTR_REF} must name a reference-code type, found {ref!r}",
                        fix=_FIX_ATTRIBUTE,
                    )
                stack.append(spec["type"])
            for key in ("items", "values"):
                if key in node:
                    stack.append(node[key])
