"""A local certificate authority and per-node certificates in PEM, as Kafka reads them.

The secured local cluster (and anyone trying the production shape on one machine) needs a
CA, one certificate per broker covering every host it is reached by, and client
certificates. Kafka reads PEM directly (``ssl.keystore.type=PEM``): the keystore file holds
the private key, then the certificate and the CA (the chain); the truststore file holds
the CA. Keys are unencrypted PKCS#8 with mode 0600, because the JDK may refuse the PBES2
encryption that ``cryptography`` (like OpenSSL 3) writes, and a PEM keystore takes no
keystore password. Host name verification is Kafka's default, so a node's certificate
names every host and IP address it advertises (``localhost`` and ``127.0.0.1`` locally).

Everything here is built with ``cryptography``'s X.509 API; nothing shells out to
``keytool`` or ``openssl``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from bus.errors import ConfigError

__all__ = [
    "CA_CERT_FILE",
    "CA_KEY_FILE",
    "CertificateAuthority",
    "IssuedCertificate",
]

CA_CERT_FILE = "ca.pem"
CA_KEY_FILE = "ca.key"
#: How long the local CA and what it issues stay valid.
CA_DAYS = 3650
ISSUED_DAYS = 825
_CURVE = ec.SECP256R1()


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """The files of one issued certificate.

    ``keystore`` is what Kafka's ``ssl.keystore.location`` (type PEM) reads: the key, the
    certificate and the CA. ``certificate`` and ``key`` are the same two apart, for
    clients (``ssl.SSLContext.load_cert_chain``).
    """

    name: str
    certificate: Path
    key: Path
    keystore: Path


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a file only its owner can read, created with that mode."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _subject_alternative_names(hosts: Sequence[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


class CertificateAuthority:
    """A CA kept as two PEM files in one folder; it issues node and client certificates."""

    def __init__(self, folder: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey):
        self.folder = folder
        self.certificate = cert
        self._key = key

    @property
    def cert_path(self) -> Path:
        """The CA certificate: what a truststore (``ssl.truststore.location``) reads."""
        return self.folder / CA_CERT_FILE

    @classmethod
    def create(cls, folder: Path, *, name: str = "spbe-bus local CA") -> CertificateAuthority:
        """A new CA in ``folder`` (``ca.pem``, and ``ca.key`` with mode 0600)."""
        folder.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(_CURVE)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        _write_private(folder / CA_KEY_FILE, _key_pem(key))
        (folder / CA_CERT_FILE).write_bytes(_cert_pem(cert))
        return cls(folder, cert, key)

    @classmethod
    def load(cls, folder: Path) -> CertificateAuthority:
        """The CA that :meth:`create` wrote in ``folder``; ConfigError naming a missing file."""
        cert_path, key_path = folder / CA_CERT_FILE, folder / CA_KEY_FILE
        for path in (cert_path, key_path):
            if not path.is_file():
                raise ConfigError(
                    f"the local CA file {path} does not exist",
                    fix="create the CA first (it is made when the secured cluster is set up)",
                )
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ConfigError(f"{key_path} is not the CA's elliptic-curve key")
        return cls(folder, cert, key)

    def issue(
        self,
        name: str,
        *,
        hosts: Sequence[str] = (),
        folder: Path | None = None,
        days: int = ISSUED_DAYS,
    ) -> IssuedCertificate:
        """A certificate for ``name`` (its CN), valid for ``hosts`` (DNS names or IPs).

        Usable as a server (a broker's listener) and as a client (inter-broker TLS, a
        client certificate). Writes ``<name>.pem``, ``<name>.key`` (0600) and
        ``<name>.keystore.pem`` (0600) into ``folder`` (the CA's folder by default).
        """
        if not name or "/" in name or name.startswith("."):
            raise ConfigError(f"certificate name {name!r} must be a plain file name")
        where = folder or self.folder
        where.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(_CURVE)
        now = _now()
        expires = min(now + dt.timedelta(days=days), self.certificate.not_valid_after_utc)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(expires)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
        )
        if hosts:
            builder = builder.add_extension(_subject_alternative_names(hosts), critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        paths = IssuedCertificate(
            name=name,
            certificate=where / f"{name}.pem",
            key=where / f"{name}.key",
            keystore=where / f"{name}.keystore.pem",
        )
        chain = _cert_pem(cert) + _cert_pem(self.certificate)
        paths.certificate.write_bytes(chain)
        _write_private(paths.key, _key_pem(key))
        _write_private(paths.keystore, _key_pem(key) + chain)
        return paths
