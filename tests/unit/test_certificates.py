"""The local CA issues certificates a real TLS handshake accepts, in the files Kafka reads."""

from __future__ import annotations

import contextlib
import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from bus.errors import ConfigError
from bus.localkafka.certificates import CA_KEY_FILE, CertificateAuthority

HOSTS = ("localhost", "127.0.0.1")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_node_certificate_is_issued_by_the_ca_and_names_every_host(tmp_path: Path) -> None:
    ca = CertificateAuthority.create(tmp_path)
    node = ca.issue("node-1", hosts=HOSTS)
    cert = x509.load_pem_x509_certificates(node.certificate.read_bytes())
    leaf, issuer = cert
    assert issuer == ca.certificate
    leaf.verify_directly_issued_by(ca.certificate)
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert ca.certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_keys_are_unencrypted_pkcs8_only_their_owner_can_read(tmp_path: Path) -> None:
    ca = CertificateAuthority.create(tmp_path)
    node = ca.issue("node-1", hosts=HOSTS)
    for path in (tmp_path / CA_KEY_FILE, node.key, node.keystore):
        assert _mode(path) == 0o600, path
        text = path.read_text()
        assert "-----BEGIN PRIVATE KEY-----" in text  # PKCS#8, not "EC PRIVATE KEY"
        assert "ENCRYPTED" not in text
    keystore = node.keystore.read_text()
    # Kafka's PEM keystore: the key first, then the certificate chain.
    assert keystore.index("PRIVATE KEY") < keystore.index("CERTIFICATE")
    assert keystore.count("BEGIN CERTIFICATE") == 2
    serialization.load_pem_private_key(node.key.read_bytes(), password=None)


def test_a_tls_client_trusting_the_ca_connects_by_name_and_by_address(tmp_path: Path) -> None:
    ca = CertificateAuthority.create(tmp_path)
    node = ca.issue("node-1", hosts=HOSTS)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(node.certificate, node.key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve(count: int) -> None:
        for _ in range(count):
            conn, _ = listener.accept()
            with server_context.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(tls.recv(16))

    thread = threading.Thread(target=serve, args=(len(HOSTS),), daemon=True)
    thread.start()
    client_context = ssl.create_default_context(cafile=str(ca.cert_path))
    try:
        for host in HOSTS:  # host name verification on, as Kafka's default
            with (
                socket.create_connection(("127.0.0.1", port), timeout=30) as raw,
                client_context.wrap_socket(raw, server_hostname=host) as tls,
            ):
                tls.sendall(b"ping")
                assert tls.recv(16) == b"ping"
    finally:
        thread.join(timeout=30)
        listener.close()


def test_a_host_the_certificate_does_not_name_is_refused(tmp_path: Path) -> None:
    ca = CertificateAuthority.create(tmp_path)
    node = ca.issue("node-1", hosts=("localhost",))
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(node.certificate, node.key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:  # the client hangs up mid-handshake; only the client's view counts
        conn, _ = listener.accept()
        with conn, contextlib.suppress(ssl.SSLError, OSError):
            server_context.wrap_socket(conn, server_side=True).recv(1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client_context = ssl.create_default_context(cafile=str(ca.cert_path))
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=30) as raw,
            pytest.raises(ssl.SSLCertVerificationError, match=r"127\.0\.0\.1"),
        ):
            client_context.wrap_socket(raw, server_hostname="127.0.0.1")
    finally:
        thread.join(timeout=30)
        listener.close()


def test_the_ca_loads_back_and_issues_again(tmp_path: Path) -> None:
    first = CertificateAuthority.create(tmp_path)
    again = CertificateAuthority.load(tmp_path)
    assert again.certificate == first.certificate
    client = again.issue("operator", folder=tmp_path / "clients")
    leaf = x509.load_pem_x509_certificates(client.certificate.read_bytes())[0]
    leaf.verify_directly_issued_by(first.certificate)


def test_missing_ca_files_and_bad_names_are_refused_naming_them(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"ca\.pem"):
        CertificateAuthority.load(tmp_path)
    ca = CertificateAuthority.create(tmp_path)
    for name in ("", "../node", ".hidden"):
        with pytest.raises(ConfigError, match="plain file name"):
            ca.issue(name)
