"""The example clients speak the gateway's protocol: against a stand-in HTTPS server with a
certificate of a fresh local CA they trust that CA, authenticate by HTTP Basic for a
client-credentials token, post the UMKM example with the token and an Idempotency-Key
(kept across a 429 retry), read the resident by NIK, and print the three answers as
JSON lines with the access token redacted. The real gateway's test runs them the same
way through tests.support.api_clients."""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from bus.contract.standard import example
from bus.localkafka.certificates import CertificateAuthority
from tests.support.api_clients import run_java_client, run_php_client

CLIENT_ID = "dinkopukm-siumkm"
SECRET = "s3cret-with:colon"
ACCESS_TOKEN = "eyJ0eXAiOiJKV1QifQ.e30.c2lnbmF0dXJl"
NIK = "3273025708900003"
KEY = "umkm-000123-attempt"
PERSON = {"data": {"nik": NIK, "nama_lengkap": "Siti Nurhaliza Rahmawati"}}


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class StandIn:
    url: str
    ca: Path
    seen: list[Seen] = field(default_factory=list)


def _handler(seen: list[Seen]) -> type[BaseHTTPRequestHandler]:
    throttled: set[str] = set()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: Any, **headers: str) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name.replace("_", "-"), value)
            self.end_headers()
            self.wfile.write(data)

        def _record(self) -> Seen:
            length = int(self.headers.get("Content-Length") or 0)
            request = Seen(self.command, self.path, dict(self.headers.items()),
                           self.rfile.read(length))  # fmt: skip
            seen.append(request)
            return request

        def do_POST(self) -> None:
            request = self._record()
            if self.path == "/oauth/token":
                self._answer(200, {"access_token": ACCESS_TOKEN, "token_type": "Bearer",
                                   "expires_in": 300, "scope": "events:publish"})  # fmt: skip
            elif (
                self.path == "/api/v1/umkm" and request.headers["Idempotency-Key"] not in throttled
            ):
                throttled.add(request.headers["Idempotency-Key"])
                problem = {"type": "urn:spbe:problem:rate-limited", "title": "Slow down",
                           "status": 429, "detail": "over the limit"}  # fmt: skip
                self._answer(429, problem, Retry_After="0")
            else:
                self._answer(202, {"id": "0193a8f2-5c1e-7b3a-9d4e-2f6a8b0c1d2e",
                                   "type": "id.go.spbe.dinkopukm.UmkmTerdaftar.v1",
                                   "topic": "spbe.dinkopukm.umkm.v1", "partition": 0,
                                   "offset": 7})  # fmt: skip

        def do_GET(self) -> None:
            self._record()
            self._answer(200, PERSON, ETag='"v1"')

    return Handler


@pytest.fixture
def stand_in(tmp_path: Path) -> Iterator[StandIn]:
    authority = CertificateAuthority.create(tmp_path / "ca")
    issued = authority.issue("gateway", hosts=["127.0.0.1"])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(issued.certificate, issued.key)
    seen: list[Seen] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(seen))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield StandIn(f"https://127.0.0.1:{server.server_address[1]}/", authority.cert_path, seen)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


Runner = Callable[[dict[str, str], Path], list[dict[str, Any]]]
RUNNERS = [
    pytest.param(run_java_client, marks=pytest.mark.skipif(
        shutil.which("javac") is None, reason="javac (JDK 17) is not installed"), id="java"),
    pytest.param(run_php_client, marks=pytest.mark.skipif(
        shutil.which("php") is None, reason="php (php-cli, curl) is not installed"), id="php"),
]  # fmt: skip


def _env(stand_in: StandIn) -> dict[str, str]:
    return {
        "SPBE_API_URL": stand_in.url, "SPBE_API_CLIENT_ID": CLIENT_ID,
        "SPBE_API_CLIENT_SECRET": SECRET, "SPBE_API_CA": str(stand_in.ca),
        "SPBE_API_NIK": NIK, "SPBE_API_IDEMPOTENCY_KEY": KEY,
    }  # fmt: skip


@pytest.mark.parametrize("run", RUNNERS)
def test_the_client_prints_the_three_answers_with_the_token_redacted(
    run: Runner, stand_in: StandIn, tmp_path: Path
) -> None:
    lines = run(_env(stand_in), tmp_path)
    assert [(line["step"], line["status"]) for line in lines] == [
        ("token", 200), ("umkm", 202), ("penduduk", 200)
    ]  # fmt: skip
    assert lines[0]["body"]["access_token"] == "[redacted]"
    assert ACCESS_TOKEN not in json.dumps(lines)
    assert lines[1]["body"]["topic"] == "spbe.dinkopukm.umkm.v1"
    assert lines[2]["body"] == PERSON


@pytest.mark.parametrize("run", RUNNERS)
def test_the_client_sends_what_the_gateway_expects(
    run: Runner, stand_in: StandIn, tmp_path: Path
) -> None:
    run(_env(stand_in), tmp_path)
    token, throttled, posted, person = stand_in.seen
    basic = base64.b64decode(token.headers["Authorization"].removeprefix("Basic ")).decode()
    assert basic == f"{CLIENT_ID}:{SECRET.replace(':', '%3A')}"  # form-encoded, RFC 6749 2.3.1
    assert parse_qs(token.body.decode()) == {"grant_type": ["client_credentials"]}
    assert token.headers["Content-Type"] == "application/x-www-form-urlencoded"
    for post in (throttled, posted):
        assert post.path == "/api/v1/umkm"
        assert post.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
        assert post.headers["Idempotency-Key"] == KEY
        assert post.headers["Content-Type"] == "application/json"
        assert json.loads(post.body) == example("UmkmTerdaftar")
    assert (person.method, person.path) == ("GET", f"/api/v1/penduduk/{NIK}")
    assert person.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"


@pytest.mark.parametrize("run", RUNNERS)
def test_the_client_refuses_a_gateway_whose_certificate_another_ca_signed(
    run: Runner, stand_in: StandIn, tmp_path: Path
) -> None:
    stranger = CertificateAuthority.create(tmp_path / "other-ca")
    with pytest.raises(AssertionError, match="exited 1"):
        run({**_env(stand_in), "SPBE_API_CA": str(stranger.cert_path)}, tmp_path)
    assert stand_in.seen == []


@pytest.mark.parametrize("run", RUNNERS)
def test_the_client_stops_naming_a_missing_setting(run: Runner, tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="set SPBE_API_URL"):
        run({}, tmp_path)
