"""The data-flow diagram of deploy/catalog.yaml in DOT, Mermaid, SVG and PNG (no broker).

Graphviz's own ``json`` output reads the DOT back, so the checks are of what Graphviz
understood (edge ids, classes, labels), not of the text the bus wrote.
"""

from __future__ import annotations

import json
import re
import struct
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import graphviz
import pytest

from bus.cli.main import main
from bus.errors import ConfigError
from bus.ops.catalog import Catalog, load_catalog
from bus.ops.flow_diagram import (
    DIAGRAM_FORMATS,
    STATE_COLOURS,
    DiagramError,
    draw,
    embeddable_svg,
    flow_element_id,
    render,
    to_dot,
    to_mermaid,
)
from bus.ops.flows import FlowGraph, FlowMeasure, FlowState, flow_graph

REPO = Path(__file__).resolve().parents[2]
IMG = REPO / "docs" / "img"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SVG = "{http://www.w3.org/2000/svg}"
BEFORE = date(2026, 12, 1)  # nothing in deploy/catalog.yaml has expired yet
AFTER = date(2027, 1, 1)  # dinkes-penduduk and satpolpp-izin expired on 2026-12-31
EXPIRING = {"dinkes-penduduk", "satpolpp-izin"}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(today=BEFORE)[0]


@pytest.fixture(scope="module")
def graph(catalog: Catalog) -> FlowGraph:
    return flow_graph(catalog)


def edges_of(dot: str) -> dict[str, dict[str, Any]]:
    """Edge id -> its attributes, as Graphviz parsed the DOT."""
    parsed = json.loads(graphviz.Source(dot).pipe(format="json0"))
    return {e["id"]: e for e in parsed.get("edges", []) if "id" in e}


def short(event_type: str) -> str:
    return ".".join(event_type.split(".")[-2:])


def test_every_flow_is_an_edge_labelled_with_its_agreement(graph: FlowGraph) -> None:
    edges = edges_of(to_dot(graph, today=BEFORE))
    for flow in graph.flows:
        edge = edges[flow_element_id(flow.key)]
        label = edge["label"]
        for event_type in flow.event_types:
            assert short(event_type) in label
        assert "restricted" in label
        assert flow.legal_basis in label
        assert f"until {flow.expires.isoformat()}" in label
        assert edge["class"] == "flow state-unmeasured"
        assert edge["color"] == STATE_COLOURS[FlowState.UNMEASURED]


def test_every_publisher_and_api_client_is_drawn(graph: FlowGraph) -> None:
    edges = edges_of(to_dot(graph, today=BEFORE))
    for topic in graph.topics:
        assert any(e.startswith("publish:") and e.endswith(f":{topic.name}") for e in edges)
    for client in graph.api_clients:
        for subscriber in client.reads:
            assert f"api-read:{client.client}:{subscriber}" in edges
        if client.posts:
            assert any(e.startswith(f"api-post:{client.client}:") for e in edges)
        assert client.reads or client.posts  # the catalogue refuses one with neither
    assert "api-post:disdukcapil-siak:spbe.dukcapil.penduduk.v1" in edges


def test_expired_flows_are_marked_from_today_without_measures(graph: FlowGraph) -> None:
    before = edges_of(to_dot(graph, today=BEFORE))
    after = edges_of(to_dot(graph, today=AFTER))
    for flow in graph.flows:
        key = flow_element_id(flow.key)
        assert before[key]["class"] == "flow state-unmeasured"
        expected = "expired" if flow.subscriber in EXPIRING else "unmeasured"
        assert after[key]["class"] == f"flow state-{expected}"
    assert "EXPIRED" in after[flow_element_id("satpolpp-izin:spbe.dpmptsp.izin.v1")]["label"]


def test_measures_colour_and_annotate_their_flows(graph: FlowGraph) -> None:
    states = [FlowState.OK, FlowState.LAGGING, FlowState.DEAD_LETTERING]
    measures = {
        f.key: FlowMeasure(
            events_per_day=12.5 * (i + 1),
            lag=i * 2000,
            dead_letters=i // 2,
            last_applied=None,
            state=states[i % 3],
        )
        for i, f in enumerate(graph.flows)
    }
    edges = edges_of(to_dot(graph, measures, today=AFTER))
    for i, flow in enumerate(graph.flows):
        edge = edges[flow_element_id(flow.key)]
        state = FlowState.EXPIRED if flow.subscriber in EXPIRING else states[i % 3]
        assert edge["class"] == f"flow state-{state.value}"
        assert edge["color"] == STATE_COLOURS[state]
        assert f"lag {i * 2000}" in edge["label"]
        assert f"dead letters {i // 2}" in edge["label"]
        rate = 12.5 * (i + 1)
        assert (f"{rate:.0f}" if rate >= 10 else f"{rate:.1f}") + " events/day" in edge["label"]


