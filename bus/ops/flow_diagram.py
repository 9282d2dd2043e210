"""Drawing the data-flow graph: Graphviz DOT, Mermaid, and SVG or PNG through Graphviz.

Stewards and their applications stand on the left, then the topics they publish, then each
subscription (grouped by its receiving OPD), then the REST gateway's clients. Every flow edge
carries its event types, classification, legal basis and expiry, and, when measured
(:mod:`bus.ops.flow_measures`), its events per day, lag and waiting dead letters. One colour
per :class:`~bus.ops.flows.FlowState`, explained by one legend; an expired subscription is
marked from ``today`` even without measures.

The SVG is meant to be embedded in a page (:func:`embeddable_svg` drops what precedes its
``<svg>`` element): each flow edge has the element id
:func:`flow_element_id` (``flow:<subscriber>:<topic>``) and the classes ``flow`` and
``state-<state>``; topics, applications, subscribers and clients have ids ``topic:<name>``,
``app:<principal>``, ``subscriber:<id>`` (with a ``state-<state>`` class per state among its
flows) and ``client:<id>`` (a REST client that reads;
one that posts is a steward application, whose POST edges leave its ``app:`` node).

SVG and PNG come from Debian's ``dot`` (package ``graphviz``) through the ``graphviz``
library; DOT and Mermaid text need nothing installed.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from datetime import date

import graphviz

from bus.errors import BusError, ConfigError
from bus.ops.flow_mermaid import STATE_COLOURS, mermaid_flowchart
from bus.ops.flows import Flow, FlowGraph, FlowMeasure, FlowState, flow_state

__all__ = [
    "DIAGRAM_FORMATS",
    "STATE_COLOURS",
    "DiagramError",
    "draw",
    "embeddable_svg",
    "flow_element_id",
    "render",
    "to_dot",
    "to_mermaid",
]

DIAGRAM_FORMATS = ("svg", "png", "mermaid", "dot")


_HEADER = "spbe-bus catalog diagram, expiry as of "
_TOPIC_FILL = "#eceff1"


class DiagramError(BusError):
    """The diagram could not be drawn (Graphviz missing or failing)."""


def flow_element_id(key: str) -> str:
    """The SVG element id of the flow whose :attr:`~bus.ops.flows.Flow.key` is ``key``."""
    return f"flow:{key}"


def _short(event_type: str) -> str:
    """``id.go.spbe.dukcapil.PendudukUpdated.v1`` -> ``PendudukUpdated.v1``."""
    return ".".join(event_type.split(".")[-2:])


def _state(
    flow: Flow, measures: Mapping[str, FlowMeasure] | None, today: date
) -> tuple[FlowState, FlowMeasure | None]:
    measure = None if measures is None else measures.get(flow.key)
    if flow.expires < today:
        return FlowState.EXPIRED, measure
    if measure is None:
        return flow_state(flow, lag=None, dead_letters=None, today=today, max_lag=0), None
    return measure.state, measure


def _rate(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def _flow_lines(flow: Flow, state: FlowState, measure: FlowMeasure | None) -> list[str]:
    via = " · projected" if flow.projected else ""
    lines = [
        ", ".join(_short(t) for t in flow.event_types),
        f"{flow.classification.value}{via}",
        flow.legal_basis,
        f"until {flow.expires.isoformat()}",
    ]
    if measure is not None:
        rate = "-" if measure.events_per_day is None else _rate(measure.events_per_day)
        lag = "-" if measure.lag is None else str(measure.lag)
        dead = "-" if measure.dead_letters is None else str(measure.dead_letters)
        lines.append(f"{rate} events/day · lag {lag} · dead letters {dead}")
    if state not in (FlowState.OK, FlowState.UNMEASURED):
        lines.append(state.value.upper())
    return lines


def _q(text: str) -> str:
    """A DOT double-quoted string of ``text``."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _label(lines: list[str]) -> str:
    return _q("\n".join(lines))


def _attrs(**values: str) -> str:
    return "[" + ", ".join(f"{k.rstrip('_')}={v}" for k, v in values.items()) + "]"


def _legend_dot(today: date) -> str:
    rows = "".join(
        f'<TR><TD BGCOLOR="{colour}" WIDTH="18"> </TD>'
        f'<TD ALIGN="LEFT">{html.escape(state.value)}</TD></TR>'
        for state, colour in STATE_COLOURS.items()
    )
    title = f"flow state<BR/>expiry as of {today.isoformat()}"
    table = (
        '<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="4">'
        f'<TR><TD COLSPAN="2"><B>{title}</B></TD></TR>{rows}</TABLE>'
    )
    return f'  "legend" [shape=plaintext, id="legend", class="legend", label=<{table}>];'


