"""The console's HTTP face: login, the page, its script and style, and the state as JSON.

Routes: ``GET /login`` (the form), ``POST /login`` (an scrypt check of the operator's
password; on success a signed session cookie, ``HttpOnly; Secure; SameSite=Strict;
Path=/``), ``POST /logout``, ``GET /`` (the page, 303 to ``/login`` without a session),
``GET /console.js``, ``GET /console.css``, ``GET /api/state`` (401 without a session) and
``GET /metrics`` (the process's Prometheus counters: counts only, no name or address).
Every answer carries ``Cache-Control: no-store``, a Content-Security-Policy that allows
no inline script (``default-src 'self'``), ``X-Content-Type-Options: nosniff``,
``Referrer-Policy: same-origin``, ``X-Frame-Options: DENY`` and
``Strict-Transport-Security: max-age=31536000``.

A failed login gets one message whatever failed (unknown operator or wrong password), and
login attempts are rate limited per client address and per operator name (429 past the
limit); the client address is the peer's, or ``X-Forwarded-For``'s only from a configured
``trusted_proxies`` address. Every login is an audit record (``console.login``) naming the
operator (only a configured name: a typed name could be anything, even a password) and the
outcome, never the password; of the refusals by the rate limit only the first of each
bucket per refill period is, with how many were not recorded since
(:mod:`adapters.console.refusals`; all are counted at ``/metrics``). A login whose record
cannot be written is refused (503). A ``POST`` is refused (403) unless the browser says it
came from the console's own page (``Sec-Fetch-Site: same-origin``, or without that header
an ``Origin`` equal to ``https://<Host>``).
"""

from __future__ import annotations

import asyncio
import html
import time
import urllib.parse
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any, Final, Literal, Protocol

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.console.config import ConsoleConfig
from adapters.console.refusals import RefusalLog
from adapters.console.sessions import SESSION_COOKIE, Session, Sessions
from adapters.gateway.ratelimit import RateLimiter, retry_after_header
from adapters.gateway.secrets import hash_client_secret, verify_client_secret
from bus.errors import BusError
from bus.logs import get_logger
from bus.ops.audit import AuditRecord, new_record

__all__ = ["LOGIN_ACTION", "SECURITY_HEADERS", "ConsoleApp"]

log = get_logger("adapters.console")

LOGIN_ACTION: Final = "console.login"
#: The audit record's subscriber field: the console's own name.
_AUDIT_SUBJECT: Final = "spbe-console"
#: Headers on every answer of the console.
SECURITY_HEADERS: Final[Mapping[str, str]] = {
    "cache-control": "no-store",
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    # same-origin, not no-referrer: under no-referrer a browser sends "Origin: null" with the
    # console's own forms, and the login's origin check needs their real origin.
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    # The console is HTTPS only: a browser that has seen it once never tries plain HTTP.
    "strict-transport-security": "max-age=31536000",
}
_FAILED: Final = "Login failed: unknown operator or wrong password."
_MAX_FORM_BYTES: Final = 4096
_STATIC = resources.files("adapters.console") / "static"


class AuditSink(Protocol):
    """Where login records go (:class:`bus.ops.audit.AuditLog`)."""

    async def record(self, entry: AuditRecord) -> int: ...


