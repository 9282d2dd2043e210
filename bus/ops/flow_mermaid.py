"""The data-flow graph as a Mermaid flowchart (pure), for pages that render Mermaid.

:func:`bus.ops.flow_diagram.to_mermaid` decides each flow's state and label lines and calls
:func:`mermaid_flowchart`, so DOT and Mermaid say the same. Mermaid node ids allow letters,
digits and underscores only: each catalogue name gets a prefixed, sanitised id
(``topic_spbe_dukcapil_penduduk_v1``), made unique where two names sanitise alike.
Edges are coloured with ``linkStyle`` by their index; an expired flow is dotted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

from bus.ops.flows import FlowGraph, FlowState

__all__ = ["STATE_COLOURS", "mermaid_flowchart"]

#: One colour per state, for every format and its legend (``bus.ops.flow_diagram`` too).
STATE_COLOURS: Mapping[FlowState, str] = {
    FlowState.OK: "#2e7d32",
    FlowState.LAGGING: "#ef6c00",
    FlowState.DEAD_LETTERING: "#c62828",
    FlowState.EXPIRED: "#9e9e9e",
    FlowState.UNMEASURED: "#1565c0",
}

_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


class _Ids:
    """Mermaid-safe node ids, one per (kind, name), never two alike."""

    def __init__(self) -> None:
        self._ids: dict[tuple[str, str], str] = {}
        self._taken: set[str] = set()

    def __call__(self, kind: str, name: str) -> str:
        if (kind, name) not in self._ids:
            base = f"{kind}_{_UNSAFE.sub('_', name)}"
            candidate, n = base, 1
            while candidate in self._taken:
                n += 1
                candidate = f"{base}_{n}"
            self._taken.add(candidate)
            self._ids[(kind, name)] = candidate
        return self._ids[(kind, name)]


def _text(lines: list[str]) -> str:
    """A quoted Mermaid label: entity codes for quotes and angle brackets, <br/> lines."""
    safe = [
        line.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
        for line in lines
    ]
    return '"' + "<br/>".join(safe) + '"'


def mermaid_flowchart(
    graph: FlowGraph,
    states: Mapping[str, FlowState],
    labels: Mapping[str, list[str]],
    *,
    posts: Sequence[tuple[str, str, Sequence[str]]],
    header: str,
    short: Callable[[str], str],
) -> str:
    """``flowchart LR`` of ``graph``; ``states`` and ``labels`` are keyed by flow key;
    ``posts`` are (steward application, topic, short event types) of the REST clients' POSTs."""
    ids = _Ids()
    out = [f"%% {header}", "flowchart LR"]
    edges: list[str] = []  # linkStyle of each edge, by index
    lines: list[str] = []
    for steward in graph.stewards:
        out.append(f"  subgraph {ids('steward', steward.id)}[{_text([steward.id, steward.name])}]")
        out += [f"    {ids('app', p)}[[{_text([p])}]]" for p in steward.principals]
        out.append("  end")
    for topic in graph.topics:
        label = [topic.name, *(short(t) for t in topic.event_types), topic.classification.value]
        out.append(f"  {ids('topic', topic.name)}[({_text(label)})]")
        for steward in graph.stewards:
            if steward.id == topic.steward:
                for p in steward.principals:
                    lines.append(f"  {ids('app', p)} -->|publishes| {ids('topic', topic.name)}")
                    edges.append("stroke:#607d8b")
    by_opd: dict[str, list[str]] = {}
    for flow in graph.flows:
        names = by_opd.setdefault(flow.opd, [])
        if flow.subscriber not in names:
            names.append(flow.subscriber)
    for opd, names in by_opd.items():
        out.append(f"  subgraph {ids('receiver', opd)}[{_text([opd + ' (receives)'])}]")
        out += [f"    {ids('subscriber', n)}[{_text([n])}]" for n in names]
        out.append("  end")
    for flow in graph.flows:
        state = states[flow.key]
        arrow = "-.->" if state is FlowState.EXPIRED else "-->"
        lines.append(
            f"  {ids('topic', flow.topic)} {arrow}|{_text(labels[flow.key])}| "
            f"{ids('subscriber', flow.subscriber)}"
        )
        edges.append(f"stroke:{STATE_COLOURS[state]},stroke-width:2px")
    readers = [c for c in graph.api_clients if c.reads]
    if readers:
        out.append(f"  subgraph gateway[{_text(['REST gateway clients (GET)'])}]")
        out += [f"    {ids('client', c.client)}[[{_text([c.client, c.opd])}]]" for c in readers]
        out.append("  end")
    for client in readers:
        for name in client.reads:
            lines.append(f"  {ids('subscriber', name)} -.->|GET| {ids('client', client.client)}")
            edges.append("stroke:#6a1b9a")
    for principal, posted, types in posts:
        text = _text(["POST (REST gateway)", ", ".join(types)])
        lines.append(f"  {ids('app', principal)} -.->|{text}| {ids('topic', posted)}")
        edges.append("stroke:#6a1b9a")
    out.append(f"  subgraph legend[{_text(['flow state'])}]")
    for state, colour in STATE_COLOURS.items():
        node = f"state_{_UNSAFE.sub('_', state.value)}"
        out.append(f"    {node}[{_text([state.value])}]")
        out.append(f"    style {node} fill:{colour},color:#ffffff")
    out.append("  end")
    out += lines
    out += [f"  linkStyle {i} {style}" for i, style in enumerate(edges)]
    return "\n".join(out) + "\n"
