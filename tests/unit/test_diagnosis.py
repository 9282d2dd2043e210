"""Refusals become named errors with their fix: real TLS handshakes on loopback, ACL messages.

The TLS cases run a loopback TLS server with certificates of the local CA
(:mod:`bus.localkafka.certificates`); what the client's handshake raises is what the
diagnosis reads. The Kafka-level cases (a refused password, a plaintext client on a TLS
listener, ACLs) run on the secured broker in tests/integration/test_denials.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
)
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from bus.connection import KafkaSecurity
from bus.contract.plan import PublishingPlan
from bus.contract.standard import load_standard
from bus.diagnosis import (
    authorization_error,
    certificate_names,
    diagnose_connection,
    group_refused,
    is_connection_failure,
    probe_server,
    read_refused,
    refused_topics,
    sasl_user,
    unauthorized_topics,
    write_refused,
)
from bus.errors import (
    KafkaAuthorizationError,
    KafkaRefusedError,
    KafkaTlsError,
    PublishAuthorizationError,
    PublishError,
)
from bus.localkafka.certificates import CertificateAuthority
from bus.publisher.failures import send_failure
from bus.startup import wait_for_kafka
from tests.support.events import SOURCE_DUKCAPIL, penduduk
from tests.support.ports import free_port_block

PENDUDUK = "spbe.dukcapil.penduduk.v1"
TIMEOUT_S = 10.0

#: Starts a loopback TLS listener whose certificate names the hosts given; returns its port.
Listener = Callable[[tuple[str, ...]], Awaitable[int]]


async def _drain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A listener that takes a connection and closes it: a TLS listener that is not Kafka."""
    with contextlib.suppress(OSError):  # a client hanging up mid-handshake; ssl errors too
        await reader.read(16)
    writer.close()


@pytest.fixture
def ca(tmp_path: Path) -> CertificateAuthority:
    return CertificateAuthority.create(tmp_path / "cluster-ca")


@pytest.fixture
async def tls_listener(tmp_path: Path, ca: CertificateAuthority) -> AsyncIterator[Listener]:
    """Loopback TLS listeners with certificates of ``ca``, closed after the test."""
    servers: list[asyncio.Server] = []

    async def start(hosts: tuple[str, ...]) -> int:
        node = ca.issue(f"node-{len(servers)}", hosts=hosts, folder=tmp_path / f"n{len(servers)}")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(node.certificate, node.key)
        server = await asyncio.start_server(_drain, "127.0.0.1", 0, ssl=context)
        servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def _ssl(ca_file: Path | None = None) -> KafkaSecurity:
    return KafkaSecurity(protocol="SSL", ca_file=ca_file)


async def test_a_broker_certificate_of_another_ca_is_an_unknown_ca_naming_the_ca_file(
    tmp_path: Path, tls_listener: Listener
) -> None:
    port = await tls_listener(("localhost", "127.0.0.1"))
    other = CertificateAuthority.create(tmp_path / "another-ca")
    refusal = await probe_server("localhost", port, _ssl(other.cert_path), timeout_s=TIMEOUT_S)
    assert isinstance(refusal, KafkaTlsError)
    assert refusal.reason == "unknown_ca"
    assert refusal.broker == f"localhost:{port}"
    assert f"the broker at localhost:{port} is not signed by a CA this client trusts" in str(
        refusal
    )
    assert "certificate verify failed" in refusal.message
    assert refusal.fix is not None
    assert str(other.cert_path) in refusal.fix


async def test_without_a_ca_file_the_fix_says_to_set_one(
    tls_listener: Listener,
) -> None:
    port = await tls_listener(("localhost", "127.0.0.1"))
    refusal = await probe_server("127.0.0.1", port, _ssl(), timeout_s=TIMEOUT_S)
    assert isinstance(refusal, KafkaTlsError)
    assert refusal.reason == "unknown_ca"
    assert "the system's CAs" in refusal.message
    assert refusal.fix is not None
    assert "set ca_file (SPBE_KAFKA_CA_FILE)" in refusal.fix


