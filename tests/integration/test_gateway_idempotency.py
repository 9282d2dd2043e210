"""Idempotency keys on SQLite, PostgreSQL and MariaDB: first use, replay, reuse, crash, expiry."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from adapters.db import create_engine
from adapters.gateway.idempotency import (
    IdempotencyStore,
    Mismatch,
    New,
    Pending,
    Replay,
    idempotency_table,
    request_fingerprint,
)
from bus.errors import ConfigError

pytestmark = pytest.mark.integration

T0 = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
CLIENT = "dinkopukm-siumkm"
BODY = request_fingerprint("UmkmTerdaftar", b'{"id_umkm": "UMKM-1"}')
OTHER_BODY = request_fingerprint("UmkmTerdaftar", b'{"id_umkm": "UMKM-2"}')
ID_1 = "01937a4e-0000-7000-8000-000000000001"
ID_2 = "01937a4e-0000-7000-8000-000000000002"
ANSWER = {"id": ID_1, "type": "t", "topic": "spbe.umkm.v1", "partition": 0, "offset": 7}


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(engine: sa.Engine, clock: Clock) -> IdempotencyStore:
    store = IdempotencyStore(engine, clock=clock)
    store.create_table()
    return store


def test_a_first_claim_is_new_and_keeps_the_event_id_it_was_given(store: IdempotencyStore) -> None:
    assert store.claim(CLIENT, "k-1", BODY, ID_1) == New(ID_1)


def test_a_claim_of_a_pending_key_is_pending_with_the_first_event_id(
    store: IdempotencyStore,
) -> None:
    store.claim(CLIENT, "k-1", BODY, ID_1)
    assert store.claim(CLIENT, "k-1", BODY, ID_2) == Pending(ID_1)


def test_a_completed_key_replays_its_answer_also_from_a_new_store_after_a_restart(
    engine: sa.Engine, store: IdempotencyStore, clock: Clock
) -> None:
    store.claim(CLIENT, "k-1", BODY, ID_1)
    store.complete(CLIENT, "k-1", 202, ANSWER)
    assert store.claim(CLIENT, "k-1", BODY, ID_2) == Replay(202, ANSWER)
    restarted = IdempotencyStore(engine, clock=clock)
    restarted.create_table()  # a second create keeps what is there
    assert restarted.claim(CLIENT, "k-1", BODY, ID_2) == Replay(202, ANSWER)


def test_answers_stored_together_each_replay_under_their_own_key(
    store: IdempotencyStore,
) -> None:
    for key, event_id in (("k-1", ID_1), ("k-2", ID_2)):
        store.claim(CLIENT, key, BODY, event_id)
    store.claim("another-client", "k-1", BODY, ID_2)
    second = {**ANSWER, "offset": 99}
    store.complete_many([(CLIENT, "k-1", 202, ANSWER), (CLIENT, "k-2", 202, second)])
    assert store.claim(CLIENT, "k-1", BODY, ID_2) == Replay(202, ANSWER)
    assert store.claim(CLIENT, "k-2", BODY, ID_1) == Replay(202, second)
    assert store.claim("another-client", "k-1", BODY, ID_1) == Pending(ID_2)


def test_a_key_reused_for_another_body_is_a_mismatch_pending_or_completed(
    store: IdempotencyStore,
) -> None:
    store.claim(CLIENT, "k-1", BODY, ID_1)
    assert store.claim(CLIENT, "k-1", OTHER_BODY, ID_2) == Mismatch()
    store.complete(CLIENT, "k-1", 202, ANSWER)
    assert store.claim(CLIENT, "k-1", OTHER_BODY, ID_2) == Mismatch()
    assert store.claim(CLIENT, "k-1", BODY, ID_2) == Replay(202, ANSWER)


def test_the_same_body_under_another_event_name_is_another_request() -> None:
    body = b'{"id_umkm": "UMKM-1"}'
    assert request_fingerprint("UmkmTerdaftar", body) != request_fingerprint(
        "IzinDiterbitkan", body
    )


def test_keys_belong_to_their_client(store: IdempotencyStore) -> None:
    store.claim(CLIENT, "k-1", BODY, ID_1)
    assert store.claim("dpmptsp-sicantik", "k-1", OTHER_BODY, ID_2) == New(ID_2)


def test_a_key_expires_after_its_lifetime_and_is_then_a_first_use_again(
    store: IdempotencyStore, clock: Clock
) -> None:
    store.claim(CLIENT, "k-1", BODY, ID_1)
    store.complete(CLIENT, "k-1", 202, ANSWER)
    clock.now = T0 + timedelta(hours=24) - timedelta(seconds=1)
    assert store.claim(CLIENT, "k-1", BODY, ID_2) == Replay(202, ANSWER)
    clock.now = T0 + timedelta(hours=24)
    assert store.claim(CLIENT, "k-1", OTHER_BODY, ID_2) == New(ID_2)
    assert store.claim(CLIENT, "k-1", OTHER_BODY, ID_1) == Pending(ID_2)


def test_purge_deletes_only_expired_keys(
    engine: sa.Engine, store: IdempotencyStore, clock: Clock
) -> None:
    store.claim(CLIENT, "old", BODY, ID_1)
    clock.now = T0 + timedelta(hours=1)
    store.claim(CLIENT, "new", BODY, ID_2)
    clock.now = T0 + timedelta(hours=24, minutes=30)
    assert store.purge() == 1
    with engine.connect() as conn:
        remaining = list(conn.execute(sa.select(idempotency_table().c.key)).scalars())
    assert remaining == ["new"]
    assert store.claim(CLIENT, "new", BODY, ID_1) == Pending(ID_2)


def test_a_configurable_lifetime_is_honoured(engine: sa.Engine, clock: Clock) -> None:
    store = IdempotencyStore(engine, ttl=timedelta(minutes=10), clock=clock)
    store.create_table()
    store.claim(CLIENT, "k-1", BODY, ID_1)
    clock.now = T0 + timedelta(minutes=10)
    assert store.purge() == 1


def test_a_lifetime_of_zero_is_a_config_error(engine: sa.Engine) -> None:
    with pytest.raises(ConfigError, match="lifetime"):
        IdempotencyStore(engine, ttl=timedelta(0))


@pytest.mark.parametrize(
    ("key", "rule"),
    [
        ("", "empty"),
        ("k" * 256, "longer than 255"),
        ("kunci-é", "printable ASCII"),
        ("a\nb", "ASCII"),
    ],
)
def test_a_key_that_breaks_its_rules_is_refused_without_being_echoed(
    store: IdempotencyStore, key: str, rule: str
) -> None:
    with pytest.raises(ConfigError, match=rule) as caught:
        store.claim(CLIENT, key, BODY, ID_1)
    if key:
        assert key not in str(caught.value)


def test_the_longest_key_of_printable_ascii_is_accepted(store: IdempotencyStore) -> None:
    key = "".join(chr(c) for c in range(0x20, 0x7F)) * 3  # 285 characters
    key = key[:255]
    assert store.claim(CLIENT, key, BODY, ID_1) == New(ID_1)
    assert store.claim(CLIENT, key, BODY, ID_2) == Pending(ID_1)


def test_claims_racing_for_one_key_give_one_new_and_the_others_pending(
    store: IdempotencyStore,
) -> None:
    racers = 6
    start = threading.Barrier(racers)
    results: list[object] = [None] * racers

    def claim(i: int) -> None:
        start.wait()
        results[i] = store.claim(CLIENT, "race", BODY, f"01937a4e-0000-7000-8000-{i:012d}")

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    new = [r for r in results if isinstance(r, New)]
    assert len(new) == 1
    assert results.count(Pending(new[0].event_id)) == racers - 1