class _SecurityHeaders:
    """ASGI middleware adding :data:`SECURITY_HEADERS` to every HTTP answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.decode("latin-1").lower() not in SECURITY_HEADERS
                ]
                headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def _asset(name: str) -> str:
    return (_STATIC / name).read_text(encoding="utf-8")


class ConsoleApp:
    """The routes of the console, bound to its sessions, audit log and state."""

    def __init__(
        self,
        config: ConsoleConfig,
        *,
        audit: AuditSink,
        state: Callable[[], Mapping[str, Any]],
        sessions: Sessions | None = None,
        limiter: RateLimiter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._audit = audit
        self._state = state
        self.sessions = sessions or Sessions(config.session_key, ttl_s=config.session_ttl_s)
        self._limiter = limiter or RateLimiter(
            config.logins_per_minute / 60.0, config.login_burst, clock=clock
        )
        # A second bucket per operator name: many addresses (or everyone behind one proxy)
        # cannot try more passwords of one operator than one address could.
        self._per_operator = RateLimiter(
            config.logins_per_minute / 60.0, config.login_burst, clock=clock
        )
        # One refused-login record per bucket per refill period (the time one attempt takes
        # to come back); the others are counted.
        self._refusals = RefusalLog(60.0 / config.logins_per_minute, clock=clock)
        # An unknown name is checked against this, so it costs what a wrong password costs.
        self._decoy = hash_client_secret("not-an-operator-password")
        self._assets = {name: _asset(name) for name in ("page.html", "login.html")}
        self._script = _asset("console.js")
        self._style = _asset("console.css")

    def asgi(self) -> ASGIApp:
        """The ASGI application uvicorn serves."""
        app = Starlette(
            routes=[
                Route("/", self.page, methods=["GET"]),
                Route("/login", self.login_form, methods=["GET"]),
                Route("/login", self.login, methods=["POST"]),
                Route("/logout", self.logout, methods=["POST"]),
                Route("/console.js", self.script, methods=["GET"]),
                Route("/console.css", self.style, methods=["GET"]),
                Route("/api/state", self.api_state, methods=["GET"]),
                Route("/metrics", self.metrics, methods=["GET"]),
            ]
        )
        return _SecurityHeaders(app)

    # -- sessions ---------------------------------------------------------------------------

    def _session(self, request: Request) -> Session | None:
        # Bound to the operator's password_hash: removed from the file or given a new hash
        # (read at start), the operator's cookies are no session.
        return self.sessions.verify(
            request.cookies.get(SESSION_COOKIE), password_hash_of=self.config.password_hash_of
        )

    @staticmethod
    def _client(request: Request) -> str:
        return request.client.host if request.client is not None else "unknown"

    @staticmethod
    def _foreign_origin(request: Request) -> bool:
        """Whether a form may not have come from the console's own page. A browser that
        sends ``Sec-Fetch-Site`` decides (``same-origin``, or ``none`` for one the operator
        started); else ``Origin`` must be this console's own ``https://<Host>`` exactly: a
        missing or ``null`` one is refused (``Referrer-Policy: same-origin`` makes the
        console's own forms send their real origin)."""
        site = request.headers.get("sec-fetch-site")
        if site is not None:
            return site not in ("same-origin", "none")
        origin = request.headers.get("origin")
        host = request.headers.get("host")
        return origin is None or not host or origin != f"https://{host}"

    # -- pages ------------------------------------------------------------------------------

    async def page(self, request: Request) -> Response:
        session = self._session(request)
        if session is None:
            return RedirectResponse("/login", status_code=303)
        body = self._assets["page.html"].replace("{{operator}}", html.escape(session.operator))
        body = body.replace("{{refresh_ms}}", str(int(self.config.refresh_s * 1000)))
        return Response(body, media_type="text/html; charset=utf-8")

    def _login_page(self, status: int, message: str = "") -> Response:
        notice = f'<p id="login-error" role="alert">{html.escape(message)}</p>' if message else ""
        body = self._assets["login.html"].replace("{{message}}", notice)
        return Response(body, status_code=status, media_type="text/html; charset=utf-8")

    async def login_form(self, request: Request) -> Response:
        if self._session(request) is not None:
            return RedirectResponse("/", status_code=303)
        return self._login_page(200)

    async def script(self, request: Request) -> Response:
        return Response(self._script, media_type="text/javascript; charset=utf-8")

    async def style(self, request: Request) -> Response:
        return Response(self._style, media_type="text/css; charset=utf-8")

    async def metrics(self, request: Request) -> Response:
        """The console process's Prometheus metrics (refused logins among them): counts
        only, no operator or address."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    async def api_state(self, request: Request) -> Response:
        session = self._session(request)
        if session is None:
            return JSONResponse({"error": "log in at /login"}, status_code=401)
        return JSONResponse({**self._state(), "operator": session.operator})

    # -- login / logout ---------------------------------------------------------------------

    async def login(self, request: Request) -> Response:
        if self._foreign_origin(request):
            return self._login_page(403, "Refused: the form was sent from another site.")
        client = self._client(request)
        wait = self._limiter.take(client)
        if wait:
            return await self._limited("address", client, None, client, wait)
        form = await self._form(request)
        name = form.get("name", "").strip()
        password = form.get("password", "")
        stored = self.config.password_hash_of(name)
        if stored is not None and (wait := self._per_operator.take(name)):
            return await self._limited("operator", name, name, client, wait)
        ok = await asyncio.to_thread(
            verify_client_secret, password, stored if stored is not None else self._decoy
        )
        ok = ok and stored is not None
        outcome = "ok" if ok else ("wrong-password" if stored is not None else "unknown-operator")
        if not await self._record(name if stored is not None else None, client, outcome):
            return self._login_page(503, "The login cannot be audited now; try again later.")
        if not ok or stored is None:
            log.warning("console.login_refused", client=client, outcome=outcome)
            return self._login_page(401, _FAILED)
        log.info("console.login", operator=name, client=client)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            self.sessions.issue(name, password_hash=stored),
            max_age=self.config.session_ttl_s,
            path="/",
            secure=True,
            httponly=True,
            samesite="strict",
        )
        return response

    async def _limited(
        self,
        limit: Literal["address", "operator"],
        bucket: str,
        operator: str | None,
        client: str,
        wait: float,
    ) -> Response:
        unrecorded = self._refusals.refused(limit, bucket)
        if unrecorded is not None:
            extra = {"limit": limit, "refused_unrecorded": unrecorded}
            await self._record(operator, client, "rate-limited", extra)
        response = self._login_page(429, "Too many login attempts; wait and try again.")
        response.headers["retry-after"] = retry_after_header(wait)
        return response

    async def logout(self, request: Request) -> Response:
        if self._foreign_origin(request):
            return Response("refused: the form was sent from another site", status_code=403)
        session = self.sessions.revoke(
            request.cookies.get(SESSION_COOKIE), password_hash_of=self.config.password_hash_of
        )
        if session is not None:
            log.info("console.logout", operator=session.operator)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(
            SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict"
        )
        return response

    async def _form(self, request: Request) -> dict[str, str]:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > _MAX_FORM_BYTES:
                return {}
        try:
            fields = urllib.parse.parse_qs(body.decode("utf-8", "replace"), max_num_fields=10)
        except ValueError:  # more fields than a login form has
            return {}
        return {k: v[0] for k, v in fields.items() if v}

    async def _record(
        self,
        operator: str | None,
        client: str,
        outcome: str,
        extra: Mapping[str, str | int] | None = None,
    ) -> bool:
        entry = new_record(
            LOGIN_ACTION,
            principal=operator or "unknown",
            subscriber=_AUDIT_SUBJECT,
            topics=(),
            parameters={"client": client},
            result={"outcome": outcome, **(extra or {})},
        )
        try:
            await self._audit.record(entry)
        except BusError as exc:
            log.error("console.login_unaudited", error=type(exc).__name__)
            return False
        return True
