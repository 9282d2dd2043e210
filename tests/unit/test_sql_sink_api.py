"""The SQL sink's public face: a small, documented ``__all__`` and a clear lifecycle."""

from __future__ import annotations

import inspect
import socket

import pytest

import adapters.sinks.sql as package
from adapters.sinks.sql import SqlSink, SqlSinkConfig
from bus.contract.envelope import DataClassification, Envelope
from bus.delivery import Delivery
from bus.errors import ConfigError, LifecycleError, TransientError
from tests.support.events import izin


def config(url: str) -> SqlSinkConfig:
    return SqlSinkConfig.model_validate(
        {
            "database_url": url,
            "table": "izin",
            "key_column": "nomor_izin",
            "create_tables": True,
            "events": {"IzinDiterbitkan": {"key": "nomor_izin"}},
        }
    )


def test_all_is_sorted_and_names_every_public_member_each_documented() -> None:
    exported = {name for name in vars(package) if not name.startswith("_")}
    modules = {name for name, value in vars(package).items() if inspect.ismodule(value)}
    assert set(package.__all__) == exported - modules - {"annotations"}
    assert package.__all__ == sorted(package.__all__, key=lambda n: (not n.isupper(), n))
    for name in package.__all__:
        member = getattr(package, name)
        if isinstance(member, type):
            assert (member.__doc__ or "").strip(), f"{name} has no docstring"


async def test_a_sink_used_before_start_says_to_start_it_first() -> None:
    envelope = Envelope(
        source="ID/PEMDA-3273/DPMPTSP/sicantik",
        type="id.go.spbe.dpmptsp.IzinDiterbitkan.v1",
        steward="DPMPTSP",
        partitionkey="503/0001",
        dataclassification=DataClassification.INTERNAL,
    )
    delivery = Delivery(
        event=izin(1),
        envelope=envelope,
        topic="spbe.dpmptsp.izin.v1",
        partition=0,
        offset=0,
        key=b"503/0001",
        attempt=1,
    )
    sink = SqlSink(config("sqlite:///unused.db"))
    with pytest.raises(LifecycleError, match="not started") as caught:
        await sink(delivery)
    assert caught.value.fix == "use 'async with SqlSink(...)' or await sink.start() first"


async def test_an_unreachable_database_at_start_is_transient_and_hides_the_password() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free once closed: nothing listens there
    url = f"postgresql+psycopg://dinsos:rahasia@127.0.0.1:{port}/dinsos?connect_timeout=5"
    with pytest.raises(TransientError, match="cannot reach the database at") as caught:
        await SqlSink(config(url)).start()
    assert "rahasia" not in str(caught.value)
    assert "***" in str(caught.value)


async def test_a_url_that_is_not_a_database_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="is not a database URL"):
        await SqlSink(config("bukan url")).start()
