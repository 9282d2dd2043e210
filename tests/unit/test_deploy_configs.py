"""The production cluster configs in deploy/kafka keep the promises the README makes."""

from __future__ import annotations

from pathlib import Path

import pytest

from bus.localkafka.layout import ClusterLayout, render_server_properties
from bus.localkafka.production import render_production_properties

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kafka"


def _props(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs if not k.lstrip().startswith("#")}


NODES = [_props(DEPLOY / f"server-{i}.properties") for i in (1, 2, 3)]


def test_three_nodes_with_distinct_ids_share_one_quorum() -> None:
    assert [n["node.id"] for n in NODES] == ["1", "2", "3"]
    assert len({n["controller.quorum.voters"] for n in NODES}) == 1
    voters = NODES[0]["controller.quorum.voters"].split(",")
    assert [v.split("@")[0] for v in voters] == ["1", "2", "3"]


@pytest.mark.parametrize("node", NODES, ids=["node-1", "node-2", "node-3"])
def test_each_node_survives_one_loss_and_never_elects_an_unclean_leader(
    node: dict[str, str],
) -> None:
    assert node["default.replication.factor"] == "3"
    assert node["min.insync.replicas"] == "2"
    assert node["offsets.topic.replication.factor"] == "3"
    assert node["unclean.leader.election.enable"] == "false"
    assert node["auto.create.topics.enable"] == "false"
    assert node["authorizer.class.name"].endswith("StandardAuthorizer")


@pytest.mark.parametrize("node_id", [1, 2, 3])
def test_committed_files_are_the_rendering_of_the_tested_code(node_id: int) -> None:
    committed = (DEPLOY / f"server-{node_id}.properties").read_text()
    assert committed == render_production_properties(node_id), (
        "deploy/kafka differs from its rendering: edit bus/localkafka (secured.py, "
        "production.py) and run 'python -m bus.localkafka.production deploy/kafka'"
    )


def test_production_and_the_secured_local_cluster_share_every_security_setting() -> None:
    local = ClusterLayout.for_base_port(nodes=3, port=19092, secure=True)
    rendered = render_server_properties(
        local, 1, Path("/data"), keystore=Path("/k.pem"), truststore=Path("/ca.pem")
    )
    pairs = (line.split("=", 1) for line in rendered.splitlines() if "=" in line)
    local_props = {k: v for k, v in pairs if not k.startswith("#")}
    security_keys = [
        k for k in NODES[0]
        if k.startswith(("ssl.", "sasl.", "listener.", "super.", "allow.", "authorizer."))
        or k in ("inter.broker.listener.name", "controller.listener.names")
    ]  # fmt: skip
    host_free = {"ssl.keystore.location", "ssl.truststore.location", "super.users"}
    for key in security_keys:
        assert key in local_props, f"{key} is set in production but not in the tested cluster"
        if key not in host_free:
            assert local_props[key] == NODES[0][key], key
    assert local_props["super.users"].endswith(";User:spbe-operator")
    assert NODES[0]["ssl.keystore.type"] == "PEM"
    assert "PLAINTEXT" not in NODES[0]["listener.security.protocol.map"].replace("SASL_", "")


def test_a_secured_local_node_has_no_plaintext_listener_and_denies_by_default() -> None:
    layout = ClusterLayout.for_base_port(nodes=1, port=19092, secure=True)
    assert layout.all_ports(1) == (19092, 19093, 19094)
    text = render_server_properties(
        layout, 1, Path("/data"), keystore=Path("/k.pem"), truststore=Path("/ca.pem")
    )
    assert "listeners=SASL_SSL://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093," in text
    assert "allow.everyone.if.no.acl.found=false" in text
    assert "PLAINTEXT://" not in text
    with pytest.raises(ValueError, match="keystore"):
        render_server_properties(layout, 1, Path("/data"))
