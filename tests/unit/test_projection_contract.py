"""What a delivered event carries of its contract: pairwise keys and the contract headers."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bus.contract.contract_headers import (
    DeliveryContract,
    from_contract_headers,
    to_contract_headers,
)
from bus.contract.envelope import DataClassification, Envelope, from_headers, to_headers
from bus.contract.pseudonyms import PairwiseKeys, Pseudonymiser, pairwise_key, pseudonymise
from bus.errors import ConfigError, ContractError, EnvelopeError
from bus.ops.catalog import default_catalog_path, read_catalog
from tests.strategies import niks

SECRET = b"rahasia-layanan-kontrak-32-byte!"
SUBSCRIBERS = [sub.subscriber for sub in read_catalog(default_catalog_path()).subscriptions]
DPMPTSP = next(
    sub
    for sub in read_catalog(default_catalog_path()).subscriptions
    if sub.subscriber == "dpmptsp-penduduk"
)

# -- pairwise keys -------------------------------------------------------------------------


@given(nik=niks())
def test_the_keys_of_every_subscriber_for_one_nik_differ_and_differ_from_the_stewards(
    nik: str,
) -> None:
    keys = PairwiseKeys(SECRET)
    seen = {keys(subscriber, nik) for subscriber in SUBSCRIBERS}
    assert len(seen) == len(SUBSCRIBERS)
    assert pseudonymise(SECRET, nik) not in seen
    assert all(len(key) == 64 and nik not in key for key in seen)


@given(nik=niks(), other=niks())
def test_a_subscribers_key_is_stable_per_person_and_distinct_between_persons(
    nik: str, other: str
) -> None:
    keys = PairwiseKeys(SECRET)
    assert keys("dinsos-penduduk", nik) == pairwise_key(SECRET, "dinsos-penduduk", nik)
    assert (keys("dinsos-penduduk", nik) == keys("dinsos-penduduk", other)) == (nik == other)


def test_a_pairwise_key_is_an_hmac_under_the_subscribers_derived_key() -> None:
    derived = hmac.new(SECRET, b"spbe-pairwise-key\x00dinsos-penduduk", hashlib.sha256).digest()
    expected = hmac.new(derived, b"3273025708900003", hashlib.sha256).hexdigest()
    assert pairwise_key(SECRET, "dinsos-penduduk", "3273025708900003") == expected
    assert isinstance(PairwiseKeys(SECRET).for_subscriber("dinsos-penduduk"), Pseudonymiser)


def test_pairwise_keys_never_show_their_secret_and_refuse_a_short_one() -> None:
    keys = PairwiseKeys(SECRET)
    keys("dinsos-penduduk", "3273025708900003")
    shown = repr(keys) + repr(keys.for_subscriber("dinsos-penduduk"))
    assert SECRET.decode() not in shown
    assert SECRET.hex() not in shown
    assert "**********" in repr(keys)
    with pytest.raises(ConfigError, match="at least 16 are needed"):
        PairwiseKeys(b"pendek")


def test_a_pairwise_key_for_an_invalid_subscriber_is_refused() -> None:
    with pytest.raises(ContractError, match="subscriber id 'Dinsos'"):
        pairwise_key(SECRET, "Dinsos", "3273025708900003")


# -- contract headers ---------------------------------------------------------------------


def contract() -> DeliveryContract:
    return DeliveryContract(
        subscription=DPMPTSP.subscriber, purpose=DPMPTSP.purpose, legalbasis=DPMPTSP.legal_basis
    )


def test_the_contract_travels_as_ce_headers_in_utf8_and_reads_back() -> None:
    headers = to_contract_headers(contract())
    assert headers == [
        ("ce_subscription", b"dpmptsp-penduduk"),
        ("ce_purpose", DPMPTSP.purpose.encode("utf-8")),
        ("ce_legalbasis", DPMPTSP.legal_basis.encode("utf-8")),
    ]
    assert from_contract_headers(headers) == contract()


@given(purpose=st.text(min_size=1).filter(str.strip), basis=st.text(min_size=1).filter(str.strip))
def test_any_text_of_purpose_and_legal_basis_reads_back(purpose: str, basis: str) -> None:
    sent = DeliveryContract("dinsos-penduduk", purpose, basis)
    assert from_contract_headers(to_contract_headers(sent)) == sent


def test_the_envelope_reads_past_the_contract_headers_and_they_past_the_envelope() -> None:
    envelope = Envelope(
        source="ID/PEMDA-3273/DISDUKCAPIL/siak",
        type="id.go.spbe.dukcapil.PendudukUpdated.v1",
        steward="DISDUKCAPIL",
        partitionkey=pairwise_key(SECRET, "dpmptsp-penduduk", "3273025708900003"),
        dataclassification=DataClassification.RESTRICTED,
    )
    headers = to_headers(envelope) + to_contract_headers(contract())
    assert from_headers(headers) == envelope
    assert from_contract_headers(headers) == contract()


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda h: [x for x in h if x[0] != "ce_purpose"], "required header ce_purpose is missing"),
        (lambda h: [*h, ("ce_legalbasis", b"lain")], "header ce_legalbasis appears more than once"),
        (
            lambda h: [(n, None if n == "ce_subscription" else v) for n, v in h],
            "ce_subscription has no value",
        ),
        (
            lambda h: [(n, b"\xff" if n == "ce_purpose" else v) for n, v in h],
            "ce_purpose is not valid UTF-8",
        ),
        (
            lambda h: [(n, b"DINSOS" if n == "ce_subscription" else v) for n, v in h],
            "ce_subscription must be a subscriber id",
        ),
        (
            lambda h: [(n, b"  " if n == "ce_legalbasis" else v) for n, v in h],
            "ce_legalbasis must be non-empty text",
        ),
    ],
)
def test_a_bad_contract_header_is_refused_naming_the_header(change: object, named: str) -> None:
    headers = change(to_contract_headers(contract()))  # type: ignore[operator]
    with pytest.raises(EnvelopeError, match=named) as caught:
        from_contract_headers(headers)
    assert caught.value.fix
