"""``POST /oauth/token``: OAuth 2.0 client credentials (RFC 6749 §4.4) for a bearer token.

The client authenticates with HTTP Basic or ``client_id``/``client_secret`` in the form
body (§2.3.1, not both), asks for ``grant_type=client_credentials`` and optionally a
``scope``; it gets a short-lived JWT (:mod:`adapters.gateway.tokens`) with the scopes the
catalogue allows it: ``events:publish`` for a steward application, ``data:read`` for a
client with subscriptions. Errors follow §5.2 (``invalid_request``, ``invalid_client``,
``unsupported_grant_type``, ``invalid_scope``). Secrets are checked off the event loop
(scrypt costs tens of milliseconds), an unknown client id costs what a wrong secret does,
and each client id has its own rate limit, so guessing is slow.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Final
from urllib.parse import parse_qsl, unquote_plus

from starlette.requests import Request
from starlette.responses import Response

from adapters.db import run_sync
from adapters.gateway.config import GatewayConfig
from adapters.gateway.http import BodyTooLarge, json_response, read_body
from adapters.gateway.metrics import ANONYMOUS
from adapters.gateway.ratelimit import RateLimiter, retry_after_header
from adapters.gateway.secrets import hash_client_secret, verify_client_secret
from adapters.gateway.tokens import TokenIssuer
from bus.ops.api_clients import ClientAccess

__all__ = ["REALM", "SCOPE_PUBLISH", "SCOPE_READ", "TokenEndpoint"]

SCOPE_PUBLISH: Final = "events:publish"
SCOPE_READ: Final = "data:read"
REALM: Final = 'realm="spbe-bus"'
#: Checked against when the client id is unknown, so a wrong id costs what a wrong secret does.
_NOBODY: Final = hash_client_secret("no client has this secret")


def _oauth_error(
    status: int, error: str, description: str, headers: Mapping[str, str] | None = None
) -> Response:
    """An RFC 6749 §5.2 error answer of the token endpoint."""
    body = {"error": error, "error_description": description}
    return json_response(status, body, {"Cache-Control": "no-store", **(headers or {})})


def _scopes_of(access: ClientAccess) -> set[str]:
    scopes = set()
    if access.postable:
        scopes.add(SCOPE_PUBLISH)
    if access.subscriptions:
        scopes.add(SCOPE_READ)
    return scopes


class TokenEndpoint:
    """Issues tokens to the gateway's clients (``config.clients``) with ``issuer``."""

    def __init__(self, config: GatewayConfig, issuer: TokenIssuer) -> None:
        self._config = config
        self._issuer = issuer
        self._hashes = {c.id: c.secret_hash for c in config.clients}
        self._body_limit = config.max_body_bytes
        limit = config.rate_limit
        self._limiter = RateLimiter(limit.requests_per_s, limit.burst)

    async def answer(self, request: Request) -> tuple[Response, str]:
        """The answer to a token request, and the client it is for (``-`` when unknown)."""
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/x-www-form-urlencoded":
            return _oauth_error(
                400, "invalid_request", "send the form as application/x-www-form-urlencoded"
            ), ANONYMOUS
        try:
            text = (await read_body(request, self._body_limit)).decode("ascii")
            form = dict(parse_qsl(text, strict_parsing=False))
        except BodyTooLarge:
            return _oauth_error(400, "invalid_request", "the request body is too large"), ANONYMOUS
        except UnicodeDecodeError:
            return _oauth_error(400, "invalid_request", "the form is not ASCII"), ANONYMOUS
        credentials = _client_credentials(request.headers.get("authorization"), form)
        if isinstance(credentials, Response):
            return credentials, ANONYMOUS
        client_id, secret, basic = credentials
        if form.get("grant_type") != "client_credentials":
            if "grant_type" not in form:
                return _oauth_error(400, "invalid_request", "grant_type is missing"), ANONYMOUS
            return _oauth_error(
                400, "unsupported_grant_type", "only client_credentials is supported"
            ), ANONYMOUS
        wait = self._limiter.take(client_id)
        if wait > 0:
            retry = {"Retry-After": retry_after_header(wait)}
            return _oauth_error(429, "slow_down", "too many token requests", retry), ANONYMOUS
        hashed = self._hashes.get(client_id)
        valid = await run_sync(verify_client_secret, secret, hashed or _NOBODY)
        access = self._config.access_of(client_id) if hashed is not None else None
        if not valid or access is None:
            challenge = {"WWW-Authenticate": f"Basic {REALM}"} if basic else {}
            return _oauth_error(
                401, "invalid_client", "unknown client or wrong secret", challenge
            ), ANONYMOUS
        allowed = _scopes_of(access)
        requested = set(form.get("scope", "").split()) or allowed
        if not requested <= allowed:
            return _oauth_error(
                400,
                "invalid_scope",
                f"this client may have only: {' '.join(sorted(allowed)) or 'no scope'}",
            ), client_id
        issued = self._issuer.issue(client_id, " ".join(sorted(requested)))
        body = {
            "access_token": issued.access_token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "scope": issued.scope,
        }
        return json_response(
            200, body, {"Cache-Control": "no-store", "Pragma": "no-cache"}
        ), client_id


def _client_credentials(
    authorization: str | None, form: Mapping[str, str]
) -> tuple[str, str, bool] | Response:
    """(client_id, secret, given by Basic) from the Basic header or the form (RFC 6749 §2.3.1)."""
    in_form = "client_id" in form or "client_secret" in form
    if authorization:
        kind, _, encoded = authorization.partition(" ")
        if kind.lower() != "basic":
            return _oauth_error(400, "invalid_request", "use HTTP Basic client authentication")
        if in_form:
            return _oauth_error(
                400, "invalid_request", "authenticate with Basic or the form, not both"
            )
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return _oauth_error(401, "invalid_client", "the Basic credentials are not base64")
        client_id, sep, secret = decoded.partition(":")
        if not sep:
            return _oauth_error(401, "invalid_client", "the Basic credentials have no ':'")
        return unquote_plus(client_id), unquote_plus(secret), True
    client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
    if not client_id or not secret:
        return _oauth_error(
            401,
            "invalid_client",
            "authenticate with HTTP Basic or client_id and client_secret",
            {"WWW-Authenticate": f"Basic {REALM}"},
        )
    return client_id, secret, False
