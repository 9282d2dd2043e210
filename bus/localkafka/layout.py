"""The shape of a local KRaft cluster and the files that describe it (pure: no IO).

A cluster is ``nodes`` combined broker+controller processes on loopback. Node ``i``
(1-based id) listens for clients on ``broker_ports[i-1]`` and for the controller
quorum on ``controller_ports[i-1]``; a secured cluster (``secure``) also has a TLS
listener for replication between nodes on ``replication_ports[i-1]``, and its clients
use SASL_SSL (``secured.py``). The settings follow what a 2-core machine can
carry: internal topics with one partition, no initial rebalance delay, a small
log-cleaner buffer and a modest heap.
"""

from __future__ import annotations

import base64
import os
import uuid
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bus.localkafka.secured import NodeListeners, secured_settings

__all__ = [
    "DEFAULT_BROKER_PORT",
    "DEFAULT_HEAP_MB",
    "DEFAULT_HOST",
    "DEFAULT_KAFKA_VERSION",
    "ClusterLayout",
    "default_kafka_version",
    "new_cluster_id",
    "node_name",
    "render_log4j2",
    "render_server_properties",
]

#: The Kafka release a new local cluster runs; ``SPBE_KAFKA_VERSION`` or ``--kafka-version``
#: choose another 4.x release from Maven Central.
DEFAULT_KAFKA_VERSION = "4.1.2"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_BROKER_PORT = 9092
DEFAULT_HEAP_MB = 512
LOG_CLEANER_DEDUPE_BUFFER_BYTES = 16 * 1024 * 1024


def default_kafka_version() -> str:
    """``$SPBE_KAFKA_VERSION``, else :data:`DEFAULT_KAFKA_VERSION`."""
    return os.environ.get("SPBE_KAFKA_VERSION") or DEFAULT_KAFKA_VERSION


def node_name(node_id: int) -> str:
    """A node's name: its certificate's common name in a secured cluster."""
    return f"kafka-{node_id}"


def new_cluster_id() -> str:
    """A Kafka cluster id: a random UUID as 22 characters of URL-safe base64.

    Kafka's own ``random-uuid`` never starts with ``-`` (it would read as a flag);
    neither does this.
    """
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


