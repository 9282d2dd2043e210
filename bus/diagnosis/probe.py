"""Why a client could not bootstrap: ask each bootstrap server ourselves, step by step.

aiokafka 0.14 catches every failure of a bootstrap connection, logs it and raises
``KafkaConnectionError("Unable to bootstrap from ...")``: a wrong password, a CA the client
does not trust and a broker that is down all look the same. :func:`diagnose_connection`
connects to each bootstrap server the way the client does, one layer at a time:

1. a TCP connection (refused or timed out: the broker is away, which waiting may cure, so
   there is no verdict);
2. for SSL and SASL_SSL, a TLS handshake with :meth:`KafkaSecurity.ssl_context`: a
   :class:`ssl.SSLCertVerificationError` carries OpenSSL's verify code (20 unknown CA, 62/64
   a host name or address the certificate does not name; then a second handshake that does
   not verify reads the names the certificate does cover); a handshake the listener drops
   is tried again as plaintext Kafka, to say that the listener does not speak TLS;
3. aiokafka's own ``create_conn`` with the client's options (ApiVersions, then the SASL
   handshake and authentication), which raises the broker's real answer
   (``SaslAuthenticationFailed`` with its message, ``UnsupportedSaslMechanismError``,
   ``IllegalSaslStateError`` from a listener without SASL); a listener that closes the
   connection at the first plaintext request is tried with a TLS handshake, to say that it
   expects TLS;
4. a metadata request, which a SASL listener answers only after authentication: a client
   without SASL that got this far but no answer is talking to a SASL listener.

Why probes and not aiokafka's log records: the probes raise typed errors with the broker's
own message, whatever logging level or handler the application set for ``aiokafka`` (a
handler on a logger an application silenced sees nothing), and they do not depend on the
wording of aiokafka's log lines, which is not an API. The cost is a few connections, made
only after a start failed. The probes that do not verify the certificate (reading its
names, testing whether a listener speaks TLS) send no credentials.

A step that times out gives no verdict (a listener of another protocol answers at once, by
closing the connection; a broker that is starting does not answer), so a cluster coming
back is waited for as before. A verdict is given only when no bootstrap server accepted
the client: a cluster where one broker accepts and another refuses is left to the start's
retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from pathlib import Path
from typing import Any, Literal, Protocol

from aiokafka.conn import AIOKafkaConnection, collect_hosts, create_conn
from aiokafka.errors import (
    IllegalSaslStateError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from aiokafka.protocol.metadata import MetadataRequest

from bus.diagnosis.messages import (
    HOST_MISMATCH_CODES,
    bad_credentials,
    certificate_names,
    protocol_mismatch,
    tls_failure,
    unsupported_mechanism,
)
from bus.errors import KafkaRefusedError
from bus.logs import get_logger

__all__ = [
    "DIAGNOSIS_TIMEOUT_S",
    "SecuritySettings",
    "diagnose_connection",
    "is_connection_failure",
    "probe_server",
]

#: How long each step of a probe may take.
DIAGNOSIS_TIMEOUT_S = 10.0
_CLIENT_ID = "spbe-bus-diagnosis"
#: OpenSSL reasons of a peer that answered a ClientHello with something other than TLS.
_NOT_TLS_REASONS = frozenset(
    {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "HTTP_REQUEST"}
)

log = get_logger(__name__)

Verdict = KafkaRefusedError | Literal["ok"] | None
_Listener = Literal["plain", "sasl"]


class SecuritySettings(Protocol):
    """What a probe reads of :class:`bus.connection.KafkaSecurity` (which has all of it)."""

    @property
    def protocol(self) -> str: ...
    @property
    def sasl_mechanism(self) -> str: ...
    @property
    def username(self) -> str | None: ...
    @property
    def ca_file(self) -> Path | None: ...
    @property
    def cert_file(self) -> Path | None: ...
    @property
    def tls(self) -> bool: ...
    @property
    def sasl(self) -> bool: ...
    def ssl_context(self) -> ssl.SSLContext: ...
    def aiokafka_options(self) -> dict[str, Any]: ...


def is_connection_failure(exc: BaseException) -> bool:
    """Whether ``exc`` (or an error it was raised from) is a failure to connect to Kafka."""
    seen: BaseException | None = exc
    for _ in range(5):  # a bus error wrapping aiokafka's wrapping the socket's
        if seen is None:
            return False
        if isinstance(seen, KafkaConnectionError | OSError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


async def diagnose_connection(
    bootstrap_servers: str,
    security: SecuritySettings,
    *,
    timeout_s: float = DIAGNOSIS_TIMEOUT_S,
) -> KafkaRefusedError | None:
    """The named error of a client that could not connect, or ``None`` when none is found.

    ``None`` also when a bootstrap server accepted the client (the failure was something
    else) or none was reachable (a cluster that is away: waiting may cure it).
    """
    servers = [(host, port) for host, port, _ in collect_hosts(bootstrap_servers, False)]
    verdicts = await asyncio.gather(
        *(probe_server(host, port, security, timeout_s=timeout_s) for host, port in servers)
    )
    log.debug(
        "kafka.diagnosed",
        bootstrap=bootstrap_servers,
        verdicts=[v if v is None or isinstance(v, str) else type(v).__name__ for v in verdicts],
    )
    if "ok" in verdicts:
        return None
    return next((v for v in verdicts if isinstance(v, KafkaRefusedError)), None)


async def probe_server(
    host: str, port: int, security: SecuritySettings, *, timeout_s: float = DIAGNOSIS_TIMEOUT_S
) -> Verdict:
    """Connect to one server as a client with ``security`` would: a refusal, ``"ok"`` or
    ``None`` (unreachable, or a failure none of the steps explains)."""
    if not await _reachable(host, port, timeout_s):
        return None
    broker = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if security.tls:
        failure = await _handshake(host, port, security.ssl_context(), timeout_s)
        if failure is not None:
            return await _tls_refusal(host, port, broker, security, failure, timeout_s)
    return await _kafka_refusal(host, port, broker, security, timeout_s)


async def _reachable(host: str, port: int, timeout_s: float) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    except (OSError, TimeoutError):
        return False
    await _close(writer)
    return True


def _unverified_context() -> ssl.SSLContext:
    """A context that completes any handshake: to read a certificate or test for TLS only."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def _handshake(
    host: str, port: int, context: ssl.SSLContext, timeout_s: float
) -> BaseException | None:
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(
                host, port, ssl=context, server_hostname=host, ssl_handshake_timeout=timeout_s
            ),
            timeout_s,
        )
    except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError
        return exc
    await _close(writer)
    return None


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), 1.0)


