"""The shipped Prometheus rules and Grafana dashboard (packaging/observability/): generated from the metric
definitions, accepted by promtool, and every alert fires and stays silent where its unit tests say."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

from services.metrics import METRICS, SLO_SECONDS, series_names
from tests.conftest import ROOT, require_tool

OBS = ROOT / "packaging" / "observability"
RULES = OBS / "stella-rules.yml"
DASHBOARD = OBS / "stella-dashboard.json"
RULE_TESTS = OBS / "tests" / "stella-rules.test.yml"
#: Names a PromQL expression may use that are not metric names.
PROMQL_WORDS = {"sum", "by", "rate", "increase", "histogram_quantile", "vector", "or", "and", "unless", "offset", "le"}


def _metric_names(expr: str) -> set[str]:
    """The series an expression reads: identifiers that are not functions, keywords, label names or recorded rules."""
    no_labels = re.sub(r"\{[^}]*\}", "", expr)
    no_groupings = re.sub(r"\bby \([^)]*\)", "", no_labels)
    no_windows = re.sub(r"\[[^]]*\]|\boffset \w+|\b[0-9][0-9.]*[smhd]?\b", "", no_groupings)
    names = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", no_windows))
    return {n for n in names if n not in PROMQL_WORDS and not n.startswith("stella:") and not n.startswith("__")}


def _rule_exprs() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def _dashboard_exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel["targets"]]


def test_the_committed_files_are_what_the_generator_writes() -> None:
    done = subprocess.run(
        [sys.executable, str(OBS / "generate.py"), "--check"], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr


def test_every_expression_reads_only_metrics_stella_defines() -> None:
    known = series_names()
    exprs = _rule_exprs() + _dashboard_exprs()
    used = set().union(*map(_metric_names, exprs))
    assert used, "the expressions read no metric at all?"
    assert used <= known, f"not defined in services/metrics.py: {sorted(used - known)}"
    shown = {n.removesuffix("_bucket") for n in used}
    unshown = {m.name for m in METRICS} - shown
    assert unshown <= {"exporter_active_runs", "exporter_metrics_written_timestamp_seconds"}, unshown


def test_the_slo_reads_the_exact_90_second_bucket() -> None:
    slo = [e for e in _rule_exprs() if "_bucket" in e and "le=" in e]
    assert slo and all(f'le="{SLO_SECONDS}"' in e and 'le="90"' not in e for e in slo)
    assert f"{SLO_SECONDS}" == "90.0"


def test_the_dashboard_uses_the_datasource_variable_everywhere() -> None:
    board = json.loads(DASHBOARD.read_text())
    titles = [p["title"] for p in board["panels"]]
    assert len(set(titles)) == len(titles)
    assert len({p["id"] for p in board["panels"]}) == len(titles)
    for panel in board["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}"
        assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])
    for words in ("Throughput", "percentiles", "Bundle size", "Failure ratio per profile", "Verification failures"):
        assert any(words in title for title in titles), words


def test_promtool_accepts_the_rules_and_every_dashboard_expression(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    checked = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # Grafana's interval variables become a plain window, then each panel query is checked as a recording rule.
    exprs = [e.replace("$__rate_interval", "5m") for e in _dashboard_exprs()]
    rules = {
        "groups": [{"name": "dashboard", "rules": [{"record": f"panel:{i}", "expr": e} for i, e in enumerate(exprs)]}]
    }
    panel_rules = tmp_path / "panels.yml"
    panel_rules.write_text(yaml.safe_dump(rules))
    checked = subprocess.run([promtool, "check", "rules", str(panel_rules)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in checked.stdout + checked.stderr


def test_promtool_rule_unit_tests_fire_and_stay_silent_as_expected() -> None:
    promtool = require_tool("promtool")
    tested = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    alerts = {a["alertname"] for t in tested for a in t.get("alert_rule_test", [])}
    shipped = {
        rule["alert"]
        for group in yaml.safe_load(RULES.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    assert alerts == shipped  # every alert has unit tests
    for name in shipped:  # ... that see it fire and see it stay silent
        cases = [a for t in tested for a in t.get("alert_rule_test", []) if a["alertname"] == name]
        assert any(c["exp_alerts"] for c in cases) and any(not c["exp_alerts"] for c in cases), name
    ran = subprocess.run([promtool, "test", "rules", str(RULE_TESTS)], capture_output=True, text=True)
    assert ran.returncode == 0, ran.stdout + ran.stderr


def test_a_wrong_threshold_makes_the_rule_unit_tests_fail(tmp_path: Path) -> None:
    """The unit tests can fail: with the failure-ratio limit at 50 % and the SLO bucket spelled le="90" they do."""
    promtool = require_tool("promtool")
    (tmp_path / "tests").mkdir()
    broken = RULES.read_text().replace("> 0.05\n", "> 0.5\n").replace('le="90.0"', 'le="90"')
    (tmp_path / RULES.name).write_text(broken)
    (tmp_path / "tests" / RULE_TESTS.name).write_text(RULE_TESTS.read_text())
    ran = subprocess.run(
        [promtool, "test", "rules", str(tmp_path / "tests" / RULE_TESTS.name)], capture_output=True, text=True
    )
    assert ran.returncode != 0
    assert "StellaExportFailureRateHigh" in ran.stdout + ran.stderr
    assert "StellaBundleSLOBurnFast" in ran.stdout + ran.stderr
