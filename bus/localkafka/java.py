"""Find a Java runtime new enough for the Kafka 4 broker (Java 17+)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from bus.errors import JavaNotFoundError

__all__ = ["MIN_JAVA_MAJOR", "find_java", "java_major_version"]

MIN_JAVA_MAJOR = 17
_INSTALL_HINT = "install a JDK 17 or newer (Debian: apt-get install openjdk-17-jre-headless)"


def java_major_version(java: str) -> int:
    """The major version ``java -version`` reports (``1.8`` counts as 8)."""
    try:
        result = subprocess.run(
            [java, "-version"], capture_output=True, text=True, check=False, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise JavaNotFoundError(
            f"could not run '{java} -version': {exc}", fix=_INSTALL_HINT
        ) from exc
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if match is None:
        raise JavaNotFoundError(
            f"'{java} -version' printed no version: {result.stderr.strip()[:200]}",
            fix=_INSTALL_HINT,
        )
    major = int(match.group(1))
    if major == 1 and match.group(2):
        major = int(match.group(2))
    return major


def find_java(java: str | None = None) -> str:
    """Path of a Java 17+ executable: the argument, ``$SPBE_JAVA``, ``$JAVA_HOME``, PATH."""
    candidates: list[str] = []
    if java:
        candidates.append(java)
    elif explicit := os.environ.get("SPBE_JAVA"):
        candidates.append(explicit)
    else:
        if home := os.environ.get("JAVA_HOME"):
            candidates.append(str(Path(home) / "bin" / "java"))
        candidates.append("java")
    for candidate in candidates:
        found = shutil.which(candidate)
        if found is None:
            continue
        major = java_major_version(found)
        if major < MIN_JAVA_MAJOR:
            raise JavaNotFoundError(
                f"{found} is Java {major}; the Kafka broker needs Java {MIN_JAVA_MAJOR} or newer",
                fix=f"{_INSTALL_HINT}, then set JAVA_HOME or SPBE_JAVA to it",
            )
        return found
    raise JavaNotFoundError(
        f"no Java runtime found (looked for: {', '.join(candidates)})",
        fix=f"{_INSTALL_HINT}, or set SPBE_JAVA to the java executable",
    )
