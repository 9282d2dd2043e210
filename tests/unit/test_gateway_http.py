"""The audit trail's outcome of an answer: its problem's name where it has one."""

from __future__ import annotations

from adapters.gateway.http import json_response, outcome_from, outcome_of
from adapters.gateway.problems import problem


def test_a_refusal_is_named_by_its_problem_document() -> None:
    doc = problem(403, "not-steward", "Not the steward", "only the steward may post it")
    assert outcome_from(403, doc) == "not-steward"


def test_an_answer_without_a_document_is_named_by_its_status() -> None:
    assert outcome_from(413, None) == "body-too-large"
    assert outcome_from(502, None) == "status-502"
    assert outcome_from(202, {"id": "x"}) == "ok"
    assert outcome_from(304, None) == "not-modified"


def test_a_response_is_named_by_its_status_alone() -> None:
    assert outcome_of(json_response(429, {})) == "rate-limited"
