"""Webhook signatures: what sign() produces, and every way verify() refuses a request."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from adapters.sinks.webhook.errors import (
    MalformedSignatureError,
    SignatureError,
    SignatureMismatchError,
    TimestampOutOfToleranceError,
)
from adapters.sinks.webhook.signature import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
    signature_headers,
    verify,
)
from bus.errors import BusError

SECRET = b"0123456789abcdef-test-secret"
BODY = '{"specversion":"1.0","id":"x","data":{"nama_usaha":"Warung Bu Siti é"}}'.encode()
NOW = 1_795_756_500
EVENT_ID = "019b7cc6-4c00-7a3e-9b1d-5f2e8c4d7a10"


def headers_for(body: bytes = BODY, *, secret: bytes = SECRET, at: int = NOW) -> dict[str, str]:
    return signature_headers(secret, body, event_id=EVENT_ID, timestamp=at)


def test_sign_is_v1_and_the_lowercase_hex_hmac_sha256_of_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET, f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, NOW, BODY) == f"v1={expected}"


def test_a_text_secret_signs_as_its_utf8_bytes() -> None:
    assert sign(SECRET.decode(), NOW, BODY) == sign(SECRET, NOW, BODY)


def test_signature_headers_carry_timestamp_signature_and_event_id() -> None:
    headers = headers_for()
    assert headers == {
        TIMESTAMP_HEADER: str(NOW),
        SIGNATURE_HEADER: sign(SECRET, NOW, BODY),
        EVENT_ID_HEADER: EVENT_ID,
    }


def test_signature_headers_default_to_the_current_time() -> None:
    headers = signature_headers(SECRET, BODY, event_id=EVENT_ID)
    verify(SECRET, headers, BODY)  # fresh, so within the tolerance


def test_a_valid_request_verifies() -> None:
    verify(SECRET, headers_for(), BODY, now=NOW)


def test_header_names_match_case_insensitively_as_http_headers_do() -> None:
    lowered = {name.lower(): value for name, value in headers_for().items()}
    verify(SECRET, lowered, BODY, now=NOW)


def test_a_tampered_body_is_a_mismatch() -> None:
    with pytest.raises(SignatureMismatchError, match="does not match"):
        verify(SECRET, headers_for(), BODY.replace(b"Siti", b"Sita"), now=NOW)


def test_a_reserialised_body_is_a_mismatch_so_receivers_must_use_raw_bytes() -> None:
    with pytest.raises(SignatureMismatchError):
        verify(SECRET, headers_for(), BODY.replace(b",", b", "), now=NOW)


def test_a_wrong_secret_is_a_mismatch_with_a_fix_naming_the_secret() -> None:
    with pytest.raises(SignatureMismatchError) as caught:
        verify(b"another-secret-of-enough-bytes", headers_for(), BODY, now=NOW)
    assert caught.value.fix is not None
    assert "secret" in caught.value.fix


def test_a_changed_timestamp_is_a_mismatch() -> None:
    headers = headers_for()
    headers[TIMESTAMP_HEADER] = str(NOW + 1)
    with pytest.raises(SignatureMismatchError):
        verify(SECRET, headers, BODY, now=NOW)


def test_a_stale_timestamp_is_refused_even_with_a_valid_signature() -> None:
    with pytest.raises(TimestampOutOfToleranceError, match="301s ago"):
        verify(SECRET, headers_for(at=NOW - 301), BODY, now=NOW)


def test_a_timestamp_too_far_ahead_is_refused() -> None:
    with pytest.raises(TimestampOutOfToleranceError, match="ahead"):
        verify(SECRET, headers_for(at=NOW + 301), BODY, now=NOW)


def test_a_timestamp_exactly_at_the_tolerance_is_accepted_on_both_sides() -> None:
    verify(SECRET, headers_for(at=NOW - 300), BODY, now=NOW)
    verify(SECRET, headers_for(at=NOW + 300), BODY, now=NOW)


def test_the_tolerance_can_be_tightened() -> None:
    with pytest.raises(TimestampOutOfToleranceError, match="at most 30s"):
        verify(SECRET, headers_for(at=NOW - 31), BODY, now=NOW, tolerance_s=30)


@pytest.mark.parametrize("missing", [TIMESTAMP_HEADER, SIGNATURE_HEADER])
def test_a_missing_header_is_malformed_and_named(missing: str) -> None:
    headers = headers_for()
    del headers[missing]
    with pytest.raises(MalformedSignatureError, match=f"header {missing} is missing"):
        verify(SECRET, headers, BODY, now=NOW)


@pytest.mark.parametrize(
    "signature",
    [
        "",
        "74768e09960149f062bb0223624abb1315f488da7e08b8df7a6685793e700adb",  # no v1=
        "v2=74768e09960149f062bb0223624abb1315f488da7e08b8df7a6685793e700adb",
        "v1=74768E09960149F062BB0223624ABB1315F488DA7E08B8DF7A6685793E700ADB",  # uppercase
        "v1=74768e09",  # too short
        "v1=zz768e09960149f062bb0223624abb1315f488da7e08b8df7a6685793e700adb",
    ],
)
def test_a_signature_header_in_the_wrong_form_is_malformed(signature: str) -> None:
    headers = headers_for()
    headers[SIGNATURE_HEADER] = signature
    with pytest.raises(MalformedSignatureError, match=SIGNATURE_HEADER):
        verify(SECRET, headers, BODY, now=NOW)


@pytest.mark.parametrize("timestamp", ["", "-5", "1795756500.5", "abc", "1" * 13])
def test_a_timestamp_header_that_is_not_unix_seconds_is_malformed(timestamp: str) -> None:
    headers = headers_for()
    headers[TIMESTAMP_HEADER] = timestamp
    with pytest.raises(MalformedSignatureError, match=TIMESTAMP_HEADER):
        verify(SECRET, headers, BODY, now=NOW)


def test_every_refusal_is_a_bus_error_and_a_value_error() -> None:
    for error in (MalformedSignatureError, SignatureMismatchError, TimestampOutOfToleranceError):
        assert issubclass(error, SignatureError)
        assert issubclass(error, BusError)
        assert issubclass(error, ValueError)


@pytest.mark.parametrize("timestamp", [-1, True, 1.5])
def test_sign_refuses_a_timestamp_that_is_not_unix_seconds(timestamp: object) -> None:
    with pytest.raises(ValueError, match="unix seconds"):
        sign(SECRET, timestamp, BODY)  # type: ignore[arg-type]
