"""The named error of each refusal, with its fix (no IO: every function takes what it names).

A message says who was refused (the SASL user, never the password), where (the broker) and
why; the fix says what to change. :func:`tls_failure` reads an :class:`ssl.SSLError` as the
handshake raised it; the others are given the facts a probe or an aiokafka error found.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509

from bus.errors import (
    KafkaAuthenticationError,
    KafkaSecurityProtocolError,
    KafkaTlsError,
)

__all__ = [
    "HOST_MISMATCH_CODES",
    "UNKNOWN_CA_CODES",
    "VALIDITY_CODES",
    "bad_credentials",
    "certificate_names",
    "protocol_mismatch",
    "tls_failure",
    "unsupported_mechanism",
]

#: OpenSSL's verify codes (``X509_V_ERR_*``) for a chain the client's CAs do not end in.
UNKNOWN_CA_CODES = frozenset(
    {
        2,  # unable to get issuer certificate
        18,  # self-signed certificate
        19,  # self-signed certificate in certificate chain
        20,  # unable to get local issuer certificate
        21,  # unable to verify the first certificate
    }
)
#: ... for a certificate that does not name the host (62) or address (64) connected to.
HOST_MISMATCH_CODES = frozenset({62, 64})
#: ... for a certificate outside its validity period.
VALIDITY_CODES = frozenset({9, 10})  # not yet valid, expired

_CREDENTIAL_SETTINGS = (
    "security.username and security.password of the adapter file, SPBE_KAFKA_USERNAME and "
    "SPBE_KAFKA_PASSWORD, or the credentials file (SPBE_KAFKA_CREDENTIALS)"
)


def bad_credentials(
    user: str | None, mechanism: str, broker: str, detail: str
) -> KafkaAuthenticationError:
    """The broker's SASL authentication refused ``user`` (a wrong password, an unknown user)."""
    return KafkaAuthenticationError(
        f"the broker at {broker} refused the credentials of user {user!r} ({mechanism}): "
        f"{detail or 'authentication failed'}",
        fix=f"check the user name and password ({_CREDENTIAL_SETTINGS}); after "
        "'spbe-bus catalog credentials rotate' only the new password of the newest hand-over "
        "file is accepted, and a user of the catalogue exists once 'spbe-bus catalog apply' "
        "made it",
        user=user,
        broker=broker,
    )


def unsupported_mechanism(
    user: str | None, mechanism: str, broker: str, detail: str
) -> KafkaAuthenticationError:
    """The broker does not offer the client's SASL mechanism."""
    return KafkaAuthenticationError(
        f"the broker at {broker} does not offer the SASL mechanism {mechanism} that user "
        f"{user!r} authenticates with: {detail}",
        fix="set sasl_mechanism (SPBE_KAFKA_SASL_MECHANISM) to one the broker offers; "
        "the bus's clusters use SCRAM-SHA-512",
        user=user,
        broker=broker,
    )


def _ssl_detail(exc: ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return f"certificate verify failed: {exc.verify_message}"
    return exc.reason or str(exc)


def tls_failure(
    exc: ssl.SSLError,
    *,
    host: str,
    broker: str,
    ca_file: Path | None,
    has_client_certificate: bool,
    certificate_names: Sequence[str] | None = None,
) -> KafkaTlsError:
    """What a failed TLS handshake with ``broker`` (connected to as ``host``) means.

    ``certificate_names`` are the names the broker's certificate covers, when they could be
    read (a second handshake that does not verify); they go into a host name mismatch.
    """
    detail = _ssl_detail(exc)
    code = exc.verify_code if isinstance(exc, ssl.SSLCertVerificationError) else None
    if code in HOST_MISMATCH_CODES:
        covers = (
            f"it covers {', '.join(certificate_names)}"
            if certificate_names
            else "its names could not be read"
        )
        return KafkaTlsError(
            f"the certificate of the broker at {broker} does not name {host!r}, the host this "
            f"client connected to; {covers} ({detail})",
            fix="connect through a name the certificate covers (in the bootstrap servers and "
            "the brokers' advertised listeners), or give the broker a certificate whose "
            f"subject alternative names include {host}; keep check_hostname on outside tests",
            broker=broker,
            reason="host_name",
        )
    if code in UNKNOWN_CA_CODES:
        trusted = f"the CA in {ca_file}" if ca_file is not None else "the system's CAs"
        fix = (
            f"{ca_file} is not the CA that signed the brokers' certificates: point ca_file "
            "(SPBE_KAFKA_CA_FILE) at this cluster's CA (a local cluster's is ca.pem in its data "
            "directory, and its credentials file names it)"
            if ca_file is not None
            else "set ca_file (SPBE_KAFKA_CA_FILE) to the PEM certificate of the CA that signed "
            "the brokers' certificates (a local cluster's credentials file names it)"
        )
        return KafkaTlsError(
            f"the certificate of the broker at {broker} is not signed by a CA this client "
            f"trusts ({trusted}): {detail}",
            fix=fix,
            broker=broker,
            reason="unknown_ca",
        )
    if code in VALIDITY_CODES:
        return KafkaTlsError(
            f"the certificate of the broker at {broker} is outside its validity period: {detail}",
            fix="issue the broker a new certificate from the cluster's CA and restart it; "
            "check this machine's clock",
            broker=broker,
            reason="expired",
        )
    text = f"{exc.reason or ''} {exc}".upper()
    if "CERTIFICATE_REQUIRED" in text or "CERTIFICATE REQUIRED" in text:
        return KafkaTlsError(
            f"the broker at {broker} asks for a client certificate (mutual TLS) and "
            + ("refused this client's" if has_client_certificate else "this client has none")
            + f": {detail}",
            fix="set cert_file and key_file (SPBE_KAFKA_CERT_FILE, SPBE_KAFKA_KEY_FILE) to a "
            "client certificate the cluster's CA signed, and its key",
            broker=broker,
            reason="client_certificate",
        )
    return KafkaTlsError(
        f"the TLS handshake with the broker at {broker} failed: {detail}",
        fix=f"check that {broker} is the cluster's TLS listener and that ca_file "
        "(SPBE_KAFKA_CA_FILE) is the cluster's CA",
        broker=broker,
        reason="handshake",
    )


def protocol_mismatch(
    broker: str, configured: str, expected: str, evidence: str
) -> KafkaSecurityProtocolError:
    """The listener at ``broker`` seems to expect ``expected``, not the ``configured`` protocol.

    ``evidence`` is what the listener did that says so ("it answered a TLS handshake").
    """
    needs = []
    if expected.startswith("SASL"):
        needs.append("a user and password")
    if expected.endswith("SSL"):
        needs.append("ca_file (the cluster's CA)")
    given = f", with {' and '.join(needs)}" if needs else ""
    return KafkaSecurityProtocolError(
        f"the listener at {broker} does not speak {configured}: {evidence}, so it seems to "
        f"expect {expected}",
        fix=f"set protocol (SPBE_KAFKA_SECURITY_PROTOCOL) to {expected}{given}, or point the "
        f"bootstrap servers at the cluster's {configured} listener if it has one (the "
        "credentials file of 'spbe-bus kafka up --secure' or 'catalog apply' holds the "
        "settings of a secured cluster)",
        broker=broker,
        expected=expected,
    )


def certificate_names(der: bytes) -> list[str]:
    """The DNS names and IP addresses a DER certificate covers (its CN when it has no SAN)."""
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return []
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        common = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        return [str(a.value) for a in common]
    return [
        *sans.get_values_for_type(x509.DNSName),
        *(str(ip) for ip in sans.get_values_for_type(x509.IPAddress)),
    ]
