"""WebhookSink without a network: what it sends, and what each kind of answer becomes."""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import structlog
from structlog.testing import capture_logs

from adapters.sinks.webhook.cloudevent import CONTENT_TYPE, encode_body
from adapters.sinks.webhook.config import WebhookSinkConfig
from adapters.sinks.webhook.errors import (
    BODY_EXCERPT_CHARS,
    WebhookRejectedError,
    WebhookUnavailableError,
)
from adapters.sinks.webhook.signature import EVENT_ID_HEADER, verify
from adapters.sinks.webhook.sink import USER_AGENT, WebhookSink
from bus.contract.envelope import DataClassification, Envelope
from bus.delivery import Delivery, Outcome, is_retriable
from bus.errors import LifecycleError, PermanentError, TransientError
from tests.support.events import SOURCE_DPMPTSP, izin

SECRET = b"0123456789abcdef-test-secret"
URL = "https://simbg.bandung.go.id/spbe/webhook"
EVENT = izin(421, nama_usaha="Warung Nasi Bu Siti")

Respond = Callable[[httpx.Request], httpx.Response]
LogEntries = list[MutableMapping[str, Any]]


@pytest.fixture(autouse=True)
def logs() -> Iterator[LogEntries]:
    """Every log entry the test writes, at every level, whatever logging set-up ran before."""
    before = structlog.get_config()
    structlog.reset_defaults()
    try:
        with capture_logs() as entries:
            yield entries
    finally:
        structlog.configure(**before)


def delivery(attempt: int = 1) -> Delivery:
    envelope = Envelope(
        source=SOURCE_DPMPTSP,
        type="id.go.spbe.dpmptsp.IzinDiterbitkan.v1",
        time=datetime(2026, 11, 27, 3, 15, tzinfo=UTC),
        steward="DPMPTSP",
        partitionkey=EVENT.nomor_izin,
        dataclassification=DataClassification.RESTRICTED,
        sequence=3,
    )
    return Delivery(
        event=EVENT,
        envelope=envelope,
        topic="spbe.dpmptsp.izin.v1",
        partition=0,
        offset=41,
        key=EVENT.nomor_izin.encode(),
        attempt=attempt,
    )


class Endpoint:
    """An in-process endpoint: records each request, answers with ``respond``."""

    def __init__(self, respond: Respond) -> None:
        self.respond = respond
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.respond(request)


def sink_for(endpoint: Endpoint, **config: object) -> WebhookSink:
    settings = WebhookSinkConfig.model_validate({"url": URL, "secret": SECRET, **config})
    return WebhookSink(settings, transport=httpx.MockTransport(endpoint))


def answering(status: int, body: bytes = b"", **headers: str) -> Endpoint:
    return Endpoint(lambda _: httpx.Response(status, content=body, headers=headers))


@pytest.mark.parametrize("status", [200, 201, 202, 204])
async def test_a_2xx_answer_means_applied(status: int) -> None:
    async with sink_for(answering(status)) as sink:
        assert await sink(delivery()) is Outcome.APPLIED


async def test_the_request_is_a_signed_cloudevent_post_with_the_configured_headers() -> None:
    endpoint = answering(204)
    async with sink_for(endpoint, headers={"X-Api-Key": "kunci"}) as sink:
        sent = delivery()
        await sink(sent)
    (request,) = endpoint.requests
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["Content-Type"] == CONTENT_TYPE
    assert request.headers["User-Agent"] == USER_AGENT
    assert request.headers["X-Api-Key"] == "kunci"
    assert request.headers[EVENT_ID_HEADER] == sent.envelope.id
    assert request.content == encode_body(sent.envelope, EVENT.to_json())
    verify(SECRET, dict(request.headers), request.content)


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408, 429])
async def test_5xx_408_and_429_are_transient_so_the_subscriber_retries(status: int) -> None:
    async with sink_for(answering(status, b"sedang pemeliharaan")) as sink:
        with pytest.raises(WebhookUnavailableError) as caught:
            await sink(delivery())
    assert isinstance(caught.value, TransientError)
    assert is_retriable(caught.value)
    assert caught.value.status == status
    assert f"HTTP {status}" in str(caught.value)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 410, 422])
