"""devportal:offline end to end: import (OpenAPI validation, all or nothing), export, verify, serve."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from core.home import Home
from core.store import Store
from tests.conftest import FIXTURES, ROOT, CliResult, require_tool

PORTAL = FIXTURES / "devportal" / "portal"
OPENAPI = FIXTURES / "openapi"
Stella = Callable[..., CliResult]


# -- helpers -------------------------------------------------------------------------------------
def _counts(home: Path, tenant: str = "default") -> dict[str, int]:
    with Store.open(Home(home), read_only=True) as store:
        out = {}
        for table in ("raw_documents", "devportal_assets", "devportal_imports"):
            row = store.conn.execute(f"SELECT count(*) FROM {table} WHERE tenant = ?", [tenant]).fetchone()
            out[table] = int(row[0]) if row else 0
    return out


def _portal_with(tmp_path: Path, name: str, files: dict[str, bytes]) -> Path:
    root = tmp_path / name
    shutil.copytree(PORTAL, root)
    for rel, data in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return root


def _members(bundle: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(bundle, mode="r:gz") as tar:
        return [(info, tar.extractfile(info).read()) for info in tar if info.isfile()]  # type: ignore[union-attr]


def _repack(target: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    """The members as a tar, gzipped as the bundle writer does (no file name, mtime 0), so only they differ."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with target.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write(buf.getvalue())
    return target


def _file_info(name: str, like: tarfile.TarInfo) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mtime, info.mode = like.mtime, 0o644
    return info


@pytest.fixture
def signer(stella: Stella, tmp_path: Path) -> Path:
    assert stella("keys", "generate", "signer").code == 0
    pub = tmp_path / "signer.pub"
    assert stella("keys", "export-public", "signer", "--out", pub).code == 0
    return pub


@pytest.fixture
def bundle(stella: Stella, signer: Path, tmp_path: Path) -> tuple[Path, str]:
    """A devportal bundle of the fixture portal, and its run id."""
    assert stella("devportal", "import", PORTAL, "--portal", "petstore").code == 0
    out = tmp_path / "bundle.tgz"
    res = stella("devportal", "export", "--portal", "petstore", "--key", "signer", "--out", out, "--json")
    assert res.code == 0, res.err
    run: dict[str, Any] = res.json()  # type: ignore[assignment]
    assert run["state"] == "succeeded" and run["artifact"]["path"] == str(out)
    return out, str(run["runId"])


# -- import --------------------------------------------------------------------------------------
def test_portal_tree_imports_with_roles_and_validated_specs(stella: Stella, home: Path) -> None:
    res = stella("devportal", "import", PORTAL, "--portal", "petstore", "--json")
    assert res.code == 0, res.err
    body: dict[str, Any] = res.json()  # type: ignore[assignment]
    assert body["counts"] == {"page": 2, "openapi": 2, "sdk": 1, "changelog": 1, "asset": 2, "files": 8}
    assert sorted((s["path"], s["openapi"]) for s in body["openapi"]) == [
        ("api/petstore-expanded.yaml", "3.0.0"),
        ("api/webhook-example.yaml", "3.1.0"),
    ]
    with Store.open(Home(home), read_only=True) as store:
        rows = store.conn.execute(
            "SELECT path, role, media_type, sha256 FROM devportal_assets WHERE tenant = 'default' ORDER BY path"
        ).fetchall()
        assert [(r[0], r[1]) for r in rows] == [
            ("CHANGELOG.md", "changelog"),
            ("api/petstore-expanded.yaml", "openapi"),
            ("api/webhook-example.yaml", "openapi"),
            ("css/site.css", "asset"),
            ("guides/getting-started.html", "page"),
            ("index.html", "page"),
            ("js/app.js", "asset"),
            ("sdk/petstore-sdk-python-1.2.0.tar.gz", "sdk"),
        ]
        # Raw bytes are stored exactly as imported, keyed by their digest.
        for path, _role, _media, sha in rows:
            assert store.raw_bytes("default", sha) == (PORTAL / path).read_bytes()
        kinds = store.conn.execute("SELECT DISTINCT kind FROM raw_documents").fetchall()
        assert kinds == [("devportal",)]
    # The same tree again changes nothing.
    before = _counts(home)
    again: dict[str, Any] = stella("devportal", "import", PORTAL, "--portal", "petstore", "--json").json()  # type: ignore[assignment]
    assert again["changed"] is False and again["imported"] == 0 and again["duplicates"] == 8
    assert _counts(home) == before
    listing: dict[str, Any] = stella("devportal", "list", "--json").json()  # type: ignore[assignment]
    assert [(p["portal"], p["files"], p["tree"]) for p in listing["portals"]] == [("petstore", 8, body["tree"])]


