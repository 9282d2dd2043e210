"""The production cluster configs in deploy/kafka keep the promises the README makes."""

from __future__ import annotations

from pathlib import Path

import pytest

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
