"""Replay's pure parts: the operator's input, the windows, the key filter, the progress line."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta, timezone

import pytest
from aiokafka import TopicPartition

from bus.cli.replay_cmd import ProgressLine
from bus.errors import ConfigError
from bus.ops.replay_plan import (
    PartitionWindow,
    ReplayMode,
    ReplayRequest,
    compute_windows,
    key_selected,
    parse_offsets,
    parse_time,
)

T = "spbe.dukcapil.penduduk.v1"
U = "spbe.dpmptsp.izin.v1"
FROM = datetime(2026, 3, 1, tzinfo=UTC)


def request(**changes: object) -> ReplayRequest:
    fields: dict[str, object] = {
        "subscriber": "dinsos-penduduk",
        "topics": (T,),
        "reason": "restore setelah insiden, tiket #1",
        "from_time": FROM,
    }
    fields.update(changes)
    return ReplayRequest(**fields)  # type: ignore[arg-type]


def test_a_time_with_its_offset_is_read_as_that_instant() -> None:
    assert parse_time("2026-03-01T08:00:00+07:00") == FROM + timedelta(hours=1)
    assert parse_time("2026-03-01T00:00:00Z") == FROM


def test_a_time_without_a_zone_is_refused_naming_the_indonesian_zones() -> None:
    with pytest.raises(ConfigError, match="no UTC offset") as caught:
        parse_time("2026-03-01T08:00:00")
    assert "+07:00 for WIB" in str(caught.value)


def test_a_time_that_is_not_iso_is_refused_with_an_example() -> None:
    with pytest.raises(ConfigError, match="not an ISO 8601 time"):
        parse_time("kemarin", option="--to-time")


def test_offsets_of_one_topic_are_partition_colon_offset() -> None:
    assert parse_offsets("0:120, 2:98", [T]) == {
        TopicPartition(T, 0): 120,
        TopicPartition(T, 2): 98,
    }


def test_offsets_of_several_topics_name_their_topic() -> None:
    assert parse_offsets(f"{T}:0:5,{U}:1:7", [T, U]) == {
        TopicPartition(T, 0): 5,
        TopicPartition(U, 1): 7,
    }
    with pytest.raises(ConfigError, match="TOPIC:PARTITION:OFFSET"):
        parse_offsets("0:5", [T, U])


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "is empty"),
        ("0:-1", "whole numbers"),
        ("0:1,0:2", "twice"),
        ("spbe.other.v1:0:1", "not one of --topic"),
        ("abc", "not PARTITION:OFFSET"),
    ],
)
def test_bad_offsets_are_refused_saying_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        parse_offsets(text, [T])


def test_without_keys_every_record_is_selected_and_with_keys_only_those() -> None:
    assert key_selected(b"a", frozenset())
    assert key_selected(None, frozenset())
    assert key_selected(b"a", frozenset({b"a"}))
    assert not key_selected(b"b", frozenset({b"a"}))
    assert not key_selected(None, frozenset({b"a"}))


def test_a_replay_without_a_reason_is_refused_explaining_the_audit() -> None:
    with pytest.raises(ConfigError, match="--reason is required") as caught:
        request(reason="  ")
    assert "audit" in str(caught.value)


def test_a_replay_needs_exactly_one_start() -> None:
    with pytest.raises(ConfigError, match="exactly one"):
        request(from_time=None)
    with pytest.raises(ConfigError, match="exactly one"):
        request(from_offsets={TopicPartition(T, 0): 1})


def test_rewind_refuses_keys_and_an_end_time_pointing_to_reapply() -> None:
    with pytest.raises(ConfigError, match="--key cannot be used in rewind mode") as caught:
        request(keys=frozenset({b"pseudonym"}))
    assert "--mode reapply" in str(caught.value)
    with pytest.raises(ConfigError, match="--to-time cannot be used in rewind mode"):
        request(to_time=FROM + timedelta(days=1))


def test_reapply_accepts_keys_and_a_window_but_not_an_end_before_the_start() -> None:
    ok = request(mode=ReplayMode.REAPPLY, keys=frozenset({b"k"}), to_time=FROM + timedelta(hours=2))
    assert ok.parameters()["keys"] == ["k"]
    with pytest.raises(ConfigError, match="after --from-time"):
        request(mode=ReplayMode.REAPPLY, to_time=FROM)


def test_windows_run_from_the_start_lookup_to_the_end_lookup_or_the_log_end() -> None:
    a, b, c = (TopicPartition(T, p) for p in range(3))
    bounds = {a: (0, 100), b: (10, 50), c: (0, 0)}
    windows = compute_windows(bounds, {a: 40, b: None, c: None}, {a: 60})
    assert windows == [
        PartitionWindow(T, 0, 40, 60),
        PartitionWindow(T, 1, 50, 50),
        PartitionWindow(T, 2, 0, 0),
    ]
    assert [w.count for w in windows] == [20, 0, 0]


def test_explicit_offsets_are_clamped_to_what_the_log_still_holds() -> None:
    tp = TopicPartition(T, 0)
    assert compute_windows({tp: (30, 80)}, {tp: 5}) == [PartitionWindow(T, 0, 30, 80)]
    assert compute_windows({tp: (30, 80)}, {tp: 500}) == [PartitionWindow(T, 0, 80, 80)]


def test_an_end_before_the_start_makes_an_empty_window() -> None:
    tp = TopicPartition(T, 0)
    assert compute_windows({tp: (0, 80)}, {tp: 50}, {tp: 20})[0].count == 0


def test_an_offset_for_a_partition_that_does_not_exist_is_refused_listing_the_real_ones() -> None:
    bounds = {TopicPartition(T, 0): (0, 1), TopicPartition(T, 1): (0, 1)}
    with pytest.raises(ConfigError, match="no partition 7") as caught:
        compute_windows(bounds, {TopicPartition(T, 7): 0})
    assert "0, 1" in str(caught.value)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_progress_line_on_a_terminal_is_redrawn_at_most_twice_a_second() -> None:
    stream, clock = io.StringIO(), FakeClock()
    progress = ProgressLine(stream, tty=True, clock=clock)
    for done in range(1, 101):
        clock.now += 0.01  # 100 events/s for one second
        progress(done, 1000)
    redraws = stream.getvalue().count("\r")
    assert 1 <= redraws <= 3
    progress.finish(100, 1000)
    assert stream.getvalue().endswith("\n")
    assert "replay: 100/1000 events (10%)" in stream.getvalue()


def test_the_progress_off_a_terminal_is_a_plain_line_every_ten_seconds() -> None:
    stream, clock = io.StringIO(), FakeClock()
    progress = ProgressLine(stream, tty=False, clock=clock)
    for done in range(1, 31):
        clock.now += 1.0
        progress(done, 30)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    assert "\r" not in stream.getvalue()
    assert lines[-1].endswith("events/s")


def test_a_window_prints_its_coordinates_and_count() -> None:
    window = PartitionWindow(T, 2, 5, 9)
    assert str(window) == f"{T}[2] 5..9 (4)"
    assert window.tp == TopicPartition(T, 2)


def test_a_time_in_another_zone_is_the_same_instant() -> None:
    wita = timezone(timedelta(hours=8))
    assert parse_time("2026-03-01T08:00:00+08:00") == datetime(2026, 3, 1, 8, tzinfo=wita)
