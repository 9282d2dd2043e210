"""``spbe-bus logs`` on the JSON log of a real ``spbe-bus run`` whose receiver is away.

A webhook sink on a real broker delivers to a port nobody serves: each event fails its
attempts and is dead-lettered. The adapter's stderr, as a service manager keeps it, is
then grouped: one cause per (event, error type), with the counts the run produced.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bus.cli.main import main
from tests.conftest import TopicFactory
from tests.integration.test_subscriber import publish
from tests.support.events import izin
from tests.support.ports import free_port_block

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EVENTS = 2
ATTEMPTS = 2


async def test_a_failing_adapters_log_is_grouped_by_cause_without_personal_data(
    kafka_bootstrap: str,
    new_topic: TopicFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    topic = await new_topic(partitions=1)
    nama_usaha = "Warung Bu Siti Aminah"
    await publish(
        kafka_bootstrap, topic, [(izin(k, nama_usaha=nama_usaha), 1) for k in range(EVENTS)]
    )
    away = free_port_block(1)  # nobody listens there
    config = tmp_path / "dinkes-izin-webhook.yaml"
    config.write_text(
        "kind: webhook-sink\n"
        "subscription:\n"
        f"  bootstrap_servers: {kafka_bootstrap}\n"
        "  subscriber_id: logs-webhook\n"
        f"  topics: [{topic}]\n"
        f"  retry: {{max_attempts: {ATTEMPTS}, initial_backoff_ms: 10, max_backoff_ms: 50, "
        "jitter_ms: 0}\n"
        "webhook:\n"
        f"  url: http://127.0.0.1:{away}/spbe/events\n"
        "  secret_env: SPBE_TEST_LOGS_WEBHOOK_SECRET\n"
        "  timeout_s: 2\n"
    )
    log = tmp_path / "dinkes-izin-webhook.log"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SPBE_TEST_LOGS_WEBHOOK_SECRET": "logs-webhook-secret-0123456789",
    }
    command = [sys.executable, "-m", "bus.cli.main", "--log-json", "--log-level", "INFO"]
    with log.open("w") as stderr:
        adapter = subprocess.Popen(  # noqa: ASYNC220  started once, polled without blocking
            [*command, "run", str(config)], cwd=ROOT, env=env, stderr=stderr, stdout=stderr
        )
    try:
        deadline = asyncio.get_running_loop().time() + 180
        while log.read_text().count('"subscriber.dead_lettered"') < EVENTS:
            assert adapter.poll() is None, f"the adapter exited:\n{log.read_text()[-2000:]}"
            assert asyncio.get_running_loop().time() < deadline, log.read_text()[-2000:]
            await asyncio.sleep(0.2)
    finally:
        adapter.terminate()
        adapter.wait(timeout=120)

    assert main(["logs", "--json", str(log)]) == 1
    output = capsys.readouterr().out
    report = json.loads(output)
    # aiokafka logs through the standard library, as plain text: counted, not grouped
    plain = [line for line in log.read_text().splitlines() if not line.startswith("{")]
    assert report["unparsable"] == len(plain)
    assert report["below_level"] > 0  # adapter.starting, subscriber.started, ...
    causes = {(g["event"], g["error_type"]): g for g in report["groups"]}
    unreachable = causes[("webhook.unreachable", "ConnectError")]
    assert unreachable["count"] == EVENTS * ATTEMPTS
    dead = causes[("subscriber.dead_lettered", "WebhookUnavailableError")]
    assert dead["count"] == EVENTS
    assert "subscriber logs-webhook" in dead["origin"]
    assert dead["first"] <= dead["last"]
    assert f'dlq="{topic}.dlq.logs-webhook"' in dead["example"]
    assert "Siti" not in output
    assert "Siti" not in log.read_text()  # and the adapter never logged it either

    assert main(["logs", str(log), "--level", "error"]) == 0  # warnings only, no errors
    assert "0 causes at error or above" in capsys.readouterr().out
