"""A real push to an S3 server (moto) is the run's `distribute` phase: its log lines name the run and the phase, its
distributed event records the push time, the metrics show `exporter_distribution_push_seconds{type="s3"}`, and the
secret access key in the environment appears in none of them."""

# ruff: noqa: F811  (the fixtures imported from the S3 tests are parameters here)
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.interop.test_s3_distribution import _bucket, aws_env, moto_endpoint, s3  # noqa: F401  (fixtures)

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
SECRET = "stella-test-secret-do-not-print"  # the AWS_SECRET_ACCESS_KEY the aws_env fixture sets


def test_an_s3_push_is_timed_logged_and_leaks_no_key(
    stella: Any,
    moto_endpoint: str,
    s3: Any,
    home: Path,
    tmp_path: Path,
) -> None:
    assert stella("import", "--quiet", SAMPLES / "advisories").code == 0
    assert stella("keys", "generate", "k").code == 0
    run = stella("export", "run", "--profile", "json:raw", "--key", "k", "--out", tmp_path / "a.tar.zst", "--json")
    assert run.code == 0, run.err
    run_id = run.json()["runId"]
    bucket = _bucket(s3, "traced")
    pushed = stella(
        "--log-level", "debug", "distribute", run_id, "--to", f"s3://{bucket}/bundles",
        "--endpoint-url", moto_endpoint, "--path-style",
    )  # fmt: skip
    assert pushed.code == 0, pushed.err
    lines = [json.loads(line) for line in (home / "logs" / "stella.jsonl").read_text().splitlines()]
    phase = [line for line in lines if line["phase"] == "distribute" and line["run_id"] == run_id]
    assert any(line["message"].startswith("phase distribute done in ") for line in phase)
    shown = stella("export", "show", run_id, "--json")
    pushes = [e["detail"] for e in shown.json()["events"] if e["type"] == "distributed" and e["detail"]["type"] == "s3"]
    assert len(pushes) == 1 and pushes[0]["push_seconds"] > 0
    prom = tmp_path / "m.prom"
    assert stella("export", "metrics", "--textfile", prom).code == 0
    metrics = prom.read_text()
    assert 'exporter_distribution_push_seconds_count{type="s3"} 1.0' in metrics
    for text in ((home / "logs" / "stella.jsonl").read_text(), shown.out, metrics, pushed.out + pushed.err):
        assert SECRET not in text
