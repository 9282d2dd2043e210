"""RFC 9457 problem documents: how the gateway says what went wrong, as JSON.

    problem(422, "invalid-event", "The event is not valid",
            "2 fields break their rules", errors=field_errors(exc.problems))
    -> {"type": "urn:spbe:problem:invalid-event", "title": ..., "status": 422,
        "detail": ..., "errors": [{"field": ..., "problem": ..., "rule": ...}, ...]}

A document carries what the gateway wrote (the problem's name, title and detail, the
field, problem and rule of each broken rule), never a value the caller submitted: a NIK in
a request must not come back in an error, be logged by a proxy or cached by a client.
:func:`problem_response` serves one as ``application/problem+json``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.responses import JSONResponse

from bus.errors import FieldProblem

__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "PROBLEM_TYPE_BASE",
    "field_errors",
    "problem",
    "problem_response",
]

#: Every problem type is this URN followed by the problem's name.
PROBLEM_TYPE_BASE = "urn:spbe:problem:"
PROBLEM_MEDIA_TYPE = "application/problem+json"
#: The members built from the parameters; an extension may not replace one (``instance``,
#: the fifth member RFC 9457 defines, may be given as an extension).
_STANDARD_MEMBERS = frozenset({"type", "title", "status", "detail"})
_NAME = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")


def problem(status: int, name: str, title: str, detail: str, **extensions: Any) -> dict[str, Any]:
    """A problem document: ``type`` is :data:`PROBLEM_TYPE_BASE` + ``name`` (lowercase words
    joined by ``-``), ``status`` an HTTP error status (400-599), then any ``extensions``
    (e.g. ``errors=field_errors(problems)``, ``retry_after_s=3``, ``instance=...``).

    ``title`` is the same for every occurrence of the problem; ``detail`` says what is
    wrong with this request. Neither may quote what the caller sent.
    """
    if not 400 <= status <= 599:
        raise ValueError(f"status must be an HTTP error status (400-599), not {status}")
    if _NAME.fullmatch(name) is None:
        raise ValueError(f"name {name!r} must be lowercase words joined by '-', e.g. bad-token")
    replaced = _STANDARD_MEMBERS & extensions.keys()
    if replaced:
        raise ValueError(f"extensions may not replace the members {sorted(replaced)}")
    return {
        "type": PROBLEM_TYPE_BASE + name,
        "title": title,
        "status": status,
        "detail": detail,
        **extensions,
    }


def field_errors(problems: Iterable[FieldProblem]) -> list[dict[str, str]]:
    """The ``errors`` extension of a document: one ``{"field", "problem", "rule"}`` per
    broken rule, in the order given (as ``spbe-bus events validate`` lists them)."""
    return [{"field": p.field, "problem": p.problem, "rule": p.rule} for p in problems]


def problem_response(
    doc: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """``doc`` (from :func:`problem`) as a response with its status and the media type
    ``application/problem+json``; ``headers`` adds e.g. ``Retry-After`` or
    ``WWW-Authenticate``."""
    status = doc.get("status")
    if not isinstance(status, int) or not 400 <= status <= 599:
        raise ValueError("doc is not a problem document: build it with problem()")
    return JSONResponse(
        dict(doc), status_code=status, headers=dict(headers or {}), media_type=PROBLEM_MEDIA_TYPE
    )