async def test_a_host_the_certificate_does_not_name_is_named_with_the_names_it_covers(
    ca: CertificateAuthority, tls_listener: Listener
) -> None:
    port = await tls_listener(("localhost", "broker-1.pemda.example"))
    refusal = await probe_server("127.0.0.1", port, _ssl(ca.cert_path), timeout_s=TIMEOUT_S)
    assert isinstance(refusal, KafkaTlsError)
    assert refusal.reason == "host_name"
    assert "does not name '127.0.0.1', the host this client connected to" in refusal.message
    assert "it covers localhost, broker-1.pemda.example" in refusal.message
    assert refusal.fix is not None
    assert "include 127.0.0.1" in refusal.fix


async def test_a_certificate_that_names_the_host_passes_the_tls_step(
    ca: CertificateAuthority, tls_listener: Listener
) -> None:
    """TLS holds; the listener is no Kafka broker, so there is no verdict (not a TLS error)."""
    port = await tls_listener(("localhost", "127.0.0.1"))
    assert await probe_server("127.0.0.1", port, _ssl(ca.cert_path), timeout_s=2.0) is None


async def test_a_listener_that_drops_the_tls_handshake_gets_no_verdict() -> None:
    """A broker that is stopping closes connections too: waiting may cure it."""
    server = await asyncio.start_server(_drain, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        assert await probe_server("127.0.0.1", port, _ssl(), timeout_s=2.0) is None
    finally:
        server.close()
        await server.wait_closed()


async def test_a_broker_that_is_away_gets_no_verdict() -> None:
    port = free_port_block(1)
    assert await probe_server("127.0.0.1", port, _ssl(), timeout_s=2.0) is None


async def test_one_server_away_and_one_refusing_gives_the_refusal(
    tmp_path: Path, tls_listener: Listener
) -> None:
    port = await tls_listener(("localhost", "127.0.0.1"))
    away = free_port_block(1)
    other = CertificateAuthority.create(tmp_path / "another-ca")
    refusal = await diagnose_connection(
        f"127.0.0.1:{away},127.0.0.1:{port}", _ssl(other.cert_path), timeout_s=TIMEOUT_S
    )
    assert isinstance(refusal, KafkaTlsError)
    assert refusal.broker == f"127.0.0.1:{port}"


async def test_a_start_that_cannot_bootstrap_raises_the_tls_error_at_once(
    tmp_path: Path, tls_listener: Listener
) -> None:
    """Not after the start timeout: the first failed try is diagnosed and not retried."""
    port = await tls_listener(("localhost", "127.0.0.1"))
    other = CertificateAuthority.create(tmp_path / "another-ca")
    calls = 0

    async def attempt() -> None:
        nonlocal calls
        calls += 1
        raise KafkaConnectionError(f"Unable to bootstrap from [('127.0.0.1', {port})]")

    with pytest.raises(KafkaTlsError, match="not signed by a CA this client trusts"):
        await wait_for_kafka(
            "start the publisher",
            attempt,
            bootstrap_servers=f"127.0.0.1:{port}",
            timeout_s=600,
            security=_ssl(other.cert_path),
        )
    assert calls == 1


def test_certificate_names_reads_dns_names_and_addresses(ca: CertificateAuthority) -> None:
    node = ca.issue("node-1", hosts=("localhost", "127.0.0.1"))
    leaf = x509.load_pem_x509_certificates(node.certificate.read_bytes())[0]
    assert certificate_names(leaf.public_bytes(Encoding.DER)) == ["localhost", "127.0.0.1"]
    assert certificate_names(b"not a certificate") == []


def test_a_connection_failure_is_found_under_the_errors_that_wrap_it() -> None:
    wrapped = PublishError("cannot reach Kafka", retriable=True)
    wrapped.__cause__ = KafkaConnectionError("Unable to bootstrap from [('localhost', 9093)]")
    assert is_connection_failure(wrapped)
    assert is_connection_failure(ConnectionRefusedError())
    assert not is_connection_failure(TopicAuthorizationFailedError(PENDUDUK))
    assert not is_connection_failure(ValueError("bad"))


# -- authorization -------------------------------------------------------------------------


def test_a_write_refused_names_the_principal_the_topic_and_its_steward() -> None:
    refusal = write_refused(PENDUDUK, principal="dinkes-simpus", steward="DISDUKCAPIL")
    assert refusal.message == (
        "dinkes-simpus may not write spbe.dukcapil.penduduk.v1: only applications of its "
        "steward (DISDUKCAPIL) may"
    )
    assert refusal.fix is not None
    assert "a DISDUKCAPIL application" in refusal.fix
    assert isinstance(refusal, PublishError)
    assert isinstance(refusal, KafkaAuthorizationError)
    assert not refusal.retriable
    assert (refusal.principal, refusal.operation, refusal.resource) == (
        "dinkes-simpus",
        "write",
        PENDUDUK,
    )


def test_without_the_standards_steward_the_topics_domain_is_named() -> None:
    refusal = write_refused(PENDUDUK, principal=None, steward=None)
    assert refusal.message.startswith("User:ANONYMOUS (a client without a SASL user) may not")
    assert "only applications of the steward of the dukcapil domain may" in refusal.message


def test_a_refused_send_is_a_publish_error_naming_the_steward_of_its_source() -> None:
    schema = load_standard()["PendudukUpdated"]
    plan = PublishingPlan.for_source(schema, source=SOURCE_DUKCAPIL, key_secret=b"k" * 32)
    record = plan.record(penduduk(1))
    error = send_failure(record, TopicAuthorizationFailedError(PENDUDUK), principal="dinkes-simpus")
    assert isinstance(error, PublishAuthorizationError)
    assert not error.retriable
    assert "dinkes-simpus may not write spbe.dukcapil.penduduk.v1" in error.message
    assert "(DISDUKCAPIL)" in error.message
    assert "327302570890" not in str(error)  # no NIK: no personal data in errors


def test_an_unsubscribed_read_names_the_subscriber_and_every_possible_cause() -> None:
    refusal = read_refused(PENDUDUK, principal="dinkes-imunisasi", subscriber="dinkes-imunisasi")
    assert refusal.message == (
        "dinkes-imunisasi may not read spbe.dukcapil.penduduk.v1: no subscription of "
        "dinkes-imunisasi to spbe.dukcapil.penduduk.v1 is active: missing from the catalogue, "
        "expired, or not applied yet ('spbe-bus catalog plan' shows which)"
    )
    other = read_refused(PENDUDUK, principal="dinkes-simpus", subscriber="dinkes-imunisasi")
    assert "these are the credentials of dinkes-simpus" in other.message


def test_a_foreign_group_names_whose_group_it_is_and_whose_credentials() -> None:
    refusal = group_refused("dpmptsp-sicantik-replica", principal="dinkes-imunisasi")
    assert refusal.message.startswith(
        "dinkes-imunisasi may not use the consumer group dpmptsp-sicantik-replica"
    )
    assert refusal.fix is not None
    assert "set subscriber_id to dinkes-imunisasi" in refusal.fix
    assert refusal.operation == "use"


@pytest.mark.parametrize(
    ("error", "what", "kind", "resource"),
    [
        (TopicAuthorizationFailedError(PENDUDUK), "read", "read", PENDUDUK),
        (TopicAuthorizationFailedError({PENDUDUK}), "write", "write", PENDUDUK),
        (GroupAuthorizationFailedError("sub-a"), "read", "use", "sub-a"),
        (ClusterAuthorizationFailedError(), "create topics", "create topics", "cluster"),
    ],
)
def test_aiokafkas_authorization_errors_map_to_the_named_error(
    error: Exception, what: str, kind: str, resource: str
) -> None:
    refusal = authorization_error(error, principal="sub-a", what=what, subscriber="sub-a")
    assert isinstance(refusal, KafkaAuthorizationError)
    assert isinstance(refusal, KafkaRefusedError)
    assert (refusal.operation, refusal.resource) == (kind, resource)
    assert authorization_error(ValueError(), principal=None, what=what) is None


def test_refused_topics_reads_one_topic_or_a_set() -> None:
    assert refused_topics(TopicAuthorizationFailedError("b")) == ("b",)
    assert refused_topics(TopicAuthorizationFailedError({"b", "a"})) == ("a", "b")
    assert refused_topics(TopicAuthorizationFailedError()) == ()


def test_the_principal_is_the_sasl_user_only() -> None:
    class Config:
        def __init__(self, security: KafkaSecurity) -> None:
            self.security = security

    secured = KafkaSecurity(protocol="SASL_SSL", username="dinkes-simpus", password="x")
    assert sasl_user(Config(secured)) == "dinkes-simpus"
    assert sasl_user(Config(KafkaSecurity())) is None
    assert sasl_user(object()) is None


def test_unauthorized_topics_of_something_that_is_no_consumer_is_empty() -> None:
    assert unauthorized_topics(object()) == frozenset()
