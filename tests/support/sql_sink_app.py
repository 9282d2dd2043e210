"""A subscriber process applying events through the SQL sink, for kill and restart tests.

    python -m tests.support.sql_sink_app --bootstrap B --topic T --subscriber S \
        --config sink.yaml [--delay-ms N]

It prints ``started`` once consuming; SIGTERM stops it gracefully, SIGKILL is the crash
a test inflicts. ``--delay-ms`` slows each event so a kill lands mid-stream.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from adapters.sinks.sql import SqlSink, SqlSinkConfig
from bus.delivery import Delivery, Outcome
from bus.logs import configure_logging
from bus.subscriber import Subscriber, SubscriberConfig


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--subscriber", required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--delay-ms", type=int, default=0)
    args = parser.parse_args()
    configure_logging(json=True, level="INFO")
    sink_config = SqlSinkConfig.from_file(args.config)

    async def run() -> None:
        config = SubscriberConfig(
            bootstrap_servers=args.bootstrap,
            subscriber_id=args.subscriber,
            topics=(args.topic,),
            max_poll_records=50,
        )
        async with SqlSink(sink_config) as sink:

            async def apply(delivery: Delivery) -> Outcome:
                if args.delay_ms:
                    await asyncio.sleep(args.delay_ms / 1000)
                return await sink(delivery)

            async with Subscriber(config, apply) as subscriber:
                print("started", flush=True)
                await subscriber.run_until_signal()

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
