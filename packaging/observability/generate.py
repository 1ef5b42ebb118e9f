"""Generate the Prometheus rules and the Grafana dashboard shipped in packaging/observability/ from the metric
definitions in services/metrics.py, so the names in them are the names stella writes.

    python packaging/observability/generate.py          # rewrite stella-rules.yml and stella-dashboard.json
    python packaging/observability/generate.py --check  # exit 1 when a committed file differs from the generated one

The SLO: 95 % of export runs make their bundle available (succeed) within 90 s, over 30 days; its burn-rate alerts
use the multiwindow, multi-burn-rate pairs of the Google SRE workbook (1 h/5 m at 14.4 and 6 h/30 m at 6 page;
1 d/2 h at 3 and 3 d/6 h at 1 open a ticket). docs/operations.md explains every rule.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

from services.metrics import (
    BUNDLE_SIZE,
    DISTRIBUTION_PUSH,
    PLAN_SECONDS,
    RUN_BYTES,
    RUN_DURATION,
    RUN_FAILURES,
    RUNS,
    SLO_SECONDS,
    VERIFY,
)

HERE = Path(__file__).resolve().parent
RULES = HERE / "stella-rules.yml"
DASHBOARD = HERE / "stella-dashboard.json"

#: The SLO's target and its error budget.
SLO_TARGET = 0.95
BUDGET = round(1 - SLO_TARGET, 6)
#: (severity, long window, short window, burn rate): the workbook's table for a 30-day SLO.
BURN_WINDOWS = (
    ("page", "1h", "5m", 14.4),
    ("page", "6h", "30m", 6.0),
    ("ticket", "1d", "2h", 3.0),
    ("ticket", "3d", "6h", 1.0),
)
FAILURE_RATIO_LIMIT = 0.05
SLO_LE = f'le="{SLO_SECONDS}"'  # Prometheus spells bucket bounds as floats: le="90.0", never le="90"
#: Runs that count for the SLO: a cancelled run is the operator's choice, not a miss.
SLO_RUNS = 'outcome=~"succeeded|failed"'


def slow_ratio(window: str) -> str:
    """The share of runs in ``window`` whose bundle was not available within 90 s (failed, or slower)."""
    good = f'sum(rate({RUN_DURATION.name}_bucket{{outcome="succeeded",{SLO_LE}}}[{window}]))'
    total = f"sum(rate({RUNS.name}{{{SLO_RUNS}}}[{window}]))"
    return f"1 - ({good} or vector(0)) / {total}"


def rules() -> dict[str, Any]:
    windows = sorted({w for _, long, short, _ in BURN_WINDOWS for w in (long, short)}, key=_seconds)
    recording = [{"record": f"stella:bundle_slow:ratio_rate{w}", "expr": slow_ratio(w)} for w in windows]
    recording.append(
        {
            "record": "stella:run_failures:ratio_rate1h",
            "expr": f'sum by (profile) (rate({RUNS.name}{{outcome="failed"}}[1h]))'
            f" / sum by (profile) (rate({RUNS.name}[1h]))",
        }
    )
    alerts: list[dict[str, Any]] = []
    for severity in ("page", "ticket"):
        pairs = [
            f"(stella:bundle_slow:ratio_rate{long} > ({burn} * {BUDGET})"
            f" and stella:bundle_slow:ratio_rate{short} > ({burn} * {BUDGET}))"
            for sev, long, short, burn in BURN_WINDOWS
            if sev == severity
        ]
        alerts.append(
            {
                "alert": "StellaBundleSLOBurnFast" if severity == "page" else "StellaBundleSLOBurnSlow",
                "expr": " or ".join(pairs),
                "for": "2m" if severity == "page" else "15m",
                "labels": {"severity": severity, "slo": "bundle-available-90s"},
                "annotations": {
                    "summary": "export runs burn the 90 s bundle-availability error budget "
                    + ("fast" if severity == "page" else "steadily"),
                    "description": f"More than the budgeted {BUDGET:.0%} of runs failed or took longer than"
                    f" {SLO_SECONDS:g} s; see the run history with `stella export runs`.",
                },
            }
        )
    alerts += [
        {
            "alert": "StellaExportFailureRateHigh",
            "expr": f"stella:run_failures:ratio_rate1h > {FAILURE_RATIO_LIMIT}",
            "for": "10m",
            "labels": {"severity": "ticket"},
            "annotations": {
                "summary": "more than 5 % of {{ $labels.profile }} runs failed in the last hour",
                "description": f"See the failure classes: sum by (failure_class) ({RUN_FAILURES.name}).",
            },
        },
        {
            "alert": "StellaExportSlowerThanBaseline",
            "expr": f"histogram_quantile(0.5, sum by (le) (rate({RUN_DURATION.name}_bucket"
            f'{{outcome="succeeded"}}[1h]))) > histogram_quantile(0.95, sum by (le) (rate('
            f'{RUN_DURATION.name}_bucket{{outcome="succeeded"}}[1d] offset 1d)))',
            "for": "30m",
            "labels": {"severity": "ticket"},
            "annotations": {
                "summary": "the median export run of the last hour is slower than yesterday's 95th percentile",
            },
        },
        {
            "alert": "StellaSignatureVerificationFailed",
            # increase() needs two samples: the second line catches a series whose first sample already counts one.
            "expr": f'increase({VERIFY.name}{{result="signature"}}[15m]) > 0 or ({VERIFY.name}{{result="signature"}}'
            f' > 0 unless {VERIFY.name}{{result="signature"}} offset 15m)',
            "labels": {"severity": "page"},
            "annotations": {
                "summary": "`stella verify` rejected a bundle's signature",
                "description": "A received bundle is not signed by a trusted key: do not apply it.",
            },
        },
    ]
    return {
        "groups": [
            {"name": "stella-recording", "interval": "1m", "rules": recording},
            {"name": "stella-alerts", "rules": alerts},
        ]
    }


def _seconds(window: str) -> int:
    return int(window[:-1]) * {"m": 60, "h": 3600, "d": 86400}[window[-1]]


# -- the dashboard ---------------------------------------------------------------------------------

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"


def _panel(
    panel_id: int, title: str, targets: list[tuple[str, str]], unit: str, x: int, y: int, kind: str = "timeseries"
) -> dict[str, Any]:
    return {
        "id": panel_id,
        "type": kind,
        "title": title,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(targets)
        ],
    }


def dashboard() -> dict[str, Any]:
    duration = f'sum by (le) (rate({RUN_DURATION.name}_bucket{{outcome="succeeded"}}[{RATE}]))'
    panels = [
        _panel(
            1,
            "Throughput: finished runs by profile and outcome",
            [(f"sum by (profile, outcome) (rate({RUNS.name}[{RATE}]))", "{{profile}} {{outcome}}")],
            "ops",
            0,
            0,
        ),
        _panel(
            2,
            "Run duration percentiles (succeeded runs)",
            [(f"histogram_quantile({q}, {duration})", f"p{round(q * 100)}") for q in (0.5, 0.95, 0.99)],
            "s",
            12,
            0,
        ),
        _panel(
            3,
            "Bundle size",
            [
                (
                    f"histogram_quantile(0.5, sum by (le, profile) (rate({BUNDLE_SIZE.name}_bucket[{RATE}])))",
                    "median {{profile}}",
                ),
                (f"sum by (profile) (rate({RUN_BYTES.name}[{RATE}]))", "bytes/s {{profile}}"),
            ],
            "bytes",
            0,
            8,
        ),
        _panel(
            4,
            "Failure ratio per profile",
            [
                (
                    f'sum by (profile) (rate({RUNS.name}{{outcome="failed"}}[{RATE}]))'
                    f" / sum by (profile) (rate({RUNS.name}[{RATE}]))",
                    "{{profile}}",
                )
            ],
            "percentunit",
            12,
            8,
        ),
        _panel(
            5,
            "Failures by class",
            [(f"sum by (failure_class) (increase({RUN_FAILURES.name}[{RATE}]))", "{{failure_class}}")],
            "short",
            0,
            16,
        ),
        _panel(
            6,
            "Verification failures",
            [(f'sum by (result) (increase({VERIFY.name}{{result!="verified"}}[{RATE}]))', "{{result}}")],
            "short",
            12,
            16,
        ),
        _panel(
            7,
            "Bundle availability SLO: share of runs not available within 90 s",
            [(slow_ratio(w), w) for w in ("1h", "1d")],
            "percentunit",
            0,
            24,
        ),
        _panel(
            8,
            "Planner latency",
            [
                (
                    f"histogram_quantile({q}, sum by (le) (rate({PLAN_SECONDS.name}_bucket[{RATE}])))",
                    f"p{round(q * 100)}",
                )
                for q in (0.5, 0.95)
            ],
            "s",
            12,
            24,
        ),
        _panel(
            9,
            "Distribution latency by type (p95)",
            [
                (
                    f"histogram_quantile(0.95, sum by (le, type) (rate({DISTRIBUTION_PUSH.name}_bucket[{RATE}])))",
                    "{{type}}",
                )
            ],
            "s",
            0,
            32,
        ),
    ]
    return {
        "uid": "stella-exports",
        "title": "stella exports",
        "tags": ["stella"],
        "timezone": "utc",
        "refresh": "1m",
        "schemaVersion": 41,
        "editable": True,
        "time": {"from": "now-24h", "to": "now"},
        "annotations": {"list": []},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                }
            ]
        },
        "panels": panels,
    }


def rendered() -> dict[Path, str]:
    """Each generated file's text."""
    header = "# Generated by packaging/observability/generate.py from services/metrics.py: do not edit.\n"
    return {
        RULES: header + yaml.safe_dump(rules(), sort_keys=False, width=4096),
        DASHBOARD: json.dumps(dashboard(), indent=2) + "\n",
    }


def main(argv: list[str]) -> int:
    check = argv == ["--check"]
    stale = []
    for path, text in rendered().items():
        if check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"out of date: {', '.join(stale)} (run python packaging/observability/generate.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