@pytest.mark.parametrize(
    ("name", "version"),
    [
        ("petstore-expanded.yaml", "3.0.0"),
        ("uspto.yaml", "3.0.1"),
        ("cve-services-openapi.json", "3.0.2"),
        ("mega.yaml", "3.1.0"),
        ("webhook-example.yaml", "3.1.0"),
        ("rekor-openapi.yaml", "2.0"),
    ],
)
def test_valid_openapi_samples_import(stella: Stella, tmp_path: Path, name: str, version: str) -> None:
    root = _portal_with(tmp_path, "docs", {f"specs/{name}": (OPENAPI / name).read_bytes()})
    res = stella("devportal", "import", root, "--json")
    assert res.code == 0, res.err
    specs = {s["path"]: s["openapi"] for s in res.json()["openapi"]}  # type: ignore[index]
    assert specs[f"specs/{name}"] == version


@pytest.mark.parametrize(
    ("name", "pointer", "reason"),
    [
        ("servers.yaml", "/servers", 'is not of type "array"'),
        ("invalid_schema_types.yaml", "/components/schemas/invalid_null", 'null is not of types "boolean", "object"'),
        ("no_containers.yaml", "", "matches none of the allowed shapes"),
    ],
)
def test_invalid_openapi_refuses_the_whole_import(
    stella: Stella, home: Path, tmp_path: Path, name: str, pointer: str, reason: str
) -> None:
    root = _portal_with(tmp_path, "docs", {f"api/{name}": (OPENAPI / "invalid" / name).read_bytes()})
    res = stella("devportal", "import", root, "--json")
    assert res.code == 3
    err: dict[str, Any] = res.json()  # type: ignore[assignment]
    assert err["error"] == "schema" and err["pointer"] == pointer
    assert "OpenAPI 3.1 schema" in err["message"] and reason in err["message"]
    assert err["path"].endswith(f"api/{name}")
    assert "fails the OpenAPI 3.1 schema" in res.err
    # All or nothing: not even the valid pages of that import were stored.
    assert _counts(home) == {"raw_documents": 0, "devportal_assets": 0, "devportal_imports": 0}


def test_unsupported_openapi_version_is_refused(stella: Stella, home: Path, tmp_path: Path) -> None:
    spec = b'openapi: "4.0.0"\ninfo: {title: T, version: "1"}\npaths: {}\n'
    res = stella("devportal", "import", _portal_with(tmp_path, "docs", {"api/next.yaml": spec}))
    assert res.code == 3 and "OpenAPI version '4.0.0' is not supported" in res.err
    assert _counts(home)["raw_documents"] == 0


