"""README.md's shell blocks run as written, or say in their first line that they do not.

Every ```` ```sh ```` block either runs here with bash (``-e``: any failing line fails the
test) in a scratch folder, against the session's broker, or opens with an
``# illustrative:`` comment that says why not and which test runs those commands instead.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
SH_BLOCKS = re.findall(r"```sh\n(.*?)```", README.read_text(), flags=re.DOTALL)
ILLUSTRATIVE = "# illustrative:"
RUNNABLE = [block for block in SH_BLOCKS if not block.startswith(ILLUSTRATIVE)]
SUBJECT = "id.go.spbe.dpmptsp.IzinDiterbitkan.v1"

pytestmark = pytest.mark.integration


def test_every_shell_block_runs_or_says_it_is_illustrative() -> None:
    """A block that is not run names itself illustrative, and a reason, on its first line."""
    assert RUNNABLE, "README shows no runnable shell block"
    for block in SH_BLOCKS:
        if block.startswith(ILLUSTRATIVE):
            reason = block.splitlines()[0].removeprefix(ILLUSTRATIVE).strip()
            assert reason, f"an illustrative block gives no reason:\n{block}"


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture
def scratch(tmp_path: Path, kafka_bootstrap: str) -> tuple[Path, dict[str, str]]:
    """A folder like an OPD developer's: an event file, the repo's deploy/, and a copy of
    the standard committed on a branch ``main`` (what ``schemas check --baseline main`` reads).
    """
    standard_repo = tmp_path / "standard"
    shutil.copytree(REPO / "schemas" / "avro", standard_repo / "schemas" / "avro")
    _git(standard_repo, "init", "-q", "-b", "main")
    _git(standard_repo, "add", ".")
    _git(
        standard_repo,
        "-c",
        "user.name=README test",
        "-c",
        "user.email=readme@example.invalid",
        "commit",
        "-q",
        "-m",
        "the standard",
    )
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(REPO / "schemas" / "avro" / "examples" / "IzinDiterbitkan.json", work / "izin.json")
    (work / "deploy").symlink_to(REPO / "deploy")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "SPBE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "SPBE_SCHEMAS_DIR": str(standard_repo / "schemas" / "avro"),
    }
    return work, env


@pytest.mark.parametrize("index", range(len(RUNNABLE)))
def test_readme_shell_block_runs(index: int, scratch: tuple[Path, dict[str, str]]) -> None:
    work, env = scratch
    block = RUNNABLE[index]
    try:
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
    finally:
        if f"schemas mode {SUBJECT}" in block:
            # Put the session registry back the way the other tests expect it.
            subprocess.run(
                ["spbe-bus", "schemas", "mode", SUBJECT, "BACKWARD"],
                cwd=work,
                env=env,
                capture_output=True,
                timeout=120,
                check=False,
            )
    assert done.returncode == 0, f"README block failed:\n{block}\n{done.stdout}\n{done.stderr}"
