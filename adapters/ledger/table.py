"""The ledger table ``spbe_ledger``, defined once with SQLAlchemy Core, and its guards.

One row is one delivery of one resident's data to one subscriber::

    id            auto-increment primary key: the order entries were written in
    subject       the resident's ledger pseudonym (bus.ledger.LedgerSubjects), never a NIK
    event_id      the delivered event's id (ce_id)
    event_type    e.g. PendudukUpdated
    subscriber    the subscription's subscriber id (its consumer group)
    opd           the receiving OPD, e.g. DINSOS
    purpose       the subscription's purpose
    legal_basis   its PKS number or regulation
    kind          delivery | snapshot | replay | api (read through the REST gateway)
    delivered_at  when the delivery was produced (UTC)

``ix_spbe_ledger_subject`` on ``(subject, delivered_at, id)`` serves "every entry of a
subject between two times, newest first" with one index range scan, however many
deliveries the ledger holds. ``ix_spbe_ledger_event`` on ``(subscriber, event_id)`` serves
a replay's lookup of the entries of the events it delivers again.

The table is append-only. :func:`create_ledger_table` also creates triggers that refuse
``UPDATE`` and ``DELETE`` (and ``TRUNCATE`` on PostgreSQL) on all three databases; the
grants of ``docs/contracts.md`` ("The delivery ledger") keep the service's own database
user to ``INSERT`` and ``SELECT``, so removing the triggers takes the owner.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from adapters.db import UtcDateTime
from bus.errors import ConfigError
from bus.ledger import MAX_LENGTHS, SUBJECT_LENGTH

__all__ = ["DEFAULT_TABLE", "UtcDateTime", "create_ledger_table", "ledger_table"]

DEFAULT_TABLE = "spbe_ledger"
#: A table name the triggers' SQL can hold unquoted.
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")


def ledger_table(name: str = DEFAULT_TABLE, metadata: sa.MetaData | None = None) -> sa.Table:
    """The ledger table called ``name``, in ``metadata`` (a new one by default)."""
    if not _NAME.match(name):
        raise ConfigError(
            "the ledger table name must be lowercase letters, digits and _ (at most 41), "
            "starting with a letter or _",
            fix=f"use the default {DEFAULT_TABLE!r}",
        )
    table = sa.Table(
        name,
        metadata if metadata is not None else sa.MetaData(),
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("subject", sa.String(SUBJECT_LENGTH), nullable=False),
        sa.Column("event_id", sa.String(MAX_LENGTHS["event_id"]), nullable=False),
        sa.Column("event_type", sa.String(MAX_LENGTHS["event_type"]), nullable=False),
        sa.Column("subscriber", sa.String(MAX_LENGTHS["subscriber"]), nullable=False),
        sa.Column("opd", sa.String(MAX_LENGTHS["opd"]), nullable=False),
        sa.Column("purpose", sa.String(MAX_LENGTHS["purpose"]), nullable=False),
        sa.Column("legal_basis", sa.String(MAX_LENGTHS["legal_basis"]), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("delivered_at", UtcDateTime(), nullable=False),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
        sqlite_autoincrement=True,
    )
    c = table.c
    sa.Index(f"ix_{name}_subject", c.subject, c.delivered_at, c.id)
    sa.Index(f"ix_{name}_event", c.subscriber, c.event_id)
    return table


def _guards(table: str, dialect: str) -> list[str]:
    """The statements that make ``table`` refuse UPDATE and DELETE on ``dialect``."""
    message = f"{table} is append-only"
    if dialect == "postgresql":
        function = f"{table}_append_only"
        return [
            f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION '{message}: % refused', TG_OP "
            "USING ERRCODE = 'insufficient_privilege'; END $$",
            f"DROP TRIGGER IF EXISTS {function} ON {table}",
            f"CREATE TRIGGER {function} BEFORE UPDATE OR DELETE OR TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE PROCEDURE {function}()",
        ]
    statements = []
    for operation in ("UPDATE", "DELETE"):
        trigger = f"{table}_no_{operation.lower()}"
        if dialect == "sqlite":
            statements.append(
                f"CREATE TRIGGER IF NOT EXISTS {trigger} BEFORE {operation} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{message}: {operation} refused'); END"
            )
        else:
            statements += [
                f"DROP TRIGGER IF EXISTS {trigger}",
                f"CREATE TRIGGER {trigger} BEFORE {operation} ON {table} FOR EACH ROW "
                f"SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '{message}: {operation} refused'",
            ]
    return statements


def create_ledger_table(
    engine: Engine, *, table: str = DEFAULT_TABLE, guards: bool = True
) -> sa.Table:
    """Create the ledger table, its index and (``guards``) its append-only triggers.

    Safe to call again: what exists is kept, an index missing from a table made by an
    earlier version is added, the triggers are replaced. ``guards=False``
    leaves the triggers out, for a database user without the right to create them (then
    the grants of docs/contracts.md are the only guard).
    """
    definition = ledger_table(table)
    with engine.begin() as conn:
        definition.metadata.create_all(conn, checkfirst=True)
        for index in definition.indexes:  # create_all skips those of an existing table
            index.create(conn, checkfirst=True)
        if guards:
            for statement in _guards(table, conn.dialect.name):
                conn.execute(sa.text(statement))
    return definition
