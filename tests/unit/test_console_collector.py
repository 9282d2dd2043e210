"""The console's state task without a cluster: what a failed read leaves on the page and in
the log (where it was raised, never what the exception's message quoted)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import structlog

from adapters.console import ConsoleConfig, StateCollector
from tests.unit.test_console_app import settings

NIK = "3273025708904242"
NAME = "Siti Nurhaliza Rahmawati"


def _decode_reason(raw: dict[str, Any]) -> str:
    try:
        return str(raw["reason"])
    except KeyError as exc:
        raise ValueError(f"no reason in the record of {NAME} (NIK {NIK})") from exc


class _Failing(StateCollector):
    async def read(self) -> dict[str, Any]:
        return {"reason": _decode_reason({})}


async def test_an_unexpected_failure_is_logged_with_where_it_was_raised_and_no_record_content(
    tmp_path: Path,
) -> None:
    collector = _Failing(ConsoleConfig.model_validate(settings(tmp_path)))
    with structlog.testing.capture_logs() as logs:
        await collector.refresh()
    assert collector.snapshot["error"] == "unexpected error ValueError; see the console's log"
    (line,) = [entry for entry in logs if entry["event"] == "console.read_failed"]
    assert line["error"] == "ValueError"
    assert line["causes"] == ["KeyError"]
    assert [w.split(" in ")[1] for w in line["where"]] == ["refresh", "read", "_decode_reason"]
    assert line["where"][-1].startswith("test_console_collector.py:")
    written = json.dumps(logs) + json.dumps(collector.snapshot)
    assert NIK not in written
    assert NAME not in written


async def test_the_diagram_in_the_state_is_the_reduced_svg(tmp_path: Path) -> None:
    collector = StateCollector(ConsoleConfig.model_validate(settings(tmp_path)))
    svg, problem = await collector._diagram({}, date(2026, 12, 2))
    assert problem is None
    assert svg is not None
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg"')
    assert "<a " not in svg, "Graphviz's edge links are unwrapped before the page sees them"
    assert 'id="flow:dinsos-penduduk:spbe.dukcapil.penduduk.v1"' in svg
