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
from adapters.sources.outbox.store import candidates_query, lock_query
from adapters.sources.outbox.table import relay_indexes

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


#: name -> (columns, partial WHERE) of the relay's indexes, per database.
INDEXES = {
    "postgresql": {
        "ix_opd_outbox_published": (["published_at"], "published_at IS NOT NULL"),
        "ix_opd_outbox_queue": (["id"], "published_at IS NULL"),
        "ix_opd_outbox_retry": (
            ["next_attempt_at", "aggregate_id"],
            "published_at IS NULL AND next_attempt_at IS NOT NULL",
        ),
    },
    "mariadb": {
        "ix_opd_outbox_queue": (["published_at", "id"], None),
        "ix_opd_outbox_retry": (["next_attempt_at", "aggregate_id"], None),
    },
}
INDEXES["sqlite"] = INDEXES["postgresql"]


def test_event_ids_are_unique() -> None:
    table = outbox_table("opd_outbox")
    unique = [c for c in table.constraints if isinstance(c, sa.UniqueConstraint)]
    assert [[col.name for col in u.columns] for u in unique] == [["event_id"]]


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_each_database_gets_the_indexes_the_claim_reads_partial_where_it_can(
    dialect: str,
) -> None:
    name = DIALECTS[dialect].name
    found = {}
    for index in relay_indexes(outbox_table("opd_outbox"), name):
        where = index.dialect_options[name].get("where")
        rendered = None if where is None else re.sub(r"opd_outbox\.", "", sql(where, dialect))
        found[index.name] = ([c.name for c in index.columns], rendered)
    assert found == INDEXES[dialect]


@pytest.mark.parametrize(
    ("dialect", "url"),
    [("postgresql", "postgresql://"), ("mariadb", "mysql+pymysql://"), ("sqlite", "sqlite://")],
)
def test_creating_the_table_emits_only_this_databases_indexes(dialect: str, url: str) -> None:
    emitted: list[str] = []
    engine = sa.create_mock_engine(
        url, lambda ddl, *_, **__: emitted.append(str(ddl.compile(dialect=engine.dialect)))
    )
    outbox_table("opd_outbox").metadata.create_all(engine, checkfirst=False)
    created = sorted(re.findall(r"CREATE INDEX (\w+)", "\n".join(emitted)))
    assert created == sorted(INDEXES[dialect])


@pytest.mark.parametrize("dialect", ["postgresql", "mariadb"])
def test_heads_are_locked_with_skip_locked_on_servers_with_row_locks(dialect: str) -> None:
    rendered = sql(lock_query(outbox_table(), [1, 2], NOW, skip_locked=True), dialect)
    assert rendered.rstrip().endswith("FOR UPDATE SKIP LOCKED")
    assert "published_at IS NULL" in rendered
    assert "next_attempt_at" in rendered, "a head another relay failed meanwhile is not taken"


def test_sqlite_reads_without_a_locking_clause() -> None:
    rendered = sql(lock_query(outbox_table(), [1, 2], NOW, skip_locked=False), "sqlite")
    assert "FOR UPDATE" not in rendered


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_candidates_are_a_plain_read_in_id_order_without_grouping_the_backlog(
    dialect: str,
) -> None:
    rendered = sql(candidates_query(outbox_table(), 500, NOW), dialect)
    assert "FOR UPDATE" not in rendered, "locked heads must count, or a later row would pass"
    assert "GROUP BY" not in rendered
    assert "min(" not in rendered.lower()
    assert "ORDER BY spbe_outbox.id" in rendered
    assert "LIMIT" in rendered
    assert "spbe_outbox.next_attempt_at IS NULL OR spbe_outbox.next_attempt_at <=" in rendered
    # Aggregates behind a waiting row are left out in the same statement (one snapshot).
    assert "spbe_outbox.aggregate_id NOT IN (SELECT spbe_outbox.aggregate_id" in rendered


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
    flat = " ".join(body.split())
    for index in relay_indexes(outbox_table(), DIALECTS[dialect].name):
        assert " ".join(sql(CreateIndex(index), dialect).split()) + ";" in flat
    assert "UNIQUE (event_id)" in body


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_the_table_compiles_for_every_supported_database(dialect: str) -> None:
    table = outbox_table()
    ddl = sql(CreateTable(table), dialect)
    assert "event_id VARCHAR(36) NOT NULL" in ddl
    for index in relay_indexes(table, DIALECTS[dialect].name):
        assert sql(CreateIndex(index), dialect).startswith(f"CREATE INDEX {index.name} ON")


def test_mariadb_keeps_microseconds_and_a_payload_larger_than_64_kib() -> None:
    ddl = sql(CreateTable(outbox_table()), "mariadb")
    assert "published_at DATETIME(6)" in ddl
    assert "DEFAULT CURRENT_TIMESTAMP(6)" in ddl
    assert "payload MEDIUMTEXT NOT NULL" in ddl


def test_sqlite_ids_are_never_reused() -> None:
    assert "AUTOINCREMENT" in sql(CreateTable(outbox_table()), "sqlite")


@pytest.mark.parametrize(
    ("dialect", "heading"),
    [("postgresql", "-- PostgreSQL"), ("mariadb", "-- MariaDB"), ("sqlite", "-- SQLite")],
)
def test_the_upgrade_section_creates_every_index_and_drops_the_old_one(
    dialect: str, heading: str
) -> None:
    section = DOCS.read_text().split("## Upgrading the table", 1)[1].split("\n## ", 1)[0]
    block = section.split(heading, 1)[1].split("\n-- ", 1)[0]
    flat = " ".join(block.replace(" CONCURRENTLY", "").split())
    for index in relay_indexes(outbox_table(), DIALECTS[dialect].name):
        assert " ".join(sql(CreateIndex(index), dialect).split()) + ";" in flat
    assert "DROP INDEX ix_spbe_outbox_pending" in flat
