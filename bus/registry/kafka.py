"""The schema registry on Kafka itself: a compacted one-partition topic, no registry server.

Every reader folds the whole topic into a :class:`~bus.registry.state.RegistryState` at
start and reads on from there on :meth:`SchemaRegistry.refresh`, with a consumer assigned
to the partition by hand (no consumer group, nothing committed). A registration is one
record written with an idempotent producer and ``acks=all``.

Two registrars may take the same version number at once. The earlier record in the log
wins; the other registrar sees that after its write, writes the winner again (compaction
keeps a key's *last* record, which must not be the loser's), checks its schema against the
new history and tries the next number.

Why this module is longer than 400 lines: it is the registry's IO, one class whose reads
and writes share a state and two locks. The pure parts have modules of their own:
records in ``records.py``, the state folded from them in ``state.py``, the topic's
settings in ``topic.py``, the errors in ``errors.py``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Mapping
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from bus.connection import KafkaConnection, as_connection
from bus.contract.compatibility import CompatibilityMode, check_compatible, parse_mode
from bus.contract.schema import AvroSchema
from bus.errors import ConfigError, IncompatibleSchemaError, LifecycleError, UnknownSchemaError
from bus.lifecycle import Lifecycle
from bus.logs import get_logger
from bus.registry.errors import (
    RegistryError,
    RegistryUnavailableError,
    SchemasRefusedError,
)
from bus.registry.records import (
    RegisteredSchema,
    SubjectConfig,
    default_principal,
    subject_of,
    utc_now,
    validate_subject,
)
from bus.registry.state import FoldOutcome, RegistryState, Skipped
from bus.registry.topic import ensure_topic
from bus.startup import (
    LiveNodeAdmin,
    close_client,
    default_start_timeout_s,
    fix_for_unreachable,
    is_transient_failure,
    wait_for_kafka,
)

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "DEFAULT_TOPIC",
    "MAX_REGISTER_ATTEMPTS",
    "SchemaRegistry",
    "register_standard",
]

DEFAULT_TOPIC = "_spbe.schemas"
#: Longest wait for Kafka in one operation (connecting, reading to the end, one write).
DEFAULT_TIMEOUT_S = 30.0
#: How many version numbers a registration may lose to concurrent registrars in a row.
MAX_REGISTER_ATTEMPTS = 5

_PARTITION = 0
_CLIENT_ID = "spbe-bus-registry"
_TOPIC_NAME = re.compile(r"[a-zA-Z0-9._-]{1,249}")
_POLL_S = 0.2
_FETCH_WAIT_MS = 50  # the broker answers an empty fetch this fast: reads end sooner

log = get_logger(__name__)
T = TypeVar("T")


class SchemaRegistry(Lifecycle):
    """Registers, checks and resolves event schemas held in a compacted Kafka topic.

    Use it with ``async with SchemaRegistry(kafka) as registry:`` or call
    :meth:`start` and :meth:`stop`. It is a :class:`~bus.contract.codec.SchemaResolver`:
    :meth:`schema_for` answers from what was read, :meth:`lookup` reads on once when a
    fingerprint is unknown. ``kafka`` is a :class:`~bus.connection.KafkaConnection`, or
    bootstrap servers with the security of the ``SPBE_KAFKA_*`` environment.
    """

    def __init__(
        self,
        kafka: KafkaConnection | str,
        *,
        topic: str = DEFAULT_TOPIC,
        principal: str | None = None,
        default_mode: CompatibilityMode | str = CompatibilityMode.BACKWARD,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        start_timeout_s: float | None = None,
    ) -> None:
        if isinstance(kafka, str) and not kafka.strip():
            raise ConfigError(
                "bootstrap_servers is empty", fix="give HOST:PORT of at least one broker"
            )
        if not _TOPIC_NAME.fullmatch(topic):
            raise ConfigError(
                f"registry topic {topic!r} is not a valid Kafka topic name",
                fix="use 1 to 249 characters of a-z, A-Z, 0-9, '.', '_' and '-'",
            )
        if start_timeout_s is None:
            start_timeout_s = default_start_timeout_s()
        for name, value in (("timeout_s", timeout_s), ("start_timeout_s", start_timeout_s)):
            if value <= 0:
                raise ConfigError(f"{name} must be positive, found {value!r}")
        self.connection = as_connection(kafka)
        self.bootstrap_servers = self.connection.bootstrap_servers
        self.topic = topic
        self.principal = (principal or "").strip() or default_principal()
        self.default_mode = parse_mode(default_mode)
        self.timeout_s = timeout_s
        self.start_timeout_s = start_timeout_s
        self._state = RegistryState(self.default_mode)
        self._tp = TopicPartition(topic, _PARTITION)
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._read_lock = asyncio.Lock()
        self._write_lock = asyncio.Lock()

    def __repr__(self) -> str:
        state = "started" if self.started else "stopped"
        return f"SchemaRegistry({self.bootstrap_servers!r}, topic={self.topic!r}, {state})"

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self._consumer is not None and self._producer is not None

    async def start(self) -> None:
        """Connect, create the registry topic if it is missing, and read it to its end.

        A cluster that is away or failing over is waited for (and tried again with
        backoff) up to ``start_timeout_s``; then
        :class:`~bus.registry.errors.RegistryUnavailableError` is raised.
        :class:`~bus.registry.errors.RegistryError` says at once that the topic exists but
        cannot hold a registry (several partitions, not compacted).
        """
        if self.started:
            return

        async def attempt() -> None:
            self._state = RegistryState(self.default_mode)
            try:
                await self._bounded("connect to", self._open())
            except BaseException:
                await self._close_clients()
                raise

        await wait_for_kafka(
            f"open the schema registry (topic {self.topic})",
            attempt,
            bootstrap_servers=self.bootstrap_servers,
            security=self.connection.security,
            timeout_s=self.start_timeout_s,
            unavailable=RegistryUnavailableError,
        )
        log.info(
            "registry.started",
            topic=self.topic,
            subjects=len(self._state.subjects()),
            next_offset=self._state.next_offset,
        )

    async def stop(self) -> None:
        """Close the Kafka clients; :meth:`start` connects again and reads the topic anew."""
        if self._consumer is None and self._producer is None:
            return
        await self._close_clients()
        log.info("registry.stopped", topic=self.topic)

    # -- reading ---------------------------------------------------------------------------

    async def refresh(self) -> None:
        """Read the registry topic from where the last read stopped to its current end."""
        self._require_started()
        await self._bounded("read", self._read_to_end())

    def subjects(self) -> list[str]:
        """Every subject with at least one registered version, sorted."""
        return self._ready().subjects()

    def versions(self, subject: str) -> list[RegisteredSchema]:
        """The subject's versions, oldest first (empty for an unknown subject)."""
        return self._ready().versions(subject)

    def version(self, subject: str, version: int) -> RegisteredSchema | None:
        return self._ready().version(subject, version)

    def latest(self, subject: str) -> RegisteredSchema | None:
        return self._ready().latest(subject)

    def find(self, subject: str, fingerprint: int) -> RegisteredSchema | None:
        """The subject's version whose schema has this fingerprint, or ``None``."""
        return self._ready().find(subject, fingerprint)

    def mode_of(self, subject: str) -> CompatibilityMode:
        """The compatibility mode in force for the subject (its setting, else the default)."""
        return self._ready().mode_of(subject)

    def config_of(self, subject: str) -> SubjectConfig | None:
        """The subject's settings record; ``None`` when it runs on the default mode."""
        return self._ready().config_of(subject)

    @property
    def skipped(self) -> list[Skipped]:
        """Records of the topic that could not be read (and were left out)."""
        return list(self._ready().skipped)

    def schema_for(self, fingerprint: int) -> AvroSchema | None:
        """The registered schema with this fingerprint, from what was read; else ``None``."""
        return self._ready().schema_for(fingerprint)

    async def lookup(self, fingerprint: int) -> AvroSchema:
        """The registered schema with this fingerprint, reading on once if it is unknown.

        Raises :class:`~bus.errors.UnknownSchemaError` when the registry does not hold it.
        """
        found = self.schema_for(fingerprint)
        if found is None:
            await self.refresh()
            found = self.schema_for(fingerprint)
        if found is None:
            raise UnknownSchemaError(fingerprint)
        return found

    # -- writing ---------------------------------------------------------------------------

    async def register(self, schema: AvroSchema, *, subject: str | None = None) -> RegisteredSchema:
        """Register ``schema`` under ``subject`` (default: its event type); return its version.

        A schema whose fingerprint the subject already holds returns that version and
        writes nothing. Otherwise the schema is checked against the subject's history in
        the subject's mode; :class:`~bus.errors.IncompatibleSchemaError` names each field
        that breaks it, and nothing is written.
        """
        self._require_started()
        subject = validate_subject(subject_of(schema) if subject is None else subject)
        async with self._write_lock:
            for attempt in range(1, MAX_REGISTER_ATTEMPTS + 1):
                await self.refresh()
                await self._restore_winners(subject)
                existing = self._state.find(subject, schema.fingerprint)
                if existing is not None:
                    return existing
                mode = self._state.mode_of(subject)
                check_compatible(subject, schema, self._state.history(subject), mode)
                candidate = RegisteredSchema(
                    subject=subject,
                    version=self._state.next_version(subject),
                    schema=schema,
                    compatibility=mode,
                    principal=self.principal,
                    registered_at=utc_now(),
                )
                offset = await self._write(candidate.key, candidate.to_value())
                await self.refresh()
                winner = self._state.version(subject, candidate.version)
                if winner is not None and winner.offset == offset:
                    log.info(
                        "registry.registered",
                        topic=self.topic,
                        subject=subject,
                        version=winner.version,
                        fingerprint=winner.fingerprint_hex,
                        mode=mode.value,
                        offset=offset,
                    )
                    return winner
                log.info(
                    "registry.version_taken",
                    topic=self.topic,
                    subject=subject,
                    version=candidate.version,
                    attempt=attempt,
                )
        raise RegistryError(
            f"could not register {schema.name} under {subject}: {MAX_REGISTER_ATTEMPTS} "
            "attempts in a row lost their version number to other registrars",
            fix="register again; if it keeps failing, look for a registrar writing in a loop",
        )

    async def set_mode(self, subject: str, mode: CompatibilityMode | str) -> SubjectConfig:
        """Set the subject's compatibility mode; returns the setting in force afterwards."""
        self._require_started()
        subject = validate_subject(subject)
        mode = parse_mode(mode)
        async with self._write_lock:
            await self.refresh()
            current = self._state.config_of(subject)
            if current is not None and current.compatibility is mode:
                return current
            previous = self._state.mode_of(subject)
            config = SubjectConfig(subject, mode, self.principal, utc_now())
            await self._write(config.key, config.to_value())
            await self.refresh()
        log.info(
            "registry.mode_changed",
            topic=self.topic,
            subject=subject,
            mode=mode.value,
            previous=previous.value,
        )
        return self._state.config_of(subject) or config

    # -- Kafka -----------------------------------------------------------------------------

    def _ready(self) -> RegistryState:
        self._require_started()
        return self._state

    def _require_started(self) -> None:
        if not self.started:
            raise LifecycleError(
                f"the schema registry on topic {self.topic} is not started",
                fix="call 'await registry.start()' first, or use 'async with SchemaRegistry(...)'",
            )

    async def _bounded(self, what: str, operation: Awaitable[T]) -> T:
        """Await ``operation`` for at most ``timeout_s``; Kafka failures become RegistryErrors."""
        try:
            return await asyncio.wait_for(operation, self.timeout_s)
        except TimeoutError:
            raise RegistryUnavailableError(
                f"Kafka at {self.bootstrap_servers} did not answer within {self.timeout_s:g} s "
                f"when trying to {what} the schema registry (topic {self.topic})",
                fix=fix_for_unreachable(self.bootstrap_servers),
            ) from None
        except (KafkaError, OSError) as exc:
            retriable = is_transient_failure(exc)
            cls = RegistryUnavailableError if retriable else RegistryError
            detail = str(exc)
            if not detail.startswith(type(exc).__name__):
                detail = f"{type(exc).__name__}: {detail}"
            raise cls(
                f"cannot {what} the schema registry (topic {self.topic}) on Kafka at "
                f"{self.bootstrap_servers}: {detail}",
                fix=fix_for_unreachable(self.bootstrap_servers) if retriable else None,
            ) from exc

    async def _open(self) -> None:
        admin = LiveNodeAdmin(
            **self.connection.aiokafka_options(),
            client_id=_CLIENT_ID,
            request_timeout_ms=int(self.timeout_s * 1000),
        )
        try:
            await admin.start()
            await ensure_topic(admin, self.topic)
        finally:
            await close_client(admin)
        self._consumer = AIOKafkaConsumer(
            **self.connection.aiokafka_options(),
            client_id=_CLIENT_ID,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=_FETCH_WAIT_MS,
            request_timeout_ms=int(self.timeout_s * 1000),
        )
        await self._consumer.start()
        self._consumer.assign([self._tp])
        await self._consumer.seek_to_beginning(self._tp)
        self._producer = AIOKafkaProducer(
            **self.connection.aiokafka_options(),
            client_id=_CLIENT_ID,
            acks="all",
            enable_idempotence=True,
            request_timeout_ms=int(self.timeout_s * 1000),
        )
        await self._producer.start()
        await self._read_to_end()

    async def _close_clients(self) -> None:
        consumer, producer = self._consumer, self._producer
        self._consumer = self._producer = None
        for client in (consumer, producer):
            if client is not None:
                try:
                    await client.stop()
                except (KafkaError, OSError) as exc:  # closing: nothing left to save
                    log.warning("registry.close_failed", topic=self.topic, error=str(exc))

    async def _read_to_end(self) -> None:
        consumer = self._consumer
        if consumer is None:
            raise LifecycleError(f"the schema registry on topic {self.topic} was stopped")
        async with self._read_lock:
            end = (await consumer.end_offsets([self._tp]))[self._tp]
            while await consumer.position(self._tp) < end:
                batch = await consumer.getmany(self._tp, timeout_ms=int(_POLL_S * 1000))
                for record in batch.get(self._tp, []):
                    self._fold(record.offset, record.key, record.value)

    def _fold(self, offset: int, key: bytes | None, value: bytes | None) -> None:
        outcome = self._state.apply(offset, key, value)
        if outcome is FoldOutcome.SKIPPED:
            reason = self._state.skipped[-1].reason
            log.warning("registry.record_skipped", topic=self.topic, offset=offset, reason=reason)
        elif outcome is FoldOutcome.SHADOWED:
            log.info("registry.record_shadowed", topic=self.topic, offset=offset)
        elif outcome is FoldOutcome.DELETED:
            log.warning("registry.record_deleted", topic=self.topic, offset=offset)

    async def _write(self, key: bytes, value: bytes) -> int:
        producer = self._producer
        if producer is None:
            raise LifecycleError(f"the schema registry on topic {self.topic} was stopped")
        sent = producer.send_and_wait(self.topic, value, key=key, partition=_PARTITION)
        metadata = await self._bounded("write to", sent)
        offset: int = metadata.offset
        return offset

    async def _restore_winners(self, subject: str) -> None:
        """Write again each version whose key was last written by a losing registrar."""
        restored = self._state.shadowed(subject)
        for winner in restored:
            await self._write(winner.key, winner.to_value())
            log.info(
                "registry.version_restored",
                topic=self.topic,
                subject=subject,
                version=winner.version,
            )
        if restored:
            await self.refresh()


async def register_standard(
    registry: SchemaRegistry, schemas: Mapping[str, AvroSchema]
) -> list[RegisteredSchema]:
    """Register every schema (e.g. a directory from ``load_schema_dir``), each in its subject.

    One incompatible schema does not stop the others: every compatible one is registered,
    then :class:`~bus.registry.errors.SchemasRefusedError` lists the refused ones.
    """
    registered: list[RegisteredSchema] = []
    refused: list[IncompatibleSchemaError] = []
    for name in sorted(schemas):
        try:
            registered.append(await registry.register(schemas[name]))
        except IncompatibleSchemaError as exc:
            refused.append(exc)
    if refused:
        raise SchemasRefusedError(registered, refused)
    return registered
