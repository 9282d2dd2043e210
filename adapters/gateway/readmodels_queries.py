"""What the gateway answers from its read models: views, pages and opaque cursors.

Every query names the subscriber: a row is only ever read back by the subscription it was
delivered under. Lists are keyset-paginated by the row's surrogate ``id``, never by a NIK
or NTPD: the cursor a client carries in its URL is ``base64url(kind + id)``, so no
personal data travels in URLs, access logs or problem documents. A cursor made for one
list is refused by the other.

Kode wilayah filters match whole segments of a Kemendagri code: ``32.73.01`` matches
``32.73.01`` and ``32.73.01.1001``, never ``32.73.011...`` or ``32.73.10``.
"""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from adapters.gateway.readmodels_tables import ReadModelTables
from bus.contract.refcodes import RefCode, problem
from bus.errors import BusError

__all__ = [
    "DEFAULT_PAGE_LIMIT",
    "MAX_PAGE_LIMIT",
    "Page",
    "PaymentView",
    "PersonView",
    "ReadModelQueryError",
    "decode_cursor",
    "encode_cursor",
    "query_payments",
    "query_people",
    "query_person",
]

DEFAULT_PAGE_LIMIT = 50
MAX_PAGE_LIMIT = 500
_PEOPLE = b"p"
_PAYMENTS = b"y"
_CURSOR = struct.Struct(">cQ")

T = TypeVar("T")


class ReadModelQueryError(BusError, ValueError):
    """A query parameter breaks its rule; :attr:`field` names the parameter (never its value)."""

    def __init__(self, field: str, problem: str, rule: str, *, fix: str) -> None:
        super().__init__(f"{field} {problem} ({rule})", fix=fix)
        self.field = field
        self.problem = problem
        self.rule = rule


@dataclass(frozen=True, slots=True)
class PersonView:
    """One resident as one subscription may see them.

    :attr:`document` is the projected PendudukUpdated in the standard's JSON form (empty
    while only a death is known); :attr:`kematian` the projected KematianDicatat, or None.
    :attr:`event_id` and :attr:`event_type` are of the last event that changed the row.
    """

    document: dict[str, Any] = field(repr=False)  # personal data: kept out of the repr
    event_id: str
    event_type: str
    sequence: int | None
    updated_at: datetime
    kematian: dict[str, Any] | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class PaymentView:
    """One tax payment (PajakDaerahDibayar) as one subscription may see it."""

    document: dict[str, Any] = field(repr=False)  # names and NPWP: kept out of the repr
    event_id: str
    sequence: int | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list; :attr:`next_cursor` continues it, None on the last page."""

    items: tuple[T, ...]
    next_cursor: str | None


def encode_cursor(kind: bytes, row_id: int) -> str:
    """The opaque cursor continuing a list of ``kind`` after row ``row_id``."""
    return base64.urlsafe_b64encode(_CURSOR.pack(kind, row_id)).rstrip(b"=").decode("ascii")


def decode_cursor(kind: bytes, cursor: str) -> int:
    """The row id ``cursor`` continues after; :class:`ReadModelQueryError` when it is not one."""
    refused = ReadModelQueryError(
        "cursor",
        "is not a cursor of this list",
        "pass back the next_cursor of the previous page unchanged",
        fix="start again without a cursor",
    )
    if not isinstance(cursor, str) or not cursor.isascii() or len(cursor) > 64:
        raise refused
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        found_kind, row_id = _CURSOR.unpack(raw)
    except (binascii.Error, struct.error, ValueError):
        raise refused from None
    if found_kind != kind or encode_cursor(kind, row_id) != cursor:
        raise refused
    return int(row_id)


def _check_limit(limit: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_LIMIT:
        raise ReadModelQueryError(
            "limit",
            "is out of range",
            f"an integer from 1 to {MAX_PAGE_LIMIT}",
            fix=f"ask for at most {MAX_PAGE_LIMIT} items (default {DEFAULT_PAGE_LIMIT})",
        )


def _check_prefix(prefix: str) -> None:
    found = problem(RefCode.KODE_WILAYAH_KEMENDAGRI, prefix)
    if found is not None:
        raise ReadModelQueryError(
            "kode_wilayah",
            "is not a Kemendagri region code",
            found,
            fix="give a whole code: PP, PP.KK, PP.KK.CC or PP.KK.CC.DDDD (e.g. 32.73.01)",
        )


def _person(row: sa.Row[Any]) -> PersonView:
    return PersonView(
        document=dict(row.document or {}),
        event_id=row.event_id,
        event_type=row.event_type,
        sequence=row.sequence,
        updated_at=row.updated_at,
        kematian=dict(row.kematian) if row.kematian is not None else None,
    )


def _payment(row: sa.Row[Any]) -> PaymentView:
    return PaymentView(
        document=dict(row.document),
        event_id=row.event_id,
        sequence=row.sequence,
        updated_at=row.updated_at,
    )


def query_person(
    conn: Connection, tables: ReadModelTables, subscriber: str, nik: str
) -> PersonView | None:
    """The resident ``nik`` as ``subscriber`` sees them, or None."""
    t = tables.penduduk
    row = conn.execute(
        sa.select(t).where(t.c.subscriber == subscriber, t.c.nik == nik)
    ).one_or_none()
    return None if row is None else _person(row)


def query_people(
    conn: Connection,
    tables: ReadModelTables,
    subscriber: str,
    kode_wilayah_prefix: str,
    *,
    limit: int,
    after: str | None,
) -> Page[PersonView]:
    """Residents of ``subscriber`` living in ``kode_wilayah_prefix`` (whole segments)."""
    _check_limit(limit)
    _check_prefix(kode_wilayah_prefix)
    t = tables.penduduk
    kode = t.c.kode_wilayah
    query = sa.select(t).where(
        t.c.subscriber == subscriber,
        sa.or_(kode == kode_wilayah_prefix, kode.like(f"{kode_wilayah_prefix}.%")),
    )
    if after is not None:
        query = query.where(t.c.id > decode_cursor(_PEOPLE, after))
    rows = conn.execute(query.order_by(t.c.id).limit(limit + 1)).all()
    return _page(rows, limit, _PEOPLE, _person)


def query_payments(
    conn: Connection,
    tables: ReadModelTables,
    subscriber: str,
    *,
    ntpd: str | None,
    nop: str | None,
    limit: int,
    after: str | None,
) -> Page[PaymentView]:
    """Payments of ``subscriber``, of one NTPD or one NOP (all when neither is given)."""
    _check_limit(limit)
    if ntpd is not None and nop is not None:
        raise ReadModelQueryError(
            "ntpd",
            "cannot be combined with nop",
            "one filter at a time",
            fix="ask by ntpd or by nop, not both",
        )
    t = tables.pajak
    query = sa.select(t).where(t.c.subscriber == subscriber)
    if ntpd is not None:
        query = query.where(t.c.ntpd == ntpd)
    if nop is not None:
        query = query.where(t.c.nop == nop)
    if after is not None:
        query = query.where(t.c.id > decode_cursor(_PAYMENTS, after))
    rows = conn.execute(query.order_by(t.c.id).limit(limit + 1)).all()
    return _page(rows, limit, _PAYMENTS, _payment)


def _page(rows: Sequence[sa.Row[Any]], limit: int, kind: bytes, view: Any) -> Page[Any]:
    shown = rows[:limit]
    more = len(rows) > limit
    return Page(
        items=tuple(view(row) for row in shown),
        next_cursor=encode_cursor(kind, shown[-1].id) if more else None,
    )
