"""The catalogue: the bus's data architecture in one reviewable file (pure, no IO but reading it).

``deploy/catalog.yaml`` names the stewards (the OPDs whose applications own the data), the
topics they publish (partitions, replication, retention, cleanup policy, classification,
the event types each carries) and the subscriptions (who receives which topics, for what
purpose, under which legal basis such as a PKS number, which fields, until when) and the
REST gateway's API clients (:mod:`bus.ops.api_clients`).

Two levels of checking:

* the models check the file on its own: unknown keys, malformed names, duplicates, a
  subscription naming a topic the catalogue does not have, a topic whose steward is not
  listed;
* :func:`check_catalog` checks it against the data standard (``schemas/avro``): every event
  type exists, is stewarded by the topic's steward and is not classified higher than its
  topic, and every allowed field is a field of the event's schema holding no record (a whole
  record is refused, as the projection refuses it). It also reports expired subscriptions.

:func:`load_catalog` does both and raises one :class:`~bus.errors.ConfigError` that lists
every problem with its key path.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bus.contract.envelope import EVENT_TYPE_PATTERN, TOPIC_PATTERN, DataClassification
from bus.contract.pruning import check_allowed_path
from bus.contract.schema import AvroSchema
from bus.contract.standard import load_standard
from bus.errors import ConfigError
from bus.ops.api_clients import ApiClient, api_client_problems
from bus.ops.principals import APPLICATION_PATTERN, application_principal, principal_problems

__all__ = [
    "CLASSIFICATION_RANK",
    "Catalog",
    "CatalogReport",
    "CatalogTopic",
    "CleanupPolicy",
    "DeadLetterSettings",
    "Steward",
    "Subscription",
    "check_catalog",
    "default_catalog_path",
    "load_catalog",
    "read_catalog",
]

#: Lowest to highest: a topic may carry events of its own classification or lower.
CLASSIFICATION_RANK: Mapping[DataClassification, int] = {
    DataClassification.PUBLIC: 0,
    DataClassification.INTERNAL: 1,
    DataClassification.CONFIDENTIAL: 2,
    DataClassification.RESTRICTED: 3,
}

CleanupPolicy = Literal["delete", "compact", "compact,delete"]

_OPD_ID = r"^[A-Z][A-Z0-9_]*$"
_SUBSCRIBER_ID = r"^[a-z0-9][a-z0-9._-]*$"  # also its consumer group (bus.subscriber)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Steward(_Model):
    """An OPD that owns data and alone publishes its events."""

    id: str = Field(pattern=_OPD_ID, description="OPD id as in ce_source, e.g. DISDUKCAPIL")
    name: str = Field(min_length=1)
    pemda: str = Field(
        pattern=r"^\d{2}(\d{2})?$",
        description="kode wilayah Kemendagri of the pemda without dots: 32 (province), 3273",
    )
    #: Its publishing applications as in ce_source (``siak``); each is the Kafka principal
    #: ``<id lowercased>-<application>`` (``disdukcapil-siak``) that writes its topics.
    applications: tuple[Annotated[str, Field(pattern=APPLICATION_PATTERN, max_length=60)], ...] = ()

    @property
    def principals(self) -> tuple[str, ...]:
        """The principal of each of its applications, in the catalogue's order."""
        return tuple(application_principal(self.id, a) for a in self.applications)


class CatalogTopic(_Model):
    """One event topic and the Kafka settings it must have."""

    name: str = Field(pattern=TOPIC_PATTERN.pattern.join("^$"))
    steward: str
    event_types: tuple[str, ...] = Field(min_length=1)
    partitions: int = Field(ge=1, le=10_000)
    replication_factor: int = Field(ge=1, le=7)
    #: Default: 2 with three or more replicas (acks=all survives one loss), else 1.
    min_insync_replicas: int | None = Field(default=None, ge=1)
    retention_ms: int = Field(ge=-1, description="-1 keeps records forever")
    cleanup_policy: CleanupPolicy
    classification: DataClassification
    description: str = ""

    @model_validator(mode="after")
    def _insync_fits(self) -> CatalogTopic:
        if self.min_insync_replicas is not None and (
            self.min_insync_replicas > self.replication_factor
        ):
            raise ValueError(
                f"min_insync_replicas {self.min_insync_replicas} is more than replication_factor "
                f"{self.replication_factor}: every acks=all write would fail"
            )
        for event_type in self.event_types:
            if EVENT_TYPE_PATTERN.fullmatch(event_type) is None:
                raise ValueError(
                    f"event type {event_type!r} is not id.go.spbe.<domain>.<EventName>.v<major>"
                )
        return self

    @property
    def major(self) -> int:
        """The major version in the topic's name (``.v1`` -> 1)."""
        match = TOPIC_PATTERN.fullmatch(self.name)
        assert match is not None  # the field pattern guarantees it
        return int(match["major"])

    @property
    def effective_min_insync_replicas(self) -> int:
        """``min_insync_replicas``, or its default for the topic's replication."""
        if self.min_insync_replicas is not None:
            return self.min_insync_replicas
        return 2 if self.replication_factor >= 3 else 1


