"""`spbe-bus demo` (what `make demo` runs): day one by snapshot, then one citizen's changes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from bus.localkafka.manager import LocalKafka
from tests.support.ports import free_port_block

pytestmark = pytest.mark.integration

#: Siti's NIK: the resident the story's live changes follow (schemas/avro/examples).
SITI = "3273025708900003"


def _demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bus.cli.main", "demo", *args],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def test_demo_story_arrives_everywhere_and_stops_the_broker_it_started(tmp_path: Path) -> None:
    data_dir = tmp_path / "kafka"
    work_dir = tmp_path / "opd"
    port = str(free_port_block(3))
    result = _demo(
        "--json", "--data-dir", str(data_dir), "--port", port, "--work-dir", str(work_dir)
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["secured"] is True, "make demo runs on the secured cluster"
    assert report["security"].startswith("SASL_SSL")
    assert [(r["attempt"], r["refused"], r["error"]) for r in report["refusals"]] == [
        ("publish PendudukUpdated as Disdukcapil's SIAK", True, "PublishAuthorizationError"),
        ("read spbe.bapenda.pajak.v1 (no agreement)", True, "KafkaAuthorizationError"),
    ]
    assert "only applications of its steward (DISDUKCAPIL)" in report["refusals"][0]["message"]
    handover = work_dir / "handover"
    assert {p.name for p in handover.glob("*.json")} >= {
        "disdukcapil-siak.json",
        "dpmptsp-sicantik.json",
        "bapenda-sipd.json",
        "dpmptsp-penduduk.json",
        "bapenda-izin.json",
    }
    assert all(p.stat().st_mode & 0o077 == 0 for p in handover.glob("*.json"))
    assert [a["event"] for a in report["arrivals"]] == [
        "PendudukUpdated",
        "PendudukUpdated",
        "IzinDiterbitkan",
        "PajakDaerahDibayar",
    ]
    assert all(a["arrived"] and a["latency_ms"] >= 0 for a in report["arrivals"])
    snapshot = report["snapshot"]
    assert snapshot["arrived"] is True
    assert snapshot["published"] == snapshot["residents"] == snapshot["at_latest_version"] > 0
    replica = sa.create_engine(f"sqlite:///{work_dir / 'dpmptsp.db'}")
    register = sa.create_engine(f"sqlite:///{work_dir / 'disdukcapil.db'}")
    with replica.connect() as conn:
        row = conn.execute(
            sa.text("SELECT jalan, spbe_sequence FROM penduduk_replika WHERE nik = :nik"),
            {"nik": SITI},
        ).one()
        copied = {
            nik: version
            for nik, version in conn.execute(
                sa.text("SELECT nik, spbe_sequence FROM penduduk_replika")
            )
        }
    with register.connect() as conn:
        held = {nik: v for nik, v in conn.execute(sa.text("SELECT nik, versi FROM penduduk"))}
        snapshot_rows = conn.execute(sa.text("SELECT * FROM spbe_snapshot_progress")).all()
    replica.dispose()
    register.dispose()
    assert row == ("Jl. Dipatiukur No. 12", 2), "the replica holds the newest address"
    assert copied == held, "every resident, snapshot or live, is at SIAK's latest version"
    assert [(r.name, r.rows_published, r.finished_at is not None) for r in snapshot_rows] == [
        ("penduduk", snapshot["residents"], True)
    ]
    assert not LocalKafka(data_dir).status().healthy, "the demo stops the broker it started"


@pytest.mark.parametrize("server", ["postgres", "mariadb"])
def test_demo_runs_on_a_database_server(
    server: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = request.getfixturevalue(f"{server}_url")
    port = str(free_port_block(3))
    result = _demo("--json", "--data-dir", str(tmp_path / "k"), "--port", port, "--db-url", url)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["ok"] is True
