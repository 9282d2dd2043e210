"""Bearer tokens of the gateway: short-lived JWTs signed with HS256 under one secret key.

    issuer = TokenIssuer(SecretBytes(key))            # key: at least 32 random bytes
    token = issuer.issue("dpmptsp-sicantik", "data:read")
    claims = issuer.verify(token.access_token)        # TokenClaims(client=..., scope=...)

A token is an RFC 9068 access token (header ``typ: at+jwt``) whose claims are ``iss``,
``aud``, ``sub`` (the client), ``scope``, ``iat``, ``exp`` and ``jti``. :meth:`verify`
accepts HS256 only (so never ``none``, and never a public-key algorithm fed the secret
key), requires every one of those claims, and checks ``exp`` against the injected clock
with no leeway. A refusal is a :class:`~adapters.gateway.errors.TokenRejected` whose
message can go back to the caller: it never repeats the token or a claim of it.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
from pydantic import SecretBytes

from adapters.gateway.errors import TokenRejected, TokenRejectedReason
from bus.errors import ConfigError

__all__ = [
    "DEFAULT_AUDIENCE",
    "DEFAULT_ISSUER",
    "DEFAULT_TOKEN_TTL_S",
    "MIN_TOKEN_KEY_BYTES",
    "TOKEN_ALGORITHM",
    "TOKEN_TYPE",
    "IssuedToken",
    "TokenClaims",
    "TokenIssuer",
]

DEFAULT_TOKEN_TTL_S = 300
DEFAULT_ISSUER = "spbe-bus-gateway"
DEFAULT_AUDIENCE = "spbe-bus-api"
#: The only algorithm issued and accepted.
TOKEN_ALGORITHM = "HS256"  # noqa: S105 - an algorithm name, not a secret
#: The JOSE ``typ`` of an access token (RFC 9068): no other JWT signed with the key passes.
TOKEN_TYPE = "at+jwt"  # noqa: S105 - a media type, not a secret
#: A shorter key is refused: HS256 needs as many key bytes as its hash has (RFC 7518 3.2).
MIN_TOKEN_KEY_BYTES = 32
#: The claims every token must carry.
_REQUIRED = ("exp", "iat", "sub", "aud", "iss", "jti", "scope")
#: A longer Authorization value is refused before it is parsed.
_MAX_TOKEN_CHARS = 4096
_RENEW = "request a new token from POST /oauth/token with the client's credentials"


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """The answer of the token endpoint: the token, seconds until it expires, its scope."""

    access_token: str = field(repr=False)
    expires_in: int
    scope: str


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a verified token says: the client (``sub``), its scope, when it expires (Unix
    seconds) and its id (``jti``, for the audit trail)."""

    client: str
    scope: str
    expires_at: float
    token_id: str


class TokenIssuer:
    """Issues and verifies the gateway's bearer tokens under one HS256 key.

    ``clock`` returns Unix seconds (``time.time``); tests pass their own. ``ttl_s`` is the
    life of a token, ``issuer`` and ``audience`` its ``iss`` and ``aud``.
    """

    __slots__ = ("_audience", "_clock", "_issuer", "_key", "_ttl_s")

    def __init__(
        self,
        key: SecretBytes,
        *,
        issuer: str = DEFAULT_ISSUER,
        audience: str = DEFAULT_AUDIENCE,
        ttl_s: int = DEFAULT_TOKEN_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        raw = key.get_secret_value()
        if len(raw) < MIN_TOKEN_KEY_BYTES:
            raise ConfigError(
                f"the token key has {len(raw)} bytes; HS256 needs at least "
                f"{MIN_TOKEN_KEY_BYTES} (rule: key length)",
                fix="generate one with `python -c 'import secrets; print(secrets.token_hex(32))'`",
            )
        if isinstance(ttl_s, bool) or not isinstance(ttl_s, int) or ttl_s <= 0:
            raise ConfigError(
                "ttl_s must be a whole number of seconds greater than 0",
                fix=f"leave it out for {DEFAULT_TOKEN_TTL_S}",
            )
        if not issuer or not audience:
            raise ConfigError("issuer and audience must not be empty", fix="leave them out")
        self._key = raw
        self._issuer = issuer
        self._audience = audience
        self._ttl_s = ttl_s
        self._clock = clock

    def issue(self, client: str, scope: str) -> IssuedToken:
        """A new token for ``client`` with ``scope`` (space-separated scopes), valid for
        ``ttl_s`` seconds from now."""
        if not client or not scope:
            raise ValueError("a token needs a client and a scope")
        issued_at = math.floor(self._clock())
        claims = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": client,
            "scope": scope,
            "iat": issued_at,
            "exp": issued_at + self._ttl_s,
            "jti": secrets.token_urlsafe(16),
        }
        token = jwt.encode(
            claims, self._key, algorithm=TOKEN_ALGORITHM, headers={"typ": TOKEN_TYPE}
        )
        return IssuedToken(access_token=token, expires_in=self._ttl_s, scope=scope)

    def verify(self, token: str) -> TokenClaims:
        """The claims of ``token``, or :class:`TokenRejected` saying why it is refused."""
        if not isinstance(token, str) or not 0 < len(token) <= _MAX_TOKEN_CHARS:
            raise _rejected("malformed")
        try:
            decoded = jwt.decode_complete(
                token,
                self._key,
                algorithms=[TOKEN_ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                leeway=0,
                # exp is checked below against the injected clock; iat for its type only, so
                # a gateway whose clock is a little behind another's accepts its tokens.
                options={
                    "require": list(_REQUIRED),
                    "strict_aud": True,
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,  # never issued
                },
            )
        except jwt.InvalidAudienceError:
            raise _rejected("audience") from None
        except jwt.InvalidIssuerError:
            raise _rejected("issuer") from None
        except (jwt.InvalidSignatureError, jwt.InvalidAlgorithmError):
            raise _rejected("invalid") from None
        except jwt.InvalidTokenError:  # not a JWT, a claim missing or of the wrong type
            raise _rejected("malformed") from None
        if decoded["header"].get("typ") != TOKEN_TYPE:
            raise _rejected("invalid")
        return self._claims(decoded["payload"])

    def _claims(self, payload: dict[str, Any]) -> TokenClaims:
        client, scope, token_id = payload["sub"], payload["scope"], payload["jti"]
        expires_at, issued_at = payload["exp"], payload["iat"]
        if not all(isinstance(v, str) and v for v in (client, scope, token_id)):
            raise _rejected("malformed")
        if not all(_is_time(v) for v in (expires_at, issued_at)):
            raise _rejected("malformed")
        if self._clock() >= expires_at:
            raise _rejected("expired")
        return TokenClaims(
            client=client, scope=scope, expires_at=float(expires_at), token_id=token_id
        )


def _is_time(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


_MESSAGES: dict[TokenRejectedReason, str] = {
    "expired": "the bearer token has expired",
    "invalid": "the bearer token does not verify (signature, algorithm or token type)",
    "audience": "the bearer token was issued for another API",
    "issuer": "the bearer token was issued by another issuer",
    "malformed": "the bearer token is not a well-formed access token of this gateway",
}


def _rejected(reason: TokenRejectedReason) -> TokenRejected:
    return TokenRejected(_MESSAGES[reason], reason=reason, fix=_RENEW)
