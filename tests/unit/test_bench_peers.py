"""The ``--peers`` bench set-up that needs no JVM: connector config, worker config, report."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.sources.outbox import outbox_table
from bench.connect_config import (
    OUTBOX_FIELDS,
    OUTBOX_HEADERS,
    debezium_outbox,
    render_properties,
    slot_name,
    worker_properties,
)
from bench.peer_jars import Artifact, connect_artifacts, render_pom
from bench.report import markdown

URL = "postgresql+psycopg://spbe@127.0.0.1:25432/spbe"


def config(**overrides: str) -> dict[str, str]:
    args = {"database_url": URL, "table": "outbox_dbz_1", "topic": "bench.t", "tag": "dbz_1"}
    return debezium_outbox(**{**args, **overrides})


def test_the_event_router_reads_the_columns_of_our_outbox_table() -> None:
    columns = set(outbox_table().columns.keys())
    rendered = config()
    for option, column in OUTBOX_FIELDS.items():
        assert rendered[f"transforms.outbox.{option}"] == column
        assert column in columns, f"{option} names {column}, which our outbox table lacks"
    for column, _alias in OUTBOX_HEADERS:
        assert column in columns
    assert rendered["transforms.outbox.table.field.event.key"] == "aggregate_id"
    assert rendered["transforms.outbox.table.field.event.id"] == "event_id"


def test_the_connector_streams_one_table_by_pgoutput_to_one_fixed_topic() -> None:
    rendered = config()
    assert rendered["connector.class"] == "io.debezium.connector.postgresql.PostgresConnector"
    assert rendered["plugin.name"] == "pgoutput"
    assert rendered["table.include.list"] == "public.outbox_dbz_1"
    assert rendered["publication.autocreate.mode"] == "filtered"
    assert rendered["transforms"] == "outbox"
    assert rendered["transforms.outbox.type"] == "io.debezium.transforms.outbox.EventRouter"
    assert rendered["transforms.outbox.route.topic.replacement"] == "bench.t"
    assert "${" not in rendered["transforms.outbox.route.topic.replacement"]
    assert rendered["slot.drop.on.stop"] == "false"  # a stopped connector keeps its slot
    assert (rendered["database.hostname"], rendered["database.port"]) == ("127.0.0.1", "25432")
    assert (rendered["database.user"], rendered["database.dbname"]) == ("spbe", "spbe")
    assert rendered["slot.name"] == rendered["publication.name"] == slot_name("dbz_1")


@pytest.mark.parametrize("tag", ["dbz_1a2b", "DBZ-9.x", "x" * 80])
def test_slot_names_are_what_postgresql_accepts(tag: str) -> None:
    name = slot_name(tag)
    assert len(name) <= 63
    assert all(c.islower() or c.isdigit() or c == "_" for c in name)


def test_the_worker_listens_on_loopback_and_keeps_offsets_in_the_given_file() -> None:
    settings = worker_properties(
        bootstrap="127.0.0.1:29092",
        rest_port=24567,
        offsets_file=Path("/work/x/connect.offsets"),
        plugin_path=[Path("/p/a"), Path("/p/b")],
    )
    assert settings["listeners"] == "http://127.0.0.1:24567"
    assert settings["offset.storage.file.filename"] == "/work/x/connect.offsets"
    assert settings["plugin.path"] == "/p/a,/p/b"
    text = render_properties(settings)
    assert "bootstrap.servers=127.0.0.1:29092\n" in text
    assert text.endswith("\n")


def test_connect_comes_from_the_brokers_kafka_version_line() -> None:
    names = {(a.group, a.name): a.version for a in connect_artifacts("4.1.2")}
    for name in ("connect-runtime", "connect-json", "connect-transforms"):
        assert names[("org.apache.kafka", name)] == "4.1.2"
    pom = render_pom("x", (Artifact("io.debezium", "debezium-connector-postgres", "3.6.1.Final"),))
    assert "<artifactId>debezium-connector-postgres</artifactId>" in pom
    assert "<version>3.6.1.Final</version>" in pom


def spread(value: float) -> dict[str, object]:
    return {"median": value, "min": value, "max": value, "rounds": [value]}


def latency(p99: float) -> dict[str, float]:
    figures = {"events": 100, "not_arrived": 0, "p50_ms": 1.0, "p95_ms": 2.0, "p99_ms": p99}
    return figures | {"max_ms": p99 + 1, "offered_per_s": 1000.0}


def test_the_report_names_both_contenders_their_ratio_and_the_jdbc_sink_reference() -> None:
    results = {
        "started": "2026-12-01T00:00:00+00:00",
        "mode": "quick with peers",
        "peers": {
            "versions": {"kafka-connect": "4.1.2", "debezium": "3.6.1.Final"},
            "backlog": {
                "rows": 5000,
                "relay": {"rows_per_s": spread(4000.0), "steady_rows_per_s": spread(5000.0)},
                "debezium": {"rows_per_s": spread(2000.0), "steady_rows_per_s": spread(9000.0)},
                "ratio_relay_debezium": spread(2.0),
            },
            "latency": {
                "target_per_s": 1000,
                "seconds": 10.0,
                "relay": latency(250.0),
                "debezium": None,
                "debezium_tuned": latency(90.0),
                "debezium_tuned_settings": {"poll.interval.ms": "50"},
            },
            "jdbc_sink": {
                "tried": [{"artifact": "io.debezium:x:1", "outcome": "x was not found"}],
                "measured": None,
                "reference": "Debezium JDBC sink, about 2,300 events/s with batching, "
                "debezium.io blog, 2023-12-20",
            },
        },
        "errors": {"peers: Debezium latency": "RuntimeError: boom"},
    }
    text = markdown(results)
    assert "| outbox → Kafka: our relay | 4,000 | 4,000 | 4,000 |" in text
    assert "| outbox → Kafka: Debezium outbox connector | 2,000 |" in text
    assert "| outbox → Kafka: ratio our relay / Debezium | 2.00 |" in text
    assert "| our relay | 100 | 1.00 | 2.00 | 250 | 251 | 0 |" in text
    assert "| Debezium outbox connector | not measured |" in text
    assert "| Debezium outbox connector, poll.interval.ms 50 | 100 | 1.00 | 2.00 | 90 |" in text
    assert "about 2,300 events/s with batching, debezium.io blog, 2023-12-20" in text
    assert "- peers: Debezium latency: RuntimeError: boom" in text


def test_a_run_without_peers_reports_no_peer_rows() -> None:
    text = markdown({"started": "2026-12-01T00:00:00+00:00", "mode": "quick"})
    assert "Debezium" not in text
