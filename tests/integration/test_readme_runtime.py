"""README.md's Kafka examples run as written against the session's broker."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.unit.test_readme import ALL_BLOCKS

pytestmark = pytest.mark.integration
KAFKA_BLOCKS = [block for block in ALL_BLOCKS if "BOOTSTRAP" in block]


def test_readme_has_a_kafka_example() -> None:
    assert KAFKA_BLOCKS


@pytest.mark.parametrize("index", range(len(KAFKA_BLOCKS)))
def test_readme_kafka_example_runs(
    index: int, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPBE_KAFKA_BOOTSTRAP", kafka_bootstrap)
    namespace: dict[str, object] = {"__name__": "readme_example"}
    code = compile(KAFKA_BLOCKS[index], f"README.md[kafka block {index}]", "exec")
    exec(code, namespace)  # noqa: S102


@pytest.mark.parametrize("index", range(len(KAFKA_BLOCKS)))
def test_readme_kafka_example_unconfigured_prints_no_log_line_to_stdout_and_none_below_info(
    index: int, kafka_bootstrap: str
) -> None:
    """As a reader runs it: a fresh interpreter that never configured logging."""
    done = subprocess.run(
        [sys.executable, "-c", KAFKA_BLOCKS[index]],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "SPBE_KAFKA_BOOTSTRAP": kafka_bootstrap},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout == ""
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert any("publisher.started" in line for line in lines)  # INFO still reaches stderr
    assert not [line for line in lines if "[debug" in line.lower()]
    assert "publisher.acknowledged" not in done.stderr
    assert "subscriber.outcome" not in done.stderr
