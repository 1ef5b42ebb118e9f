"""risk:simulation end to end: findings joined with KEV, EPSS and CVSS, ranked and explained, reproducibly."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES, CliResult
from tests.integration.bundle_helpers import read_members

Stella = Callable[..., CliResult]
TENANT = "acme-prod"  # the tenant the policy fixtures name
INPUTS = (
    FIXTURES / "kev" / "known_exploited_vulnerabilities.json",
    FIXTURES / "risk" / "epss-findings.csv",
    FIXTURES / "risk" / "GHSA-vwqx-4fm8-6qc9.osv.json",
    FIXTURES / "cve5" / "CVE-2021-44228.json",
    FIXTURES / "cve5" / "CVE-2024-3094.json",
    FIXTURES / "policy" / "snapshot-runtime-baseline.json",
    FIXTURES / "policy" / "findings-runtime-baseline.json",
)


def _members(bundle: Path) -> dict[str, bytes]:
    return {info.name: data for info, data in read_members(bundle)}


@pytest.fixture
def simulation(stella: Stella, tmp_path: Path) -> tuple[Path, str]:
    assert stella("import", "--quiet", "--tenant", TENANT, *INPUTS).code == 0
    assert stella("keys", "generate", "k").code == 0
    out = tmp_path / "sim.tar.zst"
    res = stella(
        "export", "run", "--tenant", TENANT, "--profile", "risk:simulation", "--key", "k", "--out", out, "--json"
    )
    assert res.code == 0, res.err
    run: Any = res.json()
    return out, str(run["runId"])


def test_findings_are_ranked_by_kev_epss_and_cvss_with_each_rank_explained(simulation: tuple[Path, str]) -> None:
    bundle, _ = simulation
    members = _members(bundle)
    report = json.loads(members["report/ranking.json"])
    assert report["basis"] == "findings"
    assert report["formula"]["expression"] == "score = 50 * kev + 10 * ransomware + 25 * epss + 15 * cvss / 10"
    assert report["sources"]["kev"]["catalogVersion"] == "2025.08.25"
    assert report["sources"]["epss"]["modelVersion"] == "v2025.03.14"
    items = report["items"]
    assert [(i["rank"], i["findingId"], i["score"]) for i in items] == [
        (1, "F-0001", 98.5895),  # KEV + ransomware + EPSS 0.94358 + CVSS 10.0
        (2, "F-0004", 70.378),  # KEV + EPSS 0.81512, no advisory gives it a CVSS score
        (3, "F-0002", 61.6865),  # GHSA -> CVE-2025-48384: KEV + EPSS 0.01746 + CVSS 7.5 (from the GHSA advisory)
        (4, "F-0003", 36.1528),  # not in KEV; ignored by the policy (VEX not_affected)
    ]
    first, second, third, last = items
    assert first["explanation"] == [
        "rank 1: score 98.59, the highest",
        "CISA KEV lists CVE-2021-44228 since 2021-12-10, due 2021-12-24 (+50.00)",
        "known ransomware campaign use: Known (+10.00)",
        "EPSS 0.94358 (percentile 0.99957) for CVE-2021-44228 (+23.59)",
        "CVSS base score 10.0 (CVSS_V3 from CVE-2021-44228) (+15.00)",
    ]
    assert first["factors"]["kev"] == {
        "listed": True,
        "cve": "CVE-2021-44228",
        "vulnerabilityName": "Apache Log4j2 Remote Code Execution Vulnerability",
        "dateAdded": "2021-12-10",
        "dueDate": "2021-12-24",
        "knownRansomwareCampaignUse": "Known",
        "points": 50,
    }
    assert second["explanation"][0] == "rank 2: score 70.38, below rank 1 (98.59)"
    assert "no CVSS base score among the advisories (+0.00)" in second["explanation"]
    assert third["vulnerabilityId"] == "GHSA-vwqx-4fm8-6qc9" and third["cves"] == ["CVE-2025-48384"]
    assert "CVSS base score 7.5 (CVSS_V3 from GHSA-vwqx-4fm8-6qc9) (+11.25)" in third["explanation"]
    assert last["explanation"][0] == "rank 4: score 36.15; ignored by the policy, so after rank 3"
    assert last["factors"]["kev"] == {"listed": False, "points": 0}
    assert last["explanation"][-1].startswith("the policy decided to ignore this finding: vendor VEX: not_affected")
    markdown = members["report/ranking.md"].decode()
    assert "| 1 | 98.59 | F-0001 | CVE-2021-44228 |" in markdown
    assert "| 3 | 61.69 | F-0002 | GHSA-vwqx-4fm8-6qc9 |" in markdown
    assert "### 4. F-0003 CVE-2024-3094 (score 36.15)" in markdown
    manifest = json.loads(members["export.json"])
    assert manifest["counts"] == {"rankedItems": 4, "kevListed": 3, "withEpss": 4}
    assert manifest["riskSimulation"]["report"] == "report/ranking.json"


def test_simulation_verifies_and_a_retry_is_byte_identical(
    stella: Stella, simulation: tuple[Path, str], tmp_path: Path
) -> None:
    bundle, run_id = simulation
    pub = tmp_path / "k.pub"
    assert stella("keys", "export-public", "k", "--out", pub).code == 0
    assert stella("verify", bundle, "--key", pub).code == 0
    shown: Any = stella("export", "show", run_id, "--json").json()
    assert [e["type"] for e in shown["events"]][:3] == ["planned", "started", "succeeded"]
    # Data imported after the run was planned does not change a retry: its inputs are pinned.
    assert stella("import", "--quiet", "--tenant", TENANT, FIXTURES / "epss" / "example-1.csv").code == 0
    again = tmp_path / "again.tar.zst"
    res = stella("export", "retry", run_id, "--key", "k", "--out", again)
    assert res.code == 0, res.err
    assert again.read_bytes() == bundle.read_bytes()


def test_without_findings_the_advisories_are_ranked(stella: Stella, tmp_path: Path) -> None:
    assert stella("import", "--quiet", *INPUTS[:5]).code == 0
    assert stella("keys", "generate", "k").code == 0
    out = tmp_path / "adv.tar.zst"
    assert stella("export", "run", "--profile", "risk:simulation", "--key", "k", "--out", out).code == 0
    report = json.loads(_members(out)["report/ranking.json"])
    assert report["basis"] == "advisories"
    assert [(i["vulnerabilityId"], i["score"]) for i in report["items"]] == [
        ("CVE-2021-44228", 98.5895),
        ("GHSA-vwqx-4fm8-6qc9", 61.6865),
        ("CVE-2024-3094", 36.1528),
    ]
    assert report["items"][1]["subject"] == "Debian:12/git"
    assert stella("export", "run", "--profile", "risk:simulation", "--provider", "kev", "--key", "k").code == 2
