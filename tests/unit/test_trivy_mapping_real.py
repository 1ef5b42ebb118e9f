"""Real OSV records (PyPA, Go vulndb, RustSec; tests/fixtures/osv-real/SOURCES.md) through the importer's parser and
the Trivy mapping: what is accepted, what the import warns about, and the exact Trivy entries written.

The cases are the classes of issue 21, found by a differential run of real Trivy against an OSV oracle:
valid records refused by a lint rule, fixes of one interval hiding another interval's versions, listed
``versions`` dropped, and CVSS v4-only records reaching Trivy without a severity.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from adapters.profiles._trivy_mapping import TrivyDbModel
from adapters.sources.osv import OSV
from core.errors import SchemaError
from core.sources import Candidate

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "osv-real"
OURS = "StellaOps Export Center"


def _parse(name: str) -> tuple[dict[str, Any], list[str]]:
    """The record as the store hands it to the mapping (``_records.ADVISORIES``' shape), and the warnings."""
    parsed = OSV.parse(Candidate(path=str(REAL / name), data=(REAL / name).read_bytes()))
    (adv,) = parsed.advisories
    record = {
        "advisoryId": adv.advisory_id,
        "aliases": adv.aliases,
        "summary": adv.summary,
        "severities": [
            {"type": s.type, "score": s.score, "baseScore": s.base_score, "source": s.source} for s in adv.severities
        ],
        "affected": [
            {
                "ecosystem": r.ecosystem,
                "name": r.name,
                "purl": r.purl,
                "rangeType": r.range_type,
                "introduced": r.introduced,
                "fixed": r.fixed,
                "lastAffected": r.last_affected,
                "limit": r.limit,
                "versions": r.versions,
                "status": r.status,
            }
            for r in adv.affected
        ],
    }
    return record, parsed.warnings


def _db(*names: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(language and OS bucket values, vulnerability details) of a DB built from the named records."""
    model = TrivyDbModel()
    for name in names:
        model.add(_parse(name)[0])
    root = model.take_root()
    vulns = {k.decode(): json.loads(v) for k, v in root.pop(b"vulnerability").items()}
    root.pop(b"data-source")
    values = {
        bucket.decode(): {
            pkg.decode(): {vid.decode(): json.loads(v) for vid, v in entries.items()} for pkg, entries in pkgs.items()
        }
        for bucket, pkgs in root.items()
    }
    return values, vulns


# -- class 1: lint findings are warnings; schema violations still reject, naming what is lost -----------------


@pytest.mark.parametrize(
    ("name", "warnings"),
    [
        # 3.1.1 is introduced by one interval and fixed by another: no interval is empty, nothing to say.
        ("PYSEC-2022-236.json", []),
        # Out of version order: OSV's evaluation (events sorted by version, then walked) keeps [0.12.2, 0.13.0)
        # only, since "introduced 0.13.0" falls inside it and "fixed 0.14.0rc1" then closes nothing.
        (
            "PYSEC-2022-42972.json",
            [
                "/affected/0/ranges/0: the events are not in version order; evaluated in version order as OSV "
                "specifies, the affected intervals are: introduced 0.12.2, fixed 0.13.0"
            ],
        ),
        (
            "RUSTSEC-2024-0399.json",
            [
                "/affected/0/ranges/0: the interval 'introduced: 0.23.0', 'fixed: 0.23.0' is empty, no version lies "
                "in it (osv-linter); the range's other intervals are imported"
            ],
        ),
    ],
)
def test_records_the_schema_accepts_are_imported(name: str, warnings: list[str]) -> None:
    _, found = _parse(name)
    assert found == warnings


def test_a_short_git_commit_rejects_the_record_and_names_the_lost_version_ranges() -> None:
    with pytest.raises(SchemaError) as err:
        _parse("PYSEC-2021-424.json")
    assert err.value.pointer == "/affected/0/ranges/0/events/1"
    assert err.value.message == (
        "GIT range event 'fixed: cb35df940a' is not a full-length commit hash (the OSV schema requires 40 or 64 "
        "hex digits); the record's version ranges are not imported with it: "
        "PyPI/matrix-synapse ECOSYSTEM (introduced 0, fixed 1.41.1)"
    )


def test_formerly_rejected_records_reach_trivy_with_their_affected_versions() -> None:
    values, _ = _db("PYSEC-2022-236.json", "PYSEC-2022-42972.json", "RUSTSEC-2024-0399.json")
    pyspark = values[f"pip::{OURS}"]["pyspark"]["CVE-2022-33891"]["VulnerableVersions"]
    # 3.1.1 is affected: it closes "<3.1.1" and opens ">=3.1.1, <3.1.3", which touch and are merged
    assert pyspark == ["<3.1.3", ">=3.2.0, <3.2.2"]
    iotdb = values[f"pip::{OURS}"]["apache-iotdb"]["CVE-2022-43766"]["VulnerableVersions"]
    assert iotdb == [">=0.12.2, <0.13.0"]  # the listed 0.12.2 ... 0.12.6 lie inside the interval
    # The empty interval is left out: its 0.23.0 would otherwise show in Trivy as a fixed version.
    assert values[f"cargo::{OURS}"]["rustls"]["CVE-2024-11738"] == {
        "VendorIDs": ["GHSA-qg5g-gv98-5ffh", "RUSTSEC-2024-0399"],
        "VulnerableVersions": [">=0.23.13, <0.23.18"],
    }


# -- class 2: no PatchedVersions that contradict a vulnerable interval ------------------------------------------


def test_go_stdlib_backport_intervals_keep_every_vulnerable_version() -> None:
    """GO-2023-2185: 1.21.4 fixes the first entry's interval but is vulnerable in the second entry's.

    The intervals that touch (``<1.20.11`` / ``>=1.20.11, <1.20.12``, ``>=1.21.0-0, <1.21.4`` /
    ``>=1.21.4, <1.21.5``) are one interval each: otherwise Trivy shows the installed 1.21.4 as a fixed version."""
    values, _ = _db("GO-2023-2185.json")
    entry = values[f"go::{OURS}"]["stdlib"]["CVE-2023-45283"]
    assert entry == {"VendorIDs": ["GO-2023-2185"], "VulnerableVersions": ["<1.20.12", ">=1.21.0-0, <1.21.5"]}
    # No "<X" bound is the ">=X" start of another vulnerable interval.
    ends = {c.split("<")[-1] for c in entry["VulnerableVersions"]}
    starts = {c.split(",")[0].removeprefix(">=") for c in entry["VulnerableVersions"] if c.startswith(">=")}
    assert not ends & starts


def test_an_entry_without_a_fix_makes_every_version_vulnerable() -> None:
    """GO-2025-3648: one entry says "introduced 0, no fix" beside fixed ones; their fixes are no fixes."""
    values, _ = _db("GO-2025-3648.json")
    assert values[f"go::{OURS}"]["github.com/rancher/steve"]["CVE-2023-32198"] == {
        "VendorIDs": ["GHSA-95fc-g4gj-mqmx", "GO-2025-3648"],
        "VulnerableVersions": [">=0"],
    }


def test_records_sharing_cves_merge_without_hiding_each_other() -> None:
    """wasmtime: RUSTSEC-2022-0096 is fixed in 0.34.1, RUSTSEC-2022-0101 (same CVEs) only in 0.38.2: the
    overlapping intervals of both records are one, so 0.33.1 and 0.34.1 (vulnerable by RUSTSEC-2022-0101) are no
    fixes."""
    values, _ = _db("RUSTSEC-2022-0096.json", "RUSTSEC-2022-0101.json")
    entries = values[f"cargo::{OURS}"]["wasmtime"]
    assert set(entries) == {"CVE-2022-23636", "CVE-2022-31169"}
    for entry in entries.values():
        assert entry == {
            "VendorIDs": ["GHSA-7f6x-jwh5-m9r4", "GHSA-88xq-w8cq-xfg7", "RUSTSEC-2022-0096", "RUSTSEC-2022-0101"],
            "VulnerableVersions": [">=0.0.0-0, <0.38.2"],
        }


def test_no_language_entry_has_patched_versions() -> None:
    values, _ = _db(*sorted(p.name for p in REAL.glob("*.json") if p.name != "PYSEC-2021-424.json"))
    for pkgs in values.values():
        for entries in pkgs.values():
            for entry in entries.values():
                assert "PatchedVersions" not in entry and "UnaffectedVersions" not in entry


# -- class 3: listed versions are affected, even outside the ranges ---------------------------------------------


def test_listed_versions_outside_the_ranges_are_affected_and_reported() -> None:
    record, warnings = _parse("PYSEC-2023-61.json")
    assert warnings == [
        "/affected/0/versions: 6 listed version(s) lie outside the entry's ranges (3.2a1, 3.2b1, 3.2rc1, 4.2a1, "
        "4.2b1, 4.2rc1); OSV counts a listed version as affected, so they are imported as affected"
    ]
    values, _ = _db("PYSEC-2023-61.json")
    vulnerable = values[f"pip::{OURS}"]["django"]["CVE-2023-31047"]["VulnerableVersions"]
    # Sorted in PEP 440 order; the listed versions inside a range are redundant and left out.
    assert vulnerable == [
        "=3.2a1", "=3.2b1", "=3.2rc1", ">=3.2, <3.2.19", ">=4.0, <4.1.9", "=4.2a1", "=4.2b1", "=4.2rc1",
        ">=4.2, <4.2.1",
    ]  # fmt: skip
    listed = next(r["versions"] for r in record["affected"] if r["rangeType"] == "VERSIONS")
    assert len(listed) > 6 and "3.2.18" in listed


# -- class 4: CVSS v4-only (and v2-only) records get a severity -------------------------------------------------


@pytest.mark.parametrize(
    ("name", "vuln_id", "score", "severity"),
    [
        ("RUSTSEC-2026-0182.json", "RUSTSEC-2026-0182", 2.3, "LOW"),
        ("RUSTSEC-2026-0037.json", "CVE-2026-31812", 8.7, "HIGH"),
        ("RUSTSEC-2026-0096.json", "CVE-2026-34971", 9.0, "CRITICAL"),
    ],
)
def test_cvss_v4_only_records_are_rated_on_the_v4_scale(name: str, vuln_id: str, score: float, severity: str) -> None:
    _, vulns = _db(name)
    detail = vulns[vuln_id]
    assert detail["Severity"] == severity
    assert detail["VendorSeverity"] == {"stellaops": ["UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"].index(severity)}
    assert detail["CVSS"]["stellaops"]["V40Score"] == score


def test_cvss_v2_only_record_is_rated_on_the_v2_scale() -> None:
    """RUSTSEC-2026-0096 with its v4 vector replaced by a v2 one (none of the three feeds has a v2-only record):
    v2 10.0 is HIGH (v2 has no Critical)."""
    raw = json.loads((REAL / "RUSTSEC-2026-0096.json").read_bytes())
    raw["severity"] = [{"type": "CVSS_V2", "score": "AV:N/AC:L/Au:N/C:C/I:C/A:C"}]
    parsed = OSV.parse(Candidate(path="v2.json", data=json.dumps(raw).encode()))
    assert [(s.type, s.base_score) for s in parsed.advisories[0].severities] == [("CVSS_V2", 10.0)]
    model = TrivyDbModel()
    sev = parsed.advisories[0].severities[0]
    model.add(
        {
            "advisoryId": "RUSTSEC-2026-0096",
            "aliases": ["CVE-2026-34971"],
            "severities": [{"type": sev.type, "score": sev.score, "baseScore": sev.base_score}],
            "affected": [{"ecosystem": "crates.io", "name": "x", "rangeType": "SEMVER", "introduced": "0"}],
        }
    )
    detail = json.loads(model.take_root()[b"vulnerability"][b"CVE-2026-34971"])
    assert (detail["Severity"], detail["CVSS"]["stellaops"]) == ("HIGH", {"V2Vector": sev.score, "V2Score": 10.0})


def test_the_listed_versions_check_has_a_budget() -> None:
    """A hostile record (3,000 intervals, 20,000 listed versions, all outside) must not stall the import on advice:
    the check is skipped (no warning) and the versions still count as affected."""
    events = [e for i in range(3000) for e in ({"introduced": f"{i}.0.0"}, {"fixed": f"{i}.0.1"})]
    listed = [f"{i}.5.0" for i in range(20000)]
    doc = {
        "id": "RUSTSEC-2099-0001",
        "modified": "2026-01-01T00:00:00Z",
        "affected": [
            {"package": {"ecosystem": "crates.io", "name": "x"}, "ranges": [{"type": "SEMVER", "events": events}],
             "versions": listed}
        ],
    }  # fmt: skip
    parsed = OSV.parse(Candidate(path="big.json", data=json.dumps(doc).encode()))
    assert parsed.warnings == []
    assert parsed.advisories[0].affected[-1].versions == listed
