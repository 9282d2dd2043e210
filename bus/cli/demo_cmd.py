"""``spbe-bus demo``: a local broker, one real SPBE event published and read back.

Disdukcapil's ``PendudukUpdated`` example is validated as a typed event, encoded as Avro
single-object bytes with CloudEvents headers and a pseudonymised key, published with
acks=all, consumed again and decoded. The printout masks the fields the schema tags
``spbe.pii``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bus.contract.codec import InMemorySchemas
from bus.contract.events import EVENT_TYPES
from bus.contract.message import build_record, read_record
from bus.contract.standard import example, load_standard
from bus.localkafka.manager import LocalKafka, default_data_dir
from bus.topics import ensure_topics

__all__ = ["add_demo_command"]

DEMO_EVENT = "PendudukUpdated"
DEMO_SOURCE = "ID/PEMDA-3273/DISDUKCAPIL/siak"
# Demo only: a real steward keeps its secret out of code (SPBE_KEY_SECRET, a vault).
DEMO_SECRET = b"demo-steward-secret-not-for-production"


def add_demo_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = sub.add_parser(
        "demo", help="publish a sample SPBE event to a local broker, read it back"
    )
    demo.add_argument("--data-dir", type=Path, default=None, help=f"default {default_data_dir()}")
    demo.add_argument("--port", type=int, default=None, help="client port (default 9092)")
    demo.add_argument(
        "--keep-running", action="store_true", help="leave the broker running afterwards"
    )
    demo.add_argument("--json", action="store_true", help="print the result as JSON")
    demo.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    manager = LocalKafka(args.data_dir)
    was_running = manager.status(probe_timeout_s=2).healthy
    if not args.json:
        print("starting the local Kafka broker (first run resolves its jars from Maven Central)")
    layout = manager.up(port=args.port)
    if not args.json:
        print(f"broker ready at {layout.bootstrap_servers}")
    try:
        result = asyncio.run(_round_trip(layout.bootstrap_servers, layout.replication_factor))
    finally:
        if not was_running and not args.keep_running:
            manager.down()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print_human(result)
    return 0 if result["equal"] else 1


def _masked(data: dict[str, Any], pii: set[str], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in data.items():
        path = f"{prefix}{name}"
        if isinstance(value, dict):
            out[name] = _masked(value, pii, f"{path}.")
        elif path in pii and value is not None:
            out[name] = "***"
        else:
            out[name] = value
    return out


async def _round_trip(bootstrap: str, replication: int) -> dict[str, Any]:
    standard = load_standard()
    schema = standard[DEMO_EVENT]
    event = EVENT_TYPES[DEMO_EVENT].from_json(example(DEMO_EVENT))
    secret = os.environb.get(b"SPBE_KEY_SECRET", DEMO_SECRET)
    record = build_record(event, schema, source=DEMO_SOURCE, key_secret=secret, sequence=1)
    await ensure_topics(bootstrap, {record.topic: 3}, replication_factor=replication)

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        started = time.perf_counter()
        meta = await producer.send_and_wait(
            record.topic, record.value, key=record.key, headers=record.headers
        )
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(record.topic, meta.partition)
        consumer.assign([tp])
        consumer.seek(tp, meta.offset)
        received = await asyncio.wait_for(consumer.getone(), 60)
        elapsed_ms = (time.perf_counter() - started) * 1000
    finally:
        await consumer.stop()

    assert received.value is not None
    back = read_record(
        received.value, list(received.headers), InMemorySchemas(standard.values()), standard
    )
    pii = set(schema.pii_fields())
    return {
        "topic": record.topic,
        "partition": meta.partition,
        "offset": meta.offset,
        "key": received.key.decode() if received.key else None,
        "bytes": len(received.value),
        "round_trip_ms": round(elapsed_ms, 1),
        "envelope": {
            "id": back.envelope.id,
            "type": back.envelope.type,
            "source": back.envelope.source,
            "time": back.envelope.time.isoformat(),
            "sequence": back.envelope.sequence,
            "dataclassification": back.envelope.dataclassification.value,
            "dataschema": back.envelope.dataschema,
        },
        "event": _masked(back.event.to_json(), pii),
        "equal": back.event == event and back.envelope == record.envelope,
    }


def _print_human(result: dict[str, Any]) -> None:
    env = result["envelope"]
    print(f"published {env['type']}")
    print(f"  to      {result['topic']} partition {result['partition']} offset {result['offset']}")
    print(f"  key     {result['key']}  (HMAC pseudonym of the NIK, never the NIK itself)")
    print(f"  value   {result['bytes']} bytes of Avro single-object encoding")
    print(f"  id      {env['id']}  from {env['source']}")
    print(f"  class   {env['dataclassification']}")
    print(f"read back in {result['round_trip_ms']} ms; personal fields masked:")
    print(json.dumps(result["event"], indent=2, ensure_ascii=False))
    verdict = "identical to" if result["equal"] else "DIFFERENT from"
    print(f"the event read back is {verdict} the event published")