async def _peer_names(host: str, port: int, timeout_s: float) -> list[str] | None:
    """The names the certificate of ``host:port`` covers, read without verifying it."""
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=_unverified_context(), server_hostname=host),
            timeout_s,
        )
    except (OSError, TimeoutError):
        return None
    try:
        tls = writer.get_extra_info("ssl_object")
        der = tls.getpeercert(binary_form=True) if tls is not None else None
    finally:
        await _close(writer)
    return certificate_names(der) if der else None


def _timed_out(failure: BaseException) -> bool:
    """A listener that did not answer in time: a broker starting or overloaded, not one of
    another protocol (which answers at once, by closing the connection)."""
    return isinstance(failure, TimeoutError | KafkaTimeoutError)


def _dropped_handshake(failure: BaseException) -> bool:
    """A handshake the listener answered with something that is not TLS, or closed."""
    if isinstance(failure, ssl.SSLEOFError):
        return True
    if isinstance(failure, ssl.SSLError):
        return failure.reason in _NOT_TLS_REASONS
    return isinstance(failure, ConnectionError)


async def _tls_refusal(
    host: str,
    port: int,
    broker: str,
    security: SecuritySettings,
    failure: BaseException,
    timeout_s: float,
) -> Verdict:
    if _timed_out(failure):
        return None
    if _dropped_handshake(failure):
        listener = await _listener_kind(host, port, tls=False, timeout_s=timeout_s)
        if listener is not None:
            return protocol_mismatch(
                broker,
                security.protocol,
                "SASL_PLAINTEXT" if listener == "sasl" else "PLAINTEXT",
                "it did not complete a TLS handshake but answers Kafka requests without TLS",
            )
        # Closed or silent, and no plaintext Kafka either: a broker stopping or starting
        # does that too, so waiting may cure it.
        return None
    if not isinstance(failure, ssl.SSLError):
        return None
    names = None
    if (
        isinstance(failure, ssl.SSLCertVerificationError)
        and failure.verify_code in HOST_MISMATCH_CODES
    ):
        names = await _peer_names(host, port, timeout_s)
    return tls_failure(
        failure,
        host=host,
        broker=broker,
        ca_file=security.ca_file,
        has_client_certificate=security.cert_file is not None,
        certificate_names=names,
    )


