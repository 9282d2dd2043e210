"""The outbox table definition, the relay's claim SQL per database, and the documented DDL."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.schema import CreateIndex, CreateTable

from adapters.sources.outbox import outbox_table
from adapters.sources.outbox.rows import OutboxRow
from adapters.sources.outbox.store import followers_query, heads_query, lock_query

DOCS = Path(__file__).resolve().parents[2] / "docs" / "outbox.md"
DIALECTS: dict[str, Dialect] = {
    "postgresql": postgresql.dialect(),
    "mariadb": mysql.dialect(is_mariadb=True),
    "sqlite": sqlite.dialect(),
}
COLUMNS = {
    "id": False,
    "event_id": False,
    "event_type": False,
    "aggregate_id": False,
    "sequence": True,
    "payload": False,
    "created_at": False,
    "published_at": True,
    "attempts": False,
    "last_error": True,
    "next_attempt_at": True,
}
NOW = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)


def sql(statement: sa.ClauseElement, dialect: str) -> str:
    return str(statement.compile(dialect=DIALECTS[dialect]))


def test_the_table_has_the_documented_columns_and_nullability() -> None:
    table = outbox_table()
    assert {c.name: c.nullable for c in table.columns} == COLUMNS


def test_event_ids_are_unique_and_the_pending_index_leads_with_published_at() -> None:
    table = outbox_table("opd_outbox")
    unique = [c for c in table.constraints if isinstance(c, sa.UniqueConstraint)]
    assert [[col.name for col in u.columns] for u in unique] == [["event_id"]]
    (index,) = table.indexes
    assert index.name == "ix_opd_outbox_pending"
    assert [c.name for c in index.columns] == ["published_at", "aggregate_id", "id"]


@pytest.mark.parametrize("dialect", ["postgresql", "mariadb"])
def test_heads_are_locked_with_skip_locked_on_servers_with_row_locks(dialect: str) -> None:
    rendered = sql(lock_query(outbox_table(), [1, 2], skip_locked=True), dialect)
    assert rendered.rstrip().endswith("FOR UPDATE SKIP LOCKED")


def test_sqlite_reads_the_heads_without_a_locking_clause() -> None:
    rendered = sql(lock_query(outbox_table(), [1, 2], skip_locked=False), "sqlite")
    assert "FOR UPDATE" not in rendered


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_finding_heads_is_a_plain_read_that_groups_unpublished_rows_per_aggregate(
    dialect: str,
) -> None:
    rendered = sql(heads_query(outbox_table(), 500, NOW), dialect)
    assert "FOR UPDATE" not in rendered, "locked heads must count, or a later row would pass"
    assert "min(spbe_outbox.id)" in rendered
    assert "GROUP BY spbe_outbox.aggregate_id" in rendered
    assert "next_attempt_at" in rendered


def test_followers_are_only_of_the_claimed_aggregates_and_in_id_order() -> None:
    head = OutboxRow(
        id=4,
        event_id="019b7cc6-4c00-7a3e-9b1d-5f2e8c4d7a10",
        event_type="PendudukUpdated",
        aggregate_id="3273025708900003",
        sequence=1,
        payload="{}",
        attempts=0,
    )
    query = followers_query(outbox_table(), [head], 10)
    rendered = sql(query, "postgresql")
    assert "spbe_outbox.aggregate_id IN" in rendered
    assert "ORDER BY spbe_outbox.id" in rendered
    assert "FOR UPDATE" not in rendered


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_the_documented_ddl_declares_the_same_columns_as_the_table(dialect: str) -> None:
    match = re.search(rf"<!-- ddl:{dialect} -->\s*```sql\n(.*?)```", DOCS.read_text(), re.S)
    assert match is not None, f"docs/outbox.md has no DDL for {dialect}"
    body = match.group(1)
    create = body[body.index("(") + 1 : body.index(";")]
    documented = {}
    for line in create.splitlines():
        words = line.strip().rstrip(",").split()
        if words and words[0].islower():
            documented[words[0]] = "NOT NULL" not in line and "PRIMARY KEY" not in line
    assert documented == COLUMNS
    assert (
        "CREATE INDEX ix_spbe_outbox_pending ON spbe_outbox (published_at, aggregate_id, id)"
        in body
    )
    assert "UNIQUE (event_id)" in body


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_the_table_compiles_for_every_supported_database(dialect: str) -> None:
    table = outbox_table()
    ddl = sql(CreateTable(table), dialect)
    (index,) = table.indexes
    assert "event_id VARCHAR(36) NOT NULL" in ddl
    assert "ix_spbe_outbox_pending" in sql(CreateIndex(index), dialect)


def test_mariadb_keeps_microseconds_and_a_payload_larger_than_64_kib() -> None:
    ddl = sql(CreateTable(outbox_table()), "mariadb")
    assert "published_at DATETIME(6)" in ddl
    assert "DEFAULT CURRENT_TIMESTAMP(6)" in ddl
    assert "payload MEDIUMTEXT NOT NULL" in ddl


def test_sqlite_ids_are_never_reused() -> None:
    assert "AUTOINCREMENT" in sql(CreateTable(outbox_table()), "sqlite")
