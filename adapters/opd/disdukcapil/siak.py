"""A SIAK-like population register: the ``penduduk`` table and the changes Disdukcapil makes.

Each change updates the row, bumps its ``versi`` and writes the matching event to the
outbox in the same transaction; ``versi`` travels as the event's ``sequence``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from adapters.sources.outbox import add_to_outbox, create_outbox_table
from bus.contract.events import KematianDicatat, PendudukUpdated

__all__ = ["PENDUDUK", "catat_kematian", "create_tables", "daftarkan", "pindah_alamat"]

_metadata = sa.MetaData()
PENDUDUK = sa.Table(
    "penduduk",
    _metadata,
    sa.Column("nik", sa.String(16), primary_key=True),
    sa.Column("no_kk", sa.String(16), nullable=False),
    sa.Column("nama_lengkap", sa.String(200), nullable=False),
    sa.Column("tempat_lahir", sa.String(100), nullable=False),
    sa.Column("tanggal_lahir", sa.Date, nullable=False),
    sa.Column("jenis_kelamin", sa.String(20), nullable=False),
    sa.Column("agama", sa.String(30), nullable=False),
    sa.Column("status_perkawinan", sa.String(30), nullable=False),
    sa.Column("pekerjaan", sa.String(100), nullable=False),
    sa.Column("pendidikan_terakhir", sa.String(30)),
    sa.Column("jalan", sa.String(200), nullable=False),
    sa.Column("rt", sa.String(3), nullable=False),
    sa.Column("rw", sa.String(3), nullable=False),
    sa.Column("kode_wilayah", sa.String(13), nullable=False),
    sa.Column("kode_pos", sa.String(5)),
    sa.Column("status", sa.String(20), nullable=False, server_default="HIDUP"),
    sa.Column("versi", sa.Integer, nullable=False),
)
_ALAMAT = ("jalan", "rt", "rw", "kode_wilayah", "kode_pos")


def create_tables(engine: Engine) -> None:
    _metadata.create_all(engine)
    create_outbox_table(engine)


def _event(row: sa.Row[Any], changed: list[str], berlaku_sejak: date) -> PendudukUpdated:
    data = dict(row._mapping)
    return PendudukUpdated.from_json(
        {
            **{k: data[k] for k in PendudukUpdated.model_fields if k in data},
            "tanggal_lahir": data["tanggal_lahir"].isoformat(),
            "alamat": {k: data[k] for k in _ALAMAT},
            "changed_fields": changed,
            "berlaku_sejak": berlaku_sejak.isoformat(),
        }
    )


def _locked(conn: Connection, nik: str) -> sa.Row[Any]:
    query = sa.select(PENDUDUK).where(PENDUDUK.c.nik == nik).with_for_update()
    row = conn.execute(query).one_or_none()
    if row is None:
        raise LookupError("no such resident")
    return row


def daftarkan(engine: Engine, penduduk: PendudukUpdated) -> str:
    """Register a resident (version 1) and announce them; returns the event id."""
    data = penduduk.to_avro()
    values = {k: v for k, v in data.items() if k in PENDUDUK.c and k != "alamat"}
    values.update({k: data["alamat"][k] for k in _ALAMAT})
    with engine.begin() as conn:
        conn.execute(sa.insert(PENDUDUK).values(**values, versi=1))
        row = _locked(conn, penduduk.nik)
        event = _event(row, ["nama_lengkap", "alamat"], penduduk.berlaku_sejak)
        return add_to_outbox(conn, event, aggregate_id=penduduk.nik, sequence=1)


def pindah_alamat(engine: Engine, nik: str, alamat: dict[str, Any], berlaku_sejak: date) -> str:
    """The resident moved house: new address, next version, one PendudukUpdated."""
    with engine.begin() as conn:
        row = _locked(conn, nik)
        versi = row.versi + 1
        conn.execute(
            sa.update(PENDUDUK)
            .where(PENDUDUK.c.nik == nik)
            .values(**{k: alamat.get(k) for k in _ALAMAT}, versi=versi)
        )
        event = _event(_locked(conn, nik), ["alamat"], berlaku_sejak)
        return add_to_outbox(conn, event, aggregate_id=nik, sequence=versi)


def catat_kematian(engine: Engine, nik: str, no_akta: str, tanggal: date) -> str:
    """A death is registered: status MENINGGAL, next version, one KematianDicatat."""
    with engine.begin() as conn:
        row = _locked(conn, nik)
        versi = row.versi + 1
        conn.execute(
            sa.update(PENDUDUK).where(PENDUDUK.c.nik == nik).values(status="MENINGGAL", versi=versi)
        )
        event = KematianDicatat.from_json(
            {
                "nik": nik,
                "no_kk": row.no_kk,
                "nama_lengkap": row.nama_lengkap,
                "no_akta_kematian": no_akta,
                "tanggal_meninggal": tanggal.isoformat(),
                "kode_wilayah": row.kode_wilayah,
                "dicatat_pada": datetime.now(UTC).isoformat(),
            }
        )
        return add_to_outbox(conn, event, aggregate_id=nik, sequence=versi)
