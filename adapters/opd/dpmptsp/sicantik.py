"""A SiCantik-like permit register: issuing a permit writes ``IzinDiterbitkan`` to the outbox."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from adapters.sources.outbox import add_to_outbox, create_outbox_table
from bus.contract.events import IzinDiterbitkan

__all__ = ["IZIN", "create_tables", "terbitkan_izin"]

_metadata = sa.MetaData()
IZIN = sa.Table(
    "izin",
    _metadata,
    sa.Column("nomor_izin", sa.String(100), primary_key=True),
    sa.Column("nib", sa.String(13), nullable=False),
    sa.Column("nama_usaha", sa.String(200), nullable=False),
    sa.Column("kbli", sa.String(5), nullable=False),
    sa.Column("kode_wilayah", sa.String(13), nullable=False),
    sa.Column("tanggal_terbit", sa.Date, nullable=False),
    sa.Column("status_penerbitan", sa.String(20), nullable=False),
)


def create_tables(engine: Engine) -> None:
    _metadata.create_all(engine)
    create_outbox_table(engine)


def terbitkan_izin(engine: Engine, izin: IzinDiterbitkan) -> str:
    """Issue the permit and announce it in one transaction; returns the event id."""
    with engine.begin() as conn:
        conn.execute(
            sa.insert(IZIN).values(
                nomor_izin=izin.nomor_izin,
                nib=izin.nib,
                nama_usaha=izin.nama_usaha,
                kbli=izin.kbli.kode,
                kode_wilayah=izin.lokasi.kode_wilayah,
                tanggal_terbit=izin.tanggal_terbit,
                status_penerbitan=izin.status_penerbitan.value,
            )
        )
        return add_to_outbox(conn, izin, aggregate_id=izin.nomor_izin, sequence=1)
