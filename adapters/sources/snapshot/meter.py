"""How far a snapshot is, and what a run did: a bar on a terminal, log lines elsewhere.

Hand-written rather than a dependency (neither ``rich`` nor ``tqdm`` is one of the
project's): one line redrawn with ``\\r`` on a terminal, and a structured log line every
``interval_s`` seconds when stderr is a file or a pipe (a service's journal, CI), so a
log never fills with bar redraws. The arithmetic (rate, ETA, the bar's text) is pure and
tested on its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal, TextIO, cast

from bus.logs import get_logger

__all__ = [
    "ProgressLog",
    "ProgressMode",
    "SnapshotProgress",
    "SnapshotSummary",
    "TerminalBar",
    "eta_seconds",
    "format_duration",
    "progress_reporter",
    "render_bar",
]

log = get_logger(__name__)

ProgressMode = Literal["auto", "bar", "log", "none"]
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class SnapshotProgress:
    """Where a run stands after an acknowledged batch."""

    name: str
    #: Rows passed (published, invalid or excluded), runs before this one included.
    done: int
    #: Rows in the table when the run started (those already passed, and the rest).
    total: int
    published: int
    invalid: int
    excluded: int
    #: Rows this run passed, and the seconds it has been reading and publishing them.
    done_this_run: int
    elapsed_s: float
    finished: bool = False

    @property
    def rate_per_s(self) -> float:
        """Rows per second in this run."""
        return self.done_this_run / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def fraction(self) -> float:
        """How much of the table is done, 0 to 1."""
        if self.total <= 0:
            return 1.0
        return min(1.0, self.done / self.total)

    @property
    def eta_s(self) -> float | None:
        """Seconds until the end at this run's rate; ``None`` before there is a rate."""
        return eta_seconds(self.done, self.total, self.rate_per_s)


@dataclass(frozen=True, slots=True)
class SnapshotSummary:
    """What a run did, and where the snapshot stands."""

    name: str
    table: str
    #: The last key was passed: every row of the table was published or reported.
    finished: bool
    #: A run before this one had finished it; nothing was read (``--restart`` to redo it).
    already_finished: bool
    #: This run started from a stored key rather than the first one.
    resumed: bool
    total: int
    published: int
    invalid: int
    excluded: int
    published_this_run: int
    done_this_run: int
    elapsed_s: float

    @property
    def rate_per_s(self) -> float:
        """Rows per second in this run."""
        return self.done_this_run / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "rate_per_s": round(self.rate_per_s, 1)}


def eta_seconds(done: int, total: int, rate_per_s: float) -> float | None:
    """Seconds left for ``total - done`` rows at ``rate_per_s``; ``None`` without a rate."""
    if done >= total:
        return 0.0
    if rate_per_s <= 0:
        return None
    return (total - done) / rate_per_s


def format_duration(seconds: float | None) -> str:
    """``42s``, ``3m05s``, ``2h07m``; ``--`` when unknown."""
    if seconds is None:
        return "--"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def render_bar(progress: SnapshotProgress, width: int = 30) -> str:
    """``penduduk [#########.....]  45.0%  450,000/1,000,000  12,345 rows/s  ETA 44s``."""
    filled = int(progress.fraction * width)
    bar = "#" * filled + "." * (width - filled)
    tail = (
        f"in {format_duration(progress.elapsed_s)}"
        if progress.finished
        else f"ETA {format_duration(progress.eta_s)}"
    )
    return (
        f"{progress.name} [{bar}] {100 * progress.fraction:5.1f}%  "
        f"{progress.done:,}/{progress.total:,}  {progress.rate_per_s:,.0f} rows/s  {tail}"
    )


class TerminalBar:
    """Redraws one line on ``stream`` at most every ``min_interval_s`` seconds."""

    def __init__(
        self, stream: TextIO, *, min_interval_s: float = 0.2, clock: Clock = time.monotonic
    ) -> None:
        self._stream = stream
        self._min_interval_s = min_interval_s
        self._clock = clock
        self._last_drawn: float | None = None
        self._line = ""
        self._log_stream = _AboveBar(self)

    def __call__(self, progress: SnapshotProgress) -> None:
        now = self._clock()
        due = self._last_drawn is None or now - self._last_drawn >= self._min_interval_s
        if not (due or progress.finished):
            return
        self._last_drawn = now
        self._line = render_bar(progress)
        self._stream.write("\r\x1b[K" + self._line + ("\n" if progress.finished else ""))
        self._stream.flush()
        if progress.finished:
            self._line = ""

    def write_above(self, text: str) -> int:
        """Write a log line above the bar (the bar is cleared, then drawn again below it)."""
        self._stream.write("\r\x1b[K" + text + ("" if text.endswith("\n") else "\n"))
        if self._line:
            self._stream.write(self._line)
        self._stream.flush()
        return len(text)

    @property
    def log_stream(self) -> TextIO:
        """A stream for log lines (``configure_logging(stream=...)``) that keeps the bar last."""
        return cast(TextIO, self._log_stream)

    def close(self) -> None:
        """End the bar's line, so what follows starts on a line of its own."""
        if self._line:
            self._stream.write("\n")
            self._stream.flush()
            self._line = ""


class _AboveBar:
    """Collects written text into lines and writes each above the bar."""

    def __init__(self, bar: TerminalBar) -> None:
        self._bar = bar
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        while "\n" in self._pending:
            line, self._pending = self._pending.split("\n", 1)
            self._bar.write_above(line)
        return len(text)

    def flush(self) -> None:
        return None

    def isatty(self) -> bool:
        return True


class ProgressLog:
    """Logs ``snapshot.progress`` after the first batch, then every ``interval_s`` seconds."""

    def __init__(self, *, interval_s: float = 10.0, clock: Clock = time.monotonic) -> None:
        self._interval_s = interval_s
        self._clock = clock
        self._last: float | None = None

    def __call__(self, progress: SnapshotProgress) -> None:
        now = self._clock()
        if progress.finished or (self._last is not None and now - self._last < self._interval_s):
            return
        self._last = now
        eta = progress.eta_s
        log.info(
            "snapshot.progress",
            snapshot=progress.name,
            done=progress.done,
            total=progress.total,
            percent=round(100 * progress.fraction, 1),
            published=progress.published,
            invalid=progress.invalid,
            excluded=progress.excluded,
            rate_per_s=round(progress.rate_per_s, 1),
            eta_s=None if eta is None else round(eta, 1),
        )


def progress_reporter(
    mode: ProgressMode, stream: TextIO, *, interval_s: float = 10.0
) -> TerminalBar | ProgressLog | None:
    """The bar on a terminal (``auto``, ``bar``), log lines otherwise (``auto``, ``log``)."""
    if mode == "none":
        return None
    if mode == "bar" or (mode == "auto" and stream.isatty()):
        return TerminalBar(stream)
    return ProgressLog(interval_s=interval_s)
