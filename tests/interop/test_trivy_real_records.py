"""Real OSV records (tests/fixtures/osv-real) through `stella export --profile trivy:db` and the real Trivy client.

Projects are written at the versions issue 21 named: Go stdlib 1.21.4 (GO-2023-2185, fixed in one entry's interval
and vulnerable in the other's), rancher/steve 0.5.13 (GO-2025-3648, an entry with no fix), wasmtime 0.34.1
(RUSTSEC-2022-0096 fixes it, RUSTSEC-2022-0101 with the same CVEs does not), django 3.2a1 (PYSEC-2023-61 lists it
below its ranges), pyspark 3.1.1 and apache-iotdb 0.12.2 (records a lint rule used to refuse), and the CVSS v4-only
RustSec records. Each expected finding follows from OSV's rules applied to the record by hand (see the comments);
every project also holds versions no record affects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES
from tests.integration.test_trivy_profiles import build_trivy_bundles
from tests.interop.test_trivy_interop import Finding, scan, trivy_binary

pytestmark = pytest.mark.interop

REAL = FIXTURES / "osv-real"
IMPORTABLE = sorted(p for p in REAL.glob("*.json") if p.name != "PYSEC-2021-424.json")
WASMTIME_IDS = ("GHSA-7f6x-jwh5-m9r4", "GHSA-88xq-w8cq-xfg7", "RUSTSEC-2022-0096", "RUSTSEC-2022-0101")

PROJECTS: dict[str, dict[str, str]] = {
    "python": {"requirements.txt": "django==3.2a1\npyspark==3.1.1\napache-iotdb==0.12.2\nsix==1.16.0\n"},
    # Fixed versions, and apache-iotdb 0.13.1, which PYSEC-2022-42972 evaluated in version order leaves out.
    "python-fixed": {"requirements.txt": "django==3.2.19\npyspark==3.1.3\napache-iotdb==0.13.1\n"},
    "go": {
        "go.mod": "module example.com/app\n\ngo 1.21\n\ntoolchain go1.21.4\n\n"
        "require github.com/rancher/steve v0.5.13\n"
    },
    "rust": {
        "Cargo.lock": "version = 3\n"
        + "".join(
            f'\n[[package]]\nname = "{name}"\nversion = "{version}"\n'
            'source = "registry+https://github.com/rust-lang/crates.io-index"\n'
            for name, version in [
                ("quinn-proto", "0.11.13"),
                ("rustls", "0.23.0"),  # only in RUSTSEC-2024-0399's empty interval: not affected
                ("rustls", "0.23.13"),
                ("rustls", "0.23.18"),  # the fix
                ("serde", "1.0.0"),
                ("wasmtime", "0.34.0"),
                ("wasmtime", "0.34.1"),
                ("wasmtime-wasi", "45.0.1"),
            ]
        )
    },
}

EXPECTED: dict[str, set[Finding]] = {
    "python": {
        # listed in `versions`, below the ranges' introduced 3.2
        ("CVE-2023-31047", "django", "3.2a1", "3.2.19, 4.1.9, 4.2.1", "UNKNOWN", "fixed", ("PYSEC-2023-61",)),
        # introduced 3.1.1 (third interval), fixed 3.1.3; 3.1.1 also closes the first interval, which touches the
        # third: one interval "<3.1.3", so 3.1.1 is not offered as its own fix
        ("CVE-2022-33891", "pyspark", "3.1.1", "3.1.3, 3.2.2", "UNKNOWN", "fixed",
         ("GHSA-4x9r-j582-cgr8", "PYSEC-2022-236")),
        # events sorted by version: introduced 0.12.2, (introduced 0.13.0: already open), fixed 0.13.0
        ("CVE-2022-43766", "apache-iotdb", "0.12.2", "0.13.0", "UNKNOWN", "fixed", ("PYSEC-2022-42972",)),
    },
    "python-fixed": set(),
    "go": {
        # second entry: introduced 1.21.4, fixed 1.21.5. 1.21.4 (and 1.20.11) end one entry's interval and start
        # the other's: each pair is one interval, so the fixes are the 1.20 and 1.21 branches' 1.20.12 and 1.21.5
        ("CVE-2023-45283", "stdlib", "v1.21.4", "1.20.12, 1.21.5", "UNKNOWN", "fixed",
         ("GO-2023-2185",)),
        # first entry: introduced 0 and no fix, so every version, and no fixed version to offer
        ("CVE-2023-32198", "github.com/rancher/steve", "v0.5.13", "", "UNKNOWN", "affected",
         ("GHSA-95fc-g4gj-mqmx", "GO-2025-3648")),
    },
    "rust": {
        ("CVE-2026-31812", "quinn-proto", "0.11.13", "0.11.14", "HIGH", "fixed",
         ("GHSA-6xvm-j4wr-6v98", "RUSTSEC-2026-0037")),  # CVSS v4 8.7
        ("CVE-2024-11738", "rustls", "0.23.13", "0.23.18", "UNKNOWN", "fixed",
         ("GHSA-qg5g-gv98-5ffh", "RUSTSEC-2024-0399")),
        # RUSTSEC-2022-0101: introduced 0.0.0-0, fixed 0.38.2 (RUSTSEC-2022-0096's fix 0.34.1 does not clear it).
        # Both records share the CVEs; RUSTSEC-2022-0096's intervals lie inside RUSTSEC-2022-0101's, so its
        # fixes 0.33.1 and 0.34.1 (vulnerable by RUSTSEC-2022-0101) are not offered.
        ("CVE-2022-23636", "wasmtime", "0.34.1", "0.38.2", "UNKNOWN", "fixed", WASMTIME_IDS),
        ("CVE-2022-31169", "wasmtime", "0.34.1", "0.38.2", "UNKNOWN", "fixed", WASMTIME_IDS),
        ("CVE-2026-34971", "wasmtime", "0.34.1", "36.0.7, 42.0.2, 43.0.1", "CRITICAL", "fixed",
         ("GHSA-jhxm-h53p-jm7w", "RUSTSEC-2026-0096")),  # CVSS v4 9.0
        # 0.34.0 lies in both records' ranges (0096: introduced 0.34.0, fixed 0.34.1; 0101: up to 0.38.2)
        ("CVE-2022-23636", "wasmtime", "0.34.0", "0.38.2", "UNKNOWN", "fixed", WASMTIME_IDS),
        ("CVE-2022-31169", "wasmtime", "0.34.0", "0.38.2", "UNKNOWN", "fixed", WASMTIME_IDS),
        ("CVE-2026-34971", "wasmtime", "0.34.0", "36.0.7, 42.0.2, 43.0.1", "CRITICAL", "fixed",
         ("GHSA-jhxm-h53p-jm7w", "RUSTSEC-2026-0096")),
        ("RUSTSEC-2026-0182", "wasmtime-wasi", "45.0.1", "24.0.10, 36.0.11, 44.0.3, 45.0.2", "LOW", "fixed",
         ("GHSA-3p27-qvp9-27qf",)),  # CVSS v4 2.3
    },
}  # fmt: skip


@pytest.fixture
def cache(stella: Any, tmp_path: Path) -> Path:
    built = build_trivy_bundles(stella, tmp_path, *IMPORTABLE)
    cache = tmp_path / "trivy-cache"
    res = stella("trivy", "install", built["db"], "--cache-dir", cache, "--key", built["pub"])
    assert res.code == 0, res.err
    return cache


def test_trivy_reports_what_the_real_records_say(cache: Path, tmp_path: Path) -> None:
    trivy = trivy_binary()
    for project, files in PROJECTS.items():
        target = tmp_path / "projects" / project
        target.mkdir(parents=True)
        for name, text in files.items():
            (target / name).write_text(text)
        # The go.mod toolchain line becomes the "stdlib" package only with comprehensive detection.
        found = scan(
            trivy,
            "fs",
            target,
            cache,
            tmp_path,
            "--skip-db-update",
            "--skip-java-db-update",
            "--detection-priority",
            "comprehensive",
        )
        assert found == EXPECTED[project], project
        for vuln_id, _, installed, fixed, *_ in found:
            # No reported fix is the installed version itself (intervals that touch are merged).
            assert installed.removeprefix("v") not in fixed.split(", "), (vuln_id, installed, fixed)
        if project == "go":
            # Go stdlib 1.21.4 (GO-2023-2185): not its own fix; the 1.21 and 1.20 branches' fixes still shown.
            (stdlib_fixes,) = [fixed.split(", ") for _, pkg, _, fixed, *_ in found if pkg == "stdlib"]
            assert "1.21.4" not in stdlib_fixes and {"1.21.5", "1.20.12"} <= set(stdlib_fixes)
