"""Delivery ledger: ``who_received`` with 1,000,000 deliveries recorded in PostgreSQL.

A ledger database of its own gets ``spbe_ledger`` from :func:`create_ledger_table` (with
its index and append-only triggers) and is filled by one ``COPY`` with ``entries``
deliveries of ``subjects`` residents (valid synthetic NIKs, each a ledger subject under
the bench's ledger secret) to twelve subscriptions, spread over a year. Then
``LedgerStore.who_received`` (the call behind ``spbe-bus ledger who-received``: the NIK
check, its HMAC, the indexed query, the entries and the summary) is timed for
``queries`` random residents, with no window and with a 30-day one; the goal reads the
p99 of the first. Last, ``LedgerStore.append`` is timed in batches of
:data:`APPEND_BATCH` on the filled table, the write a delivering service makes before
each delivery (reported, no goal).
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from adapters.db import create_engine
from adapters.ledger import LedgerStore, create_ledger_table
from bench.stats import percentile
from bus.ledger import LedgerEntry, LedgerKind, LedgerSubjects

__all__ = [
    "APPEND_BATCH",
    "create_database",
    "drop_database",
    "figures",
    "measure",
    "synthetic_nik",
]

SECRET = b"bench-ledger-secret-0123456789abcdef"
APPEND_BATCH = 500
APPEND_ENTRIES = 50_000
WINDOW = timedelta(days=30)
_START = datetime(2026, 1, 1, tzinfo=UTC)
_YEAR_S = 365 * 24 * 3600
_COLUMNS = (
    "subject, event_id, event_type, subscriber, opd, purpose, legal_basis, kind, delivered_at"
)
_SUBSCRIPTIONS = [
    (f"{opd.lower()}.{use}", opd, f"pemanfaatan data kependudukan untuk {use}", f"PKS {n}/2026")
    for n, (opd, use) in enumerate(
        [
            ("DINSOS", "bansos"),
            ("DINSOS", "dtks"),
            ("DPMPTSP", "izin"),
            ("BAPENDA", "pbb"),
            ("BAPENDA", "bphtb"),
            ("DINKES", "jkn"),
            ("DISDIK", "ppdb"),
            ("BPBD", "pengungsi"),
            ("DISNAKER", "kartu_kuning"),
            ("RSUD", "rekam_medis"),
            ("BKPSDM", "pegawai"),
            ("KECAMATAN", "surat_pengantar"),
        ],
        1,
    )
]
_EVENT_TYPES = ("PendudukUpdated", "PendudukUpdated", "PendudukMoved", "PendudukRegistered")


def synthetic_nik(i: int) -> str:
    """The ``i``-th of 9,999 x 28 x 12 x 10 distinct valid NIKs (women, kecamatan 327302)."""
    day = 41 + (i // 9999) % 28
    month = 1 + (i // 279_972) % 12
    year = 90 + (i // 3_359_664) % 10
    return f"327302{day:02d}{month:02d}{year:02d}{i % 9999 + 1:04d}"


def create_database(server_url: str, prefix: str = "bench_ledger") -> str:
    """A new, empty database on the server of ``server_url``; its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return sa.engine.make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, url: str) -> None:
    """Drop the database of ``url`` (made by :func:`create_database`)."""
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {sa.engine.make_url(url).database}"))
    admin.dispose()


def _fill(engine: sa.Engine, subjects: Sequence[str], entries: int, rng: random.Random) -> None:
    raw = engine.raw_connection()
    try:
        psycopg_connection: Any = raw.driver_connection  # psycopg's own: it has COPY
        with (
            psycopg_connection.cursor() as cursor,
            cursor.copy(f"COPY spbe_ledger ({_COLUMNS}) FROM STDIN") as copy,
        ):
            for i in range(entries):
                subscriber, opd, purpose, basis = rng.choice(_SUBSCRIPTIONS)
                kind = LedgerKind.SNAPSHOT if i % 20 == 0 else LedgerKind.DELIVERY
                copy.write_row(
                    (
                        rng.choice(subjects),
                        str(uuid.UUID(int=i, version=4)),
                        rng.choice(_EVENT_TYPES),
                        subscriber,
                        opd,
                        purpose,
                        basis,
                        kind.value,
                        _START + timedelta(seconds=rng.randrange(_YEAR_S)),
                    )
                )
        raw.commit()
    finally:
        raw.close()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE spbe_ledger"))


