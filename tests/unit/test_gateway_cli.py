"""`spbe-bus gateway client-secret CLIENT`, run in-process: a new secret once, on stdout only,
with the hash line that verifies it."""

from __future__ import annotations

import logging
import re

import pytest

from adapters.gateway.secrets import check_secret_hash, verify_client_secret
from bus.cli.main import main


def lines_of(out: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in out.splitlines())


def test_it_prints_the_client_a_new_secret_and_the_hash_that_verifies_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["gateway", "client-secret", "dpmptsp-sicantik"]) == 0
    printed = lines_of(capsys.readouterr().out)
    assert set(printed) == {"client_id", "client_secret", "secret_hash"}
    assert printed["client_id"] == "dpmptsp-sicantik"
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", printed["client_secret"])
    assert check_secret_hash(printed["secret_hash"]) == printed["secret_hash"]
    assert verify_client_secret(printed["client_secret"], printed["secret_hash"])


def test_each_run_makes_a_new_secret(capsys: pytest.CaptureFixture[str]) -> None:
    secrets = set()
    for _ in range(2):
        main(["gateway", "client-secret", "dinkopukm-siumkm"])
        secrets.add(lines_of(capsys.readouterr().out)["client_secret"])
    assert len(secrets) == 2


def test_the_secret_goes_to_stdout_only_never_stderr_or_a_log(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        assert main(["--log-level", "DEBUG", "gateway", "client-secret", "dinsos-siks"]) == 0
    captured = capsys.readouterr()
    secret = lines_of(captured.out)["client_secret"]
    assert secret not in captured.err
    assert "shown only this once" in captured.err
    assert secret not in caplog.text


@pytest.mark.parametrize("client", ["DPMPTSP", "bad name", "-leading-dash", "x" * 101, ""])
def test_a_client_id_that_is_not_a_principal_name_is_refused_with_the_rule(
    client: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["gateway", "client-secret", "--", client]) == 1
    captured = capsys.readouterr()
    assert captured.out == "", "no secret is made for a bad client id"
    assert "CLIENT is not a client id (rule:" in captured.err
    assert "fix:" in captured.err


def test_the_gateway_group_needs_a_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["gateway"])
    assert exited.value.code == 2
    assert "spbe-bus gateway" in capsys.readouterr().err
