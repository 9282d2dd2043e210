"""Egress: GET answers from the read models, within the caller's subscription, ledger first.

Each resource is a set of event types of the standard (penduduk: PendudukUpdated and
KematianDicatat; pajak: PajakDaerahDibayar). A caller reads it under the subscription of
its ``api_clients`` entry that receives those event types; the read models hold that subscription's
projected copy, so an answer carries only its ``allowed_fields``. Without such a
subscription the answer is 403 ``no-subscription``, after its ``expires`` day 403
``subscription-expired``; a search by a field the subscription does not receive (``nop``,
``kode_wilayah``) is 403 ``field-not-in-subscription``. Each person an answer carries is
recorded in the delivery ledger (:attr:`~bus.ledger.LedgerKind.API`) before the answer
leaves; when the ledger cannot record it, the answer is 503 and carries nothing.

Single answers carry ``ETag`` (the row's sequence and last event id) and ``Last-Modified``;
``If-None-Match`` with the current tag answers 304 with no body (nothing is delivered, so
nothing is recorded). Problems name the parameter and the rule, never its value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import format_datetime
from typing import Any, Final

import sqlalchemy as sa

from adapters.db import run_sync
from adapters.gateway.group_commit import GroupCommit
from adapters.gateway.http import outcome_from
from adapters.gateway.problems import problem
from adapters.gateway.readmodels import (
    MAX_PAGE_LIMIT,
    PaymentView,
    PersonView,
    ReadModelQueryError,
    ReadModels,
)
from adapters.ledger import LedgerStore
from bus.contract.refcodes import RefCode
from bus.contract.refcodes import problem as refcode_problem
from bus.errors import BusError
from bus.ledger import LedgerEntry, LedgerKind
from bus.logs import get_logger
from bus.ops.api_clients import ClientAccess
from bus.ops.catalog import Subscription

__all__ = ["PAJAK_EVENTS", "PENDUDUK_EVENTS", "Answer", "Egress"]

log = get_logger("adapters.gateway.egress")

#: What the ledger raises when it cannot record: its own errors, and its database's (a
#: table dropped, a server gone); either way the answer is 503 and carries nothing.
_LEDGER_FAILURES = (BusError, sa.exc.SQLAlchemyError)

_PENDUDUK_UPDATED: Final = "id.go.spbe.dukcapil.PendudukUpdated.v1"
_PAJAK_DIBAYAR: Final = "id.go.spbe.bapenda.PajakDaerahDibayar.v1"
#: The event types each resource is read from.
PENDUDUK_EVENTS: Final = frozenset({_PENDUDUK_UPDATED, "id.go.spbe.dukcapil.KematianDicatat.v1"})
PAJAK_EVENTS: Final = frozenset({_PAJAK_DIBAYAR})
#: Event name (what a read-model row keeps) -> its ce_type (what the ledger keeps).
_CE_TYPES: Final = {t.split(".")[-2]: t for t in PENDUDUK_EVENTS | PAJAK_EVENTS}


@dataclass(frozen=True, slots=True)
class Answer:
    """A GET's answer: status, JSON body (``None`` for 304), headers, what to audit."""

    status: int
    body: dict[str, Any] | None
    headers: Mapping[str, str] = field(default_factory=dict)
    persons: int = 0
    subscription: Subscription | None = None

    @property
    def outcome(self) -> str:
        """``ok``, ``not-modified``, or the problem's name (for the audit trail)."""
        return outcome_from(self.status, self.body)


def _refused(status: int, name: str, title: str, detail: str, **ext: Any) -> Answer:
    return Answer(status, problem(status, name, title, detail, **ext))


def _bad_parameter(name: str, what: str, rule: str) -> Answer:
    return _refused(
        400,
        "invalid-parameter",
        "Invalid query or path parameter",
        f"{name} {what}",
        errors=[{"field": name, "problem": what, "rule": rule}],
    )


def _etag(sequence: int | None, event_id: str) -> str:
    return f'"{sequence if sequence is not None else 0}.{event_id}"'


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or etag in tags


