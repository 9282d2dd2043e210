"""Run a real Apache Kafka (KRaft) cluster on this machine from the Maven Central jars.

Layout of a data directory::

    <data_dir>/cluster.json          the ClusterLayout this directory was formatted for
    <data_dir>/node-<id>/server.properties, log4j2.properties
    <data_dir>/node-<id>/data/       the node's log.dirs (survives down/up)
    <data_dir>/node-<id>/kafka.log   the broker log;  kafka.out: JVM stdout/stderr
    <data_dir>/node-<id>/kafka.pid   the PID of the running broker
    <data_dir>/tls/, node-<id>/tls/, credentials.json   a secured cluster's CA, node
                                     certificates and operator credentials (secure_setup.py)

Every process this module signals is one whose PID file it wrote and whose command
line names this node's ``server.properties``.

Why this module is longer than 400 lines: it is the one owner of a cluster's processes
and files (up, status, down and the PID files they share); split, the rule above would
have several homes. What is not about processes lives beside it: the layout and rendered
configs in ``layout.py``, the jars in ``artifacts.py``, Java in ``java.py``, process checks
in ``processes.py``, readiness in ``readiness.py``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bus.connection import KafkaConnection
from bus.errors import (
    BrokerNotReadyError,
    ClusterLayoutError,
    LocalKafkaError,
    PortInUseError,
)
from bus.localkafka.artifacts import resolve_kafka
from bus.localkafka.java import find_java
from bus.localkafka.layout import (
    DEFAULT_BROKER_PORT,
    ClusterLayout,
    default_kafka_version,
    render_log4j2,
    render_server_properties,
)
from bus.localkafka.processes import is_alive, is_our_broker, read_pid
from bus.localkafka.readiness import broker_ids
from bus.localkafka.secure_setup import (
    credentials_path,
    operator_connection,
    prepare_node_tls,
    prepare_operator,
    scram_format_argument,
)
from bus.logs import get_logger

__all__ = [
    "DEFAULT_READY_TIMEOUT_S",
    "DEFAULT_STOP_TIMEOUT_S",
    "ClusterStatus",
    "LocalKafka",
    "NodeStatus",
    "default_data_dir",
]

DEFAULT_READY_TIMEOUT_S = 120.0
DEFAULT_STOP_TIMEOUT_S = 30.0
_LAYOUT_FILE = "cluster.json"

log = get_logger(__name__)


def default_data_dir() -> Path:
    """``$SPBE_KAFKA_HOME``, else ``$XDG_STATE_HOME/spbe-bus/kafka`` (``~/.local/state``)."""
    if explicit := os.environ.get("SPBE_KAFKA_HOME"):
        return Path(explicit)
    xdg = os.environ.get("XDG_STATE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "state") / "spbe-bus" / "kafka"


@dataclass(frozen=True)
class NodeStatus:
    node_id: int
    broker_port: int
    controller_port: int
    pid: int | None
    running: bool
    log_file: Path


@dataclass(frozen=True)
class ClusterStatus:
    data_dir: Path
    layout: ClusterLayout | None
    nodes: tuple[NodeStatus, ...] = ()
    answering: frozenset[int] = field(default_factory=frozenset)

    @property
    def healthy(self) -> bool:
        """Every node runs and answers a metadata request."""
        return (
            self.layout is not None
            and all(n.running for n in self.nodes)
            and self.answering >= set(self.layout.node_ids)
        )


class LocalKafka:
    """Start, stop and inspect a local KRaft cluster kept in ``data_dir``."""

    def __init__(
        self,
        data_dir: Path | None = None,
        *,
        java: str | None = None,
        cache_dir: Path | None = None,
        ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S,
        stop_timeout_s: float = DEFAULT_STOP_TIMEOUT_S,
    ) -> None:
        self.data_dir = (data_dir or default_data_dir()).resolve()
        self._java = java
        self._cache_dir = cache_dir
        self.ready_timeout_s = ready_timeout_s
        self.stop_timeout_s = stop_timeout_s

    # -- files ---------------------------------------------------------------------------

    def node_dir(self, node_id: int) -> Path:
        return self.data_dir / f"node-{node_id}"

    def _pid_file(self, node_id: int) -> Path:
        return self.node_dir(node_id) / "kafka.pid"

    def _properties_file(self, node_id: int) -> Path:
        return self.node_dir(node_id) / "server.properties"

    def log_file(self, node_id: int) -> Path:
        return self.node_dir(node_id) / "kafka.log"

    def _out_file(self, node_id: int) -> Path:
        return self.node_dir(node_id) / "kafka.out"

    def stored_layout(self) -> ClusterLayout | None:
        path = self.data_dir / _LAYOUT_FILE
        if not path.exists():
            return None
        return ClusterLayout.model_validate_json(path.read_text())

    def _store_layout(self, layout: ClusterLayout) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / _LAYOUT_FILE).write_text(layout.model_dump_json(indent=2) + "\n")

    # -- state ---------------------------------------------------------------------------

    def running_pid(self, node_id: int) -> int | None:
        """The PID of this node's broker if it runs, else ``None``.

        A PID file that does not name a live broker of this cluster (left by a crash, a
        SIGKILL or a reboot) is stale: it is removed, and the node counts as not running.
        """
        pid_file = self._pid_file(node_id)
        pid = read_pid(pid_file)
        if pid is not None and is_alive(pid) and is_our_broker(pid, self._properties_file(node_id)):
            return pid
        if pid_file.exists():
            pid_file.unlink(missing_ok=True)
            log.info("kafka.node.stale_pid_removed", node=node_id, pid=pid, pid_file=str(pid_file))
        return None

    def status(self, *, probe_timeout_s: float = 5.0) -> ClusterStatus:
        layout = self.stored_layout()
        if layout is None:
            return ClusterStatus(self.data_dir, None)
        nodes = []
        for node_id in layout.node_ids:
            pid = read_pid(self._pid_file(node_id))
            running = (
                pid is not None
                and is_alive(pid)
                and is_our_broker(pid, self._properties_file(node_id))
            )
            nodes.append(
                NodeStatus(
                    node_id=node_id,
                    broker_port=layout.broker_port(node_id),
                    controller_port=layout.controller_port(node_id),
                    pid=pid,
                    running=running,
                    log_file=self.log_file(node_id),
                )
            )
        answering: set[int] = set()
        if any(n.running for n in nodes):
            answering = broker_ids(self.connection(layout), timeout_s=probe_timeout_s)
        return ClusterStatus(self.data_dir, layout, tuple(nodes), frozenset(answering))

    def log_tail(self, node_id: int, lines: int = 40) -> str:
        """The last ``lines`` lines of the node's broker log and of its JVM output."""
        parts = []
        for path in (self._out_file(node_id), self.log_file(node_id)):
            if path.exists() and path.stat().st_size:
                text = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"[{path}]\n" + "\n".join(text))
        return "\n".join(parts) if parts else f"(no log yet in {self.node_dir(node_id)})"

    # -- up ------------------------------------------------------------------------------

    def connection(self, layout: ClusterLayout | None = None) -> KafkaConnection:
        """How the operator reaches this cluster: SASL_SSL with the credentials file when
        it is secured, plaintext otherwise."""
        layout = layout or self.stored_layout()
        if layout is None:
            raise LocalKafkaError(
                f"no cluster in {self.data_dir}", fix="start one with 'spbe-bus kafka up'"
            )
        return operator_connection(self.data_dir, layout)

    @property
    def credentials_file(self) -> Path:
        """The operator's credentials of a secured cluster (0600; CA and password)."""
        return credentials_path(self.data_dir)

    def _choose_layout(
        self,
        nodes: int | None,
        port: int | None,
        kafka_version: str | None,
        heap_mb: int | None,
        secure: bool | None,
    ) -> ClusterLayout:
        stored = self.stored_layout()
        if stored is None:
            extra: dict[str, object] = {}
            if heap_mb is not None:
                extra["heap_mb"] = heap_mb
            return ClusterLayout.for_base_port(
                nodes=nodes or 1,
                port=port or DEFAULT_BROKER_PORT,
                kafka_version=kafka_version or default_kafka_version(),
                secure=bool(secure),
                **extra,
            )
        if secure is not None and secure != stored.secure:
            shape = "a secured" if stored.secure else "an unsecured (plaintext)"
            raise ClusterLayoutError(
                f"{self.data_dir} holds {shape} cluster; asked for "
                f"{'a secured' if secure else 'a plaintext'} one",
                fix="use another --data-dir for a different cluster, or remove this one with "
                f"'spbe-bus kafka down --purge --data-dir {self.data_dir}'",
            )
        if nodes is not None and nodes != stored.nodes:
            raise ClusterLayoutError(
                f"{self.data_dir} holds a {stored.nodes}-node cluster; asked for {nodes} nodes",
                fix="use another --data-dir for a different cluster, or remove this one with "
                f"'spbe-bus kafka down --purge --data-dir {self.data_dir}'",
            )
        if port is not None and port != stored.broker_ports[0]:
            raise ClusterLayoutError(
                f"{self.data_dir} holds a cluster on port {stored.broker_ports[0]}; "
                f"asked for port {port}",
                fix="drop --port to reuse the stored ports, use another --data-dir, or remove "
                f"this cluster with 'spbe-bus kafka down --purge --data-dir {self.data_dir}'",
            )
        updates: dict[str, object] = {}
        if kafka_version is not None:
            updates["kafka_version"] = kafka_version
        if heap_mb is not None:
            updates["heap_mb"] = heap_mb
        return stored.model_copy(update=updates)

    def up(
        self,
        *,
        nodes: int | None = None,
        port: int | None = None,
        kafka_version: str | None = None,
        heap_mb: int | None = None,
        secure: bool | None = None,
    ) -> ClusterLayout:
        """Start every node that is not running and wait until all answer clients.

        Idempotent: nodes that run are left alone, so after one node crashed ``up`` starts
        exactly that node; when every node runs this returns the layout at once.
        ``secure`` makes a new cluster the production shape (``secured.py``): SASL_SSL
        with SCRAM for clients, TLS between nodes, ACLs enforced, the operator's
        credentials in :attr:`credentials_file`. A stored cluster keeps its shape.
        """
        layout = self._choose_layout(nodes, port, kafka_version, heap_mb, secure)
        to_start = [n for n in layout.node_ids if self.running_pid(n) is None]
        if not to_start:
            return layout
        _check_ports_free(layout.host, [p for n in to_start for p in layout.all_ports(n)])
        java = find_java(self._java)
        libs = resolve_kafka(layout.kafka_version, cache_dir=self._cache_dir)
        self._store_layout(layout)
        for node_id in to_start:
            self._write_node_files(layout, node_id)
            self._format_if_new(java, libs, layout, node_id)
        started: dict[int, int] = {}
        try:
            for node_id in to_start:
                started[node_id] = self._spawn(java, libs, layout, node_id)
            self._wait_ready(layout, started)
        except BaseException:
            self._abort(started)
            raise
        log.info("kafka.up", bootstrap=layout.bootstrap_servers, nodes=layout.nodes)
        return layout

    def _write_node_files(self, layout: ClusterLayout, node_id: int) -> None:
        node_dir = self.node_dir(node_id)
        (node_dir / "data").mkdir(parents=True, exist_ok=True)
        stores: dict[str, Path] = {}
        if layout.secure:
            tls = prepare_node_tls(self.data_dir, layout, node_id)
            stores = {"keystore": tls.keystore, "truststore": tls.truststore}
        self._properties_file(node_id).write_text(
            render_server_properties(layout, node_id, node_dir / "data", **stores)
        )
        (node_dir / "log4j2.properties").write_text(render_log4j2(self.log_file(node_id)))

    def _java_cmd(self, java: str, libs: Path, node_id: int, heap_mb: int) -> list[str]:
        return [
            java,
            f"-Xms{heap_mb}m",
            f"-Xmx{heap_mb}m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.node_dir(node_id) / 'log4j2.properties'}",
            "-cp",
            f"{libs}/*",
        ]

    def _format_if_new(self, java: str, libs: Path, layout: ClusterLayout, node_id: int) -> None:
        if (self.node_dir(node_id) / "data" / "meta.properties").exists():
            return
        cmd = [
            *self._java_cmd(java, libs, node_id, 256),
            "kafka.tools.StorageTool",
            "format",
            "-t",
            layout.cluster_id,
            "-c",
            str(self._properties_file(node_id)),
        ]
        if layout.secure:
            operator = prepare_operator(self.data_dir, layout)
            cmd += ["--add-scram", scram_format_argument(operator)]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
            raise LocalKafkaError(
                f"formatting KRaft storage for node {node_id} failed:\n{tail}",
                fix=f"remove the cluster with 'spbe-bus kafka down --purge --data-dir "
                f"{self.data_dir}' and start again",
            )

    def _spawn(self, java: str, libs: Path, layout: ClusterLayout, node_id: int) -> int:
        """Start the node detached from this process and return its PID.

        A short-lived ``sh`` starts the JVM in the background and exits, so the broker is
        re-parented to init: it outlives the command that started it and never lingers
        as this process's zombie.
        """
        cmd = [
            *self._java_cmd(java, libs, node_id, layout.heap_mb),
            "kafka.Kafka",
            str(self._properties_file(node_id)),
        ]
        launcher = 'exec 0</dev/null; "$@" >>"$SPBE_KAFKA_OUT" 2>&1 & echo $!'
        result = subprocess.run(
            ["sh", "-c", launcher, "spbe-kafka", *cmd],
            cwd=self.node_dir(node_id),
            env={**os.environ, "SPBE_KAFKA_OUT": str(self._out_file(node_id))},
            capture_output=True,
            text=True,
            check=True,
            start_new_session=True,
        )
        pid = int(result.stdout.strip())
        self._pid_file(node_id).write_text(f"{pid}\n")
        log.info("kafka.node.started", node=node_id, pid=pid, port=layout.broker_port(node_id))
        return pid

    def _wait_ready(self, layout: ClusterLayout, started: dict[int, int]) -> None:
        deadline = time.monotonic() + self.ready_timeout_s
        wanted = set(layout.node_ids)
        while True:
            for node_id, pid in started.items():
                if not is_alive(pid):
                    raise BrokerNotReadyError(
                        f"Kafka node {node_id} (PID {pid}) exited while starting",
                        fix="read the log below; 'spbe-bus kafka logs' shows more",
                        log_tail=self.log_tail(node_id),
                    )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            answering = broker_ids(self.connection(layout), timeout_s=min(5.0, remaining))
            if answering >= wanted:
                return
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
        slowest = min(started)
        raise BrokerNotReadyError(
            f"Kafka did not answer a metadata request on {layout.bootstrap_servers} within "
            f"{self.ready_timeout_s:g}s",
            fix="a loaded machine may need longer (--timeout); otherwise read the log below",
            log_tail=self.log_tail(slowest),
        )

    def _abort(self, started: dict[int, int]) -> None:
        """Stop what this ``up`` started, so a failed start leaves no process behind."""
        for pid in started.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for node_id, pid in started.items():
            deadline = time.monotonic() + 30
            while is_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            self._pid_file(node_id).unlink(missing_ok=True)

    # -- down ----------------------------------------------------------------------------

    def down(self, *, purge: bool = False) -> dict[int, str]:
        """Stop every node (SIGTERM, then SIGKILL after the stop timeout).

        Clears stale PID files. Returns per node what happened: ``stopped``,
        ``killed`` (had to be forced), ``not running`` or ``stale pid file removed``.
        With ``purge`` the whole data directory is deleted afterwards.
        """
        layout = self.stored_layout()
        node_ids: Iterable[int] = layout.node_ids if layout else self._pid_file_nodes()
        outcome: dict[int, str] = {}
        ours: dict[int, int] = {}
        for node_id in node_ids:
            pid = read_pid(self._pid_file(node_id))
            if pid is None:
                outcome[node_id] = "not running"
            elif is_alive(pid) and is_our_broker(pid, self._properties_file(node_id)):
                ours[node_id] = pid
            else:
                outcome[node_id] = "stale pid file removed"
            if node_id not in ours:
                self._pid_file(node_id).unlink(missing_ok=True)
        for pid in ours.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout_s
        while time.monotonic() < deadline and any(is_alive(p) for p in ours.values()):
            time.sleep(0.2)
        for node_id, pid in ours.items():
            if is_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                outcome[node_id] = "killed"
            else:
                outcome[node_id] = "stopped"
        for node_id, pid in ours.items():
            end = time.monotonic() + 30
            while is_alive(pid) and time.monotonic() < end:
                time.sleep(0.1)
            self._pid_file(node_id).unlink(missing_ok=True)
        if purge and self.data_dir.exists():
            if layout is None and not (self.data_dir / _LAYOUT_FILE).exists():
                raise LocalKafkaError(
                    f"{self.data_dir} does not look like a spbe-bus Kafka data directory "
                    f"(no {_LAYOUT_FILE}); not deleting it",
                    fix="check --data-dir",
                )
            shutil.rmtree(self.data_dir)
        log.info("kafka.down", outcome=outcome, purged=purge)
        return outcome

    def _pid_file_nodes(self) -> list[int]:
        found = []
        for path in self.data_dir.glob("node-*/kafka.pid"):
            suffix = path.parent.name.removeprefix("node-")
            if suffix.isdigit():
                found.append(int(suffix))
        return sorted(found)


def _check_ports_free(host: str, ports: Iterable[int]) -> None:
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                raise PortInUseError(
                    f"port {port} on {host} is already in use by another process",
                    fix=f"choose other ports with --port, or find the process with "
                    f"'ss -ltnp | grep :{port}' and stop it",
                ) from exc
