"""An Idempotency-Key header value: its key (sf-string or bare) and the rules a key keeps."""

from __future__ import annotations

import pytest

from adapters.gateway.idempotency import (
    MAX_KEY_LENGTH,
    idempotency_key_problem,
    parse_idempotency_key,
    request_fingerprint,
)


@pytest.mark.parametrize(
    ("header", "key"),
    [
        ('"8e03978e-40d5-43e8-bc93-6894a57f9324"', "8e03978e-40d5-43e8-bc93-6894a57f9324"),
        ("8e03978e-40d5-43e8-bc93-6894a57f9324", "8e03978e-40d5-43e8-bc93-6894a57f9324"),
        ('  "izin 503/0001"\t', "izin 503/0001"),
        (r'"a \"quoted\" key \\ here"', 'a "quoted" key \\ here'),
        ('"', '"'),
    ],
    ids=["sf-string", "bare", "padded", "escapes", "lone-quote"],
)
def test_the_key_is_the_sf_string_unquoted_or_the_bare_value(header: str, key: str) -> None:
    assert parse_idempotency_key(header) == key


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("", "is empty"),
        ("k" * (MAX_KEY_LENGTH + 1), "is longer than 255 characters"),
        ("kunci-\u00e9", "holds a character that is not printable ASCII"),
        ("a\tb", "holds a character that is not printable ASCII"),
    ],
)
def test_a_key_breaking_a_rule_gets_the_rule_and_never_itself(key: str, problem: str) -> None:
    found = idempotency_key_problem(key)
    assert found == problem
    if key:
        assert key not in found


@pytest.mark.parametrize("key", ["k", "k" * MAX_KEY_LENGTH, " ~!#$%&'()*+,-./:;<=>?@[]^_`{|}"])
def test_keys_of_1_to_255_printable_ascii_characters_are_valid(key: str) -> None:
    assert idempotency_key_problem(key) is None


def test_the_fingerprint_covers_the_event_name_and_every_byte_of_the_body() -> None:
    base = request_fingerprint("UmkmTerdaftar", b"{}")
    assert len(base) == 64
    assert request_fingerprint("UmkmTerdaftar", b"{}") == base
    assert request_fingerprint("UmkmTerdaftar", b"{} ") != base
    assert request_fingerprint("IzinDiterbitkan", b"{}") != base
