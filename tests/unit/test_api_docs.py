"""docs/api.md shows the example clients exactly as docs/api/clients holds them, names every
path of the OpenAPI document, and its curl token call uses the token path and grant."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from adapters.gateway.openapi import openapi_document
from bus.contract.standard import example, load_standard
from tests.support.api_clients import JAVA_CLIENT, PHP_CLIENT

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
TEXT = DOC.read_text(encoding="utf-8")


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", TEXT, flags=re.DOTALL | re.MULTILINE)


@pytest.mark.parametrize(("language", "source"), [("php", PHP_CLIENT), ("java", JAVA_CLIENT)])
def test_the_pages_client_code_is_the_client_file(language: str, source: Path) -> None:
    assert blocks(language) == [source.read_text(encoding="utf-8")], (
        f"the {language} block of docs/api.md differs from {source.name}; copy the file in"
    )


def test_the_page_names_every_path_of_the_openapi_document() -> None:
    standard = load_standard()
    document = openapi_document(standard, {name: example(name) for name in standard})
    for path in document["paths"]:
        assert path.split("{")[0].rstrip("/") in TEXT, path


def test_the_curl_token_example_asks_for_client_credentials_at_the_token_path() -> None:
    (curl,) = [block for block in blocks("sh") if "curl" in block]
    assert "grant_type=client_credentials" in curl
    assert "/oauth/token" in curl
    assert "--cacert" in curl
