"""The mapping from our normalized advisories to Trivy DB buckets and version-range syntax, per ecosystem.

Records have the shape ``adapters.profiles._records.ADVISORIES`` yields. Expected constraint strings follow
trivy-db's rendering of OSV ranges (``pkg/vulnsrc/osv/range.go``) and its bucket names (``pkg/vulnsrc/bucket``).
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.profiles._trivy_mapping import (
    Target,
    TrivyDbModel,
    constraint,
    normalize_name,
    severity_of,
    target_of,
    vulnerability_ids,
)
from adapters.profiles._trivy_package import JAVA_DB, MAIN_DB, metadata_json, plan_schema
from adapters.profiles.trivy_java_db import artifacts_of, write_java_db
from core.errors import UsageError

OURS = "StellaOps Export Center"


def _record(advisory_id: str, *affected: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"advisoryId": advisory_id, "affected": list(affected), **extra}


def _row(ecosystem: str | None, name: str, **fields: Any) -> dict[str, Any]:
    return {"ecosystem": ecosystem, "name": name, "status": "affected", "rangeType": "ECOSYSTEM", **fields}


def _values(model: TrivyDbModel) -> dict[str, dict[str, dict[str, Any]]]:
    root = model.take_root()
    return {
        bucket.decode(): {
            pkg.decode(): {vid.decode(): json.loads(v) for vid, v in values.items()} for pkg, values in pkgs.items()
        }
        for bucket, pkgs in root.items()
        if bucket not in (b"data-source", b"vulnerability")
    }


@pytest.mark.parametrize(
    ("ecosystem", "name", "purl", "bucket", "package"),
    [
        ("PyPI", "Django_Rest", None, f"pip::{OURS}", "django-rest"),
        ("npm", "@Babel/Core", None, f"npm::{OURS}", "@babel/core"),
        ("Go", "github.com/BurntSushi/toml", None, f"go::{OURS}", "github.com/BurntSushi/toml"),
        ("Maven", "org.Apache.logging:log4j-core", None, f"maven::{OURS}", "org.apache.logging:log4j-core"),
        ("crates.io", "Tokio", None, f"cargo::{OURS}", "tokio"),
        ("RubyGems", "Rails", None, f"rubygems::{OURS}", "rails"),
        ("Packagist", "Symfony/HTTP-Kernel", None, f"composer::{OURS}", "symfony/http-kernel"),
        ("NuGet", "Newtonsoft.Json", None, f"nuget::{OURS}", "newtonsoft.json"),
        ("Hex", "Plug", None, f"erlang::{OURS}", "plug"),
        ("Pub", "http", None, f"pub::{OURS}", "http"),
        ("SwiftURL", "https://github.com/apple/swift-nio.git", None, f"swift::{OURS}", "github.com/apple/swift-nio"),
        ("Debian:12", "openssl", None, "debian 12", "openssl"),
        ("Debian:11.8", "openssl", None, "debian 11", "openssl"),
        ("Alpine:v3.19", "zlib", None, "alpine 3.19", "zlib"),
        ("Ubuntu:22.04:LTS", "curl", None, "ubuntu 22.04", "curl"),
        # Ubuntu Pro (ESM) records: the release Trivy asks for on an ESM host.
        (
            "Ubuntu:Pro:14.04:LTS",
            "linux",
            "pkg:deb/ubuntu/linux?distro=esm-infra-legacy/trusty",
            "ubuntu 14.04-ESM",
            "linux",
        ),
        ("Wolfi", "glibc", None, "wolfi", "glibc"),
        # CVE 5: collection URLs; a missing packageName is read from the URL path.
        ("https://pypi.org/project/protobuf/", "google/Python-Protobuf", None, f"pip::{OURS}", "protobuf"),
        ("https://www.npmjs.com/package/@scope/pkg", "vendor/product", None, f"npm::{OURS}", "@scope/pkg"),
        ("https://repo.maven.apache.org/maven2", "org.example:lib", None, f"maven::{OURS}", "org.example:lib"),
        # CSAF and other purl-only rows.
        (None, "x", "pkg:maven/org.example/Lib@1.0", f"maven::{OURS}", "org.example:lib"),
        (None, "x", "pkg:npm/%40scope/pkg@1.0.0", f"npm::{OURS}", "@scope/pkg"),
        (None, "x", "pkg:golang/github.com/gin-gonic/gin@v1.9.0", f"go::{OURS}", "github.com/gin-gonic/gin"),
        (None, "x", "pkg:pypi/Foo_Bar@1.0", f"pip::{OURS}", "foo-bar"),
        (None, "x", "pkg:gem/rack@2.0", f"rubygems::{OURS}", "rack"),
        (None, "x", "pkg:deb/debian/openssl@3.0.11-1?distro=debian-12", "debian 12", "openssl"),
        (None, "x", "pkg:deb/debian/openssl@3.0.11-1?distro=bookworm", "debian 12", "openssl"),
        (None, "x", "pkg:apk/alpine/zlib@1.3-r2?distro=3.19.1", "alpine 3.19", "zlib"),
    ],
)
def test_targets(ecosystem: str | None, name: str, purl: str | None, bucket: str, package: str) -> None:
    target = target_of(ecosystem, name, purl)
    assert target is not None and (target.bucket, target.package) == (bucket, package)
    assert target.os == (":" not in bucket)


@pytest.mark.parametrize(
    ("ecosystem", "name", "purl"),
    [
        ("GIT", "https://github.com/x/y", None),
        ("Ubuntu:Pro:FIPS-updates:18.04:LTS", "curl", None),
        (None, "linux", "pkg:deb/ubuntu/linux@4.4?distro=esm-infra-legacy/trusty"),  # no release number
        ("Red Hat", "kernel", None),
        ("https://github.com/tukaani-project/xz", "xz", None),
        (None, "Red Hat Enterprise Linux 9", None),
        (None, "kernel", "pkg:rpm/redhat/kernel@5.14.0?arch=x86_64"),
        (None, "x", "not a purl"),
    ],
)
def test_no_bucket_for_what_trivy_cannot_look_up(ecosystem: str | None, name: str, purl: str | None) -> None:
    assert target_of(ecosystem, name, purl) is None


def test_normalize_name_matches_trivy() -> None:
    assert normalize_name("pip", "Zope_Interface") == "zope-interface"
    assert normalize_name("go", "github.com/Azure/SDK") == "github.com/Azure/SDK"
    assert normalize_name("julia", "HTTP") == "HTTP"
    assert normalize_name("swift", "https://github.com/Alamofire/Alamofire.git") == "github.com/Alamofire/Alamofire"
    assert normalize_name("npm", "JSONStream") == "jsonstream"


@pytest.mark.parametrize(
    ("introduced", "fixed", "last", "limit", "expected"),
    [
        ("0", "1.2.3", None, None, "<1.2.3"),
        (None, "1.2.3", None, None, "<1.2.3"),
        ("*", "1.2.3", None, None, "<1.2.3"),  # CVE 5 "any version"
        ("1.0.0", "1.2.3", None, None, ">=1.0.0, <1.2.3"),
        ("0", None, "2.0.0", None, "<=2.0.0"),
        ("1.0", None, "2.0", None, ">=1.0, <=2.0"),
        ("1.5", None, "1.5", None, "=1.5"),  # CVE 5 single version
        ("2.1.0", None, None, None, ">=2.1.0"),
        ("0", None, None, None, ">=0"),
        ("1.0", None, None, "3.0", ">=1.0, <3.0"),
    ],
)
def test_constraints(
    introduced: str | None, fixed: str | None, last: str | None, limit: str | None, expected: str
) -> None:
    assert constraint(introduced, fixed, last, limit) == expected


def test_language_ranges_merge_and_skip() -> None:
    lodash = _record(
        "GHSA-aaaa-bbbb-cccc",
        _row("npm", "lodash", introduced="0", fixed="4.17.21"),
        _row("npm", "lodash", introduced="5.0.0", lastAffected="5.0.2"),
        _row("npm", "lodash", rangeType="GIT", introduced="0", fixed="abc123"),  # commits: skipped
        _row("npm", "lodash", rangeType="VERSIONS", versions=["4.17.0"]),  # listed: affected too (OSV)
        _row("npm", "lodash", introduced="0", fixed="9", status="not_affected"),  # never a finding
        aliases=["CVE-2021-23337", "CVE-2021-99999"],
    )
    model = TrivyDbModel()
    model.add(lodash)
    values = _values(model)[f"npm::{OURS}"]["lodash"]
    # One entry per CVE alias (as trivy-db groupVulnIDs does), the GHSA ID as vendor ID.
    assert set(values) == {"CVE-2021-23337", "CVE-2021-99999"}
    # The listed 4.17.0 lies inside "<4.17.21": redundant, dropped (npm's SemVer order).
    assert values["CVE-2021-23337"] == {
        "VendorIDs": ["GHSA-aaaa-bbbb-cccc"],
        "VulnerableVersions": ["<4.17.21", ">=5.0.0, <=5.0.2"],
    }
    # A second advisory for the same CVE and package adds its ranges and IDs.
    model = TrivyDbModel()
    model.add(lodash)
    model.add(_record("PYSEC-X", _row("npm", "lodash", introduced="6.0", fixed="6.1"), aliases=["CVE-2021-23337"]))
    merged = _values(model)[f"npm::{OURS}"]["lodash"]["CVE-2021-23337"]
    assert merged["VendorIDs"] == ["GHSA-aaaa-bbbb-cccc", "PYSEC-X"]
    # "6.0" is no SemVer version: that interval cannot be ordered against the others and is kept as published.
    assert merged["VulnerableVersions"] == ["<4.17.21", ">=5.0.0, <=5.0.2", ">=6.0, <6.1"]


def _entry(ecosystem: str, *rows: dict[str, Any]) -> list[str]:
    model = TrivyDbModel()
    model.add(_record("CVE-2099-5", *rows))
    (packages,) = [p for bucket, p in _values(model).items() if bucket.startswith(ecosystem)]
    (entries,) = packages.values()
    return list(entries["CVE-2099-5"]["VulnerableVersions"])


@pytest.mark.parametrize(
    ("ecosystem", "ranges", "expected"),
    [
        # touching intervals (one's fix is the next one's start) become one: 1.21.4 is no fix
        ("Go", [("0", "1.20.11"), ("1.21.0-0", "1.21.4"), ("1.20.11", "1.20.12"), ("1.21.4", "1.21.5")],
         ["<1.20.12", ">=1.21.0-0, <1.21.5"]),
        # overlapping intervals: the wider end wins
        ("crates.io", [("0.0.0-0", "0.33.1"), ("0.34.0", "0.34.1"), ("0.0.0-0", "0.38.2")], [">=0.0.0-0, <0.38.2"]),
        # disjoint intervals stay apart, sorted by version (SemVer: 1.10.0 > 1.9.0)
        ("npm", [("1.10.0", "1.10.2"), ("1.9.0", "1.9.5")], [">=1.9.0, <1.9.5", ">=1.10.0, <1.10.2"]),
        # PEP 440: 3.1.1 closes "<3.1.1" and opens ">=3.1.1, <3.1.3"
        ("PyPI", [("0", "3.1.1"), ("3.2.0", "3.2.2"), ("3.1.1", "3.1.3")], ["<3.1.3", ">=3.2.0, <3.2.2"]),
        # an open interval absorbs everything after its start
        ("PyPI", [("1.0", "1.2"), ("1.1", None), ("2.0", "2.1")], [">=1.0"]),
        # no known version order (RubyGems): as published, the fix 1.2 still shows
        ("RubyGems", [("0", "1.2"), ("1.2", "1.3")], ["<1.2", ">=1.2, <1.3"]),
    ],
)  # fmt: skip
def test_touching_and_overlapping_intervals_merge_in_the_ecosystems_order(
    ecosystem: str, ranges: list[tuple[str, str | None]], expected: list[str]
) -> None:
    rows = [_row(ecosystem, "pkg", introduced=lo, fixed=hi) for lo, hi in ranges]
    assert _entry(ecosystem.lower().replace("crates.io", "cargo").replace("pypi", "pip"), *rows) == expected


def test_listed_versions_inside_or_at_the_end_of_an_interval() -> None:
    rows = [
        _row("PyPI", "pkg", introduced="1.0", fixed="1.5"),
        _row("PyPI", "pkg", introduced="2.0", lastAffected="2.3"),
        # 1.2 inside (dropped), 1.5 at the "<1.5" end (extends it to "<=1.5": 1.5 is then no fix),
        # 0.9 and 3.0 outside (kept), 2.3 at a "<=" end (inside)
        _row("PyPI", "pkg", rangeType="VERSIONS", versions=["0.9", "1.2", "1.5", "2.3", "3.0"]),
    ]
    assert _entry("pip", *rows) == ["=0.9", ">=1.0, <=1.5", ">=2.0, <=2.3", "=3.0"]


def test_versions_only_record() -> None:
    model = TrivyDbModel()
    model.add(_record("MAL-2024-1", _row("npm", "evil", rangeType="VERSIONS", versions=["1.0.0", "1.0.1"])))
    assert _values(model)[f"npm::{OURS}"]["evil"]["MAL-2024-1"] == {"VulnerableVersions": ["=1.0.0", "=1.0.1"]}


def test_os_advisories() -> None:
    model = TrivyDbModel()
    model.add(
        _record(
            "DSA-1-1",
            _row("Debian:12", "openssl", introduced="0", fixed="3.0.99-1"),
            _row("Debian:11", "openssl", introduced="1.1", fixed="1.1.1w-1"),
            aliases=["CVE-2099-1"],
        )
    )
    model.add(_record("CVE-2099-2", _row("Alpine:v3.19", "zlib", introduced="0")))
    model.add(_record("CVE-2099-3", _row("Debian:12", "curl", introduced="0", lastAffected="7.88")))  # no OS form
    values = _values(model)
    assert values["debian 12"] == {"openssl": {"CVE-2099-1": {"FixedVersion": "3.0.99-1", "VendorIDs": ["DSA-1-1"]}}}
    assert values["debian 11"]["openssl"]["CVE-2099-1"]["FixedVersion"] == "1.1.1w-1"
    assert values["alpine 3.19"] == {"zlib": {"CVE-2099-2": {"Status": 2}}}
    assert model.counts.unmapped == 1


def _csaf(purl: str, status: str) -> dict[str, Any]:
    return {"ecosystem": None, "name": "product", "purl": purl, "rangeType": "CSAF", "status": status}


def test_csaf_rows_use_purl_versions() -> None:
    model = TrivyDbModel()
    model.add(
        _record(
            "RHSA-TEST",
            _csaf("pkg:maven/com.fasterxml/jackson@2.15.0", "fixed"),
            _csaf("pkg:maven/com.fasterxml/jackson@2.14.0", "affected"),
            _csaf("pkg:deb/debian/openssl@3.0.99?distro=debian-12", "fixed"),
            _csaf("pkg:maven/com.fasterxml/jackson@2.13.0", "under_investigation"),
            aliases=["CVE-2099-7"],
        )
    )
    values = _values(model)
    assert values[f"maven::{OURS}"]["com.fasterxml:jackson"]["CVE-2099-7"] == {
        "VendorIDs": ["RHSA-TEST"],
        "VulnerableVersions": ["<2.15.0", "=2.14.0"],
    }
    assert values["debian 12"]["openssl"]["CVE-2099-7"]["FixedVersion"] == "3.0.99"


def test_withdrawn_and_vulnerability_records() -> None:
    model = TrivyDbModel()
    model.add(_record("GHSA-w", _row("PyPI", "x", introduced="0", fixed="1"), withdrawn="2024-01-01T00:00:00Z"))
    model.add(
        _record(
            "GHSA-1",
            _row("PyPI", "x", introduced="0", fixed="1"),
            summary="t",
            severities=[
                {"type": "CVSS_V3", "score": "CVSS:3.1/AV:N", "baseScore": 9.1},
                {"type": "GHSA", "score": "LOW"},
            ],
            cwes=["CWE-79"],
            published="2024-01-01T00:00:00Z",
        )
    )
    assert model.counts.withdrawn == 1 and model.counts.advisories == 1
    root = model.take_root()
    vuln = json.loads(root[b"vulnerability"][b"GHSA-1"])
    assert vuln == {
        "Title": "t",
        "Severity": "LOW",  # GitHub's own label wins over the CVSS score
        "VendorSeverity": {"stellaops": 1},
        "CVSS": {"stellaops": {"V3Vector": "CVSS:3.1/AV:N", "V3Score": 9.1}},
        "CweIDs": ["CWE-79"],
        "PublishedDate": "2024-01-01T00:00:00Z",
    }
    assert json.loads(root[b"data-source"][f"pip::{OURS}".encode()])["ID"] == "stellaops"
    assert model.take_root() == {b"data-source": {}, b"vulnerability": {}}  # taking the tree empties the model


@pytest.mark.parametrize(
    ("severities", "level"),
    [
        ([], 0),
        ([{"type": "GHSA", "score": "MODERATE"}], 2),
        ([{"type": "CVSS_V3", "score": "v", "baseScore": 9.0}], 4),
        ([{"type": "CVSS_V3", "score": "v", "baseScore": 6.9}, {"type": "CVSS_V4", "score": "w", "baseScore": 7.0}], 3),
        ([{"type": "CVSS_V3", "score": "v", "baseScore": 0.0}], 0),
        ([{"type": "CSAF", "score": "Important"}], 3),
    ],
)
def test_severity(severities: list[dict[str, Any]], level: int) -> None:
    assert severity_of(severities) == level


def test_vulnerability_ids() -> None:
    assert vulnerability_ids("GHSA-1", ["CVE-2", "CVE-1", "PYSEC-3"]) == (["CVE-1", "CVE-2"], ["GHSA-1", "PYSEC-3"])
    assert vulnerability_ids("x_ACME-1", []) == (["x_ACME-1"], [])
    assert vulnerability_ids("GO-1", ["GHSA-2"]) == (["GO-1"], ["GHSA-2"])


def test_schema_gating() -> None:
    assert plan_schema(MAIN_DB, {}, None) == {"trivySchema": 2}  # type: ignore[arg-type]
    assert plan_schema(JAVA_DB, {"trivySchema": 1}, None) == {"trivySchema": 1}  # type: ignore[arg-type]
    for kind, bad in ((MAIN_DB, 1), (MAIN_DB, 3), (JAVA_DB, 2)):
        with pytest.raises(UsageError) as err:
            plan_schema(kind, {"trivySchema": bad}, None)  # type: ignore[arg-type]
        assert err.value.hint is not None and f"--trivy-schema {kind.default}" in err.value.hint
    with pytest.raises(UsageError, match="--base does not apply"):
        plan_schema(MAIN_DB, {"base": "x"}, None)  # type: ignore[arg-type]


def test_metadata_json() -> None:
    text = metadata_json(MAIN_DB, 2, datetime(2026, 11, 22, 10, 0, 0))
    assert text == (
        b'{"Version":2,"NextUpdate":"2026-11-23T10:00:00Z","UpdatedAt":"2026-11-22T10:00:00Z",'
        b'"DownloadedAt":"0001-01-01T00:00:00Z"}\n'
    )
    assert json.loads(metadata_json(JAVA_DB, 1, datetime(2026, 11, 22)))["NextUpdate"] == "2026-11-25T00:00:00Z"


def test_java_db_rows(tmp_path: Path) -> None:
    sha_a, sha_b = "a" * 40, "b" * 40
    rows = sorted(
        [
            ("pkg:maven/org.ex/lib@1.0?classifier=sources", sha_a),
            ("pkg:maven/org.ex/lib@1.0", sha_a),  # unclassified wins the SHA-1
            ("pkg:maven/org.ex/app@2.0?type=aar", sha_b),
            ("pkg:maven/org.ex/pom@1.0?type=pom", "c" * 40),  # not an archive Trivy looks up
            ("pkg:maven/nogroup@1.0", "d" * 40),
            ("pkg:maven/org.ex/bad@1.0", "not-hex"),
        ],
        key=lambda r: (r[1], r[0]),
    )
    artifacts = artifacts_of(rows)
    assert artifacts == [
        ("org.ex", "lib", "1.0", bytes.fromhex(sha_a), "jar"),
        ("org.ex", "app", "2.0", bytes.fromhex(sha_b), "aar"),
    ]
    db = tmp_path / "trivy-java.db"
    assert write_java_db(db, artifacts) == 2
    conn = sqlite3.connect(db)
    try:
        got = conn.execute(
            "SELECT a.group_id, a.artifact_id, i.version, length(i.sha1), i.archive_type FROM indices i "
            "JOIN artifacts a ON a.id = i.artifact_id WHERE i.sha1 = ?",
            [bytes.fromhex(sha_b)],
        ).fetchall()
    finally:
        conn.close()
    assert got == [("org.ex", "app", "2.0", 20, "aar")]
    again = tmp_path / "again.db"
    write_java_db(again, artifacts)
    assert again.read_bytes() == db.read_bytes()


def test_target_is_hashable_and_frozen() -> None:
    t = Target("debian 12", "openssl", True, "debian")
    assert {t: 1}[Target("debian 12", "openssl", True, "debian")] == 1


def test_vulnerability_details_merge_across_advisories() -> None:
    model = TrivyDbModel()
    model.add(
        _record(
            "GHSA-1", _row("PyPI", "a", fixed="1"), aliases=["CVE-1"], summary="first", cwes=["CWE-1"],
            severities=[{"type": "GHSA", "score": "MODERATE"}],
        )
    )  # fmt: skip
    model.add(
        _record(
            "PYSEC-1", _row("PyPI", "b", fixed="2"), aliases=["CVE-1"], summary="second", cwes=["CWE-2", "CWE-1"],
            severities=[{"type": "CVSS_V3", "score": "v", "baseScore": 9.8}],
        )
    )  # fmt: skip
    root = model.take_root()
    vuln = json.loads(root[b"vulnerability"][b"CVE-1"])
    assert vuln["Title"] == "first" and vuln["CweIDs"] == ["CWE-1", "CWE-2"]
    assert vuln["VendorSeverity"] == {"stellaops": 4} and vuln["Severity"] == "CRITICAL"
    assert set(root[f"pip::{OURS}".encode()]) == {b"a", b"b"}


def test_cve5_open_upper_bound() -> None:
    model = TrivyDbModel()
    model.add(_record("CVE-2099-9", _row("https://pypi.org", "pkg", rangeType="semver", introduced="2.0", fixed="*")))
    assert _values(model)[f"pip::{OURS}"]["pkg"]["CVE-2099-9"] == {"VulnerableVersions": [">=2.0"]}