class ClusterLayout(BaseModel):
    """Where each node of a local cluster listens, and how it is sized."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cluster_id: str = Field(default_factory=new_cluster_id, min_length=22, max_length=22)
    kafka_version: str = DEFAULT_KAFKA_VERSION
    host: str = DEFAULT_HOST
    broker_ports: tuple[int, ...] = (DEFAULT_BROKER_PORT,)
    controller_ports: tuple[int, ...] = (DEFAULT_BROKER_PORT + 1,)
    heap_mb: int = Field(default=DEFAULT_HEAP_MB, ge=128)
    #: SASL_SSL for clients, TLS between nodes, the StandardAuthorizer (``secured.py``).
    secure: bool = False
    replication_ports: tuple[int, ...] = ()

    @model_validator(mode="after")
    def _ports_line_up(self) -> Self:
        if len(self.broker_ports) != len(self.controller_ports):
            raise ValueError("broker_ports and controller_ports must have one entry per node")
        if len(self.broker_ports) not in (1, 3):
            raise ValueError("a local cluster has 1 or 3 nodes")
        if self.secure and len(self.replication_ports) != len(self.broker_ports):
            raise ValueError("a secured cluster has one replication port per node")
        if not self.secure and self.replication_ports:
            raise ValueError("replication_ports belong to a secured cluster (secure: true)")
        every = self.broker_ports + self.controller_ports + self.replication_ports
        if len(set(every)) != len(every):
            raise ValueError(f"ports must all differ, got {sorted(every)}")
        for port in every:
            if not 1 <= port <= 65535:
                raise ValueError(f"port {port} is outside 1-65535")
        return self

    @classmethod
    def for_base_port(
        cls, *, nodes: int = 1, port: int = DEFAULT_BROKER_PORT, **kwargs: object
    ) -> ClusterLayout:
        """Ports counted up from ``port``: brokers first, then controllers, then replication.

        One node on 9092 uses 9092 (clients) and 9093 (controller); three nodes use
        9092-9094 for clients and 9095-9097 for the controller quorum. A secured cluster
        (``secure=True``) adds one replication port per node after those (9094; 9098-9100).
        """
        brokers = tuple(port + i for i in range(nodes))
        controllers = tuple(port + nodes + i for i in range(nodes))
        fields: dict[str, object] = {"broker_ports": brokers, "controller_ports": controllers}
        if kwargs.get("secure"):
            fields["replication_ports"] = tuple(port + 2 * nodes + i for i in range(nodes))
        return cls.model_validate({**fields, **kwargs})

    @property
    def nodes(self) -> int:
        return len(self.broker_ports)

    @property
    def node_ids(self) -> range:
        return range(1, self.nodes + 1)

    @property
    def replication_factor(self) -> int:
        """Replication for internal topics: every node, so one loss is survivable."""
        return self.nodes

    @property
    def min_insync_replicas(self) -> int:
        return 2 if self.nodes >= 3 else 1

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"{self.host}:{p}" for p in self.broker_ports)

    def broker_port(self, node_id: int) -> int:
        return self.broker_ports[node_id - 1]

    def controller_port(self, node_id: int) -> int:
        return self.controller_ports[node_id - 1]

    def replication_port(self, node_id: int) -> int:
        return self.replication_ports[node_id - 1]

    def all_ports(self, node_id: int) -> tuple[int, ...]:
        """Every port node ``node_id`` listens on."""
        ports = (self.broker_port(node_id), self.controller_port(node_id))
        return ports + ((self.replication_port(node_id),) if self.secure else ())

    def quorum_voters(self) -> str:
        return ",".join(
            f"{node_id}@{self.host}:{self.controller_port(node_id)}" for node_id in self.node_ids
        )


def _plaintext_listeners(layout: ClusterLayout, node_id: int) -> dict[str, object]:
    host = layout.host
    return {
        "listeners": (
            f"PLAINTEXT://{host}:{layout.broker_port(node_id)},"
            f"CONTROLLER://{host}:{layout.controller_port(node_id)}"
        ),
        "advertised.listeners": f"PLAINTEXT://{host}:{layout.broker_port(node_id)}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
    }


def render_server_properties(
    layout: ClusterLayout,
    node_id: int,
    data_dir: Path,
    *,
    keystore: Path | None = None,
    truststore: Path | None = None,
) -> str:
    """The ``server.properties`` of one combined broker+controller node.

    A secured layout needs the node's PEM ``keystore`` (key and chain) and the CA's PEM
    ``truststore``.
    """
    host = layout.host
    rf = layout.replication_factor
    isr = layout.min_insync_replicas
    if layout.secure:
        if keystore is None or truststore is None:
            raise ValueError("a secured node needs its keystore and the truststore")
        listeners = secured_settings(
            NodeListeners(
                client_bind=f"{host}:{layout.broker_port(node_id)}",
                client_advertised=f"{host}:{layout.broker_port(node_id)}",
                controller=f"{host}:{layout.controller_port(node_id)}",
                replication=f"{host}:{layout.replication_port(node_id)}",
                keystore=str(keystore),
                truststore=str(truststore),
            ),
            node_names=[node_name(n) for n in layout.node_ids],
        )
    else:
        listeners = _plaintext_listeners(layout, node_id)
    settings: dict[str, object] = {
        "process.roles": "broker,controller",
        "node.id": node_id,
        "controller.quorum.voters": layout.quorum_voters(),
        **listeners,
        "log.dirs": str(data_dir),
        "num.partitions": 1,
        "default.replication.factor": rf,
        "min.insync.replicas": isr,
        "auto.create.topics.enable": "false",
        "offsets.topic.replication.factor": rf,
        "offsets.topic.num.partitions": 1,
        "transaction.state.log.replication.factor": rf,
        "transaction.state.log.min.isr": isr,
        "transaction.state.log.num.partitions": 1,
        "share.coordinator.state.topic.replication.factor": rf,
        "share.coordinator.state.topic.min.isr": isr,
        "share.coordinator.state.topic.num.partitions": 1,
        "group.initial.rebalance.delay.ms": 0,
        "log.cleaner.dedupe.buffer.size": LOG_CLEANER_DEDUPE_BUFFER_BYTES,
        "num.network.threads": 2,
        "num.io.threads": 4,
        "num.recovery.threads.per.data.dir": 1,
    }
    lines = ["# Written by spbe-bus kafka up; edits are overwritten on the next start."]
    lines += [f"{key}={value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def render_log4j2(log_file: Path) -> str:
    """A log4j2 configuration writing the broker log to ``log_file``, rolled at 20 MiB."""
    return f"""\
status = warn
appender.file.type = RollingFile
appender.file.name = FILE
appender.file.fileName = {log_file}
appender.file.filePattern = {log_file}.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.clients.name = org.apache.kafka.clients
logger.clients.level = WARN
"""