def test_one_legend_names_every_state(graph: FlowGraph) -> None:
    dot = to_dot(graph, today=BEFORE)
    assert dot.count('"legend" [') == 1
    for state, colour in STATE_COLOURS.items():
        assert f'BGCOLOR="{colour}"' in dot
        assert f">{state.value}<" in dot


_MERMAID_NODE = re.compile(r"^(?P<id>[A-Za-z][A-Za-z0-9_]*)(\[\[|\[\(|\[)\"[^\"]*\"(\]\]|\)\]|\])$")
_MERMAID_EDGE = re.compile(
    r"^(?P<a>[A-Za-z][A-Za-z0-9_]*) (-->|-\.->)"
    r"\|(\"[^\"]*\"|[A-Za-z ]+)\| (?P<b>[A-Za-z][A-Za-z0-9_]*)$"
)


def parse_mermaid(text: str) -> tuple[set[str], list[tuple[str, str]], list[int]]:
    """Nodes, edges and linkStyle indexes; fails on any line a flowchart would not have."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    assert lines[0].startswith("%% ")
    assert lines[1] == "flowchart LR"
    nodes: set[str] = set()
    edges: list[tuple[str, str]] = []
    styled: list[int] = []
    depth = 0
    for line in lines[2:]:
        if line.startswith("subgraph "):
            depth += 1
            assert _MERMAID_NODE.match(line.removeprefix("subgraph ")), line
        elif line == "end":
            depth -= 1
            assert depth >= 0
        elif line.startswith("style "):
            assert line.split()[1] in nodes, line
        elif line.startswith("linkStyle "):
            styled.append(int(line.split()[1]))
        elif match := _MERMAID_EDGE.match(line):
            edges.append((match["a"], match["b"]))
        elif match := _MERMAID_NODE.match(line):
            assert match["id"] not in nodes, f"node {match['id']} defined twice"
            nodes.add(match["id"])
        else:
            pytest.fail(f"not a flowchart line: {line}")
    assert depth == 0, "a subgraph is not closed"
    return nodes, edges, styled


def test_mermaid_is_a_flowchart_with_every_flow(graph: FlowGraph) -> None:
    text = to_mermaid(graph, today=AFTER)
    nodes, edges, styled = parse_mermaid(text)
    for a, b in edges:
        assert a in nodes, a
        assert b in nodes, b
    assert styled == list(range(len(edges))), "one linkStyle per edge"
    flows = [(a, b) for a, b in edges if a.startswith("topic_") and b.startswith("subscriber_")]
    assert len(flows) == len(graph.flows)
    for flow in graph.flows:
        assert flow.legal_basis in text
    assert text.count('-.->|"') >= 2 + 4, "the two expired flows are dotted, as are the POSTs"


def test_labels_with_quotes_and_backslashes_survive_both_formats(graph: FlowGraph) -> None:
    odd = 'PKS "khusus" 1\\2025 <b>'
    flows = (replace(graph.flows[0], legal_basis=odd), *graph.flows[1:])
    strange = replace(graph, flows=flows)
    svg = ET.fromstring(render(strange, "svg", today=BEFORE))  # noqa: S314 (drawn here)
    (edge,) = [e for e in svg.iter() if e.get("id") == flow_element_id(flows[0].key)]
    assert odd in [t.text for t in edge.iter(f"{SVG}text")], "drawn as written"
    text = to_mermaid(strange, today=BEFORE)
    parse_mermaid(text)
    assert "PKS #quot;khusus#quot; 1\\2025 #lt;b#gt;" in text


def test_svg_is_well_formed_with_an_element_per_flow(graph: FlowGraph) -> None:
    root = ET.fromstring(render(graph, "svg", today=AFTER))  # noqa: S314 (drawn here)
    assert root.tag == f"{SVG}svg"
    by_id = {e.get("id"): e for e in root.iter() if e.get("id")}
    for flow in graph.flows:
        element = by_id[flow_element_id(flow.key)]
        classes = (element.get("class") or "").split()
        state = "expired" if flow.subscriber in EXPIRING else "unmeasured"
        assert {"edge", "flow", f"state-{state}"} <= set(classes)
    assert "legend" in by_id
    assert f"topic:{graph.topics[0].name}" in by_id
    dinkes = (by_id["subscriber:dinkes-penduduk"].get("class") or "").split()
    assert dinkes == ["node", "subscriber", "state-expired"]
    dinsos = (by_id["subscriber:dinsos-penduduk"].get("class") or "").split()
    assert dinsos == ["node", "subscriber", "state-unmeasured"]


def test_the_embeddable_svg_is_the_svg_element_alone(graph: FlowGraph) -> None:
    fragment = embeddable_svg(render(graph, "svg", today=BEFORE))
    assert fragment.startswith("<svg")
    assert "<?xml" not in fragment
    assert "<!DOCTYPE" not in fragment
    assert ET.fromstring(fragment).tag == f"{SVG}svg"  # noqa: S314 (drawn here)
    with pytest.raises(DiagramError, match="no <svg> element"):
        embeddable_svg(b"digraph {}")


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_MAGIC
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_png_is_a_png(graph: FlowGraph) -> None:
    width, height = png_size(render(graph, "png", today=BEFORE))
    assert width > 500
    assert height > 300


def test_text_formats_are_utf8_of_the_text(graph: FlowGraph) -> None:
    assert render(graph, "dot", today=BEFORE).decode() == to_dot(graph, today=BEFORE)
    assert render(graph, "mermaid", today=BEFORE).decode() == to_mermaid(graph, today=BEFORE)
    assert set(DIAGRAM_FORMATS) == {"svg", "png", "mermaid", "dot"}


def test_an_unknown_format_is_refused_naming_the_formats(graph: FlowGraph) -> None:
    with pytest.raises(ConfigError, match=r"format: 'jpg' is not a diagram format \(one of svg"):
        render(graph, "jpg", today=BEFORE)


def test_drawing_a_dot_source_is_what_render_draws_and_only_in_graphviz_formats(
    graph: FlowGraph,
) -> None:
    source = to_dot(graph, today=BEFORE)
    assert draw(source, "svg") == render(graph, "svg", today=BEFORE)
    with pytest.raises(ConfigError, match=r"format: 'dot' is not a format Graphviz draws here"):
        draw(source, "dot")


def test_the_cli_refuses_an_unknown_format(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["catalog", "diagram", "--format", "jpg"])
    assert exited.value.code == 2
    assert "--format: invalid choice: 'jpg'" in capsys.readouterr().err


def test_without_dot_installed_the_error_names_the_debian_package(
    graph: FlowGraph, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no 'dot' on this PATH
    with pytest.raises(DiagramError) as raised:
        render(graph, "svg", today=BEFORE)
    assert "graphviz" in (raised.value.fix or "")
    assert render(graph, "mermaid", today=BEFORE)  # text formats need no program


def test_the_cli_chooses_the_format_from_the_output_suffix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    starts = {"png": PNG_MAGIC, "svg": b"<?xml", "mmd": b"%% ", "dot": b"// "}
    for suffix, start in starts.items():
        out = tmp_path / f"flows.{suffix}"
        assert main(["catalog", "diagram", "--output", str(out), "--today", "2026-12-01"]) == 0
        data = out.read_bytes()
        assert data.startswith(start), suffix
        assert suffix != "mmd" or b"\nflowchart LR\n" in data
    assert "wrote" in capsys.readouterr().err


def test_the_cli_prints_to_stdout(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert main(["catalog", "diagram", "--format", "dot", "--today", "2027-01-01"]) == 0
    out = capsysbinary.readouterr().out.decode()
    assert out.startswith("// spbe-bus catalog diagram, expiry as of 2027-01-01")
    assert 'class="flow state-expired"' in out


def test_the_cli_refuses_a_bad_date(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["catalog", "diagram", "--today", "31-12-2026"])
    assert "--today: '31-12-2026' is not a date YYYY-MM-DD" in capsys.readouterr().err


def test_the_committed_readme_image_is_what_the_command_draws(catalog: Catalog) -> None:
    committed = (IMG / "catalog-flows.dot").read_text(encoding="utf-8")
    match = re.match(r"// spbe-bus catalog diagram, expiry as of (\d{4}-\d{2}-\d{2})\n", committed)
    assert match, "docs/img/catalog-flows.dot names the day it was drawn as of"
    drawn = to_dot(flow_graph(catalog), today=date.fromisoformat(match[1]))
    assert committed == drawn, (
        "docs/img is stale; regenerate: for f in dot svg png; do "
        "spbe-bus catalog diagram --output docs/img/catalog-flows.$f; done"
    )
    png_size((IMG / "catalog-flows.png").read_bytes())
    root = ET.fromstring((IMG / "catalog-flows.svg").read_bytes())  # noqa: S314 (ours)
    ids = {e.get("id") for e in root.iter()}
    assert {flow_element_id(f.key) for f in flow_graph(catalog).flows} <= ids