def to_dot(
    graph: FlowGraph, measures: Mapping[str, FlowMeasure] | None = None, *, today: date
) -> str:
    """The graph as Graphviz DOT; ``measures`` keyed by flow key colour and annotate flows."""
    out = [
        f"// {_HEADER}{today.isoformat()}",
        "digraph spbe_flows {",
        '  graph [rankdir=LR, id="spbe-flows", fontname="Helvetica", fontsize=11, '
        "nodesep=0.25, ranksep=1.1, newrank=true];",
        '  node [fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=9, arrowsize=0.7];',
        _legend_dot(today),
    ]
    for steward in graph.stewards:
        out.append(f"  subgraph {_q('cluster_steward_' + steward.id)} {{")
        out.append(
            f"    graph [label={_label([steward.id, steward.name])}, "
            f'id={_q("steward:" + steward.id)}, style="rounded", color="#607d8b"];'
        )
        for principal in steward.principals:
            name = "app:" + principal
            out.append(
                f"    {_q(name)} "
                + _attrs(shape="component", label=_q(principal), id_=_q(name), class_='"app"')
                + ";"
            )
        out.append("  }")
    for topic in graph.topics:
        name = "topic:" + topic.name
        lines = [topic.name, *(_short(t) for t in topic.event_types), topic.classification.value]
        attrs = _attrs(
            shape="box",
            style='"rounded,filled"',
            fillcolor=_q(_TOPIC_FILL),
            label=_label(lines),
            id_=_q(name),
            class_='"topic"',
        )
        out.append(f"  {_q(name)} {attrs};")
        for steward in graph.stewards:
            if steward.id == topic.steward:
                for principal in steward.principals:
                    out.append(
                        f"  {_q('app:' + principal)} -> {_q(name)} "
                        + _attrs(
                            label='"publishes"',
                            id_=_q(f"publish:{principal}:{topic.name}"),
                            class_='"publish"',
                        )
                        + ";"
                    )
    states = {f.key: _state(f, measures, today) for f in graph.flows}
    out += _subscribers_dot(graph, {k: s for k, (s, _) in states.items()})
    for flow in graph.flows:
        state, measure = states[flow.key]
        colour = _q(STATE_COLOURS[state])
        attrs = _attrs(
            label=_label(_flow_lines(flow, state, measure)),
            color=colour,
            fontcolor=colour,
            penwidth="1.0" if state is FlowState.EXPIRED else "2.0",
            style='"dashed"' if state is FlowState.EXPIRED else '"solid"',
            id_=_q(flow_element_id(flow.key)),
            class_=_q(f"flow state-{state.value}"),
            tooltip=_q(f"{flow.key} ({state.value})"),
        )
        out.append(
            f"  {_q('topic:' + flow.topic)} -> {_q('subscriber:' + flow.subscriber)} {attrs};"
        )
    out += _clients_dot(graph)
    out.append("}")
    return "\n".join(out) + "\n"


def _subscribers_dot(graph: FlowGraph, states: Mapping[str, FlowState]) -> list[str]:
    """One cluster per receiving OPD; a subscriber's classes name its flows' states."""
    out: list[str] = []
    by_opd: dict[str, list[str]] = {}
    for flow in graph.flows:
        names = by_opd.setdefault(flow.opd, [])
        if flow.subscriber not in names:
            names.append(flow.subscriber)
    for opd, names in by_opd.items():
        out.append(f"  subgraph {_q('cluster_receiver_' + opd)} {{")
        out.append(
            f"    graph [label={_q(opd + ' (receives)')}, id={_q('receiver:' + opd)}, "
            'style="rounded", color="#90a4ae"];'
        )
        for subscriber in names:
            name = "subscriber:" + subscriber
            found = [states[f.key] for f in graph.flows if f.subscriber == subscriber]
            classes = ["subscriber", *(f"state-{s.value}" for s in FlowState if s in found)]
            attrs = _attrs(
                shape="box", label=_q(subscriber), id_=_q(name), class_=_q(" ".join(classes))
            )
            out.append(f"    {_q(name)} {attrs};")
        out.append("  }")
    return out


