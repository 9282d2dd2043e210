"""A SIAK-like population register: the ``penduduk`` table and the changes Disdukcapil makes.

Each change updates the row, bumps its ``versi`` and writes the matching event to the
outbox in the same transaction; ``versi`` travels as the event's ``sequence``.

The residents SIAK held before it joined the bus have no outbox rows: the day-one
snapshot publishes them (``spbe-bus snapshot deploy/adapters/disdukcapil-outbox-relay.yaml``),
each row turned into a ``PendudukUpdated`` by :func:`snapshot_event`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from adapters.sources.outbox import add_to_outbox, create_outbox_table
from bus.contract.events import KematianDicatat, PendudukUpdated

__all__ = [
    "PENDUDUK",
    "SNAPSHOT_FIELDS",
    "catat_kematian",
    "create_tables",
    "daftarkan",
    "impor_penduduk",
    "pindah_alamat",
    "snapshot_event",
]

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
    # Since when the record holds as it stands (the last change's berlaku_sejak).
    sa.Column("berlaku_sejak", sa.Date, nullable=False),
    sa.Column("status", sa.String(20), nullable=False, server_default="HIDUP"),
    sa.Column("versi", sa.Integer, nullable=False),
)
_ALAMAT = ("jalan", "rt", "rw", "kode_wilayah", "kode_pos")
#: What a snapshot event states as changed: the whole record (it announces all of it).
SNAPSHOT_FIELDS = tuple(
    name
    for name in PendudukUpdated.model_fields
    if name not in ("nik", "changed_fields") and name != "berlaku_sejak"
)


def create_tables(engine: Engine) -> None:
    _metadata.create_all(engine)
    create_outbox_table(engine)


def _event(row: Mapping[str, Any], changed: Iterable[str], berlaku_sejak: date) -> PendudukUpdated:
    return PendudukUpdated.from_json(
        {
            **{k: row[k] for k in PendudukUpdated.model_fields if k in row},
            "tanggal_lahir": row["tanggal_lahir"].isoformat(),
            "alamat": {k: row[k] for k in _ALAMAT},
            "changed_fields": list(changed),
            "berlaku_sejak": berlaku_sejak.isoformat(),
        }
    )


def snapshot_event(row: Mapping[str, Any]) -> PendudukUpdated | None:
    """The ``PendudukUpdated`` a ``penduduk`` row states, for the day-one snapshot.

    The snapshot's entry point (``event:`` in the relay file's ``snapshot:`` section). A
    deceased resident is left out (``None``): a ``PendudukUpdated`` would tell subscribers
    a living resident lives there, and the register lacks what a ``KematianDicatat``
    needs (the akta number and date).
    """
    if row["status"] != "HIDUP":
        return None
    return _event(row, SNAPSHOT_FIELDS, row["berlaku_sejak"])


def _row_values(penduduk: PendudukUpdated) -> dict[str, Any]:
    data = penduduk.to_avro()
    values = {k: v for k, v in data.items() if k in PENDUDUK.c and k != "alamat"}
    values.update({k: data["alamat"][k] for k in _ALAMAT})
    return values


def _locked(conn: Connection, nik: str) -> sa.Row[Any]:
    query = sa.select(PENDUDUK).where(PENDUDUK.c.nik == nik).with_for_update()
    row = conn.execute(query).one_or_none()
    if row is None:
        raise LookupError("no such resident")
    return row


def daftarkan(engine: Engine, penduduk: PendudukUpdated) -> str:
    """Register a resident (version 1) and announce them; returns the event id."""
    with engine.begin() as conn:
        conn.execute(sa.insert(PENDUDUK).values(**_row_values(penduduk), versi=1))
        row = _locked(conn, penduduk.nik)
        event = _event(row._asdict(), ["nama_lengkap", "alamat"], penduduk.berlaku_sejak)
        return add_to_outbox(conn, event, aggregate_id=penduduk.nik, sequence=1)


def impor_penduduk(engine: Engine, residents: Iterable[tuple[PendudukUpdated, int]]) -> int:
    """Load residents as SIAK held them before the bus: rows at a version, no outbox rows.

    For the demo and tests of the day-one snapshot; returns how many were written.
    """
    values = [{**_row_values(p), "versi": versi} for p, versi in residents]
    if values:
        with engine.begin() as conn:
            conn.execute(sa.insert(PENDUDUK), values)
    return len(values)


def pindah_alamat(engine: Engine, nik: str, alamat: dict[str, Any], berlaku_sejak: date) -> str:
    """The resident moved house: new address, next version, one PendudukUpdated."""
    with engine.begin() as conn:
        row = _locked(conn, nik)
        versi = row.versi + 1
        conn.execute(
            sa.update(PENDUDUK)
            .where(PENDUDUK.c.nik == nik)
            .values(**{k: alamat.get(k) for k in _ALAMAT}, berlaku_sejak=berlaku_sejak, versi=versi)
        )
        event = _event(_locked(conn, nik)._asdict(), ["alamat"], berlaku_sejak)
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
