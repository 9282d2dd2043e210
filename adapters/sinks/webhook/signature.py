"""Signing webhook requests, and checking a signature on the receiving side (pure).

Every request carries three headers::

    X-SPBE-Timestamp: 1767225600                       unix time in seconds, when it was sent
    X-SPBE-Signature: v1=<64 lowercase hex digits>     HMAC-SHA256(secret, timestamp "." body)
    X-SPBE-Event-Id:  0196...                          the CloudEvents id, for logs and dedupe

The signed message is the timestamp header's text, one ``.``, then the exact body bytes,
so a receiver never re-serialises JSON before checking. Signing the timestamp too means
a captured request cannot be replayed later: a receiver refuses timestamps further than
``tolerance_s`` (300 s by default) from its own clock, in either direction.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Mapping

from adapters.sinks.webhook.errors import (
    MalformedSignatureError,
    SignatureMismatchError,
    TimestampOutOfToleranceError,
)

__all__ = [
    "DEFAULT_TOLERANCE_S",
    "EVENT_ID_HEADER",
    "SIGNATURE_HEADER",
    "SIGNATURE_VERSION",
    "TIMESTAMP_HEADER",
    "sign",
    "signature_headers",
    "verify",
]

TIMESTAMP_HEADER = "X-SPBE-Timestamp"
SIGNATURE_HEADER = "X-SPBE-Signature"
EVENT_ID_HEADER = "X-SPBE-Event-Id"
#: The scheme prefix of a signature; a new scheme gets a new prefix, never a changed v1.
SIGNATURE_VERSION = "v1"
#: How far a timestamp may be from the receiver's clock, either way, in seconds.
DEFAULT_TOLERANCE_S = 300

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(rf"{SIGNATURE_VERSION}=(?P<digest>[0-9a-f]{{64}})")


def _digest(secret: bytes | str, timestamp: str, body: bytes) -> str:
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    message = timestamp.encode("ascii") + b"." + body
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def sign(secret: bytes | str, timestamp: int, body: bytes) -> str:
    """The ``X-SPBE-Signature`` value: ``v1=`` + hex HMAC-SHA256(secret, ``<timestamp>.<body>``).

    A ``str`` secret is used as its UTF-8 bytes, as PHP's ``hash_hmac`` and Java's
    ``getBytes(UTF_8)`` do.
    """
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
        raise ValueError(f"timestamp must be unix seconds (a non-negative int), got {timestamp!r}")
    return f"{SIGNATURE_VERSION}={_digest(secret, str(timestamp), body)}"


def signature_headers(
    secret: bytes | str, body: bytes, *, event_id: str, timestamp: int | None = None
) -> dict[str, str]:
    """The three signing headers for ``body``; ``timestamp`` defaults to now."""
    sent_at = int(time.time()) if timestamp is None else timestamp
    return {
        TIMESTAMP_HEADER: str(sent_at),
        SIGNATURE_HEADER: sign(secret, sent_at, body),
        EVENT_ID_HEADER: event_id,
    }


def verify(
    secret: bytes | str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> None:
    """Check a request's signature; return quietly if it holds, raise if it does not.

    ``headers`` are matched case-insensitively (HTTP header names are); ``body`` must be
    the raw request bytes. ``now`` (unix seconds) defaults to this machine's clock.

    Raises :class:`MalformedSignatureError` for a missing or malformed header,
    :class:`SignatureMismatchError` when the HMAC differs (compared in constant time),
    :class:`TimestampOutOfToleranceError` when the timestamp is too old or too new.
    """
    timestamp = _header(headers, TIMESTAMP_HEADER)
    if not _TIMESTAMP.fullmatch(timestamp):
        raise MalformedSignatureError(
            f"header {TIMESTAMP_HEADER} is {timestamp[:40]!r}; expected unix time in seconds",
            fix="send the time the request was signed, as digits only (e.g. 1767225600)",
        )
    signature = _header(headers, SIGNATURE_HEADER)
    match = _SIGNATURE.fullmatch(signature)
    if match is None:
        raise MalformedSignatureError(
            f"header {SIGNATURE_HEADER} is not '{SIGNATURE_VERSION}=' followed by 64 lowercase "
            "hex digits",
            fix=f"send {SIGNATURE_VERSION}=<hex HMAC-SHA256(secret, timestamp + '.' + body)>",
        )
    expected = _digest(secret, timestamp, body)
    if not hmac.compare_digest(expected, match["digest"]):
        raise SignatureMismatchError(
            "the signature does not match this body and timestamp",
            fix="check that sender and receiver share the same secret, and that the receiver "
            "verifies the raw request body before any parsing",
        )
    clock = time.time() if now is None else now
    skew = clock - int(timestamp)
    if skew > tolerance_s:
        raise TimestampOutOfToleranceError(
            f"the request was signed {skew:.0f}s ago; at most {tolerance_s:g}s is accepted",
            fix="a replayed or long-delayed request is refused; if it is neither, check that "
            "both clocks follow NTP",
        )
    if -skew > tolerance_s:
        raise TimestampOutOfToleranceError(
            f"the request's timestamp is {-skew:.0f}s ahead of this receiver's clock; at most "
            f"{tolerance_s:g}s is accepted",
            fix="check that both clocks follow NTP",
        )


def _header(headers: Mapping[str, str], name: str) -> str:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value.strip()
    raise MalformedSignatureError(
        f"header {name} is missing",
        fix=f"sign every request with {TIMESTAMP_HEADER} and {SIGNATURE_HEADER}",
    )
