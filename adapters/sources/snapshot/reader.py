"""Reading the steward's table in key order, one page at a time (blocking SQLAlchemy Core).

Pages are keyset-paginated — ``WHERE key > :last ORDER BY key LIMIT :n``, the first page
without the ``WHERE`` — never ``OFFSET``: each page costs an index range scan from the last
key, however far into the table it is, and a row changed or added meanwhile moves no
other row between pages. Each page is read in a short transaction of its own, so the
application is never blocked for the length of a snapshot.

The table is reflected once at start, which gives each column its type (dates come back
as ``date`` on SQLite too) and lets the key column be checked: it must exist, be unique
on its own (the primary key, or a unique constraint or index), and be text, an integer
or a UUID, so that the last key can be stored as text and read back as the same value.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bus.errors import ConfigError

__all__ = ["KeyCodec", "SourceTable", "reflect_source"]

_KEY_TYPES: dict[type, str] = {str: "text", int: "integer", uuid.UUID: "UUID"}


@dataclass(frozen=True, slots=True)
class KeyCodec:
    """A key value as the text the progress table keeps, and back."""

    python_type: type

    def to_text(self, value: object) -> str:
        return str(value)

    def from_text(self, text: str) -> object:
        if self.python_type is int:
            return int(text)
        if self.python_type is uuid.UUID:
            return uuid.UUID(text)
        return text


@dataclass(frozen=True, slots=True)
class SourceTable:
    """The steward's table, reflected, with its key and version columns."""

    table: sa.Table
    key: sa.Column[Any]
    version: sa.Column[Any]
    codec: KeyCodec

    def page_query(self, after: object | None, limit: int) -> sa.Select[Any]:
        """The next ``limit`` rows after key ``after`` (from the first when ``None``)."""
        query = sa.select(self.table).order_by(self.key).limit(limit)
        return query if after is None else query.where(self.key > after)

    def read_page(self, engine: Engine, after: object | None, limit: int) -> list[dict[str, Any]]:
        """The next page, in key order: each row as a dict of column name to value."""
        with engine.connect() as conn:
            result = conn.execute(self.page_query(after, limit))
            names = list(result.keys())
            # A Row is a tuple: zipping it costs half of Row._asdict() per row.
            return [dict(zip(names, row, strict=True)) for row in result]

    def count_after(self, engine: Engine, after: object | None) -> int:
        """How many rows lie after key ``after`` (all of them when ``None``)."""
        query = sa.select(sa.func.count()).select_from(self.table)
        if after is not None:
            query = query.where(self.key > after)
        with engine.connect() as conn:
            return int(conn.execute(query).scalar_one())


def _is_unique_alone(inspector: sa.Inspector, table: str, column: str) -> bool:
    if inspector.get_pk_constraint(table).get("constrained_columns") == [column]:
        return True
    if any(u.get("column_names") == [column] for u in inspector.get_unique_constraints(table)):
        return True
    return any(
        ix.get("unique") and ix.get("column_names") == [column]
        for ix in inspector.get_indexes(table)
    )


def _python_type(column: sa.Column[Any]) -> type | None:
    try:
        found = column.type.python_type
    except NotImplementedError:
        return None
    return found if found in _KEY_TYPES else None


def _missing(field: str, table: str, column: str, names: Sequence[str]) -> ConfigError:
    return ConfigError(
        f"snapshot.{field}: the table {table!r} has no column {column!r}",
        fix=f"name one of its columns: {', '.join(names)}",
    )


def reflect_source(engine: Engine, table: str, key_column: str, version_column: str) -> SourceTable:
    """Reflect ``table`` and check its key and version columns; ConfigError names the key."""
    inspector = sa.inspect(engine)
    if not inspector.has_table(table):
        raise ConfigError(
            f"snapshot.table: the database has no table {table!r}",
            fix="name the steward's table that holds the current records",
        )
    reflected = sa.Table(table, sa.MetaData(), autoload_with=engine)
    names = [c.name for c in reflected.columns]
    if key_column not in reflected.c:
        raise _missing("key_column", table, key_column, names)
    if version_column not in reflected.c:
        raise _missing("version_column", table, version_column, names)
    key = reflected.c[key_column]
    if not _is_unique_alone(inspector, table, key_column):
        raise ConfigError(
            f"snapshot.key_column: {table}.{key_column} is not unique on its own (neither the "
            "primary key nor a unique constraint or index); reading in its order would skip "
            "rows that share a key",
            fix="use the table's primary key, or add a unique index on the column",
        )
    python_type = _python_type(key)
    if python_type is None:
        raise ConfigError(
            f"snapshot.key_column: {table}.{key_column} has type {key.type}; a snapshot key "
            "is text, an integer or a UUID",
            fix="use the table's primary key or another unique column of one of those types",
        )
    return SourceTable(reflected, key, reflected.c[version_column], KeyCodec(python_type))
