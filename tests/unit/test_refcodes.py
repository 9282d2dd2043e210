"""Reference-code rules: what each code accepts, and a message naming each kind of fault."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import given
from pydantic import TypeAdapter, ValidationError

from bus.contract import refcodes
from bus.contract.refcodes import (
    DESA_RULE,
    RULES,
    RefCode,
    RefCodeError,
    kemendagri_level,
    nik_birth_date_and_sex,
    problem,
)
from tests import strategies

# A woman born 17 August 1990 in Kota Bandung (32.73.02), serial 0003.
NIK_WOMAN = "3273025708900003"
# A man born 12 March 1985 in Kota Bandung (32.73.01), serial 0002.
NIK_MAN = "3273011203850002"


def test_every_code_has_a_rule_text() -> None:
    """RULES states a rule for every code system."""
    assert set(RULES) == set(RefCode)
    assert all(text.strip() for text in RULES.values())


# --- NIK --------------------------------------------------------------------------------


@pytest.mark.parametrize("nik", [NIK_WOMAN, NIK_MAN, "1101010101000001", "3273022902000001"])
def test_valid_niks_are_accepted(nik: str) -> None:
    """Real birth dates, women's day + 40, and 29 Feb 2000 pass."""
    assert problem(RefCode.NIK, nik) is None


@pytest.mark.parametrize(
    ("nik", "expected"),
    [
        ("327302570890003", "has 15 digits; it needs 16"),
        ("32730257089000031", "has 17 digits; it needs 16"),
        ("3273-0257-0890-0003", "separators"),
        ("32730257089O0003", "characters other than digits"),
        (" 3273025708900003", "spaces"),
        ("", "empty"),
        ("0973025708900003", "province code 09"),
        ("3200025708900003", "kabupaten/kota code 00"),
        ("3270025708900003", "kabupaten/kota code 70"),
        ("3273005708900003", "kecamatan code 00"),
        ("3273023508900003", "day 35"),
        ("3273027208900003", "day 72"),
        ("3273020008900003", "day 00"),
        ("3273021713900003", "month 13"),
        ("3273023102900003", "day 31 does not exist in month 02"),
        ("3273027102900003", "day 31 does not exist in month 02"),
        ("3273022902010003", "day 29 does not exist in month 02"),
        ("3273025708900000", "serial number 0000"),
        ("0000000000000000", "all zeros"),
    ],
)
def test_invalid_niks_name_the_fault(nik: str, expected: str) -> None:
    """Each kind of bad NIK gets a message saying what is wrong with it."""
    message = problem(RefCode.NIK, nik)
    assert message is not None
    assert expected in message


@pytest.mark.parametrize(
    "nik", ["3273023102900003", "3273025708900000", "327302570890003", "3273021713900003"]
)
def test_nik_messages_never_repeat_the_value(nik: str) -> None:
    """A rejection text carries neither the NIK nor its digits after the region prefix."""
    message = problem(RefCode.NIK, nik)
    assert message is not None
    assert nik not in message
    assert nik[6:] not in message


def test_womens_nik_encodes_day_plus_40() -> None:
    """Digits 7-8 above 40 mean a woman; the day is the value minus 40."""
    assert nik_birth_date_and_sex(NIK_WOMAN) == (date(1990, 8, 17), "PEREMPUAN")
    assert nik_birth_date_and_sex(NIK_MAN) == (date(1985, 3, 12), "LAKI_LAKI")


def test_nik_century_is_the_latest_not_after_today() -> None:
    """A two-digit year resolves to 20YY unless that lies after ``today``."""
    nik = "3273021203200001"
    assert nik_birth_date_and_sex(nik, today=date(2026, 1, 1))[0] == date(2020, 3, 12)
    assert nik_birth_date_and_sex(nik, today=date(2019, 1, 1))[0] == date(1920, 3, 12)


def test_nik_birth_date_rejects_an_invalid_nik() -> None:
    """Decoding an invalid NIK raises RefCodeError with the NIK rule."""
    with pytest.raises(RefCodeError) as caught:
        nik_birth_date_and_sex("3273023102900003")
    assert caught.value.code is RefCode.NIK
    assert caught.value.rule == RULES[RefCode.NIK]


