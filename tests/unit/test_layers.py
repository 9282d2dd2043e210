"""The layers of docs/architecture.md hold: no import points up or sideways, none is IO below."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARCHITECTURE = ROOT / "docs" / "architecture.md"
#: Modules a pure layer (0-2) may not import: they do IO, or log.
IO_MODULES = frozenset(
    {
        "asyncio", "aiokafka", "confluent_kafka", "sqlalchemy", "httpx", "socket", "ssl",
        "subprocess", "threading", "http", "urllib", "structlog", "logging",
    }
)  # fmt: skip
PURE_LAYERS = range(3)


def layer_map(text: str) -> dict[str, int]:
    """Package -> layer, from the rows of the layer table (``| 3 | `bus.a`, `bus.b` | ... |``)."""
    layers: dict[str, int] = {}
    for number, packages in re.findall(r"^\| (\d+) \| ([^|]+) \|", text, flags=re.M):
        for package in re.findall(r"`([a-z_.]+)`", packages):
            assert package not in layers, f"{package} is in layers {layers[package]} and {number}"
            layers[package] = int(number)
    return layers


def package_of(module: str, layers: dict[str, int]) -> str | None:
    """The longest package of the map that ``module`` is or lies in.

    A top-level entry (``bus``, the facade) stands for that one module only, so a new
    ``bus/x.py`` is not silently placed in the facade's layer.
    """
    parts = module.split(".")
    for end in range(len(parts), 1, -1):
        candidate = ".".join(parts[:end])
        if candidate in layers:
            return candidate
    return module if module in layers else None


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import in the file, including those in functions."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
    return found


def violations(layers: dict[str, int], files: list[Path], root: Path = ROOT) -> list[str]:
    found = []
    for path in files:
        name = path.relative_to(root)
        source = package_of(module_name(path, root), layers)
        if source is None:
            found.append(f"{name}: its package is not in the layer table")
            continue
        for line, imported in imports_of(path):
            where = f"{name}:{line} imports {imported}"
            if layers[source] in PURE_LAYERS and imported.split(".")[0] in IO_MODULES:
                found.append(f"{where}: IO in the pure layer {layers[source]} ({source})")
            target = package_of(imported, layers)
            if target is None or target == source:
                continue
            if layers[target] > layers[source]:
                found.append(f"{where}: up from layer {layers[source]} to {layers[target]}")
            elif layers[target] == layers[source]:
                found.append(f"{where}: sideways within layer {layers[source]} ({target})")
    return found


def project_files() -> list[Path]:
    return sorted([*(ROOT / "bus").rglob("*.py"), *(ROOT / "adapters").rglob("*.py")])


def test_the_table_names_every_package_once_with_a_layer() -> None:
    layers = layer_map(ARCHITECTURE.read_text())
    assert layers["bus.errors"] == 0
    assert layers["bus.cli"] == max(layers.values())
    top_level = {module_name(p).split(".")[0] + "." + module_name(p).split(".")[1]
                 for p in project_files() if module_name(p).count(".") >= 1}  # fmt: skip
    missing = {p for p in top_level if package_of(p, layers) is None}
    assert not missing, f"packages without a layer in docs/architecture.md: {sorted(missing)}"


def test_no_import_points_up_or_sideways_and_the_pure_layers_do_no_io() -> None:
    layers = layer_map(ARCHITECTURE.read_text())
    problems = violations(layers, project_files())
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("module", "source", "problem"),
    [
        ("bus/contract/extra.py", "from bus.subscriber import Subscriber\n", "up from layer 1"),
        ("bus/publisher_extra.py", "import sqlalchemy\n", "its package is not in the layer"),
        ("bus/delivery_extra.py", "", "its package is not in the layer"),
        ("bus/contract/extra.py", "import asyncio\n", "IO in the pure layer 1"),
        ("bus/registry/extra.py", "from bus.topics import ensure_topics\n", "sideways"),
        ("adapters/sinks/extra.py", "from adapters.runner import run_adapter\n", "up from"),
    ],
)
def test_the_check_catches_an_arrow_against_the_table(
    tmp_path: Path, module: str, source: str, problem: str
) -> None:
    target = tmp_path / module
    target.parent.mkdir(parents=True)
    target.write_text(source)
    found = violations(layer_map(ARCHITECTURE.read_text()), [target], tmp_path)
    assert any(problem in line for line in found), found


LONG_MODULE_REASON = "Why this module is longer than 400 lines"


def test_no_module_is_over_400_lines_unless_its_docstring_says_why() -> None:
    too_long = []
    for path in project_files():
        text = path.read_text()
        if text.count("\n") > 400:
            docstring = ast.get_docstring(ast.parse(text)) or ""
            if LONG_MODULE_REASON not in docstring:
                too_long.append(f"{path.relative_to(ROOT)}: {text.count(chr(10))} lines")
    assert not too_long, "split these, or say why in the docstring:\n" + "\n".join(too_long)
