"""``scripts/prepare-machine``: the one set-up step that ``make`` and ``.ci/run`` share.

The script is run for real with a ``PATH`` that lacks the JDK, Maven, make, git, the
MariaDB binaries and PHP; ``apt-get`` on that ``PATH`` is a recorder, so the tests see exactly what
would be installed without changing this machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "prepare-machine"
# What a machine without the JDK, Maven, make, git, MariaDB and PHP is missing (PostgreSQL
# is found by its fixed path under /usr/lib/postgresql, so it is only listed when absent).
EXPECTED = [
    "openjdk-17-jre-headless",
    "maven",
    "make",
    "git",
    "mariadb-server",
    "mariadb-client",
    "openjdk-17-jdk-headless",
    "php-cli",
    "php-curl",
    "graphviz",
    "chromium",
    "chromium-driver",
    "prometheus",
]
BASICS = ["bash", "sh", "sed", "id", "ls", "env", "cat", "dirname"]


@pytest.fixture
def bare_path() -> Iterator[Path]:
    """A world-readable bin folder with only basic tools, python3 and a recording apt-get."""
    with tempfile.TemporaryDirectory(dir="/tmp") as folder:
        root = Path(folder)
        root.chmod(0o755)
        bin_dir = root / "bin"
        bin_dir.mkdir(mode=0o755)
        for tool in BASICS:
            found = shutil.which(tool)
            assert found, tool
            (bin_dir / tool).symlink_to(found)
        (bin_dir / "python3").symlink_to(sys.executable)
        record = root / "record"
        record.mkdir(mode=0o777)
        record.chmod(0o777)
        apt = bin_dir / "apt-get"
        apt.write_text(f'#!/bin/sh\necho "$@" >> {record}/apt-get.calls\n')
        apt.chmod(0o755)
        yield bin_dir


def _run(bin_dir: Path, *args: str, as_nobody: bool = False) -> subprocess.CompletedProcess[str]:
    cmd = ["bash", str(SCRIPT), *args]
    if as_nobody:
        runuser = shutil.which("runuser")
        assert runuser, "runuser (util-linux) switches to an unprivileged user"
        cmd = [runuser, "-u", "nobody", "--", *cmd]
    return subprocess.run(
        cmd,
        env={"PATH": str(bin_dir), "HOME": str(bin_dir.parent)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _apt_calls(bin_dir: Path) -> list[str]:
    calls = bin_dir.parent / "record" / "apt-get.calls"
    return calls.read_text().splitlines() if calls.exists() else []


def test_check_lists_what_is_missing_and_installs_nothing(bare_path: Path) -> None:
    """``--check`` names every missing package, prints the install command, exits 1."""
    done = _run(bare_path, "--check")
    assert done.returncode == 1
    assert f"missing: {' '.join(EXPECTED)}" in done.stderr
    assert f"apt-get install -y --no-install-recommends {' '.join(EXPECTED)}" in done.stderr
    assert _apt_calls(bare_path) == []


def test_a_user_who_is_not_root_gets_the_command_and_a_non_zero_exit(bare_path: Path) -> None:
    """Without root nothing is installed: the exact command is printed and the exit is 1."""
    done = _run(bare_path, as_nobody=os.geteuid() == 0)
    assert done.returncode == 1, done.stderr
    assert "install them as root" in done.stderr
    assert "sudo sh -c 'apt-get update && " in done.stderr
    assert _apt_calls(bare_path) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="the install branch runs only as root")
def test_root_installs_exactly_the_missing_packages(bare_path: Path) -> None:
    """As root the script runs apt-get for the missing packages, and nothing else."""
    done = _run(bare_path)
    assert done.returncode == 0, done.stderr
    assert _apt_calls(bare_path) == [
        "update -qq",
        f"install -y -qq --no-install-recommends {' '.join(EXPECTED)}",
    ]


def test_this_machine_is_prepared() -> None:
    """``make test`` ran the script before pytest, so here nothing is missing."""
    done = subprocess.run(
        [str(SCRIPT), "--check"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "everything needed is installed" in done.stdout


def test_an_unknown_option_is_refused() -> None:
    done = subprocess.run(
        [str(SCRIPT), "--instal"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert "unknown option '--instal'" in done.stderr


def test_make_and_ci_share_the_one_package_list() -> None:
    """``.ci/run`` and the Makefile call the script; neither keeps a package list of its own."""
    ci = (REPO / ".ci" / "run").read_text()
    makefile = (REPO / "Makefile").read_text()
    assert "scripts/prepare-machine" in ci
    assert "scripts/prepare-machine" in makefile
    for text in (ci, makefile):
        assert "apt-get" not in text
        assert "mariadb" not in text
    assert "make test" in ci
