"""What a snapshot decides about each row it read, without IO.

A row becomes the Kafka record of its event (marked ``ce_snapshot: true``, its version as
``ce_sequence``), or an :class:`InvalidRow` when the event breaks a rule or the version is
not a non-negative integer, or nothing at all when the event function leaves it out on
purpose (it returned ``None``). An invalid row is reported by position and key
pseudonym, with the field and rule it broke: never a value, so never a NIK or a name.

A failure that is not the row's (the event function crashed, the event type is not the
steward's) is a :class:`SnapshotError`: every row after it would fail alike, so the run
stops with its progress kept.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bus.contract.events import SpbeEvent
from bus.contract.plan import OutgoingRecord
from bus.errors import BusError, ContractError, EventValidationError, FieldProblem

__all__ = ["Converted", "InvalidRow", "SnapshotError", "convert_rows"]

#: Builds the record of one event with its version; :meth:`bus.Publisher.record_for`.
Encode = Callable[[SpbeEvent, int], OutgoingRecord]


class SnapshotError(BusError):
    """A snapshot cannot go on; what was acknowledged is kept, and a re-run resumes there."""


@dataclass(frozen=True, slots=True)
class InvalidRow:
    """A row whose event was not published, as it may be reported: no field values."""

    #: The row's place in key order, counted from the snapshot's first key (1-based).
    position: int
    #: HMAC-SHA256 of the row's key under the steward's secret (for SIAK: the resident's
    #: Kafka key), never the key itself.
    key_pseudonym: str
    #: Each broken rule: the field and the rule (the problem text is left out, as for a
    #: NIK it describes some of its digits).
    problems: tuple[FieldProblem, ...]

    def report(self) -> dict[str, Any]:
        """The row as a log line's values."""
        return {
            "position": self.position,
            "key_pseudonym": self.key_pseudonym,
            "problems": [{"field": p.field, "rule": p.rule} for p in self.problems],
        }


@dataclass(slots=True)
class Converted:
    """One page of rows: the records to publish, the rows reported, the rows left out."""

    records: list[OutgoingRecord] = field(default_factory=list)
    invalid: list[InvalidRow] = field(default_factory=list)
    excluded: int = 0


def _problems(exc: ContractError) -> tuple[FieldProblem, ...]:
    if isinstance(exc, EventValidationError):
        return exc.problems
    return (FieldProblem("(event)", "breaks the event contract", exc.message),)


def convert_rows(
    rows: Sequence[Mapping[str, Any]],
    *,
    make_event: Callable[[Mapping[str, Any]], SpbeEvent | None],
    encode: Encode,
    version_column: str,
    pseudonym: Callable[[Mapping[str, Any]], str],
    first_position: int,
    entry_point: str,
) -> Converted:
    """Each row's record, or its report; raise :class:`SnapshotError` on a failure not the row's."""
    out = Converted()
    for index, row in enumerate(rows):
        version = row[version_column]
        if isinstance(version, bool) or not isinstance(version, int) or version < 0:
            problem = FieldProblem(
                version_column,
                "is not a non-negative integer",
                "the row's version, sent as ce_sequence: an integer 0 or greater",
            )
            out.invalid.append(InvalidRow(first_position + index, pseudonym(row), (problem,)))
            continue
        try:
            event = make_event(row)
        except ContractError as exc:
            out.invalid.append(InvalidRow(first_position + index, pseudonym(row), _problems(exc)))
            continue
        except BusError as exc:
            raise SnapshotError(
                f"{entry_point} failed on the row at position {first_position + index} "
                f"(key pseudonym {pseudonym(row)}): {exc.message}",
                fix=exc.fix,
            ) from None
        except Exception as exc:
            # Its message may quote the row's values: only the type is shown.
            raise SnapshotError(
                f"{entry_point} raised {type(exc).__name__} on the row at position "
                f"{first_position + index} (key pseudonym {pseudonym(row)}); its message is "
                "not shown, as it may hold the row's values",
                fix="call the function on that row in a Python shell and correct it",
            ) from None
        if event is None:
            out.excluded += 1
            continue
        if not isinstance(event, SpbeEvent):
            raise SnapshotError(
                f"{entry_point} returned a {type(event).__name__}, not an event of the standard",
                fix="return a bus.contract.events model (e.g. PendudukUpdated), or None",
            )
        try:
            out.records.append(encode(event, version))
        except BusError as exc:
            raise SnapshotError(
                f"the {event.event_name} of the row at position {first_position + index} cannot "
                f"be published: {exc.message}",
                fix=exc.fix or "check the relay section: source, key_secret, topic_overrides",
            ) from None
    return out
