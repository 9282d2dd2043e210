"""The local cluster's layout and the files rendered from it (no broker needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from bus.localkafka.artifacts import render_pom
from bus.localkafka.layout import ClusterLayout, new_cluster_id, render_server_properties


def _props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def test_one_node_uses_the_port_and_the_next_for_its_controller() -> None:
    layout = ClusterLayout.for_base_port(port=9092)
    assert layout.bootstrap_servers == "127.0.0.1:9092"
    props = _props(render_server_properties(layout, 1, Path("/data")))
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["min.insync.replicas"] == "1"


def test_three_nodes_replicate_everything_three_times_with_two_in_sync() -> None:
    layout = ClusterLayout.for_base_port(nodes=3, port=9092)
    assert layout.bootstrap_servers == "127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094"
    props = _props(render_server_properties(layout, 2, Path("/data")))
    assert props["node.id"] == "2"
    assert props["controller.quorum.voters"] == (
        "1@127.0.0.1:9095,2@127.0.0.1:9096,3@127.0.0.1:9097"
    )
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9093"
    assert props["default.replication.factor"] == "3"
    assert props["min.insync.replicas"] == "2"
    assert props["transaction.state.log.min.isr"] == "2"


def test_small_machine_settings_are_applied() -> None:
    props = _props(render_server_properties(ClusterLayout(), 1, Path("/data")))
    assert props["offsets.topic.num.partitions"] == "1"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["log.cleaner.dedupe.buffer.size"] == str(16 * 1024 * 1024)
    assert props["auto.create.topics.enable"] == "false"


@pytest.mark.parametrize(
    ("broker_ports", "controller_ports", "message"),
    [
        ((9092, 9093), (9094, 9095), "1 or 3 nodes"),
        ((9092,), (9092,), "ports must all differ"),
        ((9092, 9093, 9094), (9095,), "one entry per node"),
        ((70000,), (9093,), "outside 1-65535"),
    ],
)
def test_an_impossible_layout_is_refused(
    broker_ports: tuple[int, ...], controller_ports: tuple[int, ...], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        ClusterLayout(broker_ports=broker_ports, controller_ports=controller_ports)


def test_cluster_ids_are_22_characters_and_never_look_like_a_flag() -> None:
    ids = {new_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)


def test_the_pom_adds_the_logging_backend_kafkas_pom_lacks() -> None:
    pom = render_pom("4.1.1")
    assert "<artifactId>kafka_2.13</artifactId><version>4.1.1</version>" in pom
    assert "<artifactId>log4j-slf4j-impl</artifactId>" in pom
    assert "<artifactId>slf4j-api</artifactId><version>1.7.36</version>" in pom
