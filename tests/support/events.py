"""Realistic events for runtime tests, many keys from one example."""

from __future__ import annotations

from bus.contract.events import IzinDiterbitkan, PendudukUpdated
from bus.contract.standard import example

__all__ = ["SOURCE_DPMPTSP", "SOURCE_DUKCAPIL", "izin", "penduduk"]

SOURCE_DPMPTSP = "ID/PEMDA-3273/DPMPTSP/sicantik"
SOURCE_DUKCAPIL = "ID/PEMDA-3273/DISDUKCAPIL/siak"


def izin(key: int, *, nama_usaha: str | None = None) -> IzinDiterbitkan:
    """An IzinDiterbitkan whose Kafka key (nomor_izin) is numbered ``key``."""
    data = example("IzinDiterbitkan")
    data["nomor_izin"] = f"503/{key:04d}/PB-UMKU/DPMPTSP/2026"
    if nama_usaha is not None:
        data["nama_usaha"] = nama_usaha
    return IzinDiterbitkan.from_json(data)


def penduduk(serial: int) -> PendudukUpdated:
    """A PendudukUpdated for a woman born 17-08-1990 in Coblong, NIK serial ``serial``."""
    data = example("PendudukUpdated")
    data["nik"] = f"327302570890{serial:04d}"
    return PendudukUpdated.from_json(data)
