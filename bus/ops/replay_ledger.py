"""The ledger entries of a replay or redrive of a projected topic: ledger first, then deliver.

The contract service records every delivery on a projected topic
(``<raw>.for.<subscriber>``) in the delivery ledger before it produces it. A replay
(``spbe-bus replay``, either mode) or a dead letter redrive delivers such events to the
subscriber again, so it records them too, as ``replay`` entries, before it hands them
over (reapply, redrive) or commits the rewound offsets (rewind). A raw topic carries no
contract and has no ledger entries: nothing is recorded for it.

The replayed records hold no NIK to read (their key is the subscriber's pairwise
pseudonym, the payload may leave the NIK out), so each replay entry copies the subject,
OPD, purpose and legal basis of the event's first entry for that subscriber
(:func:`bus.ledger.replay_entry`), looked up by its event id (``ce_id``). An event of a
projected topic without an entry cannot have been delivered by the contract service:
the ledger is another one (a wrong ``--ledger-url``) or has lost entries. The replay
then stops before delivering anything of that batch, with a :class:`ReplayRefusedError`
naming how many events lack an entry (their ids are in the debug log; never personal
data, they are UUIDs).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime

from bus.contract.projected_names import PROJECTED_TOPIC_PATTERN
from bus.errors import ConfigError
from bus.ledger import LedgerLookup, replay_entries
from bus.logs import get_logger
from bus.ops.replay_plan import ReplayError, ReplayRefusedError

__all__ = [
    "LEDGER_OPTION",
    "ReplayLedger",
    "event_id_of",
    "is_projected",
    "require_ledger",
]

log = get_logger(__name__)

#: The option that gives a replay or redrive its ledger (the CLI's; named in errors).
LEDGER_OPTION = "--ledger-url"
_ID_HEADER = "ce_id"

Headers = Sequence[tuple[str, bytes]]


def is_projected(topic: str) -> bool:
    """Whether ``topic`` is a subscription's projected topic (``<raw>.for.<subscriber>``)."""
    return PROJECTED_TOPIC_PATTERN.fullmatch(topic) is not None


def _projected_for(topic: str) -> str | None:
    match = PROJECTED_TOPIC_PATTERN.fullmatch(topic)
    return None if match is None else match["subscriber"]


def require_ledger(
    topics: Iterable[str],
    subscriber: str | None,
    *,
    ledger_given: bool,
    action: str = "replay",
) -> None:
    """Refuse a replay or redrive of a projected topic without a ledger, or for another subscriber.

    Raises :class:`~bus.errors.ConfigError` naming :data:`LEDGER_OPTION` when no ledger
    is given and one of ``topics`` is projected; and when a projected topic is another
    subscriber's than ``subscriber`` (if given: its events would reach a subscriber whose
    contract they were not made for).
    """
    projected = sorted({t for t in topics if is_projected(t)})
    for topic in projected:
        owner = _projected_for(topic)
        if subscriber is not None and owner != subscriber:
            raise ConfigError(
                f"topic {topic} is the projected topic of subscriber {owner}, not of {subscriber}",
                fix=f"replay it into {owner}, or name {subscriber}'s own projected topic",
            )
    if projected and not ledger_given:
        raise ConfigError(
            f"a {action} of the projected topic {projected[0]} delivers residents' data "
            "again, so it must be recorded in the delivery ledger, and no ledger is given",
            fix=f"pass {LEDGER_OPTION} URL (or set $SPBE_LEDGER_URL): the ledger the contract "
            "service writes",
        )


def event_id_of(headers: Headers) -> str | None:
    """The event id (``ce_id``) in a record's headers; None when it has none."""
    for name, value in headers:
        if name == _ID_HEADER:
            if not isinstance(value, bytes):
                return None
            try:
                text = value.decode("utf-8").strip()
            except UnicodeDecodeError:
                return None
            return text or None
    return None


class ReplayLedger:
    """Appends the ``replay`` entries of the events a replay or redrive delivers again.

    ``ledger`` is the store the contract service writes (``adapters.ledger.LedgerStore``;
    no ledger secret needed); ``subscriber`` the subscriber being replayed into. Its
    methods block on the database in a thread, so the event loop keeps running.
    """

    def __init__(
        self,
        ledger: LedgerLookup,
        subscriber: str,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._ledger = ledger
        self._subscriber = subscriber
        self._clock = clock
        self.recorded = 0

    @property
    def subscriber(self) -> str:
        return self._subscriber

    async def record(self, topic: str, headers: Iterable[Headers], *, where: str) -> int:
        """Append one replay entry per event in ``headers`` (records of ``topic``).

        Nothing is recorded for a raw topic. A record without ``ce_id`` is no event (the
        decoder refuses it, nothing of it is delivered) and is left out. Returns the
        entries appended. Raises :class:`ReplayRefusedError`, naming ``where`` (the
        records' place, for resuming), when an event has no original entry or the ledger
        cannot be written; nothing is appended then.
        """
        if not is_projected(topic):
            return 0
        event_ids = [i for i in (event_id_of(h) for h in headers) if i is not None]
        if not event_ids:
            return 0
        try:
            originals = await asyncio.to_thread(
                self._ledger.first_entries, self._subscriber, event_ids
            )
            entries, missing = replay_entries(event_ids, originals, self._clock())
            if missing:
                log.debug("replay.ledger_missing", topic=topic, event_ids=missing[:20])
                raise ReplayRefusedError(
                    f"stopped before {where}: {len(missing)} of its {len(event_ids)} event(s) "
                    f"have no delivery entry for {self._subscriber} in the ledger, so they "
                    "were not delivered by the contract service; nothing of them was delivered "
                    "again",
                    fix=f"check {LEDGER_OPTION} names the ledger the contract service writes "
                    "(the event ids are in the debug log: --log-level DEBUG)",
                )
            await asyncio.to_thread(self._ledger.append, entries)
        except ReplayRefusedError:
            raise
        except Exception as exc:
            raise ReplayError(
                f"stopped before {where}: the ledger did not record {len(event_ids)} "
                f"replay(s) ({type(exc).__name__}); nothing of them was delivered again",
                fix="check the ledger database (--ledger-url) and run the same command again",
            ) from exc
        self.recorded += len(entries)
        log.debug("replay.ledger_recorded", topic=topic, entries=len(entries))
        return len(entries)

    def __repr__(self) -> str:
        return f"ReplayLedger(subscriber={self._subscriber!r}, recorded={self.recorded})"
