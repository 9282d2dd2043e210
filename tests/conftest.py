"""Shared fixtures: one real Kafka per test session, a unique topic per test.

Where the broker comes from:
- ``SPBE_KAFKA_BOOTSTRAP`` set: an existing cluster (nothing is started or stopped);
- ``SPBE_TEST_KAFKA=docker``: testcontainers' Kafka module (needs a Docker engine);
- otherwise: a local KRaft broker from the Maven Central jars, in a temporary
  directory on free ports, stopped at the end of the session.

``secured_kafka`` is a second, secured broker (``spbe-bus kafka up --secure``) for the tests
of authentication, encryption and ACLs; it starts only when a test asks for it.

``pytest --kafka-version 4.4.0`` (or ``SPBE_KAFKA_VERSION=4.4.0``) runs every broker the
suite starts, the session's and the tests' own clusters, on that Kafka release.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from bus.connection import KafkaConnection
from bus.localkafka.layout import default_kafka_version
from bus.localkafka.manager import LocalKafka
from tests.support.kafka import create_topic
from tests.support.ports import free_port_block

TopicFactory = Callable[..., Awaitable[str]]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--kafka-version",
        default=None,
        help="Kafka release for every broker the tests start (default $SPBE_KAFKA_VERSION "
        "or the bus's default)",
    )


def pytest_configure(config: pytest.Config) -> None:
    # Through the environment, so brokers started by CLI subprocesses use it too.
    if version := config.getoption("--kafka-version"):
        os.environ["SPBE_KAFKA_VERSION"] = version


def pytest_report_header(config: pytest.Config) -> str:
    return f"kafka: {default_kafka_version()}"


def _docker_kafka() -> Iterator[str]:
    from testcontainers.kafka import KafkaContainer

    with KafkaContainer(f"apache/kafka:{default_kafka_version()}").with_kraft() as container:
        yield container.get_bootstrap_server()


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap address of the session's Kafka broker."""
    if explicit := os.environ.get("SPBE_KAFKA_BOOTSTRAP"):
        yield explicit
        return
    if os.environ.get("SPBE_TEST_KAFKA") == "docker":
        yield from _docker_kafka()
        return
    data_dir: Path = tmp_path_factory.mktemp("kafka")
    manager = LocalKafka(data_dir, ready_timeout_s=240)
    layout = manager.up(port=free_port_block(2))
    try:
        yield layout.bootstrap_servers
    finally:
        manager.down()


@pytest.fixture(scope="session")
def secured_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaConnection]:
    """The operator's connection to the session's secured broker (``kafka up --secure``).

    SASL_SSL with SCRAM-SHA-512 and the local CA; the StandardAuthorizer refuses what no
    ACL allows; the operator is a super user. Started on first use only.
    """
    data_dir: Path = tmp_path_factory.mktemp("kafka-secured")
    manager = LocalKafka(data_dir, ready_timeout_s=240)
    layout = manager.up(port=free_port_block(3), secure=True)
    try:
        yield manager.connection(layout)
    finally:
        manager.down()


@pytest.fixture
def topic_name(request: pytest.FixtureRequest) -> str:
    """A topic name no other test uses, derived from the test's name."""
    slug = re.sub(r"[^a-zA-Z0-9]+", "-", request.node.name).strip("-")[:60]
    return f"test.{slug}.{uuid.uuid4().hex[:8]}"


@pytest.fixture
def new_topic(kafka_bootstrap: str, topic_name: str) -> TopicFactory:
    """Create this test's topic: ``await new_topic(partitions=3)`` returns its name.

    A suffix gives a second, distinct topic in the same test.
    """

    async def make(
        *, partitions: int = 1, suffix: str = "", configs: dict[str, str] | None = None
    ) -> str:
        name = topic_name + (f".{suffix}" if suffix else "")
        return await create_topic(kafka_bootstrap, name, partitions=partitions, configs=configs)

    return make


@pytest.fixture(scope="session", autouse=True)
def _quiet_structured_logs() -> None:
    """Library logs at INFO as JSON lines on stderr (pytest shows them for failed tests)."""
    from bus.logs import configure_logging

    configure_logging(json=True, level="INFO")


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """SQLAlchemy URL of a real PostgreSQL: ``SPBE_TEST_POSTGRES_URL`` or a private server."""
    if explicit := os.environ.get("SPBE_TEST_POSTGRES_URL"):
        yield explicit
        return
    from tests.support.databases import postgres_server

    with postgres_server(tmp_path_factory.mktemp("postgres")) as url:
        yield url


@pytest.fixture(scope="session")
def mariadb_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """SQLAlchemy URL of a real MariaDB: ``SPBE_TEST_MARIADB_URL`` or a private server."""
    if explicit := os.environ.get("SPBE_TEST_MARIADB_URL"):
        yield explicit
        return
    from tests.support.databases import mariadb_server

    with mariadb_server(tmp_path_factory.mktemp("mariadb")) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres", "mariadb"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each real database in turn: SQLite (a file), PostgreSQL and MariaDB (servers).

    Every test gets a clean database: a fresh SQLite file, or a fresh schema/database on
    the session's server.
    """
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    import sqlalchemy as sa

    base_url = request.getfixturevalue(f"{request.param}_url")
    name = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(base_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return str(
        sa.engine.make_url(base_url).set(database=name).render_as_string(hide_password=False)
    )
