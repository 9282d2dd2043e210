"""Idempotency keys of posted events: a retried POST publishes once, answers the same.

An application that posts an event and loses the answer (a timeout, a dropped
connection) sends the request again with the same ``Idempotency-Key`` header
(draft-ietf-httpapi-idempotency-key-header). The table ``spbe_gateway_idempotency``
remembers each client's keys::

    client        the OAuth client (its Kafka principal); part of the primary key
    key           the client's Idempotency-Key, 1..255 printable ASCII; primary key with client
    body_sha256   SHA-256 of the event name and the body bytes (the request's fingerprint)
    event_id      the ce_id the event is published with, chosen when the key is first claimed
    status        NULL while the request is pending, else the HTTP status of its answer
    response      the JSON body of that answer (NULL while pending)
    created_at    when the key was first claimed (UTC); keys expire ``ttl`` after it

:meth:`IdempotencyStore.claim` is called before the publish and answers one of:

* :class:`New` — first use: the row is pending with a new event id; publish with it.
* :class:`Replay` — the key completed: return its stored answer, publish nothing.
* :class:`Mismatch` — the key was used for another request (a different fingerprint).
* :class:`Pending` — a row left pending by an earlier attempt (Kafka did not acknowledge,
  or the gateway stopped between claim and answer): publish again with the row's event id,
  so a subscriber that already has the event drops the duplicate (it dedupes on
  ``ce_source`` + ``ce_id``).

A key expires ``ttl`` (default 24 h) after its first claim: a later claim of it is a first
use again, and :meth:`IdempotencyStore.purge` deletes expired rows. The methods block:
from async code call them through :func:`adapters.db.run_sync`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from adapters.db import UtcDateTime
from bus.errors import ConfigError

__all__ = [
    "DEFAULT_IDEMPOTENCY_TTL",
    "IDEMPOTENCY_TABLE",
    "MAX_KEY_LENGTH",
    "Claim",
    "IdempotencyStore",
    "Mismatch",
    "New",
    "Pending",
    "Replay",
    "idempotency_key_problem",
    "idempotency_table",
    "parse_idempotency_key",
    "request_fingerprint",
]

IDEMPOTENCY_TABLE: Final = "spbe_gateway_idempotency"
#: How long a key is remembered after its first claim.
DEFAULT_IDEMPOTENCY_TTL: Final = timedelta(hours=24)
MAX_KEY_LENGTH: Final = 255
_CLIENT_LENGTH: Final = 255
_EVENT_ID_LENGTH: Final = 64
#: Claim attempts: a second one follows a claim that lost an insert race to another process.
_ATTEMPTS: Final = 3


@dataclass(frozen=True, slots=True)
class New:
    """The key's first use: the row is pending; publish with ``event_id``."""

    event_id: str


@dataclass(frozen=True, slots=True)
class Replay:
    """The key completed before: answer ``status`` with ``response`` again."""

    status: int
    response: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Mismatch:
    """The key was claimed for another request (another event name or body)."""


@dataclass(frozen=True, slots=True)
class Pending:
    """An earlier attempt left the key pending: publish again with the same ``event_id``."""

    event_id: str


Claim = New | Replay | Mismatch | Pending


def idempotency_key_problem(key: str) -> str | None:
    """What is wrong with ``key`` as an idempotency key (never the key itself), or ``None``."""
    if not key:
        return "is empty"
    if len(key) > MAX_KEY_LENGTH:
        return f"is longer than {MAX_KEY_LENGTH} characters"
    if not all(" " <= char <= "~" for char in key):
        return "holds a character that is not printable ASCII"
    return None


def parse_idempotency_key(header: str) -> str:
    """The key an ``Idempotency-Key`` header value carries.

    The draft defines the value as a Structured Field String (``"8e03978e-..."``); a bare
    value is taken as it is, for clients that leave the quotes out. The result may still
    break the rules :func:`idempotency_key_problem` checks.
    """
    value = header.strip(" \t")
    if len(value) >= 2 and value[0] == value[-1] == '"':
        inner, out, escaped = value[1:-1], [], False
        for char in inner:
            if escaped or char != "\\":
                out.append(char)
                escaped = False
            else:
                escaped = True
        return "".join(out)
    return value


def request_fingerprint(event_name: str, body: bytes) -> str:
    """SHA-256 (hex) of the event name and the body: what a key's reuse must repeat."""
    digest = hashlib.sha256(event_name.encode("utf-8"))
    digest.update(b"\x00")
    digest.update(body)
    return digest.hexdigest()


