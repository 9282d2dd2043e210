"""What the console reads each refresh: only the tails of the audit trail and of dead
letter topics, however long they are."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bus.delivery import DeadLetterCause, dead_letter_headers, dlq_topic
from bus.ops.audit import AuditLog, new_record, read_audit
from bus.ops.dlq import latest_dead_letters
from tests.conftest import TopicFactory
from tests.support.kafka import create_topic, produce

pytestmark = pytest.mark.integration


async def test_read_audit_last_gives_the_newest_records_in_order(
    kafka_bootstrap: str, topic_name: str
) -> None:
    topic = f"{topic_name}.audit"
    async with AuditLog(kafka_bootstrap, topic=topic) as audit:
        for n in range(7):
            await audit.record(new_record(f"action.{n}", subscriber="s", topics=[], principal="p"))
    newest = await read_audit(kafka_bootstrap, topic=topic, last=3)
    assert [r.action for r in newest] == ["action.4", "action.5", "action.6"]
    everything = await read_audit(kafka_bootstrap, topic=topic, last=100)
    assert [r.action for r in everything] == [f"action.{n}" for n in range(7)]
    assert await read_audit(kafka_bootstrap, topic=topic, last=0) == []


async def test_latest_dead_letters_are_the_newest_of_every_partition_newest_first(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic()
    subscriber = "dinsos-penduduk"
    dlq = await create_topic(kafka_bootstrap, dlq_topic(topic, subscriber), partitions=2)
    for offset in range(6):
        cause = DeadLetterCause.of(
            RuntimeError(f"failure {offset}"),
            attempts=1,
            first_failure=datetime.now(UTC),
            topic=topic,
            partition=0,
            offset=offset,
            subscriber=subscriber,
        )
        headers = list(dead_letter_headers([], cause))
        await produce(kafka_bootstrap, dlq, [b"x"], key=str(offset % 2).encode(), headers=headers)
    letters = await latest_dead_letters(kafka_bootstrap, subscriber, topic, limit=3)
    assert [letter.original()[2] for letter in letters] == [5, 4, 3]
    assert len(await latest_dead_letters(kafka_bootstrap, subscriber, topic, limit=50)) == 6
