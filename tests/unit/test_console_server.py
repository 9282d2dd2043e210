"""The console served by a real uvicorn over HTTPS, as ``spbe-bus console serve`` builds it:
a forged ``X-Forwarded-For`` names no client (nor a fresh login bucket) unless it comes from
a configured ``trusted_proxies`` address, and one operator's passwords are limited however
many addresses try them."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from adapters.console import ConsoleApp, ConsoleConfig
from adapters.console.service import server_config
from bus.localkafka.certificates import CertificateAuthority
from tests.support.ports import free_port_block
from tests.unit.test_console_app import STATE, Trail, settings


@contextlib.asynccontextmanager
async def serving(
    tmp_path: Path, trail: Trail, **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    authority = CertificateAuthority.create(tmp_path / "ca")
    issued = authority.issue("spbe-console", hosts=["127.0.0.1"], folder=tmp_path / "tls")
    port = free_port_block(1)
    values = settings(tmp_path, port=port, **overrides)
    values.update(tls_certificate=str(issued.certificate), tls_key=str(issued.key))
    config = ConsoleConfig.model_validate(values)
    server = uvicorn.Server(
        server_config(config, ConsoleApp(config, audit=trail, state=lambda: STATE).asgi())
    )
    task = asyncio.create_task(server.serve())
    base = f"https://127.0.0.1:{port}"
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.05)
        assert server.started, "uvicorn did not start"
        async with httpx.AsyncClient(
            base_url=base,
            verify=ssl.create_default_context(cafile=str(authority.cert_path)),
            headers={"origin": base},
        ) as client:
            yield client
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=30)


async def wrong_logins(client: httpx.AsyncClient, count: int) -> list[int]:
    codes = []
    for i in range(count):
        answer = await client.post(
            "/login",
            data={"name": "ani", "password": f"wrong-password-{i}"},
            headers={"x-forwarded-for": f"203.0.113.{i + 1}"},
        )
        codes.append(answer.status_code)
    return codes


async def test_a_forged_forwarded_for_names_no_client_and_gets_no_fresh_bucket(
    tmp_path: Path,
) -> None:
    trail = Trail()
    async with serving(tmp_path, trail) as client:
        codes = await wrong_logins(client, 20)
    assert codes[:3] == [401, 401, 401], "login_burst is 3"
    assert set(codes[3:]) == {429}
    clients = {r.parameters["client"] for r in trail.records}
    assert clients == {"127.0.0.1"}, "the peer's address, never the forged one"


async def test_behind_a_trusted_proxy_the_forwarded_client_is_named_and_each_operator_limited(
    tmp_path: Path,
) -> None:
    trail = Trail()
    async with serving(tmp_path, trail, trusted_proxies=["127.0.0.1"]) as client:
        codes = await wrong_logins(client, 20)
    assert codes[:3] == [401, 401, 401]
    assert set(codes[3:]) == {429}, "20 addresses share the bucket of the operator they try"
    assert trail.records[0].parameters["client"] == "203.0.113.1"
    assert trail.records[3].principal == "ani"


def test_a_trusted_proxy_that_is_no_address_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"trusted_proxies\[1\]: 'proxy.example' is not an IP"):
        ConsoleConfig.model_validate(
            settings(tmp_path, trusted_proxies=["10.0.0.5", "proxy.example"])
        )
