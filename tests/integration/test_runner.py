"""`spbe-bus run`'s engine: an adapter file runs, applies events, and reports metrics."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from adapters.runner import load_adapter, run_adapter
from tests.conftest import TopicFactory
from tests.integration.test_subscriber import eventually, publish
from tests.support.events import izin
from tests.support.ports import free_port_block

pytestmark = pytest.mark.integration


async def test_a_sql_sink_file_applies_events_and_serves_metrics_and_health(
    kafka_bootstrap: str, new_topic: TopicFactory, tmp_path: Path
) -> None:
    topic = await new_topic(partitions=2)
    database = tmp_path / "bapenda.db"
    config = tmp_path / "bapenda-izin-sink.yaml"
    config.write_text(
        "kind: sql-sink\n"
        "subscription:\n"
        f"  bootstrap_servers: {kafka_bootstrap}\n"
        "  subscriber_id: runner-metrics\n"
        f"  topics: [{topic}]\n"
        "sink:\n"
        f"  database_url: sqlite:///{database}\n"
        "  table: wajib_pajak_potensial\n"
        "  key_column: nomor_izin\n"
        "  create_tables: true\n"
        "  events:\n"
        "    IzinDiterbitkan:\n"
        "      key: nomor_izin\n"
        "      columns: {nama_usaha: nama_usaha, kbli: kbli.kode}\n"
    )
    await publish(kafka_bootstrap, topic, [(izin(k), 1) for k in range(12)])
    port = free_port_block(1)
    stop = asyncio.Event()
    running = asyncio.create_task(run_adapter(load_adapter(config), stop=stop, metrics_port=port))

    def rows() -> int:
        if not database.exists():
            return 0
        engine = sa.create_engine(f"sqlite:///{database}")
        try:
            with engine.connect() as conn:
                return int(
                    conn.execute(sa.text("SELECT COUNT(*) FROM wajib_pajak_potensial")).scalar_one()
                )
        except sa.exc.OperationalError:
            return 0
        finally:
            engine.dispose()

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        await eventually(lambda: rows() == 12, watch=running)
        health = await client.get("/healthz")
        metrics = (await client.get("/metrics")).text
    stop.set()
    await asyncio.wait_for(running, 120)
    assert health.status_code == 200
    applied = [
        line
        for line in metrics.splitlines()
        if line.startswith("spbe_applied_total") and 'subscriber="runner-metrics"' in line
    ]
    assert applied
    assert sum(float(line.rsplit(" ", 1)[1]) for line in applied) == 12
