"""How a subscriber treats a record that did not decode, and its backoff (pure)."""

from __future__ import annotations

import pytest
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError

from bus.delivery import DecodeFailure, RetryPolicy, backoff_s, classify_decode_failure
from bus.errors import CodecError, EnvelopeError, UnknownSchemaError
from bus.registry.errors import RegistryError, RegistryUnavailableError


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (RegistryUnavailableError("Kafka did not answer"), DecodeFailure.UNAVAILABLE),
        (KafkaConnectionError("connection refused"), DecodeFailure.UNAVAILABLE),
        (TimeoutError(), DecodeFailure.UNAVAILABLE),
        (UnknownSchemaError(0x1234), DecodeFailure.UNKNOWN_SCHEMA),
        (CodecError("not a single-object datum"), DecodeFailure.POISON),
        (EnvelopeError("ce_id missing"), DecodeFailure.POISON),
        (RegistryError("record corrupt"), DecodeFailure.POISON),
        (KeyError("a decoder bug"), DecodeFailure.POISON),
        (KafkaTimeoutError(), DecodeFailure.POISON),
    ],
)
def test_only_a_registry_that_is_away_is_waited_for(
    error: BaseException, expected: DecodeFailure
) -> None:
    assert classify_decode_failure(error) is expected


def test_backoff_doubles_from_the_initial_wait_up_to_the_cap() -> None:
    policy = RetryPolicy(initial_backoff_ms=100, max_backoff_ms=1000, jitter_ms=0)
    assert [backoff_s(policy, n) for n in range(1, 7)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert backoff_s(policy, 10_000) == 1.0, "a long wait never overflows"


def test_backoff_jitter_stays_within_its_bound_and_the_cap() -> None:
    policy = RetryPolicy(initial_backoff_ms=100, max_backoff_ms=150, jitter_ms=100)
    waits = [backoff_s(policy, 1) for _ in range(200)]
    assert all(0.1 <= w <= 0.15 for w in waits)
    assert len(set(waits)) > 1
