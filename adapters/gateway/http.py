"""Small HTTP helpers every gateway endpoint shares: bounded bodies, JSON answers, outcomes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

__all__ = ["BodyTooLarge", "json_response", "outcome_from", "outcome_of", "read_body"]


class BodyTooLarge(Exception):
    """The request body is larger than the gateway accepts (answered 413 / invalid_request)."""


async def read_body(request: Request, limit: int) -> bytes:
    """The body, read up to ``limit`` bytes: :class:`BodyTooLarge` past it, before parsing.

    A declared ``Content-Length`` over the limit is refused before anything is read; a
    chunked body is counted as it arrives.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def json_response(
    status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> Response:
    """``body`` as ``application/json`` with ``status`` and ``headers``."""
    return JSONResponse(dict(body), status_code=status, headers=dict(headers or {}))


_OUTCOMES = {
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    413: "body-too-large",
    415: "unsupported-media-type",
    429: "rate-limited",
}


def outcome_from(status: int, body: Mapping[str, Any] | None) -> str:
    """An answer's outcome for the audit trail: ``ok``, ``not-modified``, or the name of
    its problem document (``not-steward``), else a name for its status."""
    if status >= 400 and body is not None and isinstance(body.get("type"), str):
        return str(body["type"]).rsplit(":", 1)[-1]
    return _status_outcome(status)


def outcome_of(response: Response) -> str:
    """A response's outcome for the audit trail when its body is not at hand."""
    return _status_outcome(response.status_code)


def _status_outcome(status: int) -> str:
    if status < 300:
        return "ok"
    if status == 304:
        return "not-modified"
    return _OUTCOMES.get(status, f"status-{status}")
