"""The gateway's bearer tokens: what verifies, and why every forgery and mistake is refused."""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretBytes

from adapters.gateway.errors import GatewayError, TokenRejected
from adapters.gateway.tokens import (
    DEFAULT_TOKEN_TTL_S,
    TOKEN_TYPE,
    IssuedToken,
    TokenIssuer,
)
from bus.errors import BusError, ConfigError

KEY = b"k3y-of-the-gateway-32-bytes-long"
OTHER_KEY = b"another-key-also-32-bytes-long!!"
NOW = 1_800_000_000.0
CLIENT = "dpmptsp-sicantik"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def issuer(clock: Clock) -> TokenIssuer:
    return TokenIssuer(SecretBytes(KEY), clock=clock)


def claims(**changes: Any) -> dict[str, Any]:
    """The claims the issuer would write at NOW, with ``changes`` (None removes a claim)."""
    base: dict[str, Any] = {
        "iss": "spbe-bus-gateway",
        "aud": "spbe-bus-api",
        "sub": CLIENT,
        "scope": "data:read",
        "iat": int(NOW),
        "exp": int(NOW) + DEFAULT_TOKEN_TTL_S,
        "jti": "a-token-id",
    }
    base.update(changes)
    return {name: value for name, value in base.items() if value is not None}


def signed(payload: dict[str, Any], key: bytes = KEY, **headers: Any) -> str:
    return jwt.encode(payload, key, algorithm="HS256", headers={"typ": TOKEN_TYPE, **headers})


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def rejection(issuer: TokenIssuer, token: str) -> TokenRejected:
    with pytest.raises(TokenRejected) as caught:
        issuer.verify(token)
    return caught.value


def test_an_issued_token_verifies_to_its_client_scope_expiry_and_id(issuer: TokenIssuer) -> None:
    issued = issuer.issue(CLIENT, "events:publish")
    assert issued.expires_in == DEFAULT_TOKEN_TTL_S
    assert issued.scope == "events:publish"
    verified = issuer.verify(issued.access_token)
    assert verified.client == CLIENT
    assert verified.scope == "events:publish"
    assert verified.expires_at == NOW + DEFAULT_TOKEN_TTL_S
    assert verified.token_id


def test_an_issued_token_is_an_hs256_access_token_with_every_required_claim(
    issuer: TokenIssuer,
) -> None:
    token = issuer.issue(CLIENT, "data:read").access_token
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "HS256", "typ": "at+jwt"}
    payload = jwt.decode(token, options={"verify_signature": False})
    assert set(payload) == {"iss", "aud", "sub", "scope", "iat", "exp", "jti"}


def test_every_token_gets_its_own_id(issuer: TokenIssuer) -> None:
    ids = {issuer.verify(issuer.issue(CLIENT, "data:read").access_token).token_id for _ in range(5)}
    assert len(ids) == 5


def test_a_token_signed_with_another_key_is_invalid(issuer: TokenIssuer, clock: Clock) -> None:
    forged = TokenIssuer(SecretBytes(OTHER_KEY), clock=clock).issue(CLIENT, "data:read")
    assert rejection(issuer, forged.access_token).reason == "invalid"


def test_an_unsigned_alg_none_token_is_invalid(issuer: TokenIssuer) -> None:
    token = f"{b64({'alg': 'none', 'typ': TOKEN_TYPE})}.{b64(claims())}."
    assert rejection(issuer, token).reason == "invalid"


@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_another_hmac_algorithm_is_invalid_even_with_the_right_key(algorithm: str) -> None:
    key = KEY * 2  # long enough for HS512, so only the algorithm is wrong
    issuer = TokenIssuer(SecretBytes(key), clock=Clock())
    token = jwt.encode(claims(), key, algorithm=algorithm, headers={"typ": TOKEN_TYPE})
    assert rejection(issuer, token).reason == "invalid"


