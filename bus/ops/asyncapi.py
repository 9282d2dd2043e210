"""The catalogue as an AsyncAPI 3.0 document: who sends and who receives what, on which topic.

Integrators plan against one machine-readable description instead of reading
``deploy/catalog.yaml`` and ``schemas/avro`` side by side. :func:`asyncapi_document` builds
it from the catalogue and the data standard (pure):

* **servers**: the Kafka brokers (default the three nodes of ``deploy/kafka``), protocol
  ``kafka-secure``, security scheme SCRAM-SHA-512 over TLS (``SASL_SSL``, docs/security.md);
* **channels**: one per topic, address = the topic's name: every raw topic, and every
  projected topic ``<topic>.for.<subscriber>`` a restricted topic is delivered on, with the
  Kafka binding (partitions, replicas, ``cleanup.policy``, ``retention.ms``);
* **messages**: one per event type (and per projection of one), its Avro schema as the
  payload (``application/vnd.apache.avro+json;version=1.9.0``) and its CloudEvents headers
  as a JSON Schema (:mod:`bus.ops.asyncapi_headers`), the key in the Kafka binding;
* **operations**: ``send`` for each steward application on its steward's topics,
  ``receive`` for each subscriber on the topic it reads (Kafka binding ``groupId`` = the
  subscriber id), and the contract service's ``receive`` of raw restricted topics and
  ``send`` of their projections.

Expired subscriptions stay in the document, marked with ``x-spbe-expires``: the document
describes the catalogue, not a day (``catalog plan`` says what an expiry revokes).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from bus.contract.projection import ProjectedSchema, projected_topic
from bus.contract.schema import AvroSchema
from bus.errors import ConfigError
from bus.localkafka.production import CLIENT_PORT, NODES, host
from bus.ops.asyncapi_headers import envelope_headers, with_contract
from bus.ops.catalog import Catalog, CatalogTopic, Steward, Subscription
from bus.ops.contract_topics import subscribed_topics
from bus.ops.principals import CONTRACT_SERVICE_GROUP, CONTRACT_SERVICE_PRINCIPAL

__all__ = [
    "ASYNCAPI_VERSION",
    "AVRO_SCHEMA_FORMAT",
    "DEFAULT_SERVERS",
    "SECURITY_SCHEME",
    "asyncapi_document",
    "asyncapi_json",
]

ASYNCAPI_VERSION = "3.0.0"
AVRO_SCHEMA_FORMAT = "application/vnd.apache.avro+json;version=1.9.0"
#: The brokers of ``deploy/kafka`` (placeholders for the Diskominfo's own names).
DEFAULT_SERVERS: Mapping[str, str] = {f"kafka-{n}": f"{host(n)}:{CLIENT_PORT}" for n in NODES}
#: The one security scheme every client of the bus uses.
SECURITY_SCHEME = "scramSha512"
_KAFKA_BINDING = "0.5.0"
_REGISTRY_TOPIC = "_spbe.schemas"


def asyncapi_document(
    catalog: Catalog,
    standard: Mapping[str, AvroSchema],
    *,
    servers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document of ``catalog`` with the schemas of ``standard``.

    ``servers`` maps a server name to ``host:port`` (default :data:`DEFAULT_SERVERS`).
    Raises :class:`~bus.errors.ConfigError` for an event type the standard lacks, or a
    server without a name or host.
    """
    by_type = {s.event_type: s for s in standard.values() if s.event_type}
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    stewards = {s.id: s for s in catalog.stewards}
    for topic in catalog.topics:
        steward = stewards[topic.steward]
        refs = {}
        for event_type in topic.event_types:
            schema = _schema_of(by_type, event_type, topic.name)
            messages[schema.record_name] = _message(schema, steward, topic)
            refs[schema.record_name] = _ref("components", "messages", schema.record_name)
        channels[topic.name] = _channel(topic, topic.name, refs, topic.description)
        for principal in steward.principals:
            operations[f"{principal}.send.{topic.name}"] = _operation(
                "send", topic.name, refs, f"{principal} ({steward.id}) publishes {topic.name}",
                {"x-spbe-principal": principal},
            )  # fmt: skip
    for entry in subscribed_topics(catalog):
        sub = _subscription_of(catalog, entry.subscriber, entry.raw_topic)
        topic = catalog.topic(entry.raw_topic)
        if entry.projected:
            _add_projection(by_type, stewards[topic.steward], topic, sub, messages, channels,
                            operations)  # fmt: skip
        refs = channels[entry.topic]["messages"]
        operations[f"{sub.subscriber}.receive.{entry.topic}"] = _operation(
            "receive", entry.topic, refs,
            f"{sub.subscriber} ({sub.opd}) receives {entry.topic}: {sub.purpose}",
            {**_contract_extensions(sub), "bindings": _group(sub.subscriber)},
        )  # fmt: skip
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": f"urn:spbe:bus:{'-'.join(sorted({f'PEMDA-{s.pemda}' for s in catalog.stewards}))}",
        "info": _info(catalog),
        "servers": _servers(DEFAULT_SERVERS if servers is None else servers),
        "defaultContentType": "application/avro",
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "securitySchemes": {
                SECURITY_SCHEME: {
                    "type": "scramSha512",
                    "description": "SASL SCRAM-SHA-512 over TLS (Kafka SASL_SSL). One user per "
                    "steward application and per subscriber, created by `spbe-bus catalog "
                    "apply`; the brokers' authorizer grants each only what the catalogue "
                    "grants it (docs/security.md).",
                }
            },
        },
    }


