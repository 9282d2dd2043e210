"""The production cluster's ``server.properties``, rendered with the local cluster's security code.

``deploy/kafka/server-{1,2,3}.properties`` are this module's output (``python -m
bus.localkafka.production deploy/kafka`` writes them again; a test fails when the committed
files differ). Their listeners, TLS and authorizer lines come from
:func:`bus.localkafka.secured.secured_settings`, the function every secured test cluster
runs, so the shape deployed is the shape tested. What differs from a local cluster is
sizing (partitions, retention, replication on three machines) and the names: hosts
``kafka-<n>.spbe.internal`` (placeholders for the Diskominfo's own names), the PEM files
under ``/etc/kafka/tls/``, data in ``/var/lib/kafka/data``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bus.localkafka.secured import NodeListeners, secured_settings

__all__ = ["NODES", "render_production_properties", "write_production_files"]

NODES = (1, 2, 3)
CLIENT_PORT = 9092
CONTROLLER_PORT = 9093
REPLICATION_PORT = 9094
TLS_DIR = "/etc/kafka/tls"


def host(node_id: int) -> str:
    return f"kafka-{node_id}.spbe.internal"


def render_production_properties(node_id: int) -> str:
    """``server-<node_id>.properties`` of the three-node production cluster."""
    listeners = NodeListeners(
        client_bind=f"0.0.0.0:{CLIENT_PORT}",
        client_advertised=f"{host(node_id)}:{CLIENT_PORT}",
        controller=f"{host(node_id)}:{CONTROLLER_PORT}",
        replication=f"{host(node_id)}:{REPLICATION_PORT}",
        keystore=f"{TLS_DIR}/{host(node_id)}.keystore.pem",
        truststore=f"{TLS_DIR}/ca.pem",
    )
    settings: dict[str, object] = {
        "process.roles": "broker,controller",
        "node.id": node_id,
        "controller.quorum.voters": ",".join(f"{n}@{host(n)}:{CONTROLLER_PORT}" for n in NODES),
        **secured_settings(listeners, node_names=[host(n) for n in NODES]),
        "log.dirs": "/var/lib/kafka/data",
        "auto.create.topics.enable": "false",
        "default.replication.factor": 3,
        "min.insync.replicas": 2,
        "num.partitions": 6,
        "offsets.topic.replication.factor": 3,
        "transaction.state.log.replication.factor": 3,
        "transaction.state.log.min.isr": 2,
        "share.coordinator.state.topic.replication.factor": 3,
        "share.coordinator.state.topic.min.isr": 2,
        "unclean.leader.election.enable": "false",
        "log.retention.hours": 168,
    }
    header = [
        f"# Apache Kafka 4.1 (KRaft), node {node_id} of 3: combined broker + controller.",
        "# Rendered by 'python -m bus.localkafka.production deploy/kafka' from the code that",
        "# configures every secured test cluster; edit that code, not this file.",
        "# Hosts kafka-1..3.spbe.internal are placeholders for the Diskominfo's own names.",
        f"# Clients: SASL_SSL (SCRAM-SHA-512) on {CLIENT_PORT}. "
        f"Controller quorum ({CONTROLLER_PORT}) and replication ({REPLICATION_PORT})",
        "# use TLS with each node's certificate (CN = its host) on the private network.",
        f"# PEM files in {TLS_DIR}: ca.pem, and <host>.keystore.pem = unencrypted PKCS#8 key",
        "# + certificate chain, mode 0600, owned by the kafka user.",
    ]
    lines = header + [f"{key}={value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def write_production_files(folder: Path) -> list[Path]:
    """Write ``server-<n>.properties`` for every node into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for node_id in NODES:
        path = folder / f"server-{node_id}.properties"
        path.write_text(render_production_properties(node_id))
        written.append(path)
    return written


if __name__ == "__main__":  # pragma: no cover - a maintainer's command
    for written_path in write_production_files(Path(sys.argv[1] if len(sys.argv) > 1 else ".")):
        print(written_path)
