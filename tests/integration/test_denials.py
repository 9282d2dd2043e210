"""Each refusal of a real broker is raised at once as its named error, with its fix.

A client whose start cannot succeed (a wrong protocol, a wrong password, an untrusted
certificate) gets its named error on the first failed try, not aiokafka's "Unable to
bootstrap" once the start timeout is over: the tests give a start timeout of 10 minutes,
longer than pytest's timeout, so a test whose error waited for it would fail.

The first tests run on the plaintext session broker; the others on the secured one
(``secured_kafka``: SASL_SSL, SCRAM-SHA-512, the local CA, ACLs required), with users and
grants made directly (``tests.support.secured``), as ``catalog apply`` would make them.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import GroupAuthorizationFailedError, TopicAuthorizationFailedError

from bus.connection import KafkaConnection, KafkaSecurity
from bus.contract.plan import PublishingPlan
from bus.contract.standard import load_standard
from bus.delivery import Delivery, Outcome, dlq_topic
from bus.diagnosis import authorization_error, unauthorized_topics
from bus.errors import (
    KafkaAuthenticationError,
    KafkaAuthorizationError,
    KafkaSecurityProtocolError,
    KafkaTlsError,
    PublishAuthorizationError,
    PublishError,
)
from bus.localkafka.certificates import CertificateAuthority
from bus.publisher import Publisher, PublisherConfig
from bus.publisher.failures import send_failure
from bus.registry import SchemaRegistry
from bus.startup import start_client
from bus.subscriber import Subscriber, SubscriberConfig
from tests.support.events import SOURCE_DUKCAPIL, penduduk
from tests.support.kafka import create_topic
from tests.support.secured import create_user, grant, user_connection

pytestmark = pytest.mark.integration

#: Longer than pytest's timeout: a test that waited for it would fail.
NEVER_S = 600.0


async def _start_producer(bootstrap: str, security: KafkaSecurity) -> AIOKafkaProducer:
    return await start_client(
        lambda: AIOKafkaProducer(
            bootstrap_servers=bootstrap, request_timeout_ms=10_000, **security.aiokafka_options()
        ),
        "start the publisher",
        bootstrap_servers=bootstrap,
        timeout_s=NEVER_S,
        security=security,
    )


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# -- the plaintext broker ------------------------------------------------------------------


async def test_a_tls_client_on_a_plaintext_listener_is_told_it_expects_plaintext(
    kafka_bootstrap: str,
) -> None:
    with pytest.raises(KafkaSecurityProtocolError) as caught:
        await _start_producer(kafka_bootstrap, KafkaSecurity(protocol="SSL"))
    assert caught.value.expected == "PLAINTEXT"
    assert "does not speak SSL" in caught.value.message
    assert caught.value.fix is not None
    assert "set protocol (SPBE_KAFKA_SECURITY_PROTOCOL) to PLAINTEXT" in caught.value.fix


async def test_a_sasl_client_on_a_listener_without_sasl_is_told_what_it_expects(
    kafka_bootstrap: str,
) -> None:
    security = KafkaSecurity(
        protocol="SASL_PLAINTEXT", username="dinkes-simpus", password="not-a-real-password"
    )
    with pytest.raises(KafkaSecurityProtocolError) as caught:
        await _start_producer(kafka_bootstrap, security)
    assert caught.value.expected == "PLAINTEXT"
    assert "not-a-real-password" not in str(caught.value)


# -- the secured broker: connecting --------------------------------------------------------


def _chain(exc: BaseException) -> str:
    """Every message of ``exc`` and of the errors it was raised from."""
    texts = []
    seen: BaseException | None = exc
    while seen is not None:
        texts.append(f"{type(seen).__name__}: {seen} {seen.args!r}")
        seen = seen.__cause__ or seen.__context__
    return "\n".join(texts)


async def test_a_wrong_password_names_the_user_and_the_broker_never_the_password(
    secured_kafka: KafkaConnection,
) -> None:
    user = _unique("dinkes-simpus")
    await create_user(secured_kafka, user, "the-right-password-1")
    wrong = user_connection(secured_kafka, user, "a-wrong-password-2")
    with pytest.raises(KafkaAuthenticationError) as caught:
        await _start_producer(wrong.bootstrap_servers, wrong.security)
    error = caught.value
    assert error.user == user
    assert error.broker in wrong.bootstrap_servers.split(",")
    assert f"the broker at {error.broker} refused the credentials of user {user!r}" in str(error)
    assert error.fix is not None
    assert "SPBE_KAFKA_PASSWORD" in error.fix
    assert "a-wrong-password-2" not in _chain(error)


async def test_a_user_that_does_not_exist_is_refused_the_same_way(
    secured_kafka: KafkaConnection,
) -> None:
    stranger = user_connection(secured_kafka, _unique("nobody"), "whatever-password")
    with pytest.raises(KafkaAuthenticationError) as caught:
        await _start_producer(stranger.bootstrap_servers, stranger.security)
    assert caught.value.user == stranger.security.username


async def test_a_ca_that_did_not_sign_the_brokers_certificate_is_an_unknown_ca(
    secured_kafka: KafkaConnection, tmp_path: Path
) -> None:
    other = CertificateAuthority.create(tmp_path / "another-ca")
    security = secured_kafka.security.model_copy(update={"ca_file": other.cert_path})
    with pytest.raises(KafkaTlsError) as caught:
        await _start_producer(secured_kafka.bootstrap_servers, security)
    assert caught.value.reason == "unknown_ca"
    assert str(other.cert_path) in caught.value.message


def _loopback_name_outside_the_certificate() -> str:
    """This machine's host name when it resolves to loopback (the certificates name only
    localhost, 127.0.0.1 and the cluster's host)."""
    name = socket.gethostname()
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, None, socket.AF_INET)}
    except OSError:
        addresses = set()
    if name in ("localhost", "127.0.0.1") or addresses != {"127.0.0.1"}:
        pytest.skip(f"the host name {name!r} does not resolve to 127.0.0.1 only")
    return name


