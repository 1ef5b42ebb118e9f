"""Metrics: real runs and verifications write a node_exporter textfile that promtool accepts, whose counters are
rebuilt from the store (they accumulate across runs; an edited file is not carried forward), and on whose series the
signature alert fires after a `stella verify` that fails on a bad signature."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, require_tool

SAMPLES = ROOT / "samples"
RULES = ROOT / "packaging" / "observability" / "stella-rules.yml"


def _value(text: str, series: str) -> float:
    """The value of one exact series line (name and labels as written) in a textfile."""
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{series} not in the textfile")


@pytest.fixture
def signed(stella: Any, tmp_path: Path) -> Path:
    """A home with the sample advisories and a key k; returns k's public key."""
    assert stella("import", "--quiet", SAMPLES / "advisories").code == 0
    assert stella("keys", "generate", "k").code == 0
    pub = tmp_path / "k.pub"
    assert stella("keys", "export-public", "k", "--out", pub).code == 0
    return pub


def _run(stella: Any, out: Path, *extra: str | Path) -> Any:
    return stella("export", "run", "--profile", "json:raw", "--key", "k", "--out", out, *extra)


def test_the_textfile_of_real_runs_passes_promtool_and_accumulates(stella: Any, signed: Path, tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    prom = tmp_path / "stella.prom"
    assert _run(stella, tmp_path / "a.tar.zst", "--metrics-textfile", prom).code == 0
    first = prom.read_text()
    checked = subprocess.run([promtool, "check", "metrics"], input=first, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    runs = 'exporter_runs_total{outcome="succeeded",profile="json:raw"}'
    assert _value(first, runs) == 1
    slo_bucket = 'exporter_run_duration_seconds_bucket{le="90.0",outcome="succeeded",profile="json:raw"}'
    assert _value(first, slo_bucket) == 1  # 90 is an exact bucket boundary, spelled le="90.0"
    size = (tmp_path / "a.tar.zst").stat().st_size
    assert _value(first, 'exporter_run_bytes_total{profile="json:raw"}') == size
    assert _value(first, 'exporter_active_runs{tenant="default"}') == 0

    # Someone edits the file between runs; the next run rebuilds it from the store, not from what the file says.
    prom.write_text(first.replace(f"{runs} 1.0", f"{runs} 1000.0"))
    assert _run(stella, tmp_path / "b.tar.zst", "--metrics-textfile", prom).code == 0
    second = prom.read_text()
    assert _value(second, runs) == 2
    assert (
        _value(second, 'exporter_run_bytes_total{profile="json:raw"}') == size + (tmp_path / "b.tar.zst").stat().st_size
    )
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left beside it


#: A child that runs `stella export run` and kills itself while writing the archive (argv: home, out).
_KILLED_EXPORT = """
import os, signal, sys
import core.archive.writer as writer
from app.cli import main

home, out = sys.argv[1:]

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

writer._write_tar = die
os.environ["STELLA_HOME"] = home
main(["export", "run", "--profile", "json:raw", "--key", "k", "--out", out])
"""


def test_a_failed_run_is_counted_with_its_class(stella: Any, signed: Path, home: Path, tmp_path: Path) -> None:
    prom = tmp_path / "stella.prom"
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_EXPORT, str(home), str(tmp_path / "a.tar.zst")], cwd=ROOT, capture_output=True
    )
    assert killed.returncode < 0, killed.stderr
    # The next run finds the dead one, fails it (class transient) and counts both.
    assert _run(stella, tmp_path / "b.tar.zst", "--metrics-textfile", prom).code == 0
    text = prom.read_text()
    assert _value(text, 'exporter_runs_total{outcome="failed",profile="json:raw"}') == 1
    assert _value(text, 'exporter_runs_total{outcome="succeeded",profile="json:raw"}') == 1
    failures = 'exporter_run_failures_total{error_code="interrupted",failure_class="transient",profile="json:raw"}'
    assert _value(text, failures) == 1
    # A run refused before it starts (its output exists: exit 2) is no failed run.
    assert _run(stella, tmp_path / "b.tar.zst", "--metrics-textfile", prom).code == 2
    assert _value(prom.read_text(), failures) == 1


