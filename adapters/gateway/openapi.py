"""The gateway's OpenAPI 3.1 document, generated from the data standard.

Each event type of ``schemas/avro/`` becomes a component schema of the JSON body an OPD
application posts (:mod:`adapters.gateway.json_schema`), with its example; the paths are
the SPBE API table (docs/api.md). ``docs/api/openapi.json`` is this document, written by
``spbe-bus gateway openapi --output docs/api/openapi.json``; a unit test keeps it current.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from adapters.gateway.json_schema import event_json_schema, optional_fields
from adapters.gateway.openapi_components import (
    DEFAULT_PAGE_LIMIT,
    HEADERS,
    MAX_PAGE_LIMIT,
    PARAMETERS,
    PROBLEM_MEDIA_TYPE,
    RESPONSES,
    SCOPE_PUBLISH,
    SCOPE_READ,
    SECURITY_SCHEMES,
    SHARED_SCHEMAS,
    STRING,
    query,
    ref,
    ref_string,
    responses,
)
from bus.contract.refcodes import RefCode
from bus.contract.schema import AvroSchema
from bus.errors import ConfigError

__all__ = [
    "API_VERSION",
    "DEFAULT_PAGE_LIMIT",
    "DEFAULT_SERVER_URL",
    "MAX_PAGE_LIMIT",
    "PROBLEM_MEDIA_TYPE",
    "SCOPE_PUBLISH",
    "SCOPE_READ",
    "openapi_document",
    "openapi_json",
]

API_VERSION: Final = "1.0.0"
DEFAULT_SERVER_URL: Final = "https://127.0.0.1:8443"

_UMKM: Final = "UmkmTerdaftar"
_PENDUDUK: Final = "PendudukUpdated"
_PAJAK: Final = "PajakDaerahDibayar"
_KEMATIAN: Final = "KematianDicatat"
_DESCRIPTION: Final = """\
JSON over HTTPS for OPD applications that do not speak Kafka. A steward's application
posts the events of the data standard (*Standar Data*); a subscriber reads the fields its
data-sharing contract allows. Authenticate with OAuth 2.0 client credentials at
`/oauth/token` for a short-lived bearer token. Errors are RFC 9457 problem documents
(`application/problem+json`); an invalid event lists every broken rule in `errors`.
Guide and client examples (PHP, Java): docs/api.md.
"""


def openapi_document(
    standard: Mapping[str, AvroSchema],
    examples: Mapping[str, Mapping[str, Any]],
    *,
    server_url: str = DEFAULT_SERVER_URL,
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the gateway for ``standard`` (EventName -> schema).

    ``examples`` holds the example body of event types (``schemas/avro/examples``);
    raises :class:`~bus.errors.ConfigError` when an example names no event of the standard
    or an event the API table needs is missing.
    """
    unknown = sorted(set(examples) - set(standard))
    if unknown:
        raise ConfigError(
            f"examples for event types the standard does not have: {', '.join(unknown)}",
            fix="remove those examples or add their .avsc to the standard",
        )
    missing = sorted({_UMKM, _PENDUDUK, _PAJAK} - set(standard))
    if missing:
        raise ConfigError(
            f"the SPBE API table needs {', '.join(missing)}, which the standard lacks",
            fix="generate the document from the full data standard (schemas/avro)",
        )
    names = sorted(standard)
    schemas: dict[str, Any] = {}
    for name in names:
        schemas[name] = _event_component(standard[name], examples.get(name))
    schemas.update(_view("PendudukData", schemas[_PENDUDUK], "penduduk"))
    kematian = optional_fields(
        {k: v for k, v in schemas[_KEMATIAN].items() if not k.startswith("x-")}
    )
    kematian.pop("examples", None)
    kematian["description"] = (
        "The resident's death record (KematianDicatat), when the subscription receives it: "
        "only its allowed fields."
    )
    schemas["PendudukData"]["properties"]["kematian"] = kematian
    schemas.update(_view("PajakData", schemas[_PAJAK], "pajak"))
    schemas.update(SHARED_SCHEMAS)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "SPBE bus REST gateway",
            "version": API_VERSION,
            "summary": "The SPBE API table: data penduduk, UMKM and pajak daerah as JSON.",
            "description": _DESCRIPTION,
        },
        "servers": [{"url": server_url}],
        "tags": [
            {"name": "oauth", "description": "Access tokens (OAuth 2.0 client credentials)."},
            {"name": "events", "description": "Posting events of the data standard."},
            {"name": "data", "description": "Reading the data a subscription allows."},
            {"name": "operations", "description": "Health of the gateway."},
        ],
        "paths": _paths(names, examples),
        "components": {
            "schemas": schemas,
            "responses": RESPONSES,
            "parameters": PARAMETERS,
            "headers": HEADERS,
            "securitySchemes": SECURITY_SCHEMES,
        },
    }


