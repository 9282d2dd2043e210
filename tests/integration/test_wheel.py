"""The built wheel is a working library on its own: it carries the data standard.

A Python subscriber service installs ``spbe-bus`` from a wheel, far from this repository;
the schemas must come with it. These tests build the wheel, install it into a fresh
virtualenv outside the repository and run the command line from an unrelated folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STANDARD = REPO / "schemas" / "avro"
EXAMPLES = sorted((STANDARD / "examples").glob("*.json"))

pytestmark = pytest.mark.integration


def _run(cmd: list[str], *, cwd: Path, env: dict[str, str], **kw: object) -> str:
    done = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False, **kw
    )
    assert done.returncode == 0, f"{cmd} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(REPO)],
        cwd=out,
        env=env,
    )
    (built,) = out.glob("spbe_bus-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv outside the repository with only the wheel (and its dependencies)."""
    venv = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", str(venv)], cwd=venv, env=dict(os.environ))
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    _run([str(venv / "bin" / "pip"), "install", "--quiet", str(wheel)], cwd=venv, env=env)
    return venv


def _clean_env(venv: Path) -> dict[str, str]:
    """The environment of a service that knows nothing of this checkout."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SPBE_SCHEMAS_DIR", "PYTHONPATH", "VIRTUAL_ENV"}
    }
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_wheel_carries_every_schema_and_example(wheel: Path) -> None:
    """Every file of schemas/avro is in the wheel under bus/_standard, byte for byte."""
    with zipfile.ZipFile(wheel) as archive:
        for source in [*STANDARD.glob("*.avsc"), *EXAMPLES]:
            inside = "bus/_standard/" + source.relative_to(STANDARD).as_posix()
            assert archive.read(inside) == source.read_bytes(), inside


def test_installed_library_is_not_the_checkout(installed: Path, tmp_path: Path) -> None:
    """The commands below really run the installed copy, not this repository's sources."""
    out = _run(
        [str(installed / "bin" / "python"), "-c", "import bus; print(bus.__file__)"],
        cwd=tmp_path,
        env=_clean_env(installed),
    )
    assert Path(out.strip()).is_relative_to(installed)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_installed_cli_validates_every_example(
    installed: Path, tmp_path: Path, example: Path
) -> None:
    """From a folder outside the repository, ``events validate`` of each example exits 0."""
    local = tmp_path / example.name
    local.write_bytes(example.read_bytes())
    out = _run(
        ["spbe-bus", "events", "validate", local.name, "--type", example.stem],
        cwd=tmp_path,
        env=_clean_env(installed),
    )
    assert example.stem in out


def test_installed_cli_encode_decode_round_trip(installed: Path, tmp_path: Path) -> None:
    """``events encode | events decode -`` gives back the example, using only the wheel."""
    example = STANDARD / "examples" / "IzinDiterbitkan.json"
    (tmp_path / "izin.json").write_bytes(example.read_bytes())
    env = _clean_env(installed)
    encoded = subprocess.run(
        ["spbe-bus", "events", "encode", "izin.json", "--type", "IzinDiterbitkan"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=120,
        check=True,
    ).stdout
    assert encoded[:2] == b"\xc3\x01"
    decoded = subprocess.run(
        ["spbe-bus", "events", "decode", "-"],
        input=encoded,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=120,
        check=True,
    ).stdout
    printed = json.loads(decoded)
    assert printed["schema"] == "id.go.spbe.dpmptsp.IzinDiterbitkan"
    written = json.loads(example.read_text())
    # Optional fields the example leaves out come back as their null defaults.
    assert {k: v for k, v in printed["event"].items() if k in written} == written


def test_spbe_schemas_dir_still_overrides_the_packaged_standard(
    installed: Path, tmp_path: Path
) -> None:
    """An OPD's own copy of the standard, named by SPBE_SCHEMAS_DIR, wins over the wheel's."""
    env = {**_clean_env(installed), "SPBE_SCHEMAS_DIR": str(tmp_path / "nowhere")}
    (tmp_path / "u.json").write_bytes((STANDARD / "examples" / "UmkmTerdaftar.json").read_bytes())
    done = subprocess.run(
        ["spbe-bus", "events", "validate", "u.json", "--type", "UmkmTerdaftar"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert str(tmp_path / "nowhere") in done.stderr
