"""Waiting for Kafka at start: what is retried, for how long, what is logged and raised."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog
from aiokafka.errors import (
    InvalidTopicError,
    KafkaConnectionError,
    KafkaTimeoutError,
    NodeNotReadyError,
    TopicAuthorizationFailedError,
    UnknownError,
)

from bus.connection import KafkaSecurity
from bus.errors import (
    ConfigError,
    KafkaAuthorizationError,
    KafkaRefusedError,
    KafkaUnavailableError,
    PublishError,
)
from bus.registry.errors import RegistryError, RegistryUnavailableError
from bus.startup import (
    DEFAULT_START_TIMEOUT_S,
    START_TIMEOUT_ENV,
    default_start_timeout_s,
    is_transient_failure,
    wait_for_kafka,
)

BOOTSTRAP = "127.0.0.1:19092,127.0.0.1:19093"


@pytest.fixture(autouse=True)
def _every_level_logged() -> Iterator[None]:
    """Let INFO and DEBUG through whatever level an earlier test configured."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    yield
    structlog.configure(**saved)


class Flaky:
    """Fails with ``errors`` in turn, then returns ``result``; counts its calls."""

    def __init__(self, *errors: BaseException, result: str = "started") -> None:
        self.errors = list(errors)
        self.result = result
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.result


@pytest.mark.parametrize(
    "error",
    [
        NodeNotReadyError("Attempt to send a request to node which is not ready (node id 3)."),
        KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 9094)]"),
        KafkaTimeoutError(),
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError(),
        RegistryUnavailableError("the registry did not answer"),
        PublishError("broker away", retriable=True),
    ],
)
def test_errors_that_a_recovering_cluster_causes_are_transient(error: BaseException) -> None:
    assert is_transient_failure(error)


@pytest.mark.parametrize(
    "error",
    [
        TopicAuthorizationFailedError(),
        ConfigError("bootstrap_servers is empty"),
        RegistryError("the registry topic has 3 partitions"),
        PublishError("event too large", retriable=False),
        ValueError("a bug"),
    ],
)
def test_errors_that_waiting_cannot_cure_are_not(error: BaseException) -> None:
    assert not is_transient_failure(error)


async def test_a_start_that_meets_a_dying_node_is_tried_again_and_the_wait_logged_once() -> None:
    attempt = Flaky(
        NodeNotReadyError("node id 3"),
        KafkaConnectionError("connection refused"),
        NodeNotReadyError("node id 3"),
    )
    with structlog.testing.capture_logs() as logs:
        result = await wait_for_kafka(
            "start the consumer", attempt, bootstrap_servers=BOOTSTRAP, timeout_s=30
        )
    assert result == "started"
    assert attempt.calls == 4
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert [e["event"] for e in warnings] == ["kafka.waiting"], "one warning per wait"
    assert warnings[0]["what"] == "start the consumer"
    assert warnings[0]["bootstrap"] == BOOTSTRAP
    assert warnings[0]["error"].startswith("NodeNotReadyError")
    available = [e for e in logs if e["event"] == "kafka.available"]
    assert len(available) == 1
    assert available[0]["log_level"] == "info"


async def test_a_start_that_works_at_once_logs_nothing() -> None:
    with structlog.testing.capture_logs() as logs:
        await wait_for_kafka("start", Flaky(), bootstrap_servers=BOOTSTRAP, timeout_s=5)
    assert logs == []


async def test_later_waits_are_logged_at_debug_only() -> None:
    attempt = Flaky(*[NodeNotReadyError("node id 2")] * 3)
    with structlog.testing.capture_logs() as logs:
        await wait_for_kafka("start", attempt, bootstrap_servers=BOOTSTRAP, timeout_s=30)
    waits = [e["log_level"] for e in logs if e["event"] == "kafka.waiting"]
    assert waits == ["warning", "debug", "debug"]


