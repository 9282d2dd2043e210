"""Client secrets: stored as scrypt hashes, checked in constant time, malformed hashes refused
at config load without ever repeating the value."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Annotated

import pytest
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from adapters.gateway.secrets import (
    SCRYPT_N,
    check_secret_hash,
    hash_client_secret,
    new_client_secret,
    verify_client_secret,
)
from bus.errors import ConfigError

SECRET = "Zs0n8d8xv3cG0Hk6qJmA2nT1rW9yB4eL7uP5oI3aQwE"


@pytest.fixture(scope="module")
def hashed() -> str:
    return hash_client_secret(SECRET)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


SALT = b64(b"s" * 16)
DIGEST = b64(b"d" * 32)


def test_a_secret_verifies_against_its_own_hash(hashed: str) -> None:
    assert verify_client_secret(SECRET, hashed)


@pytest.mark.parametrize(
    "attempt", ["", SECRET[:-1], SECRET + "x", SECRET.lower(), " " + SECRET, "x" * 5000]
)
def test_any_other_secret_does_not_verify(hashed: str, attempt: str) -> None:
    assert not verify_client_secret(attempt, hashed)


def test_the_hash_has_the_documented_form_and_never_contains_the_secret(hashed: str) -> None:
    assert re.fullmatch(
        rf"scrypt\${SCRYPT_N}\$8\$1\$[A-Za-z0-9_-]{{22}}\$[A-Za-z0-9_-]{{43}}", hashed
    )
    assert SECRET not in hashed


def test_each_hash_gets_its_own_salt() -> None:
    first, second = hash_client_secret(SECRET), hash_client_secret(SECRET)
    assert first != second
    assert verify_client_secret(SECRET, first)
    assert verify_client_secret(SECRET, second)


def test_a_hash_made_with_stronger_parameters_still_verifies() -> None:
    salt = b"0123456789abcdef"
    digest = hashlib.scrypt(SECRET.encode(), salt=salt, n=2**15, r=8, p=2, maxmem=2**26, dklen=32)
    stronger = f"scrypt${2**15}$8$2${b64(salt)}${b64(digest)}"
    assert check_secret_hash(stronger) == stronger
    assert verify_client_secret(SECRET, stronger)
    assert not verify_client_secret(SECRET + "x", stronger)


def test_an_empty_secret_cannot_be_hashed() -> None:
    with pytest.raises(ValueError, match="empty"):
        hash_client_secret("")


def test_new_secrets_are_43_url_safe_characters_and_never_repeat() -> None:
    made = {new_client_secret() for _ in range(20)}
    assert len(made) == 20
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{43}", s) for s in made)


def test_a_well_formed_hash_passes_the_config_check_unchanged(hashed: str) -> None:
    assert check_secret_hash(hashed) == hashed


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("", "is not an scrypt hash"),
        (SECRET, "is not an scrypt hash"),  # the secret pasted where its hash belongs
        (f"bcrypt$16384$8$1${SALT}${DIGEST}", "is not an scrypt hash"),
        (f"scrypt$16384$8${SALT}${DIGEST}", "is not an scrypt hash"),
        (f"scrypt$16384$8$1${SALT}${DIGEST}$extra", "is not an scrypt hash"),
        (f"scrypt$abc$8$1${SALT}${DIGEST}", "positive whole numbers"),
        (f"scrypt$016384$8$1${SALT}${DIGEST}", "positive whole numbers"),
        (f"scrypt$-16384$8$1${SALT}${DIGEST}", "positive whole numbers"),
        (f"scrypt$1024$8$1${SALT}${DIGEST}", "weaker than allowed"),
        (f"scrypt$20000$8$1${SALT}${DIGEST}", "power of 2"),
        (f"scrypt$16384$1$1${SALT}${DIGEST}", "weaker than allowed"),
        (f"scrypt$16384$8$0${SALT}${DIGEST}", "positive whole numbers"),
        (f"scrypt$16384$8$17${SALT}${DIGEST}", "p from 1 to 16"),
        (f"scrypt${2**20}$8$1${SALT}${DIGEST}", "too costly"),
        (f"scrypt$16384$8$1${b64(b's' * 8)}${DIGEST}", "salt and hash"),
        (f"scrypt$16384$8$1${SALT}${b64(b'd' * 16)}", "salt and hash"),
        (f"scrypt$16384$8$1${SALT}${b64(b'd' * 65)}", "salt and hash"),
        (f"scrypt$16384$8$1${SALT}=${DIGEST}", "salt and hash"),
        (f"scrypt$16384$8$1${SALT}${DIGEST[:-1]}+", "salt and hash"),
        (f"scrypt$16384$8$1${SALT}${DIGEST}=", "salt and hash"),
    ],
)
def test_a_malformed_hash_is_refused_naming_the_field_and_rule_never_the_value(
    value: str, rule: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        check_secret_hash(value, field="gateway.clients[0].secret_hash")
    refused = caught.value
    assert isinstance(refused, ValueError)
    assert refused.message.startswith("gateway.clients[0].secret_hash")
    assert rule in refused.message
    assert "client-secret" in (refused.fix or "")
    for part in (value, SECRET, SALT, DIGEST):
        assert not part or part not in str(refused)


def test_verifying_against_a_malformed_hash_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="secret_hash is not an scrypt hash"):
        verify_client_secret(SECRET, SECRET)


def test_as_a_pydantic_validator_the_check_refuses_without_showing_the_input() -> None:
    """How a config model uses it: the error names the rule; with hide_input_in_errors the
    pasted value never shows."""

    class Client(BaseModel):
        model_config = ConfigDict(hide_input_in_errors=True)
        secret_hash: Annotated[str, AfterValidator(check_secret_hash)]

    with pytest.raises(ValidationError) as caught:
        Client(secret_hash=SECRET)
    assert "is not an scrypt hash" in str(caught.value)
    assert SECRET not in str(caught.value)
