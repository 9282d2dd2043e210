"""The security settings of a secured KRaft node, for the local cluster and production alike (pure).

One function, :func:`secured_settings`, writes the listeners, TLS and authorizer lines of a
node's ``server.properties``. ``spbe-bus kafka up --secure`` renders its nodes with it, and
``deploy/kafka/server-*.properties`` are rendered with it too (``production.py``; a test
holds the committed files equal to the rendering), so the production files carry the shape
the test suite runs.

The shape, per node:

- ``SASL_SSL`` for clients: TLS, then SCRAM-SHA-512; the principal is the SASL user.
- ``REPLICATION`` (inter-broker) and ``CONTROLLER`` (the KRaft quorum) over TLS with client
  certificates required: a node authenticates to the others with its certificate, and
  its principal is its certificate's subject (``User:CN=kafka-1``). No password is needed
  between nodes and none crosses the network. (Kafka's own KRaft tests use either
  ``SASL_PLAINTEXT``/``PLAIN`` or TLS with client certificates on the controller listener;
  SCRAM is not usable there because the credentials live in the metadata the controllers
  serve.)
- PEM key stores (``ssl.keystore.type=PEM``: an unencrypted PKCS#8 key and its chain in
  one 0600 file) and a PEM trust store (the CA), so no ``keytool`` and no store password.
- ``StandardAuthorizer`` with ``allow.everyone.if.no.acl.found=false``: what no ACL allows
  is refused. Super users are the nodes (forwarded admin requests are authorized with the
  broker's principal) and one operator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

__all__ = [
    "AUTHORIZER",
    "CLIENT_LISTENER",
    "CONTROLLER_LISTENER",
    "OPERATOR",
    "REPLICATION_LISTENER",
    "SCRAM_MECHANISM",
    "NodeListeners",
    "node_principal",
    "secured_settings",
]

CLIENT_LISTENER = "SASL_SSL"
CONTROLLER_LISTENER = "CONTROLLER"
REPLICATION_LISTENER = "REPLICATION"
SCRAM_MECHANISM: Final = "SCRAM-SHA-512"
AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
#: The one operator principal: a super user, the only writer of ``_spbe.schemas`` and ACLs.
OPERATOR = "spbe-operator"
_SCRAM_JAAS = "org.apache.kafka.common.security.scram.ScramLoginModule required;"


def node_principal(common_name: str) -> str:
    """The principal a node's certificate (subject ``CN=<name>``) authenticates as."""
    return f"User:CN={common_name}"


@dataclass(frozen=True)
class NodeListeners:
    """Where one node listens (``host:port``), what it advertises, and its PEM files."""

    client_bind: str
    client_advertised: str
    controller: str
    replication: str
    keystore: str
    truststore: str


def secured_settings(
    listeners: NodeListeners, *, node_names: Sequence[str], operator: str = OPERATOR
) -> dict[str, object]:
    """The listener, TLS and authorizer settings of one node (``server.properties`` keys).

    ``node_names`` are the certificate common names of every node of the cluster (the
    super users besides ``operator``).
    """
    super_users = [node_principal(name) for name in node_names] + [f"User:{operator}"]
    client = CLIENT_LISTENER.lower()
    return {
        "listeners": (
            f"{CLIENT_LISTENER}://{listeners.client_bind},"
            f"{CONTROLLER_LISTENER}://{listeners.controller},"
            f"{REPLICATION_LISTENER}://{listeners.replication}"
        ),
        "advertised.listeners": (
            f"{CLIENT_LISTENER}://{listeners.client_advertised},"
            f"{REPLICATION_LISTENER}://{listeners.replication}"
        ),
        "controller.listener.names": CONTROLLER_LISTENER,
        "inter.broker.listener.name": REPLICATION_LISTENER,
        "listener.security.protocol.map": (
            f"{CLIENT_LISTENER}:SASL_SSL,{CONTROLLER_LISTENER}:SSL,{REPLICATION_LISTENER}:SSL"
        ),
        "sasl.enabled.mechanisms": SCRAM_MECHANISM,
        f"listener.name.{client}.{SCRAM_MECHANISM.lower()}.sasl.jaas.config": _SCRAM_JAAS,
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": listeners.keystore,
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": listeners.truststore,
        "ssl.client.auth": "required",
        f"listener.name.{client}.ssl.client.auth": "none",
        "ssl.endpoint.identification.algorithm": "https",
        "ssl.enabled.protocols": "TLSv1.3,TLSv1.2",
        "authorizer.class.name": AUTHORIZER,
        "allow.everyone.if.no.acl.found": "false",
        "super.users": ";".join(super_users),
    }