async def test_a_host_name_the_certificate_does_not_cover_is_named_with_what_it_covers(
    secured_kafka: KafkaConnection,
) -> None:
    name = _loopback_name_outside_the_certificate()
    port = secured_kafka.bootstrap_servers.split(",")[0].rsplit(":", 1)[1]
    with pytest.raises(KafkaTlsError) as caught:
        await _start_producer(f"{name}:{port}", secured_kafka.security)
    assert caught.value.reason == "host_name"
    assert f"does not name {name!r}" in caught.value.message
    assert "it covers" in caught.value.message
    assert "127.0.0.1" in caught.value.message


@pytest.mark.parametrize(
    ("protocol", "evidence"),
    [
        ("PLAINTEXT", "answers a TLS handshake"),
        ("SSL", "wants SASL authentication first"),
    ],
)
async def test_a_client_without_sasl_or_tls_is_told_the_listener_expects_sasl_ssl(
    secured_kafka: KafkaConnection, tmp_path: Path, protocol: str, evidence: str
) -> None:
    ca_file = secured_kafka.security.ca_file if protocol == "SSL" else None
    security = KafkaSecurity.model_validate({"protocol": protocol, "ca_file": ca_file})
    with pytest.raises(KafkaSecurityProtocolError) as caught:
        await _start_producer(secured_kafka.bootstrap_servers, security)
    assert caught.value.expected == "SASL_SSL"
    assert evidence in caught.value.message


# -- the secured broker: ACLs --------------------------------------------------------------


async def test_a_publish_the_acls_refuse_names_the_principal_the_topic_and_its_steward(
    secured_kafka: KafkaConnection,
) -> None:
    topic = await create_topic(secured_kafka, _unique("spbe.dukcapil.penduduk.v1.test"))
    user = _unique("dinkes-simpus")
    await create_user(secured_kafka, user, "dinkes-password-1")
    dinkes = user_connection(secured_kafka, user, "dinkes-password-1")
    producer = await _start_producer(dinkes.bootstrap_servers, dinkes.security)
    schema = load_standard()["PendudukUpdated"]
    plan = PublishingPlan.for_source(schema, source=SOURCE_DUKCAPIL, key_secret=b"k" * 32)
    record = plan.record(penduduk(1))
    try:
        with pytest.raises(TopicAuthorizationFailedError) as raised:
            await producer.send_and_wait(topic, record.value, key=record.key)
    finally:
        await producer.stop()
    error = send_failure(record, raised.value, principal=user)
    assert isinstance(error, PublishAuthorizationError)
    assert error.message == (
        f"{user} may not write {topic}: only applications of its steward (DISDUKCAPIL) may"
    )
    assert not error.retriable


