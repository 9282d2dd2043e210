"""`spbe-bus demo` (what `make demo` runs) on a broker of its own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bus.localkafka.manager import LocalKafka
from tests.support.ports import free_port_block

pytestmark = pytest.mark.integration


def test_demo_publishes_an_event_reads_it_back_and_stops_the_broker_it_started(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "demo"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bus.cli.main",
            "demo",
            "--json",
            "--data-dir",
            str(data_dir),
            "--port",
            str(free_port_block(2)),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["equal"] is True
    assert report["topic"] == "spbe.dukcapil.penduduk.v1"
    assert report["envelope"]["type"] == "id.go.spbe.dukcapil.PendudukUpdated.v1"
    assert report["event"]["nik"] == "***", "personal fields are masked in the printout"
    assert len(report["key"]) == 64, "the key is an HMAC-SHA256 pseudonym"
    assert not LocalKafka(data_dir).status().healthy, "the demo stops the broker it started"
