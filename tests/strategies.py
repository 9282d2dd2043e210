"""Hypothesis strategies for valid reference codes and valid event instances.

Every strategy produces values the contract accepts, so a property test can feed them
through encode/decode round trips. NIKs carry a real birth date (day + 40 for women).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from bus.contract.events import (
    EVENT_TYPES,
    Agama,
    Alamat,
    IzinDiterbitkan,
    JenisKelamin,
    JenisPajak,
    JenisPemohon,
    JenisPerizinan,
    KanalBayar,
    Kbli,
    KbliVersi,
    KematianDicatat,
    Lokasi,
    ObjekPajak,
    PajakDaerahDibayar,
    Pemohon,
    Pendidikan,
    PendudukUpdated,
    SkalaUmkm,
    SkalaUsaha,
    SpbeEvent,
    StatusPenerbitan,
    StatusPerkawinan,
    SumberData,
    TingkatRisiko,
    UmkmTerdaftar,
    WajibPajak,
)

Strategy = st.SearchStrategy

# --- reference codes --------------------------------------------------------------------


def _digits(low: int, high: int, width: int) -> Strategy[str]:
    return st.integers(low, high).map(lambda n: f"{n:0{width}d}")


def provinces() -> Strategy[str]:
    """Province codes 11-99."""
    return _digits(11, 99, 2)


def kabkota() -> Strategy[str]:
    """Kabupaten (01-69) and kota (71-99) codes."""
    return st.one_of(_digits(1, 69, 2), _digits(71, 99, 2))


def kecamatan_prefixes() -> Strategy[str]:
    """Six-digit PPKKCC kecamatan codes, the start of a NIK or a No. KK."""
    return st.tuples(provinces(), kabkota(), _digits(1, 99, 2)).map("".join)


def kemendagri_codes(level: int | None = None) -> Strategy[str]:
    """Kemendagri codes written with dots; ``level`` 1-4 fixes the depth (4 = desa/kelurahan)."""
    parts = st.tuples(
        provinces(),
        kabkota(),
        _digits(1, 99, 2),
        st.tuples(st.sampled_from("123"), _digits(1, 999, 3)).map("".join),
    )
    depth = st.just(level) if level else st.integers(1, 4)
    return st.tuples(parts, depth).map(lambda pair: ".".join(pair[0][: pair[1]]))


def bps_codes() -> Strategy[str]:
    """BPS region codes: 10 digits, 2-2-3-3."""
    return st.tuples(provinces(), kabkota(), _digits(1, 999, 3), _digits(1, 999, 3)).map("".join)


@st.composite
def niks_with_birth(draw: st.DrawFn) -> tuple[str, date, JenisKelamin]:
    """A NIK with the birth date and sex it encodes (women's day + 40)."""
    # A 100-year window keeps the two-digit year unambiguous.
    born = draw(st.dates(date(1926, 1, 1), date(2025, 12, 31)))
    sex = draw(st.sampled_from(JenisKelamin))
    day = born.day + (40 if sex is JenisKelamin.PEREMPUAN else 0)
    serial = draw(st.integers(1, 9999))
    prefix = draw(kecamatan_prefixes())
    return f"{prefix}{day:02d}{born.month:02d}{born.year % 100:02d}{serial:04d}", born, sex


def niks() -> Strategy[str]:
    """Valid NIKs."""
    return niks_with_birth().map(lambda triple: triple[0])


def no_kks() -> Strategy[str]:
    """Valid No. KK: a kecamatan prefix and ten more digits."""
    return st.tuples(kecamatan_prefixes(), _digits(0, 10**10 - 1, 10)).map("".join)


def nibs() -> Strategy[str]:
    """Valid NIBs: 13 digits, not all zeros."""
    return _digits(1, 10**13 - 1, 13)


def npwps() -> Strategy[str]:
    """Valid NPWPs: an individual's NIK, or 0 followed by an entity's 15 digits."""
    return st.one_of(niks(), _digits(1, 10**15 - 1, 15).map(lambda rest: "0" + rest))


def nops() -> Strategy[str]:
    """Valid NOPs: 2+2+3+3+3+4+1 digits on a BPS-style region prefix."""
    return st.tuples(
        provinces(),
        kabkota(),
        _digits(1, 999, 3),
        _digits(1, 999, 3),
        _digits(1, 999, 3),
        _digits(1, 9999, 4),
        _digits(0, 9, 1),
    ).map("".join)


def kbli_codes() -> Strategy[str]:
    """Valid KBLI codes: 5 digits, golongan pokok 01-99."""
    return _digits(1000, 99999, 5)


# --- value types ------------------------------------------------------------------------


def texts() -> Strategy[str]:
    """Non-empty text without control characters or surrounding spaces."""
    chars = st.characters(exclude_categories=("Cc", "Cs"))
    return st.text(chars, min_size=1, max_size=60).map(str.strip).filter(bool)


def instants() -> Strategy[datetime]:
    """UTC instants with millisecond precision."""
    return st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ).map(lambda moment: moment.replace(microsecond=moment.microsecond // 1000 * 1000))


def money(max_value: str = "9999999999999999.99") -> Strategy[Decimal]:
    """Non-negative amounts with two decimal places."""
    return st.decimals(min_value=0, max_value=Decimal(max_value), places=2)


def optional(strategy: Strategy[Any]) -> Strategy[Any]:
    return st.one_of(st.none(), strategy)


def kblis() -> Strategy[Kbli]:
    return st.builds(Kbli, kode=kbli_codes(), versi=st.sampled_from(KbliVersi))


def digit_strings(width: int) -> Strategy[str]:
    return _digits(0, 10**width - 1, width)


# --- events -----------------------------------------------------------------------------

_CHANGEABLE = [
    name for name in PendudukUpdated.model_fields if name not in ("nik", "changed_fields")
]
_CHANGEABLE += [f"alamat.{name}" for name in Alamat.model_fields]


@st.composite
def penduduk_updated(draw: st.DrawFn) -> PendudukUpdated:
    nik, born, sex = draw(niks_with_birth())
    alamat = Alamat(
        jalan=draw(texts()),
        rt=draw(digit_strings(3)),
        rw=draw(digit_strings(3)),
        kode_wilayah=draw(kemendagri_codes(4)),
        kode_pos=draw(optional(digit_strings(5))),
    )
    return PendudukUpdated(
        nik=nik,
        no_kk=draw(no_kks()),
        nama_lengkap=draw(texts()),
        tempat_lahir=draw(texts()),
        tanggal_lahir=born,
        jenis_kelamin=sex,
        agama=draw(st.sampled_from(Agama)),
        status_perkawinan=draw(st.sampled_from(StatusPerkawinan)),
        pekerjaan=draw(texts()),
        pendidikan_terakhir=draw(optional(st.sampled_from(Pendidikan))),
        alamat=alamat,
        changed_fields=tuple(draw(st.lists(st.sampled_from(_CHANGEABLE), min_size=1, unique=True))),
        berlaku_sejak=draw(st.dates()),
    )


def kematian_dicatat() -> Strategy[KematianDicatat]:
    return st.builds(
        KematianDicatat,
        nik=niks(),
        no_kk=no_kks(),
        nama_lengkap=texts(),
        no_akta_kematian=texts(),
        tanggal_meninggal=st.dates(),
        kode_wilayah=kemendagri_codes(4),
        dicatat_pada=instants(),
    )


@st.composite
def izin_diterbitkan(draw: st.DrawFn) -> IzinDiterbitkan:
    terbit = draw(st.dates(date(2000, 1, 1), date(2090, 12, 31)))
    berlaku = draw(optional(st.dates(terbit, date(2099, 12, 31))))
    lokasi = Lokasi(
        kode_wilayah=draw(kemendagri_codes(4)),
        alamat=draw(texts()),
        lat=draw(optional(st.floats(-11.5, 6.5))),
        lon=draw(optional(st.floats(94.5, 141.5))),
    )
    pemohon = Pemohon(
        jenis=draw(st.sampled_from(JenisPemohon)), nama=draw(texts()), npwp=draw(npwps())
    )
    return IzinDiterbitkan(
        nomor_izin=draw(texts()),
        jenis_perizinan=draw(st.sampled_from(JenisPerizinan)),
        nib=draw(nibs()),
        kbli=draw(kblis()),
        tingkat_risiko=draw(st.sampled_from(TingkatRisiko)),
        skala_usaha=draw(st.sampled_from(SkalaUsaha)),
        nama_usaha=draw(texts()),
        lokasi=lokasi,
        pemohon=pemohon,
        tanggal_terbit=terbit,
        berlaku_sampai=berlaku,
        status_penerbitan=draw(st.sampled_from(StatusPenerbitan)),
        dasar_hukum=draw(texts()),
    )


def umkm_terdaftar() -> Strategy[UmkmTerdaftar]:
    return st.builds(
        UmkmTerdaftar,
        id_umkm=texts(),
        nib=optional(nibs()),
        nik_pemilik=niks(),
        nama_pemilik=texts(),
        npwp=optional(npwps()),
        nama_usaha=texts(),
        kbli=kblis(),
        skala_usaha=st.sampled_from(SkalaUmkm),
        kode_wilayah=kemendagri_codes(4),
        alamat_usaha=optional(texts()),
        jumlah_tenaga_kerja=st.integers(0, 2**31 - 1),
        sumber=st.sampled_from(SumberData),
        terdaftar_pada=instants(),
    )


@st.composite
def pajak_daerah_dibayar(draw: st.DrawFn) -> PajakDaerahDibayar:
    jenis = draw(st.sampled_from(JenisPajak))
    needs_nop = jenis in (JenisPajak.PBB_P2, JenisPajak.BPHTB)
    nop = draw(nops() if needs_nop else optional(nops()))
    npwpd = draw(optional(texts()))
    nomor_objek = draw(texts() if nop is None and npwpd is None else optional(texts()))
    pokok = draw(money("4999999999999999.99"))
    denda = draw(money("4999999999999999.99"))
    rekening = draw(st.lists(st.integers(1, 9999), min_size=2, max_size=5))
    return PajakDaerahDibayar(
        ntpd=draw(texts()),
        jenis_pajak=jenis,
        objek=ObjekPajak(nop=nop, npwpd=npwpd, nomor_objek=nomor_objek),
        wajib_pajak=WajibPajak(nama=draw(texts()), npwp=draw(optional(npwps()))),
        tahun_pajak=draw(st.integers(1990, 2100)),
        masa_pajak=draw(optional(st.integers(1, 12))),
        pokok=pokok,
        denda=denda,
        total=pokok + denda,
        waktu_bayar=draw(instants()),
        kanal=draw(st.sampled_from(KanalBayar)),
        kode_bank=draw(optional(digit_strings(3))),
        kode_rekening_pendapatan="4." + ".".join(str(n) for n in rekening),
        kode_wilayah_objek=draw(kemendagri_codes()),
    )


_EVENT_STRATEGIES: dict[type[SpbeEvent], Callable[[], Strategy[Any]]] = {
    PendudukUpdated: penduduk_updated,
    KematianDicatat: kematian_dicatat,
    IzinDiterbitkan: izin_diterbitkan,
    UmkmTerdaftar: umkm_terdaftar,
    PajakDaerahDibayar: pajak_daerah_dibayar,
}
assert set(_EVENT_STRATEGIES) == set(EVENT_TYPES.values()), "every event type needs a strategy"


def events(event_type: type[SpbeEvent] | None = None) -> Strategy[SpbeEvent]:
    """Valid instances of ``event_type``, or of any event type when it is ``None``."""
    if event_type is None:
        return st.one_of([make() for make in _EVENT_STRATEGIES.values()])
    return _EVENT_STRATEGIES[event_type]()
