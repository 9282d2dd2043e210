"""``spbe-bus demo``: bring up the local broker, publish a sample event, read it back."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from bus.localkafka.manager import LocalKafka, default_data_dir

__all__ = ["add_demo_command"]

DEMO_TOPIC = "spbe.demo.roundtrip.v1"


def add_demo_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = sub.add_parser("demo", help="run the end-to-end demo on a local broker")
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
    layout = manager.up(port=args.port)
    if not args.json:
        print(f"broker ready at {layout.bootstrap_servers}")
    try:
        result = asyncio.run(_round_trip(layout.bootstrap_servers))
    finally:
        if not was_running and not args.keep_running:
            manager.down()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"published to {result['topic']}[{result['partition']}]@{result['offset']}")
        print(f"read back in {result['round_trip_ms']:.1f} ms:")
        print(json.dumps(result["event"], indent=2))
    return 0 if result["event"] == result["sent"] else 1


async def _round_trip(bootstrap: str) -> dict[str, Any]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(DEMO_TOPIC, num_partitions=1, replication_factor=1)])
    except TopicAlreadyExistsError:
        pass
    finally:
        await admin.close()
    sent = {"type": "id.go.spbe.demo.Halo.v1", "id": str(uuid.uuid4()), "pesan": "halo, SPBE"}
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        started = time.perf_counter()
        meta = await producer.send_and_wait(DEMO_TOPIC, json.dumps(sent).encode())
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        from aiokafka import TopicPartition

        tp = TopicPartition(DEMO_TOPIC, meta.partition)
        consumer.assign([tp])
        consumer.seek(tp, meta.offset)
        record = await asyncio.wait_for(consumer.getone(), 60)
        elapsed_ms = (time.perf_counter() - started) * 1000
    finally:
        await consumer.stop()
    return {
        "topic": DEMO_TOPIC,
        "partition": meta.partition,
        "offset": meta.offset,
        "round_trip_ms": elapsed_ms,
        "sent": sent,
        "event": json.loads(record.value),
    }
