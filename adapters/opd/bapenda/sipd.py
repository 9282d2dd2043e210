"""Bapenda's revenue system: recording a payment writes ``PajakDaerahDibayar`` to the outbox."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from adapters.sources.outbox import add_to_outbox, create_outbox_table
from bus.contract.events import PajakDaerahDibayar

__all__ = ["PEMBAYARAN", "catat_pembayaran", "create_tables"]

_metadata = sa.MetaData()
PEMBAYARAN = sa.Table(
    "pembayaran",
    _metadata,
    sa.Column("ntpd", sa.String(40), primary_key=True),
    sa.Column("jenis_pajak", sa.String(30), nullable=False),
    sa.Column("total", sa.Numeric(18, 2), nullable=False),
    sa.Column("waktu_bayar", sa.DateTime(timezone=True), nullable=False),
)


def create_tables(engine: Engine) -> None:
    _metadata.create_all(engine)
    create_outbox_table(engine)


def catat_pembayaran(engine: Engine, pembayaran: PajakDaerahDibayar) -> str:
    """Record the payment and announce it in one transaction; returns the event id."""
    with engine.begin() as conn:
        conn.execute(
            sa.insert(PEMBAYARAN).values(
                ntpd=pembayaran.ntpd,
                jenis_pajak=pembayaran.jenis_pajak.value,
                total=pembayaran.total,
                waktu_bayar=pembayaran.waktu_bayar,
            )
        )
        return add_to_outbox(conn, pembayaran, aggregate_id=pembayaran.ntpd, sequence=1)
