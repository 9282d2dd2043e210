"""Reference codes (*Kode Referensi*) and the rules that decide whether a value is one.

Each code system has a rule text (:data:`RULES`), a checker (:func:`problem`) that says
what is wrong with a value, and a pydantic type (:data:`NIK`, :data:`KodeWilayahKemendagri`,
...) that runs the checker, so event models validate reference codes at the edge.

Messages never repeat the value: a NIK, a No. KK or an individual's NPWP is personal data,
and a rejection text travels into logs and dead-letter headers.

The two region-code systems are kept apart on purpose. A Kemendagri code is written with
dots (``32.73.01.1001``); a BPS code is 10 digits without them (``3273010001``). A value in
the other system is rejected with a message that says which system it looks like.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date
from enum import StrEnum
from types import MappingProxyType
from typing import Annotated, Final

from pydantic import AfterValidator

__all__ = [
    "DESA_RULE",
    "NIB",
    "NIK",
    "NOP",
    "NPWP",
    "RULES",
    "KbliKode",
    "KodeWilayahBPS",
    "KodeWilayahDesa",
    "KodeWilayahKemendagri",
    "NoKK",
    "RefCode",
    "RefCodeError",
    "RuleViolation",
    "kemendagri_level",
    "nik_birth_date_and_sex",
    "problem",
]


class RefCode(StrEnum):
    """The reference-code systems the schemas name in their ``spbe.ref`` attribute."""

    NIK = "NIK"
    NO_KK = "NoKK"
    KODE_WILAYAH_KEMENDAGRI = "KodeWilayahKemendagri"
    KODE_WILAYAH_BPS = "KodeWilayahBPS"
    KBLI = "KBLI"
    NIB = "NIB"
    NPWP = "NPWP"
    NOP = "NOP"


RULES: Final[Mapping[RefCode, str]] = MappingProxyType(
    {
        RefCode.NIK: "NIK: 16 digits = 6-digit kecamatan code + birth date DDMMYY "
        "(day + 40 for women) + 4-digit serial (PP 37/2007)",
        RefCode.NO_KK: "No. KK: 16 digits, starting with the 6-digit kecamatan code",
        RefCode.KODE_WILAYAH_KEMENDAGRI: "Kemendagri region code written with dots: PP, PP.KK, "
        "PP.KK.CC or PP.KK.CC.DDDD (kabupaten 01-69, kota 71-99; village 1xxx kelurahan, "
        "2xxx desa, 3xxx desa adat) (Kepmendagri 300.2.2-2138/2025)",
        RefCode.KODE_WILAYAH_BPS: "BPS region code: 10 digits without dots, 2-2-3-3 "
        "(provinsi, kabupaten/kota, kecamatan, desa) (BPS MFD)",
        RefCode.KBLI: "KBLI: 5 digits (golongan pokok 01-99) plus its version, 2020 or 2025 "
        "(Perba BPS 2/2020, 7/2025)",
        RefCode.NIB: "NIB: 13 digits (OSS, PP 28/2025)",
        RefCode.NPWP: "NPWP: 16 digits; an individual resident's NPWP is the NIK (PMK 112/2022)",
        RefCode.NOP: "NOP PBB: 18 digits = provinsi 2 + kabupaten/kota 2 + kecamatan 3 + desa 3 "
        "+ blok 3 + urut 4 + kode 1, on BPS region codes",
    }
)

#: Rule for a Kemendagri code that must name a village (desa or kelurahan).
DESA_RULE: Final = (
    RULES[RefCode.KODE_WILAYAH_KEMENDAGRI] + "; here at desa/kelurahan level (PP.KK.CC.DDDD)"
)

_LABELS: Final[Mapping[RefCode, str]] = {
    RefCode.NIK: "NIK",
    RefCode.NO_KK: "No. KK",
    RefCode.KODE_WILAYAH_KEMENDAGRI: "Kemendagri region code",
    RefCode.KODE_WILAYAH_BPS: "BPS region code",
    RefCode.KBLI: "KBLI code",
    RefCode.NIB: "NIB",
    RefCode.NPWP: "NPWP",
    RefCode.NOP: "NOP",
}

_KEMENDAGRI_SHAPE = re.compile(r"[0-9]{2}(\.[0-9]{2}(\.[0-9]{2}(\.[0-9]{4})?)?)?")
_LEVELS: Final = ("provinsi", "kabupaten/kota", "kecamatan", "desa/kelurahan")
_WOMEN_DAY_OFFSET: Final = 40


class RuleViolation(ValueError):
    """A value breaks a rule; ``str(error)`` says what is wrong, ``rule`` states the rule."""

    def __init__(self, problem: str, rule: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.rule = rule


class RefCodeError(RuleViolation):
    """A value is not a valid reference code of ``code``."""

    def __init__(self, code: RefCode, problem: str, rule: str | None = None) -> None:
        super().__init__(problem, RULES[code] if rule is None else rule)
        self.code = code


# --- shared checks --------------------------------------------------------------------


def _digits_problem(label: str, value: str, length: int) -> str | None:
    """What is wrong with ``value`` as a string of exactly ``length`` ASCII digits."""
    if not value:
        return f"{label} is empty"
    if value != value.strip():
        return f"{label} has spaces before or after it"
    if not (value.isascii() and value.isdigit()):
        if re.fullmatch(r"[0-9][0-9 .\-/]*[0-9]", value):
            return f"{label} contains separators (dots, dashes or spaces); write the digits only"
        return f"{label} contains characters other than digits"
    if len(value) != length:
        return f"{label} has {len(value)} digits; it needs {length}"
    if set(value) == {"0"}:
        return f"{label} is all zeros"
    return None


def _province_problem(label: str, pp: str) -> str | None:
    if not 11 <= int(pp) <= 99:
        return f"{label} starts with province code {pp}; province codes run from 11 to 99"
    return None


def _kabkota_problem(label: str, kk: str) -> str | None:
    n = int(kk)
    if n == 0 or n == 70:
        return f"{label} has kabupaten/kota code {kk}; kabupaten are 01-69 and kota are 71-99"
    return None


def _region_prefix_problem(label: str, digits: str) -> str | None:
    """Plausibility of a 6-digit PPKKCC kecamatan prefix (the start of a NIK or No. KK)."""
    return (
        _province_problem(label, digits[:2])
        or _kabkota_problem(label, digits[2:4])
        or (f"{label} has kecamatan code 00" if digits[4:6] == "00" else None)
    )


# --- NIK --------------------------------------------------------------------------------


def _nik_date_parts(nik: str) -> tuple[int, int, int, str]:
    """Day, month, two-digit year and sex symbol encoded in digits 7-12 of a NIK."""
    day, month, yy = int(nik[6:8]), int(nik[8:10]), int(nik[10:12])
    if day > _WOMEN_DAY_OFFSET:
        return day - _WOMEN_DAY_OFFSET, month, yy, "PEREMPUAN"
    return day, month, yy, "LAKI_LAKI"


def _is_real_date(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def _nik_problem(value: str) -> str | None:
    label = "NIK"
    found = _digits_problem(label, value, 16) or _region_prefix_problem(label, value[:6])
    if found:
        return found
    raw_day = int(value[6:8])
    if raw_day == 0 or 31 < raw_day <= _WOMEN_DAY_OFFSET or raw_day > _WOMEN_DAY_OFFSET + 31:
        return (
            f"NIK has day {raw_day:02d} in its birth date (digits 7-12); the day is 01-31 "
            "for men and 41-71 (day + 40) for women"
        )
    day, month, yy, _ = _nik_date_parts(value)
    if not 1 <= month <= 12:
        return f"NIK has month {month:02d} in its birth date (digits 7-12); months are 01-12"
    # 29 February is real in 2000 but not in 1900; either century will do.
    if not (_is_real_date(2000 + yy, month, day) or _is_real_date(1900 + yy, month, day)):
        return (
            f"NIK birth date (digits 7-12) is not a real date: "
            f"day {day:02d} does not exist in month {month:02d}"
        )
    if value[12:] == "0000":
        return "NIK has serial number 0000 (digits 13-16); serials start at 0001"
    return None


def nik_birth_date_and_sex(nik: str, *, today: date | None = None) -> tuple[date, str]:
    """The birth date and sex (``"LAKI_LAKI"`` or ``"PEREMPUAN"``) encoded in a NIK.

    The NIK holds a two-digit year; the century is the latest one that does not put the
    birth date after ``today``. Raises :class:`RefCodeError` when ``nik`` is not a NIK.
    """
    found = _nik_problem(nik)
    if found:
        raise RefCodeError(RefCode.NIK, found)
    day, month, yy, sex = _nik_date_parts(nik)
    today = today or date.today()
    for century in (2000, 1900):
        if _is_real_date(century + yy, month, day):
            born = date(century + yy, month, day)
            if born <= today:
                return born, sex
    raise RefCodeError(RefCode.NIK, "NIK birth date (digits 7-12) is after today")


# --- Region codes -----------------------------------------------------------------------


def kemendagri_level(value: str) -> str:
    """The level a valid Kemendagri code names.

    One of ``provinsi``, ``kabupaten/kota``, ``kecamatan``, ``desa/kelurahan``.
    """
    return _LEVELS[value.count(".")]


def _kemendagri_problem(value: str) -> str | None:
    label = "Kemendagri region code"
    if not value:
        return f"{label} is empty"
    if value != value.strip():
        return f"{label} has spaces before or after it"
    if value.isascii() and value.isdigit() and len(value) != 2:
        if len(value) in (7, 10):
            return (
                f"{label} looks like a BPS code ({len(value)} digits without dots); "
                "Kemendagri codes are written with dots, e.g. 32.73.01.1001"
            )
        return f"{label} has no dots; write it as PP, PP.KK, PP.KK.CC or PP.KK.CC.DDDD"
    segments = value.split(".")
    if len(segments) == 4 and re.fullmatch(r"[0-9]{2}\.[0-9]{2}\.[0-9]{3}\.[0-9]{3}", value):
        return (
            f"{label} looks like a BPS code written with dots (2-2-3-3); "
            "Kemendagri codes are 2-2-2-4"
        )
    if not _KEMENDAGRI_SHAPE.fullmatch(value):
        return f"{label} is not in the form PP, PP.KK, PP.KK.CC or PP.KK.CC.DDDD"
    found = _province_problem(label, segments[0])
    if found or len(segments) == 1:
        return found
    found = _kabkota_problem(label, segments[1])
    if found or len(segments) == 2:
        return found
    if segments[2] == "00":
        return f"{label} has kecamatan code 00"
    if len(segments) == 3:
        return None
    village = segments[3]
    if village[0] not in "123":
        return (
            f"{label} has village code starting with {village[0]}; it starts with "
            "1 (kelurahan), 2 (desa) or 3 (desa adat)"
        )
    if village[1:] == "000":
        return f"{label} has village number 000"
    return None


def _bps_problem(value: str) -> str | None:
    label = "BPS region code"
    if _KEMENDAGRI_SHAPE.fullmatch(value) and "." in value:
        return (
            f"{label} looks like a Kemendagri code (written with dots); "
            "BPS codes are 10 digits without dots, 2-2-3-3"
        )
    found = _digits_problem(label, value, 10)
    if found:
        return found
    found = _province_problem(label, value[:2]) or _kabkota_problem(label, value[2:4])
    if found:
        return found
    if value[4:7] == "000":
        return f"{label} has kecamatan code 000 (digits 5-7)"
    if value[7:] == "000":
        return f"{label} has desa code 000 (digits 8-10)"
    return None


# --- Business and tax codes -------------------------------------------------------------


def _kbli_problem(value: str) -> str | None:
    found = _digits_problem("KBLI code", value, 5)
    if found:
        return found
    if value.startswith("00"):
        return "KBLI code starts with 00; the golongan pokok (first two digits) is 01-99"
    return None


def _npwp_problem(value: str) -> str | None:
    if value.isascii() and value.isdigit() and len(value) == 15:
        return (
            "NPWP has 15 digits; since 2024 an NPWP has 16 "
            "(an old 15-digit NPWP gets a leading 0, an individual uses the NIK)"
        )
    return _digits_problem("NPWP", value, 16)


def _nop_problem(value: str) -> str | None:
    label = "NOP"
    found = _digits_problem(label, value, 18)
    if found:
        return found
    found = _province_problem(label, value[:2]) or _kabkota_problem(label, value[2:4])
    if found:
        return found
    if value[4:7] == "000":
        return "NOP has kecamatan code 000 (digits 5-7)"
    if value[7:10] == "000":
        return "NOP has desa code 000 (digits 8-10)"
    return None


def _no_kk_problem(value: str) -> str | None:
    return _digits_problem("No. KK", value, 16) or _region_prefix_problem("No. KK", value[:6])


_CHECKS: Final[Mapping[RefCode, Callable[[str], str | None]]] = {
    RefCode.NIK: _nik_problem,
    RefCode.NO_KK: _no_kk_problem,
    RefCode.KODE_WILAYAH_KEMENDAGRI: _kemendagri_problem,
    RefCode.KODE_WILAYAH_BPS: _bps_problem,
    RefCode.KBLI: _kbli_problem,
    RefCode.NIB: lambda value: _digits_problem("NIB", value, 13),
    RefCode.NPWP: _npwp_problem,
    RefCode.NOP: _nop_problem,
}


def problem(code: RefCode, value: str) -> str | None:
    """What is wrong with ``value`` as a ``code``; ``None`` when it is valid.

    The text names the code and the fault and never repeats the value.
    """
    if not isinstance(value, str):
        return f"{_LABELS[code]} must be a string, not {type(value).__name__}"
    return _CHECKS[code](value)


# --- pydantic types ----------------------------------------------------------------------


def _validator(code: RefCode) -> Callable[[str], str]:
    def check(value: str) -> str:
        found = problem(code, value)
        if found:
            raise RefCodeError(code, found)
        return value

    check.__name__ = f"check_{code.name.lower()}"
    return check


def _check_desa(value: str) -> str:
    found = problem(RefCode.KODE_WILAYAH_KEMENDAGRI, value)
    if not found and kemendagri_level(value) != _LEVELS[3]:
        found = (
            f"Kemendagri region code names a {kemendagri_level(value)}; "
            "a desa/kelurahan code (PP.KK.CC.DDDD) is needed here"
        )
    if found:
        raise RefCodeError(RefCode.KODE_WILAYAH_KEMENDAGRI, found, DESA_RULE)
    return value


# The RefCode in each Annotated tells schema tooling which code system a field holds.
NIK = Annotated[str, AfterValidator(_validator(RefCode.NIK)), RefCode.NIK]
NoKK = Annotated[str, AfterValidator(_validator(RefCode.NO_KK)), RefCode.NO_KK]
KodeWilayahKemendagri = Annotated[
    str,
    AfterValidator(_validator(RefCode.KODE_WILAYAH_KEMENDAGRI)),
    RefCode.KODE_WILAYAH_KEMENDAGRI,
]
#: A Kemendagri code at desa/kelurahan level (``PP.KK.CC.DDDD``).
KodeWilayahDesa = Annotated[str, AfterValidator(_check_desa), RefCode.KODE_WILAYAH_KEMENDAGRI]
KodeWilayahBPS = Annotated[
    str, AfterValidator(_validator(RefCode.KODE_WILAYAH_BPS)), RefCode.KODE_WILAYAH_BPS
]
KbliKode = Annotated[str, AfterValidator(_validator(RefCode.KBLI)), RefCode.KBLI]
NIB = Annotated[str, AfterValidator(_validator(RefCode.NIB)), RefCode.NIB]
NPWP = Annotated[str, AfterValidator(_validator(RefCode.NPWP)), RefCode.NPWP]
NOP = Annotated[str, AfterValidator(_validator(RefCode.NOP)), RefCode.NOP]
