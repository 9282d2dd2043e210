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

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.gateway.audit import ApiAudit, ApiCall
from adapters.gateway.config import GatewayConfig
from adapters.gateway.egress import Answer, Egress
from adapters.gateway.errors import TokenRejected
from adapters.gateway.http import (
    BodyTooLarge,
    json_response,
    outcome_from,
    outcome_of,
    read_body,
)
from adapters.gateway.ingress import Ingress
from adapters.gateway.metrics import ANONYMOUS, PERSONS, observe_request
from adapters.gateway.problems import problem, problem_response
from adapters.gateway.ratelimit import RateLimiter, retry_after_header
from adapters.gateway.token_endpoint import REALM, SCOPE_PUBLISH, SCOPE_READ, TokenEndpoint
from adapters.gateway.tokens import TokenClaims, TokenIssuer
from bus.logs import get_logger
from bus.ops.api_clients import ClientAccess

__all__ = ["SCOPE_PUBLISH", "SCOPE_READ", "GatewayApp"]

log = get_logger("adapters.gateway")

_JSON_TYPES: Final = ("application/json", "application/cloudevents+json")

Handler = Callable[[Request, ClientAccess], Awaitable[tuple[Response, ApiCall]]]


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
        self._tokens = TokenEndpoint(config, issuer)

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
            return problem_response(doc, {"WWW-Authenticate": f"Bearer {REALM}"})
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
            challenge = f'Bearer {REALM}, error="insufficient_scope", scope="{scope}"'
            return problem_response(doc, {"WWW-Authenticate": challenge})
        return claims

    def _invalid_token(self, description: str) -> Response:
        doc = problem(401, "invalid-token", "Invalid bearer token", description)
        challenge = f'Bearer {REALM}, error="invalid_token", error_description="{description}"'
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
        self._account(request, endpoint, client, response, call, started)
        return response

    def _account(
        self,
        request: Request,
        endpoint: str,
        client: str,
        response: Response,
        call: ApiCall | None,
        started: float,
    ) -> None:
        """One audit record, the metrics and one log line for an answered request."""
        status = response.status_code
        call = call or ApiCall(
            client=client,
            method=request.method,
            endpoint=endpoint,
            status=status,
            outcome=outcome_of(response),
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
        response, client = await self._tokens.answer(request)
        self._account(request, "/oauth/token", client, response, None, started)
        return response

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
        details: dict[str, Any] = {"event": event_name if event_name.isidentifier() else "?"}
        topics: tuple[str, ...] = ()
        document: Mapping[str, Any] | None = None
        if media not in _JSON_TYPES:
            doc = problem(
                415,
                "unsupported-media-type",
                "Unsupported media type",
                "send the event as Content-Type: application/json",
            )
            response, document = problem_response(doc), doc
        else:
            try:
                body = await read_body(request, self.config.max_body_bytes)
            except BodyTooLarge:
                response = self._too_large()
            else:
                result = await self._ingress.post(
                    access, event_name, body, request.headers.get("idempotency-key")
                )
                headers, document = dict(result.headers), result.body
                if result.status == 202:  # where it went: the audit record says
                    topics = (str(result.body["topic"]),)
                    details.update(
                        event_id=result.body["id"],
                        partition=result.body["partition"],
                        offset=result.body["offset"],
                        replayed=result.replayed,
                    )
                if result.replayed:
                    headers["Idempotent-Replayed"] = "true"
                if result.status >= 400:
                    response = problem_response(result.body, headers)
                else:
                    response = json_response(result.status, result.body, headers)
        call = ApiCall(
            client=access.client,
            method="POST",
            endpoint=endpoint,
            status=response.status_code,
            outcome=outcome_from(response.status_code, document),
            topics=topics,
            details=details,
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
            response = json_response(answer.status, answer.body, answer.headers)
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
        return json_response(200 if state.get("status") == "ok" else 503, state)

    async def metrics(self, request: Request) -> Response:
        """``GET /metrics``: the process's Prometheus metrics."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    async def openapi(self, request: Request) -> Response:
        """``GET /openapi.json``: the OpenAPI 3.1 document generated from the standard."""
        return json_response(200, self._openapi)
