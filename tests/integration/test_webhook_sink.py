"""WebhookSink behind a real Subscriber and broker, POSTing to a real HTTP server on loopback.

Retries, dead letters, signatures and CloudEvents attributes as a receiver sees them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from adapters.sinks.webhook import (
    CONTENT_TYPE,
    SignatureMismatchError,
    WebhookSink,
    WebhookSinkConfig,
    verify,
)
from bus.contract.envelope import from_headers
from bus.contract.events import IzinDiterbitkan
from bus.delivery import RetryPolicy, dlq_topic
from bus.publisher import Publisher, PublisherConfig, PublishResult
from bus.subscriber import Subscriber, SubscriberConfig
from tests.conftest import TopicFactory
from tests.support.events import SOURCE_DPMPTSP, izin
from tests.support.kafka import read_all
from tests.support.webhook_receiver import Reply, WebhookReceiver

pytestmark = pytest.mark.integration

SECRET = b"webhook-integration-secret-0123456789"
FAST_RETRY = RetryPolicy(max_attempts=5, initial_backoff_ms=20, max_backoff_ms=200, jitter_ms=10)
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(SECRET) as running:
        yield running


async def eventually(
    check: Callable[[], bool], *, timeout_s: float = 120.0, watch: asyncio.Task[None]
) -> None:
    """Wait until ``check()`` holds; fail clearly if it never does or the subscriber dies."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not check():
        if watch.done():
            watch.result()
            pytest.fail("the subscriber stopped before the condition held")
        if loop.time() > deadline:
            pytest.fail(f"condition not met within {timeout_s}s")
        await asyncio.sleep(0.05)


async def publish(
    bootstrap: str, topic: str, event: IzinDiterbitkan, **options: object
) -> PublishResult:
    config = PublisherConfig(
        bootstrap_servers=bootstrap,
        source=SOURCE_DPMPTSP,
        topic_overrides={"IzinDiterbitkan": topic},
    )
    async with Publisher(config) as publisher:
        return await publisher.publish(event, **options)  # type: ignore[arg-type]


async def deliver_until(
    bootstrap: str,
    topic: str,
    name: str,
    sink_config: WebhookSinkConfig,
    done: Callable[[Subscriber], bool],
) -> Subscriber:
    """Run a Subscriber with a WebhookSink as its handler until ``done(subscriber)``."""
    config = SubscriberConfig(
        bootstrap_servers=bootstrap, subscriber_id=name, topics=(topic,), retry=FAST_RETRY
    )
    async with WebhookSink(sink_config) as sink, Subscriber(config, sink) as subscriber:
        runner = asyncio.create_task(subscriber.run())
        await eventually(lambda: done(subscriber), watch=runner)
        subscriber.request_stop()
        await runner
    return subscriber


def sink_config(receiver: WebhookReceiver, **extra: object) -> WebhookSinkConfig:
    return WebhookSinkConfig.model_validate({"url": receiver.url, "secret": SECRET, **extra})


def applied_one(subscriber: Subscriber) -> bool:
    return subscriber.stats.applied == 1


async def record_count(bootstrap: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, 0)])
    finally:
        await consumer.stop()
    return int(sum(ends.values()))


async def test_a_receiver_that_fails_then_times_out_then_answers_gets_the_event_applied_once(
    kafka_bootstrap: str, new_topic: TopicFactory, receiver: WebhookReceiver
) -> None:
    topic = await new_topic()
    published = await publish(kafka_bootstrap, topic, izin(1), sequence=1)
    receiver.script(Reply(500, body=b"database sedang dipelihara"), Reply(200, delay_s=60))

    subscriber = await deliver_until(
        kafka_bootstrap,
        topic,
        "webhook-retry",
        sink_config(receiver, timeout_s=1),
        lambda s: s.stats.applied == 1,
    )

    requests = receiver.requests
    assert len(requests) >= 3
    assert requests[0].reply.status == 500
    assert requests[1].reply.delay_s > 0, "the second attempt waited for an answer in vain"
    assert requests[-1].reply.status == 200
    assert {r.event_id for r in requests} == {published.event_id}
    assert [r.signature_error for r in requests] == [None] * len(requests)
    assert subscriber.stats.applied == 1
    assert subscriber.stats.retries == len(requests) - 1
    assert subscriber.stats.dead_lettered == 0
    assert await record_count(kafka_bootstrap, dlq_topic(topic, "webhook-retry")) == 0