class Subscription(_Model):
    """A subscriber's right to receive topics: purpose, legal basis, fields, expiry."""

    subscriber: str = Field(pattern=_SUBSCRIBER_ID, max_length=100)
    opd: str = Field(pattern=_OPD_ID, description="the receiving OPD, e.g. DINSOS")
    topics: tuple[str, ...] = Field(min_length=1)
    purpose: str = Field(min_length=10)
    legal_basis: str = Field(min_length=3, description="PKS number or regulation")
    #: Event type -> dotted field paths the subscriber may receive.
    allowed_fields: Mapping[str, tuple[str, ...]] = Field(min_length=1)
    expires: date

    @model_validator(mode="after")
    def _unique_topics(self) -> Subscription:
        if len(set(self.topics)) != len(self.topics):
            raise ValueError("a topic is listed twice")
        return self


class DeadLetterSettings(_Model):
    """How the ``<topic>.dlq.<subscriber>`` topics are provisioned.

    Dead letters wait for an operator (redrive or purge), so by default they are kept
    until purged; their cleanup policy is always ``delete`` (compaction would drop earlier
    failures of the same key).
    """

    partitions: int = Field(default=1, ge=1)
    retention_ms: int = Field(default=-1, ge=-1)


class Catalog(_Model):
    """The whole catalogue file."""

    version: Literal[1] = 1
    stewards: tuple[Steward, ...] = Field(min_length=1)
    topics: tuple[CatalogTopic, ...] = Field(min_length=1)
    subscriptions: tuple[Subscription, ...] = ()
    dead_letters: DeadLetterSettings = DeadLetterSettings()
    api_clients: tuple[ApiClient, ...] = ()

    @model_validator(mode="after")
    def _cross_references(self) -> Catalog:
        problems: list[str] = []
        problems += _duplicates("stewards", [s.id for s in self.stewards])
        problems += _duplicates("topics", [t.name for t in self.topics])
        steward_ids = {s.id for s in self.stewards}
        topic_names = {t.name for t in self.topics}
        carried: dict[str, str] = {}
        for i, topic in enumerate(self.topics):
            if topic.steward not in steward_ids:
                problems.append(
                    f"topics[{i}].steward: {topic.steward!r} is not in stewards "
                    f"(known: {', '.join(sorted(steward_ids))})"
                )
            for event_type in topic.event_types:
                if event_type in carried and carried[event_type] != topic.name:
                    problems.append(
                        f"topics[{i}].event_types: {event_type} is already carried by "
                        f"{carried[event_type]}; an event type has one topic"
                    )
                carried.setdefault(event_type, topic.name)
        problems += principal_problems(
            [(s.id, s.applications) for s in self.stewards],
            [s.subscriber for s in self.subscriptions],
        )
        pairs: set[tuple[str, str]] = set()
        for i, sub in enumerate(self.subscriptions):
            where = f"subscriptions[{i}] ({sub.subscriber})"
            sub_types: set[str] = set()
            for name in sub.topics:
                if name not in topic_names:
                    problems.append(f"{where}.topics: {name} is not a topic of this catalogue")
                    continue
                if (sub.subscriber, name) in pairs:
                    problems.append(
                        f"{where}.topics: {name} is subscribed twice by this subscriber"
                    )
                pairs.add((sub.subscriber, name))
                sub_types.update(self.topic(name).event_types)
            for event_type in sub.allowed_fields:
                if event_type not in sub_types:
                    problems.append(
                        f"{where}.allowed_fields: {event_type} is not carried by its topics"
                    )
        problems += api_client_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def topic(self, name: str) -> CatalogTopic:
        """The topic called ``name``; KeyError if the catalogue has none."""
        for topic in self.topics:
            if topic.name == name:
                return topic
        raise KeyError(name)

    def subscribers(self) -> dict[str, tuple[str, ...]]:
        """Subscriber id -> every topic it receives (over all its subscriptions), in order."""
        result: dict[str, list[str]] = {}
        for sub in self.subscriptions:
            topics = result.setdefault(sub.subscriber, [])
            topics.extend(t for t in sub.topics if t not in topics)
        return {name: tuple(topics) for name, topics in result.items()}

    def expired(self, today: date) -> list[Subscription]:
        """Subscriptions whose ``expires`` date is before ``today``."""
        return [s for s in self.subscriptions if s.expires < today]


def _duplicates(section: str, names: list[str]) -> list[str]:
    counts = Counter(names)
    return [
        f"{section}: {name} is listed more than once" for name in sorted(counts) if counts[name] > 1
    ]


