"""Denials that say what happened: each refusal of a Kafka client as a named error with its fix.

aiokafka says little about a refusal: a wrong password or an untrusted certificate ends a
client's start as ``Unable to bootstrap``, and an ACL refusal is an error code without the
principal. This package turns each into a :class:`~bus.errors.KafkaRefusedError`:

- :mod:`bus.diagnosis.probe`: why a client could not connect (SASL credentials, TLS,
  a listener of another security protocol), found by connecting to each bootstrap server;
  :func:`bus.startup.wait_for_kafka` runs it when a start fails to connect.
- :mod:`bus.diagnosis.access`: an ACL refusal during work (a write, a read, a consumer
  group) as :class:`~bus.errors.KafkaAuthorizationError`, naming principal and resource.
- :mod:`bus.diagnosis.messages`: the messages and fixes, and the reading of an SSL error.
"""

from __future__ import annotations

from bus.diagnosis.access import (
    AUTHORIZATION_ERRORS,
    authorization_error,
    group_refused,
    read_refused,
    refused_topics,
    sasl_user,
    unauthorized_topics,
    write_refused,
)
from bus.diagnosis.messages import certificate_names, tls_failure
from bus.diagnosis.probe import (
    DIAGNOSIS_TIMEOUT_S,
    SecuritySettings,
    diagnose_connection,
    is_connection_failure,
    probe_server,
)

__all__ = [
    "AUTHORIZATION_ERRORS",
    "DIAGNOSIS_TIMEOUT_S",
    "SecuritySettings",
    "authorization_error",
    "certificate_names",
    "diagnose_connection",
    "group_refused",
    "is_connection_failure",
    "probe_server",
    "read_refused",
    "refused_topics",
    "sasl_user",
    "tls_failure",
    "unauthorized_topics",
    "write_refused",
]
