"""The console's browser test is its acceptance test: on a machine without the browser it
fails, naming what to install, instead of passing as skipped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BROWSER_TEST = ROOT / "tests" / "integration" / "test_console_browser.py"


@pytest.mark.parametrize("missing", ["SPBE_TEST_CHROMIUM", "SPBE_TEST_CHROMEDRIVER"])
def test_the_browser_test_fails_without_the_browser_and_says_what_to_install(
    missing: str, tmp_path: Path
) -> None:
    env = {**os.environ, missing: str(tmp_path / "not-installed")}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA", str(BROWSER_TEST)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "skipped" not in out, out
    assert str(tmp_path / "not-installed") in out
    assert "scripts/prepare-machine" in out
