"""A real HTTP receiver on loopback for webhook tests: scripted answers, signatures checked.

    with WebhookReceiver(SECRET) as receiver:
        receiver.script(Reply(500), Reply(200, delay_s=5), Reply(200))
        ...  # point a WebhookSink at receiver.url
        assert [r.reply.status for r in receiver.requests] == [500, 200, 200]

Each request takes the next scripted :class:`Reply` (the default one when the script is
used up). Every request is recorded with its headers and raw body, and its signature is
checked with :func:`~adapters.sinks.webhook.signature.verify`; a request that fails the
check is answered 401, as a real receiver would, and the reason is recorded. A reply's
``delay_s`` holds the answer back (to make the sender time out); stopping the receiver
cuts every delay short.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

from adapters.sinks.webhook.errors import SignatureError
from adapters.sinks.webhook.signature import EVENT_ID_HEADER, verify

__all__ = ["Reply", "Request", "WebhookReceiver"]


@dataclass(frozen=True, slots=True)
class Reply:
    """How the receiver answers one request."""

    status: int = 200
    delay_s: float = 0.0
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class Request:
    """One request as the receiver got it, and what it answered."""

    headers: dict[str, str]
    body: bytes
    reply: Reply
    #: ``None`` when the signature verified, else why it did not.
    signature_error: str | None

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)

    @property
    def event_id(self) -> str | None:
        return self.header(EVENT_ID_HEADER)

    @property
    def event(self) -> dict[str, Any]:
        """The body as JSON (a CloudEvent in structured mode)."""
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: WebhookReceiver

    def handle_error(self, request: object, client_address: object) -> None:
        """A sender that hung up (after its timeout) is expected here, not an error."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        receiver = self.server.receiver
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        headers = dict(self.headers.items())
        reply = receiver._next_reply()
        error: str | None = None
        try:
            verify(receiver.secret, headers, body)
        except SignatureError as exc:
            error = f"{type(exc).__name__}: {exc.message}"
            reply = Reply(status=401, body=b"invalid signature")
        receiver._record(Request(headers=headers, body=body, reply=reply, signature_error=error))
        if reply.delay_s and receiver._stopping.wait(reply.delay_s):
            return
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
        except OSError:
            pass  # the sender gave up waiting; a late answer has nobody to go to

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read :attr:`WebhookReceiver.requests` instead."""


class WebhookReceiver:
    """An HTTP server on 127.0.0.1 (a free port) that answers from a script."""

    def __init__(self, secret: bytes, *, default: Reply | None = None) -> None:
        self.secret = secret
        self.default = default or Reply()
        self._script: deque[Reply] = deque()
        self._requests: list[Request] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the receiver is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/spbe/webhook"

    @property
    def requests(self) -> list[Request]:
        """Every request so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with ``replies``, in order, then with the default."""
        with self._lock:
            self._script.extend(replies)

    def start(self) -> None:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.receiver = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="webhook-receiver")
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _next_reply(self) -> Reply:
        with self._lock:
            return self._script.popleft() if self._script else self.default

    def _record(self, request: Request) -> None:
        with self._lock:
            self._requests.append(request)