async def test_other_4xx_are_permanent_so_the_event_is_dead_lettered(status: int) -> None:
    async with sink_for(answering(status, b'{"error":"kbli tidak dikenal"}')) as sink:
        with pytest.raises(WebhookRejectedError) as caught:
            await sink(delivery())
    error = caught.value
    assert isinstance(error, PermanentError)
    assert not is_retriable(error)
    assert error.status == status
    assert error.body_excerpt == '{"error":"kbli tidak dikenal"}'
    assert f"HTTP {status}" in str(error)
    assert "kbli tidak dikenal" in str(error)
    assert error.fix


async def test_a_long_error_answer_is_cut_to_200_characters_on_one_line() -> None:
    answer = ("baris pertama\n\n" + "x" * 5000 + "AKHIR").encode()
    async with sink_for(answering(422, answer)) as sink:
        with pytest.raises(WebhookRejectedError) as caught:
            await sink(delivery())
    excerpt = caught.value.body_excerpt
    assert len(excerpt) == BODY_EXCERPT_CHARS == 200
    assert excerpt.startswith("baris pertama x")
    assert "\n" not in excerpt
    assert "AKHIR" not in str(caught.value)


async def test_an_answer_echoing_a_nik_never_puts_it_in_the_error() -> None:
    answer = b'{"error":"duplikat","nik":"3273025708900001","no_kk":"3273022301150007"}'
    async with sink_for(answering(409, answer)) as sink:
        with pytest.raises(WebhookRejectedError) as caught:
            await sink(delivery())
    assert "3273025708900001" not in str(caught.value)
    assert "3273022301150007" not in caught.value.body_excerpt
    assert '"nik":"***"' in caught.value.body_excerpt


async def test_a_redirect_is_not_followed_and_is_refused_so_the_url_gets_fixed() -> None:
    endpoint = answering(301, location="https://elsewhere.go.id/hook")
    async with sink_for(endpoint) as sink:
        with pytest.raises(WebhookRejectedError) as caught:
            await sink(delivery())
    assert len(endpoint.requests) == 1
    assert caught.value.status == 301
    assert "url" in (caught.value.fix or "")


async def test_no_answer_within_the_timeout_is_transient() -> None:
    def time_out(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    async with sink_for(Endpoint(time_out), timeout_s=2.5) as sink:
        with pytest.raises(WebhookUnavailableError, match=r"did not answer within 2\.5s") as caught:
            await sink(delivery())
    assert caught.value.status is None
    assert is_retriable(caught.value)


async def test_a_refused_connection_is_transient() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    async with sink_for(Endpoint(refuse)) as sink:
        with pytest.raises(WebhookUnavailableError, match="could not reach simbg") as caught:
            await sink(delivery())
    assert is_retriable(caught.value)


async def test_delivering_before_start_or_after_stop_says_to_start_first() -> None:
    sink = sink_for(answering(200))
    with pytest.raises(LifecycleError, match="not started"):
        await sink(delivery())
    await sink.start()
    await sink.start()  # harmless
    assert await sink(delivery()) is Outcome.APPLIED
    await sink.stop()
    with pytest.raises(LifecycleError, match="not started"):
        await sink(delivery())


async def test_logs_carry_event_id_status_and_attempt_but_never_the_body(
    logs: LogEntries,
) -> None:
    async with sink_for(answering(200)) as sink:
        sent = delivery(attempt=2)
        await sink(sent)
    (delivered,) = [entry for entry in logs if entry["event"] == "webhook.delivered"]
    assert delivered["event_id"] == sent.envelope.id
    assert delivered["status"] == 200
    assert delivered["attempt"] == 2
    logged = repr(logs)
    assert "Warung Nasi Bu Siti" not in logged
    assert EVENT.pemohon.nama not in logged


async def test_a_rejection_is_logged_without_the_body_it_sent(logs: LogEntries) -> None:
    async with sink_for(answering(400)) as sink:
        with pytest.raises(WebhookRejectedError):
            await sink(delivery())
    (rejected,) = [entry for entry in logs if entry["event"] == "webhook.rejected"]
    assert rejected["status"] == 400
    assert rejected["retriable"] is False
    assert "Warung Nasi Bu Siti" not in repr(logs)
