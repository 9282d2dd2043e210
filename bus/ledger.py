"""The delivery ledger's records, pure: who received whose data, when, under which agreement.

Every delivery of a resident's data to a subscriber (a live event, a snapshot row, a
replayed event) is recorded as one :class:`LedgerEntry` *before* it is delivered (the
store is :mod:`adapters.ledger`; ``docs/contracts.md`` "The delivery ledger" says why the
order matters). An entry names the resident by a **ledger subject**, never by the NIK:
the HMAC-SHA256 of the NIK under a secret of the ledger's own
(:class:`LedgerSubjects`, built on :mod:`bus.contract.pseudonyms`). It differs from
every Kafka key (those are keyed with a steward's or a subscriber's secret), so the
ledger cannot be joined to a data set by key, and nobody without the ledger secret can
turn a NIK into its entries or an entry back into a NIK.

:func:`replay_entry` turns the entry of an event's first delivery into the entry of
delivering it again (a replay or a dead letter redrive): the same subject, subscriber and
agreement, ``kind`` ``replay``, a new time. A replay re-delivers records that carry no NIK
the replaying operator could read (a projected record's key is a pairwise pseudonym), so
the subject is taken from the original entry, never recomputed.

:func:`summarise` turns the entries of one subject into the answer of
``spbe-bus ledger who-received``: the entries newest first and one line per subscriber.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from bus.contract.pseudonyms import Pseudonymiser
from bus.contract.refcodes import RULES, RefCode, problem
from bus.errors import ConfigError

__all__ = [
    "MAX_LENGTHS",
    "SUBJECT_LENGTH",
    "Ledger",
    "LedgerEntry",
    "LedgerKind",
    "LedgerLookup",
    "LedgerSubjects",
    "SubscriberSummary",
    "WhoReceived",
    "replay_entries",
    "replay_entry",
    "summarise",
]

#: Longest values of the text columns (``adapters.ledger`` sizes its table with them).
MAX_LENGTHS = {
    "event_id": 36,
    "event_type": 100,
    "subscriber": 100,
    "opd": 100,
    "legal_basis": 255,
    "purpose": 1000,
}
#: A subject is a hex HMAC-SHA256: 64 lowercase hex digits.
SUBJECT_LENGTH = 64
_HEX = frozenset("0123456789abcdef")


class LedgerKind(StrEnum):
    """How the data reached the subscriber."""

    DELIVERY = "delivery"  # a live event, as it happened
    SNAPSHOT = "snapshot"  # a day-one snapshot row
    REPLAY = "replay"  # an event delivered again by a replay or redrive
    API = "api"  # read through the REST gateway (GET /api/v1/...)


def _utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ConfigError(
            f"{name} must be a timezone-aware time (it has no UTC offset)",
            fix="pass datetime.now(UTC) or a time with its offset, e.g. +07:00 for WIB",
        )
    return value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One delivery of one subject's data to one subscriber.

    Raises :class:`~bus.errors.ConfigError` naming the field and the rule when a value
    does not fit (never repeating it). ``delivered_at`` is kept in UTC.
    """

    subject: str = field(repr=False)
    event_id: str
    event_type: str
    subscriber: str
    opd: str
    purpose: str
    legal_basis: str
    kind: LedgerKind
    delivered_at: datetime

    def __post_init__(self) -> None:
        if len(self.subject) != SUBJECT_LENGTH or not _HEX.issuperset(self.subject):
            raise ConfigError(
                "subject must be a ledger pseudonym (64 lowercase hex digits), never a NIK",
                fix="turn the NIK into its subject with LedgerSubjects(secret).subject(nik)",
            )
        for name, longest in MAX_LENGTHS.items():
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"{name} must be a non-empty string", fix=f"set {name}")
            if len(value) > longest:
                raise ConfigError(
                    f"{name} is {len(value)} characters; at most {longest} are allowed",
                    fix=f"shorten {name}",
                )
        try:
            kind = LedgerKind(self.kind)
        except ValueError:
            raise ConfigError(
                "kind must be one of " + ", ".join(k.value for k in LedgerKind),
                fix="use LedgerKind.DELIVERY, SNAPSHOT, REPLAY or API",
            ) from None
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "delivered_at", _utc(self.delivered_at, "delivered_at"))

    @classmethod
    def unchecked(
        cls,
        *,
        subject: str,
        event_id: str,
        event_type: str,
        subscriber: str,
        opd: str,
        purpose: str,
        legal_basis: str,
        kind: LedgerKind,
        delivered_at: datetime,
    ) -> LedgerEntry:
        """An entry of values the caller has checked already, built without checking them.

        For a delivering service that checks its constant values once (a subscription's
        agreement, through an ordinary entry) and takes the rest from checked parts: a
        subject made by :class:`LedgerSubjects` or a ``Pseudonymiser`` (a hex HMAC), the
        event id of a decoded envelope (a UUIDv7), a :class:`LedgerKind` and a UTC time.
        Everything else builds entries the ordinary way.
        """
        entry = object.__new__(cls)
        _set = object.__setattr__
        _set(entry, "subject", subject)
        _set(entry, "event_id", event_id)
        _set(entry, "event_type", event_type)
        _set(entry, "subscriber", subscriber)
        _set(entry, "opd", opd)
        _set(entry, "purpose", purpose)
        _set(entry, "legal_basis", legal_basis)
        _set(entry, "kind", kind)
        _set(entry, "delivered_at", delivered_at)
        return entry

    def as_json(self) -> dict[str, str]:
        """The entry as the JSON of ``who-received --json`` (the subject left out)."""
        return {
            "opd": self.opd,
            "subscriber": self.subscriber,
            "delivered_at": self.delivered_at.isoformat(),
            "event_type": self.event_type,
            "event_id": self.event_id,
            "kind": self.kind.value,
            "purpose": self.purpose,
            "legal_basis": self.legal_basis,
        }