def asyncapi_json(document: Mapping[str, Any]) -> str:
    """The document as the text of ``docs/api/asyncapi.json`` (indented, key order kept)."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _add_projection(
    by_type: Mapping[str, AvroSchema],
    steward: Steward,
    topic: CatalogTopic,
    sub: Subscription,
    messages: dict[str, Any],
    channels: dict[str, Any],
    operations: dict[str, Any],
) -> None:
    """The projected channel of ``topic`` for ``sub``, its messages and the service's ops."""
    name = projected_topic(topic.name, sub.subscriber)
    refs = {}
    for event_type in topic.event_types:
        allowed = sub.allowed_fields.get(event_type)
        if allowed is None:
            continue  # the contract delivers no event of this type
        schema = _schema_of(by_type, event_type, topic.name)
        projected = ProjectedSchema.derive(schema, sub.subscriber, allowed)
        key = f"{schema.record_name}.for.{sub.subscriber}"
        message = _message(projected.schema, steward, topic, projected=True)
        message["headers"] = with_contract(message["headers"], sub)
        message["title"] = f"{message['title']} (for {sub.subscriber})"
        messages[key] = message
        refs[schema.record_name] = _ref("components", "messages", key)
    summary = (
        f"{topic.name} as {sub.subscriber} may receive it: only its allowed fields, "
        "delivered by the contract service"
    )
    channels[name] = _channel(topic, name, refs, summary)
    raw_refs = channels[topic.name]["messages"]
    receive = f"{CONTRACT_SERVICE_PRINCIPAL}.receive.{topic.name}"
    operations.setdefault(receive, _operation(
        "receive", topic.name, raw_refs,
        f"the contract service reads {topic.name} to deliver its subscriptions",
        {"x-spbe-principal": CONTRACT_SERVICE_PRINCIPAL,
         "bindings": _group(CONTRACT_SERVICE_GROUP)},
    ))  # fmt: skip
    operations[f"{CONTRACT_SERVICE_PRINCIPAL}.send.{name}"] = _operation(
        "send", name, refs, f"the contract service delivers {sub.subscriber}'s projection",
        {**_contract_extensions(sub), "x-spbe-principal": CONTRACT_SERVICE_PRINCIPAL},
    )  # fmt: skip


def _schema_of(by_type: Mapping[str, AvroSchema], event_type: str, topic: str) -> AvroSchema:
    schema = by_type.get(event_type)
    if schema is None:
        raise ConfigError(
            f"topic {topic} carries {event_type}, which is not in the data standard",
            fix="check the catalogue against the standard: spbe-bus catalog check",
        )
    return schema


def _subscription_of(catalog: Catalog, subscriber: str, topic: str) -> Subscription:
    return next(
        s for s in catalog.subscriptions if s.subscriber == subscriber and topic in s.topics
    )


def _info(catalog: Catalog) -> dict[str, Any]:
    stewards = ", ".join(f"{s.name} ({s.id})" for s in catalog.stewards)
    return {
        "title": "SPBE data exchange bus",
        "version": str(catalog.version),
        "description": (
            "Change events between OPD applications over Kafka, generated from the catalogue "
            "(deploy/catalog.yaml) and the data standard (schemas/avro) by `spbe-bus catalog "
            "asyncapi`. Each record's value is Avro single-object encoded (C3 01, the 8-byte "
            "little-endian CRC-64-AVRO fingerprint of the writer schema, then Avro binary); "
            f"schemas are registered on the topic {_REGISTRY_TOPIC}. A restricted topic is "
            "read only by the contract service, which delivers each subscription its allowed "
            f"fields on <topic>.for.<subscriber>. Stewards: {stewards}."
        ),
        "tags": [{"name": s.id, "description": s.name} for s in catalog.stewards],
    }


