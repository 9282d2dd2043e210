"""POST each event, signed, to one subscriber's HTTPS endpoint: a Subscriber handler.

    async with WebhookSink(WebhookSinkConfig(url=..., secret_env="SPBE_WEBHOOK_SECRET")) as sink:
        async with Subscriber(SubscriberConfig(...), sink) as subscriber:
            await subscriber.run_until_signal()

What the receiver's answer means:

    2xx                         applied (a duplicate also answers 2xx)  -> offset committed
    5xx, 408, 429, timeout,     WebhookUnavailableError (transient)     -> retried with backoff,
    connection error                                                       dead-lettered when
                                                                           retries run out
    any other answer            WebhookRejectedError (permanent)        -> dead-lettered now

Redirects are not followed: a signed POST goes to the configured address only, and a
redirect is refused like any other 3xx/4xx so the operator fixes ``url``. Each attempt
is signed afresh (a new timestamp), over the same body. Logs carry the event id, the
HTTP status and the attempt, never the body: it may hold personal data.
"""

from __future__ import annotations

import time

import httpx

from adapters.sinks.webhook.cloudevent import CONTENT_TYPE, encode_body
from adapters.sinks.webhook.config import WebhookSinkConfig
from adapters.sinks.webhook.errors import (
    BODY_EXCERPT_CHARS,
    WebhookRejectedError,
    WebhookUnavailableError,
)
from adapters.sinks.webhook.signature import signature_headers
from bus.delivery import Delivery, Outcome
from bus.errors import LifecycleError
from bus.lifecycle import Lifecycle
from bus.logs import get_logger
from bus.ops.dlq_records import mask_text

__all__ = ["RETRIED_STATUSES", "USER_AGENT", "WebhookSink"]

USER_AGENT = "spbe-bus-webhook"
#: Statuses below 500 that still mean "try again later".
RETRIED_STATUSES = frozenset({408, 429})
#: How much of an answer is read at most; the rest is left unread.
_READ_LIMIT = 4096

log = get_logger(__name__)


class WebhookSink(Lifecycle):
    """Deliver events to one webhook endpoint; use an instance as a Subscriber handler."""

    def __init__(
        self, config: WebhookSinkConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.config = config
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        url = httpx.URL(config.url)
        self._endpoint = url.host if url.port is None else f"{url.host}:{url.port}"
        self._log = log.bind(sink="webhook", endpoint=self._endpoint)

    async def start(self) -> None:
        """Open the HTTP client (its connection pool). Starting twice is harmless."""
        if self._client is not None:
            return
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.config.timeout_s),
            verify=self.config.verify_tls,
            follow_redirects=False,
            transport=self._transport,
        )
        if not self.config.verify_tls:
            self._log.warning("webhook.tls_unverified", fix="set verify_tls back to true")
        self._log.info("webhook.started")

    async def stop(self) -> None:
        """Close the HTTP client; calls after this raise :class:`LifecycleError`."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
            self._log.info("webhook.stopped")

    async def __call__(self, delivery: Delivery) -> Outcome:
        """POST ``delivery`` as a signed CloudEvent; APPLIED on 2xx, else raise (see module)."""
        client = self._client
        if client is None:
            raise LifecycleError(
                "the webhook sink is not started",
                fix="use 'async with WebhookSink(...)' or await sink.start() first",
            )
        envelope = delivery.envelope
        bound = self._log.bind(event_id=envelope.id, type=envelope.type, attempt=delivery.attempt)
        body = encode_body(envelope, delivery.event.to_json(), delivery.contract)
        headers = {
            "Content-Type": CONTENT_TYPE,
            "User-Agent": USER_AGENT,
            **self.config.headers,
            **signature_headers(self.config.signing_secret, body, event_id=envelope.id),
        }
        started = time.monotonic()
        try:
            async with client.stream(
                "POST", self.config.url, content=body, headers=headers
            ) as response:
                excerpt = await _excerpt(response)
        except httpx.TimeoutException as exc:
            bound.warning("webhook.no_answer", error=type(exc).__name__, retriable=True)
            raise WebhookUnavailableError(
                f"{self._endpoint} did not answer within {self.config.timeout_s:g}s "
                f"({type(exc).__name__})"
            ) from exc
        except httpx.TransportError as exc:
            bound.warning("webhook.unreachable", error=type(exc).__name__, retriable=True)
            raise WebhookUnavailableError(
                f"could not reach {self._endpoint}: {type(exc).__name__}: {exc}"
            ) from exc
        status = response.status_code
        elapsed_ms = round((time.monotonic() - started) * 1000)
        if 200 <= status < 300:
            bound.info("webhook.delivered", status=status, elapsed_ms=elapsed_ms)
            return Outcome.APPLIED
        answer = f"HTTP {status} {response.reason_phrase}".rstrip()
        if status >= 500 or status in RETRIED_STATUSES:
            bound.warning("webhook.failed", status=status, elapsed_ms=elapsed_ms, retriable=True)
            raise WebhookUnavailableError(
                f"{self._endpoint} answered {answer}: {excerpt!r}", status=status
            )
        bound.warning("webhook.rejected", status=status, elapsed_ms=elapsed_ms, retriable=False)
        raise WebhookRejectedError(
            f"{self._endpoint} refused event {envelope.id} with {answer}: {excerpt!r}",
            status=status,
            body_excerpt=excerpt,
            fix=_fix_for(status),
        )


async def _excerpt(response: httpx.Response) -> str:
    """The start of the answer, on one line, at most BODY_EXCERPT_CHARS characters, masked."""
    received = bytearray()
    async for chunk in response.aiter_bytes():
        received.extend(chunk)
        if len(received) >= _READ_LIMIT:
            break
    text = received.decode("utf-8", errors="replace")
    # A receiver may echo the event back: NIK, No. KK and NOP never reach an error.
    return mask_text(" ".join(text.split())[:BODY_EXCERPT_CHARS])


def _fix_for(status: int) -> str:
    if status in (401, 403):
        return (
            "check that the receiver has the same secret (and API key, if any) and a clock "
            "that follows NTP; then redrive the dead letters"
        )
    if status in (404, 405, 410) or 300 <= status < 400:
        return "point url at the receiver's endpoint; then redrive the dead letters"
    return "the receiver's answer says why; fix the receiver or its mapping, then redrive"
