"""--max-rate and the progress display, on a fake clock: the arithmetic, without a broker."""

from __future__ import annotations

import io
import itertools
import json

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from adapters.sources.snapshot import Pace, ProgressLog, SnapshotProgress, TerminalBar
from adapters.sources.snapshot.meter import eta_seconds, format_duration, render_bar
from adapters.sources.snapshot.pace import paced_batch_size
from bus.logs import configure_logging


def simulate(rate: float, batch: int, work: list[float]) -> list[tuple[float, int]]:
    """Send one batch after another, each taking ``work[i]`` seconds; (send time, rows)."""
    pace = Pace(rate)
    now, sent = 0.0, []
    for seconds in work:
        now += pace.delay(now, batch)
        sent.append((now, batch))
        now += seconds
    return sent


@given(
    rate=st.floats(min_value=1, max_value=100_000),
    batch=st.integers(min_value=1, max_value=5_000),
    work=st.lists(st.floats(min_value=0, max_value=3), min_size=1, max_size=60),
)
def test_rows_sent_by_any_moment_never_exceed_the_rate_times_the_time_since_start(
    rate: float, batch: int, work: list[float]
) -> None:
    batch = paced_batch_size(batch, rate)
    total = 0
    for when, rows in simulate(rate, batch, work):
        total += rows
        assert total <= rate * when * (1 + 1e-9) + 1e-6


@given(
    rate=st.floats(min_value=1, max_value=10_000),
    work=st.lists(st.floats(min_value=0, max_value=5), min_size=2, max_size=60),
)
def test_after_a_stall_the_run_does_not_catch_up_in_a_burst(rate: float, work: list[float]) -> None:
    """In any window, at most one batch more than the rate allows (the credit of one share)."""
    batch = paced_batch_size(1000, rate)
    sent = simulate(rate, batch, work)
    for i, (start, _) in enumerate(sent):
        for j in range(i, len(sent)):
            rows = sum(r for _, r in sent[i : j + 1])
            assert rows <= rate * (sent[j][0] - start) * (1 + 1e-9) + 2 * batch


def test_a_fast_run_is_held_to_the_rate_and_a_slow_one_never_waits() -> None:
    assert [t for t, _ in simulate(100, 50, [0.0] * 4)] == pytest.approx([0.5, 1.0, 1.5, 2.0])
    slow = simulate(100, 50, [2.0] * 4)  # each batch takes longer than its share
    gaps = [b - a for (a, _), (b, _) in itertools.pairwise(slow)]
    assert gaps == pytest.approx([2.0, 2.0, 2.0])


def test_without_a_rate_nothing_waits_and_batches_keep_their_size() -> None:
    assert Pace(None).delay(12.0, 1000) == 0.0
    assert paced_batch_size(1000, None) == 1000
    assert paced_batch_size(1000, 250.5) == 250
    assert paced_batch_size(1000, 0.2) == 1


def progress(done: int, total: int = 1000, elapsed: float = 10.0, **kw: object) -> SnapshotProgress:
    fields: dict[str, object] = {
        "name": "penduduk",
        "done": done,
        "total": total,
        "published": done,
        "invalid": 0,
        "excluded": 0,
        "done_this_run": done,
        "elapsed_s": elapsed,
        **kw,
    }
    return SnapshotProgress(**fields)  # type: ignore[arg-type]


def test_rate_eta_and_durations() -> None:
    assert progress(250).rate_per_s == 25.0
    assert progress(250).eta_s == 30.0
    assert eta_seconds(10, 10, 0.0) == 0.0
    assert eta_seconds(0, 10, 0.0) is None
    assert [format_duration(s) for s in (None, 4.4, 65, 3600 * 2 + 7 * 60)] == [
        "--",
        "4s",
        "1m05s",
        "2h07m",
    ]


def test_the_bar_shows_done_total_rate_and_eta_then_the_time_taken() -> None:
    assert render_bar(progress(450, elapsed=9.0), width=10) == (
        "penduduk [####......]  45.0%  450/1,000  50 rows/s  ETA 11s"
    )
    assert render_bar(progress(1000, finished=True), width=10).endswith("100 rows/s  in 10s")


def test_the_terminal_bar_redraws_one_line_at_most_five_times_a_second() -> None:
    stream, clock = io.StringIO(), iter([0.0, 0.1, 0.3, 0.31])
    bar = TerminalBar(stream, clock=lambda: next(clock))
    for done in (100, 200, 300, 400):
        bar(progress(done))
    assert stream.getvalue().count("\r\x1b[K") == 2, "redrawn at 0.0 and 0.3 only"
    bar.log_stream.write("a log line")
    bar.log_stream.write("\n")
    assert stream.getvalue().endswith("\r\x1b[Ka log line\n" + render_bar(progress(300)))


def test_without_a_terminal_progress_is_a_log_line_every_interval(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(json=True, level="INFO")
    try:
        clock = iter([0.0, 4.0, 10.5, 11.0])
        log = ProgressLog(interval_s=10, clock=lambda: next(clock))
        for done in (100, 200, 300, 400):
            log(progress(done))
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    finally:
        structlog.reset_defaults()
        configure_logging(json=True, level="INFO")
    assert [(line["event"], line["done"]) for line in lines] == [
        ("snapshot.progress", 100),
        ("snapshot.progress", 300),
    ]
    assert lines[1]["total"] == 1000
    assert lines[1]["eta_s"] == pytest.approx(23.3)
