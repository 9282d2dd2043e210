"""The example clients of docs/api.md compile (javac) and lint (php -l), and post the
standard's own UmkmTerdaftar example, so what the page shows builds and stays current."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bus.contract.standard import example
from tests.support.api_clients import JAVA_CLIENT, PHP_CLIENT, compile_java_client


@pytest.mark.skipif(shutil.which("javac") is None, reason="javac (JDK 17) is not installed")
def test_the_java_client_compiles_without_warnings(tmp_path: Path) -> None:
    classes = compile_java_client(tmp_path)
    assert (classes / "GatewayClient.class").is_file()


@pytest.mark.skipif(shutil.which("php") is None, reason="php (php-cli) is not installed")
def test_the_php_client_has_no_syntax_errors() -> None:
    done = subprocess.run(
        ["php", "-l", str(PHP_CLIENT)], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("source", "block"),
    [
        (JAVA_CLIENT, r'String UMKM = """\n(.*?)"""'),
        (PHP_CLIENT, r"const UMKM = <<<'JSON'\n(.*?)\nJSON;"),
    ],
)
def test_each_client_posts_the_standards_umkm_example(source: Path, block: str) -> None:
    found = re.search(block, source.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert found, f"{source.name}: no UMKM body"
    assert json.loads(found.group(1)) == example("UmkmTerdaftar")
