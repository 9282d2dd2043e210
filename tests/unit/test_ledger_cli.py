"""`spbe-bus ledger who-received`: its argument errors name the option and rule, never the NIK."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from bus.cli.ledger_cmd import LEDGER_SECRET_ENV, LEDGER_URL_ENV
from bus.cli.main import main

NIK = "3273024508900001"
SECRET = "ledger-secret-0123456789abcdef"


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(LEDGER_SECRET_ENV, SECRET)
    monkeypatch.setenv(LEDGER_URL_ENV, f"sqlite:///{tmp_path / 'absent' / 'ledger.db'}")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["ledger", "who-received", *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize(
    ("nik", "rule"),
    [("32730245089000", "it needs 16"), ("327302450890000A", "digit"), ("", "empty")],
)
def test_a_bad_nik_is_refused_naming_the_option_and_rule_never_the_nik(
    capsys: pytest.CaptureFixture[str], nik: str, rule: str
) -> None:
    code, output = run(capsys, "--nik", nik)
    assert code == 1
    assert "error: --nik is not a NIK" in output
    assert rule in output
    assert "16 digits" in output  # the rule
    if nik:
        assert nik not in output


def test_a_bad_nik_on_stdin_is_refused_without_echo(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("3273021313900001\n"))
    code, output = run(capsys, "--nik", "-")
    assert code == 1
    assert "--nik is not a NIK" in output
    assert "month 13" in output
    assert "3273021313900001" not in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "yesterday"], "--from is not a time"),
        (["--from", "2026-11-01T00:00"], "--from has no UTC offset"),
        (["--to", "2026-11-01"], "--to has no UTC offset"),
        (["--from", "2026-11-02T00:00Z", "--to", "2026-11-01T00:00Z"], "--to is not after"),
    ],
)
def test_a_bad_time_is_refused_naming_the_option(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, output = run(capsys, "--nik", NIK, *args)
    assert code == 1
    assert f"error: {message}" in output
    assert "ISO 8601" in output or "later than --from" in output
    assert NIK not in output


def test_no_ledger_url_says_which_option_or_variable_sets_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(LEDGER_URL_ENV)
    code, output = run(capsys, "--nik", NIK)
    assert code == 1
    assert "--ledger-url" in output
    assert LEDGER_URL_ENV in output


def test_no_secret_says_which_option_or_variable_sets_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(LEDGER_SECRET_ENV)
    code, output = run(capsys, "--nik", NIK)
    assert code == 1
    assert "--secret-file" in output
    assert LEDGER_SECRET_ENV in output


def test_a_short_secret_file_is_refused_without_showing_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    secret = tmp_path / "secret"
    secret.write_text("tiny-secret\n")
    code, output = run(capsys, "--nik", NIK, "--secret-file", str(secret))
    assert code == 1
    assert "at least 16" in output
    assert "tiny-secret" not in output


def test_an_unreadable_secret_file_is_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, output = run(capsys, "--nik", NIK, "--secret-file", str(tmp_path / "none"))
    assert code == 1
    assert "--secret-file cannot be read" in output


def test_the_nik_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["ledger", "who-received"])
    assert caught.value.code == 2
    assert "--nik" in capsys.readouterr().err
