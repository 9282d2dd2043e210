"""One dead letter, pure: its cause and origin read from headers, masked for people, selected.

*Personal data stays masked.* When a dead letter decodes as an event, every field the
schema tags ``spbe.pii`` is shown as ``***``; the error message has those values masked
and goes through :func:`mask_message`, the one masking of free text that ``spbe-bus logs``
and the console use as well. Undecodable values are never printed, only their size.
:mod:`bus.ops.dlq` reads, redrives and purges them on Kafka.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from aiokafka.structs import ConsumerRecord

from bus.contract.message import IncomingEvent
from bus.delivery import (
    DLQ_HEADER_PREFIX,
)
from bus.errors import BusError, ConfigError

__all__ = [
    "MASK",
    "DeadLetter",
    "DeadLetterError",
    "describe",
    "error_class_matches",
    "mask_message",
    "mask_paths",
    "mask_text",
    "personal_values",
    "purgeable_to",
    "select",
]

MASK: Final = "***"
#: NIK and No. KK (16 digits), NOP PBB (18): never shown, wherever they turn up in a message.
_LONG_DIGITS = re.compile(r"\d{16,}")
# A quote that opens after a non-word character and closes before one: not "Dinas's".
_QUOTED = re.compile(r"""(?<!\w)(?:'([^'\n]*)'|"([^"\n]*)")(?!\w)""")
_TECHNICAL = re.compile(r"[A-Za-z0-9]+(?:[_./:-][A-Za-z0-9]+)+")
# Ten or more digits, maybe split by spaces or dashes (0812-3456-7890), but not inside a
# hex token such as an event id (01934567-8901-7abc-...).
_DIGITS = re.compile(r"(?<![0-9A-Fa-f-])(?:\d[\s-]?){9,}\d(?![0-9A-Fa-f-])")
_SQL_TAIL = re.compile(r"\s*\[(?:SQL|parameters):.*", re.DOTALL)
# A database's detail (PostgreSQL's DETAIL: line, the row or key it quotes) follows the
# first line; everything from there is dropped.
_DETAIL = re.compile(r"\s*(?:\n|\bDETAIL:).*", re.DOTALL)
# PostgreSQL's "Key (nama)=(Siti Aminah)" and "Failing row contains (Siti, Jl. ...)".
_KEY_VALUES = re.compile(r"=\([^\n]*\)")
_ROW = re.compile(r"\bcontains \([^\n]*\)")
# key=value pairs; a value runs to the next key= or the end, as in "nama=Siti Aminah hp=0812".
_PAIR = re.compile(r"(?<![\w.=-])([A-Za-z_][\w.-]*)=(?=[^\s=])(.*?)(?=[\s,;]+[A-Za-z_][\w.-]*=|$)")
#: Keys whose value is technical (a host, a port, a code), shown as they are.
_TECHNICAL_KEYS: Final = frozenset(
    {
        "attempt", "attempts", "broker", "client", "code", "column", "constraint", "count",
        "database", "db", "dbname", "dlq", "endpoint", "error_class", "error_type",
        "event", "event_id", "group_id", "host", "kind", "level", "logger", "node", "node_id",
        "offset", "partition", "port", "protocol", "retriable", "schema", "source",
        "sqlstate", "status", "subscriber", "subscription", "table", "timeout", "topic",
        "type", "version",
    }
)  # fmt: skip
_MAX_TEXT = 300


class DeadLetterError(BusError):
    """A dead-letter command could not do what was asked; the message says why."""


# -- one dead letter (pure) ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One record of a dead letter topic: the original record plus its cause."""

    topic: str
    partition: int
    offset: int
    timestamp: datetime
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    @classmethod
    def from_record(cls, record: ConsumerRecord[bytes, bytes]) -> DeadLetter:
        return cls(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            timestamp=datetime.fromtimestamp(record.timestamp / 1000, UTC),
            key=record.key,
            value=record.value,
            headers=tuple((k, v or b"") for k, v in record.headers),
        )

    @property
    def cause(self) -> dict[str, str]:
        """The ``dlq_*`` headers without their prefix (``error_class``, ``attempts``...)."""
        return {
            k.removeprefix(DLQ_HEADER_PREFIX): v.decode("utf-8", "replace")
            for k, v in self.headers
            if k.startswith(DLQ_HEADER_PREFIX)
        }

    @property
    def original_headers(self) -> list[tuple[str, bytes]]:
        """The headers the event was published with (the CloudEvents envelope)."""
        return [(k, v) for k, v in self.headers if not k.startswith(DLQ_HEADER_PREFIX)]

    @property
    def error_class(self) -> str:
        return self.cause.get("error_class", "")

    def original(self) -> tuple[str, int, int]:
        """(topic, partition, offset) of the event in its own topic."""
        cause = self.cause
        return (
            cause.get("original_topic", ""),
            int(cause.get("original_partition", "-1") or -1),
            int(cause.get("original_offset", "-1") or -1),
        )


