"""RFC 9457 problem documents: their members, their media type, and no submitted value in them."""

from __future__ import annotations

import json

import pytest

from adapters.gateway.problems import (
    PROBLEM_MEDIA_TYPE,
    PROBLEM_TYPE_BASE,
    field_errors,
    problem,
    problem_response,
)
from bus.contract.events import PendudukUpdated
from bus.contract.standard import example
from bus.errors import EventValidationError, FieldProblem


def test_a_document_has_the_standard_members_then_its_extensions() -> None:
    doc = problem(429, "rate-limited", "Too many requests", "wait 2 s", retry_after_s=2)
    assert doc == {
        "type": "urn:spbe:problem:rate-limited",
        "title": "Too many requests",
        "status": 429,
        "detail": "wait 2 s",
        "retry_after_s": 2,
    }
    assert doc["type"].startswith(PROBLEM_TYPE_BASE)


@pytest.mark.parametrize("status", [200, 302, 399, 600])
def test_a_status_that_is_not_an_http_error_is_refused(status: int) -> None:
    with pytest.raises(ValueError, match="400-599"):
        problem(status, "oops", "Oops", "no")


@pytest.mark.parametrize("name", ["", "Bad", "bad_token", "-bad", "bad-", "bad token"])
def test_a_name_that_is_not_lowercase_words_joined_by_dashes_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="lowercase words"):
        problem(400, name, "Bad", "bad")


def test_an_extension_may_not_replace_the_type() -> None:
    with pytest.raises(ValueError, match="may not replace"):
        problem(400, "bad-request", "Bad request", "no", type="about:blank")


def test_the_instance_member_may_be_given() -> None:
    doc = problem(404, "unknown-subject", "Unknown subject", "no such person", instance="urn:x")
    assert doc["instance"] == "urn:x"


def test_field_errors_list_field_problem_and_rule_in_order() -> None:
    problems = [
        FieldProblem("nik", "is not 16 digits", "NIK"),
        FieldProblem("agama", "is missing", "required field"),
    ]
    assert field_errors(problems) == [
        {"field": "nik", "problem": "is not 16 digits", "rule": "NIK"},
        {"field": "agama", "problem": "is missing", "rule": "required field"},
    ]


def test_a_response_serves_the_document_as_problem_json_with_its_status_and_headers() -> None:
    doc = problem(401, "invalid-token", "Invalid token", "the bearer token has expired")
    response = problem_response(doc, {"WWW-Authenticate": 'Bearer error="invalid_token"'})
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE == "application/problem+json"
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert json.loads(bytes(response.body)) == doc


def test_a_response_without_headers_has_only_its_own() -> None:
    response = problem_response(problem(503, "kafka-unavailable", "Try again", "later"))
    assert response.status_code == 503
    assert set(response.headers) == {"content-type", "content-length"}


@pytest.mark.parametrize("doc", [{}, {"status": "400"}, {"status": 200}, {"status": True}])
def test_a_mapping_that_is_not_a_problem_document_is_refused(doc: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="not a problem document"):
        problem_response(doc)


def test_a_422_for_an_invalid_event_carries_no_submitted_value() -> None:
    """The gateway's 422 for an event with a bad NIK, date and region code names each field,
    problem and rule, and none of the values the caller sent."""
    data = example("PendudukUpdated")
    data["nik"] = "327302570890000x"
    data["tanggal_lahir"] = "1990-02-31"
    data["alamat"]["kode_wilayah"] = "3273020003"
    with pytest.raises(EventValidationError) as caught:
        PendudukUpdated.from_json(data)
    doc = problem(
        422,
        "invalid-event",
        "The event is not valid",
        f"{len(caught.value.problems)} fields break their rules",
        errors=field_errors(caught.value.problems),
    )
    body = bytes(problem_response(doc).body).decode()
    assert {e["field"] for e in json.loads(body)["errors"]} >= {
        "nik",
        "tanggal_lahir",
        "alamat.kode_wilayah",
    }
    for submitted in (data["nik"], "1990-02-31", "3273020003", data["nama_lengkap"]):
        assert submitted not in body
