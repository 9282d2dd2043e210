"""A secured local cluster's files: its CA, each node's certificate, the operator's credentials.

Layout inside the cluster's data directory::

    <data_dir>/tls/ca.pem, ca.key          the local CA (ca.key 0600)
    <data_dir>/node-<id>/tls/kafka-<id>.*  the node's certificate, key and PEM keystore (0600)
    <data_dir>/credentials.json            the operator's credentials and the CA (0600)

Everything is made once and reused on later starts: the operator's SCRAM credential goes
into the metadata log when the nodes are formatted, so its password must not change
afterwards. Node certificates cover every host a client may use on this machine
(``127.0.0.1``, ``localhost`` and the layout's host).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from bus.connection import KafkaConnection, KafkaSecurity, write_credentials_file
from bus.localkafka.certificates import CA_CERT_FILE, CertificateAuthority
from bus.localkafka.layout import ClusterLayout, node_name
from bus.localkafka.secured import OPERATOR, SCRAM_MECHANISM

__all__ = [
    "CREDENTIALS_FILE",
    "NodeTls",
    "credentials_path",
    "operator_connection",
    "prepare_node_tls",
    "prepare_operator",
    "scram_format_argument",
]

CREDENTIALS_FILE = "credentials.json"
_PASSWORD_BYTES = 24


@dataclass(frozen=True)
class NodeTls:
    keystore: Path
    truststore: Path


def credentials_path(data_dir: Path) -> Path:
    return data_dir / CREDENTIALS_FILE


def _ca(data_dir: Path) -> CertificateAuthority:
    folder = data_dir / "tls"
    if (folder / CA_CERT_FILE).exists():
        return CertificateAuthority.load(folder)
    return CertificateAuthority.create(folder, name="spbe-bus local CA")


def prepare_node_tls(data_dir: Path, layout: ClusterLayout, node_id: int) -> NodeTls:
    """The node's PEM keystore (made on first use) and the CA file its truststore reads."""
    ca = _ca(data_dir)
    name = node_name(node_id)
    folder = data_dir / f"node-{node_id}" / "tls"
    keystore = folder / f"{name}.keystore.pem"
    if not keystore.exists():
        hosts = list(dict.fromkeys([layout.host, "127.0.0.1", "localhost"]))
        keystore = ca.issue(name, hosts=hosts, folder=folder).keystore
    return NodeTls(keystore=keystore, truststore=ca.cert_path)


def prepare_operator(data_dir: Path, layout: ClusterLayout) -> KafkaSecurity:
    """The operator's settings: read from the credentials file, or made and written there."""
    path = credentials_path(data_dir)
    ca = _ca(data_dir)
    if path.exists():
        security = KafkaSecurity(credentials_file=path)
    else:
        security = KafkaSecurity(
            protocol="SASL_SSL",
            sasl_mechanism=SCRAM_MECHANISM,
            username=OPERATOR,
            password=SecretStr(secrets.token_urlsafe(_PASSWORD_BYTES)),
            ca_file=ca.cert_path,
        )
    # The bootstrap may differ from the file's after a change of host: keep it current.
    write_credentials_file(path, layout.bootstrap_servers, security)
    return KafkaSecurity(credentials_file=path)


def scram_format_argument(security: KafkaSecurity) -> str:
    """The ``--add-scram`` value of ``StorageTool format`` for ``security``'s user.

    ``StorageTool`` splits the value on commas: a generated password never has one
    (URL-safe base64), and a given one is refused here rather than cut there.
    """
    assert security.password is not None
    password = security.password.get_secret_value()
    if "," in password or "]" in password or '"' in password:
        raise ValueError("the operator's password may not contain ',', ']' or '\"'")
    return f"{security.sasl_mechanism}=[name={security.username},password={password}]"


def operator_connection(data_dir: Path, layout: ClusterLayout) -> KafkaConnection:
    """How the operator reaches the cluster (plaintext for an unsecured one)."""
    if not layout.secure:
        return KafkaConnection(bootstrap_servers=layout.bootstrap_servers)
    return KafkaConnection(
        bootstrap_servers=layout.bootstrap_servers,
        security=KafkaSecurity(credentials_file=credentials_path(data_dir)),
    )
