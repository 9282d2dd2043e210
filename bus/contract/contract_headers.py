"""The contract a projected event was delivered under, as CloudEvents extensions (pure).

The contract service adds three extension attributes to every event it delivers on a
projected topic, beside the envelope's (:mod:`bus.contract.envelope`), as Kafka headers in
the binding's binary mode (``ce_<attribute>``, UTF-8 values)::

    ce_subscription   the subscription (its subscriber id)   dpmptsp-penduduk
    ce_purpose        the purpose the catalogue records       Verifikasi identitas ...
    ce_legalbasis     the PKS number or regulation            PKS 470/1021/DISDUKCAPIL/2025 ...

CloudEvents extension names are lowercase letters and digits only, hence ``legalbasis``.
An envelope read with :func:`~bus.contract.envelope.from_headers` ignores them, as it
ignores every extension it does not know; :func:`from_contract_headers` reads them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bus.contract.projected_names import SUBSCRIBER_PATTERN
from bus.errors import EnvelopeError

__all__ = [
    "HEADER_LEGALBASIS",
    "HEADER_PURPOSE",
    "HEADER_SUBSCRIPTION",
    "DeliveryContract",
    "from_contract_headers",
    "to_contract_headers",
]

HEADER_SUBSCRIPTION = "ce_subscription"
HEADER_PURPOSE = "ce_purpose"
HEADER_LEGALBASIS = "ce_legalbasis"
_HEADERS = (HEADER_SUBSCRIPTION, HEADER_PURPOSE, HEADER_LEGALBASIS)
_FIX = "deliver through the contract service, which sets the contract headers from the catalogue"


@dataclass(frozen=True, slots=True)
class DeliveryContract:
    """Which subscription an event was delivered under, for what purpose, on what basis.

    Every value is checked when it is built: the subscription is a subscriber id, purpose
    and legal basis are non-empty text.
    """

    subscription: str
    purpose: str
    legalbasis: str

    def __post_init__(self) -> None:
        if not isinstance(self.subscription, str) or not SUBSCRIBER_PATTERN.fullmatch(
            self.subscription
        ):
            raise EnvelopeError(
                f"{HEADER_SUBSCRIPTION} must be a subscriber id (lowercase letters, digits, "
                f"'.', '_', '-'; at most 100), got {self.subscription!r}",
                fix=_FIX,
            )
        for header, value in ((HEADER_PURPOSE, self.purpose), (HEADER_LEGALBASIS, self.legalbasis)):
            if not isinstance(value, str) or not value.strip():
                raise EnvelopeError(f"{header} must be non-empty text", fix=_FIX)


def to_contract_headers(contract: DeliveryContract) -> list[tuple[str, bytes]]:
    """The three contract headers, to append to the envelope's (:func:`to_headers`)."""
    return [
        (HEADER_SUBSCRIPTION, contract.subscription.encode("utf-8")),
        (HEADER_PURPOSE, contract.purpose.encode("utf-8")),
        (HEADER_LEGALBASIS, contract.legalbasis.encode("utf-8")),
    ]


def from_contract_headers(headers: Sequence[tuple[str, bytes | None]]) -> DeliveryContract:
    """Read the contract from Kafka headers; other headers are ignored.

    Raises :class:`~bus.errors.EnvelopeError` naming the header that is missing, empty,
    repeated, not UTF-8 or breaks its rule.
    """
    values: dict[str, str] = {}
    for name, raw in headers:
        if name not in _HEADERS:
            continue
        if name in values:
            raise EnvelopeError(
                f"header {name} appears more than once; CloudEvents allows one value", fix=_FIX
            )
        if raw is None:
            raise EnvelopeError(f"header {name} has no value", fix=_FIX)
        try:
            values[name] = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise EnvelopeError(
                f"header {name} is not valid UTF-8", fix="encode header values as UTF-8"
            ) from None
    for name in _HEADERS:
        if name not in values:
            raise EnvelopeError(f"required header {name} is missing", fix=_FIX)
    return DeliveryContract(
        subscription=values[HEADER_SUBSCRIPTION],
        purpose=values[HEADER_PURPOSE],
        legalbasis=values[HEADER_LEGALBASIS],
    )
