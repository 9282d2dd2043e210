"""Run the gateway's example clients (docs/api/clients) and read what they print.

Each client prints one JSON line per answer, ``{"step", "status", "body"}``, for the steps
``token``, ``umkm`` and ``penduduk``. ``env`` holds the ``SPBE_API_*`` variables
(SPBE_API_URL, SPBE_API_CLIENT_ID, SPBE_API_CLIENT_SECRET, SPBE_API_CA, SPBE_API_NIK;
optional SPBE_API_SCOPE, SPBE_API_IDEMPOTENCY_KEY); it is laid over this process's
environment with every inherited ``SPBE_API_*`` removed, so a test controls them all.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

CLIENTS = Path(__file__).resolve().parents[2] / "docs" / "api" / "clients"
JAVA_CLIENT = CLIENTS / "GatewayClient.java"
PHP_CLIENT = CLIENTS / "gateway_client.php"
RUN_TIMEOUT_S = 120.0

__all__ = [
    "JAVA_CLIENT",
    "PHP_CLIENT",
    "compile_java_client",
    "parse_json_lines",
    "run_java_client",
    "run_php_client",
]


def compile_java_client(workdir: Path) -> Path:
    """Compile GatewayClient.java into ``workdir/classes``; return that folder."""
    javac = shutil.which("javac")
    if javac is None:
        raise FileNotFoundError("javac is not on PATH (a JDK 17 is needed)")
    classes = workdir / "classes"
    _run([javac, "-Xlint:all", "-Werror", "-d", str(classes), str(JAVA_CLIENT)], None, workdir)
    return classes


def run_java_client(env: dict[str, str], workdir: Path) -> list[dict[str, Any]]:
    """Compile and run the Java client with ``env``; its JSON lines, parsed."""
    classes = compile_java_client(workdir)
    java = shutil.which("java")
    if java is None:
        raise FileNotFoundError("java is not on PATH")
    return parse_json_lines(_run([java, "-cp", str(classes), "GatewayClient"], env, workdir))


def run_php_client(env: dict[str, str], workdir: Path) -> list[dict[str, Any]]:
    """Run the PHP client with ``env``; its JSON lines, parsed."""
    php = shutil.which("php")
    if php is None:
        raise FileNotFoundError("php is not on PATH (php-cli with the curl extension)")
    return parse_json_lines(_run([php, str(PHP_CLIENT)], env, workdir))


def parse_json_lines(text: str) -> list[dict[str, Any]]:
    """Each non-empty line of ``text`` as a JSON object."""
    lines = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise AssertionError(f"line {number} is not JSON: {exc.msg}") from None
    return lines


def _run(command: list[str], env: dict[str, str] | None, workdir: Path) -> str:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SPBE_API_")}
    environment.update(env or {})
    done = subprocess.run(
        command,
        cwd=workdir,
        env=environment,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(
            f"{Path(command[0]).name} exited {done.returncode}\n"
            f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        )
    return done.stdout