def openapi_json(document: Mapping[str, Any]) -> str:
    """The document as the text of ``docs/api/openapi.json`` (indented, key order kept)."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


# --- schemas ------------------------------------------------------------------------------


def _event_component(schema: AvroSchema, example: Mapping[str, Any] | None) -> dict[str, Any]:
    component = event_json_schema(schema)
    component["description"] = (
        f"{component.get('description', '')}\n\nPosted as `{schema.event_type}` on "
        f"`{schema.topic}` by the steward {schema.steward}."
    ).strip()
    component["x-spbe-type"] = schema.event_type
    component["x-spbe-steward"] = schema.steward
    component["x-spbe-topic"] = schema.topic
    if schema.classification is not None:
        component["x-spbe-classification"] = schema.classification.value
    if example is not None:
        component["examples"] = [dict(example)]
    return component


def _view(name: str, event: Mapping[str, Any], what: str) -> dict[str, Any]:
    view = optional_fields({k: v for k, v in event.items() if not k.startswith("x-")})
    view.pop("examples", None)
    view["title"] = name
    view["description"] = (
        f"The {what} data of one subject as the latest {event['title']} left it, limited "
        "to the fields the caller's subscription allows: every property is optional, and "
        "a caller only gets the fields of its data-sharing contract."
    )
    return {name: view}


# --- paths ----------------------------------------------------------------------------------


def _json(schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"application/json": {"schema": schema, **extra}}


def _accepted(example_type: str) -> dict[str, Any]:
    example = {"id": "0193a8f2-5c1e-7b3a-9d4e-2f6a8b0c1d2e", "type": example_type,
               "topic": "spbe.dinkopukm.umkm.v1", "partition": 0, "offset": 42}  # fmt: skip
    return {"description": "Published and acknowledged by Kafka.",
            "content": _json(ref("Accepted"), example=example)}  # fmt: skip


def _cached(description: str, schema: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {name: {"$ref": f"#/components/headers/{name}"}
                    for name in ("ETag", "Last-Modified")},
        "content": _json(ref(schema)),
    }  # fmt: skip


_POST_ERRORS: Final = ("400", "401", "403", "413", "415", "422", "429", "503")
_GET_ERRORS: Final = ("304", "400", "401", "403", "429", "503")
_PARAM: Final = "#/components/parameters/"


def _paths(names: list[str], examples: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    publish = [{"oauth2": [SCOPE_PUBLISH]}]
    read = [{"oauth2": [SCOPE_READ]}]
    idempotency = {"$ref": _PARAM + "IdempotencyKey"}
    body_examples = {
        name: {"summary": f"a {name} event", "value": dict(examples[name])}
        for name in names
        if name in examples
    }
    umkm_body: dict[str, Any] = {"schema": ref(_UMKM)}
    if _UMKM in examples:
        umkm_body["example"] = dict(examples[_UMKM])
    page = [{"$ref": _PARAM + "Limit"}, {"$ref": _PARAM + "Cursor"}]
    return {
        "/oauth/token": {"post": {
            "tags": ["oauth"], "operationId": "issueToken",
            "summary": "Get an access token (client credentials)",
            "description": "Client id and secret by HTTP Basic or in the form. The answer "
            "is not to be cached (Cache-Control: no-store).",
            "security": [{"clientBasic": []}, {}],
            "requestBody": {"required": True, "content": {
                "application/x-www-form-urlencoded": {"schema": ref("TokenRequest")}}},
            "responses": {
                "200": {"description": "A bearer token.", "content": _json(ref("TokenResponse"))},
                "400": {"description": "Malformed request or unsupported grant type.",
                        "content": _json(ref("OAuthError"))},
                "401": {"description": "Unknown client or wrong secret (invalid_client).",
                        "headers": {"WWW-Authenticate": {
                            "$ref": "#/components/headers/WWW-Authenticate"}},
                        "content": _json(ref("OAuthError"))},
                "429": {"$ref": "#/components/responses/TooManyRequests"},
            },
        }},
        "/api/v1/umkm": {"post": {
            "tags": ["events"], "operationId": "postUmkm",
            "summary": "Data UMKM: register an UMKM (an UmkmTerdaftar event)",
            "description": "The same as POST /api/v1/events/UmkmTerdaftar.",
            "security": publish, "parameters": [idempotency],
            "requestBody": {"required": True, "content": {"application/json": umkm_body}},
            "responses": responses(
                *_POST_ERRORS, s202=_accepted("id.go.spbe.dinkopukm.UmkmTerdaftar.v1")),
        }},
        "/api/v1/events/{EventName}": {"post": {
            "tags": ["events"], "operationId": "postEvent",
            "summary": "Post an event of the data standard",
            "description": "The client must be an application of the event's steward.",
            "security": publish,
            "parameters": [
                {"name": "EventName", "in": "path", "required": True,
                 "description": "The event type, as in schemas/avro.",
                 "schema": {"type": "string", "enum": names}},
                idempotency,
            ],
            "requestBody": {"required": True, "content": _json(
                {"oneOf": [ref(name) for name in names]}, examples=body_examples)},
            "responses": responses(
                *_POST_ERRORS, "404", s202=_accepted("id.go.spbe.dinkopukm.UmkmTerdaftar.v1")),
        }},
        "/api/v1/penduduk/{nik}": {"get": {
            "tags": ["data"], "operationId": "getPenduduk",
            "summary": "Data Penduduk: one resident by NIK",
            "security": read,
            "parameters": [
                {"name": "nik", "in": "path", "required": True, "description": "16-digit NIK.",
                 "schema": ref_string(RefCode.NIK), "x-spbe-pii": True},
                {"$ref": _PARAM + "IfNoneMatch"},
            ],
            "responses": responses(
                *_GET_ERRORS, "404", s200=_cached("The resident.", "PendudukResponse")),
        }},
        "/api/v1/penduduk": {"get": {
            "tags": ["data"], "operationId": "listPenduduk",
            "summary": "Data Penduduk: residents of a region, by NIK order",
            "security": read,
            "parameters": [
                query("kode_wilayah", "Kemendagri region code at any level; its residents "
                       "and those of every region inside it.",
                       ref_string(RefCode.KODE_WILAYAH_KEMENDAGRI), required=True),
                *page, {"$ref": _PARAM + "IfNoneMatch"},
            ],
            "responses": responses(*_GET_ERRORS, s200=_cached("A page.", "PendudukPage")),
        }},
        "/api/v1/pajak": {"get": {
            "tags": ["data"], "operationId": "listPajak",
            "summary": "Data Pajak: payments by NTPD or by NOP (exactly one of them)",
            "security": read,
            "parameters": [
                query("ntpd", "Nomor Transaksi Penerimaan Daerah.", STRING),
                query("nop", "18-digit NOP PBB.", ref_string(RefCode.NOP)),
                *page, {"$ref": _PARAM + "IfNoneMatch"},
            ],
            "responses": responses(*_GET_ERRORS, s200=_cached("A page.", "PajakPage")),
        }},
        "/healthz": {"get": {
            "tags": ["operations"], "operationId": "health", "summary": "Liveness",
            "security": [],
            "responses": {"200": {"description": "The gateway runs.",
                                  "content": _json(ref("Health"))},
                          "503": {"description": "The gateway cannot serve now.",
                                  "content": _json(ref("Health"))}},
        }},
    }  # fmt: skip
