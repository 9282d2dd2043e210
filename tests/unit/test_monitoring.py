"""deploy/monitoring: the rules pass promtool and their own tests, and speak the bus's metrics.

promtool comes from Debian's ``prometheus`` package (scripts/prepare-machine installs it).
Every series the rules and the dashboard name must be one a bus process really exports:
a renamed metric would otherwise leave an alert that can never fire.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY, CollectorRegistry

import adapters.gateway.audit  # registers spbe_gateway_audit_lost_total
import adapters.gateway.metrics  # noqa: F401  registers the gateway's request series
from bus.ops.metrics import BusMetrics

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "monitoring"
RULES = MONITORING / "alerts.yaml"
RULE_TESTS = MONITORING / "alerts.test.yaml"
SCRAPE = MONITORING / "prometheus.yml"
DASHBOARD = MONITORING / "grafana-dashboard.json"

#: Series Prometheus itself adds to every scrape target.
SCRAPE_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "gauge": ("",),
    "info": ("_info",),
}
# A metric name in PromQL, once strings, ranges, matchers and label lists are gone: any
# identifier but a function (before "(") or a keyword.
_NAME = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()")
_PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "offset", "bool", "le", "inf", "nan",
}  # fmt: skip


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is missing: install Debian's prometheus package")
    return found


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_promtool(), *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


def exported_series() -> set[str]:
    """Every sample name a bus process can export: BusMetrics, the gateway's, the process's."""
    names = set(SCRAPE_SERIES)
    for registry in (BusMetrics(CollectorRegistry()).registry, REGISTRY):
        for family in registry.collect():
            names.update(family.name + s for s in _SUFFIXES.get(family.type, ("",)))
            names.update(sample.name for sample in family.samples)
    return names


def series_in(expr: str) -> set[str]:
    """The metric names an expression selects (label values and matchers stripped)."""
    if found := re.fullmatch(r"\s*label_values\(\s*([^,)]+)\s*,\s*\w+\s*\)\s*", expr):
        return series_in(found.group(1))
    without_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    without_ranges = re.sub(r"\[[^\]]*\]", "", without_strings)
    without_groups = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", "", without_ranges)
    without_matchers = re.sub(r"\{[^}]*\}", "", without_groups)
    return {
        name
        for name in _NAME.findall(without_matchers)
        if name.lower() not in _PROMQL_WORDS and not re.fullmatch(r"\d+[smhdwy]?", name)
    }


def rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(RULES.read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def panels() -> list[dict[str, Any]]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


# --- promtool -------------------------------------------------------------------------------


def test_promtool_accepts_the_rules() -> None:
    result = _run("check", "rules", RULES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


def test_every_rule_passes_its_promtool_unit_tests() -> None:
    result = _run("test", "rules", RULE_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_rule_tests_catch_a_changed_threshold(tmp_path: Path) -> None:
    changed = RULES.read_text().replace("(spbe_consumer_lag) > 1000", "(spbe_consumer_lag) > 2000")
    assert changed != RULES.read_text()
    (tmp_path / "alerts.yaml").write_text(changed)
    shutil.copy(RULE_TESTS, tmp_path / "alerts.test.yaml")
    result = _run("test", "rules", tmp_path / "alerts.test.yaml")
    assert result.returncode != 0
    assert "alertname: SpbeConsumerLagHigh" in result.stdout + result.stderr


def test_promtool_accepts_the_scrape_config_and_finds_the_rule_file() -> None:
    result = _run("check", "config", SCRAPE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout + result.stderr


# --- the rules --------------------------------------------------------------------------------

REQUIRED_ALERTS = {
    "SpbeConsumerLagHigh": "spbe_consumer_lag",
    "SpbeDeadLettersGrowing": "spbe_dead_letters",
    "SpbeAdapterDown": "up",
    "SpbeStewardSilent": "spbe_published_total",
    "SpbeContractExpiringSoon": "spbe_subscription_expires_timestamp_seconds",
    "SpbeGatewayErrorRate": "spbe_gateway_requests_total",
}


def test_the_rules_cover_what_operators_asked_for() -> None:
    by_name = {rule["alert"]: rule for rule in rules()}
    for alert, series in REQUIRED_ALERTS.items():
        assert alert in by_name, f"no rule {alert}"
        assert series in series_in(by_name[alert]["expr"]), f"{alert} does not read {series}"
    assert "30 * 86400" in by_name["SpbeContractExpiringSoon"]["expr"]


def test_each_rule_has_a_severity_and_says_what_to_do() -> None:
    for rule in rules():
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert "spbe-bus" in rule["annotations"]["description"], rule["alert"]


def test_each_rule_is_tested_firing_and_not_firing() -> None:
    cases = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired: set[str] = set()
    quiet: set[str] = set()
    for case in cases:
        for check in case.get("alert_rule_test", []):
            (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in rules()}
    assert names <= fired, f"never tested firing: {sorted(names - fired)}"
    assert names <= quiet, f"never tested quiet: {sorted(names - quiet)}"


def test_every_series_the_rules_use_is_one_the_bus_exports() -> None:
    exported = exported_series()
    for rule in rules():
        used = series_in(rule["expr"])
        assert used, rule["alert"]
        assert used <= exported, f"{rule['alert']}: not exported: {sorted(used - exported)}"


def test_the_series_check_would_see_a_renamed_metric() -> None:
    assert series_in('sum by (topic) (rate(spbe_publishd_total{job=~"spbe-.*"}[5m])) > 0') == {
        "spbe_publishd_total"
    }
    assert "spbe_publishd_total" not in exported_series()
    assert "spbe_subscription_expires_timestamp_seconds" in exported_series()


# --- the dashboard ---------------------------------------------------------------------------


def test_the_dashboard_takes_its_datasource_as_an_input_variable() -> None:
    data = dashboard()
    assert [i["pluginId"] for i in data["__inputs"]] == ["prometheus"]
    variables = {v["name"]: v for v in data["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in panels():
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


def test_every_panel_has_targets_and_a_unique_id_and_its_own_place_in_the_grid() -> None:
    ids = [p["id"] for p in dashboard()["panels"]]
    assert len(ids) == len(set(ids))
    assert len(panels()) >= 10
    for panel in panels():
        assert panel["targets"], f"panel {panel['title']} has no query"
        assert all(t["expr"].strip() for t in panel["targets"]), panel["title"]
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])
    taken: dict[tuple[int, int], str] = {}
    for panel in dashboard()["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in taken, f"{panel['title']} overlaps {taken[(x, y)]}"
                taken[(x, y)] = panel["title"]


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    # promtool parses a recording rule's expression as Prometheus would the panel's query.
    queries = [t["expr"] for p in panels() for t in p["targets"]]
    recorded = [{"record": f"spbe:dashboard_query_{i}", "expr": q} for i, q in enumerate(queries)]
    rules_file = tmp_path / "dashboard-queries.yaml"
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": recorded}]}))
    result = _run("check", "rules", rules_file)
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump({"groups": [{"name": "d", "rules": [
        {"record": "spbe:broken", "expr": "sum by (topic (rate(spbe_published_total[5m]))"}
    ]}]}))  # fmt: skip
    assert _run("check", "rules", broken).returncode != 0


def test_every_series_the_dashboard_uses_is_one_the_bus_exports() -> None:
    exported = exported_series()
    used_anywhere: set[str] = set()
    for panel in panels():
        for target in panel["targets"]:
            used = series_in(target["expr"])
            assert used, f"{panel['title']}: {target['expr']}"
            assert used <= exported, f"{panel['title']}: not exported: {sorted(used - exported)}"
            used_anywhere |= used
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            assert series_in(variable["definition"]) <= exported
    bus_series = {n for n in exported if n.startswith("spbe_") and not n.endswith("_created")}
    shown = {n for n in used_anywhere if n.startswith("spbe_")}
    families = {re.sub(r"_(bucket|count|sum)$", "", n) for n in shown}
    missing = {n for n in bus_series if re.sub(r"_(bucket|count|sum)$", "", n) not in families}
    assert not missing, f"series no panel shows: {sorted(missing)}"


# --- the scrape config -----------------------------------------------------------------------


def test_every_reference_adapter_has_a_scrape_target_on_its_own_port() -> None:
    config = yaml.safe_load(SCRAPE.read_text())
    targets: dict[str, str] = {}
    for job in config["scrape_configs"]:
        assert re.fullmatch(r"spbe-[a-z]+", job["job_name"]), "SpbeAdapterDown reads job=~spbe-.*"
        for static in job["static_configs"]:
            for target in static["targets"]:
                targets[static["labels"]["adapter"]] = target
    files = {p.stem for p in (ROOT / "deploy" / "adapters").glob("*.yaml")}
    assert set(targets) == files
    assert len(set(targets.values())) == len(targets), "two adapters share a port"
    for name in ("contracts", "gateway"):
        port = targets[name].rsplit(":", 1)[1]
        adapter_file = ROOT / "deploy" / "adapters" / f"{name}.yaml"
        assert f"--metrics-port {port}" in adapter_file.read_text()
