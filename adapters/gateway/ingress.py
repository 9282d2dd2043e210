"""Ingress: an application posts an event as JSON; the gateway publishes it for its steward.

:class:`Ingress` answers a post (:class:`PostResult`): the body's problems first
(:func:`parse_event`, :mod:`adapters.gateway.bodies`: 400, 404, 422); 403 ``not-steward``
when the event type is not one the client may post; 202 ``{id, type, topic, partition,
offset}`` once Kafka acknowledged the event (``acks=all``); 503 ``kafka-unavailable`` with
``Retry-After`` when it did not. With an ``Idempotency-Key``
(:mod:`adapters.gateway.idempotency`) the key is claimed after the body was found valid
and before the publish:

* a key that completed replays its stored 202 (``replayed=True``); nothing is published;
* a key used for another event name or body: 422 ``idempotency-key-reused``;
* a key whose request is still running in this process: 409 ``idempotency-key-in-use``;
* a key left pending by an attempt that got a 503, or by a gateway that stopped before it
  answered: the event is published again with the event id of the first attempt, so a
  subscriber that has it already drops the duplicate (``ce_source`` + ``ce_id``).

Only a 202 is stored. A refused request (400, 403, 404, 422) claims nothing: it published
nothing, so the draft's promise (a retry has the effect of the first request) holds when
the application fixes the body and sends it with the same key. Several gateway processes
share the table; one that takes over a key another is still publishing publishes it with
the same event id, so subscribers still see it once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import sqlalchemy as sa
from pydantic import SecretBytes

from adapters.db import run_sync
from adapters.gateway.bodies import BodyRejected, parse_event
from adapters.gateway.group_commit import GroupCommit
from adapters.gateway.idempotency import (
    IdempotencyStore,
    Mismatch,
    New,
    Pending,
    Replay,
    idempotency_key_problem,
    parse_idempotency_key,
    request_fingerprint,
)
from adapters.gateway.problems import problem as _problem
from bus.connection import KafkaConnection
from bus.contract.envelope import new_event_id, steward_of
from bus.contract.events import SpbeEvent
from bus.contract.schema import AvroSchema
from bus.contract.standard import load_standard
from bus.errors import (
    ConfigError,
    KafkaRefusedError,
    KafkaUnavailableError,
    LifecycleError,
    PublishError,
)
from bus.lifecycle import Lifecycle
from bus.logs import get_logger
from bus.ops.metrics import expect_published, record_published
from bus.publisher import DEFAULT_DELIVERY_TIMEOUT_MS, Publisher, PublisherConfig
from bus.registry import SchemaRegistry

__all__ = [
    "DEFAULT_RETRY_AFTER_S",
    "BodyRejected",
    "Ingress",
    "PostResult",
    "PostingClient",
    "parse_event",
]

log = get_logger(__name__)

#: The ``Retry-After`` a 503 suggests, in seconds.
DEFAULT_RETRY_AFTER_S: Final = 5


class PostingClient(Protocol):
    """What ingress needs to know of an API client (``bus.ops.api_clients.ClientAccess``)."""

    @property
    def client(self) -> str: ...
    @property
    def source(self) -> str | None: ...
    @property
    def steward(self) -> str | None: ...
    @property
    def postable(self) -> frozenset[str]: ...


@dataclass(frozen=True, slots=True)
class PostResult:
    """The answer to a post: HTTP ``status``, JSON ``body``, headers to add (``Retry-After``).

    ``replayed`` is true when the body is the stored answer of an earlier request with the
    same idempotency key.
    """

    status: int
    body: dict[str, Any]
    replayed: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)


# --- publishing ---------------------------------------------------------------------------

_KAFKA_FAILURES = (PublishError, KafkaUnavailableError, KafkaRefusedError)


class Ingress(Lifecycle):
    """Publishes the events API clients post, one :class:`~bus.publisher.Publisher` per source.

    ``connection`` reaches Kafka as the gateway's principal; ``key_secrets`` holds each
    steward's key secret (by steward id, ``DISDUKCAPIL``) for the event types keyed by a
    pseudonym. A client's publisher starts on its first post, or at :meth:`start` for the
    ``clients`` given. ``registry`` is shared by every publisher when given.
    """

    def __init__(
        self,
        connection: KafkaConnection,
        store: IdempotencyStore,
        *,
        key_secrets: Mapping[str, SecretBytes] | None = None,
        standard: Mapping[str, AvroSchema] | None = None,
        registry: SchemaRegistry | None = None,
        clients: Iterable[PostingClient] = (),
        topic_overrides: Mapping[str, str] | None = None,
        delivery_timeout_ms: int = DEFAULT_DELIVERY_TIMEOUT_MS,
        start_timeout_s: float | None = None,
        retry_after_s: int = DEFAULT_RETRY_AFTER_S,
    ) -> None:
        self._connection = connection
        self.store = store
        self._key_secrets = dict(key_secrets or {})
        self._standard = dict(load_standard() if standard is None else standard)
        self._registry = registry
        self._clients = tuple(clients)
        self._topic_overrides = dict(topic_overrides or {})
        self._delivery_timeout_ms = delivery_timeout_ms
        self._start_timeout_s = start_timeout_s
        self._retry_after_s = retry_after_s
        self._publishers: dict[str, Publisher] = {}
        self._starting = asyncio.Lock()
        self._in_flight: set[tuple[str, str]] = set()
        self._started = False
        #: Answers of accepted posts, stored together when requests arrive together.
        self._completions: GroupCommit[tuple[str, str, int, Mapping[str, Any]]] = GroupCommit(
            store.complete_many, name="gateway-idempotency"
        )

    async def start(self) -> None:
        self._started = True
        for client in self._clients:
            await self._publisher_for(client)
        # spbe_published_total of every topic a client may post to, at 0 until its first
        # post: a steward that posts only through the gateway shows silence after a restart.
        postable = frozenset[str]().union(*(client.postable for client in self._clients))
        topics = (
            self._topic_overrides.get(name, schema.topic)
            for name, schema in self._standard.items()
            if schema.event_type in postable
        )
        expect_published(topic for topic in topics if topic)

    async def stop(self) -> None:
        self._started = False
        publishers, self._publishers = list(self._publishers.values()), {}
        for publisher in publishers:
            await publisher.stop()

    # -- publishers --------------------------------------------------------------------------

    def _config_for(self, source: str, steward: str) -> PublisherConfig:
        secret = self._key_secrets.get(steward)
        pseudonymised = sorted(
            name
            for name, schema in self._standard.items()
            if schema.steward == steward and schema.key_pseudonymised
        )
        if pseudonymised and secret is None:
            raise ConfigError(
                f"{steward}'s events {', '.join(pseudonymised)} are keyed by a pseudonym, and "
                f"the gateway has no key secret for {steward}",
                fix=f"add {steward}'s key secret to the gateway's key secrets",
            )
        settings: dict[str, Any] = {
            "bootstrap_servers": self._connection.bootstrap_servers,
            "security": self._connection.security,
            "source": source,
            "key_secret": secret,
            "topic_overrides": self._topic_overrides,
            "delivery_timeout_ms": self._delivery_timeout_ms,
        }
        if self._start_timeout_s is not None:
            settings["start_timeout_s"] = self._start_timeout_s
        return PublisherConfig.model_validate(settings)

    async def _publisher_for(self, client: PostingClient) -> Publisher:
        source = client.source
        steward = client.steward or (steward_of(source) if source else None)
        if source is None or steward is None:
            raise ConfigError(
                f"the API client {client.client} is no steward application, so it has no "
                "ce_source to publish with",
                fix="name one of the steward's applications as the client (api_clients:)",
            )
        publisher = self._publishers.get(source)
        if publisher is not None:
            return publisher
        async with self._starting:
            publisher = self._publishers.get(source)
            if publisher is None:
                publisher = Publisher(
                    self._config_for(source, steward),
                    registry=self._registry,
                    standard=self._standard,
                )
                await publisher.start()
                self._publishers[source] = publisher
        return publisher

    # -- posting -----------------------------------------------------------------------------

    def _unavailable(self, title: str, detail: str, name: str) -> PostResult:
        document = _problem(503, name, title, detail)
        return PostResult(503, document, headers={"Retry-After": str(self._retry_after_s)})

    async def post(
        self,
        client: PostingClient,
        event_name: str,
        body: bytes,
        idempotency_key: str | None,
    ) -> PostResult:
        """Publish the event ``body`` holds for ``client``; the answer to give (module doc).

        ``idempotency_key`` is the ``Idempotency-Key`` header's value, as sent.
        """
        if not self._started:
            raise LifecycleError(
                "the ingress is not started",
                fix="use 'async with Ingress(...)' or await ingress.start() first",
            )
        schema = self._standard.get(event_name)
        if schema is not None and schema.event_type not in client.postable:
            detail = (
                "this client may post only the event types of the steward whose application it "
                "is; subscribers receive the others"
            )
            title = "Not the steward of this event type"
            return PostResult(403, _problem(403, "not-steward", title, detail))
        try:
            event = parse_event(event_name, body, standard=self._standard)
        except BodyRejected as rejected:
            return PostResult(rejected.status, rejected.problem)
        if idempotency_key is None:
            return await self._publish(client, event, new_event_id(), None)
        key = parse_idempotency_key(idempotency_key)
        if (problem := idempotency_key_problem(key)) is not None:
            detail = f"the Idempotency-Key {problem}; use 1 to 255 printable ASCII characters"
            title = "Invalid Idempotency-Key"
            return PostResult(400, _problem(400, "invalid-idempotency-key", title, detail))
        slot = (client.client, key)
        if slot in self._in_flight:
            detail = "a request with this Idempotency-Key is still being processed; retry later"
            title = "Idempotency-Key in use"
            return PostResult(409, _problem(409, "idempotency-key-in-use", title, detail))
        self._in_flight.add(slot)
        try:
            return await self._post_once(client, event_name, body, event, key)
        finally:
            self._in_flight.discard(slot)

    async def _post_once(
        self, client: PostingClient, event_name: str, body: bytes, event: SpbeEvent, key: str
    ) -> PostResult:
        fingerprint = request_fingerprint(event_name, body)
        try:
            claim = await run_sync(
                self.store.claim, client.client, key, fingerprint, new_event_id()
            )
        except sa.exc.SQLAlchemyError as exc:
            log.warning(
                "gateway.idempotency_store_failed", client=client.client, error=type(exc).__name__
            )
            detail = "the gateway cannot reach its idempotency store; retry with the same key"
            return self._unavailable("Idempotency store unavailable", detail, "store-unavailable")
        if isinstance(claim, Replay):
            return PostResult(claim.status, claim.response, replayed=True)
        if isinstance(claim, Mismatch):
            detail = (
                "this Idempotency-Key was used for another request (another event or body); "
                "use a new key for a new event"
            )
            title = "Idempotency-Key reused"
            return PostResult(422, _problem(422, "idempotency-key-reused", title, detail))
        if isinstance(claim, Pending):
            log.info("gateway.event_republished", client=client.client, event_id=claim.event_id)
        assert isinstance(claim, New | Pending)
        return await self._publish(client, event, claim.event_id, key)

    async def _publish(
        self, client: PostingClient, event: SpbeEvent, event_id: str, key: str | None
    ) -> PostResult:
        try:
            publisher = await self._publisher_for(client)
            result = await publisher.publish(event, event_id=event_id)
        except _KAFKA_FAILURES as exc:
            name = event.event_name
            topic = self._topic_overrides.get(name, self._standard[name].topic)
            record_published(exc, topic=topic)
            log.warning(
                "gateway.publish_failed",
                client=client.client,
                event_id=event_id,
                type=event.event_name,
                error=exc.message,
                retriable=exc.retriable,
            )
            retry = "send the same request again with the same Idempotency-Key"
            if key is None:
                retry = "send it again, with an Idempotency-Key so a retry cannot publish it twice"
            detail = f"Kafka did not acknowledge the event; {retry}"
            return self._unavailable("Kafka unavailable", detail, "kafka-unavailable")
        record_published(result)
        schema = self._standard[event.event_name]
        response = {
            "id": result.event_id,
            "type": schema.event_type,
            "topic": result.topic,
            "partition": result.partition,
            "offset": result.offset,
        }
        log.debug("gateway.event_accepted", client=client.client, **response)
        if key is not None:
            try:
                await self._completions.append([(client.client, key, 202, response)])
            except sa.exc.SQLAlchemyError as exc:
                # The event is acknowledged: answer so. A retry with the key finds it
                # pending and publishes the same event id again, which subscribers drop.
                log.warning(
                    "gateway.idempotency_complete_failed",
                    client=client.client,
                    event_id=result.event_id,
                    error=type(exc).__name__,
                )
        return PostResult(202, response)
