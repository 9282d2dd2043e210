"""Typed events: one frozen pydantic model per Avro schema under ``schemas/avro/``.

A model's field names are the Avro field names, nested records are nested models, and
reference-code fields use the types of :mod:`bus.contract.refcodes`. Every event class
converts between three forms:

* plain JSON, as an OPD developer writes it (:meth:`SpbeEvent.from_json`,
  :meth:`SpbeEvent.to_json`): dates ``"2024-05-01"``, instants ``"2026-11-28T03:15:00Z"``,
  money as decimal strings ``"1250000.00"``, enum symbols as strings;
* the Avro datum fastavro reads and writes (:meth:`SpbeEvent.from_avro`,
  :meth:`SpbeEvent.to_avro`): ``date``, UTC ``datetime``, ``Decimal``, symbol strings;
* the model itself.

Bad input raises :class:`~bus.errors.EventValidationError` listing every broken rule with
its dotted field path. Fields holding personal data are marked with :data:`PII`: they are
left out of ``repr()`` and carry ``spbe.pii`` like their schema field. Validation errors
never contain input values, so they are safe to log.

The models of the four stewards live here; what they are built from has modules of its
own: value types in :mod:`bus.contract.values`, enumerations in :mod:`bus.contract.enums`,
the base class and its error translation in :mod:`bus.contract.event_base`. Their names
are exported here too, so callers import the event contract from one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, ClassVar, Final, Self

from pydantic import (
    field_validator,
    model_validator,
)

from bus.contract.enums import (
    Agama,
    JenisKelamin,
    JenisPajak,
    JenisPemohon,
    JenisPerizinan,
    KanalBayar,
    KbliVersi,
    Pendidikan,
    SkalaUmkm,
    SkalaUsaha,
    StatusPenerbitan,
    StatusPerkawinan,
    SumberData,
    TingkatRisiko,
)
from bus.contract.event_base import (
    CrossFieldViolation,
    Record,
    SpbeEvent,
)
from bus.contract.refcodes import (
    NIB,
    NIK,
    NOP,
    NPWP,
    KbliKode,
    KodeWilayahDesa,
    KodeWilayahKemendagri,
    NoKK,
    RuleViolation,
)
from bus.contract.values import (
    PII,
    Count,
    Instant,
    IsoDate,
    KodeBank,
    KodePos,
    KodeRekening,
    Latitude,
    Longitude,
    MasaPajak,
    Money,
    RtRw,
    TahunPajak,
    Text,
)

__all__ = [
    "EVENT_TYPES",
    "PII",
    "Agama",
    "Alamat",
    "IzinDiterbitkan",
    "JenisKelamin",
    "JenisPajak",
    "JenisPemohon",
    "JenisPerizinan",
    "KanalBayar",
    "Kbli",
    "KbliVersi",
    "KematianDicatat",
    "Lokasi",
    "ObjekPajak",
    "PajakDaerahDibayar",
    "Pemohon",
    "Pendidikan",
    "PendudukUpdated",
    "Record",
    "SkalaUmkm",
    "SkalaUsaha",
    "SpbeEvent",
    "StatusPenerbitan",
    "StatusPerkawinan",
    "SumberData",
    "TingkatRisiko",
    "UmkmTerdaftar",
    "WajibPajak",
]

# --- Disdukcapil ------------------------------------------------------------------------


class Alamat(Record):
    """Alamat domisili sesuai Kartu Keluarga."""

    jalan: Annotated[Text, PII]
    rt: Annotated[RtRw, PII]
    rw: Annotated[RtRw, PII]
    kode_wilayah: Annotated[KodeWilayahDesa, PII]
    kode_pos: Annotated[KodePos | None, PII] = None


class PendudukUpdated(SpbeEvent):
    """A resident's record changed in SIAK (steward: Disdukcapil)."""

    event_name: ClassVar[str] = "PendudukUpdated"
    avro_name: ClassVar[str] = "id.go.spbe.dukcapil.PendudukUpdated"

    nik: Annotated[NIK, PII]
    no_kk: Annotated[NoKK, PII]
    nama_lengkap: Annotated[Text, PII]
    tempat_lahir: Annotated[Text, PII]
    tanggal_lahir: Annotated[IsoDate, PII]
    jenis_kelamin: Annotated[JenisKelamin, PII]
    agama: Annotated[Agama, PII]
    status_perkawinan: Annotated[StatusPerkawinan, PII]
    pekerjaan: Annotated[Text, PII]
    pendidikan_terakhir: Annotated[Pendidikan | None, PII] = None
    alamat: Alamat
    changed_fields: tuple[str, ...]
    berlaku_sejak: IsoDate

    @field_validator("changed_fields")
    @classmethod
    def _known_fields(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        allowed = [name for name in cls.model_fields if name not in ("nik", "changed_fields")]
        allowed += [f"alamat.{name}" for name in Alamat.model_fields]
        rule = "a non-empty list of distinct field names of PendudukUpdated: " + ", ".join(allowed)
        if not names:
            raise RuleViolation("is empty", rule)
        unknown = [name for name in names if name not in allowed]
        if unknown:
            raise RuleViolation(f"names unknown fields: {', '.join(unknown)}", rule)
        if len(set(names)) != len(names):
            raise RuleViolation("names a field twice", rule)
        return names


class KematianDicatat(SpbeEvent):
    """A resident's death was registered and the akta kematian issued (steward: Disdukcapil)."""

    event_name: ClassVar[str] = "KematianDicatat"
    avro_name: ClassVar[str] = "id.go.spbe.dukcapil.KematianDicatat"

    nik: Annotated[NIK, PII]
    no_kk: Annotated[NoKK, PII]
    nama_lengkap: Annotated[Text, PII]
    no_akta_kematian: Annotated[Text, PII]
    tanggal_meninggal: Annotated[IsoDate, PII]
    kode_wilayah: Annotated[KodeWilayahDesa, PII]
    dicatat_pada: Instant


# --- DPMPTSP ----------------------------------------------------------------------------


class Kbli(Record):
    """A KBLI code with the version of the classification it belongs to."""

    kode: KbliKode
    versi: KbliVersi


class Lokasi(Record):
    """Where the licensed business activity takes place."""

    kode_wilayah: KodeWilayahDesa
    alamat: Text
    lat: Latitude | None = None
    lon: Longitude | None = None


class Pemohon(Record):
    """The business actor who applied for the permit."""

    jenis: JenisPemohon
    nama: Annotated[Text, PII]
    npwp: Annotated[NPWP, PII]


class IzinDiterbitkan(SpbeEvent):
    """A risk-based business permit was issued (steward: DPMPTSP)."""

    event_name: ClassVar[str] = "IzinDiterbitkan"
    avro_name: ClassVar[str] = "id.go.spbe.dpmptsp.IzinDiterbitkan"

    nomor_izin: Text
    jenis_perizinan: JenisPerizinan
    nib: NIB
    kbli: Kbli
    tingkat_risiko: TingkatRisiko
    skala_usaha: SkalaUsaha
    nama_usaha: Text
    lokasi: Lokasi
    pemohon: Pemohon
    tanggal_terbit: IsoDate
    berlaku_sampai: IsoDate | None = None
    status_penerbitan: StatusPenerbitan
    dasar_hukum: Text

    @model_validator(mode="after")
    def _valid_after_issue(self) -> Self:
        if self.berlaku_sampai is not None and self.berlaku_sampai < self.tanggal_terbit:
            raise CrossFieldViolation(
                "berlaku_sampai",
                "is before tanggal_terbit",
                "berlaku_sampai is on or after tanggal_terbit",
            )
        return self


# --- DinkopUKM --------------------------------------------------------------------------


class UmkmTerdaftar(SpbeEvent):
    """A micro, small or medium business joined the regional UMKM register (steward: DinkopUKM)."""

    event_name: ClassVar[str] = "UmkmTerdaftar"
    avro_name: ClassVar[str] = "id.go.spbe.dinkopukm.UmkmTerdaftar"

    id_umkm: Text
    nib: NIB | None = None
    nik_pemilik: Annotated[NIK, PII]
    nama_pemilik: Annotated[Text, PII]
    npwp: Annotated[NPWP | None, PII] = None
    nama_usaha: Text
    kbli: Kbli
    skala_usaha: SkalaUmkm
    kode_wilayah: KodeWilayahDesa
    alamat_usaha: Annotated[Text | None, PII] = None
    jumlah_tenaga_kerja: Count
    sumber: SumberData
    terdaftar_pada: Instant


# --- Bapenda ----------------------------------------------------------------------------


class ObjekPajak(Record):
    """The taxed object; at least one of its identifiers is set."""

    nop: NOP | None = None
    npwpd: Text | None = None
    nomor_objek: Text | None = None

    @model_validator(mode="after")
    def _identified(self) -> Self:
        if self.nop is None and self.npwpd is None and self.nomor_objek is None:
            raise RuleViolation(
                "has no identifier", "at least one of nop, npwpd, nomor_objek is set"
            )
        return self


class WajibPajak(Record):
    """The taxpayer who paid."""

    nama: Annotated[Text, PII]
    npwp: Annotated[NPWP | None, PII] = None


_NEEDS_NOP: Final = frozenset({JenisPajak.PBB_P2, JenisPajak.BPHTB})


class PajakDaerahDibayar(SpbeEvent):
    """A regional tax payment was received and given an NTPD (steward: Bapenda)."""

    event_name: ClassVar[str] = "PajakDaerahDibayar"
    avro_name: ClassVar[str] = "id.go.spbe.bapenda.PajakDaerahDibayar"

    ntpd: Text
    jenis_pajak: JenisPajak
    objek: ObjekPajak
    wajib_pajak: WajibPajak
    tahun_pajak: TahunPajak
    masa_pajak: MasaPajak | None = None
    pokok: Money
    denda: Money
    total: Money
    waktu_bayar: Instant
    kanal: KanalBayar
    kode_bank: KodeBank | None = None
    kode_rekening_pendapatan: KodeRekening
    kode_wilayah_objek: KodeWilayahKemendagri

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.total != self.pokok + self.denda:
            raise CrossFieldViolation("total", "is not pokok + denda", "total = pokok + denda")
        if self.jenis_pajak in _NEEDS_NOP and self.objek.nop is None:
            raise CrossFieldViolation(
                "objek.nop", "is missing", "PBB_P2 and BPHTB payments name the NOP"
            )
        return self


EVENT_TYPES: Final[Mapping[str, type[SpbeEvent]]] = MappingProxyType(
    {
        cls.event_name: cls
        for cls in (
            PendudukUpdated,
            KematianDicatat,
            IzinDiterbitkan,
            UmkmTerdaftar,
            PajakDaerahDibayar,
        )
    }
)
