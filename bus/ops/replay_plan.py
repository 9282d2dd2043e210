"""Replay planning, pure: the operator's input, the windows, the key filter, the errors.

Nothing here reaches Kafka; :mod:`bus.ops.replay` looks the offsets up and
:mod:`bus.ops.reapply` hands the events to a sink. Tested without a broker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from aiokafka import TopicPartition

from bus.errors import BusError, ConfigError

__all__ = [
    "PartitionWindow",
    "ReplayError",
    "ReplayMode",
    "ReplayRefusedError",
    "ReplayRequest",
    "compute_windows",
    "key_selected",
    "parse_offsets",
    "parse_time",
]


class ReplayError(BusError):
    """A replay stopped part way; the message says where, and how to resume."""


class ReplayRefusedError(ReplayError):
    """A replay was refused as asked; the message explains why and ``fix`` what to do."""


class ReplayMode(StrEnum):
    """How a replay reaches the subscriber (see the module docstring)."""

    REWIND = "rewind"
    REAPPLY = "reapply"


# -- the operator's input (pure) ---------------------------------------------------------------


def parse_time(text: str, *, option: str = "--from-time") -> datetime:
    """An ISO 8601 instant with its UTC offset (``2026-03-01T08:00:00+07:00`` or ``...Z``)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            f"{option} {text!r} is not an ISO 8601 time",
            fix=f"write e.g. {option} 2026-03-01T08:00:00+07:00",
        ) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ConfigError(
            f"{option} {text!r} has no UTC offset, so the instant is ambiguous",
            fix="add the zone, e.g. +07:00 for WIB, +08:00 for WITA, +09:00 for WIT, or Z",
        )
    return moment


def parse_offsets(text: str, topics: Sequence[str]) -> dict[TopicPartition, int]:
    """``P:O,...`` (one topic) or ``TOPIC:P:O,...`` into start offsets per partition."""
    offsets: dict[TopicPartition, int] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        pieces = item.rsplit(":", 2)
        if len(pieces) == 2 and len(topics) == 1:
            topic, (partition, offset) = topics[0], pieces
        elif len(pieces) == 3:
            topic, partition, offset = pieces
        else:
            raise ConfigError(
                f"--from-offsets item {item!r} is not PARTITION:OFFSET"
                + (" (several topics: write TOPIC:PARTITION:OFFSET)" if len(topics) > 1 else ""),
                fix="write e.g. --from-offsets 0:120,1:98",
            )
        if topic not in topics:
            raise ConfigError(
                f"--from-offsets names topic {topic!r}, which is not one of --topic",
                fix="add it with --topic or correct the name",
            )
        if not (partition.isdigit() and offset.isdigit()):
            raise ConfigError(
                f"--from-offsets item {item!r}: partition and offset must be whole numbers ≥ 0"
            )
        tp = TopicPartition(topic, int(partition))
        if tp in offsets:
            raise ConfigError(f"--from-offsets names {topic}[{partition}] twice")
        offsets[tp] = int(offset)
    if not offsets:
        raise ConfigError("--from-offsets is empty", fix="write e.g. --from-offsets 0:120,1:98")
    return offsets


def key_selected(key: bytes | None, keys: frozenset[bytes]) -> bool:
    """Whether a record with Kafka key ``key`` is in the replay (every key when none given)."""
    return not keys or (key is not None and key in keys)


@dataclass(frozen=True, kw_only=True, slots=True)
class ReplayRequest:
    """What the operator asked for, checked when built (a :class:`ConfigError` names the rule)."""

    subscriber: str
    topics: tuple[str, ...]
    reason: str
    mode: ReplayMode = ReplayMode.REWIND
    from_time: datetime | None = None
    from_offsets: Mapping[TopicPartition, int] | None = None
    to_time: datetime | None = None
    keys: frozenset[bytes] = frozenset()

    def __post_init__(self) -> None:
        if not self.reason.strip():
            raise ConfigError(
                "--reason is required: every replay is recorded in the audit topic with why",
                fix='add --reason "..." naming the incident or ticket, e.g. --reason '
                '"restore DB Dinsos setelah insiden 2026-03-01, tiket #123"',
            )
        if not self.topics:
            raise ConfigError("name at least one --topic to replay")
        if (self.from_time is None) == (self.from_offsets is None):
            raise ConfigError(
                "give exactly one of --from-time and --from-offsets",
                fix="--from-time 2026-03-01T00:00:00+07:00, or --from-offsets 0:120,1:98",
            )
        if self.from_time and self.to_time and self.to_time <= self.from_time:
            raise ConfigError("--to-time must be after --from-time")
        if self.mode is ReplayMode.REWIND and self.keys:
            raise ConfigError(
                "--key cannot be used in rewind mode: a consumer group has one offset per "
                "partition, so rewinding it replays every key of those partitions",
                fix="use --mode reapply --adapter FILE.yaml to re-apply only these keys",
            )
        if self.mode is ReplayMode.REWIND and self.to_time is not None:
            raise ConfigError(
                "--to-time cannot be used in rewind mode: the rewound subscriber reads on to "
                "the end of each partition",
                fix="use --mode reapply --adapter FILE.yaml to re-apply only a time window",
            )

    def parameters(self) -> dict[str, Any]:
        """The request as the audit record stores it (keys are pseudonyms, never raw ids)."""
        return {
            "mode": self.mode.value,
            "from_time": self.from_time.isoformat() if self.from_time else None,
            "from_offsets": (
                {f"{tp.topic}:{tp.partition}": o for tp, o in sorted(self.from_offsets.items())}
                if self.from_offsets is not None
                else None
            ),
            "to_time": self.to_time.isoformat() if self.to_time else None,
            "keys": sorted(k.decode("utf-8", "replace") for k in self.keys),
        }


# -- windows (pure) ------------------------------------------------------------------------


@dataclass(frozen=True, order=True, slots=True)
class PartitionWindow:
    """Offsets ``start`` (included) to ``end`` (excluded) of one partition."""

    topic: str
    partition: int
    start: int
    end: int

    @property
    def tp(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)

    @property
    def count(self) -> int:
        """How many offsets the window spans (an upper bound on compacted topics)."""
        return max(0, self.end - self.start)

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}] {self.start}..{self.end} ({self.count})"


def compute_windows(
    bounds: Mapping[TopicPartition, tuple[int, int]],
    starts: Mapping[TopicPartition, int | None],
    stops: Mapping[TopicPartition, int | None] | None = None,
) -> list[PartitionWindow]:
    """The window of each partition in ``starts``, clamped to what the log holds.

    ``bounds`` holds each partition's (first offset still held, end offset); ``starts``
    the start offset per partition to replay (from an explicit offset or a time lookup;
    ``None``: no event at or after the time, so nothing to replay); ``stops`` the end
    offset from a time lookup (``None`` or missing: the end of the log).
    """
    windows: list[PartitionWindow] = []
    for tp, start in starts.items():
        if tp not in bounds:
            raise ConfigError(
                f"{tp.topic} has no partition {tp.partition}",
                fix=f"partitions of {tp.topic}: "
                + ", ".join(str(p.partition) for p in sorted(bounds) if p.topic == tp.topic),
            )
        low, high = bounds[tp]
        begin = high if start is None else min(max(start, low), high)
        stop = (stops or {}).get(tp)
        finish = high if stop is None else min(max(stop, begin), high)
        windows.append(PartitionWindow(tp.topic, tp.partition, begin, finish))
    return sorted(windows)