async def _consumer(connection: KafkaConnection, topic: str, group: str) -> AIOKafkaConsumer:
    """Started, then subscribed to ``topic``, as :class:`bus.subscriber.Subscriber` does."""
    bootstrap = connection.bootstrap_servers
    consumer = await start_client(
        lambda: AIOKafkaConsumer(
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            **connection.aiokafka_options(),
        ),
        "start the consumer",
        bootstrap_servers=bootstrap,
        timeout_s=NEVER_S,
        security=connection.security,
    )
    consumer.subscribe([topic])
    return consumer


async def _poll(consumer: AIOKafkaConsumer) -> None:
    """Fetch for up to 30 s: long enough for a group join to be answered."""
    for _ in range(60):
        await consumer.getmany(timeout_ms=500)


async def test_a_read_of_a_topic_without_a_grant_is_seen_and_named(
    secured_kafka: KafkaConnection,
) -> None:
    """aiokafka fetches nothing and raises nothing; its metadata says the topic is refused."""
    topic = await create_topic(secured_kafka, _unique("spbe.dukcapil.penduduk.v1.test"))
    subscriber = _unique("dinkes-imunisasi")
    await create_user(secured_kafka, subscriber, "dinkes-password-1")
    await grant(secured_kafka, subscriber, subscriber, ["READ", "DESCRIBE"], resource_type="GROUP")
    dinkes = user_connection(secured_kafka, subscriber, "dinkes-password-1")
    consumer = await _consumer(dinkes, topic, subscriber)
    try:
        refused: frozenset[str] = frozenset()
        for _ in range(60):  # a metadata answer comes within seconds
            await consumer.getmany(timeout_ms=500)
            refused = unauthorized_topics(consumer)
            if refused:
                break
        assert refused == {topic}
    finally:
        await consumer.stop()
    error = authorization_error(
        TopicAuthorizationFailedError(topic),
        principal=subscriber,
        what="read",
        subscriber=subscriber,
    )
    assert isinstance(error, KafkaAuthorizationError)
    assert f"no subscription of {subscriber} to {topic} is active" in error.message


async def test_a_foreign_consumer_group_is_refused_with_group_authorization_failed(
    secured_kafka: KafkaConnection,
) -> None:
    topic = await create_topic(secured_kafka, _unique("spbe.dukcapil.penduduk.v1.test"))
    subscriber = _unique("dinkes-imunisasi")
    await create_user(secured_kafka, subscriber, "dinkes-password-1")
    await grant(secured_kafka, subscriber, topic, ["READ", "DESCRIBE"])
    dinkes = user_connection(secured_kafka, subscriber, "dinkes-password-1")
    foreign = _unique("dpmptsp-replica")
    consumer = await _consumer(dinkes, topic, foreign)
    try:
        with pytest.raises(GroupAuthorizationFailedError) as raised:
            await _poll(consumer)
    finally:
        await consumer.stop()
    error = authorization_error(
        raised.value, principal=subscriber, what="read", subscriber=foreign, group=foreign
    )
    assert isinstance(error, KafkaAuthorizationError)
    assert error.message.startswith(f"{subscriber} may not use the consumer group {foreign}")


# -- the secured broker: the bus's own publisher and subscriber ----------------------------

#: The publisher and subscriber configs take ``security`` once every client speaks it.
needs_client_security = pytest.mark.skipif(
    "security" not in SubscriberConfig.model_fields
    or "security" not in PublisherConfig.model_fields,
    reason="the publisher and subscriber configs have no security setting yet",
)


async def _ignore(delivery: Delivery) -> Outcome | None:
    return None


async def _subscriber_scene(
    operator: KafkaConnection, subscriber: str, topic: str
) -> tuple[KafkaConnection, SchemaRegistry]:
    """A user ``subscriber`` with what a subscriber needs besides its topic and group: its
    dead letter topic (made by the operator) to write, and the operator's registry."""
    await create_user(operator, subscriber, "dinkes-password-1")
    dlq = await create_topic(operator, dlq_topic(topic, subscriber))
    await grant(operator, subscriber, dlq, ["WRITE", "DESCRIBE"])
    registry = SchemaRegistry(operator)
    await registry.start()
    return user_connection(operator, subscriber, "dinkes-password-1"), registry


def _subscriber_config(connection: KafkaConnection, subscriber: str, topic: str) -> Any:
    return SubscriberConfig(
        bootstrap_servers=connection.bootstrap_servers,
        security=connection.security,
        subscriber_id=subscriber,
        topics=(topic,),
        start_timeout_s=120,
    )


