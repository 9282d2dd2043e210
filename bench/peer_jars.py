"""The peers' jars from Maven Central, resolved once into the per-user cache.

* Kafka Connect (``connect-runtime``, ``connect-json``, ``connect-transforms``) of the
  broker's Kafka version, with the broker's log4j2 binding: the worker's class path,
  ``<cache>/connect/<kafka version>/libs``.
* Debezium's PostgreSQL connector with everything it needs (the outbox ``EventRouter``
  lives in ``debezium-connect-plugins`` from 3.6 on, the JDBC driver, protobuf, ...):
  one Connect plugin directory, ``<cache>/connect-plugins/<name>-<version>/<name>``.
  What Connect itself provides (``connect-api``, ``kafka-clients``, slf4j) is left out,
  as Connect's plugin isolation loads those from the worker anyway.

The same recipe as the broker's jars (:mod:`bus.localkafka.artifacts`): a POM naming the
artifacts, ``maven-dependency-plugin:copy-dependencies`` into a staging directory, moved
into place only when Maven succeeded.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bus.localkafka import artifacts

__all__ = [
    "DEBEZIUM_VERSION",
    "Artifact",
    "MavenMiss",
    "connect_artifacts",
    "connect_libs",
    "debezium_postgres",
    "plugin_dir",
    "render_pom",
    "resolve",
]

DEBEZIUM_VERSION = "3.6.1.Final"
#: Left out of a plugin directory: the worker provides them.
PROVIDED_BY_CONNECT = ("connect-api", "kafka-clients", "slf4j-api")
_COMPLETE = ".complete"


@dataclass(frozen=True, slots=True)
class Artifact:
    group: str
    name: str
    version: str

    @property
    def coordinates(self) -> str:
        return f"{self.group}:{self.name}:{self.version}"


class MavenMiss(RuntimeError):
    """Maven could not resolve an artifact (not on Maven Central, or no network)."""

    def __init__(self, names: str, reason: str) -> None:
        super().__init__(f"Maven could not resolve {names}: {reason}")
        self.reason = reason


def connect_artifacts(kafka_version: str) -> tuple[Artifact, ...]:
    """Kafka Connect standalone of ``kafka_version`` and the broker's log4j2 binding."""
    kafka = [
        Artifact("org.apache.kafka", name, kafka_version)
        for name in ("connect-runtime", "connect-json", "connect-transforms")
    ]
    log4j = [
        Artifact("org.apache.logging.log4j", name, artifacts.LOG4J_VERSION)
        for name in ("log4j-slf4j-impl", "log4j-core", "log4j-api")
    ]
    return (*kafka, *log4j, Artifact("org.slf4j", "slf4j-api", artifacts.SLF4J_VERSION))


def debezium_postgres(version: str = DEBEZIUM_VERSION) -> Artifact:
    return Artifact("io.debezium", "debezium-connector-postgres", version)


def render_pom(name: str, wanted: tuple[Artifact, ...]) -> str:
    """A POM whose runtime dependencies are ``wanted`` and what they need."""
    deps = "\n".join(
        f"    <dependency><groupId>{a.group}</groupId><artifactId>{a.name}</artifactId>"
        f"<version>{a.version}</version></dependency>"
        for a in wanted
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>id.go.spbe</groupId>
  <artifactId>spbe-bench-{name}</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
{deps}
  </dependencies>
</project>
"""


def resolve(
    root: Path, name: str, wanted: tuple[Artifact, ...], *, exclude: tuple[str, ...] = ()
) -> Path:
    """``root/name`` holding every jar of ``wanted``, resolved by Maven the first time.

    Raises :class:`MavenMiss` with Maven's own words when an artifact cannot be had.
    """
    target = root / name
    if (root / _COMPLETE).exists():
        return target
    mvn = artifacts._find_maven(None)
    with artifacts._exclusive(root.parent / f".{root.name}.lock"):
        if (root / _COMPLETE).exists():
            return target
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=root, prefix=".resolve-") as work:
            pom = Path(work) / "pom.xml"
            pom.write_text(render_pom(root.name, wanted))
            staging = Path(work) / "jars"
            cmd = [
                mvn,
                "-B",
                "-q",
                "-f",
                str(pom),
                "-Dstyle.color=never",
                "org.apache.maven.plugins:maven-dependency-plugin:"
                f"{artifacts.DEPENDENCY_PLUGIN_VERSION}:copy-dependencies",
                f"-DoutputDirectory={staging}",
                "-DincludeScope=runtime",
            ]
            if exclude:
                cmd.append(f"-DexcludeArtifactIds={','.join(exclude)}")
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode == 0 and any(staging.glob("*.jar")):
                if target.exists():
                    shutil.rmtree(target)
                staging.rename(target)
        if not target.exists():
            root.rmdir()  # nothing else is in it: leave no empty cache entry behind
            names = ", ".join(a.coordinates for a in wanted)
            summary = artifacts._maven_summary(done.stdout + done.stderr)
            raise MavenMiss(names, _reason(summary))
        (root / _COMPLETE).write_text(", ".join(a.coordinates for a in wanted) + "\n")
    return target


def _reason(summary: str) -> str:
    """Maven's words for the miss (``g:a:jar:v was not found``), without the registry."""
    found = re.search(r"Could not find artifact \S+|\S+ was not found", summary)
    return found.group(0) if found else summary[-400:]


def connect_libs(kafka_version: str) -> Path:
    """The Connect worker's class path directory for ``kafka_version``."""
    root = artifacts.default_cache_dir() / "connect" / kafka_version
    return resolve(root, "libs", connect_artifacts(kafka_version))


def plugin_dir(artifact: Artifact) -> Path:
    """A Connect ``plugin.path`` entry holding ``artifact`` as one isolated plugin."""
    root = artifacts.default_cache_dir() / "connect-plugins" / f"{artifact.name}-{artifact.version}"
    resolve(root, artifact.name, (artifact,), exclude=PROVIDED_BY_CONNECT)
    return root
