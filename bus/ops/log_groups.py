"""Adapter errors from their JSON logs, grouped by cause: what ``spbe-bus logs`` prints.

Every adapter run as a service writes one JSON object per line
(:func:`bus.logs.configure_logging` with ``json=True``, or ``spbe-bus --log-json run FILE``
under systemd). An operator asking "what is failing, since when, how often" reads hundreds
of such lines; this module folds them into one group per cause, where a cause is

* the **origin**: the line's ``logger`` if it has one, else the log's name (one file per
  adapter, as journald or a service's ``StandardError=`` keeps them), with the subscriber,
  source or API client the line names;
* the **event**, the log event's name (``outbox.publish_failed``);
* the **error type**, from ``error_class`` / ``error_type``, the exception's line (the
  last line of a traceback that names an exception class: SQLAlchemy ends its tracebacks
  with a ``(Background on this error at: ...)`` line), or
  an ``error`` value that starts with a class name (``OperationalError: ...``).

Each group has its count, first and last time, its highest level and one example line.

Log lines are written for operators and never carry personal data on purpose (see
:mod:`bus.logs`), but an error message can quote what a database or a remote endpoint
answered. So the example keeps only the fields of :data:`SAFE_FIELDS` and
:data:`TEXT_FIELDS`; any other field (a webhook's ``body_excerpt``, a traceback's frames)
is dropped, as its value could be personal, and of an exception only its class's line is
kept. Free text is masked by :func:`bus.ops.dlq_records.mask_message`, the one masking of
free text the dead-letter commands and the console use too. A line that is not a JSON
object with an ``event`` is counted as unparsable, never echoed.

Pure: the caller reads the files (:mod:`bus.cli.logs_cmd`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from bus.errors import ConfigError
from bus.ops.dlq_records import mask_message

__all__ = [
    "LEVELS",
    "SAFE_FIELDS",
    "TEXT_FIELDS",
    "LogGroup",
    "LogReport",
    "group_logs",
]

#: Levels in rising order; ``group_logs(level=...)`` keeps that level and the ones after it.
LEVELS: Final = ("debug", "info", "warning", "error", "critical")
_ALIASES: Final = {"warn": "warning", "exception": "error", "fatal": "critical"}

#: Fields an example line may show: names, ids, counts, positions, and the error's text.
SAFE_FIELDS: Final = frozenset(
    {
        "aggregates", "attempt", "attempts", "client", "column", "count", "dlq", "endpoint",
        "error_class", "error_type", "event_id", "expires", "failed", "failures_in_a_row",
        "first_offset", "group_id", "kind", "offset", "partition", "published", "records",
        "retriable", "retry_in_ms", "retry_in_s", "row_id", "run", "sink", "size", "source",
        "status", "subscriber", "subscription", "table", "topic", "type",
    }
)  # fmt: skip
#: Free-text fields: shown masked (:func:`mask_message`).
TEXT_FIELDS: Final = frozenset(
    {"cause", "detail", "error", "failure", "fix", "message", "reason", "what"}
)
#: Fields that say who logged, after the logger and the log's name.
_WHO: Final = ("subscriber", "source", "client")
_TIME_KEYS: Final = ("timestamp", "time", "ts")

_CLASS_AT_START = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Timeout|Refused|Failure))\b")
_CLASS_NAME = re.compile(r"^[A-Z][A-Za-z0-9]*(?:\.[A-Z][A-Za-z0-9]*)*$")
# A traceback's exception line: ``sqlalchemy.exc.IntegrityError: ...`` or a bare name. The
# class is dotted (a module path) or ends as exception classes do, so that neither
# ``DETAIL: ...`` nor a message's own continuation line (``Siti: ...``) is taken for one.
_EXCEPTION_LINE = re.compile(r"^((?:[a-z_][a-z0-9_]*\.)*([A-Z][A-Za-z0-9]*))(?::(?:\s.*)?)?$")
_EXCEPTION_ENDS: Final = (
    "Error", "Exception", "Warning", "Timeout", "Refused", "Failure", "Interrupt", "Exit",
)  # fmt: skip


def _level(name: str) -> str:
    wanted = _ALIASES.get(name.lower(), name.lower())
    if wanted not in LEVELS:
        raise ConfigError(
            f"level: {name!r} is not a log level",
            fix=f"use one of: {', '.join(LEVELS)}",
        )
    return wanted


def _error_type(line: Mapping[str, Any]) -> str | None:
    for key in ("error_class", "error_type"):
        value = line.get(key)
        if isinstance(value, str) and _CLASS_NAME.match(value):
            return value
    exception = line.get("exception")
    if isinstance(exception, str) and (raised := _exception_line(exception)) is not None:
        return raised[0]
    error = line.get("error")
    if isinstance(error, str):
        if _CLASS_NAME.fullmatch(error):
            return error
        if found := _CLASS_AT_START.match(error):
            return found.group(1).rsplit(".", 1)[-1]
    return None


def _exception_line(text: str) -> tuple[str, str] | None:
    """The class name and the line of the exception a traceback ends with, from the bottom."""
    for candidate in reversed(text.strip().splitlines()):
        found = _EXCEPTION_LINE.match(candidate.rstrip())
        if found is None:
            continue
        name = found.group(2)
        if "." in found.group(1) or name.endswith(_EXCEPTION_ENDS):
            return name, candidate.rstrip()
    return None


def _time(line: Mapping[str, Any]) -> datetime | None:
    for key in _TIME_KEYS:
        value = line.get(key)
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return None
    return None


def _origin(line: Mapping[str, Any], log_name: str) -> str:
    logger = line.get("logger")
    base = logger if isinstance(logger, str) and logger else log_name
    for key in _WHO:
        value = line.get(key)
        if isinstance(value, str) and value:
            return f"{base} ({key} {mask_message(value)})"
    return base


def _example(line: Mapping[str, Any]) -> str:
    """The line as ``event key=value ...``: safe fields as they are, text masked."""
    parts = [mask_message(str(line.get("event", "")))]
    for key in sorted(line):
        value = line[key]
        if key in SAFE_FIELDS and isinstance(value, int | float | bool):
            parts.append(f"{key}={json.dumps(value)}")
            continue
        if key in SAFE_FIELDS and isinstance(value, str):
            shown = mask_message(value)
        elif key in TEXT_FIELDS and value is not None:
            shown = mask_message(value if isinstance(value, str) else json.dumps(value))
        elif key == "exception" and isinstance(value, str):
            found = _exception_line(value)  # that line only, not the frames' locals
            if found is None:
                continue
            shown = mask_message(found[1])
        else:
            continue
        parts.append(f"{key}={json.dumps(shown, ensure_ascii=False)}")
    return " ".join(parts)


@dataclass(frozen=True, slots=True)
class LogGroup:
    """One cause: where it was logged, the event, the error type, and how often."""

    origin: str
    event: str
    error_type: str | None
    level: str
    count: int
    first: datetime | None
    last: datetime | None
    example: str

    def to_json(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "event": self.event,
            "error_type": self.error_type,
            "level": self.level,
            "count": self.count,
            "first": None if self.first is None else self.first.isoformat(),
            "last": None if self.last is None else self.last.isoformat(),
            "example": self.example,
        }


@dataclass(frozen=True, slots=True)
class LogReport:
    """The groups (most frequent first) and what was read."""

    level: str
    logs: tuple[str, ...]
    lines: int
    unparsable: int
    below_level: int
    groups: tuple[LogGroup, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "logs": list(self.logs),
            "lines": self.lines,
            "unparsable": self.unparsable,
            "below_level": self.below_level,
            "groups": [g.to_json() for g in self.groups],
        }


@dataclass(slots=True)
class _Tally:
    level: str
    count: int = 0
    first: datetime | None = None
    last: datetime | None = None
    example: str = ""

    def add(self, level: str, when: datetime | None, line: Mapping[str, Any]) -> None:
        self.count += 1
        if LEVELS.index(level) > LEVELS.index(self.level):
            self.level = level
        if when is None:
            if not self.example:
                self.example = _example(line)
            return
        if self.first is None or _earlier(when, self.first):
            self.first = when
        if self.last is None or not _earlier(when, self.last):
            self.last = when
            self.example = _example(line)  # the latest occurrence is the telling one


def _earlier(a: datetime, b: datetime) -> bool:
    try:
        return a < b
    except TypeError:  # one naive, one aware: compare as written
        return a.replace(tzinfo=None) < b.replace(tzinfo=None)


def group_logs(logs: Mapping[str, Iterable[str]], *, level: str = "warning") -> LogReport:
    """Group the lines of each log (name → lines) by cause, keeping ``level`` and above."""
    floor = LEVELS.index(_level(level))
    tallies: dict[tuple[str, str, str | None], _Tally] = {}
    lines = unparsable = below = 0
    for log_name, log_lines in logs.items():
        for raw in log_lines:
            if not raw.strip():
                continue
            lines += 1
            try:
                line = json.loads(raw)
            except ValueError:
                unparsable += 1
                continue
            if not isinstance(line, dict) or not isinstance(line.get("event"), str):
                unparsable += 1
                continue
            name = line.get("level")
            found = _ALIASES.get(name.lower(), name.lower()) if isinstance(name, str) else "info"
            line_level = found if found in LEVELS else "info"
            if LEVELS.index(line_level) < floor:
                below += 1
                continue
            key = (_origin(line, log_name), mask_message(line["event"]), _error_type(line))
            tallies.setdefault(key, _Tally(line_level)).add(line_level, _time(line), line)
    groups = sorted(
        (
            LogGroup(origin, event, error, t.level, t.count, t.first, t.last, t.example)
            for (origin, event, error), t in tallies.items()
        ),
        key=lambda g: (-g.count, g.origin, g.event, g.error_type or ""),
    )
    return LogReport(LEVELS[floor], tuple(logs), lines, unparsable, below, tuple(groups))