def _broker_message(exc: KafkaError) -> str:
    detail = exc.args[0] if exc.args and isinstance(exc.args[0], str) else ""
    return detail or str(exc)


async def _kafka_refusal(
    host: str, port: int, broker: str, security: SecuritySettings, timeout_s: float
) -> Verdict:
    user, mechanism = security.username, security.sasl_mechanism
    try:
        conn = await _connect(host, port, timeout_s, **security.aiokafka_options())
    except SaslAuthenticationFailed as exc:
        return bad_credentials(user, mechanism, broker, _broker_message(exc))
    except UnsupportedSaslMechanismError as exc:
        return unsupported_mechanism(user, mechanism, broker, _broker_message(exc))
    except IllegalSaslStateError:
        return protocol_mismatch(
            broker,
            security.protocol,
            "SSL" if security.tls else "PLAINTEXT",
            "it refused a SASL handshake",
        )
    except (KafkaError, OSError, TimeoutError) as exc:
        if security.tls or _timed_out(exc):
            return None  # the broker did not answer Kafka requests (in time): no verdict
        listener = await _listener_kind(host, port, tls=True, timeout_s=timeout_s)
        if listener is None:
            return None
        return protocol_mismatch(
            broker,
            security.protocol,
            "SASL_SSL" if listener == "sasl" else "SSL",
            "it closed the connection at a Kafka request without TLS and answers a TLS handshake",
        )
    try:
        answered = await _metadata_answered(conn, timeout_s)
    finally:
        conn.close()
    if answered:
        return "ok"
    if not security.sasl:
        return protocol_mismatch(
            broker,
            security.protocol,
            "SASL_SSL" if security.tls else "SASL_PLAINTEXT",
            "it answered ApiVersions but closed the connection at a metadata request, as a "
            "listener that wants SASL authentication first does",
        )
    return None


async def _connect(host: str, port: int, timeout_s: float, **options: Any) -> AIOKafkaConnection:
    options.pop("bootstrap_servers", None)
    conn: AIOKafkaConnection = await asyncio.wait_for(
        create_conn(
            host,
            port,
            client_id=_CLIENT_ID,
            request_timeout_ms=int(timeout_s * 1000),
            **options,
        ),
        timeout_s,
    )
    return conn


async def _metadata_answered(conn: AIOKafkaConnection, timeout_s: float) -> bool:
    try:
        await asyncio.wait_for(conn.send(MetadataRequest([])), timeout_s)
    except (KafkaError, OSError, TimeoutError):
        return False
    return True


async def _listener_kind(host: str, port: int, *, tls: bool, timeout_s: float) -> _Listener | None:
    """Whether the listener speaks Kafka over plaintext (``tls=False``) or TLS, and wants
    SASL first (``"sasl"``) or not (``"plain"``); ``None`` when it does not answer so."""
    try:
        conn = await _connect(
            host,
            port,
            timeout_s,
            security_protocol="SSL" if tls else "PLAINTEXT",
            ssl_context=_unverified_context() if tls else None,
        )
    except (KafkaError, OSError, TimeoutError):
        return None
    try:
        return "plain" if await _metadata_answered(conn, timeout_s) else "sasl"
    finally:
        conn.close()
