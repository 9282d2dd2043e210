"""Parts of the gateway's OpenAPI document that do not depend on the data standard.

Problem documents (RFC 9457), token request and answer (RFC 6749), the publish receipt,
pages, headers, parameters, reusable responses and the security schemes; the paths and the
event schemas are put together in :mod:`adapters.gateway.openapi`.
"""

from __future__ import annotations

from typing import Any, Final

from adapters.gateway.json_schema import REF_PATTERNS
from adapters.gateway.readmodels_queries import DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT
from bus.contract.refcodes import RefCode

__all__ = [
    "DEFAULT_PAGE_LIMIT",
    "HEADERS",
    "MAX_PAGE_LIMIT",
    "PARAMETERS",
    "PROBLEM_MEDIA_TYPE",
    "RESPONSES",
    "SCHEMAS",
    "SCOPE_PUBLISH",
    "SCOPE_READ",
    "SECURITY_SCHEMES",
    "SHARED_SCHEMAS",
    "STRING",
    "object_schema",
    "problem_response",
    "query",
    "ref",
    "ref_string",
    "responses",
]

PROBLEM_MEDIA_TYPE: Final = "application/problem+json"
SCOPE_PUBLISH: Final = "events:publish"
SCOPE_READ: Final = "data:read"
SCHEMAS: Final = "#/components/schemas/"


def ref(name: str) -> dict[str, str]:
    return {"$ref": SCHEMAS + name}


def object_schema(required: list[str], properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties, **extra}


STRING = {"type": "string"}
SHARED_SCHEMAS: Final[dict[str, Any]] = {
    "Problem": object_schema(
        ["type", "title", "status", "detail"],
        {
            "type": {"type": "string", "format": "uri-reference", "examples": [
                "urn:spbe:problem:invalid-event"]},
            "title": STRING,
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string", "description": "Never repeats a submitted value."},
            "instance": {"type": "string", "format": "uri-reference"},
            "errors": {"type": "array", "items": ref("FieldError")},
        },
        description="RFC 9457 problem document.",
    ),
    "FieldError": object_schema(
        ["field", "problem", "rule"],
        {
            "field": {"type": "string", "examples": ["alamat.kode_wilayah"],
                      "description": "Dotted path of the field, `(event)` for the body."},
            "problem": {"type": "string", "examples": ["NIK has 15 digits; it needs 16"]},
            "rule": {"type": "string", "description": "The rule the value must follow."},
        },
        additionalProperties=False,
    ),
    "TokenRequest": object_schema(
        ["grant_type"],
        {
            "grant_type": {"type": "string", "enum": ["client_credentials"]},
            "scope": {"type": "string", "description": "Space-separated scopes; default all "
                      "the client may have.", "examples": [f"{SCOPE_PUBLISH} {SCOPE_READ}"]},
            "client_id": {"type": "string", "description": "When not sent by HTTP Basic."},
            "client_secret": {"type": "string", "format": "password",
                              "description": "When not sent by HTTP Basic."},
        },
    ),
    "TokenResponse": object_schema(
        ["access_token", "token_type", "expires_in", "scope"],
        {
            "access_token": {"type": "string", "description": "JWT; send as `Bearer`."},
            "token_type": {"type": "string", "enum": ["Bearer"]},
            "expires_in": {"type": "integer", "minimum": 1, "description": "Seconds."},
            "scope": {"type": "string", "examples": [SCOPE_PUBLISH]},
        },
    ),
    "OAuthError": object_schema(
        ["error"],
        {
            "error": {"type": "string", "enum": [
                "invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
                "unsupported_grant_type", "invalid_scope"]},
            "error_description": STRING,
        },
        description="RFC 6749 section 5.2 error response.",
    ),
    "Accepted": object_schema(
        ["id", "type", "topic", "partition", "offset"],
        {
            "id": {"type": "string", "description": "ce_id of the event (UUIDv7)."},
            "type": {"type": "string", "examples": ["id.go.spbe.dinkopukm.UmkmTerdaftar.v1"]},
            "topic": {"type": "string", "examples": ["spbe.dinkopukm.umkm.v1"]},
            "partition": {"type": "integer", "minimum": 0},
            "offset": {"type": "integer", "minimum": 0},
        },
        description="Kafka acknowledged the event (acks=all): it will reach its subscribers.",
    ),
    "PendudukResponse": object_schema(["data"], {"data": ref("PendudukData")}),
    "PendudukPage": object_schema(
        ["data", "next_cursor"],
        {"data": {"type": "array", "items": ref("PendudukData")},
         "next_cursor": {"type": ["string", "null"],
                         "description": "Pass as `cursor` for the next page; null at the end."}},
    ),
    "PajakPage": object_schema(
        ["data", "next_cursor"],
        {"data": {"type": "array", "items": ref("PajakData")},
         "next_cursor": {"type": ["string", "null"],
                         "description": "Pass as `cursor` for the next page; null at the end."}},
    ),
    "Health": object_schema(["status"], {"status": {"type": "string", "examples": ["ok"]}}),
}  # fmt: skip

