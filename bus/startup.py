"""Starting Kafka clients: wait for a cluster that is coming back, fail clearly when it is not.

A client that starts while one broker of three is down, or while the cluster is still
electing leaders, meets errors that go away on their own: a refused connection, a request
timeout, ``NodeNotReadyError`` from a node that died a moment ago. :func:`wait_for_kafka`
tries such a start again with exponential backoff and jitter until ``timeout_s`` has passed,
logs the wait once (``kafka.waiting``, with what is waited for and why), and then raises
:class:`KafkaUnavailableError` with a fix. An error that no wait can cure (a bad setting, a
refused authorisation) is raised at once.

Given the client's ``security``, a try that failed to connect is explained by
:func:`bus.diagnosis.diagnose_connection`: a wrong password, an untrusted certificate or a
listener of another protocol is raised at once as its named error
(:class:`~bus.errors.KafkaAuthenticationError`, :class:`~bus.errors.KafkaTlsError`,
:class:`~bus.errors.KafkaSecurityProtocolError`) instead of aiokafka's "Unable to bootstrap"
after the whole timeout. An ACL refusal becomes :class:`~bus.errors.KafkaAuthorizationError`.

:class:`LiveNodeAdmin` is the aiokafka admin client with one change: a request that may go
to any broker goes to one that accepts a connection, not to a random one, which may be the
broker that just died (aiokafka's default).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError, KafkaTimeoutError, UnrecognizedBrokerVersion
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_delay,
    wait_random_exponential,
)

from bus.connection import KafkaSecurity
from bus.diagnosis import authorization_error, diagnose_connection, is_connection_failure
from bus.errors import BusError, ConfigError, KafkaRefusedError, KafkaUnavailableError
from bus.logs import get_logger

__all__ = [
    "DEFAULT_START_TIMEOUT_S",
    "START_TIMEOUT_ENV",
    "LiveNodeAdmin",
    "close_client",
    "default_start_timeout_s",
    "fix_for_unreachable",
    "is_transient_failure",
    "parse_seconds",
    "start_client",
    "wait_for_kafka",
]

#: How long a client start waits for Kafka before it gives up (a rolling restart fits).
DEFAULT_START_TIMEOUT_S = 120.0
#: Environment variable that changes that default for every client of a process.
START_TIMEOUT_ENV = "SPBE_START_TIMEOUT_S"
_FIRST_WAIT_S = 0.2
_LONGEST_WAIT_S = 5.0

log = get_logger(__name__)
T = TypeVar("T")
C = TypeVar("C", bound="_Client")


class _Client(Protocol):
    async def start(self) -> None: ...


def parse_seconds(text: str) -> float | None:
    """``text`` as a number of seconds greater than 0 (and finite); ``None`` if it is not."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if 0 < value < float("inf") else None