def _cached(etag: str, updated_at: datetime) -> dict[str, str]:
    return {
        "ETag": etag,
        "Last-Modified": format_datetime(updated_at.astimezone(UTC), usegmt=True),
        "Cache-Control": "private, no-cache",
    }


def _person_body(view: PersonView) -> dict[str, Any]:
    body = dict(view.document)
    if view.kematian is not None:
        body["kematian"] = dict(view.kematian)
    return body


def _receives(subscription: Subscription, event_type: str, path: str) -> bool:
    return path in subscription.allowed_fields.get(event_type, ())


class Egress:
    """Answers the GET endpoints for a client from ``models``, recording in ``ledger``."""

    def __init__(
        self,
        models: ReadModels,
        ledger: LedgerStore,
        *,
        page_limit: int,
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._models = models
        self._ledger = ledger
        self._writer: GroupCommit[LedgerEntry] = GroupCommit(ledger.append, name="gateway-ledger")
        self._page_limit = page_limit
        self._today = today
        self._clock = clock

    def _subscription(
        self, access: ClientAccess, events: frozenset[str], what: str
    ) -> Subscription | Answer:
        covering = [s for s in access.subscriptions if events & s.allowed_fields.keys()]
        if not covering:
            return _refused(
                403,
                "no-subscription",
                "No subscription to this data",
                f"this client has no subscription to {what} in the catalogue",
                fix="the data's steward and your OPD agree a subscription (PKS) and the "
                "catalogue names it under your api_clients entry",
            )
        active = [s for s in covering if s.expires >= self._today()]
        if not active:
            expired = max(covering, key=lambda s: s.expires)
            return _refused(
                403,
                "subscription-expired",
                "Subscription expired",
                f"the subscription {expired.subscriber} to {what} ended on "
                f"{expired.expires.isoformat()}",
                fix="renew the agreement and its expires date in the catalogue",
            )
        return active[0]

    def _not_received(self, subscription: Subscription, parameter: str, path: str) -> Answer:
        return _refused(
            403,
            "field-not-in-subscription",
            "Search by a field the subscription does not receive",
            f"the subscription {subscription.subscriber} does not receive {path}, so it "
            f"cannot search by {parameter}",
            subscription=subscription.subscriber,
        )

    async def _record(self, subscription: Subscription, views: Sequence[PersonView]) -> None:
        now = self._clock()
        entries = [
            LedgerEntry(
                subject=self._ledger.subject(str(view.document.get("nik", ""))),
                event_id=view.event_id,
                event_type=_CE_TYPES.get(view.event_type, view.event_type),
                subscriber=subscription.subscriber,
                opd=subscription.opd,
                purpose=subscription.purpose,
                legal_basis=subscription.legal_basis,
                kind=LedgerKind.API,
                delivered_at=now,
            )
            for view in views
        ]
        await self._writer.append(entries)

    def _limit(self, limit: str | None) -> int | Answer:
        if limit is None:
            return self._page_limit
        if not limit.isdigit() or not 1 <= int(limit) <= MAX_PAGE_LIMIT:
            return _bad_parameter(
                "limit", f"is not a whole number from 1 to {MAX_PAGE_LIMIT}", "page size"
            )
        return int(limit)

    async def person(self, access: ClientAccess, nik: str, if_none_match: str | None) -> Answer:
        """``GET /api/v1/penduduk/{nik}``."""
        subscription = self._subscription(access, PENDUDUK_EVENTS, "population data")
        if isinstance(subscription, Answer):
            return subscription
        if (fault := refcode_problem(RefCode.NIK, nik)) is not None:
            return _bad_parameter("nik", "is not a valid NIK", fault)
        view = await run_sync(self._models.person, subscription.subscriber, nik)
        if view is None or not view.document.get("nik"):
            return Answer(
                404,
                problem(404, "not-found", "Unknown resident", "no resident with this NIK"),
                subscription=subscription,
            )
        etag = _etag(view.sequence, view.event_id)
        headers = _cached(etag, view.updated_at)
        if _matches(if_none_match, etag):
            return Answer(304, None, headers, subscription=subscription)
        try:
            await self._record(subscription, [view])
        except _LEDGER_FAILURES as exc:
            return self._ledger_down(subscription, exc)
        return Answer(200, {"data": _person_body(view)}, headers, 1, subscription)

    async def people(
        self,
        access: ClientAccess,
        kode_wilayah: str | None,
        limit: str | None,
        cursor: str | None,
    ) -> Answer:
        """``GET /api/v1/penduduk?kode_wilayah=...`` (a page of residents of a region)."""
        subscription = self._subscription(access, PENDUDUK_EVENTS, "population data")
        if isinstance(subscription, Answer):
            return subscription
        if not kode_wilayah:
            return _bad_parameter(
                "kode_wilayah", "is missing", "a Kemendagri code (32.73 or longer) is required"
            )
        if not _receives(subscription, _PENDUDUK_UPDATED, "alamat.kode_wilayah"):
            return self._not_received(subscription, "kode_wilayah", "alamat.kode_wilayah")
        size = self._limit(limit)
        if isinstance(size, Answer):
            return size
        try:
            page = await run_sync(
                self._models.people, subscription.subscriber, kode_wilayah, limit=size, after=cursor
            )
        except ReadModelQueryError as exc:
            return _bad_parameter(exc.field, exc.problem, exc.rule)
        views = [v for v in page.items if v.document.get("nik")]
        try:
            await self._record(subscription, views)
        except _LEDGER_FAILURES as exc:
            return self._ledger_down(subscription, exc)
        body = {"data": [_person_body(v) for v in views], "next_cursor": page.next_cursor}
        return Answer(200, body, {}, len(views), subscription)

    async def payments(
        self,
        access: ClientAccess,
        ntpd: str | None,
        nop: str | None,
        limit: str | None,
        cursor: str | None,
    ) -> Answer:
        """``GET /api/v1/pajak?ntpd=...`` or ``?nop=...``: the payments found (404: none)."""
        subscription = self._subscription(access, PAJAK_EVENTS, "regional tax payments")
        if isinstance(subscription, Answer):
            return subscription
        if (ntpd is None) == (nop is None):
            return _bad_parameter("ntpd", "or nop must be given, not both", "exactly one of them")
        if nop is not None:
            if not _receives(subscription, _PAJAK_DIBAYAR, "objek.nop"):
                return self._not_received(subscription, "nop", "objek.nop")
            if (fault := refcode_problem(RefCode.NOP, nop)) is not None:
                return _bad_parameter("nop", "is not a valid NOP", fault)
        size = self._limit(limit)
        if isinstance(size, Answer):
            return size
        try:
            page = await run_sync(
                self._models.payments,
                subscription.subscriber,
                ntpd=ntpd,
                nop=nop,
                limit=size,
                after=cursor,
            )
        except ReadModelQueryError as exc:
            return _bad_parameter(exc.field, exc.problem, exc.rule)
        if not page.items and cursor is None:
            what = "NTPD" if ntpd is not None else "NOP"
            return Answer(
                404,
                problem(404, "not-found", "Unknown payment", f"no payment with this {what}"),
                subscription=subscription,
            )
        body = {"data": [_payment_body(v) for v in page.items], "next_cursor": page.next_cursor}
        return Answer(200, body, {}, 0, subscription)

    def _ledger_down(self, subscription: Subscription, exc: Exception) -> Answer:
        log.error(
            "gateway.ledger_unavailable",
            subscription=subscription.subscriber,
            error_class=type(exc).__name__,
        )
        return Answer(
            503,
            problem(
                503,
                "ledger-unavailable",
                "Delivery ledger unavailable",
                "personal data is given only once its delivery is recorded; retry later",
            ),
            {"Retry-After": "5"},
            subscription=subscription,
        )


def _payment_body(view: PaymentView) -> dict[str, Any]:
    return dict(view.document)
