"""deploy/systemd/kafka.service: a unit systemd accepts, running a node as LocalKafka does."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "systemd" / "kafka.service"


def _exec_start() -> str:
    text = UNIT.read_text().replace("\\\n", " ")
    (line,) = [x for x in text.splitlines() if x.startswith("ExecStart=")]
    return " ".join(line.removeprefix("ExecStart=").split())


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_accepts_the_unit_without_a_warning(tmp_path: Path) -> None:
    copy = tmp_path / "kafka.service"  # verify looks for the unit's name beside it
    copy.write_text(UNIT.read_text())
    result = subprocess.run(
        ["systemd-analyze", "verify", str(copy)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert str(copy) not in result.stderr, result.stderr


def test_the_unit_starts_the_broker_with_the_local_clusters_jvm_settings() -> None:
    command = _exec_start()
    assert command.startswith("/usr/bin/java $KAFKA_HEAP ")
    for flag in ("-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:+ExitOnOutOfMemoryError"):
        assert flag in command, flag
    assert command.endswith('-cp "${KAFKA_LIBS}/*" kafka.Kafka /etc/kafka/server.properties')
    assert "Restart=on-failure" in UNIT.read_text()