@given(strategies.niks_with_birth())
def test_generated_niks_are_valid_and_decode_to_their_birth_date(
    triple: tuple[str, date, str],
) -> None:
    """Every NIK the strategy makes passes, and decodes back to its date and sex."""
    nik, born, sex = triple
    assert problem(RefCode.NIK, nik) is None
    assert nik_birth_date_and_sex(nik, today=date(2025, 12, 31)) == (born, sex)


# --- No. KK -----------------------------------------------------------------------------


def test_no_kk_rules() -> None:
    """A No. KK is 16 digits starting with a plausible kecamatan code."""
    assert problem(RefCode.NO_KK, "3273022301150007") is None
    assert "has 12 digits" in (problem(RefCode.NO_KK, "327302230115") or "")
    assert "province code 05" in (problem(RefCode.NO_KK, "0573022301150007") or "")


# --- Kemendagri and BPS region codes ----------------------------------------------------


@pytest.mark.parametrize(
    ("code", "level"),
    [
        ("32", "provinsi"),
        ("32.73", "kabupaten/kota"),
        ("32.04", "kabupaten/kota"),
        ("32.73.02", "kecamatan"),
        ("32.73.02.1003", "desa/kelurahan"),
        ("32.04.10.2005", "desa/kelurahan"),
        ("91.05.01.3001", "desa/kelurahan"),
    ],
)
def test_valid_kemendagri_codes(code: str, level: str) -> None:
    """Every level is accepted; village codes start with 1, 2 or 3."""
    assert problem(RefCode.KODE_WILAYAH_KEMENDAGRI, code) is None
    assert kemendagri_level(code) == level


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("3273021003", "looks like a BPS code"),
        ("3273020", "looks like a BPS code"),
        ("32.73.020.003", "looks like a BPS code"),
        ("3273", "has no dots"),
        ("32.73.2.1003", "not in the form"),
        ("32-73-02-1003", "not in the form"),
        ("08.73", "province code 08"),
        ("32.70", "kabupaten/kota code 70"),
        ("32.00.01", "kabupaten/kota code 00"),
        ("32.73.00", "kecamatan code 00"),
        ("32.73.02.4001", "starting with 4"),
        ("32.73.02.1000", "village number 000"),
        ("", "empty"),
    ],
)
def test_invalid_kemendagri_codes_name_the_fault(code: str, expected: str) -> None:
    """Faults, including a BPS code given where a Kemendagri code belongs, are named."""
    message = problem(RefCode.KODE_WILAYAH_KEMENDAGRI, code)
    assert message is not None
    assert expected in message


def test_valid_bps_code() -> None:
    """A BPS code is 10 digits, 2-2-3-3."""
    assert problem(RefCode.KODE_WILAYAH_BPS, "3273020003") is None


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("32.73.02.1003", "looks like a Kemendagri code"),
        ("32.73", "looks like a Kemendagri code"),
        ("327302000", "has 9 digits"),
        ("3273000003", "kecamatan code 000"),
        ("3273020000", "desa code 000"),
        ("3270020003", "kabupaten/kota code 70"),
    ],
)
def test_invalid_bps_codes_name_the_fault(code: str, expected: str) -> None:
    """A Kemendagri code given where a BPS code belongs is named as such."""
    message = problem(RefCode.KODE_WILAYAH_BPS, code)
    assert message is not None
    assert expected in message


@given(strategies.kemendagri_codes())
def test_generated_kemendagri_codes_are_not_bps_codes(code: str) -> None:
    """The two systems never accept each other's codes."""
    assert problem(RefCode.KODE_WILAYAH_KEMENDAGRI, code) is None
    assert problem(RefCode.KODE_WILAYAH_BPS, code) is not None


@given(strategies.bps_codes())
def test_generated_bps_codes_are_not_kemendagri_codes(code: str) -> None:
    """A BPS code is always refused as a Kemendagri code, with the BPS hint."""
    assert problem(RefCode.KODE_WILAYAH_BPS, code) is None
    assert "looks like a BPS code" in (problem(RefCode.KODE_WILAYAH_KEMENDAGRI, code) or "")


