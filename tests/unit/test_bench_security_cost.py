"""The bench's security cost: its principals' grants, its figures and its report rows."""

from __future__ import annotations

from pathlib import Path

from bench.report import (
    GOALS,
    README_END,
    README_START,
    REPORTED,
    evaluate,
    markdown,
    update_readme,
)
from bench.security_cost import STEWARD, figures, grants, subscriber_ids
from bus.ops.access_plan import CLUSTER_RESOURCE, SCHEMAS_TOPIC
from bus.ops.principals import OPERATOR_PRINCIPAL

TOPIC = "bench.secured.1a2b3c4d"
SIZES = {"publish": 5000, "consume": 5000}


def measured() -> dict[str, object]:
    return figures(
        {"publish": [20000.0, 25000.0, 24000.0], "consume": [30000.0, 28000.0, 29000.0]},
        {"publish": [18000.0, 20000.0, 21600.0], "consume": [27000.0, 25200.0, 23200.0]},
        SIZES,
    )


def test_each_round_pairs_its_secured_figure_with_its_plaintext_one() -> None:
    cost = measured()
    publish = cost["publish"]
    assert isinstance(publish, dict)
    assert publish["events_per_round"] == 5000
    assert publish["plaintext"]["median"] == 24000.0
    assert publish["secured"]["median"] == 20000.0
    ratios = publish["ratio_secured_plaintext"]
    assert ratios["rounds"] == [0.9, 0.8, 0.9]
    assert (ratios["median"], ratios["min"], ratios["max"]) == (0.9, 0.8, 0.9)
    consume = cost["consume"]
    assert isinstance(consume, dict)
    assert consume["ratio_secured_plaintext"]["rounds"] == [0.9, 0.9, 0.8]


def test_a_failed_round_drops_out_of_both_sides_and_of_the_ratio() -> None:
    cost = figures(
        {"publish": [20000.0, None, 24000.0], "consume": [None, None, None]},
        {"publish": [10000.0, 20000.0, None], "consume": [30000.0, None, None]},
        SIZES,
    )
    publish = cost["publish"]
    assert publish["plaintext"]["rounds"] == [20000.0]
    assert publish["secured"]["rounds"] == [10000.0]
    assert publish["ratio_secured_plaintext"]["rounds"] == [0.5]
    assert "consume" not in cost  # no round measured on both sides


def test_the_principals_get_what_catalog_apply_would_give_and_are_not_super_users() -> None:
    subscribers = subscriber_ids("1a2b3c4d", 3)
    assert len(set(subscribers)) == 3
    acls = grants(TOPIC, STEWARD, subscribers)
    users = {entry.user for entry in acls}
    assert users == {STEWARD, *subscribers}
    assert OPERATOR_PRINCIPAL not in users  # a super user would skip ACL evaluation
    steward = {(e.resource_type, e.resource_name, e.operation) for e in acls if e.user == STEWARD}
    assert steward == {
        ("CLUSTER", CLUSTER_RESOURCE, "IDEMPOTENT_WRITE"),
        ("TOPIC", TOPIC, "WRITE"),
        ("TOPIC", TOPIC, "DESCRIBE"),
        ("TOPIC", SCHEMAS_TOPIC, "READ"),
        ("TOPIC", SCHEMAS_TOPIC, "DESCRIBE"),
    }
    first = subscribers[0]
    reader = {(e.resource_type, e.resource_name, e.operation) for e in acls if e.user == first}
    assert ("GROUP", first, "READ") in reader
    assert ("TOPIC", TOPIC, "READ") in reader
    assert ("TOPIC", f"{TOPIC}.dlq.{first}", "WRITE") in reader
    assert not any(op == "WRITE" and name == TOPIC for _, name, op in reader)
    assert all(e.permission == "ALLOW" and e.pattern_type == "LITERAL" for e in acls)


def test_the_report_has_a_security_cost_table_with_both_ratios() -> None:
    text = markdown({"started": "2026-12-01T00:00:00+00:00", "mode": "quick", **_with_cost()})
    assert "| Security cost (events/s, median of rounds) | median | min | max |" in text
    assert "| publish plaintext: bus Publisher.publish_many | 24,000 | 20,000 | 25,000 |" in text
    assert "| publish secured: bus Publisher.publish_many | 20,000 | 18,000 | 21,600 |" in text
    assert "| publish: ratio secured / plaintext | 0.90 | 0.80 | 0.90 |" in text
    assert "| consume secured: bus Subscriber (no-op handler) | 25,200 | 23,200 | 27,000 |" in text
    assert "| consume: ratio secured / plaintext | 0.90 | 0.80 | 0.90 |" in text
    assert "not super users" in text
    assert "events per round: publish 5,000, consume 5,000" in text
    assert "one round's secured figure over the same round's plaintext one" in text


def test_the_ratios_are_listed_with_the_goals_without_a_verdict() -> None:
    results = _with_cost()
    judged = {j["goal"]: j for j in evaluate(results)}
    publish = judged["security cost: publish secured / plaintext"]
    assert (publish["measured"], publish["verdict"], publish["target"]) == (0.9, REPORTED, None)
    text = markdown({"started": "x", "mode": "quick", **results, "goals": evaluate(results)})
    assert f"| security cost: consume secured / plaintext | 0.90 | {REPORTED} |" in text


def test_goal_paths_without_a_target_read_what_the_bench_writes() -> None:
    results = _with_cost()
    unjudged = [g for g in GOALS if g.target is None and g.path[0] == "security_cost"]
    assert unjudged
    assert all(g.judge(results)["measured"] is not None for g in unjudged)


def test_a_run_without_the_secured_step_reports_neither_table_nor_figure() -> None:
    text = markdown({"started": "x", "mode": "quick", "security_cost": {}})
    assert "Security cost" not in text
    judged = {j["goal"]: j for j in evaluate({})}
    assert judged["security cost: publish secured / plaintext"]["verdict"] == "not measured"


def test_a_full_run_puts_both_ratios_into_the_readme(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n{README_START}\nold\n{README_END}\n")
    results = {"started": "2026-12-01T00:00:00+00:00", "mode": "full", **_with_cost()}
    assert update_readme({**results, "goals": evaluate(results)}, readme)
    text = readme.read_text()
    assert "| publish: ratio secured / plaintext | 0.90 |" in text
    assert "| consume: ratio secured / plaintext | 0.90 |" in text


def _with_cost() -> dict[str, object]:
    return {"security_cost": measured()}
