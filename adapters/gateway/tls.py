"""The gateway's HTTPS certificate from the local CA of a development cluster.

``spbe-bus gateway certificate`` and ``spbe-bus demo`` issue it the same way: signed by
the CA in ``<cluster data dir>/tls`` (the one the brokers' certificates come from), named
``spbe-gateway``, for the hosts clients use. In production the gateway uses the Pemda's
own certificate instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bus.localkafka.certificates import CertificateAuthority, IssuedCertificate
from bus.ops.principals import GATEWAY_PRINCIPAL

__all__ = ["DEFAULT_CERTIFICATE_HOSTS", "issue_local_certificate"]

#: The hosts the certificate names when none are given: the gateway on this machine.
DEFAULT_CERTIFICATE_HOSTS = ("127.0.0.1", "localhost")


def issue_local_certificate(
    ca_dir: Path, output: Path, hosts: Sequence[str] = DEFAULT_CERTIFICATE_HOSTS
) -> IssuedCertificate:
    """``spbe-gateway.pem`` (the CA in its chain) and ``spbe-gateway.key`` (0600) in ``output``."""
    return CertificateAuthority.load(ca_dir).issue(
        GATEWAY_PRINCIPAL, hosts=list(hosts), folder=output
    )
