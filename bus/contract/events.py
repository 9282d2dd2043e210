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
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum, StrEnum
from types import MappingProxyType
from typing import Annotated, Any, ClassVar, Final, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    field_validator,
    model_validator,
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
from bus.errors import EventValidationError, FieldProblem

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

# --- value types ------------------------------------------------------------------------

DATE_RULE: Final = "ISO-8601 date YYYY-MM-DD"
INSTANT_RULE: Final = "ISO-8601 date-time with a time zone, e.g. 2026-11-28T03:15:00Z"
MONEY_RULE: Final = (
    "decimal with at most 2 decimal places and at most 16 digits before the point, "
    'not negative, written as a string such as "1250000.00"'
)
TEXT_MAX: Final = 255
TEXT_RULE: Final = (
    f"non-empty text of at most {TEXT_MAX} characters, no surrounding spaces or control characters"
)

_DATE_SHAPE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_INSTANT_SHAPE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})"
)
_DECIMAL_SHAPE = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_CENT: Final = Decimal("0.01")
_MONEY_LIMIT: Final = Decimal(10) ** 16
_AVRO_INT_MAX: Final = 2**31 - 1


def _parse_date(value: object) -> date:
    if isinstance(value, datetime):
        raise RuleViolation("is a date-time; a date without time is needed", DATE_RULE)
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _DATE_SHAPE.fullmatch(value):
        raise RuleViolation("is not a date written YYYY-MM-DD", DATE_RULE)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise RuleViolation("is not a real calendar date", DATE_RULE) from None


def _parse_instant(value: object) -> datetime:
    if isinstance(value, datetime):
        instant = value
    elif isinstance(value, str) and _INSTANT_SHAPE.fullmatch(value):
        try:
            instant = datetime.fromisoformat(value)
        except ValueError:
            raise RuleViolation("is not a real date and time", INSTANT_RULE) from None
    elif isinstance(value, str) and re.fullmatch(r"[0-9T:. \-]+", value):
        raise RuleViolation("has no time zone; end it with Z for UTC", INSTANT_RULE)
    else:
        raise RuleViolation("is not an ISO-8601 date-time with a time zone", INSTANT_RULE)
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise RuleViolation("has no time zone; end it with Z for UTC", INSTANT_RULE)
    try:
        instant = instant.astimezone(UTC)
    except OverflowError:
        raise RuleViolation("lies outside the years 1-9999 in UTC", INSTANT_RULE) from None
    # The wire carries milliseconds (timestamp-millis); keep what survives the trip.
    return instant.replace(microsecond=instant.microsecond // 1000 * 1000)


def _instant_json(value: datetime) -> str:
    spec = "milliseconds" if value.microsecond else "seconds"
    return value.astimezone(UTC).isoformat(timespec=spec).replace("+00:00", "Z")


def _parse_money(value: object) -> Decimal:
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int) and not isinstance(value, bool):
        amount = Decimal(value)
    elif isinstance(value, float):
        raise RuleViolation(
            "is a JSON number with a fraction, which loses cents; write it as a string",
            MONEY_RULE,
        )
    elif isinstance(value, str) and _DECIMAL_SHAPE.fullmatch(value):
        amount = Decimal(value)
    elif isinstance(value, str):
        raise RuleViolation(
            "is not a decimal number; write it like 1250000.00 "
            "(a point before the cents, no thousands separators)",
            MONEY_RULE,
        )
    else:
        raise RuleViolation("must be a decimal string", MONEY_RULE)
    if not amount.is_finite():
        raise RuleViolation("is not a finite number", MONEY_RULE)
    if amount < 0:
        raise RuleViolation("is negative", MONEY_RULE)
    exponent = amount.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        raise RuleViolation(f"has {-exponent} decimal places; at most 2 are allowed", MONEY_RULE)
    try:
        amount = amount.quantize(_CENT)
    except InvalidOperation:
        raise RuleViolation("has more than 16 digits before the point", MONEY_RULE) from None
    if amount >= _MONEY_LIMIT:
        raise RuleViolation("has more than 16 digits before the point", MONEY_RULE)
    return amount


