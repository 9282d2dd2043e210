"""The diagram's SVG made safe to put into the page as live markup: drawing elements only.

The page inserts the coloured data-flow diagram as an ``<svg>`` element (console.js parses
it as XML and adopts it), so whatever the SVG holds becomes part of the page. Graphviz
draws it from the catalogue, and the page's Content-Security-Policy forbids inline script,
but a label that reached Graphviz from elsewhere, or a Graphviz that writes links, should
not be trusted to stay harmless. :func:`safe_svg` parses the SVG (``xml.etree``, after
refusing any DTD, so no entity can be declared) and writes it again with only:

- elements of the SVG namespace in :data:`ALLOWED_ELEMENTS`; an ``<a>`` is unwrapped (its
  drawing kept, the link dropped); any other element (``script``, ``foreignObject``,
  ``style``, ``image``, ``use``, ``animate``, ``set``, ...) is dropped with its content;
- attributes without a namespace (and ``xlink:title``), except any ``on...`` handler,
  any ``href``, a ``style`` holding ``url(``, and any value referring to a ``url(...)``
  other than an element of the same SVG (``url(#id)``).

Comments and processing instructions are dropped; text is escaped again.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Final
from xml.sax.saxutils import escape, quoteattr

from bus.ops.flow_diagram import DiagramError

__all__ = ["ALLOWED_ELEMENTS", "safe_svg"]

SVG_NS: Final = "http://www.w3.org/2000/svg"
XLINK_NS: Final = "http://www.w3.org/1999/xlink"
#: The drawing elements kept (in the SVG namespace).
ALLOWED_ELEMENTS: Final = frozenset(
    {
        "svg", "g", "title", "path", "polygon", "polyline", "ellipse", "text", "tspan",
        "rect", "line", "circle", "defs",
    }
)  # fmt: skip
#: Elements whose drawing is kept without them.
_UNWRAPPED: Final = frozenset({"a"})
_FOREIGN_URL = re.compile(r"url\(\s*['\"]?\s*(?!#)", re.IGNORECASE)
_MAX_SVG_CHARS: Final = 5_000_000
#: Any markup declaration but a comment or CDATA: no DTD, so no entity can be declared.
_DECLARATION = re.compile(r"<!(?!--|\[CDATA\[)")


def safe_svg(svg: str) -> str:
    """``svg`` (one ``<svg>`` element, as :func:`bus.ops.flow_diagram.embeddable_svg` gives)
    with only drawing elements and harmless attributes; DiagramError when it is no SVG."""
    if len(svg) > _MAX_SVG_CHARS or _DECLARATION.search(svg):
        raise DiagramError(
            "the diagram is not a plain SVG element (too large, or with a DTD or entities)",
            fix="pass the output of embeddable_svg(render(..., 'svg'))",
        )
    try:
        root = ET.fromstring(svg)  # noqa: S314 - no DTD passes the check above
    except ET.ParseError as exc:
        raise DiagramError(
            f"the diagram is not well-formed XML ({exc})",
            fix="pass the output of embeddable_svg(render(..., 'svg'))",
        ) from None
    if root.tag != f"{{{SVG_NS}}}svg":
        raise DiagramError(
            "the diagram's root is not an SVG <svg> element",
            fix="pass the output of embeddable_svg(render(..., 'svg'))",
        )
    out: list[str] = []
    _write(root, out, root=True)
    return "".join(out)


def _local(tag: str) -> str | None:
    """The local name of an SVG element, None for any other namespace (or none)."""
    prefix = f"{{{SVG_NS}}}"
    return tag[len(prefix) :] if isinstance(tag, str) and tag.startswith(prefix) else None


def _attributes(element: ET.Element, *, root: bool) -> str:
    kept: list[str] = []
    if root:
        kept += [f"xmlns={quoteattr(SVG_NS)}", f"xmlns:xlink={quoteattr(XLINK_NS)}"]
    for key, value in element.attrib.items():
        if key == f"{{{XLINK_NS}}}title":
            name = "xlink:title"
        elif key.startswith("{"):
            continue  # another namespace's attribute (xlink:href among them)
        else:
            name = key
        lowered = name.lower()
        if lowered.startswith("on") or "href" in lowered:
            continue
        if _FOREIGN_URL.search(value) or (lowered == "style" and "url(" in value.lower()):
            continue
        kept.append(f"{name}={quoteattr(value)}")
    return "".join(f" {a}" for a in kept)


def _write(element: ET.Element, out: list[str], *, root: bool = False) -> None:
    """Write ``element`` (kept, unwrapped or dropped) and its children; never its tail,
    which belongs to its parent."""
    name = _local(element.tag)
    if name in _UNWRAPPED:
        _children(element, out)
        return
    if name is None or name not in ALLOWED_ELEMENTS:
        return
    out.append(f"<{name}{_attributes(element, root=root)}>")
    _children(element, out)
    out.append(f"</{name}>")


def _children(element: ET.Element, out: list[str]) -> None:
    if element.text:
        out.append(escape(element.text))
    for child in element:
        _write(child, out)
        if child.tail:
            out.append(escape(child.tail))
