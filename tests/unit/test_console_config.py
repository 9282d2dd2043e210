"""The console's file: deploy/console.yaml loads, and each mistake names its key and rule."""

from __future__ import annotations

import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.console import DEFAULT_CONSOLE_PORT, DEFAULT_SESSION_TTL_S, ConsoleFile
from adapters.gateway.secrets import hash_client_secret, verify_client_secret
from bus.errors import ConfigError
from tests.unit.test_console_app import settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_FILE = ROOT / "deploy" / "console.yaml"


def write(folder: Path, section: dict[str, Any]) -> Path:
    path = folder / "console.yaml"
    path.write_text(yaml.safe_dump({"kind": "console", "console": section}), encoding="utf-8")
    return path


def problems(folder: Path, **overrides: Any) -> str:
    section = settings(folder, **overrides)
    with pytest.raises(ConfigError) as caught:
        ConsoleFile.from_file(write(folder, section))
    return str(caught.value)


def test_the_deploy_file_loads_with_its_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    given = settings(tmp_path)
    monkeypatch.setenv("SPBE_CONSOLE_TLS_CERT", given["tls_certificate"])
    monkeypatch.setenv("SPBE_CONSOLE_TLS_KEY", given["tls_key"])
    monkeypatch.setenv("SPBE_CONSOLE_SESSION_KEY_FILE", given["session_key_file"])
    monkeypatch.setenv("SPBE_CONSOLE_OPERATOR_HASH", hash_client_secret("a-password-0123"))
    monkeypatch.delenv("SPBE_CONSOLE_PORT", raising=False)
    config = ConsoleFile.from_file(DEPLOY_FILE).console
    assert (config.host, config.port) == ("127.0.0.1", DEFAULT_CONSOLE_PORT)
    assert config.session_ttl_s == DEFAULT_SESSION_TTL_S == 8 * 3600
    assert (config.refresh_s, config.audit_records, config.dead_letter_samples) == (5, 20, 5)
    assert config.max_lag == 1000
    assert [a.name for a in config.adapters] == ["dinsos-penduduk-sink", "gateway"]
    assert config.password_hash_of("operator") is not None
    assert config.password_hash_of("someone-else") is None
    assert {s.subscriber for s in config.catalogue.subscriptions} >= {"dinsos-penduduk"}


def test_each_adapters_health_port_is_its_prometheus_target_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    given = settings(tmp_path)
    monkeypatch.setenv("SPBE_CONSOLE_TLS_CERT", given["tls_certificate"])
    monkeypatch.setenv("SPBE_CONSOLE_TLS_KEY", given["tls_key"])
    monkeypatch.setenv("SPBE_CONSOLE_SESSION_KEY_FILE", given["session_key_file"])
    monkeypatch.setenv("SPBE_CONSOLE_OPERATOR_HASH", hash_client_secret("a-password-0123"))
    for name in ("SPBE_CONSOLE_SINK_HEALTH", "SPBE_CONSOLE_GATEWAY_HEALTH"):
        monkeypatch.delenv(name, raising=False)
    scrape = yaml.safe_load((ROOT / "deploy/monitoring/prometheus.yml").read_text())
    targets = {
        group["labels"]["adapter"]: target
        for job in scrape["scrape_configs"]
        for group in job["static_configs"]
        for target in group["targets"]
    }
    adapters = ConsoleFile.from_file(DEPLOY_FILE).console.adapters
    assert adapters
    for adapter in adapters:
        assert (ROOT / "deploy/adapters" / f"{adapter.name}.yaml").is_file(), adapter.name
        url = urllib.parse.urlsplit(adapter.health_url)
        assert f"{url.hostname}:{url.port}" == targets[adapter.name], adapter.name


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"operators": []}, "console.operators: Tuple should have at least 1 item"),
        (
            {"operators": [{"name": "ani", "password_hash": "the-password-itself"}]},
            "operators.0.password_hash: Value error, password_hash is not an scrypt hash",
        ),
        (
            {"operators": [{"name": "Ani Smith", "password_hash": "x"}]},
            "operators.0.name: String should match pattern",
        ),
        ({"port": 70000}, "port: Input should be less than or equal to 65535"),
        ({"refresh_s": 0.1}, "refresh_s: Input should be greater than or equal to 1"),
        ({"adapters": [{"name": "sink", "health_url": "ftp://x/healthz"}]}, "health_url"),
        ({"tls_key": "/nonexistent/key.pem"}, "tls_key: /nonexistent/key.pem is not a file"),
        ({"catalog": "/nonexistent/catalog.yaml"}, "catalog: /nonexistent/catalog.yaml is not"),
        ({"sessions": 3}, "sessions: unknown key; did you mean 'session_ttl_s'?"),
    ],
)
def test_a_mistake_names_its_key_and_rule(
    tmp_path: Path, overrides: dict[str, Any], expected: str
) -> None:
    assert expected in problems(tmp_path, **overrides)


def test_a_short_session_key_is_refused_without_repeating_it(tmp_path: Path) -> None:
    short = tmp_path / "short.key"
    short.write_text("too-short-key")
    message = problems(tmp_path, session_key_file=str(short))
    assert "session_key_file: the secret is 13 bytes; at least 32 are needed" in message
    assert "too-short-key" not in message


def test_an_operator_or_adapter_listed_twice_is_refused(tmp_path: Path) -> None:
    operator = settings(tmp_path)["operators"][0]
    assert "operators[1].name: ani is listed twice" in problems(
        tmp_path, operators=[operator, operator]
    )
    twice = [{"name": "sink", "health_url": "http://127.0.0.1:9464/healthz"}] * 2
    assert "adapters[1].name: sink is listed twice" in problems(tmp_path, adapters=twice)


def test_a_password_hash_error_never_repeats_what_was_pasted(tmp_path: Path) -> None:
    pasted = "correct-horse-battery-staple"
    message = problems(tmp_path, operators=[{"name": "ani", "password_hash": pasted}])
    assert pasted not in message


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bus.cli.main", "console", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )


def test_operator_password_prints_a_new_password_once_with_its_hash() -> None:
    first, second = _cli("operator-password"), _cli("operator-password")
    assert first.returncode == 0, first.stderr
    lines = dict(line.split(": ", 1) for line in first.stdout.splitlines())
    assert set(lines) == {"password", "password_hash"}
    assert verify_client_secret(lines["password"], lines["password_hash"])
    assert lines["password"] not in second.stdout, "a new password each time"
    assert "shown only this once" in first.stderr


def test_serve_check_validates_the_file_and_names_its_problems(tmp_path: Path) -> None:
    good = write(tmp_path, settings(tmp_path))
    checked = _cli("serve", "--config", str(good), "--check")
    assert checked.returncode == 0, checked.stderr
    assert "valid console configuration" in checked.stdout
    bad = write(tmp_path, settings(tmp_path, port="not-a-port"))
    refused = _cli("serve", "--config", str(bad), "--check")
    assert refused.returncode == 1
    assert "port: Input should be a valid integer" in refused.stderr
