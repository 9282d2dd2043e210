"""What the benchmark runs on: a private broker, a private PostgreSQL, and the machine.

The broker is a single-node local KRaft cluster in a temporary directory on free ports
(:class:`bus.localkafka.manager.LocalKafka`); PostgreSQL is the test suite's private
server (``tests.support.databases.postgres_server``). Both are stopped on exit.
"""

from __future__ import annotations

import os
import platform
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bus.connection import KafkaConnection
from bus.localkafka.layout import default_kafka_version
from bus.localkafka.manager import LocalKafka
from bus.logs import configure_logging
from bus.topics import ensure_topics
from tests.support.databases import LOGICAL_REPLICATION, postgres_server
from tests.support.ports import free_port_block

__all__ = [
    "SERVICE_LOG_ENV",
    "Services",
    "cpu_times",
    "create_topic",
    "machine",
    "service_log_lines",
    "service_logging",
    "services",
]

#: The file every process of a run logs into (set by ``python -m bench`` for its children).
SERVICE_LOG_ENV = "SPBE_BENCH_SERVICE_LOG"

_PACKAGES = (
    "aiokafka",
    "confluent-kafka",
    "fastavro",
    "pydantic",
    "SQLAlchemy",
    "psycopg",
    "structlog",
    "pyinstrument",
    "matplotlib",
)


@dataclass(frozen=True, slots=True)
class Services:
    bootstrap: str
    database_url: str
    #: The broker's Kafka release and JVM heap (a second broker of a step matches them).
    kafka_version: str
    heap_mb: int


@contextmanager
def services(*, logical_replication: bool = False) -> Iterator[Services]:
    """Start the broker and PostgreSQL in a temporary directory; stop both afterwards.

    PostgreSQL runs with ``fsync=on`` (its default, and what a deployed OPD database has;
    the test suite's servers turn it off). ``logical_replication`` adds
    ``wal_level=logical`` and room for replication slots, as Debezium's connector
    (``--peers``) needs.
    """
    with tempfile.TemporaryDirectory(prefix="spbe-bench-") as tmp:
        base = Path(tmp)
        kafka = LocalKafka(base / "kafka", ready_timeout_s=240)
        layout = kafka.up(port=free_port_block(2))
        try:
            # A production server's durability: the test servers run with fsync off.
            settings = {"fsync": "on", **(LOGICAL_REPLICATION if logical_replication else {})}
            with postgres_server(base / "postgres", settings) as url:
                yield Services(
                    bootstrap=layout.bootstrap_servers,
                    database_url=url,
                    kafka_version=layout.kafka_version,
                    heap_mb=layout.heap_mb,
                )
        finally:
            kafka.down()


async def create_topic(kafka: KafkaConnection | str, name: str, partitions: int) -> str:
    await ensure_topics(kafka, {name: partitions}, replication_factor=1)
    return name


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_times() -> dict[str, int]:
    """The machine's total and steal CPU ticks so far (``/proc/stat``); empty elsewhere."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return {}
    ticks = [int(f) for f in fields]
    return {"total": sum(ticks), "steal": ticks[7] if len(ticks) > 7 else 0}


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine(database_url: str) -> dict[str, Any]:
    """Cores, CPU model, OS, and the versions of everything measured."""
    versions: dict[str, str | None] = {p: _version(p) for p in _PACKAGES}
    versions["python"] = platform.python_version()
    versions["kafka"] = default_kafka_version()
    versions["spbe-bus"] = _version("spbe-bus")
    try:
        import confluent_kafka

        versions["librdkafka"] = confluent_kafka.libversion()[0]
    except ImportError:
        versions["librdkafka"] = None
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            versions["postgresql"] = str(
                connection.execute(sa.text("SHOW server_version")).scalar()
            )
    finally:
        engine.dispose()
    return {
        "cores": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "versions": versions,
    }


def service_logging() -> None:
    """Log as a service of the bus does: JSON lines at INFO, appended to the run's log file.

    Every process of a run calls this (the relay and the writer are child processes), so
    each figure is measured with the logging a deployed adapter has. Without the variable
    (a module used on its own) the lines go to stderr.
    """
    path = os.environ.get(SERVICE_LOG_ENV)
    stream = open(path, "a", buffering=1, encoding="utf-8") if path else None  # noqa: SIM115
    configure_logging(json=True, level="INFO", stream=stream)


def service_log_lines() -> dict[str, int]:
    """How many lines the run's service log holds, by level (for the report)."""
    path = os.environ.get(SERVICE_LOG_ENV)
    counts: dict[str, int] = {}
    if not path or not Path(path).exists():
        return counts
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            level = line.split('"level": "', 1)[-1].split('"', 1)[0] if '"level"' in line else "?"
            counts[level] = counts.get(level, 0) + 1
    return counts