@needs_client_security
async def test_a_subscriber_without_an_active_subscription_stops_with_the_named_error(
    secured_kafka: KafkaConnection,
) -> None:
    topic = await create_topic(secured_kafka, _unique("spbe.dukcapil.penduduk.v1.test"))
    subscriber = _unique("dinkes-imunisasi")
    dinkes, registry = await _subscriber_scene(secured_kafka, subscriber, topic)
    await grant(secured_kafka, subscriber, subscriber, ["READ", "DESCRIBE"], resource_type="GROUP")
    try:
        config = _subscriber_config(dinkes, subscriber, topic)
        async with Subscriber(config, _ignore, registry=registry) as consumer:
            with pytest.raises(KafkaAuthorizationError) as caught:
                await asyncio.wait_for(consumer.run(), 120)
    finally:
        await registry.stop()
    assert caught.value.operation == "read"
    assert caught.value.message.startswith(
        f"{subscriber} may not read {topic}: no subscription of {subscriber} to {topic} is "
        "active: missing from the catalogue, expired, or not applied yet"
    )


@needs_client_security
async def test_a_subscriber_in_another_subscribers_group_stops_with_the_named_error(
    secured_kafka: KafkaConnection,
) -> None:
    topic = await create_topic(secured_kafka, _unique("spbe.dukcapil.penduduk.v1.test"))
    user = _unique("dinkes-imunisasi")
    foreign = _unique("dpmptsp-replica")
    dinkes, registry = await _subscriber_scene(secured_kafka, user, topic)
    dlq = await create_topic(secured_kafka, dlq_topic(topic, foreign))
    await grant(secured_kafka, user, dlq, ["WRITE", "DESCRIBE"])
    await grant(secured_kafka, user, topic, ["READ", "DESCRIBE"])
    try:
        config = _subscriber_config(dinkes, foreign, topic)
        async with Subscriber(config, _ignore, registry=registry) as consumer:
            with pytest.raises(KafkaAuthorizationError) as caught:
                await asyncio.wait_for(consumer.run(), 120)
    finally:
        await registry.stop()
    assert (caught.value.operation, caught.value.resource) == ("use", foreign)
    assert caught.value.message.startswith(f"{user} may not use the consumer group {foreign}")


def _publisher_config(connection: KafkaConnection, topic: str) -> PublisherConfig:
    return PublisherConfig(
        bootstrap_servers=connection.bootstrap_servers,
        security=connection.security,
        source=SOURCE_DUKCAPIL,
        key_secret=b"k" * 32,
        register_schemas=False,
        topic_overrides={"PendudukUpdated": topic},
        start_timeout_s=NEVER_S,
    )


@needs_client_security
async def test_a_publisher_with_another_opds_credentials_is_refused_naming_the_steward(
    secured_kafka: KafkaConnection,
) -> None:
    topic = await create_topic(secured_kafka, _unique("spbe.dukcapil.penduduk.v1.test"))
    own = await create_topic(secured_kafka, _unique("spbe.dinkes.imunisasi.v1.test"))
    user = _unique("dinkes-simpus")
    await create_user(secured_kafka, user, "dinkes-password-1")
    await grant(secured_kafka, user, own, ["WRITE", "DESCRIBE"])  # Dinkes' own topic
    dinkes = user_connection(secured_kafka, user, "dinkes-password-1")
    async with Publisher(_publisher_config(dinkes, topic)) as publisher:
        with pytest.raises(PublishAuthorizationError) as caught:
            await publisher.publish(penduduk(1))
    assert isinstance(caught.value, PublishError)
    assert not caught.value.retriable
    assert caught.value.message == (
        f"{user} may not write {topic}: only applications of its steward (DISDUKCAPIL) may"
    )


@needs_client_security
async def test_a_publisher_whose_user_may_write_nothing_is_refused_at_start(
    secured_kafka: KafkaConnection,
) -> None:
    """The idempotent producer's first request needs a write grant: it is named at once."""
    topic = await create_topic(secured_kafka, _unique("spbe.dukcapil.penduduk.v1.test"))
    user = _unique("dinkes-simpus")
    await create_user(secured_kafka, user, "dinkes-password-1")
    dinkes = user_connection(secured_kafka, user, "dinkes-password-1")
    publisher = Publisher(_publisher_config(dinkes, topic))
    with pytest.raises(KafkaAuthorizationError) as caught:
        await publisher.start()
    assert caught.value.principal == user
    assert caught.value.resource == "cluster"
    assert f"{user} may not start the publisher" in caught.value.message
