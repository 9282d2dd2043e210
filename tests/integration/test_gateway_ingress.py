"""Ingress against the real broker and a real SQLite file: a post publishes once, acknowledged,
and a retry, a restart or a crash between claim and answer never publishes it twice."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiokafka.structs import ConsumerRecord
from pydantic import SecretBytes

from adapters.db import create_engine
from adapters.gateway.idempotency import IdempotencyStore, Pending, request_fingerprint
from adapters.gateway.ingress import Ingress, PostResult
from bus.connection import KafkaConnection
from bus.contract.envelope import new_event_id
from bus.contract.standard import example, load_standard
from bus.errors import ConfigError, LifecycleError
from bus.ops.metrics import default_metrics
from tests.conftest import TopicFactory
from tests.support.kafka import read_all
from tests.support.ports import free_port_block

pytestmark = pytest.mark.integration

STANDARD = load_standard()
UMKM_TYPE = STANDARD["UmkmTerdaftar"].event_type
PENDUDUK_TYPE = STANDARD["PendudukUpdated"].event_type
KEY_SECRET = SecretBytes(b"disdukcapil-key-secret-0123456789")


@dataclass(frozen=True, slots=True)
class Client:
    """The fields of bus.ops.api_clients.ClientAccess that ingress reads."""

    client: str
    source: str | None
    steward: str | None
    postable: frozenset[str]


SIUMKM = Client(
    "dinkopukm-siumkm", "ID/PEMDA-3273/DINKOPUKM/siumkm", "DINKOPUKM", frozenset({UMKM_TYPE})
)
SIAK = Client(
    "disdukcapil-siak", "ID/PEMDA-3273/DISDUKCAPIL/siak", "DISDUKCAPIL", frozenset({PENDUDUK_TYPE})
)
SICANTIK = Client("dpmptsp-sicantik", None, None, frozenset())


def umkm(n: int) -> bytes:
    data = example("UmkmTerdaftar")
    data["id_umkm"] = f"UMKM-3273-2026-{n:06d}"
    return json.dumps(data).encode()


@pytest.fixture
def database(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'gateway.db'}"


@pytest.fixture
def engine(database: str) -> Iterator[sa.Engine]:
    engine = create_engine(database)
    yield engine
    engine.dispose()


def new_ingress(bootstrap: str, engine: sa.Engine, topics: dict[str, str], **kw: Any) -> Ingress:
    store = IdempotencyStore(engine)
    store.create_table()
    return Ingress(
        KafkaConnection(bootstrap_servers=bootstrap),
        store,
        key_secrets={"DISDUKCAPIL": KEY_SECRET},
        standard=STANDARD,
        topic_overrides=topics,
        **kw,
    )


@pytest.fixture
async def topic(new_topic: TopicFactory) -> str:
    return await new_topic()


@pytest.fixture
async def ingress(kafka_bootstrap: str, engine: sa.Engine, topic: str) -> AsyncIterator[Ingress]:
    async with new_ingress(kafka_bootstrap, engine, {"UmkmTerdaftar": topic}) as ingress:
        yield ingress


async def records_up_to_a_sentinel(
    ingress: Ingress, bootstrap: str, topic: str
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of the one-partition ``topic``, read up to a sentinel posted last.

    A post answered before the sentinel landed before it, so the records read are
    everything the topic holds besides the sentinel, with no wait on a timeout.
    """
    sentinel = await ingress.post(SIUMKM, "UmkmTerdaftar", umkm(999_999), None)
    assert sentinel.status == 202
    records = await read_all(bootstrap, topic, sentinel.body["offset"] + 1)
    assert records[-1].offset == sentinel.body["offset"]
    return records[:-1]


def header(record: ConsumerRecord[bytes, bytes], name: str) -> str:
    return dict(record.headers)[name].decode()


async def test_a_started_ingress_counts_its_postable_topics_from_zero(
    kafka_bootstrap: str, engine: sa.Engine, topic: str
) -> None:
    """Before the first post the topic its clients may post to has a series at 0, so
    silence after a restart is seen (SpbeStewardSilent compares it with six hours ago)."""
    registry = default_metrics().registry
    assert registry.get_sample_value("spbe_published_total", {"topic": topic}) is None
    topics = {"UmkmTerdaftar": topic}
    async with new_ingress(kafka_bootstrap, engine, topics, clients=[SIUMKM]):
        assert registry.get_sample_value("spbe_published_total", {"topic": topic}) == 0


