"""Resolve the Apache Kafka broker jars from Maven Central into a per-user cache.

Kafka's published POM (``org.apache.kafka:kafka_2.13``) carries the broker and its
storage tool but no logging backend, so the log4j2 binding is added here and
``slf4j-api`` pinned to the 1.7 line that binding speaks. Resolution runs once per
Kafka version; later calls find the finished cache and return at once.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bus.errors import ArtifactResolutionError, MavenNotFoundError
from bus.logs import get_logger

__all__ = ["LOG4J_VERSION", "SLF4J_VERSION", "default_cache_dir", "render_pom", "resolve_kafka"]

LOG4J_VERSION = "2.24.3"
SLF4J_VERSION = "1.7.36"
DEPENDENCY_PLUGIN_VERSION = "3.8.1"
_COMPLETE_MARKER = ".complete"
_NETWORK_HINTS = (
    "Could not transfer",
    "UnknownHostException",
    "Connection refused",
    "Connect to",
    "Cannot access",
    "timed out",
    "Network is unreachable",
    "No route to host",
)

log = get_logger(__name__)


def default_cache_dir() -> Path:
    """``$SPBE_CACHE_DIR``, else ``$XDG_CACHE_HOME/spbe-bus``, else ``~/.cache/spbe-bus``."""
    if explicit := os.environ.get("SPBE_CACHE_DIR"):
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "spbe-bus"


def render_pom(kafka_version: str) -> str:
    """A POM whose runtime dependencies are exactly what the broker needs."""
    deps = [
        ("org.apache.kafka", "kafka_2.13", kafka_version),
        ("org.apache.logging.log4j", "log4j-slf4j-impl", LOG4J_VERSION),
        ("org.apache.logging.log4j", "log4j-core", LOG4J_VERSION),
        ("org.apache.logging.log4j", "log4j-api", LOG4J_VERSION),
        ("org.slf4j", "slf4j-api", SLF4J_VERSION),
    ]
    dep_xml = "\n".join(
        f"    <dependency><groupId>{g}</groupId><artifactId>{a}</artifactId>"
        f"<version>{v}</version></dependency>"
        for g, a, v in deps
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>id.go.spbe</groupId>
  <artifactId>spbe-bus-kafka-runtime</artifactId>
  <version>{kafka_version}</version>
  <packaging>pom</packaging>
  <dependencies>
{dep_xml}
  </dependencies>
</project>
"""


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _find_maven(maven: str | None) -> str:
    candidate = maven or os.environ.get("SPBE_MAVEN") or "mvn"
    found = shutil.which(candidate)
    if found is None:
        raise MavenNotFoundError(
            f"Maven ('{candidate}') was not found on PATH; it is needed once per Kafka "
            "version to fetch the broker jars from Maven Central",
            fix="install Maven (Debian: apt-get install maven), or point SPBE_KAFKA_LIBS "
            "at a directory that already holds the Kafka jars",
        )
    return found


def resolve_kafka(
    kafka_version: str,
    *,
    cache_dir: Path | None = None,
    maven: str | None = None,
    maven_settings: Path | None = None,
    maven_repo_local: Path | None = None,
) -> Path:
    """Return a directory holding every jar the broker needs, resolving it once.

    ``SPBE_KAFKA_LIBS`` (a directory of jars, e.g. a Kafka distribution's ``libs/``)
    skips Maven entirely. Otherwise the jars land in
    ``<cache>/kafka/<version>/libs``, written to a temporary directory first and
    moved into place only when Maven succeeded, so an interrupted run leaves no
    half-filled cache behind.
    """
    if explicit := os.environ.get("SPBE_KAFKA_LIBS"):
        libs = Path(explicit)
        if not any(libs.glob("kafka_2.13-*.jar")):
            raise ArtifactResolutionError(
                f"SPBE_KAFKA_LIBS={libs} holds no kafka_2.13-*.jar",
                fix="point SPBE_KAFKA_LIBS at a Kafka distribution's libs/ directory, "
                "or unset it to resolve the jars from Maven Central",
            )
        return libs

    root = (cache_dir or default_cache_dir()) / "kafka" / kafka_version
    libs = root / "libs"
    if (root / _COMPLETE_MARKER).exists():
        return libs

    mvn = _find_maven(maven)
    with _exclusive(root.parent / f".{kafka_version}.lock"):
        if (root / _COMPLETE_MARKER).exists():
            return libs
        root.mkdir(parents=True, exist_ok=True)
        log.info("kafka.resolve.start", version=kafka_version, cache=str(root))
        with tempfile.TemporaryDirectory(dir=root, prefix=".resolve-") as work:
            work_dir = Path(work)
            (work_dir / "pom.xml").write_text(render_pom(kafka_version))
            staging = work_dir / "libs"
            cmd = [
                mvn,
                "-B",
                "-q",
                "-f",
                str(work_dir / "pom.xml"),
                "-Dstyle.color=never",
                f"org.apache.maven.plugins:maven-dependency-plugin:{DEPENDENCY_PLUGIN_VERSION}"
                ":copy-dependencies",
                f"-DoutputDirectory={staging}",
                "-DincludeScope=runtime",
            ]
            if maven_settings is not None:
                cmd += ["-s", str(maven_settings)]
            if maven_repo_local is not None:
                cmd.append(f"-Dmaven.repo.local={maven_repo_local}")
            result = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if result.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
                raise _resolution_error(kafka_version, result.stdout + result.stderr)
            if libs.exists():
                shutil.rmtree(libs)
            staging.rename(libs)
        (root / _COMPLETE_MARKER).write_text(kafka_version + "\n")
        log.info("kafka.resolve.done", version=kafka_version, jars=len(list(libs.glob("*.jar"))))
    return libs


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_BOILERPLATE = ("re-run maven", "[help 1]", "for more information", "to see the full stack")


def _maven_summary(output: str) -> str:
    """Maven's own explanation, without colour codes and its generic advice."""
    lines = []
    for raw in _ANSI.sub("", output).splitlines():
        line = raw.strip()
        text = line.removeprefix("[ERROR]").strip().lower()
        if not text or text.startswith(_BOILERPLATE):
            continue
        lines.append(line)
    return "\n".join(lines[-8:])


def _resolution_error(kafka_version: str, output: str) -> ArtifactResolutionError:
    summary = _maven_summary(output)
    if "was not found in" in output:
        return ArtifactResolutionError(
            f"Apache Kafka {kafka_version} is not on Maven Central.\n{summary}",
            fix="check the version (SPBE_KAFKA_VERSION / --kafka-version); Maven caches a "
            "miss, so after fixing a typo run again with the right version",
        )
    if any(hint in output for hint in _NETWORK_HINTS):
        return ArtifactResolutionError(
            f"Maven Central is unreachable: could not download Apache Kafka {kafka_version}.\n"
            f"{summary}",
            fix="check the network or proxy (Maven reads ~/.m2/settings.xml), or point "
            "SPBE_KAFKA_LIBS at a directory that already holds the Kafka jars",
        )
    return ArtifactResolutionError(
        f"Maven could not resolve Apache Kafka {kafka_version}.\n{summary}",
        fix="read Maven's message above; 'mvn -v' checks the Maven install",
    )