def idempotency_table(metadata: sa.MetaData | None = None) -> sa.Table:
    """The table ``spbe_gateway_idempotency`` in ``metadata`` (a new one by default)."""
    table = sa.Table(
        IDEMPOTENCY_TABLE,
        metadata if metadata is not None else sa.MetaData(),
        sa.Column("client", sa.String(_CLIENT_LENGTH), primary_key=True),
        sa.Column("key", sa.String(MAX_KEY_LENGTH), primary_key=True),
        sa.Column("body_sha256", sa.String(64), nullable=False),
        sa.Column("event_id", sa.String(_EVENT_ID_LENGTH), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("response", sa.JSON(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
    )
    sa.Index(f"ix_{IDEMPOTENCY_TABLE}_created_at", table.c.created_at)
    return table


def _now() -> datetime:
    return datetime.now(UTC)


class IdempotencyStore:
    """The idempotency keys of every client in one SQL database (SQLite, PostgreSQL, MariaDB).

    ``ttl`` is how long a key is remembered; ``clock`` says what time it is (UTC-aware).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        ttl: timedelta = DEFAULT_IDEMPOTENCY_TTL,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        if ttl <= timedelta(0):
            raise ConfigError(
                "the idempotency key lifetime must be longer than 0",
                fix="use the default of 24 hours, or a positive duration",
            )
        self._engine = engine
        self._table = idempotency_table()
        self.ttl = ttl
        self._clock = clock

    def create_table(self) -> None:
        """Create the table and its index; what exists is kept."""
        with self._engine.begin() as conn:
            self._table.metadata.create_all(conn, checkfirst=True)

    def _where(self, client: str, key: str) -> sa.ColumnElement[bool]:
        c = self._table.c
        return sa.and_(c.client == client, c.key == key)

    def claim(self, client: str, key: str, body_sha256: str, event_id: str) -> Claim:
        """Claim ``key`` of ``client`` for the request with fingerprint ``body_sha256``.

        ``event_id`` is used only when the key is new (or expired). Raises
        :class:`~bus.errors.ConfigError` for a key that breaks its rules.
        """
        if (problem := idempotency_key_problem(key)) is not None:
            raise ConfigError(
                f"the idempotency key {problem}",
                fix=f"use 1 to {MAX_KEY_LENGTH} printable ASCII characters, e.g. a UUID",
            )
        for _ in range(_ATTEMPTS):
            try:
                claimed = self._claim_once(client, key, body_sha256, event_id)
            except sa.exc.IntegrityError:
                continue  # another process inserted the key first: read its row
            if claimed is not None:
                return claimed
        raise ConfigError(
            "the idempotency key could not be claimed: its row changed under every attempt",
            fix="retry the request",
            retriable=True,
        )

    def _claim_once(self, client: str, key: str, body_sha256: str, event_id: str) -> Claim | None:
        c = self._table.c
        now = self._clock()
        with self._engine.begin() as conn:
            row = conn.execute(
                sa.select(c.body_sha256, c.event_id, c.status, c.response, c.created_at).where(
                    self._where(client, key)
                )
            ).first()
            fresh = {
                "body_sha256": body_sha256,
                "event_id": event_id,
                "status": None,
                "response": None,
                "created_at": now,
            }
            if row is None:
                conn.execute(sa.insert(self._table).values(client=client, key=key, **fresh))
                return New(event_id)
            if row.created_at <= now - self.ttl:
                # Expired: the key starts again. The row's creation time guards the update
                # against another process doing the same at once.
                updated = conn.execute(
                    sa.update(self._table)
                    .where(self._where(client, key), c.created_at == row.created_at)
                    .values(**fresh)
                )
                return New(event_id) if updated.rowcount == 1 else None
            if row.body_sha256 != body_sha256:
                return Mismatch()
            if row.status is None:
                return Pending(row.event_id)
            response: Mapping[str, Any] = row.response
            return Replay(int(row.status), dict(response))

    def complete(self, client: str, key: str, status: int, response: Mapping[str, Any]) -> None:
        """Store the answer of ``key``'s request; later claims replay it."""
        self.complete_many([(client, key, status, response)])

    def complete_many(self, answers: Sequence[tuple[str, str, int, Mapping[str, Any]]]) -> None:
        """Store many answers ``(client, key, status, response)`` in one transaction."""
        if not answers:
            return
        c = self._table.c
        statement = (
            sa.update(self._table)
            .where(c.client == sa.bindparam("b_client"), c.key == sa.bindparam("b_key"))
            .values(
                status=sa.bindparam("b_status"),
                response=sa.bindparam("b_response", type_=c.response.type),
            )
        )
        rows = [
            {"b_client": client, "b_key": key, "b_status": status, "b_response": dict(response)}
            for client, key, status, response in answers
        ]
        with self._engine.begin() as conn:
            conn.execute(statement, rows)

    def purge(self) -> int:
        """Delete the rows of expired keys; return how many."""
        cutoff = self._clock() - self.ttl
        with self._engine.begin() as conn:
            deleted = conn.execute(sa.delete(self._table).where(self._table.c.created_at <= cutoff))
        return int(deleted.rowcount)
