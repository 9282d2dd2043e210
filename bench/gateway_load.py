"""The gateway step's load generator, a process of its own: ``python -m bench.gateway_load PLAN``.

asyncio and h11 over ``connections`` HTTP/1.1 keep-alive connections over TLS, opened
up front, trusting the bench's CA (httpx's pool, tried first, capped this generator at
about 260 requests/s on the 2-core machine, its own CPU saturated). ``PLAN`` is a JSON
file written by :func:`bench.gateway.measure`; the figures go to stdout as one JSON
object. Phases, in order:

* ``ceiling``: ``GET /healthz`` closed loop, ``concurrency`` requests in flight, as many
  as the POST phase sends: the most requests per second this generator gets answered
  over these connections (TLS, uvicorn and Starlette included, no gateway work), and
  the same endpoint open loop at the GET phase's rate: the latency floor.
* ``post``: ``count`` posts of an UmkmTerdaftar (each its own ``id_umkm`` and
  ``Idempotency-Key``) closed loop, ``concurrency`` in flight; events/s acknowledged is
  the 202s over the seconds from the first send to the last answer. Once more without
  ``Idempotency-Key`` (no idempotency store round trips).
* ``get``: ``GET /api/v1/penduduk/{nik}`` of residents of the read model, open loop: the
  i-th request is due at ``start + i / rate`` and sent then whatever the answers before it
  did, and its latency runs from that due time (not from when a connection was free), so
  a stalled gateway shows in the percentiles instead of slowing the schedule down
  (coordinated omission).

Each phase also reports the CPU seconds this process and the gateway's process used
(``/proc/<pid>/stat``), so a reader sees which side was saturated.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import resource
import ssl
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import h11

__all__ = ["closed_loop", "latency_figures", "main", "open_loop"]

Send = Callable[[int], Awaitable[tuple[int, bytes]]]


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _process_cpu_s(pid: int | None) -> float | None:
    """User + system CPU seconds of ``pid`` so far (Linux), ``None`` elsewhere."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def latency_figures(latencies_s: list[float]) -> dict[str, float]:
    """p50, p95, p99 and max of ``latencies_s``, in milliseconds (nearest rank)."""
    ordered = sorted(latencies_s)
    if not ordered:
        return {}

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.5) - 1))] * 1000

    return {
        "p50_ms": round(rank(0.50), 2),
        "p95_ms": round(rank(0.95), 2),
        "p99_ms": round(rank(0.99), 2),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


class _Meter:
    """Wall and CPU seconds of a phase, for this process and the gateway's."""

    def __init__(self, gateway_pid: int | None) -> None:
        self._pid = gateway_pid
        self._wall = time.perf_counter()
        self._own = _own_cpu_s()
        self._gateway = _process_cpu_s(gateway_pid)

    def cpu(self) -> dict[str, float | None]:
        wall = time.perf_counter() - self._wall
        gateway = _process_cpu_s(self._pid)
        used = None if gateway is None or self._gateway is None else gateway - self._gateway
        return {
            "generator_cpu_share": round((_own_cpu_s() - self._own) / wall, 3),
            "gateway_cpu_share": None if used is None else round(used / wall, 3),
        }


async def closed_loop(send: Send, count: int, concurrency: int, ok: int) -> dict[str, Any]:
    """``count`` requests, ``concurrency`` in flight; answers with status ``ok`` per second."""
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < count:
            index, next_index = next_index, next_index + 1
            sent = time.perf_counter()
            try:
                status = (await send(index))[0]
            except (OSError, h11.ProtocolError):
                status = 0
            if status == ok:
                latencies.append(time.perf_counter() - sent)
            statuses[status] += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    return {
        "requests": count,
        "concurrency": concurrency,
        "seconds": round(seconds, 3),
        "per_s": round(statuses[ok] / seconds, 1),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        **latency_figures(latencies),
    }


async def open_loop(send: Send, rate: float, seconds: float, ok: int) -> dict[str, Any]:
    """``rate`` requests per second for ``seconds``, each timed from when it was due."""
    total = int(rate * seconds)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    lateness: list[float] = []

    async def one(index: int, due: float) -> None:
        try:
            status = (await send(index))[0]
        except (OSError, h11.ProtocolError):
            status = 0
        statuses[status] += 1
        if status == ok:
            latencies.append(time.perf_counter() - due)

    tasks: list[asyncio.Task[None]] = []
    start = time.perf_counter() + 0.05
    for index in range(total):
        due = start + index / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        lateness.append(max(0.0, time.perf_counter() - due))
        tasks.append(asyncio.create_task(one(index, due)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    return {
        "target_per_s": rate,
        "seconds": seconds,
        "requests": total,
        "answered_per_s": round(sum(statuses.values()) / elapsed, 1),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "send_lateness_p99_ms": latency_figures(lateness).get("p99_ms"),
        **latency_figures(latencies),
    }


class _Connection:
    """One keep-alive HTTP/1.1 connection over TLS, driven with h11 (no pool to search)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer
        self._h11 = h11.Connection(h11.CLIENT)

    async def request(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes = b""
    ) -> tuple[int, bytes]:
        conn = self._h11
        head = [("Host", "127.0.0.1"), ("Content-Length", str(len(body))), *headers]
        data = conn.send(h11.Request(method=method, target=target, headers=head)) or b""
        if body:
            data += conn.send(h11.Data(data=body)) or b""
        data += conn.send(h11.EndOfMessage()) or b""
        self._writer.write(data)
        status, content = 0, b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                chunk = await self._reader.read(65536)
                if not chunk:
                    raise ConnectionError("the gateway closed the connection")
                conn.receive_data(chunk)
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                content += bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionError("the gateway closed the connection")
        conn.start_next_cycle()
        return status, content

    def close(self) -> None:
        self._writer.close()


class Pool:
    """``size`` connections opened up front; a request waits for a free one."""

    def __init__(self, url: str, ca_file: str, size: int) -> None:
        parsed = urlsplit(url)
        self._host, self._port = parsed.hostname or "127.0.0.1", parsed.port or 443
        self._trust = ssl.create_default_context(cafile=ca_file)
        self._size = size
        self._free: asyncio.Queue[_Connection] = asyncio.Queue()
        self._all: list[_Connection] = []

    async def __aenter__(self) -> Pool:
        for _ in range(self._size):
            reader, writer = await asyncio.open_connection(
                self._host, self._port, ssl=self._trust, server_hostname=self._host
            )
            connection = _Connection(reader, writer)
            self._all.append(connection)
            self._free.put_nowait(connection)
        return self

    async def __aexit__(self, *_: object) -> None:
        for connection in self._all:
            connection.close()

    async def request(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes = b""
    ) -> tuple[int, bytes]:
        connection = await self._free.get()
        try:
            return await connection.request(method, target, headers, body)
        finally:
            self._free.put_nowait(connection)


async def _token(pool: Pool, client: str, secret: str) -> list[tuple[str, str]]:
    basic = base64.b64encode(f"{client}:{secret}".encode()).decode()
    status, body = await pool.request(
        "POST",
        "/oauth/token",
        [
            ("Authorization", f"Basic {basic}"),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        b"grant_type=client_credentials",
    )
    if status != 200:
        raise RuntimeError(f"the token endpoint answered {status} for {client}")
    return [("Authorization", f"Bearer {json.loads(body)['access_token']}")]


def _umkm_bodies(plan: dict[str, Any], count: int) -> list[bytes]:
    base, run = plan["umkm"], uuid.uuid4().hex[:6]
    return [
        json.dumps({**base, "id_umkm": f"UMKM-3273-2026-{run}-{i:06d}"}).encode()
        for i in range(count)
    ]


async def _run(plan: dict[str, Any]) -> dict[str, Any]:
    pid = plan.get("gateway_pid")
    count, concurrency = int(plan["posts"]), int(plan["concurrency"])
    rate, seconds = float(plan["get_rate"]), float(plan["get_seconds"])
    niks: list[str] = plan["niks"]
    rng = random.Random(7)  # noqa: S311 - which resident to read, not a secret
    figures: dict[str, Any] = {}
    async with Pool(plan["url"], plan["ca_file"], int(plan["connections"])) as pool:

        async def healthz(_: int) -> tuple[int, bytes]:
            return await pool.request("GET", "/healthz", [])

        await closed_loop(healthz, concurrency * 20, concurrency, 200)  # warm up
        meter = _Meter(pid)
        figures["ceiling"] = await closed_loop(healthz, count, concurrency, 200)
        figures["ceiling"].update(meter.cpu())
        meter = _Meter(pid)
        figures["ceiling_open_loop"] = await open_loop(healthz, rate, seconds, 200)
        figures["ceiling_open_loop"].update(meter.cpu())

        writer = await _token(pool, plan["poster"], plan["poster_secret"])
        writer.append(("Content-Type", "application/json"))
        for keyed in (True, False):
            bodies = _umkm_bodies(plan, count)
            run = uuid.uuid4().hex[:12]

            async def post(
                i: int, keyed: bool = keyed, bodies: list[bytes] = bodies, run: str = run
            ) -> tuple[int, bytes]:
                headers = [*writer, ("Idempotency-Key", f"bench-{run}-{i}")] if keyed else writer
                return await pool.request("POST", "/api/v1/umkm", headers, bodies[i])

            meter = _Meter(pid)
            name = "post" if keyed else "post_without_key"
            figures[name] = await closed_loop(post, count, concurrency, 202)
            figures[name].update(meter.cpu())

        reader = await _token(pool, plan["reader"], plan["reader_secret"])
        picks = [rng.choice(niks) for _ in range(int(rate * seconds))]

        async def get(i: int) -> tuple[int, bytes]:
            return await pool.request("GET", f"/api/v1/penduduk/{picks[i]}", reader)

        await closed_loop(get, min(200, len(picks)), 8, 200)  # warm the query path
        meter = _Meter(pid)
        figures["get"] = await open_loop(get, rate, seconds, 200)
        figures["get"].update(meter.cpu())
    return figures


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m bench.gateway_load PLAN.json", file=sys.stderr)
        return 2
    plan = json.loads(Path(args[0]).read_text())
    print(json.dumps(asyncio.run(_run(plan))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
