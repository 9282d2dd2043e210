"""The records of the registry topic: what one registration or one subject setting looks like.

The registry is a compacted Kafka topic with one partition. Two kinds of record live there,
both with a UTF-8 key and a JSON value:

=========================  ================================================================
key                        value
=========================  ================================================================
``<subject>/v<version>``   ``{"subject", "version", "fingerprint", "schema", "compatibility",
                           "principal", "registered_at"}``: one registered schema version
``<subject>/_config``      ``{"subject", "compatibility", "principal", "changed_at"}``: the
                           subject's compatibility mode
=========================  ================================================================

A subject is an event type (``id.go.spbe.dukcapil.PendudukUpdated.v1``), so a major version
bump is a new subject. ``fingerprint`` is the CRC-64-AVRO fingerprint as 16 hex digits, most
significant first (the number the codec's error messages print). ``schema`` is the schema as
written, its ``spbe.*`` governance attributes and docs included: the canonical form alone
would lose them. Times are RFC 3339 in UTC.

This module does no IO: it turns records into values and back, and refuses malformed ones
with a :class:`~bus.registry.errors.RegistryError` that says what is wrong.
"""

from __future__ import annotations

import datetime
import getpass
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bus.contract.compatibility import CompatibilityMode, parse_mode
from bus.contract.schema import AvroSchema
from bus.errors import ConfigError
from bus.registry.errors import RegistryError

__all__ = [
    "CONFIG_SUFFIX",
    "ENV_PRINCIPAL",
    "RecordKey",
    "RegisteredSchema",
    "SubjectConfig",
    "config_key",
    "default_principal",
    "parse_key",
    "subject_of",
    "utc_now",
    "validate_subject",
    "version_key",
]

#: Environment variable naming who registers schemas or changes modes.
ENV_PRINCIPAL = "SPBE_PRINCIPAL"
CONFIG_SUFFIX = "_config"

_VERSION_SUFFIX = re.compile(r"v([1-9][0-9]{0,8})")
_HEX16 = re.compile(r"[0-9a-f]{16}")
_BAD_SUBJECT_CHARS = re.compile(r"[/\s\x00-\x1f\x7f]")
_T = TypeVar("_T")
_MAX_SUBJECT_LENGTH = 249  # Kafka's own limit for a topic name; subjects stay in the same league