def test_the_home_setting_makes_every_run_write_the_file(stella: Any, signed: Path, tmp_path: Path) -> None:
    prom = tmp_path / "node-exporter" / "stella.prom"
    prom.parent.mkdir()
    res = stella("export", "metrics", "--set-textfile", prom)
    assert res.code == 0, res.err
    assert _value(prom.read_text(), 'exporter_verify_total{result="verified"}') == 0
    assert _run(stella, tmp_path / "a.tar.zst").code == 0
    assert _value(prom.read_text(), 'exporter_runs_total{outcome="succeeded",profile="json:raw"}') == 1
    printed = stella("export", "metrics")
    assert printed.code == 0
    assert 'exporter_runs_total{outcome="succeeded",profile="json:raw"} 1.0' in printed.out
    assert stella("export", "metrics", "--unset-textfile").code == 0
    assert _run(stella, tmp_path / "b.tar.zst").code == 0
    assert _value(prom.read_text(), 'exporter_runs_total{outcome="succeeded",profile="json:raw"}') == 1  # untouched


def test_a_textfile_not_ending_in_prom_is_refused_before_the_run(stella: Any, signed: Path, tmp_path: Path) -> None:
    res = _run(stella, tmp_path / "a.tar.zst", "--metrics-textfile", tmp_path / "stella.txt")
    assert res.code == 2
    assert ".prom" in res.err
    assert stella("export", "runs", "--json").json()["runs"] == []


def test_signature_alert_fires_on_the_series_of_a_failed_verify(stella: Any, signed: Path, tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    bundle = tmp_path / "a.tar.zst"
    prom = tmp_path / "stella.prom"
    assert _run(stella, bundle).code == 0
    good = stella("verify", bundle, "--key", signed, "--metrics-textfile", prom)
    assert good.code == 0, good.err
    before = prom.read_text()
    assert stella("keys", "generate", "other").code == 0
    other = tmp_path / "other.pub"
    assert stella("keys", "export-public", "other", "--out", other).code == 0
    bad = stella("verify", bundle, "--key", other, "--metrics-textfile", prom)
    assert bad.code == 5, bad.err
    after = prom.read_text()
    checked = subprocess.run([promtool, "check", "metrics"], input=after, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    series = 'exporter_verify_total{result="signature"}'
    assert (_value(before, series), _value(after, series)) == (0, 1)
    assert _value(after, 'exporter_verify_total{result="verified"}') == 1

    # The two scrapes, a minute apart, as Prometheus would store them; the shipped alert rule evaluated on them.
    lines = []
    for line in after.splitlines():
        m = re.match(r"^(exporter_verify_total\{[^}]*\}) (\S+)$", line)
        if m:
            lines.append(
                f"      - series: '{m.group(1)}'\n        values: '{_value(before, m.group(1))} {m.group(2)}x5'"
            )
    test = tmp_path / "scraped.test.yml"
    test.write_text(
        f"rule_files: ['{RULES}']\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n"
        + "\n".join(lines)
        + "\n    alert_rule_test:\n      - eval_time: 2m\n        alertname: StellaSignatureVerificationFailed\n"
        + "        exp_alerts:\n          - exp_labels: {severity: page, result: signature}\n"
        + "            exp_annotations:\n"
        + '              summary: "`stella verify` rejected a bundle\'s signature"\n'
        + "              description: 'A received bundle is not signed by a trusted key: do not apply it.'\n"
    )
    ran = subprocess.run([promtool, "test", "rules", str(test)], capture_output=True, text=True)
    assert ran.returncode == 0, ran.stdout + ran.stderr
