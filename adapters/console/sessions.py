"""Operator sessions of the console: a signed cookie, checked on every request.

    sessions = Sessions(SecretBytes(key), ttl_s=8 * 3600)
    cookie = sessions.issue("ani", password_hash=stored)      # after the password was checked
    session = sessions.verify(cookie, password_hash_of=config.password_hash_of)  # or None
    sessions.revoke(cookie, password_hash_of=config.password_hash_of)           # POST /logout

A cookie is ``<payload>.<signature>``: the payload (operator, expiry, a random session id,
and a short HMAC under the session key of the operator's ``password_hash`` at login) as
unpadded base64url JSON, the signature its HMAC-SHA256 under the console's session key,
compared in constant time. Nothing in it is secret (the hash's HMAC says nothing of the
hash without the key), and nothing can be changed without the key. :meth:`verify` checks
the HMAC against the operator's hash now: an operator no longer in the console's file, or
given a new ``password_hash``, has no session (the file is read at start, so after a
restart). A logout revokes the session id until its expiry (kept in memory: a restart
forgets revocations, so keep ``session_ttl_s`` short where that matters). :meth:`verify`
never says why a cookie is refused: to the browser every refusal is "log in again".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import SecretBytes

__all__ = ["SESSION_COOKIE", "Session", "Sessions"]

#: The cookie's name; ``__Host-`` makes browsers accept it only Secure, with Path=/ and no
#: Domain, from the host that set it.
SESSION_COOKIE = "__Host-spbe-console"
_MAX_COOKIE_CHARS = 1024


@dataclass(frozen=True, slots=True)
class Session:
    """A verified session: who, until when (Unix seconds), and its id."""

    operator: str
    expires_at: float
    session_id: str


class Sessions:
    """Issues, verifies and revokes session cookies under one HMAC key."""

    __slots__ = ("_clock", "_key", "_revoked", "ttl_s")

    def __init__(
        self, key: SecretBytes, *, ttl_s: int, clock: Callable[[], float] = time.time
    ) -> None:
        self._key = key
        self.ttl_s = ttl_s
        self._clock = clock
        self._revoked: dict[str, float] = {}

    def issue(self, operator: str, *, password_hash: str) -> str:
        """A new cookie value for ``operator`` (whose ``password_hash`` the password was
        checked against), valid for ``ttl_s`` seconds."""
        payload = {
            "op": operator,
            "ph": self._bind(password_hash),
            "exp": int(self._clock()) + self.ttl_s,
            "sid": secrets.token_urlsafe(16),
        }
        body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
        return f"{body}.{self._sign(body)}"

    def verify(
        self, cookie: str | None, *, password_hash_of: Callable[[str], str | None]
    ) -> Session | None:
        """The session of ``cookie``, or None: absent, forged, expired, revoked, or of an
        operator whose ``password_hash_of`` is now None or another hash than at login."""
        if (
            not cookie
            or len(cookie) > _MAX_COOKIE_CHARS
            or not cookie.isascii()
            or cookie.count(".") != 1
        ):
            return None
        body, signature = cookie.split(".")
        if not hmac.compare_digest(signature, self._sign(body)):
            return None
        try:
            data = json.loads(_unb64(body))
        except (ValueError, binascii.Error):
            return None
        if not isinstance(data, dict):
            return None
        operator, expires, sid = data.get("op"), data.get("exp"), data.get("sid")
        bound = data.get("ph")
        if not (
            isinstance(operator, str)
            and isinstance(expires, int)
            and isinstance(sid, str)
            and isinstance(bound, str)
        ):
            return None
        if expires <= self._clock() or sid in self._revoked:
            return None
        stored = password_hash_of(operator)
        if stored is None or not hmac.compare_digest(bound, self._bind(stored)):
            return None
        return Session(operator=operator, expires_at=float(expires), session_id=sid)

    def revoke(
        self, cookie: str | None, *, password_hash_of: Callable[[str], str | None]
    ) -> Session | None:
        """End the session of ``cookie`` (if it is one); the session it was, or None."""
        session = self.verify(cookie, password_hash_of=password_hash_of)
        if session is None:
            return None
        now = self._clock()
        self._revoked = {sid: exp for sid, exp in self._revoked.items() if exp > now}
        self._revoked[session.session_id] = session.expires_at
        return session

    def _bind(self, password_hash: str) -> str:
        """A short HMAC of ``password_hash`` under the session key (another message than
        any payload: those are base64url, without a space)."""
        message = b"spbe-console password_hash " + password_hash.encode("utf-8")
        digest = hmac.new(self._key.get_secret_value(), message, hashlib.sha256)
        return _b64(digest.digest()[:16])

    def _sign(self, body: str) -> str:
        digest = hmac.new(self._key.get_secret_value(), body.encode("ascii"), hashlib.sha256)
        return _b64(digest.digest())

    def __repr__(self) -> str:
        return f"Sessions(ttl_s={self.ttl_s}, key=***)"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