def _clients_dot(graph: FlowGraph) -> list[str]:
    """Readers in one cluster on the right; a steward application's POSTs from its node."""
    out: list[str] = []
    readers = [c for c in graph.api_clients if c.reads]
    if readers:
        out += [
            f"  subgraph {_q('cluster_gateway')} {{",
            '    graph [label="REST gateway clients (GET)", id="gateway", '
            'style="rounded,dashed", color="#6a1b9a"];',
        ]
        for client in readers:
            name = "client:" + client.client
            attrs = _attrs(
                shape="component",
                label=_label([client.client, client.opd]),
                id_=_q(name),
                class_='"client"',
            )
            out.append(f"    {_q(name)} {attrs};")
        out.append("  }")
    for client in readers:
        for subscriber in client.reads:
            attrs = _attrs(
                label='"GET"',
                style='"dashed"',
                color='"#6a1b9a"',
                id_=_q(f"api-read:{client.client}:{subscriber}"),
                class_='"api-read"',
            )
            out.append(
                f"  {_q('subscriber:' + subscriber)} -> {_q('client:' + client.client)} {attrs};"
            )
    for principal, posted, types in _posts(graph):
        attrs = _attrs(
            label=_label(["POST (REST gateway)", ", ".join(types)]),
            style='"dashed"',
            color='"#6a1b9a"',
            fontcolor='"#6a1b9a"',
            id_=_q(f"api-post:{principal}:{posted}"),
            class_='"api-post"',
        )
        out.append(f"  {_q('app:' + principal)} -> {_q('topic:' + posted)} {attrs};")
    return out


def _posts(graph: FlowGraph) -> list[tuple[str, str, list[str]]]:
    """(client, topic, short event types) of every client's POSTs, grouped by topic."""
    topic_of = {t: topic.name for topic in graph.topics for t in topic.event_types}
    result: list[tuple[str, str, list[str]]] = []
    for client in graph.api_clients:
        posted: dict[str, list[str]] = {}
        for event_type in client.posts:
            posted.setdefault(topic_of[event_type], []).append(_short(event_type))
        result += [(client.client, topic, types) for topic, types in posted.items()]
    return result


def to_mermaid(
    graph: FlowGraph, measures: Mapping[str, FlowMeasure] | None = None, *, today: date
) -> str:
    """The graph as a Mermaid flowchart (for Markdown pages that render Mermaid)."""
    states = {f.key: _state(f, measures, today) for f in graph.flows}
    return mermaid_flowchart(
        graph,
        {k: s for k, (s, _) in states.items()},
        {k: _flow_lines(graph.flow(k), s, m) for k, (s, m) in states.items()},
        posts=_posts(graph),
        header=f"{_HEADER}{today.isoformat()}",
        short=_short,
    )


def render(
    graph: FlowGraph,
    fmt: str,
    measures: Mapping[str, FlowMeasure] | None = None,
    *,
    today: date,
) -> bytes:
    """The diagram in ``fmt`` (one of :data:`DIAGRAM_FORMATS`) as bytes (UTF-8 for text)."""
    makers: dict[str, Callable[[], str]] = {
        "dot": lambda: to_dot(graph, measures, today=today),
        "mermaid": lambda: to_mermaid(graph, measures, today=today),
    }
    if fmt in makers:
        return makers[fmt]().encode()
    if fmt not in DIAGRAM_FORMATS:
        raise ConfigError(
            f"format: {fmt!r} is not a diagram format (one of {', '.join(DIAGRAM_FORMATS)})",
            fix=f"choose --format {' | '.join(DIAGRAM_FORMATS)}",
        )
    return draw(to_dot(graph, measures, today=today), fmt)


def draw(dot_source: str, fmt: str) -> bytes:
    """``dot_source`` (what :func:`to_dot` gives) drawn by Graphviz as ``svg`` or ``png``;
    for a caller that has the DOT already (the console compares it to skip redrawing)."""
    if fmt not in ("svg", "png"):
        raise ConfigError(
            f"format: {fmt!r} is not a format Graphviz draws here (svg or png)",
            fix="choose svg or png; render() gives the text formats",
        )
    source = graphviz.Source(dot_source, engine="dot")
    try:
        drawn: bytes = source.pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise DiagramError(
            f"cannot draw {fmt}: Graphviz's 'dot' program is not installed",
            fix="install Debian's graphviz package (apt-get install graphviz), or use "
            "--format dot or mermaid, which need no program",
        ) from None
    except graphviz.CalledProcessError as exc:
        detail = (exc.stderr or b"").decode(errors="replace").strip()[:500]
        raise DiagramError(
            f"Graphviz's 'dot' failed to draw {fmt}: {detail or f'exit {exc.returncode}'}",
            fix="check the Graphviz installation ('dot -V'); report the catalogue if it persists",
        ) from None
    return drawn


def embeddable_svg(svg: bytes) -> str:
    """The ``<svg>`` element of a rendered SVG, without the XML declaration, DOCTYPE and
    comments before it, for inline use in an HTML page."""
    text = svg.decode()
    start = text.find("<svg")
    if start < 0:
        raise DiagramError(
            "not an SVG document: no <svg> element", fix="pass the bytes of render(..., 'svg')"
        )
    return text[start:]
