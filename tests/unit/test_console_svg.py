"""The diagram the console puts into its page as live SVG keeps only drawing elements."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date

import pytest

from adapters.console.svg_safety import ALLOWED_ELEMENTS, SVG_NS, safe_svg
from bus.ops.catalog import default_catalog_path, load_catalog
from bus.ops.flow_diagram import DiagramError, embeddable_svg, flow_element_id, render
from bus.ops.flows import flow_graph

HOSTILE = """<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"
 onload="alert(1)" viewBox="0 0 10 10">
<script>alert(2)</script>
<g id="flow:x:y" class="edge flow state-ok" onclick="alert(3)" style="fill: url(https://evil.example/x)">
<title>a flow</title>
<a href="javascript:alert(4)" xlink:href="javascript:alert(5)"><path d="M0,0L1,1" fill="red"/></a>
<foreignObject><div xmlns="http://www.w3.org/1999/xhtml" onmouseover="alert(6)">x</div>
</foreignObject>
<image href="https://evil.example/i.png"/>
<set attributeName="onmouseover" to="alert(7)"/>
<rect width="1" height="1" fill="url(#grad)" stroke="url('https://evil.example/s')"/>
<text x="1" y="1">a &lt;label&gt;</text>
</g>
</svg>"""


def test_a_hostile_svg_loses_scripts_handlers_links_and_foreign_content() -> None:
    cleaned = safe_svg(HOSTILE)
    for gone in ("alert", "script", "foreignObject", "javascript", "href", "evil.example",
                 "<a", "image", "<set", "onload", "onclick", "style="):  # fmt: skip
        assert gone not in cleaned, gone
    root = ET.fromstring(cleaned)  # noqa: S314 (cleaned here)
    tags = {e.tag.removeprefix(f"{{{SVG_NS}}}") for e in root.iter()}
    assert tags <= ALLOWED_ELEMENTS
    assert tags == {"svg", "g", "title", "path", "rect", "text"}, "the drawing stays"
    (group,) = root.iter(f"{{{SVG_NS}}}g")
    assert (group.get("id"), group.get("class")) == ("flow:x:y", "edge flow state-ok")
    (rect,) = root.iter(f"{{{SVG_NS}}}rect")
    assert rect.get("fill") == "url(#grad)", "a reference into the same SVG is drawing"
    assert rect.get("stroke") is None
    (path,) = root.iter(f"{{{SVG_NS}}}path")
    assert path.get("d") == "M0,0L1,1", "an <a> is unwrapped, its drawing kept"
    (text,) = root.iter(f"{{{SVG_NS}}}text")
    assert text.text == "a <label>"
    assert "a &lt;label&gt;" in cleaned


@pytest.mark.parametrize(
    "svg",
    [
        "<html><body/></html>",
        '<svg xmlns="http://www.w3.org/2000/svg"><g>',
        '<!DOCTYPE svg [<!ENTITY x "y">]><svg xmlns="http://www.w3.org/2000/svg">&x;</svg>',
        "<svg><g/></svg>",
    ],
    ids=["not-svg", "not-well-formed", "entities", "no-namespace"],
)
def test_what_is_no_plain_svg_element_is_refused(svg: str) -> None:
    with pytest.raises(DiagramError):
        safe_svg(svg)


def test_the_real_diagram_keeps_every_flow_with_its_id_and_class() -> None:
    catalog, _ = load_catalog(default_catalog_path())
    graph = flow_graph(catalog)
    drawn = embeddable_svg(render(graph, "svg", today=date(2026, 12, 2)))
    assert "<a " in drawn, "Graphviz wraps edges in links: the case unwrapping is for"
    cleaned = safe_svg(drawn)
    assert "<a " not in cleaned
    root = ET.fromstring(cleaned)  # noqa: S314 (cleaned here)
    groups = {g.get("id"): g.get("class") or "" for g in root.iter(f"{{{SVG_NS}}}g")}
    assert graph.flows
    for flow in graph.flows:
        element = flow_element_id(flow.key)
        assert element in groups, element
        assert re.search(r"\bstate-\w+", groups[element]), groups[element]
    before = len(re.findall(r"<(path|polygon|polyline|text)\b", drawn))
    assert len(re.findall(r"<(path|polygon|polyline|text)\b", cleaned)) == before
