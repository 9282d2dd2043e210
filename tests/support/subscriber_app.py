"""A subscriber process for crash and signal tests: applies IzinDiterbitkan into SQLite.

    python -m tests.support.subscriber_app --bootstrap B --topic T --subscriber S --db F

The handler is idempotent the way a sink must be: the processed-event row and the
business row commit in one transaction, keyed by (ce_source, ce_id). Every delivery,
duplicate or not, is also counted, so a test can see redeliveries being absorbed.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys

from bus.contract.events import IzinDiterbitkan
from bus.delivery import Delivery, Outcome
from bus.logs import configure_logging
from bus.subscriber import Subscriber, SubscriberConfig

SCHEMA = """
CREATE TABLE IF NOT EXISTS processed (source TEXT, id TEXT, PRIMARY KEY (source, id));
CREATE TABLE IF NOT EXISTS izin (nomor_izin TEXT PRIMARY KEY, nama_usaha TEXT, seq INTEGER);
CREATE TABLE IF NOT EXISTS deliveries (id TEXT, offset_ INTEGER);
"""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--subscriber", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--delay-ms", type=int, default=0)
    args = parser.parse_args()
    configure_logging(json=True, level="INFO")

    db = sqlite3.connect(args.db, isolation_level=None)
    db.executescript(SCHEMA)

    async def apply(delivery: Delivery) -> Outcome:
        event = delivery.event
        assert isinstance(event, IzinDiterbitkan)
        if args.delay_ms:
            await asyncio.sleep(args.delay_ms / 1000)
        source, event_id = delivery.dedupe_key
        db.execute("INSERT INTO deliveries VALUES (?, ?)", (event_id, delivery.offset))
        db.execute("BEGIN IMMEDIATE")
        try:
            seen = db.execute(
                "SELECT 1 FROM processed WHERE source = ? AND id = ?", (source, event_id)
            ).fetchone()
            if seen:
                db.execute("COMMIT")
                return Outcome.DUPLICATE
            db.execute("INSERT INTO processed VALUES (?, ?)", (source, event_id))
            db.execute(
                "INSERT INTO izin VALUES (?, ?, ?) ON CONFLICT (nomor_izin) DO UPDATE SET "
                "nama_usaha = excluded.nama_usaha, seq = excluded.seq "
                "WHERE excluded.seq > izin.seq",
                (event.nomor_izin, event.nama_usaha, delivery.sequence),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return Outcome.APPLIED

    async def run() -> None:
        config = SubscriberConfig(
            bootstrap_servers=args.bootstrap,
            subscriber_id=args.subscriber,
            topics=(args.topic,),
            max_poll_records=50,
        )
        async with Subscriber(config, apply) as subscriber:
            print("started", flush=True)
            await subscriber.run_until_signal()

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