def default_start_timeout_s() -> float:
    """``$SPBE_START_TIMEOUT_S`` when set (seconds, positive), else 120 s."""
    raw = os.environ.get(START_TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_START_TIMEOUT_S
    value = parse_seconds(raw)
    if value is None:
        raise ConfigError(
            f"{START_TIMEOUT_ENV}={raw!r} is not a number of seconds greater than 0",
            fix=f"set {START_TIMEOUT_ENV} to e.g. 120, or unset it for the default",
        )
    return value


def fix_for_unreachable(bootstrap_servers: str) -> str:
    """What to do when no broker at ``bootstrap_servers`` answered."""
    return (
        f"check that the brokers at {bootstrap_servers} run and are reachable from here "
        "(for a local cluster 'spbe-bus kafka status' names a node that is down and "
        "'spbe-bus kafka up' starts it), or point --bootstrap (SPBE_KAFKA_BOOTSTRAP) "
        "at a running cluster"
    )


def is_transient_failure(exc: BaseException) -> bool:
    """Whether a failed Kafka request (or client start) may succeed if tried again unchanged.

    Kafka's own ``retriable`` flag, plus timeouts and connection errors, which aiokafka
    leaves unflagged but which a broker that is away or electing leaders causes, and
    ``AuthorizerNotReadyException``: right after a cluster starts, only super users get in
    until the authorizer has loaded the metadata (Kafka sends it without an error code of
    its own, so it is recognised by name).
    """
    if isinstance(exc, BusError):
        return exc.retriable
    if "AuthorizerNotReady" in f"{type(exc).__name__} {exc}":
        return True
    if isinstance(exc, KafkaTimeoutError | UnrecognizedBrokerVersion):
        # A broker that is starting may answer ApiVersions late or not at all.
        return True
    if isinstance(exc, KafkaError):
        return bool(exc.retriable)
    return isinstance(exc, OSError | TimeoutError)


def _describe(exc: BaseException) -> str:
    detail = str(exc).split("\n", 1)[0]
    name = type(exc).__name__
    return detail if detail.startswith(name) else f"{name}: {detail}" if detail else name


async def wait_for_kafka(
    what: str,
    attempt: Callable[[], Awaitable[T]],
    *,
    bootstrap_servers: str,
    timeout_s: float | None = None,
    unavailable: type[KafkaUnavailableError] = KafkaUnavailableError,
    security: KafkaSecurity | None = None,
) -> T:
    """Run ``attempt`` until it succeeds, retrying retriable failures for ``timeout_s``.

    ``what`` names the job for logs and errors ("start the publisher"). ``attempt`` must
    leave nothing open when it fails (each try builds its clients anew). Raises
    ``unavailable`` (a :class:`KafkaUnavailableError`) once the time is up, a non-retriable
    :class:`~bus.errors.BusError` as it is, and any other non-retriable Kafka error as
    :class:`KafkaRefusedError`. ``timeout_s`` defaults to :func:`default_start_timeout_s`.

    ``security`` (the client's) lets a try that could not connect be diagnosed: a refused
    password, an untrusted certificate or a listener of another protocol is raised at once
    as its named :class:`KafkaRefusedError`. An ACL refusal is raised as
    :class:`~bus.errors.KafkaAuthorizationError` naming the principal.
    """
    timeout_s = default_start_timeout_s() if timeout_s is None else timeout_s
    started = time.monotonic()
    deadline = started + timeout_s
    waited = False
    last_seen: BaseException | None = None  # what the last try met, before time ran out
    backoff = wait_random_exponential(multiplier=_FIRST_WAIT_S, max=_LONGEST_WAIT_S)

    def wait(state: RetryCallState) -> float:
        return max(0.0, min(backoff(state), deadline - time.monotonic()))

    def log_wait(state: RetryCallState) -> None:
        nonlocal waited, last_seen
        exc = state.outcome.exception() if state.outcome is not None else None
        if exc is not None:
            last_seen = exc
        fields: dict[str, Any] = {
            "what": what,
            "bootstrap": bootstrap_servers,
            "error": _describe(exc) if exc is not None else None,
            "attempt": state.attempt_number,
            "timeout_s": timeout_s,
        }
        if not waited:
            log.warning("kafka.waiting", **fields)
            waited = True
        else:
            log.debug("kafka.waiting", **fields)

    async def diagnosed() -> T:
        try:
            return await attempt()
        except Exception as exc:
            if security is None or not is_connection_failure(exc):
                raise
            refusal = await diagnose_connection(bootstrap_servers, security)
            if refusal is None:
                raise
            log.warning(
                "kafka.refused",
                what=what,
                bootstrap=bootstrap_servers,
                security=security.describe(),
                error=type(refusal).__name__,
                detail=refusal.message,
            )
            raise refusal from exc

    async def bounded() -> T:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no time left to {what}")
        return await asyncio.wait_for(diagnosed(), remaining)

    retrying = AsyncRetrying(
        stop=stop_after_delay(timeout_s),
        wait=wait,
        retry=retry_if_exception(is_transient_failure),
        before_sleep=log_wait,
        reraise=True,
    )
    try:
        result: T = await retrying(bounded)
    except Exception as exc:
        if is_transient_failure(exc):
            # A try cut off by the deadline says less than the error before it.
            last = last_seen if isinstance(exc, TimeoutError) and last_seen else exc
            raise _timed_out(what, bootstrap_servers, timeout_s, last, unavailable) from exc
        # An ACL refusal, raised as it is or inside a bus error (the publisher's start).
        kafka_error = exc.__cause__ if isinstance(exc, BusError) else exc
        principal = security.username if security is not None and security.sasl else None
        if not isinstance(exc, KafkaRefusedError) and kafka_error is not None:
            denied = authorization_error(kafka_error, principal=principal, what=what)
            if denied is not None:
                raise denied from exc
        if isinstance(exc, BusError) or not isinstance(exc, KafkaError):
            raise
        raise KafkaRefusedError(
            f"Kafka at {bootstrap_servers} refused to {what}: {_describe(exc)}",
            fix="check the client settings (bootstrap, topic names, permissions)",
        ) from exc
    if waited:
        log.info(
            "kafka.available",
            what=what,
            bootstrap=bootstrap_servers,
            waited_s=round(time.monotonic() - started, 1),
        )
    return result


async def start_client(
    make: Callable[[], C],
    what: str,
    *,
    bootstrap_servers: str,
    timeout_s: float | None = None,
    security: KafkaSecurity | None = None,
) -> C:
    """Build an aiokafka client with ``make`` and start it, waiting as :func:`wait_for_kafka`.

    A failed try closes the client it built; the next try builds a new one. ``security`` is
    the client's (what ``make`` builds it with), for :func:`wait_for_kafka`'s diagnosis.
    """

    async def attempt() -> C:
        client = make()
        try:
            await client.start()
        except BaseException:
            await close_client(client)
            raise
        return client

    return await wait_for_kafka(
        what, attempt, bootstrap_servers=bootstrap_servers, timeout_s=timeout_s, security=security
    )


async def close_client(client: object) -> None:
    """Close a producer, consumer (``stop``) or admin client (``close``); never raises Kafka's."""
    close = getattr(client, "stop", None) or getattr(client, "close", None)
    if close is None:
        return
    try:
        await close()
    except (KafkaError, OSError) as exc:  # closing: nothing left to save
        log.debug("kafka.close_failed", error=_describe(exc))


def _timed_out(
    what: str,
    bootstrap_servers: str,
    timeout_s: float,
    last: BaseException,
    error: type[KafkaUnavailableError],
) -> KafkaUnavailableError:
    return error(
        f"Kafka at {bootstrap_servers} was not available to {what} within {timeout_s:g} s "
        f"(last error: {_describe(last)})",
        fix=fix_for_unreachable(bootstrap_servers),
    )


class LiveNodeAdmin(AIOKafkaAdminClient):  # type: ignore[misc]
    """An admin client that sends any-broker requests to a broker that is up."""

    async def _send_request(self, request: Any, node_id: int | None = None) -> Any:
        if node_id is None:
            node_id = await self._live_node()
        return await self._client.send(node_id, request)

    async def _live_node(self) -> int | None:
        nodes = [broker.nodeId for broker in self._client.cluster.brokers()]
        random.shuffle(nodes)  # spread the load like aiokafka does, but skip the dead
        for node in nodes:
            if await self._client.ready(node):
                return int(node)
        return int(nodes[0]) if nodes else None