async def test_a_cluster_that_stays_away_gives_a_named_error_with_a_fix() -> None:
    attempt = Flaky(*[KafkaConnectionError("connection refused")] * 1000)
    with pytest.raises(KafkaUnavailableError) as caught:
        await wait_for_kafka(
            "start the publisher", attempt, bootstrap_servers=BOOTSTRAP, timeout_s=1
        )
    message = str(caught.value)
    assert message.startswith(
        f"Kafka at {BOOTSTRAP} was not available to start the publisher within 1 s "
        "(last error: KafkaConnectionError: connection refused)"
    )
    assert "spbe-bus kafka status" in (caught.value.fix or "")
    assert caught.value.retriable
    assert attempt.calls >= 2, "it was tried again before giving up"


async def test_the_error_type_for_a_timeout_can_be_the_callers_own() -> None:
    with pytest.raises(RegistryUnavailableError) as caught:
        await wait_for_kafka(
            "open the schema registry",
            Flaky(*[NodeNotReadyError("node id 1")] * 1000),
            bootstrap_servers=BOOTSTRAP,
            timeout_s=0.5,
            unavailable=RegistryUnavailableError,
        )
    assert "open the schema registry within 0.5 s" in str(caught.value)


async def test_a_refusal_fails_at_once() -> None:
    attempt = Flaky(InvalidTopicError())
    with pytest.raises(KafkaRefusedError) as caught:
        await wait_for_kafka("start", attempt, bootstrap_servers=BOOTSTRAP, timeout_s=60)
    assert attempt.calls == 1
    assert "InvalidTopicError" in str(caught.value)


async def test_an_acl_refusal_fails_at_once_naming_the_principal_and_the_topic() -> None:
    attempt = Flaky(TopicAuthorizationFailedError("_spbe.schemas"))
    security = KafkaSecurity(
        protocol="SASL_PLAINTEXT", username="dinkes-simpus", password="s3cret-pass"
    )
    with pytest.raises(KafkaAuthorizationError) as caught:
        await wait_for_kafka(
            "open the schema registry",
            attempt,
            bootstrap_servers=BOOTSTRAP,
            timeout_s=60,
            security=security,
        )
    assert attempt.calls == 1
    assert "dinkes-simpus may not use the topic _spbe.schemas" in str(caught.value)
    assert (caught.value.principal, caught.value.resource) == ("dinkes-simpus", "_spbe.schemas")
    assert "s3cret-pass" not in str(caught.value)


def test_an_authorizer_that_is_not_ready_yet_is_waited_for() -> None:
    assert is_transient_failure(
        UnknownError("AuthorizerNotReadyException: the authorizer is loading the metadata")
    )


async def test_a_bus_error_that_is_not_retriable_passes_through_unchanged() -> None:
    refused = RegistryError("the registry topic has 3 partitions", fix="use another topic")
    with pytest.raises(RegistryError) as caught:
        await wait_for_kafka("start", Flaky(refused), bootstrap_servers=BOOTSTRAP, timeout_s=60)
    assert caught.value is refused


async def test_an_attempt_that_hangs_is_cut_off_at_the_timeout() -> None:
    import asyncio

    async def hangs() -> None:
        await asyncio.sleep(3600)

    with pytest.raises(KafkaUnavailableError, match=r"within 0\.5 s"):
        await wait_for_kafka("start", hangs, bootstrap_servers=BOOTSTRAP, timeout_s=0.5)


def test_the_start_timeout_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(START_TIMEOUT_ENV, raising=False)
    assert default_start_timeout_s() == DEFAULT_START_TIMEOUT_S == 120
    monkeypatch.setenv(START_TIMEOUT_ENV, "7.5")
    assert default_start_timeout_s() == 7.5


@pytest.mark.parametrize("raw", ["soon", "0", "-3", "inf", "nan"])
def test_a_bad_start_timeout_names_the_variable(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv(START_TIMEOUT_ENV, raw)
    with pytest.raises(ConfigError) as caught:
        default_start_timeout_s()
    assert f"{START_TIMEOUT_ENV}={raw!r} is not a number of seconds greater than 0" in str(
        caught.value
    )