# --- headers, parameters, responses ---------------------------------------------------------

HEADERS: Final[dict[str, Any]] = {
    "ETag": {"description": "Version of the representation; send back as If-None-Match.",
             "schema": STRING},
    "Last-Modified": {"description": "When the data last changed (HTTP date).",
                      "schema": STRING},
    "Retry-After": {"description": "Seconds to wait before trying again.",
                    "schema": {"type": "integer", "minimum": 0}},
    "WWW-Authenticate": {"description": 'e.g. `Bearer error="invalid_token"`.',
                         "schema": STRING},
}  # fmt: skip


def query(name: str, description: str, schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": schema, **extra}


def ref_string(code: RefCode) -> dict[str, Any]:
    return {"type": "string", "pattern": REF_PATTERNS[code]}


PARAMETERS: Final[dict[str, Any]] = {
    "IdempotencyKey": {
        "name": "Idempotency-Key", "in": "header", "required": False,
        "description": "1-255 printable ASCII characters, new per event. A retry with the "
        "same key and body gets the first answer again instead of a second event; the same "
        "key with another body is refused (422).",
        "schema": {"type": "string", "pattern": "^[ -~]{1,255}$"},
    },
    "IfNoneMatch": {"name": "If-None-Match", "in": "header", "required": False,
                    "description": "An ETag from an earlier answer: 304 if unchanged.",
                    "schema": STRING},
    "Limit": query("limit", "Items per page.", {"type": "integer", "minimum": 1,
                    "maximum": MAX_PAGE_LIMIT, "default": DEFAULT_PAGE_LIMIT}),
    "Cursor": query("cursor", "`next_cursor` of the previous page (opaque).", STRING),
}  # fmt: skip


def problem_response(description: str, *headers: str) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": ref("Problem")}},
    }
    if headers:
        response["headers"] = {name: {"$ref": f"#/components/headers/{name}"} for name in headers}
    return response


RESPONSES: Final[dict[str, Any]] = {
    "NotModified": {"description": "Unchanged since the ETag sent in If-None-Match.",
                    "headers": {"ETag": {"$ref": "#/components/headers/ETag"}}},
    "BadRequest": problem_response("Malformed JSON, not an object, or a bad parameter."),
    "Unauthorized": problem_response("No bearer token, or it expired or is invalid.",
                                      "WWW-Authenticate"),
    "Forbidden": problem_response("The client may not do this: no (active) subscription, "
                                   "not the steward, or the scope is missing."),
    "NotFound": problem_response("No such event type or subject."),
    "PayloadTooLarge": problem_response("The body is over the gateway's limit."),
    "UnsupportedMediaType": problem_response("The body is not application/json."),
    "UnprocessableContent": problem_response(
        "The event breaks the data standard: `errors` names each field, problem and rule; "
        "or an Idempotency-Key was reused with another body."),
    "TooManyRequests": problem_response("Over the client's rate limit.", "Retry-After"),
    "ServiceUnavailable": problem_response(
        "Kafka did not acknowledge; nothing was accepted. Retry (same Idempotency-Key).",
        "Retry-After"),
}  # fmt: skip

SECURITY_SCHEMES: Final[dict[str, Any]] = {
    "oauth2": {
        "type": "oauth2",
        "description": "OAuth 2.0 client credentials; the client id is the application's "
        "identity in the catalogue (its Kafka principal).",
        "flows": {"clientCredentials": {"tokenUrl": "/oauth/token", "scopes": {
            SCOPE_PUBLISH: "post the events of the client's steward",
            SCOPE_READ: "read the data of the client's subscriptions"}}},
    },
    "clientBasic": {"type": "http", "scheme": "basic",
                    "description": "Client id and secret at /oauth/token (RFC 6749 2.3.1)."},
}  # fmt: skip


def responses(*names: str, **inline: Any) -> dict[str, Any]:
    codes = {"304": "NotModified", "400": "BadRequest", "401": "Unauthorized",
             "403": "Forbidden", "404": "NotFound", "413": "PayloadTooLarge",
             "415": "UnsupportedMediaType", "422": "UnprocessableContent",
             "429": "TooManyRequests", "503": "ServiceUnavailable"}  # fmt: skip
    found: dict[str, Any] = {code.removeprefix("s"): body for code, body in inline.items()}
    for code in names:
        found[code] = {"$ref": f"#/components/responses/{codes[code]}"}
    return dict(sorted(found.items()))
