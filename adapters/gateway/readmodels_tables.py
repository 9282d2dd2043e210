"""The gateway's read-model tables, defined once with SQLAlchemy Core.

``spbe_gateway_penduduk``: one row per (subscriber, nik), what that subscription may see
of one resident::

    id            surrogate key: the position a page of results continues after
    subscriber    the subscription the row was delivered under (its subscriber id)
    nik           the resident's NIK (the projected event's ``nik``)
    kode_wilayah  alamat.kode_wilayah when the subscription receives it, else NULL
    document      the projected PendudukUpdated as JSON (NULL while only a death is known)
    kematian      the projected KematianDicatat as JSON, NULL when none was delivered
    event_id      ce_id of the last event that changed the row
    event_type    its event type (PendudukUpdated or KematianDicatat)
    sequence      the highest aggregate version applied (NULL when no event carried one)
    updated_at    when the row last changed (UTC)

``spbe_gateway_pajak``: one row per (subscriber, ntpd), with ``nop`` from ``objek.nop``
when projected. A unique key on (subscriber, nik) / (subscriber, ntpd) is the natural
key; ``id`` is the primary key so that SQLite numbers rows by itself.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from adapters.db import UtcDateTime

__all__ = [
    "PAJAK_TABLE",
    "PENDUDUK_TABLE",
    "ReadModelTables",
    "create_read_model_tables",
    "read_model_tables",
]

PENDUDUK_TABLE = "spbe_gateway_penduduk"
PAJAK_TABLE = "spbe_gateway_pajak"

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_SUBSCRIBER = 100  # bus.contract.projected_names.SUBSCRIBER_PATTERN
_EVENT_ID = 64
_EVENT_TYPE = 100


def _document() -> sa.JSON:
    # SQL NULL (not the JSON literal null) for an absent document.
    return sa.JSON(none_as_null=True)


class ReadModelTables:
    """The two tables, in one :class:`~sqlalchemy.MetaData`."""

    def __init__(self, metadata: sa.MetaData) -> None:
        self.metadata = metadata
        self.penduduk = sa.Table(
            PENDUDUK_TABLE,
            metadata,
            sa.Column("id", _ID, primary_key=True, autoincrement=True),
            sa.Column("subscriber", sa.String(_SUBSCRIBER), nullable=False),
            sa.Column("nik", sa.String(32), nullable=False),
            sa.Column("kode_wilayah", sa.String(32), nullable=True),
            sa.Column("document", _document(), nullable=True),
            sa.Column("kematian", _document(), nullable=True),
            sa.Column("event_id", sa.String(_EVENT_ID), nullable=False),
            sa.Column("event_type", sa.String(_EVENT_TYPE), nullable=False),
            sa.Column("sequence", sa.BigInteger(), nullable=True),
            sa.Column("updated_at", UtcDateTime(), nullable=False),
            sa.UniqueConstraint("subscriber", "nik", name=f"uq_{PENDUDUK_TABLE}_nik"),
            mysql_engine="InnoDB",
            mysql_charset="utf8mb4",
            sqlite_autoincrement=True,
        )
        c = self.penduduk.c
        sa.Index(f"ix_{PENDUDUK_TABLE}_wilayah", c.subscriber, c.kode_wilayah, c.id)
        self.pajak = sa.Table(
            PAJAK_TABLE,
            metadata,
            sa.Column("id", _ID, primary_key=True, autoincrement=True),
            sa.Column("subscriber", sa.String(_SUBSCRIBER), nullable=False),
            sa.Column("ntpd", sa.String(64), nullable=False),
            sa.Column("nop", sa.String(32), nullable=True),
            sa.Column("document", _document(), nullable=False),
            sa.Column("event_id", sa.String(_EVENT_ID), nullable=False),
            sa.Column("sequence", sa.BigInteger(), nullable=True),
            sa.Column("updated_at", UtcDateTime(), nullable=False),
            sa.UniqueConstraint("subscriber", "ntpd", name=f"uq_{PAJAK_TABLE}_ntpd"),
            mysql_engine="InnoDB",
            mysql_charset="utf8mb4",
            sqlite_autoincrement=True,
        )
        p = self.pajak.c
        sa.Index(f"ix_{PAJAK_TABLE}_nop", p.subscriber, p.nop, p.id)


def read_model_tables() -> ReadModelTables:
    """The read-model tables in a new :class:`~sqlalchemy.MetaData`."""
    return ReadModelTables(sa.MetaData())


def create_read_model_tables(engine: Engine, tables: ReadModelTables) -> None:
    """Create the tables and their indexes where missing; what exists is kept."""
    tables.metadata.create_all(engine, checkfirst=True)