async def test_a_4xx_answer_dead_letters_the_event_with_its_status_and_the_next_one_is_delivered(
    kafka_bootstrap: str, new_topic: TopicFactory, receiver: WebhookReceiver
) -> None:
    topic = await new_topic()
    refused = await publish(kafka_bootstrap, topic, izin(1, nama_usaha="Ditolak"), sequence=1)
    accepted = await publish(kafka_bootstrap, topic, izin(2, nama_usaha="Diterima"), sequence=1)
    answer = b'{"error":"kbli 56102 tidak dikenal"}' + b" " + b"x" * 400 + b"AKHIR"
    receiver.script(Reply(400, body=answer))

    subscriber = await deliver_until(
        kafka_bootstrap,
        topic,
        "webhook-dlq",
        sink_config(receiver),
        lambda s: s.stats.applied == 1 and s.stats.dead_lettered == 1,
    )

    assert [(r.event_id, r.reply.status) for r in receiver.requests] == [
        (refused.event_id, 400),
        (accepted.event_id, 200),
    ], "a refusal is not retried, and the next event follows"
    (dead,) = await read_all(kafka_bootstrap, dlq_topic(topic, "webhook-dlq"), 1)
    cause = dict(dead.headers)
    assert cause["ce_id"] == refused.event_id.encode()
    assert cause["dlq_error_class"] == b"adapters.sinks.webhook.errors.WebhookRejectedError"
    assert b"HTTP 400 Bad Request" in cause["dlq_error_message"]
    assert b"kbli 56102 tidak dikenal" in cause["dlq_error_message"]
    assert b"AKHIR" not in cause["dlq_error_message"], "at most 200 characters of the answer"
    assert cause["dlq_attempts"] == b"1"
    assert subscriber.stats.retries == 0


async def test_the_receiver_gets_a_valid_signature_and_the_events_cloudevents_attributes(
    kafka_bootstrap: str, new_topic: TopicFactory, receiver: WebhookReceiver
) -> None:
    topic = await new_topic()
    event = izin(3, nama_usaha="Kedai Kopi Dédé")
    await publish(kafka_bootstrap, topic, event, sequence=7, traceparent=TRACEPARENT)
    (record,) = await read_all(kafka_bootstrap, topic, 1)
    envelope = from_headers(list(record.headers))

    await deliver_until(
        kafka_bootstrap,
        topic,
        "webhook-fields",
        sink_config(receiver, headers={"X-Api-Key": "kunci-uji"}),
        lambda s: s.stats.applied == 1,
    )

    (request,) = receiver.requests
    assert request.signature_error is None
    verify(SECRET, request.headers, request.body)
    with pytest.raises(SignatureMismatchError):
        verify(b"a-different-secret-of-32-bytes!!", request.headers, request.body)
    assert request.header("Content-Type") == CONTENT_TYPE
    assert request.header("X-Api-Key") == "kunci-uji"
    assert request.event_id == envelope.id
    assert request.event == {
        "specversion": "1.0",
        "id": envelope.id,
        "source": SOURCE_DPMPTSP,
        "type": "id.go.spbe.dpmptsp.IzinDiterbitkan.v1",
        "time": envelope.time.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "subject": envelope.subject,
        "datacontenttype": "application/json",
        "dataschema": envelope.dataschema,
        "steward": "DPMPTSP",
        "sequence": 7,
        "partitionkey": event.nomor_izin,
        "dataclassification": envelope.dataclassification.value,
        "traceparent": TRACEPARENT,
        "data": event.to_json(),
    }
    assert str(request.event["dataschema"]).startswith("urn:spbe:schema:")


async def test_an_event_delivered_twice_reaches_the_receiver_with_the_same_id_both_times(
    kafka_bootstrap: str, new_topic: TopicFactory, receiver: WebhookReceiver
) -> None:
    topic = await new_topic()
    first = await publish(kafka_bootstrap, topic, izin(4), sequence=1)
    # An outbox relay that crashed between publishing and marking publishes it again.
    again = await publish(kafka_bootstrap, topic, izin(4), sequence=1, event_id=first.event_id)
    assert (again.event_id, again.offset) == (first.event_id, first.offset + 1)

    await deliver_until(
        kafka_bootstrap,
        topic,
        "webhook-dup",
        sink_config(receiver),
        lambda s: s.stats.applied == 2,
    )

    one, two = receiver.requests
    assert one.event_id == two.event_id == first.event_id
    assert (one.event["source"], one.event["id"]) == (two.event["source"], two.event["id"])
    assert one.event["data"] == two.event["data"]
    assert one.signature_error is None
    assert two.signature_error is None


async def test_a_replayed_topic_delivers_the_same_body_with_the_same_id_again(
    kafka_bootstrap: str, new_topic: TopicFactory, receiver: WebhookReceiver
) -> None:
    topic = await new_topic()
    published = await publish(kafka_bootstrap, topic, izin(5), sequence=1)
    config = sink_config(receiver)
    await deliver_until(kafka_bootstrap, topic, "webhook-live", config, applied_one)
    # An operator replays the topic from the start to recover the receiver.
    await deliver_until(kafka_bootstrap, topic, "webhook-replay", config, applied_one)

    live, replayed = receiver.requests
    assert live.event_id == replayed.event_id == published.event_id
    assert live.body == replayed.body, "only the signing headers differ between deliveries"
    assert live.signature_error is None
    assert replayed.signature_error is None
