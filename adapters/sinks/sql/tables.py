"""The sink's two tables: the target table it writes and the processed-event table.

The processed-event table belongs to the sink and is created when missing::

    source          varchar(255)  ce_source      ┐ primary key
    event_id        varchar(64)   ce_id          ┘
    kafka_topic     varchar(255)
    kafka_partition integer
    kafka_offset    bigint
    applied_at      timestamp with time zone (UTC)

(``kafka_`` because ``partition`` and ``offset`` are reserved words in MariaDB and
PostgreSQL.) The target table is the OPD's own; with ``create_tables`` it is created
from the mapping (text varchar(255), money numeric(18,2), dates date, instants
timestamp with time zone, codes varchar). Either way it is read back from the database
and checked against the mapping at start, so a missing column or a key that is not
unique is a :class:`~bus.errors.ConfigError` then, not a dead letter per event later.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import sqlalchemy as sa

from adapters.sinks.sql.config import MappingAction, SqlSinkConfig, column_kinds, key_kind
from adapters.sinks.sql.fields import ValueKind, kind_of_constant, resolve
from bus.contract.events import EVENT_TYPES
from bus.errors import ConfigError

__all__ = ["SinkTables", "column_type", "prepare_tables", "processed_table", "target_table"]

TEXT_LENGTH: Final = 255

#: Which reflected column types accept a kind of value.
_ACCEPTS: Final[Mapping[ValueKind, tuple[type[sa.types.TypeEngine[Any]], ...]]] = {
    ValueKind.TEXT: (sa.String,),
    ValueKind.INTEGER: (sa.Integer, sa.Numeric, sa.String),
    ValueKind.FLOAT: (sa.Numeric, sa.String),
    ValueKind.DECIMAL: (sa.Numeric, sa.String),
    ValueKind.DATE: (sa.Date, sa.DateTime, sa.String),
    ValueKind.DATETIME: (sa.DateTime, sa.String),
    ValueKind.BOOLEAN: (sa.Boolean, sa.Integer),
}


@dataclass(frozen=True, slots=True)
class SinkTables:
    """The reflected target table and the processed-event table, ready for statements."""

    target: sa.Table
    processed: sa.Table
    key: sa.Column[Any]
    version: sa.Column[Any]


def _split(name: str) -> tuple[str | None, str]:
    schema, _, table = name.rpartition(".")
    return (schema or None), table


def column_type(kind: ValueKind | None) -> sa.types.TypeEngine[Any]:
    """The column type a created table gives values of ``kind``."""
    match kind:
        case ValueKind.INTEGER:
            return sa.BigInteger()
        case ValueKind.FLOAT:
            return sa.Float()
        case ValueKind.DECIMAL:
            return sa.Numeric(18, 2)
        case ValueKind.DATE:
            return sa.Date()
        case ValueKind.DATETIME:
            return sa.DateTime(timezone=True)
        case ValueKind.BOOLEAN:
            return sa.Boolean()
        case _:
            return sa.String(TEXT_LENGTH)


def processed_table(name: str, metadata: sa.MetaData) -> sa.Table:
    """The processed-event table, keyed by (``ce_source``, ``ce_id``)."""
    schema, table = _split(name)
    return sa.Table(
        table,
        metadata,
        sa.Column("source", sa.String(255), primary_key=True),
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("kafka_topic", sa.String(255), nullable=False),
        sa.Column("kafka_partition", sa.Integer(), nullable=False),
        sa.Column("kafka_offset", sa.BigInteger(), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        schema=schema,
    )


def target_table(config: SqlSinkConfig, metadata: sa.MetaData) -> sa.Table:
    """The target table as the mapping describes it (for ``create_tables``)."""
    schema, table = _split(config.table)
    columns = [
        sa.Column(config.key_column, column_type(key_kind(config)), primary_key=True),
        sa.Column(config.version_column, sa.BigInteger(), nullable=True),
    ]
    columns += [
        sa.Column(name, column_type(kind), nullable=True)
        for name, kind in column_kinds(config).items()
    ]
    return sa.Table(table, metadata, *columns, schema=schema)


def prepare_tables(connection: sa.Connection, config: SqlSinkConfig) -> SinkTables:
    """Create what is missing and allowed, read the tables back, check them; ConfigError if off."""
    ours = sa.MetaData()
    processed = processed_table(config.processed_table, ours)
    processed.create(connection, checkfirst=True)
    if config.create_tables:
        target_table(config, ours).create(connection, checkfirst=True)
    target = _reflect(connection, config.table, "table")
    _check_processed(_reflect(connection, config.processed_table, "processed_table"), processed)
    problems = _target_problems(connection, target, config)
    if problems:
        lines = "\n".join(f"  - {problem}" for problem in problems)
        raise ConfigError(
            f"table {config.table} does not fit the sink's mapping:\n{lines}",
            fix="change the table or the mapping as each line says, then start the sink again",
        )
    return SinkTables(
        target=target,
        processed=processed,
        key=target.c[config.key_column],
        version=target.c[config.version_column],
    )


def _reflect(connection: sa.Connection, name: str, setting: str) -> sa.Table:
    schema, table = _split(name)
    try:
        return sa.Table(table, sa.MetaData(), autoload_with=connection, schema=schema)
    except sa.exc.NoSuchTableError:
        raise ConfigError(
            f"{setting}: table {name} does not exist in the database",
            fix="create it (the OPD's schema migration), or set create_tables: true for a demo",
        ) from None


def _check_processed(found: sa.Table, expected: sa.Table) -> None:
    missing = [c.name for c in expected.columns if c.name not in found.c]
    if missing:
        raise ConfigError(
            f"processed_table: table {found.fullname} lacks column(s) {', '.join(missing)}; "
            "it is not a processed-event table of this sink",
            fix="point processed_table at a new table name; the sink creates it",
        )


def _is_unique(connection: sa.Connection, table: sa.Table, column: str) -> bool:
    inspector = sa.inspect(connection)
    sets = [[c.name for c in table.primary_key.columns]]
    sets += [
        list(u["column_names"]) for u in inspector.get_unique_constraints(table.name, table.schema)
    ]
    sets += [
        [str(name) for name in i["column_names"]]
        for i in inspector.get_indexes(table.name, table.schema)
        if i["unique"]
    ]
    return [column] in sets


def _target_problems(
    connection: sa.Connection, table: sa.Table, config: SqlSinkConfig
) -> list[str]:
    problems: list[str] = []
    name = config.table
    key = table.c.get(config.key_column)
    if key is None:
        problems.append(f"key_column: table {name} has no column {config.key_column}")
    elif not _is_unique(connection, table, config.key_column):
        problems.append(
            f"key_column: {name}.{config.key_column} is neither the primary key nor unique, "
            "so two rows could hold one key; add a unique constraint on it"
        )
    version = table.c.get(config.version_column)
    if version is None:
        problems.append(
            f"version_column: table {name} has no column {config.version_column}; add it as "
            f"a nullable bigint (ALTER TABLE {name} ADD COLUMN {config.version_column} BIGINT)"
        )
    elif not isinstance(version.type, sa.Integer | sa.Numeric):
        problems.append(
            f"version_column: {name}.{config.version_column} is {version.type}, not an integer"
        )
    for event, mapping in config.events.items():
        model = EVENT_TYPES[event]
        feeds: dict[str, tuple[str, ValueKind | None]] = {
            column: (f"events.{event}.columns.{column}", resolve(model, path).kind)
            for column, path in mapping.columns.items()
        }
        feeds |= {
            column: (f"events.{event}.set.{column}", kind_of_constant(value))
            for column, value in mapping.set_.items()
        }
        for column, (where, kind) in feeds.items():
            found = table.c.get(column)
            if found is None:
                problems.append(f"{where}: table {name} has no column {column}")
            elif kind is not None and not _accepts(found.type, kind):
                problems.append(
                    f"{where}: column {name}.{column} is {found.type}, which cannot hold a "
                    f"{kind.value} value"
                )
        if mapping.action is MappingAction.UPSERT:
            written = {config.key_column, config.version_column, *feeds}
            problems += [
                f"events.{event}: inserting a row leaves {name}.{column.name} empty, and the "
                "column is NOT NULL without a default; map it, or give it a default"
                for column in table.columns
                if column.name not in written and _needs_value(column)
            ]
    return problems


def _accepts(column_type: sa.types.TypeEngine[Any], kind: ValueKind) -> bool:
    if isinstance(column_type, sa.types.NullType):
        return True  # a type SQLAlchemy does not know: the database will judge
    return isinstance(column_type, _ACCEPTS[kind])


def _needs_value(column: sa.Column[Any]) -> bool:
    generated = column.primary_key and isinstance(column.type, sa.Integer)
    return not column.nullable and column.server_default is None and not generated
