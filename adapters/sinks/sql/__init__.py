"""The SQL sink: apply SPBE events into a subscriber OPD's own table, idempotently.

    from adapters.sinks.sql import SqlSink, SqlSinkConfig

    config = SqlSinkConfig.from_file("penduduk-sink.yaml")
    async with SqlSink(config) as sink, Subscriber(subscriber_config, sink) as subscriber:
        await subscriber.run_until_signal()

Modules, bottom up: ``fields`` (paths into event models) and ``config`` are pure;
``failures`` says what a database error means; ``postgresql``, ``mariadb`` and ``sqlite``
hold what differs per database; ``tables``, ``rows``, ``verdicts`` (the version guard,
pure) and ``transaction`` do the work; ``sink`` is the handler.
"""

from adapters.sinks.sql.config import (
    DEFAULT_PROCESSED_TABLE,
    DEFAULT_VERSION_COLUMN,
    EventMapping,
    MappingAction,
    SqlSinkConfig,
)
from adapters.sinks.sql.failures import RejectedEventError
from adapters.sinks.sql.sink import SqlSink

__all__ = [
    "DEFAULT_PROCESSED_TABLE",
    "DEFAULT_VERSION_COLUMN",
    "EventMapping",
    "MappingAction",
    "RejectedEventError",
    "SqlSink",
    "SqlSinkConfig",
]
