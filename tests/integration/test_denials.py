"""Each refusal of a real broker is raised at once as its named error, with its fix.

A client whose start cannot succeed (a wrong protocol, a wrong password, an untrusted
certificate) gets its named error on the first failed try, not aiokafka's "Unable to
bootstrap" once the start timeout is over: the tests give a start timeout of 10 minutes and
would time out (pytest's 300 s) if the error waited for it.
"""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaProducer

from bus.connection import KafkaSecurity
from bus.errors import KafkaSecurityProtocolError
from bus.startup import start_client

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
