"""The enumerations of the data standard (Avro enums), symbol for symbol (pure)."""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "Agama",
    "JenisKelamin",
    "JenisPajak",
    "JenisPemohon",
    "JenisPerizinan",
    "KanalBayar",
    "KbliVersi",
    "Pendidikan",
    "SkalaUmkm",
    "SkalaUsaha",
    "StatusPenerbitan",
    "StatusPerkawinan",
    "SumberData",
    "TingkatRisiko",
]

# --- enumerations -----------------------------------------------------------------------


class JenisKelamin(StrEnum):
    """Jenis kelamin as on the KTP-el."""

    LAKI_LAKI = "LAKI_LAKI"
    PEREMPUAN = "PEREMPUAN"


class Agama(StrEnum):
    """Agama, or KEPERCAYAAN for a penghayat kepercayaan terhadap Tuhan YME."""

    ISLAM = "ISLAM"
    KRISTEN = "KRISTEN"
    KATOLIK = "KATOLIK"
    HINDU = "HINDU"
    BUDDHA = "BUDDHA"
    KONGHUCU = "KONGHUCU"
    KEPERCAYAAN = "KEPERCAYAAN"


class StatusPerkawinan(StrEnum):
    """Status perkawinan as on the KTP-el."""

    BELUM_KAWIN = "BELUM_KAWIN"
    KAWIN = "KAWIN"
    CERAI_HIDUP = "CERAI_HIDUP"
    CERAI_MATI = "CERAI_MATI"


class Pendidikan(StrEnum):
    """Pendidikan terakhir, Dukcapil master codes."""

    TIDAK_BELUM_SEKOLAH = "TIDAK_BELUM_SEKOLAH"
    BELUM_TAMAT_SD = "BELUM_TAMAT_SD"
    TAMAT_SD = "TAMAT_SD"
    SLTP = "SLTP"
    SLTA = "SLTA"
    DIPLOMA_I_II = "DIPLOMA_I_II"
    DIPLOMA_III = "DIPLOMA_III"
    DIPLOMA_IV_S1 = "DIPLOMA_IV_S1"
    STRATA_II = "STRATA_II"
    STRATA_III = "STRATA_III"


class JenisPerizinan(StrEnum):
    """Kind of risk-based business permit."""

    PB = "PB"
    PB_UMKU = "PB_UMKU"
    PERSYARATAN_DASAR = "PERSYARATAN_DASAR"


class KbliVersi(StrEnum):
    """KBLI edition: V2020 (Perba BPS 2/2020) or V2025 (Perba BPS 7/2025)."""

    V2020 = "V2020"
    V2025 = "V2025"


class TingkatRisiko(StrEnum):
    """Risk level: rendah, menengah rendah, menengah tinggi, tinggi."""

    R = "R"
    MR = "MR"
    MT = "MT"
    T = "T"


class SkalaUsaha(StrEnum):
    """Business scale by the PP 7/2021 criteria."""

    MIKRO = "MIKRO"
    KECIL = "KECIL"
    MENENGAH = "MENENGAH"
    BESAR = "BESAR"


class SkalaUmkm(StrEnum):
    """Skala usaha of a UMKM: :class:`SkalaUsaha` without BESAR."""

    MIKRO = "MIKRO"
    KECIL = "KECIL"
    MENENGAH = "MENENGAH"


class JenisPemohon(StrEnum):
    """Whether the applicant is a person or a business entity."""

    PERORANGAN = "PERORANGAN"
    BADAN_USAHA = "BADAN_USAHA"


class StatusPenerbitan(StrEnum):
    """How a permit was issued; FIKTIF_POSITIF when deemed approved (PP 28/2025)."""

    NORMAL = "NORMAL"
    FIKTIF_POSITIF = "FIKTIF_POSITIF"


class SumberData(StrEnum):
    """Where a UMKM registration came from: OSS or the agency's field survey."""

    OSS = "OSS"
    PENDATAAN = "PENDATAAN"


class JenisPajak(StrEnum):
    """Regional taxes under UU 1/2022 (HKPD)."""

    PBB_P2 = "PBB_P2"
    BPHTB = "BPHTB"
    PBJT_MAKAN_MINUM = "PBJT_MAKAN_MINUM"
    PBJT_PERHOTELAN = "PBJT_PERHOTELAN"
    PBJT_PARKIR = "PBJT_PARKIR"
    PBJT_HIBURAN = "PBJT_HIBURAN"
    PBJT_LISTRIK = "PBJT_LISTRIK"
    REKLAME = "REKLAME"
    PAT = "PAT"
    MBLB = "MBLB"
    WALET = "WALET"
    OPSEN_PKB = "OPSEN_PKB"
    OPSEN_BBNKB = "OPSEN_BBNKB"


class KanalBayar(StrEnum):
    """Channel a tax payment came through."""

    TELLER_BANK = "TELLER_BANK"
    VIRTUAL_ACCOUNT = "VIRTUAL_ACCOUNT"
    QRIS = "QRIS"
    LOKET_BAPENDA = "LOKET_BAPENDA"