def _servers(servers: Mapping[str, str]) -> dict[str, Any]:
    if not servers:
        raise ConfigError(
            "servers is empty", fix="name at least one broker, e.g. kafka-1=HOST:PORT"
        )
    result: dict[str, Any] = {}
    for name, address in servers.items():
        if not name or not address or any(c.isspace() for c in name + address):
            raise ConfigError(
                f"server {name!r}: a server needs a name and a host:port, without spaces",
                fix="give servers as NAME=HOST:PORT, e.g. kafka-1=kafka-1.spbe.internal:9092",
            )
        result[name] = {
            "host": address,
            "protocol": "kafka-secure",
            "description": "Kafka broker, SASL_SSL listener: TLS, then SCRAM-SHA-512",
            "security": [_ref("components", "securitySchemes", SECURITY_SCHEME)],
            "bindings": {"kafka": {"bindingVersion": _KAFKA_BINDING}},
        }
    return result


def _channel(
    topic: CatalogTopic, address: str, refs: Mapping[str, Any], description: str
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "cleanup.policy": topic.cleanup_policy.split(","),
        "retention.ms": topic.retention_ms,
        "min.insync.replicas": topic.effective_min_insync_replicas,
    }
    channel: dict[str, Any] = {
        "address": address,
        "title": address,
        "messages": dict(refs),
        "bindings": {
            "kafka": {
                "partitions": topic.partitions,
                "replicas": topic.replication_factor,
                "topicConfiguration": config,
                "bindingVersion": _KAFKA_BINDING,
            }
        },
        "tags": [{"name": topic.steward}, {"name": topic.classification.value}],
        "x-spbe-steward": topic.steward,
        "x-spbe-classification": topic.classification.value,
    }
    if description:
        channel["description"] = description
    return channel


def _message(
    schema: AvroSchema, steward: Steward, topic: CatalogTopic, *, projected: bool = False
) -> dict[str, Any]:
    dc = schema.dublincore
    event_type = schema.event_type or schema.name
    key_field = schema.key_field or "the aggregate id"
    key_doc = (
        f"a keyed pseudonym (HMAC-SHA256 with the steward's secret) of {key_field}, never "
        f"the raw value{'; pairwise per subscription' if projected else ''}"
        if schema.key_pseudonymised
        else f"the value of {key_field}"
    )
    message: dict[str, Any] = {
        "name": schema.record_name,
        "title": str(dc.get("title", schema.record_name)),
        "summary": event_type,
        "contentType": "application/avro",
        "headers": envelope_headers(steward, topic, event_type, projected=projected),
        "payload": {"schemaFormat": AVRO_SCHEMA_FORMAT, "schema": dict(schema.raw)},
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": f"the record key: {key_doc}"},
                "schemaIdLocation": "payload",
                # The binding's form: the number of bytes before the Avro body (the marker
                # C3 01 and the 8-byte CRC-64-AVRO fingerprint of the writer schema).
                "schemaIdPayloadEncoding": "10",
                "x-spbe-schema-id": "Avro single-object encoding: C3 01 and the 8-byte "
                "little-endian CRC-64-AVRO fingerprint of the writer schema",
                "bindingVersion": _KAFKA_BINDING,
            }
        },
        "x-spbe-pii-fields": schema.pii_fields(),
    }
    if isinstance(dc.get("description"), str):
        message["description"] = dc["description"]
    return message


def _operation(
    action: str, channel: str, refs: Mapping[str, Any], summary: str, extra: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "action": action,
        "channel": _ref("channels", channel),
        "messages": [_ref("channels", channel, "messages", key) for key in refs],
        "summary": summary,
        **extra,
    }


def _group(group: str) -> dict[str, Any]:
    return {
        "kafka": {
            "groupId": {"type": "string", "enum": [group]},
            "bindingVersion": _KAFKA_BINDING,
        }
    }


def _contract_extensions(sub: Subscription) -> dict[str, Any]:
    return {
        "x-spbe-principal": sub.subscriber,
        "x-spbe-opd": sub.opd,
        "x-spbe-purpose": sub.purpose,
        "x-spbe-legal-basis": sub.legal_basis,
        "x-spbe-expires": sub.expires.isoformat(),
    }


def _ref(*parts: str) -> dict[str, str]:
    """A reference inside the document, each part escaped for a JSON pointer (RFC 6901)."""
    pointer = "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)
    return {"$ref": f"#/{pointer}"}
