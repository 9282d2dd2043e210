"""A Kafka Connect standalone worker in a JVM of its own, driven through its REST API.

The worker lives in a directory the caller owns (properties, offsets file, logs) and
listens on a free loopback port below 32768. :class:`ConnectWorker` is a context
manager: on leaving, also on error, the JVM it started is stopped by its PID (SIGTERM,
then SIGKILL after 30 s).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

from bench.connect_config import render_properties, worker_properties
from bench.peer_jars import connect_libs
from bus.localkafka.java import find_java
from bus.localkafka.layout import render_log4j2
from tests.support.ports import free_port_block

__all__ = ["ConnectError", "ConnectWorker"]

HEAP_MB = 768


class ConnectError(RuntimeError):
    """The worker did not start, or a connector did not reach the state asked for."""


class ConnectWorker:
    """Start, drive and stop one standalone worker in ``base``."""

    def __init__(
        self, base: Path, *, bootstrap: str, kafka_version: str, plugin_path: list[Path]
    ) -> None:
        self.base = base
        self.bootstrap = bootstrap
        self.kafka_version = kafka_version
        self.plugin_path = plugin_path
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        parts = []
        for name in ("connect.out", "connect.log"):
            path = self.base / name
            if path.exists():
                parts += path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(parts)

    def start(self, timeout_s: float = 240.0) -> str:
        """Start the JVM and wait until its REST API answers; return its URL."""
        libs = connect_libs(self.kafka_version)
        java = find_java()
        self.base.mkdir(parents=True, exist_ok=True)
        self.port = free_port_block(1)
        properties = self.base / "worker.properties"
        properties.write_text(
            render_properties(
                worker_properties(
                    bootstrap=self.bootstrap,
                    rest_port=self.port,
                    offsets_file=self.base / "connect.offsets",
                    plugin_path=self.plugin_path,
                )
            )
        )
        log4j = self.base / "log4j2.properties"
        log4j.write_text(render_log4j2(self.base / "connect.log"))
        cmd = [
            java,
            f"-Xms{HEAP_MB // 2}m",
            f"-Xmx{HEAP_MB}m",
            "-XX:+UseG1GC",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j}",
            "-cp",
            f"{libs}/*",
            "org.apache.kafka.connect.cli.ConnectStandalone",
            str(properties),
        ]
        with (self.base / "connect.out").open("wb") as out:
            self.process = subprocess.Popen(
                cmd,
                cwd=self.base,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ConnectError(
                    f"Connect exited with {self.process.returncode}:\n" + self.log_tail()
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url, timeout=2).status_code == 200:
                    return self.url
            time.sleep(0.5)
        raise ConnectError(
            f"Connect did not answer on {self.url} in {timeout_s:g} s:\n" + self.log_tail()
        )

    def stop(self) -> None:
        """Stop the JVM this worker started (by its PID), and wait for it."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=30)

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- REST ----------------------------------------------------------------------------

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = httpx.request(method, self.url + path, json=body, timeout=60)
        if response.status_code >= 400:
            raise ConnectError(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response.json() if response.content else None

    def put_connector(self, name: str, config: dict[str, str]) -> None:
        self._call("PUT", f"/connectors/{name}/config", {"name": name, **config})

    def status(self, name: str) -> dict[str, Any]:
        status: dict[str, Any] = self._call("GET", f"/connectors/{name}/status")
        return status

    def wait_state(self, name: str, state: str, timeout_s: float = 120.0) -> None:
        """Wait until the connector and every task report ``state`` (RUNNING, STOPPED)."""
        deadline = time.monotonic() + timeout_s
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            with contextlib.suppress(ConnectError):
                last = self.status(name)
                tasks = last.get("tasks", [])
                states = {last["connector"]["state"], *(t["state"] for t in tasks)}
                if "FAILED" in states:
                    traces = [t.get("trace", "") for t in tasks if t["state"] == "FAILED"]
                    trace = (traces or [last["connector"].get("trace", "")])[0]
                    raise ConnectError(f"connector {name} failed: {trace[:1500]}")
                if states == {state} and (tasks or state == "STOPPED"):
                    return
            time.sleep(0.3)
        raise ConnectError(f"connector {name} not {state} in {timeout_s:g} s: {last}")

    def stop_connector(self, name: str) -> None:
        """Shut the connector and its tasks down, keeping its offsets (KIP-875)."""
        self._call("PUT", f"/connectors/{name}/stop")
        self.wait_state(name, "STOPPED")

    def resume(self, name: str) -> None:
        self._call("PUT", f"/connectors/{name}/resume")

    def delete(self, name: str) -> None:
        with contextlib.suppress(ConnectError, httpx.HTTPError):
            self._call("DELETE", f"/connectors/{name}")