# --- KBLI, NIB, NPWP, NOP ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "value", "expected"),
    [
        (RefCode.KBLI, "5610", "has 4 digits; it needs 5"),
        (RefCode.KBLI, "00123", "starts with 00"),
        (RefCode.KBLI, "56.10.2", "separators"),
        (RefCode.NIB, "912030123456", "has 12 digits; it needs 13"),
        (RefCode.NIB, "912030123456A", "characters other than digits"),
        (RefCode.NPWP, "092542943407000", "15 digits; since 2024 an NPWP has 16"),
        (RefCode.NPWP, "09.254.294.3-407.000", "separators"),
        (RefCode.NOP, "32730200010020015", "has 17 digits; it needs 18"),
        (RefCode.NOP, "32.73.020.001.002-0015.0", "separators"),
        (RefCode.NOP, "327300000100200150", "kecamatan code 000"),
        (RefCode.NOP, "327302000000200150", "desa code 000"),
        (RefCode.NOP, "057302000100200150", "province code 05"),
    ],
)
def test_invalid_business_and_tax_codes_name_the_fault(
    code: RefCode, value: str, expected: str
) -> None:
    """Length, separators and impossible segments are named."""
    message = problem(code, value)
    assert message is not None
    assert expected in message


@pytest.mark.parametrize(
    ("code", "value"),
    [
        (RefCode.KBLI, "56102"),
        (RefCode.NIB, "9120301234567"),
        (RefCode.NPWP, "0925429434070000"),
        (RefCode.NPWP, NIK_WOMAN),
        (RefCode.NOP, "327302000100200150"),
    ],
)
def test_valid_business_and_tax_codes(code: RefCode, value: str) -> None:
    """Well-formed codes pass."""
    assert problem(code, value) is None


@given(strategies.nibs(), strategies.npwps(), strategies.nops(), strategies.kbli_codes())
def test_generated_business_and_tax_codes_are_valid(
    nib: str, npwp: str, nop: str, kbli: str
) -> None:
    """The strategies only make codes the rules accept."""
    assert problem(RefCode.NIB, nib) is None
    assert problem(RefCode.NPWP, npwp) is None
    assert problem(RefCode.NOP, nop) is None
    assert problem(RefCode.KBLI, kbli) is None


# --- pydantic types ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_", "code", "bad"),
    [
        (refcodes.NIK, RefCode.NIK, "3273023102900003"),
        (refcodes.NoKK, RefCode.NO_KK, "32730223"),
        (refcodes.KodeWilayahKemendagri, RefCode.KODE_WILAYAH_KEMENDAGRI, "3273021003"),
        (refcodes.KodeWilayahBPS, RefCode.KODE_WILAYAH_BPS, "32.73.02.1003"),
        (refcodes.KbliKode, RefCode.KBLI, "5610"),
        (refcodes.NIB, RefCode.NIB, "1"),
        (refcodes.NPWP, RefCode.NPWP, "1"),
        (refcodes.NOP, RefCode.NOP, "1"),
    ],
)
def test_pydantic_types_raise_the_problem_text(type_: Any, code: RefCode, bad: str) -> None:
    """Each Annotated type fails with a RefCodeError whose message is problem()'s text."""
    adapter: TypeAdapter[str] = TypeAdapter(type_)
    with pytest.raises(ValidationError) as caught:
        adapter.validate_python(bad)
    cause = caught.value.errors()[0]["ctx"]["error"]
    assert isinstance(cause, RefCodeError)
    assert cause.code is code
    assert cause.rule == RULES[code]
    assert str(cause) == problem(code, bad)


def test_desa_type_refuses_a_higher_level() -> None:
    """KodeWilayahDesa wants PP.KK.CC.DDDD and says which level it got."""
    adapter: TypeAdapter[str] = TypeAdapter(refcodes.KodeWilayahDesa)
    assert adapter.validate_python("32.73.02.1003") == "32.73.02.1003"
    with pytest.raises(ValidationError) as caught:
        adapter.validate_python("32.73.02")
    cause = caught.value.errors()[0]["ctx"]["error"]
    assert "names a kecamatan" in str(cause)
    assert cause.rule == DESA_RULE


def test_problem_refuses_non_strings() -> None:
    """A number where a code belongs is named as the wrong type, not crashed on."""
    assert problem(RefCode.NIB, 9120301234567) == "NIB must be a string, not int"  # type: ignore[arg-type]