async def test_a_post_publishes_the_event_and_answers_where_kafka_acknowledged_it(
    ingress: Ingress, kafka_bootstrap: str, topic: str
) -> None:
    result = await ingress.post(SIUMKM, "UmkmTerdaftar", umkm(1), "k-1")
    assert result.status == 202
    assert not result.replayed
    assert set(result.body) == {"id", "type", "topic", "partition", "offset"}
    assert (result.body["type"], result.body["topic"]) == (UMKM_TYPE, topic)
    (record,) = await read_all(kafka_bootstrap, topic, 1)
    assert (record.partition, record.offset) == (result.body["partition"], result.body["offset"])
    assert header(record, "ce_id") == result.body["id"]
    assert header(record, "ce_source") == SIUMKM.source
    assert header(record, "ce_type") == UMKM_TYPE
    assert record.key == b"UMKM-3273-2026-000001"
    published = default_metrics().registry.get_sample_value(
        "spbe_published_total", {"topic": topic}
    )
    assert published == 1


async def test_a_retry_with_the_same_key_replays_the_answer_and_publishes_nothing_more(
    ingress: Ingress, kafka_bootstrap: str, topic: str
) -> None:
    first = await ingress.post(SIUMKM, "UmkmTerdaftar", umkm(1), "k-1")
    again = await ingress.post(SIUMKM, "UmkmTerdaftar", umkm(1), '"k-1"')  # sf-string form
    assert again == PostResult(202, first.body, replayed=True)
    (record,) = await records_up_to_a_sentinel(ingress, kafka_bootstrap, topic)
    assert header(record, "ce_id") == first.body["id"]


async def test_a_new_ingress_over_the_same_database_still_replays_after_a_restart(
    kafka_bootstrap: str, database: str, topic: str
) -> None:
    topics = {"UmkmTerdaftar": topic}
    engine = create_engine(database)
    async with new_ingress(kafka_bootstrap, engine, topics) as before:
        first = await before.post(SIUMKM, "UmkmTerdaftar", umkm(1), "k-1")
    engine.dispose()
    engine = create_engine(database)
    try:
        async with new_ingress(kafka_bootstrap, engine, topics) as after:
            again = await after.post(SIUMKM, "UmkmTerdaftar", umkm(1), "k-1")
            assert again == PostResult(202, first.body, replayed=True)
            assert len(await records_up_to_a_sentinel(after, kafka_bootstrap, topic)) == 1
    finally:
        engine.dispose()


async def test_a_client_that_is_not_the_steward_is_refused_and_nothing_is_published(
    ingress: Ingress, kafka_bootstrap: str, topic: str
) -> None:
    for client in (SICANTIK, SIAK):
        refused = await ingress.post(client, "UmkmTerdaftar", umkm(1), "k-1")
        assert refused.status == 403
        assert refused.body["type"] == "urn:spbe:problem:not-steward"
    assert await records_up_to_a_sentinel(ingress, kafka_bootstrap, topic) == []
    # The refusal claimed no key: the steward's own post with it is a first use.
    assert (await ingress.post(SIUMKM, "UmkmTerdaftar", umkm(1), "k-1")).replayed is False


async def test_a_key_left_pending_by_a_crash_is_published_with_its_first_event_id(
    ingress: Ingress, kafka_bootstrap: str, topic: str
) -> None:
    body = umkm(1)
    crashed_id = new_event_id()
    fingerprint = request_fingerprint("UmkmTerdaftar", body)
    # A gateway claimed the key, then stopped before Kafka answered it.
    ingress.store.claim(SIUMKM.client, "k-1", fingerprint, crashed_id)
    result = await ingress.post(SIUMKM, "UmkmTerdaftar", body, "k-1")
    assert result.status == 202
    assert not result.replayed
    assert result.body["id"] == crashed_id
    (record,) = await records_up_to_a_sentinel(ingress, kafka_bootstrap, topic)
    assert header(record, "ce_id") == crashed_id
    assert (await ingress.post(SIUMKM, "UmkmTerdaftar", body, "k-1")).replayed


async def test_kafka_away_is_a_503_and_the_retry_publishes_with_the_same_event_id(
    kafka_bootstrap: str, engine: sa.Engine, topic: str
) -> None:
    nowhere = f"127.0.0.1:{free_port_block(1)}"
    topics = {"UmkmTerdaftar": topic}
    async with new_ingress(nowhere, engine, topics, start_timeout_s=1.0) as away:
        failed = await away.post(SIUMKM, "UmkmTerdaftar", umkm(1), "k-1")
    assert failed.status == 503
    assert failed.body["type"] == "urn:spbe:problem:kafka-unavailable"
    assert failed.headers == {"Retry-After": "5"}
    assert "Idempotency-Key" in failed.body["detail"]
    failures = {"topic": topic, "error": "KafkaUnavailableError"}
    assert default_metrics().registry.get_sample_value("spbe_publish_failures_total", failures) == 1
    fingerprint = request_fingerprint("UmkmTerdaftar", umkm(1))
    pending = IdempotencyStore(engine).claim(SIUMKM.client, "k-1", fingerprint, new_event_id())
    assert isinstance(pending, Pending)
    async with new_ingress(kafka_bootstrap, engine, topics) as back:
        result = await back.post(SIUMKM, "UmkmTerdaftar", umkm(1), "k-1")
        assert result.status == 202
        assert result.body["id"] == pending.event_id
        (record,) = await records_up_to_a_sentinel(back, kafka_bootstrap, topic)
    assert header(record, "ce_id") == pending.event_id


