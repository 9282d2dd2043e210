"""The value types of the event models: dates, instants, money, text, numbers, codes (pure).

Each is an ``Annotated`` type whose validator raises
:class:`~bus.contract.refcodes.RuleViolation` naming the rule, never echoing the value.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Final

from pydantic import (
    AfterValidator,
    Field,
    PlainSerializer,
    PlainValidator,
)

from bus.contract.refcodes import (
    RuleViolation,
)

__all__ = [
    "DATE_RULE",
    "INSTANT_RULE",
    "MONEY_RULE",
    "PII",
    "TEXT_MAX",
    "TEXT_RULE",
    "Count",
    "Instant",
    "IsoDate",
    "KodeBank",
    "KodePos",
    "KodeRekening",
    "Latitude",
    "Longitude",
    "MasaPajak",
    "Money",
    "RtRw",
    "TahunPajak",
    "Text",
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
