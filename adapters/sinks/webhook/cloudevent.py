"""The request body a receiver gets: one CloudEvents 1.0 event in *structured* JSON mode (pure).

On the bus an event travels in binary mode (Avro value, ``ce_*`` headers); over HTTP it
becomes one self-describing JSON document, so a PHP or Java receiver needs neither Avro
nor Kafka::

    {"specversion":"1.0","id":"0196...","source":"ID/PEMDA-3273/DPMPTSP/sicantik",
     "type":"id.go.spbe.dpmptsp.IzinDiterbitkan.v1","time":"2026-11-27T03:15:00.000000Z",
     "subject":...,"datacontenttype":"application/json","dataschema":"urn:spbe:schema:...",
     "steward":"DPMPTSP","sequence":3,"partitionkey":"503/0421/...",
     "dataclassification":"internal","traceparent":...,"data":{...}}

Optional attributes (``subject``, ``dataschema``, ``sequence``, ``traceparent``) are left
out when the event has none, as CloudEvents asks, rather than sent as ``null``; so is
``snapshot``, which is ``true`` only for an event of a day-one snapshot. ``data``
is the event's plain-JSON form, the shape of ``schemas/avro/examples/<EventName>.json``.
An event delivered under a subscription contract (on a projected topic) adds its contract
extensions ``subscription``, ``purpose`` and ``legalbasis``
(:mod:`bus.contract.contract_headers`), so the receiver knows under which agreement it
received the data.
The body is compact UTF-8 JSON; receivers verify the signature over these exact bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from bus.contract.contract_headers import DeliveryContract
from bus.contract.envelope import SPECVERSION, Envelope

__all__ = ["CONTENT_TYPE", "DATA_CONTENT_TYPE", "encode_body", "structured_event"]

#: ``Content-Type`` of every webhook request (CloudEvents JSON format, structured mode).
CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
#: ``datacontenttype`` of the event inside: its ``data`` member is plain JSON.
DATA_CONTENT_TYPE = "application/json"


def structured_event(
    envelope: Envelope, data: Mapping[str, Any], contract: DeliveryContract | None = None
) -> dict[str, Any]:
    """The CloudEvents attributes of ``envelope`` (and ``contract``) with ``data``, as JSON."""
    document: dict[str, Any] = {
        "specversion": SPECVERSION,
        "id": envelope.id,
        "source": envelope.source,
        "type": envelope.type,
        "time": envelope.time.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }
    if envelope.subject is not None:
        document["subject"] = envelope.subject
    document["datacontenttype"] = DATA_CONTENT_TYPE
    if envelope.dataschema is not None:
        document["dataschema"] = envelope.dataschema
    document["steward"] = envelope.steward
    if envelope.sequence is not None:
        document["sequence"] = envelope.sequence
    document["partitionkey"] = envelope.partitionkey
    document["dataclassification"] = envelope.dataclassification.value
    if envelope.traceparent is not None:
        document["traceparent"] = envelope.traceparent
    if envelope.snapshot:
        document["snapshot"] = True
    if contract is not None:
        document["subscription"] = contract.subscription
        document["purpose"] = contract.purpose
        document["legalbasis"] = contract.legalbasis
    document["data"] = dict(data)
    return document


def encode_body(
    envelope: Envelope, data: Mapping[str, Any], contract: DeliveryContract | None = None
) -> bytes:
    """The exact request body: :func:`structured_event` as compact UTF-8 JSON."""
    return json.dumps(
        structured_event(envelope, data, contract),
        ensure_ascii=False,
        separators=(",", ":"),
        allow_nan=False,
    ).encode("utf-8")
