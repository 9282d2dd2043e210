"""The signed webhook sink: SPBE events as CloudEvents JSON over HTTPS, for apps without Kafka.

A PHP, Java or any other HTTP application subscribes by exposing one endpoint. The
sink POSTs each event as a CloudEvents 1.0 structured JSON body, signed with
HMAC-SHA256 over a shared secret (:mod:`.signature`), and maps the answer to the bus's
delivery outcomes (:mod:`.sink`). Receivers: see ``docs/webhook.md``.
"""

from __future__ import annotations

from adapters.sinks.webhook.cloudevent import (
    CONTENT_TYPE,
    DATA_CONTENT_TYPE,
    encode_body,
    structured_event,
)
from adapters.sinks.webhook.config import DEFAULT_TIMEOUT_S, MIN_SECRET_BYTES, WebhookSinkConfig
from adapters.sinks.webhook.errors import (
    MalformedSignatureError,
    SignatureError,
    SignatureMismatchError,
    TimestampOutOfToleranceError,
    WebhookRejectedError,
    WebhookUnavailableError,
)
from adapters.sinks.webhook.signature import (
    DEFAULT_TOLERANCE_S,
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
    signature_headers,
    verify,
)
from adapters.sinks.webhook.sink import WebhookSink

__all__ = [
    "CONTENT_TYPE",
    "DATA_CONTENT_TYPE",
    "DEFAULT_TIMEOUT_S",
    "DEFAULT_TOLERANCE_S",
    "EVENT_ID_HEADER",
    "MIN_SECRET_BYTES",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "MalformedSignatureError",
    "SignatureError",
    "SignatureMismatchError",
    "TimestampOutOfToleranceError",
    "WebhookRejectedError",
    "WebhookSink",
    "WebhookSinkConfig",
    "WebhookUnavailableError",
    "encode_body",
    "sign",
    "signature_headers",
    "structured_event",
    "verify",
]
