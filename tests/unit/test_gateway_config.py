"""The gateway's settings: what the catalogue decides, what the file gives, every refusal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from adapters.gateway import GatewayConfig
from adapters.gateway.secrets import hash_client_secret
from bus.localkafka.certificates import CertificateAuthority

TOKEN_KEY = "token-key-of-at-least-thirty-two-bytes-0123"
LEDGER_SECRET = "ledger-secret-of-at-least-16-bytes"
HASH = hash_client_secret("a secret of the tests")


@pytest.fixture
def settings(tmp_path: Path) -> dict[str, Any]:
    issued = CertificateAuthority.create(tmp_path / "ca").issue("spbe-gateway")
    return {
        "bootstrap_servers": "127.0.0.1:9092",
        "tls_certificate": str(issued.certificate),
        "tls_key": str(issued.key),
        "clients": [{"id": "dpmptsp-sicantik", "secret_hash": HASH}],
        "token_key": TOKEN_KEY,
        "ledger_url": "sqlite:///ledger.db",
        "ledger_secret": LEDGER_SECRET,
    }


def _refusal(settings: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as refused:
        GatewayConfig.model_validate(settings)
    return str(refused.value)


def test_a_client_reads_what_its_catalogue_entry_allows(settings: dict[str, Any]) -> None:
    config = GatewayConfig.model_validate(settings)
    access = config.access_of("dpmptsp-sicantik")
    assert access is not None
    assert {s.subscriber for s in access.subscriptions} == {"dpmptsp-penduduk", "dpmptsp-pajak"}
    assert "id.go.spbe.dpmptsp.IzinDiterbitkan.v1" in access.postable
    assert config.access_of("dinkopukm-siumkm") is None  # in the catalogue, not in this file


def test_a_client_the_catalogue_does_not_name_is_refused(settings: dict[str, Any]) -> None:
    settings["clients"].append({"id": "dinsos-siks", "secret_hash": HASH})
    text = _refusal(settings)
    assert "clients[1].id: dinsos-siks is not an api_clients entry" in text


def test_a_client_listed_twice_is_refused(settings: dict[str, Any]) -> None:
    settings["clients"].append({"id": "dpmptsp-sicantik", "secret_hash": HASH})
    assert "clients[1].id: dpmptsp-sicantik is listed twice" in _refusal(settings)


def test_a_secret_in_place_of_its_hash_is_refused_without_echoing_it(
    settings: dict[str, Any],
) -> None:
    settings["clients"][0]["secret_hash"] = "the-plain-secret-itself"
    text = _refusal(settings)
    assert "secret_hash" in text
    assert "the-plain-secret-itself" not in text


def test_a_short_token_key_is_refused_without_echoing_it(settings: dict[str, Any]) -> None:
    settings["token_key"] = "short-key"
    text = _refusal(settings)
    assert "token_key: the secret is 9 bytes; at least 32 are needed" in text
    assert "short-key" not in text


def test_a_missing_token_key_says_how_to_make_one(settings: dict[str, Any]) -> None:
    del settings["token_key"]
    assert "token_key is missing" in _refusal(settings)


def test_the_token_key_may_come_from_a_file(settings: dict[str, Any], tmp_path: Path) -> None:
    del settings["token_key"]
    key_file = tmp_path / "token.key"
    key_file.write_text(TOKEN_KEY + "\n")
    settings["token_key_file"] = str(key_file)
    config = GatewayConfig.model_validate(settings)
    assert config.token_signing_key.get_secret_value() == TOKEN_KEY.encode()


def test_a_missing_certificate_file_is_named(settings: dict[str, Any], tmp_path: Path) -> None:
    settings["tls_certificate"] = str(tmp_path / "absent.pem")
    assert "tls_certificate:" in _refusal(settings)


def test_a_short_steward_key_secret_is_refused(settings: dict[str, Any]) -> None:
    settings["key_secrets"] = {"DPMPTSP": "short"}
    text = _refusal(settings)
    assert "key_secrets.DPMPTSP: the secret is shorter than 16 bytes" in text
    assert "short'" not in text


def test_a_gateway_without_clients_is_refused(settings: dict[str, Any]) -> None:
    settings["clients"] = []
    assert "clients" in _refusal(settings)


def test_the_repr_of_the_config_hides_every_secret(settings: dict[str, Any]) -> None:
    text = repr(GatewayConfig.model_validate(settings))
    assert TOKEN_KEY not in text
    assert LEDGER_SECRET not in text