def _time_queries(
    store: LedgerStore, niks: Sequence[str], window: timedelta | None
) -> tuple[list[float], list[int]]:
    times, found = [], []
    for nik in niks:
        frm = None
        if window is not None:
            frm = _START + timedelta(seconds=random.Random(nik).randrange(_YEAR_S))  # noqa: S311
        started = time.perf_counter()
        answer = store.who_received(nik, frm=frm, to=None if frm is None else frm + window)
        times.append((time.perf_counter() - started) * 1000)
        found.append(len(answer.entries))
    return times, found


def _append_rate(store: LedgerStore, subjects: Sequence[str], rng: random.Random) -> float:
    now = datetime.now(UTC)
    batches = [
        [
            LedgerEntry(
                subject=rng.choice(subjects),
                event_id=str(uuid.uuid4()),
                event_type="PendudukUpdated",
                subscriber=subscriber,
                opd=opd,
                purpose=purpose,
                legal_basis=basis,
                kind=LedgerKind.DELIVERY,
                delivered_at=now,
            )
            for subscriber, opd, purpose, basis in rng.choices(_SUBSCRIPTIONS, k=APPEND_BATCH)
        ]
        for _ in range(APPEND_ENTRIES // APPEND_BATCH)
    ]
    started = time.perf_counter()
    for batch in batches:
        store.append(batch)
    return APPEND_ENTRIES / (time.perf_counter() - started)


def figures(times_ms: Sequence[float], found: Sequence[int]) -> dict[str, Any]:
    """p50, p99 and max of the query times, and how many entries the answers held."""
    return {
        "queries": len(times_ms),
        "p50_ms": round(percentile(times_ms, 50), 3),
        "p99_ms": round(percentile(times_ms, 99), 3),
        "max_ms": round(max(times_ms), 3),
        "mean_entries": round(sum(found) / len(found), 2),
    }


def measure(
    server_url: str, entries: int, subjects: int, *, queries: int = 200, seed: int = 15
) -> dict[str, Any]:
    """Fill a ledger of ``entries`` over ``subjects`` residents; time who_received and append."""
    rng = random.Random(seed)  # noqa: S311 - benchmark data
    niks = [synthetic_nik(i) for i in range(subjects)]
    ledger = LedgerSubjects(SECRET)
    subject_of = [ledger.subject(nik) for nik in niks]
    url = create_database(server_url)
    engine = create_engine(url)
    try:
        create_ledger_table(engine)
        started = time.monotonic()
        _fill(engine, subject_of, entries, rng)
        fill_s = time.monotonic() - started
        asked = rng.sample(niks, min(queries, len(niks)))
        with LedgerStore.from_url(url, SECRET) as store:
            store.who_received(asked[0])  # the first query opens the pool's connection
            plain = figures(*_time_queries(store, asked, None))
            windowed = figures(*_time_queries(store, asked, WINDOW))
            append_per_s = _append_rate(store, subject_of, rng)
    finally:
        engine.dispose()
        drop_database(server_url, url)
    return {
        "entries": entries,
        "subjects": subjects,
        "subscribers": len(_SUBSCRIPTIONS),
        "fill_s": round(fill_s, 2),
        "who_received": plain,
        "who_received_30_days": windowed,
        "append": {
            "batch": APPEND_BATCH,
            "entries": APPEND_ENTRIES,
            "entries_per_s": round(append_per_s, 1),
        },
    }
