"""What a webhook subscription needs: where to POST, the signing secret, timeouts (pure).

    WebhookSinkConfig(
        url="https://simbg.bandung.go.id/spbe/webhook",
        secret_env="SPBE_WEBHOOK_SECRET",
        headers={"X-Api-Key": "..."},
    )

The secret comes from the config itself (``secret``) or, better, from an environment
variable named by ``secret_env``; it is read once, when the config is validated, so a
missing variable stops the adapter at start rather than at the first event. Every mistake
is refused with a message naming the key and the fix.
"""

from __future__ import annotations

import os
import re
from typing import Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretBytes, field_validator, model_validator

from adapters.config_file import FromFile
from adapters.sinks.webhook.signature import EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "LOOPBACK_HOSTS",
    "MIN_SECRET_BYTES",
    "RESERVED_HEADERS",
    "WebhookSinkConfig",
]

DEFAULT_TIMEOUT_S = 10.0
#: A signing secret shorter than this is refused.
MIN_SECRET_BYTES = 16
#: Hosts where plain ``http://`` is allowed, for development on one machine.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
#: Headers the sink sets itself; ``headers`` may not replace them.
RESERVED_HEADERS = frozenset(
    name.lower()
    for name in (
        "Content-Type",
        "Content-Length",
        "Host",
        "Transfer-Encoding",
        TIMESTAMP_HEADER,
        SIGNATURE_HEADER,
        EVENT_ID_HEADER,
    )
)

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP header name (RFC 9110 token)
_GENERATE = "generate one with `python -c 'import secrets; print(secrets.token_hex(32))'`"


class WebhookSinkConfig(FromFile, BaseModel):
    """One webhook subscriber: its endpoint, the shared secret, and how long to wait."""

    # Errors never echo the input: it holds the secret and, often, an API key in headers.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    #: The subscriber's endpoint; ``https://`` except on loopback hosts.
    url: str
    #: The shared signing secret (at least 16 bytes), or ``None`` with ``secret_env``.
    secret: SecretBytes | None = None
    #: Name of an environment variable holding the secret, read once at validation.
    secret_env: str | None = None
    #: Seconds to wait for connect, send and answer, each; a timeout is retried.
    timeout_s: float = Field(default=DEFAULT_TIMEOUT_S, gt=0)
    #: Extra static headers on every request, e.g. an API key the receiver checks (kept
    #: out of ``repr()``, as they often hold credentials).
    headers: dict[str, str] = Field(default_factory=dict, repr=False)
    #: Check the endpoint's TLS certificate; turn off only for a test endpoint.
    verify_tls: bool = True

    @field_validator("url")
    @classmethod
    def _url_is_https_or_loopback(cls, url: str) -> str:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"url {url!r} is not an http(s) address; "
                "fix: set url to the subscriber's endpoint, e.g. https://app.example.go.id/webhook"
            )
        if scheme == "http" and parts.hostname.lower() not in LOOPBACK_HOSTS:
            raise ValueError(
                f"url {url!r} uses plain http to {parts.hostname}; events carry personal data "
                "and must travel encrypted; fix: use https:// (plain http is allowed only on "
                "127.0.0.1, localhost and ::1, for development)"
            )
        return url.strip()

    @field_validator("headers")
    @classmethod
    def _headers_are_valid_and_not_reserved(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            if not _TOKEN.fullmatch(name):
                raise ValueError(
                    f"headers: {name!r} is not a valid HTTP header name; fix: use letters, "
                    "digits and '-' only, e.g. X-Api-Key"
                )
            if name.lower() in RESERVED_HEADERS:
                raise ValueError(
                    f"headers: {name} is set by the webhook sink itself; fix: remove it from "
                    "headers"
                )
            if any(ch in value for ch in "\r\n\0"):
                raise ValueError(
                    f"headers: the value of {name} contains a line break or NUL; fix: put the "
                    "value on one line"
                )
        return headers

    @model_validator(mode="after")
    def _one_secret_long_enough(self) -> Self:
        if self.secret is not None and self.secret_env is not None:
            raise ValueError(
                "set either secret or secret_env, not both; fix: keep secret_env and remove "
                "secret, so the secret stays out of the config file"
            )
        if self.secret is None:
            if self.secret_env is None:
                raise ValueError(
                    "no signing secret: set secret_env to the name of an environment variable "
                    f"holding it (or secret); fix: {_GENERATE} and share it with the subscriber"
                )
            value = os.environ.get(self.secret_env)
            if not value:
                raise ValueError(
                    f"secret_env names {self.secret_env}, which is not set or empty; fix: "
                    f"export {self.secret_env} in the adapter's environment"
                )
            object.__setattr__(self, "secret", SecretBytes(value.encode("utf-8")))
        assert self.secret is not None
        size = len(self.secret.get_secret_value())
        if size < MIN_SECRET_BYTES:
            where = f"${self.secret_env}" if self.secret_env else "secret"
            raise ValueError(
                f"the signing secret ({where}) is {size} bytes; at least {MIN_SECRET_BYTES} "
                f"are needed; fix: {_GENERATE}"
            )
        return self

    @property
    def signing_secret(self) -> bytes:
        """The secret's bytes, from ``secret`` or the ``secret_env`` variable."""
        assert self.secret is not None  # the validator always resolves it
        return self.secret.get_secret_value()
