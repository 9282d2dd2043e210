"""The SQL sink's config: which table, which key, and how each event type maps onto it.

A file an OPD developer edits (loaded with :func:`adapters.config_file.load_config`)::

    database_url: ${DINSOS_DB_URL}
    table: penduduk
    key_column: nik
    events:
      PendudukUpdated:
        key: nik
        columns:
          nama_lengkap: nama_lengkap
          kode_wilayah: alamat.kode_wilayah
      KematianDicatat:
        key: nik
        action: update_only
        columns: {tanggal_meninggal: tanggal_meninggal}
        set: {status: MENINGGAL}

Everything is checked when the config is built: event names against
:data:`bus.contract.events.EVENT_TYPES`, every field path against its event model, and
that no mapped column is the key or version column. Each problem names its key
(``events.KematianDicatat.columns.tanggal_meninggal``) and a fix. Pure: no database.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Final, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from adapters.config_file import FromFile
from adapters.sinks.sql.fields import PathError, ValueKind, kind_of_constant, resolve
from bus.contract.events import EVENT_TYPES

__all__ = [
    "DEFAULT_PROCESSED_TABLE",
    "DEFAULT_VERSION_COLUMN",
    "Constant",
    "EventMapping",
    "MappingAction",
    "SqlSinkConfig",
    "column_kinds",
    "key_kind",
]

DEFAULT_VERSION_COLUMN: Final = "spbe_sequence"
DEFAULT_PROCESSED_TABLE: Final = "spbe_processed_events"

_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_PATH = re.compile(r"[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*")


def _sql_name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise PydanticCustomError(
            "sql_name",
            "'{value}' is not a usable SQL name; fix: use lowercase letters, digits and _, "
            "starting with a letter or _, at most 63 characters",
            {"value": value},
        )
    return value


def _table_name(value: str) -> str:
    parts = value.split(".")
    if len(parts) > 2 or not all(_NAME.fullmatch(part) for part in parts):
        raise PydanticCustomError(
            "sql_table_name",
            "'{value}' is not a usable table name; fix: write table or schema.table in "
            "lowercase letters, digits and _",
            {"value": value},
        )
    return value


def _field_path(value: str) -> str:
    if not _PATH.fullmatch(value):
        raise PydanticCustomError(
            "field_path",
            "'{value}' is not a field path; fix: write event field names joined by dots, "
            "e.g. nik or alamat.kode_wilayah",
            {"value": value},
        )
    return value


SqlName = Annotated[str, AfterValidator(_sql_name)]
TableName = Annotated[str, AfterValidator(_table_name)]
FieldPathText = Annotated[str, AfterValidator(_field_path)]
#: A value ``set`` writes as it is: text, a number, true/false, a date, or null.
Constant = StrictStr | StrictBool | StrictInt | StrictFloat | date | None


class MappingAction(StrEnum):
    """What an event does to its row."""

    #: Insert the row when it is absent, update it otherwise.
    UPSERT = "upsert"
    #: Update the row when present; an absent row stays absent (e.g. a death record).
    UPDATE_ONLY = "update_only"


class EventMapping(BaseModel):
    """How one event type changes the target table."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: The event field giving the row's key, e.g. ``nik`` or ``nomor_izin``.
    key: FieldPathText
    #: Column -> event field path (dots walk into nested records).
    columns: dict[SqlName, FieldPathText] = Field(default_factory=dict)
    action: MappingAction = MappingAction.UPSERT
    #: Column -> constant, e.g. ``status: MENINGGAL`` for a removal-style event.
    set_: dict[SqlName, Constant] = Field(default_factory=dict, alias="set")

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        known = ["key", "columns", "action", "set"]
        errors: list[InitErrorDetails] = []
        for name in data:
            if name in known:
                continue
            close = difflib.get_close_matches(str(name), known, n=1)
            hint = (
                f"did you mean '{close[0]}'?" if close else "known keys here: " + ", ".join(known)
            )
            errors.append(mapping_error((str(name),), "unknown key", hint, data[name]))
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return data


class SqlSinkConfig(FromFile, BaseModel):
    """One SQL sink: a database, one target table, and a mapping per event type.

    The processed-event table records every event applied, keyed by (``ce_source``,
    ``ce_id``). Sinks that write different tables from the same events need processed
    tables of their own, or the second would take the events for duplicates.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: SQLAlchemy URL: ``postgresql+psycopg://``, ``mysql+pymysql://`` or ``sqlite:///``.
    database_url: SecretStr
    #: The subscriber OPD's table (``table`` or ``schema.table``).
    table: TableName
    #: The table's key column, unique in the table (e.g. ``nik`` or ``nomor_izin``).
    key_column: SqlName
    #: Integer column holding the sequence of the event that last changed the row.
    version_column: SqlName = DEFAULT_VERSION_COLUMN
    processed_table: TableName = DEFAULT_PROCESSED_TABLE
    #: Create the target table from the mapping when missing (demos, tests).
    create_tables: bool = False
    #: Event type name -> mapping; events of other types are ignored.
    events: dict[str, EventMapping] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_mapping(self) -> Self:
        errors = _problems(self)
        if errors:
            raise ValidationError.from_exception_data(type(self).__name__, errors)
        return self


def mapping_error(
    loc: tuple[str, ...],
    problem: str,
    fix: str,
    value: object,
    *,
    error_type: str = "sql_sink_mapping",
) -> InitErrorDetails:
    """One problem of a sink's file, as pydantic reports it: ``<problem>; fix: <fix>``."""
    return InitErrorDetails(
        type=PydanticCustomError(
            error_type, "{problem}; fix: {fix}", {"problem": problem, "fix": fix}
        ),
        loc=loc,
        input=value,
    )


