"""trivy:db and trivy:java-db through the CLI: the bytes on disk, schema gating, verify's bbolt check, install.

The interop tests (tests/interop/test_trivy_interop.py) feed the same bundles to the real Trivy client; these
check what our side promises: bucket layout and values read back with the independent bbolt reader, the Java DB
schema and BLOB digests, deterministic rebuilds, fail-fast schema errors, and an install that refuses anything
that did not verify and never leaves a half-installed cache.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import tarfile
from pathlib import Path
from typing import Any

import pytest
from pyrage import x25519

from core.canonical import canonical_json
from core.home import Home
from core.keys import KeyStore
from core.signing import Signer, cosign_blob_signature
from tests.conftest import FIXTURES
from tests.integration.bundle_helpers import extract, flip, read_members, write_members
from verify.bbolt_check import check_bbolt, read_bbolt

TRIVY = FIXTURES / "trivy"
#: Advisories the Trivy tests import: synthetic OS advisories and the operator's own OSV record (tests/fixtures/trivy),
#: plus real OSV/GHSA records already in the corpus fixtures (one per language ecosystem the scans cover).
ADVISORY_FILES = [
    TRIVY / "advisories",
    TRIVY / "own",
    FIXTURES / "osv" / "PYSEC-2023-74.json",
    FIXTURES / "osv" / "GO-2020-0001.json",
    FIXTURES / "ghsa" / "GHSA-75v8-2h7p-7m2m.json",
    FIXTURES / "ghsa" / "GHSA-xx65-cc7g-9pfp.json",
]
SBOM_FILES = [TRIVY / "sbom"]
SOURCE = b'{"ID":"stellaops","Name":"StellaOps Export Center","URL":"https://stellaops.dev/export-center"}'
JAR_SHA1 = "6be23130992ea427afe137156b03ad03e413faf8"


def build_trivy_bundles(stella: Any, tmp_path: Path, *paths: Path) -> dict[str, Path]:
    """Import ``paths`` (default: every Trivy test input), then build both Trivy bundles with a fresh key."""
    res = stella("import", "--quiet", *(paths or (*ADVISORY_FILES, *SBOM_FILES)))
    assert res.code == 0, res.err
    assert stella("keys", "generate", "trivy-signer").code == 0
    pub = tmp_path / "trivy-signer.pub"
    assert stella("keys", "export-public", "trivy-signer", "--out", pub).code == 0
    out: dict[str, Path] = {"pub": pub}
    # A subset of inputs may hold no SBOM: its Java DB is empty on purpose, which the export must be told.
    empty_ok = ("--allow-empty",) if paths else ()
    for profile, name in (("trivy:db", "db"), ("trivy:java-db", "java-db")):
        bundle = tmp_path / f"{name}.tar.zst"
        res = stella(
            "export", "run", "--profile", profile, "--key", "trivy-signer", "--out", bundle, "--json", *empty_ok
        )
        assert res.code == 0, res.err
        out[name] = bundle
    return out


@pytest.fixture
def bundles(stella: Any, tmp_path: Path) -> dict[str, Path]:
    return build_trivy_bundles(stella, tmp_path)


def _tree(bundle: Path, tmp_path: Path) -> Path:
    return extract(bundle, tmp_path / f"x-{bundle.stem}")


def test_trivy_db_buckets_and_values(bundles: dict[str, Path], tmp_path: Path) -> None:
    tree = _tree(bundles["db"], tmp_path)
    db = tree / "cache" / "db" / "trivy.db"
    check_bbolt(db)
    root = read_bbolt(db)
    pip, npm, go, maven = (f"{eco}::StellaOps Export Center".encode() for eco in ("pip", "npm", "go", "maven"))
    assert set(root) == {b"data-source", b"vulnerability", b"debian 12", b"alpine 3.19", pip, npm, go, maven}
    assert root[b"data-source"] == {name: SOURCE for name in set(root) - {b"data-source", b"vulnerability"}}
    # OS buckets: source package name; fixed version, or Status 2 (affected) with no fix.
    assert root[b"debian 12"] == {
        b"openssl": {
            b"CVE-2099-1111": b'{"FixedVersion":"3.0.99-1~deb12u1","VendorIDs":["DSA-9999-1"]}',
            b"CVE-2099-2222": b'{"Status":2}',
        }
    }
    assert root[b"alpine 3.19"] == {b"zlib": {b"CVE-2099-3333": b'{"FixedVersion":"1.3.1-r0"}'}}
    # Language buckets: normalized names (Acme_Widgets -> acme-widgets), CVE keys, other IDs as VendorIDs.
    # No PatchedVersions: Trivy derives the fixed version from the "<X" bound (see docs/trivy.md).
    assert json.loads(root[pip][b"acme-widgets"][b"x_ACME-2026-0001"]) == {
        "VulnerableVersions": [">=1.0.0, <1.4.2"],
    }
    requests = json.loads(root[pip][b"requests"][b"CVE-2023-32681"])
    assert requests["VendorIDs"] == ["GHSA-j8r2-6x86-q33q", "PYSEC-2023-74"]
    # The GIT range of the record is left out; its listed versions (OSV: listed = affected) all lie inside the
    # range, so they add nothing and are left out too.
    listed = json.loads((FIXTURES / "osv" / "PYSEC-2023-74.json").read_bytes())["affected"][0]["versions"]
    assert "2.3.0" in listed and "2.30.0" in listed
    assert requests["VulnerableVersions"] == [">=2.3.0, <2.31.0"]
    # "introduced 2.1.0" with no fix holds every later version, 3.5.3 too: the fixed interval inside it merges
    # away, so Trivy shows no fixed version rather than a "fix" the record itself says is vulnerable.
    assert json.loads(root[npm][b"formidable"][b"CVE-2025-46653"])["VulnerableVersions"] == [">=2.1.0"]
    assert json.loads(root[go][b"github.com/gin-gonic/gin"][b"CVE-2020-36567"])["VulnerableVersions"] == ["<1.6.0"]
    assert set(root[maven]) == {b"org.springframework.boot:spring-boot"}
    vulns = root[b"vulnerability"]
    assert set(vulns) == {
        b"CVE-2099-1111",
        b"CVE-2099-2222",
        b"CVE-2099-3333",
        b"x_ACME-2026-0001",
        b"CVE-2023-32681",
        b"CVE-2025-46653",
        b"CVE-2020-36567",
        b"CVE-2018-1196",
    }
    acme = json.loads(vulns[b"x_ACME-2026-0001"])
    assert acme["VendorSeverity"] == {"stellaops": 4} and acme["Severity"] == "CRITICAL"
    assert acme["CVSS"]["stellaops"]["V3Score"] == 9.8 and acme["CweIDs"] == ["CWE-1336"]
    # GHSA's own label wins over a CVSS score: MODERATE -> 2 (MEDIUM).
    assert json.loads(vulns[b"CVE-2018-1196"])["VendorSeverity"] == {"stellaops": 2}
    assert "VendorSeverity" not in json.loads(vulns[b"CVE-2020-36567"])  # no severity in the record
    manifest = json.loads((tree / "export.json").read_text())
    assert manifest["counts"]["advisories"] == 8 and manifest["counts"]["vulnerabilities"] == 8
    assert manifest["trivy"]["schemaVersion"] == 2


def test_trivy_db_tarball_oci_layout_and_metadata(bundles: dict[str, Path], tmp_path: Path) -> None:
    tree = _tree(bundles["db"], tmp_path)
    manifest = json.loads((tree / "export.json").read_text())
    created = manifest["createdAt"]
    metadata = (tree / "cache" / "db" / "metadata.json").read_bytes()
    assert metadata.endswith(b"}\n") and metadata.count(b"\n") == 1
    meta = json.loads(metadata)
    assert meta["Version"] == 2 and meta["UpdatedAt"] == created and meta["DownloadedAt"] == "0001-01-01T00:00:00Z"
    tarball = (tree / "db.tar.gz").read_bytes()
    assert tarball[:2] == b"\x1f\x8b" and tarball[4:8] == b"\0\0\0\0"  # gzip header mtime 0
    with tarfile.open(tree / "db.tar.gz") as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == ["trivy.db", "metadata.json"]
        assert {(m.uid, m.gid, m.uname, m.gname, m.mode) for m in members} == {(0, 0, "", "", 0o644)}
        assert tar.extractfile("trivy.db").read() == (tree / "cache" / "db" / "trivy.db").read_bytes()  # type: ignore[union-attr]
        assert tar.extractfile("metadata.json").read() == metadata  # type: ignore[union-attr]
    oci = tree / "oci"
    assert json.loads((oci / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((oci / "index.json").read_text())
    (entry,) = index["manifests"]
    assert entry["annotations"] == {"org.opencontainers.image.ref.name": "2"}
    blob = (oci / "blobs" / "sha256" / entry["digest"].removeprefix("sha256:")).read_bytes()
    assert hashlib.sha256(blob).hexdigest() == entry["digest"].removeprefix("sha256:") and len(blob) == entry["size"]
    oci_manifest = json.loads(blob)
    (layer,) = oci_manifest["layers"]
    assert layer["mediaType"] == "application/vnd.aquasec.trivy.db.layer.v1.tar+gzip"
    assert layer["annotations"] == {"org.opencontainers.image.title": "db.tar.gz"}
    assert layer["digest"] == "sha256:" + hashlib.sha256(tarball).hexdigest() and layer["size"] == len(tarball)
    assert (oci / "blobs" / "sha256" / hashlib.sha256(tarball).hexdigest()).read_bytes() == tarball
    assert oci_manifest["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"


def test_java_db_schema_and_sha1_blobs(bundles: dict[str, Path], tmp_path: Path) -> None:
    tree = _tree(bundles["java-db"], tmp_path)
    db = tree / "cache" / "java-db" / "trivy-java.db"
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        ddl = {name: sql for name, sql in conn.execute("SELECT name, sql FROM sqlite_master")}
        rows = conn.execute(
            "SELECT a.group_id, a.artifact_id, i.version, i.sha1, typeof(i.sha1), i.archive_type "
            "FROM indices i JOIN artifacts a ON a.id = i.artifact_id"
        ).fetchall()
    finally:
        conn.close()
    assert set(ddl) == {"artifacts", "indices", "artifacts_idx", "indices_artifact_idx", "indices_sha1_idx"}
    assert ddl["indices"].startswith("CREATE TABLE indices(artifact_id INTEGER, version TEXT, sha1 BLOB")
    # Only the Maven component with a SHA-1: the hashless one and the npm one stay out; sha1 is 20 raw bytes.
    assert rows == [
        ("org.springframework.boot", "spring-boot", "1.5.9.RELEASE", bytes.fromhex(JAR_SHA1), "blob", "jar")
    ]
    jar = TRIVY / "scan" / "jar" / "opt" / "app" / "lib" / "vendor-bundle.jar"
    assert hashlib.sha1(jar.read_bytes()).hexdigest() == JAR_SHA1  # the jar the interop test scans
    assert json.loads((tree / "cache" / "java-db" / "metadata.json").read_text())["Version"] == 1
    with tarfile.open(tree / "javadb.tar.gz") as tar:
        assert tar.getnames() == ["trivy-java.db", "metadata.json"]
    index = json.loads((tree / "oci" / "index.json").read_text())
    blob = tree / "oci" / "blobs" / "sha256" / index["manifests"][0]["digest"].removeprefix("sha256:")
    (layer,) = json.loads(blob.read_text())["layers"]
    assert layer["mediaType"] == "application/vnd.aquasec.trivy.javadb.layer.v1.tar+gzip"
    assert layer["annotations"] == {"org.opencontainers.image.title": "javadb.tar.gz"}


def test_retry_rebuilds_the_same_bytes(stella: Any, bundles: dict[str, Path], tmp_path: Path) -> None:
    runs = stella("export", "runs", "--json").json()["runs"]  # type: ignore[index]
    for run in runs:
        again = tmp_path / f"again-{run['runId']}.tar.zst"
        res = stella("export", "retry", run["runId"], "--out", again, "--json")
        assert res.code == 0, res.err
        original = Path(stella("export", "show", run["runId"], "--json").json()["artifact"]["path"])  # type: ignore[index]
        assert again.read_bytes() == original.read_bytes()


@pytest.mark.parametrize(
    ("profile", "schema", "message"),
    [
        ("trivy:db", "3", "Trivy DB schema version 3 is not supported"),
        ("trivy:db", "1", "Trivy DB schema version 1 is not supported"),
        ("trivy:java-db", "2", "Trivy Java DB schema version 2 is not supported"),
    ],
)
def test_unsupported_schema_fails_fast(stella: Any, home: Path, profile: str, schema: str, message: str) -> None:
    assert stella("keys", "generate", "k").code == 0
    res = stella("export", "run", "--profile", profile, "--key", "k", "--trivy-schema", schema, "--json")
    assert res.code == 2
    error = res.json()
    assert message in error["message"] and "--trivy-schema" in error["hint"]  # type: ignore[index]
    assert stella("export", "runs", "--json").json() == {"runs": []}  # nothing was planned


def test_supported_schema_and_foreign_options(stella: Any, tmp_path: Path) -> None:
    assert stella("keys", "generate", "k").code == 0
    out = tmp_path / "b.tar.zst"
    res = stella(
        "export",
        "run",
        "--profile",
        "trivy:db",
        "--key",
        "k",
        "--trivy-schema",
        "2",
        "--out",
        out,
        "--allow-empty",
        "--json",
    )
    assert res.code == 0 and res.json()["parameters"]["options"] == {"trivySchema": 2}  # type: ignore[index]
    res = stella("export", "run", "--profile", "trivy:db", "--key", "k", "--base", out)
    assert res.code == 2 and "--base does not apply" in res.err
    res = stella("export", "run", "--profile", "json:raw", "--key", "k", "--trivy-schema", "2")
    assert res.code == 2 and "--trivy-schema" in res.err


def _resign(bundle: Path, home: Path, out: Path, path: str, mutate: Any) -> Path:
    """A copy of ``bundle`` with ``path`` changed and export.json updated and signed again by the same key.

    This is what a trusted but broken builder would produce: signature and digests are fine, the content is not.
    """
    members = read_members(bundle)
    data = {info.name: body for info, body in members}
    new = mutate(data[path])
    manifest = json.loads(data["export.json"])
    for entry in manifest["files"]:
        if entry["path"] == path:
            entry["sha256"], entry["size"] = hashlib.sha256(new).hexdigest(), len(new)
    body = canonical_json(manifest)
    signer = Signer.from_keystore(KeyStore(Home(home)), "trivy-signer")
    patched = {"export.json": body, "export.json.sig": cosign_blob_signature(signer, body), path: new}
    return write_members(out, [(info, patched.get(info.name, raw)) for info, raw in members])


def test_verify_checks_the_bbolt_structure(stella: Any, home: Path, bundles: dict[str, Path], tmp_path: Path) -> None:
    res = stella("verify", bundles["db"], "--key", bundles["pub"], "--json")
    assert res.code == 0, res.out
    bbolt = [c for c in res.json()["checks"] if c["check"] == "bbolt"]  # type: ignore[index]
    assert [c["path"] for c in bbolt] == ["cache/db/trivy.db", "db.tar.gz:trivy.db"] and all(c["ok"] for c in bbolt)
    # A validly signed bundle whose trivy.db has a broken meta checksum on both metas: verify refuses it.
    broken = _resign(
        bundles["db"],
        home,
        tmp_path / "broken.tar.zst",
        "cache/db/trivy.db",
        lambda b: flip(flip(b, 16 + 40), 4096 + 56),
    )
    res = stella("verify", broken, "--key", bundles["pub"], "--json")
    assert res.code == 4, res.out
    report = res.json()
    failed = [c for c in report["checks"] if not c["ok"]]  # type: ignore[index]
    assert failed[0]["check"] == "bbolt" and failed[0]["path"] == "cache/db/trivy.db"
    assert "bbolt database is damaged" in failed[0]["detail"]
    # The same damage is refused by `stella trivy install`, and nothing lands in the cache.
    cache = tmp_path / "cache"
    res = stella("trivy", "install", broken, "--cache-dir", cache, "--key", bundles["pub"], "--json")
    assert res.code == 4 and not (cache / "db").exists()


def test_install_into_a_trivy_cache(stella: Any, bundles: dict[str, Path], tmp_path: Path) -> None:
    cache = tmp_path / "trivy-cache"
    res = stella("trivy", "install", bundles["db"], "--cache-dir", cache, "--key", bundles["pub"], "--json")
    assert res.code == 0, res.err
    report = res.json()
    assert report["installed"] is True and report["profile"] == "trivy:db" and report["schemaVersion"] == 2  # type: ignore[index]
    tree = _tree(bundles["db"], tmp_path)
    for name in ("trivy.db", "metadata.json"):
        assert (cache / "db" / name).read_bytes() == (tree / "cache" / "db" / name).read_bytes()
    res = stella("trivy", "install", bundles["java-db"], "--cache-dir", cache, "--key", bundles["pub"])
    assert res.code == 0 and "installed trivy:java-db" in res.out
    assert sorted(p.name for p in cache.iterdir()) == ["db", "java-db"]  # no staging directory left behind
    assert sorted(p.name for p in (cache / "java-db").iterdir()) == ["metadata.json", "trivy-java.db"]
    # Re-installing replaces the directory as a whole (a stray file from before does not survive).
    (cache / "db" / "stale.tmp").write_bytes(b"x")
    assert stella("trivy", "install", bundles["db"], "--cache-dir", cache, "--key", bundles["pub"]).code == 0
    assert sorted(p.name for p in (cache / "db").iterdir()) == ["metadata.json", "trivy.db"]


def test_install_refuses_what_did_not_verify(stella: Any, bundles: dict[str, Path], tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert stella("trivy", "install", bundles["db"], "--cache-dir", cache, "--key", bundles["pub"]).code == 0
    before = (cache / "db" / "trivy.db").read_bytes()
    members = read_members(bundles["db"])
    tampered = write_members(
        tmp_path / "tampered.tar.zst",
        [(info, flip(body) if info.name == "cache/db/trivy.db" else body) for info, body in members],
    )
    res = stella("trivy", "install", tampered, "--cache-dir", cache, "--key", bundles["pub"])
    assert res.code == 4 and "cache/db/trivy.db" in res.err
    assert (cache / "db" / "trivy.db").read_bytes() == before  # the installed DB is untouched
    other = tmp_path / "other.pub"
    assert stella("keys", "generate", "other").code == 0
    assert stella("keys", "export-public", "other", "--out", other).code == 0
    res = stella("trivy", "install", bundles["db"], "--cache-dir", cache, "--key", other, "--json")
    assert res.code == 5 and res.json()["error"] == "signature"  # type: ignore[index]


def test_install_errors_name_the_problem(stella: Any, bundles: dict[str, Path], tmp_path: Path) -> None:
    raw = tmp_path / "raw.tar.zst"
    assert stella("export", "run", "--profile", "json:raw", "--key", "trivy-signer", "--out", raw).code == 0
    res = stella("trivy", "install", raw, "--cache-dir", tmp_path / "c", "--key", bundles["pub"], "--json")
    assert res.code == 3 and "json:raw bundle has no Trivy DB" in res.json()["message"]  # type: ignore[index]
    blocker = tmp_path / "not-a-dir"
    blocker.write_bytes(b"")
    res = stella("trivy", "install", bundles["db"], "--cache-dir", blocker, "--key", bundles["pub"], "--json")
    assert res.code == 8 and res.json()["path"] == str(blocker)  # type: ignore[index]
    res = stella("trivy", "install", tmp_path / "missing.tar.zst", "--cache-dir", tmp_path / "c")
    assert res.code == 2 and "no such bundle" in res.err


def test_install_without_cache_dir_goes_where_trivy_looks(
    stella: Any, bundles: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No --cache-dir: $TRIVY_CACHE_DIR, else Trivy's own default (~/.cache/trivy), and the output says where."""
    chosen = tmp_path / "env-cache"
    monkeypatch.setenv("TRIVY_CACHE_DIR", str(chosen))
    res = stella("trivy", "install", bundles["db"], "--key", bundles["pub"])
    assert res.code == 0, res.err
    assert f"into {chosen} ($TRIVY_CACHE_DIR)" in res.out and f"--cache-dir {chosen}" in res.out
    assert (chosen / "db" / "trivy.db").is_file()
    monkeypatch.delenv("TRIVY_CACHE_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    res = stella("trivy", "install", bundles["db"], "--key", bundles["pub"], "--json")
    assert res.code == 0, res.err
    default = tmp_path / "user" / ".cache" / "trivy"
    assert res.json()["cacheDir"] == str(default)  # type: ignore[index]
    assert sorted(p.name for p in (default / "db").iterdir()) == ["metadata.json", "trivy.db"]


def test_cve5_and_csaf_records(stella: Any, tmp_path: Path) -> None:
    """CVE 5: the package from the collection URL, one constraint per version entry; CSAF rpm products are
    left out (Red Hat's buckets need CPE tables, not supported), yet the DB keeps the buckets Trivy requires."""
    res = stella(
        "import", "--quiet", FIXTURES / "cve5" / "CVE-2025-4565.json", FIXTURES / "csaf" / "rhsa-2022_0011.json"
    )
    assert res.code == 0, res.err
    assert stella("keys", "generate", "k").code == 0
    out = tmp_path / "cve5.tar.zst"
    assert stella("export", "run", "--profile", "trivy:db", "--key", "k", "--out", out).code == 0
    tree = _tree(out, tmp_path)
    root = read_bbolt(tree / "cache" / "db" / "trivy.db")
    assert set(root) == {b"data-source", b"vulnerability", b"pip::StellaOps Export Center"}
    value = json.loads(root[b"pip::StellaOps Export Center"][b"protobuf"][b"CVE-2025-4565"])
    # The record says "0 <= v < 5.29.5" (and "< 6.31.1") is affected, so 4.25.8 and 5.29.5 are: the overlapping
    # intervals are one, and Trivy offers no vulnerable version as the fix.
    assert value == {"VulnerableVersions": ["<6.31.1"]}
    counts = json.loads((tree / "export.json").read_text())["counts"]
    assert counts["advisories"] == 2 and counts["unmappedSkipped"] == 1


def test_encrypted_trivy_bundle_verifies_but_is_not_installed(
    stella: Any, bundles: dict[str, Path], tmp_path: Path
) -> None:
    recipient = str(x25519.Identity.generate().to_public())
    out = tmp_path / "enc.tar.zst"
    res = stella(
        "export", "run", "--profile", "trivy:db", "--key", "trivy-signer", "--recipient", recipient, "--out", out
    )
    assert res.code == 0, res.err
    res = stella("verify", out, "--key", bundles["pub"], "--json")
    assert res.code == 0, res.out
    assert not [c for c in res.json()["checks"] if c["check"] == "bbolt"]  # type: ignore[index]  # ciphertext only
    res = stella("trivy", "install", out, "--cache-dir", tmp_path / "c", "--key", bundles["pub"], "--json")
    assert res.code == 2 and "encrypted" in res.json()["message"]  # type: ignore[index]
    assert not (tmp_path / "c").exists()


def test_a_cancelled_install_leaves_the_cache_as_it_was(stella: Any, bundles: dict[str, Path], tmp_path: Path) -> None:
    from core.errors import Cancelled
    from core.progress import CancelToken, Check, CheckObserver
    from services.trivy import install_bundle
    from services.trust import keys_from_files

    cache = tmp_path / "cache"
    assert stella("trivy", "install", bundles["db"], "--cache-dir", cache, "--key", bundles["pub"]).code == 0
    before = {p.name: p.read_bytes() for p in (cache / "db").iterdir()}
    token = CancelToken()

    def cancel_once_verified(check: Check) -> None:
        if check.name == "time":  # the bundle verified; the staging read of the cache files comes next
            token.cancel()

    with pytest.raises(Cancelled):
        install_bundle(
            bundles["java-db"],
            cache,
            keys_from_files([bundles["pub"]]),
            observer=CheckObserver(cancel_once_verified, token),
        )
    assert sorted(p.name for p in cache.iterdir()) == ["db"]  # no java-db, no staging directory
    assert {p.name: p.read_bytes() for p in (cache / "db").iterdir()} == before