class LedgerSubjects:
    """Turns a NIK into its ledger subject: HMAC-SHA256 under the ledger secret, hex.

    The NIK is checked first (16 digits, a plausible kecamatan prefix and birth date):
    a mistyped NIK would otherwise give a subject with no entries, an answer of "nobody
    received anything" instead of an error. Raises :class:`~bus.errors.ConfigError` for a
    secret shorter than 16 bytes.
    """

    __slots__ = ("_pseudonymise",)

    def __init__(self, secret: bytes) -> None:
        self._pseudonymise = Pseudonymiser(secret)

    def subject(self, nik: str, *, field_name: str = "nik") -> str:
        """The subject of ``nik``; :class:`~bus.errors.ConfigError` naming the rule if not a NIK.

        The message names ``field_name`` and the rule, never the value.
        """
        found = problem(RefCode.NIK, nik)
        if found:
            raise ConfigError(
                f"{field_name} is not a NIK: {found}",
                fix=f"give a valid NIK ({RULES[RefCode.NIK]})",
            )
        return self._pseudonymise(nik)

    def __repr__(self) -> str:
        return "LedgerSubjects(secret=**********)"


class Ledger(Protocol):
    """What a delivering service needs of a ledger store (``adapters.ledger.LedgerStore``)."""

    def append(self, entries: Sequence[LedgerEntry]) -> None:
        """Record ``entries`` durably, all or none, before they are delivered."""


class LedgerLookup(Ledger, Protocol):
    """What a replay needs of a ledger store: append, and find an event's first delivery."""

    def first_entries(self, subscriber: str, event_ids: Sequence[str]) -> dict[str, LedgerEntry]:
        """The first entry (by the order written) of each of ``event_ids`` delivered to
        ``subscriber``, by event id; an event id with no entry is left out."""


def replay_entry(original: LedgerEntry, when: datetime) -> LedgerEntry:
    """The entry of delivering ``original``'s event again at ``when``: kind ``replay``.

    Subject, event, subscriber, OPD, purpose and legal basis stay the original's: a replay
    re-delivers the record as it was first delivered, under the contract it carries.
    """
    return replace(original, kind=LedgerKind.REPLAY, delivered_at=_utc(when, "when"))


def replay_entries(
    event_ids: Sequence[str], originals: Mapping[str, LedgerEntry], when: datetime
) -> tuple[list[LedgerEntry], list[str]]:
    """One replay entry per event id (in order), and the event ids with no original entry."""
    entries: list[LedgerEntry] = []
    missing: list[str] = []
    for event_id in event_ids:
        original = originals.get(event_id)
        if original is None:
            missing.append(event_id)
        else:
            entries.append(replay_entry(original, when))
    return entries, missing


@dataclass(frozen=True, slots=True)
class SubscriberSummary:
    """What one subscriber received of one subject."""

    subscriber: str
    opd: str
    deliveries: int
    first: datetime
    last: datetime
    event_types: tuple[str, ...]
    #: Every (purpose, legal basis) it received the subject's data under, sorted.
    agreements: tuple[tuple[str, str], ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "subscriber": self.subscriber,
            "opd": self.opd,
            "deliveries": self.deliveries,
            "first": self.first.isoformat(),
            "last": self.last.isoformat(),
            "event_types": list(self.event_types),
            "agreements": [{"purpose": p, "legal_basis": b} for p, b in self.agreements],
        }


@dataclass(frozen=True, slots=True)
class WhoReceived:
    """The answer for one subject: its entries newest first, one summary per subscriber.

    It holds no NIK and no subject: it can be shown to the resident who asked.
    """

    entries: tuple[LedgerEntry, ...]
    subscribers: tuple[SubscriberSummary, ...]
    frm: datetime | None = None
    to: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "from": None if self.frm is None else self.frm.isoformat(),
            "to": None if self.to is None else self.to.isoformat(),
            "deliveries": len(self.entries),
            "subscribers": [s.as_json() for s in self.subscribers],
            "entries": [e.as_json() for e in self.entries],
        }


def summarise(
    entries: Iterable[LedgerEntry], *, frm: datetime | None = None, to: datetime | None = None
) -> WhoReceived:
    """The answer for one subject's ``entries``: newest first; subscribers by latest delivery."""
    ordered = tuple(sorted(entries, key=lambda e: e.delivered_at, reverse=True))
    groups: dict[str, list[LedgerEntry]] = {}
    for entry in ordered:
        groups.setdefault(entry.subscriber, []).append(entry)
    subscribers = tuple(
        SubscriberSummary(
            subscriber=name,
            opd=group[0].opd,
            deliveries=len(group),
            first=group[-1].delivered_at,
            last=group[0].delivered_at,
            event_types=tuple(sorted({e.event_type for e in group})),
            agreements=tuple(sorted({(e.purpose, e.legal_basis) for e in group})),
        )
        for name, group in groups.items()
    )
    return WhoReceived(
        entries=ordered,
        subscribers=subscribers,
        frm=None if frm is None else _utc(frm, "from"),
        to=None if to is None else _utc(to, "to"),
    )
