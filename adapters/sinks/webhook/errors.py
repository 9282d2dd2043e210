"""Errors of the webhook sink, placed in the bus's one tree.

    BusError
    ├── HandlerError
    │   ├── TransientError
    │   │   └── WebhookUnavailableError     5xx, 408, 429, timeout, connection refused:
    │   │                                   the Subscriber retries with backoff
    │   └── PermanentError
    │       └── WebhookRejectedError        any other non-2xx answer: dead-lettered
    └── SignatureError (ValueError)         a request's signature does not verify
        ├── MalformedSignatureError         a header is missing or not in the agreed form
        ├── SignatureMismatchError          the HMAC does not match (wrong secret, changed body)
        └── TimestampOutOfToleranceError    the timestamp is too old or too far ahead

A sink error's message carries the HTTP status and, for a rejection, at most
:data:`BODY_EXCERPT_CHARS` characters of the receiver's answer: enough to see why, never
the event itself.
"""

from __future__ import annotations

from bus.errors import BusError, PermanentError, TransientError

__all__ = [
    "BODY_EXCERPT_CHARS",
    "MalformedSignatureError",
    "SignatureError",
    "SignatureMismatchError",
    "TimestampOutOfToleranceError",
    "WebhookRejectedError",
    "WebhookUnavailableError",
]

#: How much of a receiver's error answer is kept in an error (and so in a dead letter).
BODY_EXCERPT_CHARS = 200


class WebhookUnavailableError(TransientError):
    """The receiver could not take the event now; the same request may succeed later.

    ``status`` is the HTTP status, or ``None`` when no answer came (timeout, connection).
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class WebhookRejectedError(PermanentError):
    """The receiver refused the event (a 4xx other than 408/429, or a redirect).

    ``status`` is the HTTP status; ``body_excerpt`` the start of the receiver's answer.
    """

    def __init__(self, message: str, *, status: int, body_excerpt: str, fix: str) -> None:
        self.status = status
        self.body_excerpt = body_excerpt
        super().__init__(message, fix=fix)


class SignatureError(BusError, ValueError):
    """A webhook request does not carry a valid signature; answer it with 401."""


class MalformedSignatureError(SignatureError):
    """A signature header is missing, or its value is not in the agreed form."""


class SignatureMismatchError(SignatureError):
    """The signature does not match the body and timestamp under this secret."""


class TimestampOutOfToleranceError(SignatureError):
    """The signed timestamp is further from the receiver's clock than the tolerance."""
