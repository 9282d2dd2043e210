"""Keyed pseudonyms of personal identifiers: the Kafka key of every personal-data event (pure).

A NIK has 16 digits, but its structure (6-digit kecamatan code, birth date, 4-digit
serial) leaves a space small enough to enumerate: a plain SHA-256 of a NIK is reversed
by hashing every candidate. Keying the hash with a secret held only by the steward
makes the pseudonym stable (the same person always gets the same Kafka key, so order
and compaction work) while nobody without the secret can link it back to the NIK.
"""

from __future__ import annotations

import hashlib
import hmac

from bus.errors import ConfigError

__all__ = ["MIN_SECRET_BYTES", "Pseudonymiser", "pseudonymise"]

#: A pseudonymisation secret shorter than this is refused.
MIN_SECRET_BYTES = 16


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
