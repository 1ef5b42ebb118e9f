"""Spans: `export run --trace-file` writes OTLP JSON (checked against a schema built from the OTLP proto's field names)
whose spans nest and follow each other in time, and whose trace id is the run's correlation id, as in its log lines
and its timeline events; `export download` adds export.distribute to the same trace and its push time reaches the
metrics; while an incident is open, runs log at debug level and always write their spans."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # test-only dependency without stubs
import pytest

from tests.conftest import ROOT, require_tool

SAMPLES = ROOT / "samples"

_HEX = {"type": "string", "pattern": "^[0-9a-f]+$"}
_NANOS = {"type": "string", "pattern": "^[0-9]{1,20}$"}  # fixed64 in OTLP/JSON: a decimal string
_ANY_VALUE = {
    "type": "object",
    "minProperties": 1,
    "maxProperties": 1,
    "properties": {
        "stringValue": {"type": "string"},
        "boolValue": {"type": "boolean"},
        "intValue": {"type": "string", "pattern": "^-?[0-9]+$"},
        "doubleValue": {"type": "number"},
    },
    "additionalProperties": False,
}
_KEY_VALUE = {
    "type": "object",
    "required": ["key", "value"],
    "properties": {"key": {"type": "string"}, "value": _ANY_VALUE},
    "additionalProperties": False,
}
#: ExportTraceServiceRequest (opentelemetry/proto/collector/trace/v1) in OTLP's JSON encoding: lowerCamelCase field
#: names, trace and span ids as hex (not base64), enums as integers.
OTLP_TRACE_SCHEMA = {
    "type": "object",
    "required": ["resourceSpans"],
    "additionalProperties": False,
    "properties": {
        "resourceSpans": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["resource", "scopeSpans"],
                "additionalProperties": False,
                "properties": {
                    "resource": {
                        "type": "object",
                        "properties": {"attributes": {"type": "array", "items": _KEY_VALUE}},
                        "additionalProperties": False,
                    },
                    "schemaUrl": {"type": "string"},
                    "scopeSpans": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["scope", "spans"],
                            "additionalProperties": False,
                            "properties": {
                                "scope": {
                                    "type": "object",
                                    "required": ["name"],
                                    "properties": {"name": {"type": "string"}, "version": {"type": "string"}},
                                    "additionalProperties": False,
                                },
                                "schemaUrl": {"type": "string"},
                                "spans": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": [
                                            "traceId",
                                            "spanId",
                                            "name",
                                            "kind",
                                            "startTimeUnixNano",
                                            "endTimeUnixNano",
                                            "status",
                                        ],
                                        "additionalProperties": False,
                                        "properties": {
                                            "traceId": {**_HEX, "minLength": 32, "maxLength": 32},
                                            "spanId": {**_HEX, "minLength": 16, "maxLength": 16},
                                            "parentSpanId": {"type": "string", "pattern": "^([0-9a-f]{16})?$"},
                                            "traceState": {"type": "string"},
                                            "name": {"type": "string", "minLength": 1},
                                            "kind": {"type": "integer", "minimum": 0, "maximum": 5},
                                            "startTimeUnixNano": _NANOS,
                                            "endTimeUnixNano": _NANOS,
                                            "attributes": {"type": "array", "items": _KEY_VALUE},
                                            "status": {
                                                "type": "object",
                                                "properties": {
                                                    "code": {"type": "integer", "enum": [0, 1, 2]},
                                                    "message": {"type": "string"},
                                                },
                                                "additionalProperties": False,
                                            },
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        }
    },
}


def _spans(path: Path) -> dict[str, dict[str, Any]]:
    body = json.loads(path.read_text())
    jsonschema.validate(body, OTLP_TRACE_SCHEMA)
    spans = body["resourceSpans"][0]["scopeSpans"][0]["spans"]
    named = {s["name"]: s for s in spans}
    assert len(named) == len(spans)  # one span per name in these runs
    return named


def _window(span: dict[str, Any]) -> tuple[int, int]:
    start, end = int(span["startTimeUnixNano"]), int(span["endTimeUnixNano"])
    assert start <= end
    return start, end


def _inside(child: dict[str, Any], parent: dict[str, Any]) -> None:
    assert child["parentSpanId"] == parent["spanId"]
    (cs, ce), (ps, pe) = _window(child), _window(parent)
    assert ps <= cs and ce <= pe


@pytest.fixture
def keyed(stella: Any) -> None:
    assert stella("import", "--quiet", SAMPLES / "advisories").code == 0
    assert stella("keys", "generate", "k").code == 0


def _log_lines(home: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (home / "logs" / "stella.jsonl").read_text().splitlines()]


def test_run_spans_nest_in_order_and_share_the_id_with_logs_and_timeline(
    stella: Any, keyed: None, home: Path, tmp_path: Path
) -> None:
    trace, prom = tmp_path / "run.json", tmp_path / "m.prom"
    res = stella(
        "export", "run", "--profile", "json:raw", "--key", "k", "--out", tmp_path / "a.tar.zst",
        "--trace-file", trace, "--metrics-textfile", prom, "--json",
    )  # fmt: skip
    assert res.code == 0, res.err
    run = res.json()
    trace_id = run["correlationId"].replace("-", "")
    spans = _spans(trace)
    assert set(spans) == {"export.run", "export.plan", "export.fetch", "export.write", "export.sign"}
    root = spans["export.run"]
    assert root["parentSpanId"] == ""
    for name in ("export.plan", "export.fetch", "export.write"):
        _inside(spans[name], root)
    _inside(spans["export.sign"], spans["export.write"])  # signing happens while the bundle is written
    plan, fetch, write = (_window(spans[n]) for n in ("export.plan", "export.fetch", "export.write"))
    assert plan[1] <= fetch[0] and fetch[1] <= write[0]
    assert {s["traceId"] for s in spans.values()} == {trace_id}
    assert all(s["status"] == {"code": 1} for s in spans.values())
    root_attrs = {a["key"]: a["value"]["stringValue"] for a in root["attributes"]}
    assert root_attrs["stella.run_id"] == run["runId"] and root_attrs["stella.adapter"] == "json:raw"

    logged = [line for line in _log_lines(home) if line["run_id"] == run["runId"]]
    assert logged and {line["trace_id"] for line in logged} == {trace_id}
    timeline = stella("timeline", "list", "--run", run["runId"], "--json")
    assert timeline.code == 0, timeline.err
    events = timeline.json()["events"]
    assert events and {e["traceid"] for e in events} == {run["correlationId"]}
    assert {e["traceid"].replace("-", "") for e in events} == {trace_id}

    metrics = prom.read_text()
    assert 'exporter_plan_seconds_count{profile="json:raw"} 1.0' in metrics
    assert 'exporter_plan_seconds_bucket{le="+Inf",profile="json:raw"} 1.0' in metrics

    copied = tmp_path / "d.json"
    down = stella("export", "download", run["runId"], "--to", tmp_path / "copy.tar.zst", "--trace-file", copied)
    assert down.code == 0, down.err
    dspans = _spans(copied)
    assert set(dspans) == {"export.download", "export.distribute"}
    _inside(dspans["export.distribute"], dspans["export.download"])
    assert {s["traceId"] for s in dspans.values()} == {trace_id}
    assert _window(dspans["export.distribute"])[0] >= _window(root)[1]
    shown = stella("export", "show", run["runId"], "--json").json()
    pushes = [e["detail"] for e in shown["events"] if e["type"] == "distributed" and "push_seconds" in e["detail"]]
    assert len(pushes) == 1 and pushes[0]["type"] == "file" and pushes[0]["push_seconds"] >= 0
    assert stella("export", "metrics", "--textfile", prom).code == 0
    assert 'exporter_distribution_push_seconds_count{type="file"} 1.0' in prom.read_text()
    checked = subprocess.run(
        [require_tool("promtool"), "check", "metrics"], input=prom.read_text(), capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_failed_run_ends_its_spans_with_the_error(stella: Any, keyed: None, tmp_path: Path) -> None:
    trace = tmp_path / "t.json"
    res = stella(
        "export", "run", "--profile", "json:raw", "--key", "k", "--out", tmp_path / "a.tar.zst",
        "--encrypt-passphrase-file", tmp_path / "missing", "--trace-file", trace,
    )  # fmt: skip
    assert res.code == 3, res.err
    spans = _spans(trace)
    assert spans["export.run"]["status"] == {"code": 2, "message": "bad-input"}
    assert spans["export.plan"]["status"] == {"code": 1}  # planned; refused when its passphrase was read


def test_trace_file_in_a_missing_directory_is_refused(stella: Any, keyed: None, tmp_path: Path) -> None:
    res = stella(
        "export", "run", "--profile", "json:raw", "--key", "k", "--out", tmp_path / "a.tar.zst",
        "--trace-file", tmp_path / "nowhere" / "t.json",
    )  # fmt: skip
    assert res.code == 2 and "nowhere" in res.err
    assert not (tmp_path / "a.tar.zst").exists()


def test_during_an_incident_runs_log_debug_and_always_write_spans(
    stella: Any, keyed: None, home: Path, tmp_path: Path
) -> None:
    before = stella("export", "run", "--profile", "json:raw", "--key", "k", "--out", tmp_path / "a.tar.zst", "--json")
    assert before.code == 0, before.err
    assert not (home / "traces").exists()
    assert not [line for line in _log_lines(home) if line["level"] == "debug"]

    assert stella("incident", "start", "--reason", "drill", "--key", "k").code == 0
    during = stella("export", "run", "--profile", "json:raw", "--key", "k", "--out", tmp_path / "b.tar.zst", "--json")
    assert during.code == 0, during.err
    run = during.json()
    trace_id = run["correlationId"].replace("-", "")
    spans = _spans(home / "traces" / f"{trace_id}.export.run.json")
    assert {"export.run", "export.plan", "export.fetch", "export.write", "export.sign"} == set(spans)
    debug = [line for line in _log_lines(home) if line["level"] == "debug" and line["run_id"] == run["runId"]]
    assert {line["phase"] for line in debug} >= {"resolve", "adapter", "manifest", "sign"}
    assert any(line["level"] == "debug" and line["phase"] == "plan" for line in _log_lines(home))  # before its id

    assert stella("incident", "stop", "--reason", "over", "--key", "k").code == 0
    after = stella("export", "run", "--profile", "json:raw", "--key", "k", "--out", tmp_path / "c.tar.zst", "--json")
    assert after.code == 0
    assert sorted(p.name for p in (home / "traces").iterdir()) == [f"{trace_id}.export.run.json"]
    assert not [
        line for line in _log_lines(home) if line["level"] == "debug" and line["run_id"] == after.json()["runId"]
    ]


def test_an_incident_run_prunes_the_oldest_span_files_beyond_the_limit(
    stella: Any, keyed: None, home: Path, tmp_path: Path
) -> None:
    from services.tracing import KEEP_TRACE_FILES

    traces = home / "traces"
    traces.mkdir(mode=0o700)
    old = [traces / f"{n:032x}.export.run.json" for n in range(KEEP_TRACE_FILES + 5)]
    for n, path in enumerate(old):
        path.write_text("{}")
        os.utime(path, (1_600_000_000 + n, 1_600_000_000 + n))  # old[0] is the oldest
    notes = traces / "notes.txt"  # not a span file: never pruned
    notes.write_text("kept by hand\n")
    assert stella("incident", "start", "--reason", "drill", "--key", "k").code == 0
    run = stella("export", "run", "--profile", "json:raw", "--key", "k", "--out", tmp_path / "a.tar.zst", "--json")
    assert run.code == 0, run.err
    new = traces / f"{run.json()['correlationId'].replace('-', '')}.export.run.json"
    kept = set(traces.glob("*.json"))
    assert len(kept) == KEEP_TRACE_FILES
    assert new in kept
    assert kept == {new, *old[-(KEEP_TRACE_FILES - 1) :]}  # the six oldest went, the newest stayed
    assert notes.exists()


def test_the_home_setting_traces_every_run_and_a_bad_one_is_refused(
    stella: Any, keyed: None, home: Path, tmp_path: Path
) -> None:
    every = tmp_path / "every.json"
    (home / "tracing.json").write_text(json.dumps({"traceFile": str(every)}))
    res = stella("export", "run", "--profile", "json:raw", "--key", "k", "--out", tmp_path / "a.tar.zst", "--json")
    assert res.code == 0, res.err
    spans = _spans(every)
    assert {s["traceId"] for s in spans.values()} == {res.json()["correlationId"].replace("-", "")}
    (home / "tracing.json").write_text('{"traceFile": 5}')
    bad = stella("export", "run", "--profile", "json:raw", "--key", "k", "--out", tmp_path / "b.tar.zst")
    assert bad.code == 3 and "tracing.json" in bad.err
    assert not (tmp_path / "b.tar.zst").exists()


def test_a_scheduled_run_is_traced_and_logged_like_any_other(
    stella: Any, keyed: None, home: Path, tmp_path: Path
) -> None:
    every = tmp_path / "scheduled.json"
    (home / "tracing.json").write_text(json.dumps({"traceFile": str(every)}))
    added = stella("schedule", "add", "nightly", "--profile", "json:raw", "--key", "k", "--calendar", "daily 02:00")
    assert added.code == 0, added.err
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT02:30:00Z")
    fired = stella("schedule", "run-due", "--at", tomorrow, "--json")
    assert fired.code == 0, fired.err
    (firing,) = fired.json()["firings"]
    run = stella("export", "show", firing["runId"], "--json").json()
    trace_id = run["correlationId"].replace("-", "")
    spans = _spans(every)
    assert {"export.run", "export.plan", "export.fetch", "export.write", "export.sign"} == set(spans)
    assert {s["traceId"] for s in spans.values()} == {trace_id}
    planned = [line for line in _log_lines(home) if line["run_id"] == run["runId"] and line["phase"] == "plan"]
    assert planned and planned[0]["trace_id"] == trace_id
