"""Errors of the REST gateway, placed in the bus's one tree.

    BusError
    └── GatewayError                    the gateway refused or failed a request
        └── TokenRejected               a bearer token does not verify: answer 401
                                        (``reason``: expired, invalid, audience, issuer,
                                        malformed)

A gateway error's ``message`` is written to be returned to the caller as it is: it names
what is wrong, never the token, a secret or a submitted value.
"""

from __future__ import annotations

from typing import Literal, get_args

from bus.errors import BusError

__all__ = ["TOKEN_REJECTED_REASONS", "GatewayError", "TokenRejected", "TokenRejectedReason"]

#: Why a bearer token was refused.
TokenRejectedReason = Literal["expired", "invalid", "audience", "issuer", "malformed"]
TOKEN_REJECTED_REASONS: frozenset[str] = frozenset(get_args(TokenRejectedReason))


class GatewayError(BusError):
    """Root of the errors the REST gateway raises on purpose."""


class TokenRejected(GatewayError):
    """A bearer token was refused; ``reason`` says why, ``message`` is safe to return.

    ``expired``: its ``exp`` has passed; ``invalid``: the signature, algorithm or type does
    not verify under this gateway's key; ``audience`` / ``issuer``: it was issued for another
    API or by another issuer; ``malformed``: it is not a JWT, or a claim is missing or of the
    wrong type.
    """

    def __init__(self, message: str, *, reason: TokenRejectedReason, fix: str) -> None:
        if reason not in TOKEN_REJECTED_REASONS:
            raise ValueError(f"reason must be one of {sorted(TOKEN_REJECTED_REASONS)}")
        self.reason: TokenRejectedReason = reason
        super().__init__(message, fix=fix)
