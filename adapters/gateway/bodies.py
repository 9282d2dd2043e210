"""The body of a posted event: UTF-8 JSON, one object, a valid event of the standard (pure).

:func:`parse_event` turns a request body into a typed event with the validation of
``spbe-bus events validate`` (:func:`bus.contract.validation.validate_json_event`), or
raises :class:`BodyRejected` carrying the RFC 9457 problem document to answer:

=====  ============================  =========================================================
400    ``not-utf-8``                 the body is not UTF-8 (the byte position is given)
400    ``malformed-json``            not JSON: line and column, never the text; also NaN,
                                     duplicate member names, numbers too long to read
400    ``not-an-object``             JSON, but not an object
404    ``unknown-event-type``        no such event in the data standard (``known`` lists them)
422    ``invalid-event``             ``errors``: one ``{field, problem, rule}`` per problem,
                                     exactly what ``events validate`` prints
=====  ============================  =========================================================

No document repeats a submitted value. :mod:`adapters.gateway.ingress` re-exports
:func:`parse_event` and :class:`BodyRejected`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NoReturn

from adapters.gateway.problems import problem
from bus.contract.events import SpbeEvent
from bus.contract.schema import AvroSchema
from bus.contract.standard import load_standard
from bus.contract.validation import known_event_names, validate_json_event
from bus.errors import ContractError, EventValidationError

__all__ = ["BodyRejected", "parse_event"]


class BodyRejected(ContractError):
    """A posted body is not a valid event; ``problem`` is the document to answer with."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        super().__init__(str(problem["detail"]))


class _Unreadable(Exception):
    """A JSON body Python would read but JSON does not allow, or cannot hold."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _Unreadable("an object holds the same member name twice")
    return result


def _no_constant(_name: str) -> NoReturn:
    raise _Unreadable("NaN and Infinity are not JSON numbers")


def _malformed(detail: str, **ext: Any) -> BodyRejected:
    return BodyRejected(400, problem(400, "malformed-json", "The body is not JSON", detail, **ext))


def _decode(body: bytes) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        title = "The body is not UTF-8"
        detail = f"byte {exc.start} of the body is not UTF-8; send JSON encoded as UTF-8"
        raise BodyRejected(400, problem(400, "not-utf-8", title, detail)) from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        detail = f"{exc.msg} at line {exc.lineno}, column {exc.colno}"
        raise _malformed(detail, line=exc.lineno, column=exc.colno) from None
    except _Unreadable as exc:
        raise _malformed(str(exc)) from None
    except (ValueError, RecursionError):  # a number over Python's digit limit; deep nesting
        raise _malformed("the body holds a number too long or nesting too deep to read") from None


def parse_event(
    event_name: str, body: bytes, *, standard: Mapping[str, AvroSchema] | None = None
) -> SpbeEvent:
    """The typed ``event_name`` event that ``body`` (JSON) is; :class:`BodyRejected` if not."""
    standard = load_standard() if standard is None else standard
    known = known_event_names(standard)
    if event_name not in known:
        title = "Unknown event type"
        detail = "the data standard has no event type of this name; post one of `known`"
        raise BodyRejected(404, problem(404, "unknown-event-type", title, detail, known=known))
    data = _decode(body)
    if not isinstance(data, dict):
        kind = "an array" if isinstance(data, list) else "not an object"
        title = "The body is not a JSON object"
        detail = f"the body is {kind}; an event is one JSON object of its fields"
        raise BodyRejected(400, problem(400, "not-an-object", title, detail))
    try:
        return validate_json_event(event_name, data, standard)
    except EventValidationError as exc:
        errors = [{"field": p.field, "problem": p.problem, "rule": p.rule} for p in exc.problems]
        count = len(errors)
        detail = f"{event_name} breaks {count} rule{'s' if count != 1 else ''} of the data standard"
        document = problem(422, "invalid-event", "The event is not valid", detail, errors=errors)
        raise BodyRejected(422, document) from None