def utc_now() -> datetime.datetime:
    """The current time in UTC, to the millisecond (what the records store)."""
    now = datetime.datetime.now(datetime.UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def default_principal() -> str:
    """Who acts when nobody is named: ``$SPBE_PRINCIPAL``, else the OS user."""
    if explicit := os.environ.get(ENV_PRINCIPAL, "").strip():
        return explicit
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        return "unknown"


def validate_subject(subject: str) -> str:
    """Return ``subject`` when it can be part of a record key; ConfigError otherwise."""
    if not subject or len(subject) > _MAX_SUBJECT_LENGTH or _BAD_SUBJECT_CHARS.search(subject):
        raise ConfigError(
            f"subject {subject!r} is not usable: it must be 1 to {_MAX_SUBJECT_LENGTH} "
            "characters without '/', spaces or control characters",
            fix="use the event type as the subject (id.go.spbe.<domain>.<EventName>.v<major>)",
        )
    return subject


def subject_of(schema: AvroSchema) -> str:
    """The subject a schema registers under by default: its event type."""
    event_type = schema.event_type
    if event_type is None:
        raise ConfigError(
            f"schema {schema.name} has no event type (spbe.dublincore.identifier), so it has "
            "no default subject",
            fix="add spbe.dublincore.identifier to the schema, or pass the subject explicitly",
        )
    return event_type


def version_key(subject: str, version: int) -> bytes:
    """The record key of one version of a subject."""
    return f"{subject}/v{version}".encode()


def config_key(subject: str) -> bytes:
    """The record key of a subject's settings."""
    return f"{subject}/{CONFIG_SUFFIX}".encode()


@dataclass(frozen=True, slots=True)
class RecordKey:
    """A parsed record key: a subject plus a version, or ``version=None`` for its settings."""

    subject: str
    version: int | None

    def __str__(self) -> str:
        suffix = CONFIG_SUFFIX if self.version is None else f"v{self.version}"
        return f"{self.subject}/{suffix}"


def parse_key(key: bytes | None) -> RecordKey:
    """Parse a record key; RegistryError when it is not one of the registry's two forms."""
    if key is None:
        raise RegistryError("record has no key")
    try:
        text = key.decode("utf-8")
    except UnicodeDecodeError:
        raise RegistryError(f"record key is not UTF-8: {key[:40]!r}") from None
    subject, slash, suffix = text.rpartition("/")
    if not slash or not subject:
        raise RegistryError(f"record key {text!r} is not <subject>/v<version> or <subject>/_config")
    try:
        validate_subject(subject)
    except ConfigError as exc:
        raise RegistryError(f"record key {text!r}: {exc.message}") from None
    if suffix == CONFIG_SUFFIX:
        return RecordKey(subject, None)
    match = _VERSION_SUFFIX.fullmatch(suffix)
    if match is None:
        raise RegistryError(f"record key {text!r} ends neither in /v<version> nor in /_config")
    return RecordKey(subject, int(match[1]))


@dataclass(frozen=True, slots=True)
class RegisteredSchema:
    """One version of a subject, as the registry holds it.

    ``offset`` says where in the registry topic the record lies (``-1`` before it is
    written); it is not part of the record, so it takes no part in equality.
    """

    subject: str
    version: int
    schema: AvroSchema
    compatibility: CompatibilityMode
    principal: str
    registered_at: datetime.datetime
    offset: int = field(default=-1, compare=False)

    @property
    def fingerprint(self) -> int:
        """The CRC-64-AVRO fingerprint of the schema (unsigned)."""
        return self.schema.fingerprint

    @property
    def fingerprint_hex(self) -> str:
        """The fingerprint as 16 hex digits, most significant first."""
        return f"{self.schema.fingerprint:016x}"

    @property
    def key(self) -> bytes:
        return version_key(self.subject, self.version)

    def to_value(self) -> bytes:
        """The record value: JSON, the schema as written (attributes included)."""
        return _dump(
            {
                "subject": self.subject,
                "version": self.version,
                "fingerprint": self.fingerprint_hex,
                "schema": self.schema.raw,
                "compatibility": self.compatibility.value,
                "principal": self.principal,
                "registered_at": _format_time(self.registered_at),
            }
        )

    @classmethod
    def from_record(cls, key: bytes | None, value: bytes, *, offset: int = -1) -> RegisteredSchema:
        """Read a version record; RegistryError naming what is wrong when it is malformed."""
        parsed_key = parse_key(key)
        if parsed_key.version is None:
            raise RegistryError(f"record {parsed_key} holds settings, not a schema version")
        where = f"record {parsed_key}"
        data = _load(value, where)
        subject = _field(data, "subject", str, where)
        version = _field(data, "version", int, where)
        if (subject, version) != (parsed_key.subject, parsed_key.version):
            raise RegistryError(f"{where}: its value is about {subject}/v{version}")
        raw = _field(data, "schema", dict, where)
        try:
            schema = AvroSchema.from_json(raw)
        except ConfigError as exc:
            raise RegistryError(f"{where}: the schema is not valid: {exc.message}") from None
        fingerprint = _field(data, "fingerprint", str, where)
        if not _HEX16.fullmatch(fingerprint):
            raise RegistryError(f"{where}: fingerprint {fingerprint!r} is not 16 hex digits")
        if int(fingerprint, 16) != schema.fingerprint:
            raise RegistryError(
                f"{where}: fingerprint {fingerprint} does not match its schema "
                f"({schema.fingerprint:016x})"
            )
        return cls(
            subject=subject,
            version=version,
            schema=schema,
            compatibility=_mode(data, where),
            principal=_field(data, "principal", str, where),
            registered_at=_time(data, "registered_at", where),
            offset=offset,
        )


@dataclass(frozen=True, slots=True)
class SubjectConfig:
    """The compatibility mode set for a subject, who set it and when."""

    subject: str
    compatibility: CompatibilityMode
    principal: str
    changed_at: datetime.datetime
    offset: int = field(default=-1, compare=False)

    @property
    def key(self) -> bytes:
        return config_key(self.subject)

    def to_value(self) -> bytes:
        return _dump(
            {
                "subject": self.subject,
                "compatibility": self.compatibility.value,
                "principal": self.principal,
                "changed_at": _format_time(self.changed_at),
            }
        )

    @classmethod
    def from_record(cls, key: bytes | None, value: bytes, *, offset: int = -1) -> SubjectConfig:
        """Read a settings record; RegistryError naming what is wrong when it is malformed."""
        parsed_key = parse_key(key)
        if parsed_key.version is not None:
            raise RegistryError(f"record {parsed_key} holds a schema version, not settings")
        where = f"record {parsed_key}"
        data = _load(value, where)
        subject = _field(data, "subject", str, where)
        if subject != parsed_key.subject:
            raise RegistryError(f"{where}: its value is about subject {subject}")
        return cls(
            subject=subject,
            compatibility=_mode(data, where),
            principal=_field(data, "principal", str, where),
            changed_at=_time(data, "changed_at", where),
            offset=offset,
        )


# -- JSON helpers ----------------------------------------------------------------------------


def _dump(data: dict[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _load(value: bytes, where: str) -> dict[str, Any]:
    try:
        data = json.loads(value.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RegistryError(f"{where}: value is not UTF-8 JSON ({exc})") from None
    if not isinstance(data, dict):
        raise RegistryError(f"{where}: value is not a JSON object")
    return data


def _field(data: dict[str, Any], name: str, kind: type[_T], where: str) -> _T:
    value = data.get(name)
    if not isinstance(value, kind) or isinstance(value, bool) or (kind is str and not value):
        expected = {str: "a non-empty string", int: "an integer", dict: "a JSON object"}
        raise RegistryError(
            f"{where}: {name!r} must be {expected.get(kind, kind.__name__)}, found {value!r}"
        )
    return value


def _mode(data: dict[str, Any], where: str) -> CompatibilityMode:
    try:
        return parse_mode(_field(data, "compatibility", str, where))
    except ConfigError as exc:
        raise RegistryError(f"{where}: {exc.message}") from None


def _format_time(moment: datetime.datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("registry times must be timezone-aware")
    return moment.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")


def _time(data: dict[str, Any], name: str, where: str) -> datetime.datetime:
    text = _field(data, name, str, where)
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise RegistryError(f"{where}: {name!r} {text!r} is not an RFC 3339 time with a zone")
    return moment.astimezone(datetime.UTC)