async def test_a_key_reused_for_another_body_is_a_422_and_publishes_nothing(
    ingress: Ingress, kafka_bootstrap: str, topic: str
) -> None:
    await ingress.post(SIUMKM, "UmkmTerdaftar", umkm(1), "k-1")
    reused = await ingress.post(SIUMKM, "UmkmTerdaftar", umkm(2), "k-1")
    assert reused.status == 422
    assert reused.body["type"] == "urn:spbe:problem:idempotency-key-reused"
    assert len(await records_up_to_a_sentinel(ingress, kafka_bootstrap, topic)) == 1


async def test_a_key_whose_request_is_still_running_is_a_409(
    ingress: Ingress, kafka_bootstrap: str, topic: str
) -> None:
    first, second = await asyncio.gather(
        ingress.post(SIUMKM, "UmkmTerdaftar", umkm(1), "k-1"),
        ingress.post(SIUMKM, "UmkmTerdaftar", umkm(1), "k-1"),
    )
    assert first.status == 202
    assert second.status == 409
    assert second.body["type"] == "urn:spbe:problem:idempotency-key-in-use"
    assert len(await records_up_to_a_sentinel(ingress, kafka_bootstrap, topic)) == 1


async def test_an_invalid_body_claims_no_key_so_the_fixed_body_may_use_it(
    ingress: Ingress,
) -> None:
    bad = json.loads(umkm(1))
    bad["nib"] = "12"
    refused = await ingress.post(SIUMKM, "UmkmTerdaftar", json.dumps(bad).encode(), "k-1")
    assert refused.status == 422
    assert [e["field"] for e in refused.body["errors"]] == ["nib"]
    accepted = await ingress.post(SIUMKM, "UmkmTerdaftar", umkm(1), "k-1")
    assert accepted.status == 202
    assert not accepted.replayed


async def test_body_problems_come_back_as_their_problem_documents(ingress: Ingress) -> None:
    assert (await ingress.post(SIUMKM, "UmkmTerdaftar", b"{", None)).status == 400
    assert (await ingress.post(SIUMKM, "UmkmDicabut", umkm(1), None)).status == 404
    invalid_key = await ingress.post(SIUMKM, "UmkmTerdaftar", umkm(1), "kunci-é")
    assert invalid_key.status == 400
    assert invalid_key.body["type"] == "urn:spbe:problem:invalid-idempotency-key"


async def test_a_post_without_a_key_publishes_each_time_with_a_new_event_id(
    ingress: Ingress, kafka_bootstrap: str, topic: str
) -> None:
    one = await ingress.post(SIUMKM, "UmkmTerdaftar", umkm(1), None)
    two = await ingress.post(SIUMKM, "UmkmTerdaftar", umkm(1), None)
    assert one.body["id"] != two.body["id"]
    assert len(await records_up_to_a_sentinel(ingress, kafka_bootstrap, topic)) == 2


async def test_a_steward_keyed_by_a_pseudonym_publishes_with_its_key_secret(
    kafka_bootstrap: str, engine: sa.Engine, new_topic: TopicFactory
) -> None:
    topic = await new_topic(suffix="penduduk")
    data = example("PendudukUpdated")
    async with new_ingress(kafka_bootstrap, engine, {"PendudukUpdated": topic}) as ingress:
        result = await ingress.post(SIAK, "PendudukUpdated", json.dumps(data).encode(), "k-1")
    assert result.status == 202
    (record,) = await read_all(kafka_bootstrap, topic, 1)
    assert record.key is not None
    assert data["nik"].encode() not in record.key
    assert header(record, "ce_id") == result.body["id"]


async def test_a_steward_keyed_by_a_pseudonym_without_its_secret_fails_at_start(
    kafka_bootstrap: str, engine: sa.Engine
) -> None:
    store = IdempotencyStore(engine)
    ingress = Ingress(
        KafkaConnection(bootstrap_servers=kafka_bootstrap), store, standard=STANDARD, clients=[SIAK]
    )
    with pytest.raises(ConfigError, match="no key secret for DISDUKCAPIL"):
        await ingress.start()
    await ingress.stop()


async def test_a_post_before_start_is_a_lifecycle_error(
    kafka_bootstrap: str, engine: sa.Engine
) -> None:
    ingress = new_ingress(kafka_bootstrap, engine, {})
    with pytest.raises(LifecycleError, match="not started"):
        await ingress.post(SIUMKM, "UmkmTerdaftar", umkm(1), None)
