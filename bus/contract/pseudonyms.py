"""Keyed pseudonyms of personal identifiers: the Kafka key of every personal-data event (pure).

A NIK has 16 digits, but its structure (6-digit kecamatan code, birth date, 4-digit
serial) leaves a space small enough to enumerate: a plain SHA-256 of a NIK is reversed
by hashing every candidate. Keying the hash with a secret held only by the steward
makes the pseudonym stable (the same person always gets the same Kafka key, so order
and compaction work) while nobody without the secret can link it back to the NIK.

A subscriber of a projection sees a *pairwise* pseudonym instead (:class:`PairwiseKeys`):
the HMAC under a key of its own, derived from the contract service's secret and the
subscriber id, so the same NIK has a different key for every subscriber and two OPDs
cannot join their data sets by key. Per-key order holds: one person, one key per
subscriber.
"""

from __future__ import annotations

import hashlib
import hmac

from bus.contract.projected_names import check_subscriber
from bus.errors import ConfigError

__all__ = ["MIN_SECRET_BYTES", "PairwiseKeys", "Pseudonymiser", "pairwise_key", "pseudonymise"]

#: A pseudonymisation secret shorter than this is refused.
MIN_SECRET_BYTES = 16
#: What a subscriber's key is derived from, with its id: no NIK or other value starts so.
_PAIRWISE_LABEL = "spbe-pairwise-key\x00"


class Pseudonymiser:
    """HMAC-SHA256 under one secret, keyed once and copied per value.

    ``hmac.new`` hashes the key into its inner and outer pads on every call; a publisher
    pseudonymises every event's key with the same secret, so it keys one HMAC at start and
    copies it (a copy of the prepared state costs a fraction of keying it again).
    Raises :class:`~bus.errors.ConfigError` for a secret shorter than 16 bytes.
    """

    __slots__ = ("_keyed",)

    def __init__(self, secret: bytes) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ConfigError(
                f"the pseudonymisation secret is {len(secret)} bytes; at least "
                f"{MIN_SECRET_BYTES} are needed",
                fix="generate one with `python -c 'import secrets; print(secrets.token_hex(32))'` "
                "and keep it with the steward",
            )
        self._keyed = hmac.new(secret, digestmod=hashlib.sha256)

    def __call__(self, value: str) -> str:
        """The hex pseudonym of ``value``, hashed exactly as given (normalise it first)."""
        mac = self._keyed.copy()
        mac.update(value.encode("utf-8"))
        return mac.hexdigest()

    def __repr__(self) -> str:
        return "Pseudonymiser(secret=**********)"


def pseudonymise(secret: bytes, value: str) -> str:
    """Return the keyed pseudonym of ``value``: HMAC-SHA256 with the steward's secret, hex.

    ``value`` is hashed exactly as given: normalise it (strip spaces) before calling.
    Raises :class:`~bus.errors.ConfigError` for a secret shorter than 16 bytes. For many
    values under one secret, build one :class:`Pseudonymiser` and call it.
    """
    return Pseudonymiser(secret)(value)


class PairwiseKeys:
    """Pseudonyms that differ per subscriber: one secret, one derived HMAC key per subscriber.

    The key of subscriber ``s`` is the pseudonym of ``spbe-pairwise-key\\0<s>`` under the
    secret (a label no value hashed under the secret starts with), and a value's pairwise
    key is its pseudonym under that key. Each subscriber's :class:`Pseudonymiser` is keyed
    once and kept. Use a secret of the contract service, not the steward's: a subscriber's
    key must not be computable from what the steward's pseudonyms reveal.
    Raises :class:`~bus.errors.ConfigError` for a secret shorter than 16 bytes.
    """

    __slots__ = ("_derive", "_subscribers")

    def __init__(self, secret: bytes) -> None:
        self._derive = Pseudonymiser(secret)
        self._subscribers: dict[str, Pseudonymiser] = {}

    def for_subscriber(self, subscriber: str) -> Pseudonymiser:
        """The pseudonymiser of ``subscriber``: its pairwise key of any value.

        Raises :class:`~bus.errors.ContractError` for an invalid subscriber id.
        """
        found = self._subscribers.get(subscriber)
        if found is None:
            check_subscriber(subscriber)
            derived = bytes.fromhex(self._derive(_PAIRWISE_LABEL + subscriber))
            found = self._subscribers[subscriber] = Pseudonymiser(derived)
        return found

    def __call__(self, subscriber: str, value: str) -> str:
        """The hex pairwise key of ``value`` for ``subscriber`` (normalise ``value`` first)."""
        return self.for_subscriber(subscriber)(value)

    def __repr__(self) -> str:
        return f"PairwiseKeys(secret=**********, subscribers={len(self._subscribers)})"


def pairwise_key(secret: bytes, subscriber: str, value: str) -> str:
    """Return ``subscriber``'s pairwise key of ``value`` (see :class:`PairwiseKeys`), hex.

    For many values, build one :class:`PairwiseKeys` and call it.
    """
    return PairwiseKeys(secret)(subscriber, value)