def key_kind(
    config: SqlSinkConfig, models: Mapping[str, type[BaseModel]] = EVENT_TYPES
) -> ValueKind:
    """The kind of value the key column holds (the same for every event type).

    ``models`` maps event names to their classes: the standard's, or a subscription's
    projected events (:func:`bus.ops.projections.contract_models`).
    """
    name, mapping = next(iter(config.events.items()))
    return resolve(models[name], mapping.key).kind


def column_kinds(
    config: SqlSinkConfig, models: Mapping[str, type[BaseModel]] = EVENT_TYPES
) -> dict[str, ValueKind | None]:
    """Every mapped column and the kind of value it gets (None: only ever set to null)."""
    kinds: dict[str, ValueKind | None] = {}
    for name, mapping in config.events.items():
        model = models[name]
        for column, path in mapping.columns.items():
            kinds[column] = kinds.get(column) or resolve(model, path).kind
        for column, value in mapping.set_.items():
            kinds[column] = kinds.get(column) or kind_of_constant(value)
    return kinds


def _problems(config: SqlSinkConfig) -> list[InitErrorDetails]:
    errors: list[InitErrorDetails] = []
    if config.version_column == config.key_column:
        errors.append(
            mapping_error(
                ("version_column",),
                "is the key_column too",
                "give the version its own integer column, e.g. spbe_sequence",
                config.version_column,
            )
        )
    if config.processed_table == config.table:
        errors.append(
            mapping_error(
                ("processed_table",),
                "is the target table too",
                f"keep the default {DEFAULT_PROCESSED_TABLE}",
                config.processed_table,
            )
        )
    key_kinds: dict[ValueKind, str] = {}
    fed: dict[str, tuple[ValueKind, str]] = {}

    def feeds(column: str, kind: ValueKind | None, loc: tuple[str, ...]) -> None:
        if kind is None:
            return
        first = fed.setdefault(column, (kind, ".".join(loc)))
        if first[0] is not kind:
            errors.append(
                mapping_error(
                    loc,
                    f"gives column {column} a {kind.value} value, and {first[1]} gives it a "
                    f"{first[0].value} value",
                    "map each column from values of one kind",
                    column,
                )
            )

    def reserved(column: str, loc: tuple[str, ...], event: str) -> bool:
        if column == config.key_column:
            errors.append(
                mapping_error(
                    loc,
                    f"is the key_column; the sink writes it from events.{event}.key",
                    f"remove {column} here",
                    column,
                )
            )
            return True
        if column == config.version_column:
            errors.append(
                mapping_error(
                    loc,
                    "is the version_column; the sink writes it from the event's sequence",
                    f"remove {column} here, or set version_column to another column",
                    column,
                )
            )
            return True
        return False

    for name, mapping in config.events.items():
        where = ("events", name)
        model = EVENT_TYPES.get(name)
        if model is None:
            close = difflib.get_close_matches(name, list(EVENT_TYPES), n=1)
            hint = (
                f"did you mean '{close[0]}'?" if close else "use one of: " + ", ".join(EVENT_TYPES)
            )
            errors.append(mapping_error(where, "is not a known event type", hint, name))
            continue
        try:
            key = resolve(model, mapping.key)
        except PathError as exc:
            errors.append(mapping_error((*where, "key"), exc.problem, exc.fix, mapping.key))
        else:
            if not key.required:
                errors.append(
                    mapping_error(
                        (*where, "key"),
                        f"'{mapping.key}' may be empty in a {name} event, and every row needs "
                        "a key",
                        "key the table by a field every event carries",
                        mapping.key,
                    )
                )
            key_kinds.setdefault(key.kind, f"events.{name}.key")
        for column, path in mapping.columns.items():
            loc = (*where, "columns", column)
            if reserved(column, loc, name):
                continue
            try:
                feeds(column, resolve(model, path).kind, loc)
            except PathError as exc:
                errors.append(mapping_error(loc, exc.problem, exc.fix, path))
        for column, value in mapping.set_.items():
            loc = (*where, "set", column)
            if reserved(column, loc, name):
                continue
            if column in mapping.columns:
                errors.append(
                    mapping_error(loc, "is mapped under columns too", "keep one of the two", column)
                )
                continue
            feeds(column, kind_of_constant(value), loc)
        if mapping.action is MappingAction.UPDATE_ONLY and not mapping.columns and not mapping.set_:
            errors.append(
                mapping_error(
                    (*where, "action"),
                    "update_only with no columns and no set changes nothing",
                    "add columns or set",
                    mapping.action.value,
                )
            )
    if len(key_kinds) > 1:
        described = ", ".join(f"{loc} holds {kind.value}" for kind, loc in key_kinds.items())
        errors.append(
            mapping_error(
                ("events",),
                f"the keys differ in kind ({described})",
                "key every event type by the same identifier",
                None,
            )
        )
    return errors
