"""Real OSV records (tests/fixtures/osv-real) through `stella import` and the Trivy profiles: what the operator
is told at import, and the payload phase of `trivy:db` / `trivy:java-db` counting input documents one by one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.home import resolve_home
from services.export import ExportRequest, run_export
from tests.conftest import FIXTURES
from tests.integration.bundle_helpers import extract
from tests.integration.test_export_ux import Recorder
from verify.bbolt_check import read_bbolt

REAL = FIXTURES / "osv-real"
IMPORTABLE = sorted(p for p in REAL.glob("*.json") if p.name != "PYSEC-2021-424.json")


def test_import_accepts_lint_findings_as_warnings_and_names_lost_ranges(stella: Any) -> None:
    res = stella("import", REAL)
    assert res.code == 3  # one record is refused (a schema violation); the others are imported
    assert "PYSEC-2021-424.json" in res.err
    assert "'fixed: cb35df940a' is not a full-length commit hash" in res.err
    assert "PyPI/matrix-synapse ECOSYSTEM (introduced 0, fixed 1.41.1)" in " ".join(res.err.split())
    out = " ".join(res.out.split())
    assert "warning: /affected/0/ranges/0: the interval 'introduced: 0.23.0', 'fixed: 0.23.0' is empty" in out
    assert "warning: /affected/0/versions: 6 listed version(s) lie outside the entry's ranges" in out
    for doc in IMPORTABLE:
        assert doc.name in out
    assert "not distinct" not in res.out + res.err


def test_import_json_carries_the_warnings(stella: Any) -> None:
    res = stella("import", "--json", REAL / "RUSTSEC-2024-0399.json", REAL / "PYSEC-2022-42972.json")
    assert res.code == 0, res.err
    docs = {e["documentId"]: e for e in res.json_lines() if e.get("event") == "document"}
    assert docs["RUSTSEC-2024-0399"]["outcome"] == "imported"
    assert docs["RUSTSEC-2024-0399"]["warnings"] == [
        "/affected/0/ranges/0: the interval 'introduced: 0.23.0', 'fixed: 0.23.0' is empty, no version lies in it "
        "(osv-linter); the range's other intervals are imported"
    ]
    assert docs["PYSEC-2022-42972"]["warnings"] == [
        "/affected/0/ranges/0: the events are not in version order; evaluated in version order as OSV specifies, "
        "the affected intervals are: introduced 0.12.2, fixed 0.13.0"
    ]


def test_trivy_payload_phases_count_input_documents(stella: Any, tmp_path: Path) -> None:
    """trivy:db advances once per advisory document (the bar goes 1/N ... N/N, not 0/N plus a nested 0/?
    phase); trivy:java-db once per SBOM document."""
    assert stella("import", "--quiet", *IMPORTABLE, FIXTURES / "trivy" / "sbom").code == 0
    assert stella("keys", "generate", "k").code == 0
    home = resolve_home(None)

    built = Recorder()
    run = run_export(home, ExportRequest("default", "trivy:db", key="k", out=tmp_path / "db.tar.zst"), observer=built)
    assert run.input_count == len(IMPORTABLE)
    assert [phase for phase, _ in built.started if phase.startswith("trivy")] == []  # no nested phase
    assert dict(built.started)["payload"] == len(IMPORTABLE)
    steps = [detail for phase, units, detail in built.steps if phase == "payload" and units == 1]
    assert sorted(steps) == sorted(json.loads(p.read_bytes())["id"] for p in IMPORTABLE)

    java = Recorder()
    java_run = run_export(
        home, ExportRequest("default", "trivy:java-db", key="k", out=tmp_path / "java.tar.zst"), observer=java
    )
    assert java_run.input_count == 1 and dict(java.started)["payload"] == 1
    assert java.advanced["payload"] == 1


def test_the_built_db_holds_the_real_records_entries(stella: Any, tmp_path: Path) -> None:
    assert stella("import", "--quiet", *IMPORTABLE).code == 0
    assert stella("keys", "generate", "k").code == 0
    out = tmp_path / "db.tar.zst"
    assert stella("export", "run", "--profile", "trivy:db", "--key", "k", "--out", out).code == 0
    tree = tmp_path / "tree"
    tree.mkdir()
    extract(out, tree)
    root = read_bbolt(tree / "cache" / "db" / "trivy.db")
    go = root[b"go::StellaOps Export Center"]
    stdlib = json.loads(go[b"stdlib"][b"CVE-2023-45283"])
    # The touching intervals (1.20.11 and 1.21.4 each end one and start the next) are merged, in version order.
    assert stdlib["VulnerableVersions"] == ["<1.20.12", ">=1.21.0-0, <1.21.5"]
    assert "PatchedVersions" not in stdlib
    vulns = root[b"vulnerability"]
    assert json.loads(vulns[b"CVE-2026-34971"])["VendorSeverity"] == {"stellaops": 4}
    assert json.loads(vulns[b"CVE-2026-31812"])["VendorSeverity"] == {"stellaops": 3}
    assert json.loads(vulns[b"RUSTSEC-2026-0182"])["VendorSeverity"] == {"stellaops": 1}
