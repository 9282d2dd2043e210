"""Adapter files: the shipped ones in deploy/adapters load, and a bad one says what to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.gateway.secrets import hash_client_secret
from adapters.kinds import KINDS
from adapters.runner import load_adapter
from bus.cli.main import main
from bus.errors import ConfigError
from bus.localkafka.certificates import CertificateAuthority

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "adapters"
FILES = sorted(DEPLOY.glob("*.yaml"))
SECRET_HASH = hash_client_secret("a client secret of the tests")


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for opd in ("DISDUKCAPIL", "DPMPTSP", "BAPENDA", "DINSOS"):
        monkeypatch.setenv(f"{opd}_DB_URL", f"sqlite:///{tmp_path / opd.lower()}.db")
    monkeypatch.setenv("DISDUKCAPIL_KEY_SECRET", "a-secret-of-at-least-sixteen-bytes")
    monkeypatch.setenv("DINKES_WEBHOOK_SECRET", "webhook-secret-of-at-least-16-bytes")
    monkeypatch.setenv("SPBE_CONTRACTS_PAIRWISE_SECRET", "pairwise-secret-of-at-least-16-bytes")
    monkeypatch.setenv("SPBE_LEDGER_SECRET", "ledger-secret-of-at-least-16-bytes")
    issued = CertificateAuthority.create(tmp_path / "ca").issue("spbe-gateway")
    monkeypatch.setenv("SPBE_GATEWAY_TLS_CERT", str(issued.certificate))
    monkeypatch.setenv("SPBE_GATEWAY_TLS_KEY", str(issued.key))
    monkeypatch.setenv("SPBE_GATEWAY_TOKEN_KEY", "token-key-of-at-least-thirty-two-bytes-0123")
    for client in ("DINKOPUKM_SIUMKM", "DPMPTSP_SICANTIK"):
        monkeypatch.setenv(f"SPBE_GATEWAY_{client}_HASH", SECRET_HASH)


def test_every_kind_has_a_shipped_example() -> None:
    assert {load_adapter(path).kind for path in FILES} == set(KINDS)


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_shipped_adapter_file_is_valid(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    adapter = load_adapter(path)
    assert isinstance(adapter, KINDS[adapter.kind].file)
    assert main(["run", str(path), "--check"]) == 0
    assert f"valid {adapter.kind} configuration" in capsys.readouterr().out


def test_a_bad_adapter_file_names_each_key_and_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "kind: sql-sink\n"
        "subscription:\n"
        "  bootstrap_servers: 127.0.0.1:9092\n"
        "  subscriber_id: Bapenda Izin\n"
        "  topic: [spbe.dpmptsp.izin.v1]\n"
        "sink:\n"
        "  database_url: sqlite:///x.db\n"
        "  table: wajib_pajak\n"
        "  key_column: nomor_izin\n"
        "  events:\n"
        "    IzinDiterbitkan:\n"
        "      key: nomor_izin\n"
        "      columns: {kbli: kbli.kodee}\n"
    )
    assert main(["run", str(bad), "--check"]) == 1
    err = capsys.readouterr().err
    assert "subscription.subscriber_id: String should match pattern" in err
    assert "subscription.topic: unknown key; did you mean 'topics'?" in err
    assert "subscription.topics: required key is missing" in err
    assert "sink.events.IzinDiterbitkan.columns.kbli" in err
    assert "fix:" in err


def test_an_unknown_kind_suggests_the_closest(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: sql_sink\n")
    with pytest.raises(ConfigError, match="did you mean 'sql-sink'"):
        load_adapter(bad)
