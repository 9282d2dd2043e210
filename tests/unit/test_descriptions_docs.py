"""docs/operator/descriptions.md names every term a record has and every part of the AsyncAPI
document, and its regeneration line writes exactly the committed files."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from bus.cli.main import main
from bus.contract.standard import load_standard
from bus.ops.catalog import load_catalog
from bus.ops.dublin_core import SCHEMA_TERMS, dataset_records

ROOT = Path(__file__).resolve().parents[2]
TEXT = (ROOT / "docs" / "operator" / "descriptions.md").read_text(encoding="utf-8")


def test_the_page_names_every_term_of_the_records_and_every_schema_term() -> None:
    standard = load_standard()
    catalog, _ = load_catalog(standard=standard)
    terms = {key for record in dataset_records(catalog, standard) for key in record}
    for term in terms | set(SCHEMA_TERMS):
        assert f"`{term}`" in TEXT, term


def test_the_page_describes_each_top_level_part_of_the_asyncapi_document() -> None:
    for part in ("servers", "channels", "components.messages", "operations"):
        assert f"| `{part}` |" in TEXT, part


def test_the_regeneration_line_rewrites_the_committed_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (block,) = re.findall(r"^```sh\n(.*?)^```$", TEXT, flags=re.DOTALL | re.MULTILINE)
    commands = [shlex.split(part) for part in block.strip().split(" && ")]
    monkeypatch.chdir(tmp_path)
    written = []
    for argv in commands:
        assert argv[:2] == ["spbe-bus", "catalog"]
        assert main(argv[1:]) == 0
        written.append(argv[argv.index("--output") + 1])
    assert sorted(written) == ["docs/api/asyncapi.json", "docs/api/datasets.json",
                               "docs/api/datasets.ttl"]  # fmt: skip
    for name in written:
        assert (tmp_path / name).read_bytes() == (ROOT / name).read_bytes(), name