def test_a_public_key_algorithm_is_invalid(issuer: TokenIssuer) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(claims(), private, algorithm="RS256", headers={"typ": TOKEN_TYPE})
    assert rejection(issuer, token).reason == "invalid"


def test_a_token_is_valid_until_the_second_before_it_expires(
    issuer: TokenIssuer, clock: Clock
) -> None:
    token = issuer.issue(CLIENT, "data:read").access_token
    clock.now = NOW + DEFAULT_TOKEN_TTL_S - 0.5
    assert issuer.verify(token).client == CLIENT
    clock.now = NOW + DEFAULT_TOKEN_TTL_S
    assert rejection(issuer, token).reason == "expired"


def test_the_ttl_sets_the_expiry(clock: Clock) -> None:
    issuer = TokenIssuer(SecretBytes(KEY), ttl_s=60, clock=clock)
    issued = issuer.issue(CLIENT, "data:read")
    assert issued.expires_in == 60
    clock.now = NOW + 60
    assert rejection(issuer, issued.access_token).reason == "expired"


def test_a_token_for_another_audience_is_refused_as_audience(
    issuer: TokenIssuer, clock: Clock
) -> None:
    other = TokenIssuer(SecretBytes(KEY), audience="another-api", clock=clock)
    assert rejection(issuer, other.issue(CLIENT, "data:read").access_token).reason == "audience"


def test_an_audience_list_is_refused_even_when_it_names_this_api(issuer: TokenIssuer) -> None:
    token = signed(claims(aud=["spbe-bus-api", "another-api"]))
    assert rejection(issuer, token).reason == "audience"


def test_a_token_of_another_issuer_is_refused_as_issuer(issuer: TokenIssuer, clock: Clock) -> None:
    other = TokenIssuer(SecretBytes(KEY), issuer="another-gateway", clock=clock)
    assert rejection(issuer, other.issue(CLIENT, "data:read").access_token).reason == "issuer"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not-a-jwt",
        "a.b",
        "a.b.c",
        "%%%.%%%.%%%",
        "x" * 5000,
    ],
    ids=["empty", "one-part", "two-parts", "garbage", "not-base64", "huge"],
)
def test_a_malformed_token_is_refused_as_malformed(issuer: TokenIssuer, token: str) -> None:
    assert rejection(issuer, token).reason == "malformed"


@pytest.mark.parametrize("payload", [b"not json", b"[1, 2]"])
def test_a_signed_payload_that_is_not_a_json_object_is_malformed(
    issuer: TokenIssuer, payload: bytes
) -> None:
    token = jwt.PyJWS().encode(payload, KEY, algorithm="HS256", headers={"typ": TOKEN_TYPE})
    assert rejection(issuer, token).reason == "malformed"


def test_a_bad_signature_is_found_before_a_bad_payload(issuer: TokenIssuer) -> None:
    token = f"{b64({'alg': 'HS256', 'typ': TOKEN_TYPE})}.bm90IGpzb24.c2ln"
    assert rejection(issuer, token).reason == "invalid"


@pytest.mark.parametrize("missing", ["exp", "iat", "sub", "aud", "iss", "jti", "scope"])
def test_a_signed_token_missing_a_required_claim_is_malformed(
    issuer: TokenIssuer, missing: str
) -> None:
    assert rejection(issuer, signed(claims(**{missing: None}))).reason == "malformed"


@pytest.mark.parametrize(
    "changes",
    [
        {"exp": "2030-01-01"},
        {"exp": True},
        {"iat": "yesterday"},
        {"sub": 42},
        {"sub": ""},
        {"scope": ["data:read"]},
        {"jti": 7},
    ],
    ids=["exp-text", "exp-bool", "iat-text", "sub-number", "sub-empty", "scope-list", "jti-number"],
)
def test_a_signed_token_with_a_claim_of_the_wrong_type_is_malformed(
    issuer: TokenIssuer, changes: dict[str, Any]
) -> None:
    assert rejection(issuer, signed(claims(**changes))).reason == "malformed"