def test_unsafe_paths_are_refused(stella: Stella, home: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("not part of the portal")
    root = _portal_with(tmp_path, "docs", {})
    os.symlink(outside, root / "leak.txt")
    res = stella("devportal", "import", root)
    assert res.code == 4 and "symbolic link escapes the portal tree" in res.err and "leak.txt" in res.err
    (root / "leak.txt").unlink()
    os.symlink("../../etc", root / "css" / "up")
    res = stella("devportal", "import", root)
    assert res.code == 4 and "css/up" in res.err
    (root / "css" / "up").unlink()
    os.mkfifo(root / "pipe")
    res = stella("devportal", "import", root)
    assert res.code == 4 and "not a regular file" in res.err
    assert _counts(home)["raw_documents"] == 0
    # A link that stays inside the tree is followed: the file appears under the link's name.
    (root / "pipe").unlink()
    os.symlink("index.html", root / "home.html")
    ok: dict[str, Any] = stella("devportal", "import", root, "--json").json()  # type: ignore[assignment]
    assert ok["files"] == 9 and ok["counts"]["page"] == 3


# -- export, verify ------------------------------------------------------------------------------
def test_verified_bundle_layout_and_manifest(stella: Stella, bundle: tuple[Path, str], signer: Path) -> None:
    path, _run = bundle
    res = stella("devportal", "verify", path, "--key", signer, "--json")
    assert res.code == 0, res.err
    report: dict[str, Any] = res.json()  # type: ignore[assignment]
    assert [c["check"] for c in report["checks"]] == ["signature", "manifest", "signer scope", "files", "bundle"]
    assert report["manifest"]["portal"] == "petstore" and report["manifest"]["fileCount"] == 10
    names = [info.name for info, _ in _members(path)]
    assert names[:4] == ["export.json", "export.json.sig", "checksums.txt", "checksums.txt.sig"]
    assert {"manifest.json", "manifest.dsse.json", "serve.sh", "verify-portal.sh", "portal/index.html"} <= set(names)
    data = dict((info.name, blob) for info, blob in _members(path))
    manifest = orjson.loads(data["manifest.json"])
    listed = {f["path"]: f for f in manifest["files"]}
    assert listed["portal/api/webhook-example.yaml"]["role"] == "openapi"
    assert listed["portal/api/webhook-example.yaml"]["apiVersion"] == "3.1.0"
    assert listed["serve.sh"]["role"] == "script"
    assert data["portal/index.html"] == (PORTAL / "index.html").read_bytes()
    envelope = orjson.loads(data["manifest.dsse.json"])
    assert envelope["payloadType"] == "application/vnd.stellaops.devportal.manifest+json"
    # The generic verifier accepts the same bundle (same contract as every profile).
    assert stella("verify", path, "--key", signer).code == 0


def test_tampered_html_fails_integrity_naming_the_file(
    stella: Stella, bundle: tuple[Path, str], signer: Path, tmp_path: Path
) -> None:
    members = [
        (info, data.replace(b"Petstore API", b"Petstore APl") if info.name == "portal/index.html" else data)
        for info, data in _members(bundle[0])
    ]
    tampered = _repack(tmp_path / "tampered.tgz", members)
    res = stella("devportal", "verify", tampered, "--key", signer)
    assert res.code == 4
    assert "portal/index.html" in res.err and "sha256 differs from manifest.json" in res.err
    report: dict[str, Any] = stella("devportal", "verify", tampered, "--key", signer, "--json").json()  # type: ignore[assignment]
    assert report["verified"] is False and report["error"]["path"] == "portal/index.html"


def test_added_file_fails_integrity_naming_the_file(
    stella: Stella, bundle: tuple[Path, str], signer: Path, tmp_path: Path
) -> None:
    members = _members(bundle[0])
    extra = (_file_info("portal/phish.html", members[0][0]), b"<html><body>log in here</body></html>\n")
    added = _repack(tmp_path / "added.tgz", [*members, extra])
    res = stella("devportal", "verify", added, "--key", signer)
    assert res.code == 4
    assert "portal/phish.html" in res.err and "not listed in manifest.json" in res.err


def test_stripped_signature_fails_with_signature_exit_code(
    stella: Stella, bundle: tuple[Path, str], signer: Path, tmp_path: Path
) -> None:
    members = _members(bundle[0])
    stripped = _repack(tmp_path / "stripped.tgz", [(i, d) for i, d in members if i.name != "manifest.dsse.json"])
    res = stella("devportal", "verify", stripped, "--key", signer)
    assert res.code == 5 and "manifest.dsse.json is missing" in res.err
    # An envelope whose signatures were emptied is no better.
    emptied = []
    for info, data in members:
        if info.name == "manifest.dsse.json":
            env = orjson.loads(data)
            env["signatures"] = []
            data = orjson.dumps(env)
        emptied.append((info, data))
    res = stella("devportal", "verify", _repack(tmp_path / "emptied.tgz", emptied), "--key", signer)
    assert res.code == 5 and "carries no signature" in res.err and "manifest.dsse.json" in res.err


def test_untrusted_key_fails_with_signature_exit_code(stella: Stella, bundle: tuple[Path, str], tmp_path: Path) -> None:
    assert stella("keys", "generate", "other").code == 0
    other = tmp_path / "other.pub"
    assert stella("keys", "export-public", "other", "--out", other).code == 0
    res = stella("devportal", "verify", bundle[0], "--key", other)
    assert res.code == 5 and "does not verify with any trusted key" in res.err


def test_retry_is_byte_identical_even_after_the_portal_changed(
    stella: Stella, bundle: tuple[Path, str], tmp_path: Path
) -> None:
    path, run_id = bundle
    changed = _portal_with(tmp_path, "petstore", {"index.html": b"<html><body>v2</body></html>\n"})
    assert stella("devportal", "import", changed, "--portal", "petstore").code == 0
    again = tmp_path / "again.tgz"
    res = stella("export", "retry", run_id, "--key", "signer", "--out", again, "--json")
    assert res.code == 0, res.err
    assert again.read_bytes() == path.read_bytes()
    shown: dict[str, Any] = stella("export", "show", res.json()["runId"], "--json").json()  # type: ignore[index,assignment]
    assert shown["state"] == "succeeded" and shown["retryOf"] == run_id
    # A new export takes the new tree.
    newer = tmp_path / "newer.tgz"
    assert stella("devportal", "export", "--portal", "petstore", "--key", "signer", "--out", newer).code == 0
    data = dict((i.name, d) for i, d in _members(newer))
    assert data["portal/index.html"] == b"<html><body>v2</body></html>\n"


def test_generic_export_run_builds_the_only_portal(stella: Stella, signer: Path, tmp_path: Path) -> None:
    assert stella("devportal", "import", PORTAL, "--portal", "petstore").code == 0
    out = tmp_path / "bundle.tgz"
    res = stella("export", "run", "--profile", "devportal:offline", "--key", "signer", "--out", out)
    assert res.code == 0, res.err
    assert out.read_bytes()[:2] == b"\x1f\x8b"  # gzip: bundle.tgz
    assert stella("devportal", "verify", out, "--key", signer).code == 0


def test_shell_verifier_accepts_the_bundle_and_rejects_a_tampered_page(
    bundle: tuple[Path, str], signer: Path, tmp_path: Path
) -> None:
    for tool in ("openssl", "sha256sum"):
        require_tool(tool)
    tree = tmp_path / "extracted"
    with tarfile.open(bundle[0], mode="r:gz") as tar:
        tar.extractall(tree, filter="data")
    ok = subprocess.run(["sh", str(tree / "verify-portal.sh"), str(signer)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert subprocess.run(["sh", str(tree / "verify.sh"), str(signer)], capture_output=True).returncode == 0
    (tree / "portal" / "css" / "site.css").write_text("body { display: none; }\n")
    bad = subprocess.run(["sh", str(tree / "verify-portal.sh"), str(signer)], capture_output=True, text=True)
    assert bad.returncode == 4 and "portal/css/site.css" in bad.stdout + bad.stderr


# -- serve ---------------------------------------------------------------------------------------
def test_verified_portal_is_served_on_localhost(
    home: Path, bundle: tuple[Path, str], signer: Path, tmp_path: Path
) -> None:
    stella_bin = ROOT / ".venv" / "bin" / "stella"
    cmd = [str(stella_bin)] if stella_bin.exists() else [sys.executable, "-m", "app"]
    env = dict(os.environ, STELLA_HOME=str(home))
    proc = subprocess.Popen(
        [*cmd, "devportal", "serve", str(bundle[0]), "--key", str(signer), "--port", "0", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = []
        while True:
            line = proc.stdout.readline()
            assert line, f"server exited: {proc.wait()} {proc.stderr.read() if proc.stderr else ''}"
            lines.append(line)
            if line.startswith("}"):
                break
        info = json.loads("".join(lines))
        url = info["serving"]
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "index.html", timeout=10) as resp:
            page = resp.read()
            assert resp.status == 200 and "text/html" in resp.headers["Content-Type"]
        assert page == (PORTAL / "index.html").read_bytes()
        with urllib.request.urlopen(url + "api/webhook-example.yaml", timeout=10) as resp:
            assert (
                hashlib.sha256(resp.read()).digest()
                == hashlib.sha256((PORTAL / "api" / "webhook-example.yaml").read_bytes()).digest()
            )
        served_root = Path(info["root"])
        assert served_root.is_dir() and not (served_root / "manifest.json").exists()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert not Path(info["root"]).exists()  # the verified copy is removed when the server stops


def test_tampered_portal_is_not_served(stella: Stella, bundle: tuple[Path, str], signer: Path, tmp_path: Path) -> None:
    members = [
        (info, b"<script>steal()</script>" if info.name == "portal/js/app.js" else data)
        for info, data in _members(bundle[0])
    ]
    res = stella("devportal", "serve", _repack(tmp_path / "t.tgz", members), "--key", signer, "--port", "0")
    assert res.code == 4 and "portal/js/app.js" in res.err and "serving" not in res.out
