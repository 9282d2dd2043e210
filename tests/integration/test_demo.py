"""`spbe-bus demo` (what `make demo` runs): day one by snapshot, one citizen's changes, then
the REST gateway answering two OPD applications over HTTPS."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bus.contract.standard import example
from bus.localkafka.manager import LocalKafka
from bus.ops.catalog import default_catalog_path, load_catalog
from tests.support.ports import free_port_block

pytestmark = pytest.mark.integration

#: Siti's NIK: the resident the story's live changes follow (schemas/avro/examples).
SITI = "3273025708900003"
PENDUDUK_UPDATED = "id.go.spbe.dukcapil.PendudukUpdated.v1"
KEMATIAN_DICATAT = "id.go.spbe.dukcapil.KematianDicatat.v1"
#: The subscription DPMPTSP's application reads the resident under, through the gateway.
GATEWAY_READ = "dpmptsp-penduduk"


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
        "dinsos-penduduk.json",
        "spbe-contracts.json",
        "spbe-gateway.json",
    }
    assert all(p.stat().st_mode & 0o077 == 0 for p in handover.glob("*.json"))
    assert [a["event"] for a in report["arrivals"]] == [
        "PendudukUpdated",
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
    _assert_contracts_held(report["contracts"], work_dir, snapshot["residents"])
    _assert_gateway_answered(report["api"], work_dir)


def _assert_contracts_held(contracts: dict[str, Any], work_dir: Path, residents: int) -> None:
    """Each replica holds its contract's columns; the ledger names who received Siti."""
    catalog, _ = load_catalog(default_catalog_path())
    today = date.today()
    assert "no_kk" not in contracts["dpmptsp_columns"]
    assert set(contracts["dpmptsp_columns"]) == {
        "nik",
        "spbe_sequence",
        "nama_lengkap",
        "jalan",
        "rt",
        "rw",
        "kode_wilayah",
        "berlaku_sejak",
        "tanggal_meninggal",
        "status",
    }
    assert "no_kk" in contracts["dinsos_columns"]
    dtsen = sa.create_engine(f"sqlite:///{work_dir / 'dinsos.db'}")
    with dtsen.connect() as conn:
        no_kk = conn.execute(
            sa.text("SELECT no_kk FROM penduduk_dtsen WHERE nik = :nik"), {"nik": SITI}
        ).scalar_one()
    dtsen.dispose()
    assert no_kk == example("PendudukUpdated")["no_kk"]
    # Who received her data: every active subscription whose contract names PendudukUpdated
    # (she was registered and moved house), and no other.
    expected = {
        sub.subscriber: sub
        for sub in catalog.subscriptions
        if sub.expires >= today and PENDUDUK_UPDATED in sub.allowed_fields
    }
    # DPMPTSP's application also read her once through the gateway (kind api).
    answer = {line["subscriber"]: line for line in contracts["who_received"]}
    assert set(answer) == set(expected)
    for name, line in answer.items():
        read_by_api = name == GATEWAY_READ
        assert (line["opd"], line["deliveries"], line["kinds"]) == (
            expected[name].opd,
            3 if read_by_api else 2,
            ["api", "delivery"] if read_by_api else ["delivery"],
        )
        assert line["legal_basis"] == expected[name].legal_basis
    ledger = sa.create_engine(f"sqlite:///{work_dir / 'ledger.db'}")
    with ledger.connect() as conn:
        snapshot_rows = conn.execute(
            sa.text(
                "SELECT COUNT(DISTINCT event_id) FROM spbe_ledger "
                "WHERE kind = 'snapshot' AND subscriber = 'dpmptsp-penduduk'"
            )
        ).scalar_one()
        api_rows = conn.execute(
            sa.text("SELECT subscriber, event_type FROM spbe_ledger WHERE kind = 'api'")
        ).all()
    ledger.dispose()
    assert [tuple(r) for r in api_rows] == [(GATEWAY_READ, PENDUDUK_UPDATED)], (
        "the gateway's one read of the resident, recorded under DPMPTSP's subscription"
    )
    assert snapshot_rows == residents, "every snapshot row DPMPTSP received is in the ledger"
    assert SITI.encode() not in (work_dir / "ledger.db").read_bytes(), "no NIK in the ledger"


def _assert_gateway_answered(api: dict[str, Any], work_dir: Path) -> None:
    """SIUMKM's UMKM is on its topic at the 202's offset, once; SiCantik got the resident
    with only the fields of dpmptsp-penduduk's contract."""
    assert api["ok"] is True
    assert api["url"].startswith("https://127.0.0.1:")
    posted = api["posted"]
    assert posted["status"] == 202
    assert posted["topic"] == "spbe.dinkopukm.umkm.v1"
    assert isinstance(posted["partition"], int)
    assert posted["offset"] >= 0
    assert posted["on_topic"] is True, "the record at the 202's offset carries its ce_id"
    assert posted["source"] == "ID/PEMDA-3273/DINKOPUKM/siumkm"
    assert posted["retry_same_offset"] is True, "the same Idempotency-Key publishes once"
    catalog, _ = load_catalog(default_catalog_path())
    contract = next(s for s in catalog.subscriptions if s.subscriber == GATEWAY_READ)
    allowed = {
        *contract.allowed_fields[PENDUDUK_UPDATED],
        *contract.allowed_fields[KEMATIAN_DICATAT],
    }
    read = api["read"]
    assert (read["status"], read["subscription"]) == (200, GATEWAY_READ)
    assert "nik" in read["fields"]
    assert "alamat.jalan" in read["fields"]
    assert set(read["fields"]) <= allowed, "only what DPMPTSP's contract allows"
    assert read["within_contract"] is True
    tops = {path.split(".")[0] for path in read["fields"]}
    assert not tops & {"tanggal_lahir", "pekerjaan", "no_kk"}
    assert read["withheld_absent"] == ["tanggal_lahir", "pekerjaan", "no_kk"]
    assert (work_dir / "gateway.db").is_file(), "the gateway's database is in the work dir"
    assert (work_dir / "gateway" / "tls" / "spbe-gateway.key").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("server", ["postgres", "mariadb"])
def test_demo_runs_on_a_database_server(
    server: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = request.getfixturevalue(f"{server}_url")
    port = str(free_port_block(3))
    result = _demo("--json", "--data-dir", str(tmp_path / "k"), "--port", port, "--db-url", url)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["api"]["ok"] is True, "the gateway reads the ledger on the server too"
