"""The gateway's HTTP face: a Starlette application over ingress, egress and the token issuer.

Every API request goes through :meth:`GatewayApp._serve`: bearer token (401, 403 for a
missing scope), the client's rate limit (429 with ``Retry-After``), the handler, then one
metric, one log line and one audit record. Log lines, metric labels and audit records name
the route template (``/api/v1/penduduk/{nik}``), never the path or the query: both may
carry a NIK. Bodies are read up to ``max_body_bytes`` (413 past it, before any parsing).

The token endpoint (``POST /oauth/token``) is OAuth 2.0 client credentials (RFC 6749
§4.4): the client authenticates with HTTP Basic or ``client_id``/``client_secret`` in the
form body, and gets a short-lived JWT (:mod:`adapters.gateway.tokens`). Its errors follow
RFC 6749 §5.2; the API's follow RFC 9457 (:mod:`adapters.gateway.problems`) and RFC 6750
for ``WWW-Authenticate``.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final
from urllib.parse import parse_qsl, unquote_plus

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.db import run_sync
from adapters.gateway.audit import ApiAudit, ApiCall
from adapters.gateway.config import GatewayConfig
from adapters.gateway.egress import Answer, Egress
from adapters.gateway.errors import TokenRejected
from adapters.gateway.ingress import Ingress
from adapters.gateway.metrics import ANONYMOUS, PERSONS, observe_request
from adapters.gateway.problems import problem, problem_response
from adapters.gateway.ratelimit import RateLimiter, retry_after_header
from adapters.gateway.secrets import hash_client_secret, verify_client_secret
from adapters.gateway.tokens import TokenClaims, TokenIssuer
from bus.logs import get_logger
from bus.ops.api_clients import ClientAccess

__all__ = ["SCOPE_PUBLISH", "SCOPE_READ", "GatewayApp"]

log = get_logger("adapters.gateway")

SCOPE_PUBLISH: Final = "events:publish"
SCOPE_READ: Final = "data:read"
_REALM: Final = 'realm="spbe-bus"'
_JSON_TYPES: Final = ("application/json", "application/cloudevents+json")
#: Checked against when the client id is unknown, so a wrong id costs what a wrong secret does.
_NOBODY: Final = hash_client_secret("no client has this secret")

Handler = Callable[[Request, ClientAccess], Awaitable[tuple[Response, ApiCall]]]


class _TooLarge(Exception):
    pass


def _json(
    status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> Response:
    return JSONResponse(dict(body), status_code=status, headers=dict(headers or {}))


def _oauth_error(
    status: int, error: str, description: str, headers: Mapping[str, str] | None = None
) -> Response:
    """An RFC 6749 §5.2 error answer of the token endpoint."""
    body = {"error": error, "error_description": description}
    return _json(status, body, {"Cache-Control": "no-store", **(headers or {})})


def _scopes_of(access: ClientAccess) -> set[str]:
    scopes = set()
    if access.postable:
        scopes.add(SCOPE_PUBLISH)
    if access.subscriptions:
        scopes.add(SCOPE_READ)
    return scopes


class GatewayApp:
    """The routes of the gateway, bound to its running parts."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        ingress: Ingress,
        egress: Egress,
        audit: ApiAudit,
        issuer: TokenIssuer,
        openapi: Mapping[str, Any],
        health: Callable[[], Mapping[str, Any]],
    ) -> None:
        self.config = config
        self._ingress = ingress
        self._egress = egress
        self._audit = audit
        self._issuer = issuer
        self._openapi = dict(openapi)
        self._health = health
        self._hashes = {c.id: c.secret_hash for c in config.clients}
        limit = config.rate_limit
        self._limiter = RateLimiter(limit.requests_per_s, limit.burst)
        self._token_limiter = RateLimiter(limit.requests_per_s, limit.burst)

    def asgi(self) -> Starlette:
        """The ASGI application uvicorn serves."""
        return Starlette(
            routes=[
                Route("/oauth/token", self.token, methods=["POST"]),
                Route("/api/v1/umkm", self.post_umkm, methods=["POST"]),
                Route("/api/v1/events/{event_name}", self.post_event, methods=["POST"]),
                Route("/api/v1/penduduk/{nik}", self.get_person, methods=["GET"]),
                Route("/api/v1/penduduk", self.get_people, methods=["GET"]),
                Route("/api/v1/pajak", self.get_payments, methods=["GET"]),
                Route("/healthz", self.healthz, methods=["GET"]),
                Route("/metrics", self.metrics, methods=["GET"]),
                Route("/openapi.json", self.openapi, methods=["GET"]),
            ]
        )

    # -- plumbing ----------------------------------------------------------------------------

    async def _body(self, request: Request) -> bytes:
        limit = self.config.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise _TooLarge
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _TooLarge
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self) -> Response:
        detail = f"the request body is larger than {self.config.max_body_bytes} bytes"
        return problem_response(problem(413, "body-too-large", "Request body too large", detail))

    def _authenticate(self, request: Request, scope: str) -> TokenClaims | Response:
        header = request.headers.get("authorization", "")
        kind, _, token = header.partition(" ")
        if kind.lower() != "bearer" or not token.strip():
            doc = problem(
                401,
                "missing-token",
                "Bearer token required",
                "send Authorization: Bearer <access_token> from POST /oauth/token",
            )
            return problem_response(doc, {"WWW-Authenticate": f"Bearer {_REALM}"})
        try:
            claims = self._issuer.verify(token.strip())
        except TokenRejected as rejected:
            return self._invalid_token(rejected.message)
        if claims.client not in self._hashes:
            return self._invalid_token("the token's client is not a client of this gateway")
        if scope not in claims.scope.split():
            doc = problem(
                403,
                "insufficient-scope",
                "Token lacks the scope",
                f"this endpoint needs the scope {scope}",
            )
            challenge = f'Bearer {_REALM}, error="insufficient_scope", scope="{scope}"'
            return problem_response(doc, {"WWW-Authenticate": challenge})
        return claims

    def _invalid_token(self, description: str) -> Response:
        doc = problem(401, "invalid-token", "Invalid bearer token", description)
        challenge = f'Bearer {_REALM}, error="invalid_token", error_description="{description}"'
        return problem_response(doc, {"WWW-Authenticate": challenge})

    async def _serve(
        self, request: Request, endpoint: str, scope: str, handler: Handler
    ) -> Response:
        started = time.perf_counter()
        client = ANONYMOUS
        call: ApiCall | None = None
        try:
            claims = self._authenticate(request, scope)
            if isinstance(claims, Response):
                response = claims
            else:
                client = claims.client
                access = self.config.access_of(client)
                assert access is not None  # _authenticate checked the client
                wait = self._limiter.take(client)
                if wait > 0:
                    response = self._rate_limited(wait)
                else:
                    response, call = await handler(request, access)
        except Exception as exc:  # the answer must still go out, without the details
            log.error("gateway.failed", endpoint=endpoint, error_class=type(exc).__name__)
            response = problem_response(
                problem(500, "internal-error", "Internal error", "the gateway failed; retry later")
            )
        status = response.status_code
        call = call or ApiCall(
            client=client,
            method=request.method,
            endpoint=endpoint,
            status=status,
            outcome=_outcome_of(response),
        )
        self._audit.record(call)
        if call.persons and call.subscription:
            PERSONS.labels(client, call.subscription).inc(call.persons)
        seconds = time.perf_counter() - started
        observe_request(endpoint, client, status, seconds)
        log.info(
            "gateway.request",
            method=request.method,
            endpoint=endpoint,
            client=client,
            status=status,
            persons=call.persons,
            ms=round(seconds * 1000, 2),
        )
        return response

    def _rate_limited(self, wait: float) -> Response:
        retry = retry_after_header(wait)
        doc = problem(
            429,
            "rate-limited",
            "Too many requests",
            f"this client's rate limit is {self.config.rate_limit.requests_per_s:g} requests "
            f"per second (burst {self.config.rate_limit.burst}); retry after {retry} s",
        )
        return problem_response(doc, {"Retry-After": retry})

    # -- token endpoint ----------------------------------------------------------------------

    async def token(self, request: Request) -> Response:
        """``POST /oauth/token``: client credentials for a bearer token."""
        started = time.perf_counter()
        response, client = await self._token(request)
        seconds = time.perf_counter() - started
        observe_request("/oauth/token", client, response.status_code, seconds)
        self._audit.record(
            ApiCall(
                client=client,
                method="POST",
                endpoint="/oauth/token",
                status=response.status_code,
                outcome=_outcome_of(response),
            )
        )
        log.info(
            "gateway.token",
            client=client,
            status=response.status_code,
            ms=round(seconds * 1000, 2),
        )
        return response

    async def _token(self, request: Request) -> tuple[Response, str]:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/x-www-form-urlencoded":
            return _oauth_error(
                400, "invalid_request", "send the form as application/x-www-form-urlencoded"
            ), ANONYMOUS
        try:
            text = (await self._body(request)).decode("ascii")
            form = dict(parse_qsl(text, strict_parsing=False))
        except _TooLarge:
            return _oauth_error(400, "invalid_request", "the request body is too large"), ANONYMOUS
        except UnicodeDecodeError:
            return _oauth_error(400, "invalid_request", "the form is not ASCII"), ANONYMOUS
        credentials = _client_credentials(request.headers.get("authorization"), form)
        if isinstance(credentials, Response):
            return credentials, ANONYMOUS
        client_id, secret, basic = credentials
        if form.get("grant_type") != "client_credentials":
            if "grant_type" not in form:
                return _oauth_error(400, "invalid_request", "grant_type is missing"), ANONYMOUS
            return _oauth_error(
                400, "unsupported_grant_type", "only client_credentials is supported"
            ), ANONYMOUS
        if self._token_limiter.take(client_id) > 0:
            wait = retry_after_header(self._token_limiter.take(client_id))
            return _oauth_error(
                429, "slow_down", "too many token requests", {"Retry-After": wait}
            ), ANONYMOUS
        hashed = self._hashes.get(client_id)
        valid = await run_sync(verify_client_secret, secret, hashed or _NOBODY)
        access = self.config.access_of(client_id) if hashed is not None else None
        if not valid or access is None:
            challenge = {"WWW-Authenticate": f"Basic {_REALM}"} if basic else {}
            return _oauth_error(
                401, "invalid_client", "unknown client or wrong secret", challenge
            ), ANONYMOUS
        allowed = _scopes_of(access)
        requested = set(form.get("scope", "").split()) or allowed
        if not requested <= allowed:
            return _oauth_error(
                400,
                "invalid_scope",
                f"this client may have only: {' '.join(sorted(allowed)) or 'no scope'}",
            ), client_id
        issued = self._issuer.issue(client_id, " ".join(sorted(requested)))
        body = {
            "access_token": issued.access_token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "scope": issued.scope,
        }
        return _json(200, body, {"Cache-Control": "no-store", "Pragma": "no-cache"}), client_id

    # -- ingress -----------------------------------------------------------------------------

    async def post_umkm(self, request: Request) -> Response:
        """``POST /api/v1/umkm``: an UmkmTerdaftar."""
        return await self._serve(
            request,
            "/api/v1/umkm",
            SCOPE_PUBLISH,
            lambda r, a: self._post(r, a, "UmkmTerdaftar", "/api/v1/umkm"),
        )

    async def post_event(self, request: Request) -> Response:
        """``POST /api/v1/events/{EventName}``."""
        name = str(request.path_params["event_name"])
        endpoint = "/api/v1/events/{EventName}"
        return await self._serve(
            request, endpoint, SCOPE_PUBLISH, lambda r, a: self._post(r, a, name, endpoint)
        )

    async def _post(
        self, request: Request, access: ClientAccess, event_name: str, endpoint: str
    ) -> tuple[Response, ApiCall]:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        response: Response
        if media not in _JSON_TYPES:
            doc = problem(
                415,
                "unsupported-media-type",
                "Unsupported media type",
                "send the event as Content-Type: application/json",
            )
            response = problem_response(doc)
        else:
            try:
                body = await self._body(request)
            except _TooLarge:
                response = self._too_large()
            else:
                result = await self._ingress.post(
                    access, event_name, body, request.headers.get("idempotency-key")
                )
                headers = dict(result.headers)
                if result.replayed:
                    headers["Idempotent-Replayed"] = "true"
                if result.status >= 400:
                    response = problem_response(result.body, headers)
                else:
                    response = _json(result.status, result.body, headers)
        call = ApiCall(
            client=access.client,
            method="POST",
            endpoint=endpoint,
            status=response.status_code,
            outcome=_outcome_of(response),
            topics=(),
            details={"event": event_name if event_name.isidentifier() else "?"},
        )
        return response, call

    # -- egress ------------------------------------------------------------------------------

    async def get_person(self, request: Request) -> Response:
        """``GET /api/v1/penduduk/{nik}``."""
        nik = str(request.path_params["nik"])
        return await self._serve(
            request,
            "/api/v1/penduduk/{nik}",
            SCOPE_READ,
            lambda r, a: self._answer(
                r,
                a,
                "/api/v1/penduduk/{nik}",
                self._egress.person(a, nik, r.headers.get("if-none-match")),
            ),
        )

    async def get_people(self, request: Request) -> Response:
        """``GET /api/v1/penduduk?kode_wilayah=...``."""
        q = request.query_params
        return await self._serve(
            request,
            "/api/v1/penduduk",
            SCOPE_READ,
            lambda r, a: self._answer(
                r,
                a,
                "/api/v1/penduduk",
                self._egress.people(a, q.get("kode_wilayah"), q.get("limit"), q.get("cursor")),
            ),
        )

    async def get_payments(self, request: Request) -> Response:
        """``GET /api/v1/pajak?ntpd=...`` or ``?nop=...``."""
        q = request.query_params
        return await self._serve(
            request,
            "/api/v1/pajak",
            SCOPE_READ,
            lambda r, a: self._answer(
                r,
                a,
                "/api/v1/pajak",
                self._egress.payments(
                    a, q.get("ntpd"), q.get("nop"), q.get("limit"), q.get("cursor")
                ),
            ),
        )

    async def _answer(
        self, request: Request, access: ClientAccess, endpoint: str, pending: Awaitable[Answer]
    ) -> tuple[Response, ApiCall]:
        answer = await pending
        if answer.status == 304:
            response: Response = Response(status_code=304, headers=dict(answer.headers))
        elif answer.status >= 400:
            assert answer.body is not None
            response = problem_response(answer.body, answer.headers)
        else:
            assert answer.body is not None
            response = _json(answer.status, answer.body, answer.headers)
        sub = answer.subscription
        call = ApiCall(
            client=access.client,
            method="GET",
            endpoint=endpoint,
            status=answer.status,
            outcome=answer.outcome,
            persons=answer.persons,
            subscription=sub.subscriber if sub else None,
            purpose=sub.purpose if sub else None,
            legal_basis=sub.legal_basis if sub else None,
            topics=sub.topics if sub else (),
        )
        return response, call

    # -- operations --------------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        """``GET /healthz``: 200 while ingress and the read models run, else 503."""
        state = dict(self._health())
        return _json(200 if state.get("status") == "ok" else 503, state)

    async def metrics(self, request: Request) -> Response:
        """``GET /metrics``: the process's Prometheus metrics."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    async def openapi(self, request: Request) -> Response:
        """``GET /openapi.json``: the OpenAPI 3.1 document generated from the standard."""
        return _json(200, self._openapi)


def _outcome_of(response: Response) -> str:
    status = response.status_code
    if status < 300:
        return "ok"
    if status == 304:
        return "not-modified"
    return {
        401: "unauthenticated",
        403: "forbidden",
        404: "not-found",
        413: "body-too-large",
        415: "unsupported-media-type",
        429: "rate-limited",
    }.get(status, f"status-{status}")


def _client_credentials(
    authorization: str | None, form: Mapping[str, str]
) -> tuple[str, str, bool] | Response:
    """(client_id, secret, given by Basic) from the Basic header or the form (RFC 6749 §2.3.1)."""
    in_form = "client_id" in form or "client_secret" in form
    if authorization:
        kind, _, encoded = authorization.partition(" ")
        if kind.lower() != "basic":
            return _oauth_error(400, "invalid_request", "use HTTP Basic client authentication")
        if in_form:
            return _oauth_error(
                400, "invalid_request", "authenticate with Basic or the form, not both"
            )
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return _oauth_error(401, "invalid_client", "the Basic credentials are not base64")
        client_id, sep, secret = decoded.partition(":")
        if not sep:
            return _oauth_error(401, "invalid_client", "the Basic credentials have no ':'")
        return unquote_plus(client_id), unquote_plus(secret), True
    client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
    if not client_id or not secret:
        return _oauth_error(
            401,
            "invalid_client",
            "authenticate with HTTP Basic or client_id and client_secret",
            {"WWW-Authenticate": f"Basic {_REALM}"},
        )
    return client_id, secret, False
