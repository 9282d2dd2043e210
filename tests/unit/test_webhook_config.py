"""WebhookSinkConfig: refuses every mistake with the key and the fix, hides its secrets."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from adapters.sinks.webhook.config import DEFAULT_TIMEOUT_S, WebhookSinkConfig

SECRET = "0123456789abcdef-test-secret"


def config(**values: Any) -> WebhookSinkConfig:
    return WebhookSinkConfig.model_validate({"secret": SECRET, **values})


def test_an_https_url_with_a_secret_is_accepted_with_named_defaults() -> None:
    made = config(url="https://simbg.bandung.go.id/spbe/webhook")
    assert made.url == "https://simbg.bandung.go.id/spbe/webhook"
    assert made.signing_secret == SECRET.encode()
    assert made.timeout_s == DEFAULT_TIMEOUT_S == 10
    assert made.headers == {}
    assert made.verify_tls is True


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://LOCALHOST:80/",
        "http://[::1]:9000/",
    ],
)
def test_plain_http_is_allowed_on_loopback_for_development(url: str) -> None:
    assert config(url=url).url == url


@pytest.mark.parametrize(
    "url", ["http://simbg.bandung.go.id/hook", "http://10.0.0.5/hook", "http://127.0.0.2/"]
)
def test_plain_http_elsewhere_is_refused_naming_url_and_the_fix(url: str) -> None:
    with pytest.raises(ValidationError) as caught:
        config(url=url)
    message = str(caught.value)
    assert "url" in message
    assert "use https://" in message


@pytest.mark.parametrize("url", ["ftp://example.go.id/", "simbg.bandung.go.id/hook", "https://"])
def test_a_url_that_is_not_http_is_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="not an http\\(s\\) address"):
        config(url=url)


def test_the_secret_can_come_from_an_environment_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SPBE_WEBHOOK_SECRET", SECRET)
    made = WebhookSinkConfig(url="https://a.go.id/", secret_env="SPBE_WEBHOOK_SECRET")
    assert made.signing_secret == SECRET.encode()


def test_a_secret_env_that_is_not_set_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SPBE_WEBHOOK_SECRET_MISSING", raising=False)
    with pytest.raises(ValidationError, match="SPBE_WEBHOOK_SECRET_MISSING, which is not set"):
        WebhookSinkConfig(url="https://a.go.id/", secret_env="SPBE_WEBHOOK_SECRET_MISSING")


def test_a_short_secret_is_refused_with_how_to_generate_one() -> None:
    with pytest.raises(ValidationError, match="15 bytes; at least 16") as caught:
        config(url="https://a.go.id/", secret="x" * 15)
    assert "secrets.token_hex" in str(caught.value)


def test_a_short_secret_from_the_environment_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHORT_SECRET", "pendek")
    with pytest.raises(ValidationError, match=r"\$SHORT_SECRET\) is 6 bytes"):
        WebhookSinkConfig(url="https://a.go.id/", secret_env="SHORT_SECRET")


def test_no_secret_at_all_is_refused() -> None:
    with pytest.raises(ValidationError, match="no signing secret: set secret_env"):
        WebhookSinkConfig(url="https://a.go.id/")


def test_both_secret_and_secret_env_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPBE_WEBHOOK_SECRET", SECRET)
    with pytest.raises(ValidationError, match="either secret or secret_env, not both"):
        config(url="https://a.go.id/", secret_env="SPBE_WEBHOOK_SECRET")


def test_an_unknown_key_is_refused_so_typos_do_not_pass_silently() -> None:
    with pytest.raises(ValidationError, match="timeout_ms"):
        config(url="https://a.go.id/", timeout_ms=5000)


@pytest.mark.parametrize("timeout", [0, -1])
def test_timeout_must_be_positive(timeout: float) -> None:
    with pytest.raises(ValidationError, match="timeout_s"):
        config(url="https://a.go.id/", timeout_s=timeout)


def test_extra_static_headers_are_kept() -> None:
    made = config(url="https://a.go.id/", headers={"X-Api-Key": "kunci-rahasia"})
    assert made.headers == {"X-Api-Key": "kunci-rahasia"}


@pytest.mark.parametrize("name", ["x-spbe-signature", "Content-Type", "X-SPBE-Timestamp", "Host"])
def test_headers_may_not_replace_what_the_sink_sets(name: str) -> None:
    with pytest.raises(ValidationError, match=f"headers: {name} is set by the webhook sink"):
        config(url="https://a.go.id/", headers={name: "x"})


def test_a_header_name_that_is_not_a_token_is_refused() -> None:
    with pytest.raises(ValidationError, match="not a valid HTTP header name"):
        config(url="https://a.go.id/", headers={"X Api Key": "x"})


def test_a_header_value_with_a_line_break_is_refused() -> None:
    with pytest.raises(ValidationError, match="line break"):
        config(url="https://a.go.id/", headers={"X-Api-Key": "a\r\nX-Evil: 1"})


def test_the_config_is_frozen() -> None:
    made = config(url="https://a.go.id/")
    with pytest.raises(ValidationError, match="frozen"):
        made.url = "https://elsewhere.go.id/"


def test_repr_shows_neither_the_secret_nor_header_values() -> None:
    made = config(url="https://a.go.id/", headers={"X-Api-Key": "kunci-rahasia"})
    shown = repr(made)
    assert SECRET not in shown
    assert "kunci-rahasia" not in shown


def test_errors_never_echo_the_secret_or_header_values() -> None:
    with pytest.raises(ValidationError) as caught:
        config(
            url="https://public.go.id/",
            secret="pendek-rahasia",  # 14 bytes: too short
            headers={"X-Api-Key": "kunci-rahasia"},
        )
    message = str(caught.value)
    assert "14 bytes" in message
    assert "pendek-rahasia" not in message
    assert "kunci-rahasia" not in message