def mask_paths(data: Any, paths: Iterable[str]) -> Any:
    """A copy of ``data`` with the value at each dotted path replaced by :data:`MASK`.

    Paths are those of :meth:`~bus.contract.schema.AvroSchema.pii_fields`: ``[]`` steps
    into every item of a list and ``{}`` into every value of a map. Absent values (None)
    stay None, so a reader still sees the field was empty.
    """
    result = _copy(data)
    for path in paths:
        result = _mask(result, path.split("."))
    return result


def _copy(data: Any) -> Any:
    if isinstance(data, Mapping):
        return {k: _copy(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_copy(v) for v in data]
    return data


def _mask(data: Any, steps: list[str]) -> Any:
    if not steps or data is None:
        return data if data is None else MASK
    step, rest = steps[0], steps[1:]
    name = step.removesuffix("[]").removesuffix("{}")
    if not isinstance(data, dict) or name not in data:
        return data
    value = data[name]
    if step.endswith("[]") and isinstance(value, list):
        data[name] = [_mask(item, rest) for item in value]
    elif step.endswith("{}") and isinstance(value, dict):
        data[name] = {k: _mask(v, rest) for k, v in value.items()}
    else:
        data[name] = _mask(value, rest)
    return data


def _values_at(data: Any, steps: list[str]) -> list[str]:
    if data is None:
        return []
    if not steps:
        return [str(data)]
    step, rest = steps[0], steps[1:]
    name = step.removesuffix("[]").removesuffix("{}")
    if not isinstance(data, dict):
        return []
    value = data.get(name)
    if step.endswith("[]") and isinstance(value, list):
        return [found for item in value for found in _values_at(item, rest)]
    if step.endswith("{}") and isinstance(value, dict):
        return [found for item in value.values() for found in _values_at(item, rest)]
    return _values_at(value, rest)


def personal_values(incoming: IncomingEvent) -> list[str]:
    """The values of the event's ``spbe.pii`` fields, to mask wherever they are quoted."""
    data = incoming.event.to_json()
    return [v for path in incoming.writer.pii_fields() for v in _values_at(data, path.split("."))]


def mask_text(text: str, personal: Iterable[str] = ()) -> str:
    """``text`` with each personal value (3+ characters) and long digit runs masked."""
    for value in sorted({v for v in personal if len(v) >= 3}, key=len, reverse=True):
        text = text.replace(value, MASK)
    return _LONG_DIGITS.sub(MASK, text)


def mask_message(text: str, personal: Iterable[str] = ()) -> str:
    """Free text (an error message, a reason) with what could be personal masked, cut to
    300 characters: what ``spbe-bus logs``, ``spbe-bus dlq`` and the console show.

    The ``personal`` values go first (:func:`mask_text`). Only the first line is kept, up
    to a ``DETAIL:`` (a database's detail quotes the row), without SQLAlchemy's ``[SQL:
    ...]`` and ``[parameters: ...]``. Then ``=(...)`` groups and ``contains (...)`` rows,
    the values of ``key=value`` pairs whose key is not technical (``nama=Siti Aminah``;
    ``port=5432`` stays), digit runs of ten or more even when split by spaces or dashes
    (NIK, No. KK, NPWP, phone numbers), and quoted literals that are not technical names
    (``'spbe_ledger'``, ``'spbe.dukcapil.penduduk.v1'``, ``'127.0.0.1:9092'`` stay;
    ``'Siti Aminah'`` does not) become ``***``.
    """
    text = mask_text(text, personal)
    if (detail := _DETAIL.search(text)) is not None:
        text = f"{text[: detail.start()]} [detail dropped]".lstrip()
    text = _SQL_TAIL.sub(" [SQL and parameters dropped]", text)
    text = _KEY_VALUES.sub(f"=({MASK})", text)
    text = _ROW.sub(f"contains ({MASK})", text)

    def pair(match: re.Match[str]) -> str:
        key = match.group(1)
        if key.lower() in _TECHNICAL_KEYS:
            return match.group(0)
        return f"{key}={MASK}"

    text = _PAIR.sub(pair, text)

    def quoted(match: re.Match[str]) -> str:
        inner = match.group(1) if match.group(1) is not None else match.group(2)
        mark = match.group(0)[0]
        return match.group(0) if _TECHNICAL.fullmatch(inner) else f"{mark}{MASK}{mark}"

    text = _QUOTED.sub(quoted, text)
    text = _DIGITS.sub(MASK, text)
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"


def describe(
    letter: DeadLetter,
    incoming: IncomingEvent | None,
    *,
    problem: str | None = None,
    full: bool = False,
) -> dict[str, Any]:
    """A JSON-ready view of ``letter`` with personal data masked.

    ``incoming`` is the decoded event (None when it does not decode; ``problem`` says
    why). ``full`` adds the envelope headers, as ``dlq show`` prints them.
    """
    topic, partition, offset = letter.original()
    cause = letter.cause
    personal: list[str] = []
    view: dict[str, Any] = {
        "dlq_topic": letter.topic,
        "partition": letter.partition,
        "offset": letter.offset,
        "dead_lettered_at": letter.timestamp.isoformat(timespec="milliseconds"),
        "original": {"topic": topic, "partition": partition, "offset": offset},
        "error_class": cause.get("error_class"),
        "attempts": int(cause["attempts"]) if cause.get("attempts", "").isdigit() else None,
        "first_failure": cause.get("first_failure"),
        "last_failure": cause.get("last_failure"),
        "key": letter.key.decode("utf-8", "replace") if letter.key is not None else None,
    }
    if incoming is not None:
        data = incoming.event.to_json()
        paths = incoming.writer.pii_fields()
        personal = personal_values(incoming)
        envelope = incoming.envelope
        view.update(
            event_type=envelope.type,
            event_id=envelope.id,
            source=envelope.source,
            time=envelope.time.isoformat(),
            sequence=envelope.sequence,
            event=mask_paths(data, paths),
        )
    else:
        size = len(letter.value) if letter.value is not None else 0
        view["undecodable"] = mask_message(f"{problem or 'not an event'} ({size} bytes, not shown)")
    view["error_message"] = mask_message(cause.get("error_message", ""), personal)
    if full:
        view["headers"] = {
            k: mask_text(v.decode("utf-8", "replace"), personal) for k, v in letter.original_headers
        }
    return view


def error_class_matches(actual: str, wanted: str) -> bool:
    """``wanted`` is the full class name, or only its last part (``RejectedEventError``)."""
    return actual == wanted or actual.rsplit(".", 1)[-1] == wanted


def select(
    letters: Sequence[DeadLetter],
    *,
    from_offset: int | None = None,
    to_offset: int | None = None,
    error_class: str | None = None,
) -> list[DeadLetter]:
    """The dead letters with ``from_offset <= offset <= to_offset`` and the error class."""
    if from_offset is not None and to_offset is not None and to_offset < from_offset:
        raise ConfigError(f"--to-offset {to_offset} is before --from-offset {from_offset}")
    return [
        letter
        for letter in letters
        if (from_offset is None or letter.offset >= from_offset)
        and (to_offset is None or letter.offset <= to_offset)
        and (error_class is None or error_class_matches(letter.error_class, error_class))
    ]


def purgeable_to(offsets: Sequence[int], resolved: Iterable[int]) -> int | None:
    """The last offset up to which every dead letter in ``offsets`` is ``resolved``.

    ``offsets`` are all the partition's dead letters, in order, from the first one held.
    None when the first one is not resolved (purging anything would lose it).
    """
    done = set(resolved)
    last: int | None = None
    for offset in offsets:
        if offset not in done:
            break
        last = offset
    return last