@dataclass(frozen=True, slots=True)
class CatalogReport:
    """What :func:`check_catalog` found: errors refuse the catalogue, warnings are shown."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def check_catalog(
    catalog: Catalog, standard: Mapping[str, AvroSchema], *, today: date
) -> CatalogReport:
    """Check the catalogue against the data standard; report expired subscriptions."""
    report = CatalogReport()
    by_type = {s.event_type: s for s in standard.values() if s.event_type}
    for i, topic in enumerate(catalog.topics):
        where = f"topics[{i}] ({topic.name})"
        for event_type in topic.event_types:
            schema = by_type.get(event_type)
            if schema is None:
                report.errors.append(
                    f"{where}.event_types: {event_type} is not in the data standard "
                    f"(known: {', '.join(sorted(by_type))})"
                )
                continue
            _check_topic_event(report, where, topic, event_type, schema)
    for i, sub in enumerate(catalog.subscriptions):
        where = f"subscriptions[{i}] ({sub.subscriber})"
        for event_type, fields in sub.allowed_fields.items():
            schema = by_type.get(event_type)
            if schema is None:
                continue  # reported on its topic
            for name in fields:
                try:  # the projection's own rule (bus.contract.pruning)
                    check_allowed_path(schema, name, f"{where}.allowed_fields.{event_type}")
                except ConfigError as exc:
                    report.errors.append(f"{exc.message}; fix: {exc.fix}")
        if sub.expires < today:
            report.warnings.append(
                f"{where}: expired on {sub.expires.isoformat()} ({sub.legal_basis}); "
                "renew the agreement or remove the subscription"
            )
    return report


def _check_topic_event(
    report: CatalogReport, where: str, topic: CatalogTopic, event_type: str, schema: AvroSchema
) -> None:
    if schema.classification is not None and (
        CLASSIFICATION_RANK[topic.classification] < CLASSIFICATION_RANK[schema.classification]
    ):
        report.errors.append(
            f"{where}.classification: {topic.classification.value} is lower than "
            f"{schema.classification.value}, the classification of {schema.record_name}"
        )
    if schema.steward is not None and schema.steward != topic.steward:
        report.errors.append(
            f"{where}.steward: {topic.steward} does not steward {schema.record_name} "
            f"(its steward is {schema.steward})"
        )
    if schema.major is not None and schema.major != topic.major:
        report.errors.append(
            f"{where}.event_types: {event_type} is major version {schema.major}, "
            f"the topic is v{topic.major}"
        )
    if schema.topic is not None and schema.topic != topic.name:
        report.warnings.append(
            f"{where}: {schema.record_name} names {schema.topic} as its topic; publishers "
            f"must set topic_overrides to publish it to {topic.name}"
        )


def default_catalog_path() -> Path:
    """``deploy/catalog.yaml`` beside the ``bus`` package."""
    return Path(__file__).resolve().parents[2] / "deploy" / "catalog.yaml"


def read_catalog(path: Path) -> Catalog:
    """Read and validate the file on its own (no data standard needed)."""
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read catalogue {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping (stewards, topics, ...)")
    try:
        return Catalog.model_validate(data)
    except ValidationError as exc:
        problems = [_describe(e) for e in exc.errors()]
        raise _refused(path, problems) from None


def load_catalog(
    path: Path | None = None,
    *,
    standard: Mapping[str, AvroSchema] | None = None,
    today: date | None = None,
) -> tuple[Catalog, CatalogReport]:
    """Read, validate and check the catalogue; its warnings come back with it.

    Raises :class:`~bus.errors.ConfigError` listing every problem when there is one.
    """
    file = path or default_catalog_path()
    catalog = read_catalog(file)
    report = check_catalog(
        catalog,
        standard if standard is not None else load_standard(),
        today=today or date.today(),
    )
    if report.errors:
        raise _refused(file, report.errors)
    return catalog, report


def _describe(error: Any) -> str:
    parts: list[str] = []
    for part in error["loc"]:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(f".{part}" if parts else str(part))
    key = "".join(parts) or "(top level)"
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown key"
    if error["type"] == "missing":
        return f"{key}: required key is missing"
    message = str(error["msg"]).removeprefix("Value error, ")
    if key == "(top level)":
        return message.replace("; ", "\n  - ")
    return f"{key}: {message}"


def _refused(path: Path, problems: list[str]) -> ConfigError:
    lines = [line for p in problems for line in p.split("\n  - ")]
    count = len(lines)
    listed = "\n".join(f"  - {line}" for line in lines)
    return ConfigError(
        f"{path} has {count} problem{'s' if count != 1 else ''}:\n{listed}",
        fix="correct the catalogue entries above (deploy/catalog.yaml documents each key)",
    )