def test_a_tampered_payload_breaks_the_signature(issuer: TokenIssuer) -> None:
    header, _, signature = issuer.issue(CLIENT, "data:read").access_token.split(".")
    tampered = f"{header}.{b64(claims(sub='dinsos-siks', scope='events:publish'))}.{signature}"
    assert rejection(issuer, tampered).reason == "invalid"


@pytest.mark.parametrize("typ", [None, "JWT", "dpop+jwt"])
def test_a_jwt_signed_with_the_key_that_is_not_an_access_token_is_invalid(
    issuer: TokenIssuer, typ: str | None
) -> None:
    token = jwt.encode(claims(), KEY, algorithm="HS256", headers={"typ": typ} if typ else None)
    assert rejection(issuer, token).reason == "invalid"


def test_rejection_messages_are_safe_to_return_and_never_echo_the_token(
    issuer: TokenIssuer, clock: Clock
) -> None:
    """No token, client id or claim in the message, and only characters RFC 6750 allows in
    an error_description (printable ASCII without quote and backslash)."""
    valid = issuer.issue(CLIENT, "data:read").access_token
    tokens = [
        TokenIssuer(SecretBytes(OTHER_KEY), clock=clock).issue(CLIENT, "data:read").access_token,
        signed(claims(aud="aud-marker")),
        signed(claims(iss="iss-marker")),
        signed(claims(sub=None)),
        valid[:-3],
        "not-a-jwt",
    ]
    clock.now = NOW + 10 * DEFAULT_TOKEN_TTL_S
    tokens.append(valid)
    reasons = set()
    for token in tokens:
        refused = rejection(issuer, token)
        reasons.add(refused.reason)
        for text in (refused.message, str(refused)):
            assert token not in text
            assert CLIENT not in text
            assert "marker" not in text
        assert all(0x20 <= ord(c) <= 0x7E and c not in '"\\' for c in refused.message)
        assert refused.__cause__ is None
    assert reasons == {"invalid", "audience", "issuer", "malformed", "expired"}


def test_a_rejection_is_a_gateway_error_of_the_bus_tree(issuer: TokenIssuer) -> None:
    refused = rejection(issuer, "not-a-jwt")
    assert isinstance(refused, GatewayError)
    assert isinstance(refused, BusError)
    assert refused.fix
    assert not refused.retriable


def test_a_rejection_reason_outside_the_known_set_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="reason must be one of"):
        TokenRejected("x", reason="stale", fix="y")  # type: ignore[arg-type]


@pytest.mark.parametrize("length", [0, 16, 31])
def test_a_key_shorter_than_32_bytes_is_refused(length: int) -> None:
    with pytest.raises(ConfigError, match="at least 32") as caught:
        TokenIssuer(SecretBytes(KEY[:length]))
    assert caught.value.fix


@pytest.mark.parametrize("ttl_s", [0, -5, True])
def test_a_ttl_that_is_not_a_positive_whole_number_is_refused(ttl_s: int) -> None:
    with pytest.raises(ConfigError, match="ttl_s"):
        TokenIssuer(SecretBytes(KEY), ttl_s=ttl_s)


def test_issuing_needs_a_client_and_a_scope(issuer: TokenIssuer) -> None:
    with pytest.raises(ValueError, match="client and a scope"):
        issuer.issue("", "data:read")
    with pytest.raises(ValueError, match="client and a scope"):
        issuer.issue(CLIENT, "")


def test_neither_the_key_nor_the_token_shows_in_a_repr(issuer: TokenIssuer) -> None:
    issued = issuer.issue(CLIENT, "data:read")
    assert issued.access_token not in repr(issued)
    assert repr(IssuedToken("t0ken", 300, "data:read")) == (
        "IssuedToken(expires_in=300, scope='data:read')"
    )
    assert KEY.decode() not in repr(issuer)