# Unicode categories Cc (control characters) and Cs (surrogates), as one character class.
_CONTROL_OR_SURROGATE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def _check_text(value: str) -> str:
    if not value.strip():
        raise RuleViolation("is empty", TEXT_RULE)
    if value != value.strip():
        raise RuleViolation("has spaces before or after it", TEXT_RULE)
    if len(value) > TEXT_MAX:
        raise RuleViolation(f"is {len(value)} characters long", TEXT_RULE)
    if _CONTROL_OR_SURROGATE.search(value):
        # Cs: a lone surrogate, which cannot be encoded as UTF-8 on the wire.
        raise RuleViolation(
            "contains control characters (such as a line break) or broken Unicode", TEXT_RULE
        )
    return value


def _digits(length: int, what: str) -> Callable[[str], str]:
    rule = f"{what}: exactly {length} digits"

    def check(value: str) -> str:
        if not (value.isascii() and value.isdigit() and len(value) == length):
            raise RuleViolation(f"is not {length} digits", rule)
        return value

    return check


def _whole_number(low: int, high: int, rule: str) -> Callable[[object], int]:
    def check(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise RuleViolation("must be a whole number (JSON integer)", rule)
        if not low <= value <= high:
            raise RuleViolation(f"is {value}; outside {low}..{high}", rule)
        return value

    return check


def _coordinate(low: float, high: float, rule: str) -> Callable[[object], float]:
    def check(value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RuleViolation("must be a number", rule)
        if not low <= value <= high:
            raise RuleViolation("lies outside Indonesia", rule)
        return float(value)

    return check


IsoDate = Annotated[
    date, PlainValidator(_parse_date), PlainSerializer(date.isoformat, when_used="json")
]
Instant = Annotated[
    datetime, PlainValidator(_parse_instant), PlainSerializer(_instant_json, when_used="json")
]
Money = Annotated[Decimal, PlainValidator(_parse_money), PlainSerializer(str, when_used="json")]
Text = Annotated[str, AfterValidator(_check_text)]
RtRw = Annotated[str, AfterValidator(_digits(3, "RT/RW number, zero-padded (e.g. 004)"))]
KodePos = Annotated[str, AfterValidator(_digits(5, "kode pos"))]
KodeBank = Annotated[str, AfterValidator(_digits(3, "sandi bank"))]
Count = Annotated[int, PlainValidator(_whole_number(0, _AVRO_INT_MAX, "whole number, 0 or more"))]
TahunPajak = Annotated[int, PlainValidator(_whole_number(1990, 2100, "year 1990-2100"))]
MasaPajak = Annotated[int, PlainValidator(_whole_number(1, 12, "month 1-12"))]
Latitude = Annotated[
    float, PlainValidator(_coordinate(-11.5, 6.5, "latitude in Indonesia, -11.5 to 6.5"))
]
Longitude = Annotated[
    float, PlainValidator(_coordinate(94.5, 141.5, "longitude in Indonesia, 94.5 to 141.5"))
]

_REKENING_SHAPE = re.compile(r"4(\.[0-9]{1,4}){2,5}")
_REKENING_RULE: Final = (
    "Permendagri 90/2019 revenue account code: digit groups separated by dots, "
    "starting with 4 (pendapatan), e.g. 4.1.01.12.01.0001"
)


def _check_rekening(value: str) -> str:
    if not _REKENING_SHAPE.fullmatch(value):
        raise RuleViolation("is not a revenue account code", _REKENING_RULE)
    return value


KodeRekening = Annotated[str, AfterValidator(_check_rekening)]

#: Marks a field as personal data: hidden from ``repr()``, tagged like ``"spbe.pii": true``.
PII: Final[Any] = Field(repr=False, json_schema_extra={"spbe.pii": True})


# --- base classes -----------------------------------------------------------------------


class _CrossFieldViolation(RuleViolation):
    """A rule linking fields broke; ``field`` names the field to fix, relative to the record."""

    def __init__(self, field: str, problem: str, rule: str) -> None:
        super().__init__(problem, rule)
        self.field = field


class Record(BaseModel):
    """An Avro record: frozen, no fields beyond the schema's, inputs kept out of errors."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)


class SpbeEvent(Record):
    """Base of every event model; subclasses set :attr:`event_name` and :attr:`avro_name`.

    Build events with :meth:`from_json` or :meth:`from_avro`, which raise
    :class:`~bus.errors.EventValidationError`. Calling the class directly validates too but
    raises pydantic's ``ValidationError`` (with input values hidden).
    """

    #: The event type name, e.g. ``"PendudukUpdated"``.
    event_name: ClassVar[str]
    #: The full Avro name of the schema, e.g. ``"id.go.spbe.dukcapil.PendudukUpdated"``.
    avro_name: ClassVar[str]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """Validate plain-JSON input; raise :class:`EventValidationError` naming every problem."""
        return cls._validate(data)

    @classmethod
    def from_avro(cls, datum: Mapping[str, Any]) -> Self:
        """Build the event from a datum decoded by fastavro (validated like JSON input)."""
        return cls._validate(datum)

    def to_json(self) -> dict[str, Any]:
        """The plain-JSON form, the same shape as ``schemas/avro/examples/<EventName>.json``."""
        return self.model_dump(mode="json")

    def to_avro(self) -> dict[str, Any]:
        """The datum for fastavro: ``date``, UTC ``datetime``, ``Decimal``, symbol strings."""
        return {key: _avro_value(value) for key, value in self.model_dump().items()}

    @classmethod
    def _validate(cls, data: Mapping[str, Any]) -> Self:
        if not isinstance(data, Mapping):
            problem = FieldProblem("(event)", "is not a JSON object", "an event is a JSON object")
            raise EventValidationError(cls.event_name, [problem])
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            # `from None`: the pydantic error would put input values (a NIK) in tracebacks.
            raise EventValidationError(cls.event_name, _problems(error)) from None


def _avro_value(value: object) -> object:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {key: _avro_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_avro_value(item) for item in value]
    return value


_BUILTIN_RULES: Final[Mapping[str, tuple[str, str]]] = {
    "missing": ("is missing", "required field"),
    "extra_forbidden": ("is not a field of the schema", "only the fields the schema defines"),
    "string_type": ("must be a string", "JSON string"),
    "model_type": ("must be a JSON object", "JSON object with the record's fields"),
    "model_attributes_type": ("must be a JSON object", "JSON object with the record's fields"),
    "dict_type": ("must be a JSON object", "JSON object with the record's fields"),
    "tuple_type": ("must be a JSON array", "JSON array"),
    "list_type": ("must be a JSON array", "JSON array"),
}


def _path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path


def _problems(error: ValidationError) -> list[FieldProblem]:
    """One :class:`FieldProblem` per pydantic error, with a dotted path and a rule text."""
    problems = []
    for item in error.errors(include_url=False, include_input=False):
        path = _path(item["loc"])
        cause = item.get("ctx", {}).get("error")
        if isinstance(cause, _CrossFieldViolation):
            path = f"{path}.{cause.field}" if path else cause.field
        if isinstance(cause, RuleViolation):
            problems.append(FieldProblem(path or "(event)", cause.problem, cause.rule))
        elif item["type"] == "enum":
            symbols = re.findall(r"'([^']*)'", item.get("ctx", {}).get("expected", ""))
            problem, rule = "is not one of the allowed values", "one of: " + ", ".join(symbols)
            problems.append(FieldProblem(path, problem, rule))
        else:
            problem, rule = _BUILTIN_RULES.get(item["type"], (item["msg"], item["type"]))
            problems.append(FieldProblem(path or "(event)", problem, rule))
    return problems


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
            raise _CrossFieldViolation(
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
            raise _CrossFieldViolation("total", "is not pokok + denda", "total = pokok + denda")
        if self.jenis_pajak in _NEEDS_NOP and self.objek.nop is None:
            raise _CrossFieldViolation(
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
