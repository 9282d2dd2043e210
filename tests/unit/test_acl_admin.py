"""Bindings cross to confluent-kafka and back unchanged; Kafka's CLUSTER is librdkafka's BROKER."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import ResourceType

from bus.connection import KafkaSecurity
from bus.ops.access import handover_security, new_password
from bus.ops.access_plan import CLUSTER_RESOURCE, AclEntry
from bus.ops.acl_admin import _binding, _entry, _filter


@pytest.mark.parametrize(
    "entry",
    [
        AclEntry.allow("disdukcapil-siak", "CLUSTER", CLUSTER_RESOURCE, "IDEMPOTENT_WRITE"),
        AclEntry.allow("dinkes-penduduk", "GROUP", "dinkes-penduduk", "READ"),
        AclEntry("User:x", "TOPIC", "spbe.", "READ", pattern_type="PREFIXED", permission="DENY"),
    ],
)
def test_a_binding_round_trips(entry: AclEntry) -> None:
    binding = _binding(entry)
    assert _entry(binding) == entry
    assert _filter(entry).name == entry.resource_name


def test_the_cluster_resource_is_librdkafkas_broker_type() -> None:
    entry = AclEntry.allow("a", "CLUSTER", CLUSTER_RESOURCE, "IDEMPOTENT_WRITE")
    assert _binding(entry).restype == ResourceType.BROKER


def test_a_generated_password_has_no_comma_and_is_new_each_time() -> None:
    passwords = {new_password() for _ in range(50)}
    assert len(passwords) == 50
    assert all("," not in p and len(p) >= 40 for p in passwords)


def test_a_hand_over_carries_the_principal_not_the_operators_certificate(tmp_path: object) -> None:
    operator = KafkaSecurity(protocol="SASL_SSL", username="spbe-operator", password="s3cret")
    security = handover_security(operator, "dinkes-penduduk", "p4ss")
    assert security.username == "dinkes-penduduk"
    assert security.password is not None
    assert security.password.get_secret_value() == "p4ss"
    assert security.protocol == "SASL_SSL"
    assert security.cert_file is None
    assert "p4ss" not in repr(security)
