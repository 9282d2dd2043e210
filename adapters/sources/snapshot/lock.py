"""One run at a time per snapshot: a session-level advisory lock in the steward's database.

Two runs of one snapshot would race for its progress row and publish every row twice.
PostgreSQL (``pg_try_advisory_lock``) and MariaDB/MySQL (``GET_LOCK``) hold the lock for
as long as the run's connection lives: a run that crashes or is killed loses its
connection, and with it the lock, so the next run can resume at once. SQLite has no such
lock; like the outbox relay, one process per database file is the rule there.
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from adapters.db import Dialect, dialect_of
from adapters.sources.snapshot.rows import SnapshotError

__all__ = ["RunLock"]


class RunLock:
    """The lock of snapshot ``name`` in ``engine``'s database (blocking calls)."""

    def __init__(self, engine: Engine, name: str) -> None:
        self._engine = engine
        self._name = name
        self._dialect = dialect_of(engine)
        digest = hashlib.sha256(f"{engine.url.database}/{name}".encode()).digest()
        self._pg_key = int.from_bytes(digest[:8], "big", signed=True)
        self._mariadb_name = f"spbe_snapshot_{digest.hex()[:40]}"
        self._connection: Connection | None = None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`SnapshotError` when another run holds it."""
        if self._dialect is Dialect.SQLITE or self._connection is not None:
            return
        conn = self._engine.connect()
        try:
            if self._dialect is Dialect.POSTGRESQL:
                got = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": self._pg_key})
            else:
                got = conn.execute(sa.text("SELECT GET_LOCK(:n, 0)"), {"n": self._mariadb_name})
            held = bool(got.scalar())
            conn.commit()
        except BaseException:
            conn.close()
            raise
        if not held:
            conn.close()
            raise SnapshotError(
                f"another run of snapshot {self._name!r} holds its lock in this database",
                fix="wait for it to finish (or stop it: it resumes from its last batch)",
            )
        self._connection = conn

    def release(self) -> None:
        """Give the lock back (closing the connection alone would leave it to the pool)."""
        conn, self._connection = self._connection, None
        if conn is None:
            return
        try:
            if self._dialect is Dialect.POSTGRESQL:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": self._pg_key})
            else:
                conn.execute(sa.text("SELECT RELEASE_LOCK(:n)"), {"n": self._mariadb_name})
            conn.commit()
        finally:
            conn.invalidate()
            conn.close()
