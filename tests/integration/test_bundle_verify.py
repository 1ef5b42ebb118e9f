"""json:raw bundles end to end: build, verify, and every kind of tampering caught with the right exit code."""

from __future__ import annotations

import copy
import hashlib
import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, require_tool, sigstore_js_verifier
from tests.integration.bundle_helpers import extract, flip, read_members, write_members

SAMPLES = ROOT / "samples"
HEAD = [
    "export.json",
    "export.json.sig",
    "checksums.txt",
    "checksums.txt.sig",
    "README.txt",
    "verify.sh",
    "provenance.json",
    "provenance.dsse.json",
    "provenance.sigstore.json",
]


@pytest.fixture
def built(stella: Any, home: Path, tmp_path: Path) -> dict[str, Any]:
    """A json:raw bundle of the samples, signed with a fresh P-256 key; the public key exported."""
    assert stella("import", "--quiet", *sorted(p for p in SAMPLES.iterdir() if p.is_dir())).code == 0
    assert stella("keys", "generate", "signer").code == 0
    pub = tmp_path / "signer.pub"
    assert stella("keys", "export-public", "signer", "--out", pub).code == 0
    out = tmp_path / "bundle.tar.zst"
    res = stella("export", "run", "--profile", "json:raw", "--key", "signer", "--out", out, "--json")
    assert res.code == 0, res.err
    return {"bundle": out, "pub": pub, "run": res.json()}


def _verify(stella: Any, bundle: Path, pub: Path) -> Any:
    return stella("verify", bundle, "--key", pub, "--json")


def test_good_bundle_verifies_and_layout_is_manifest_first(stella: Any, built: dict[str, Any]) -> None:
    res = _verify(stella, built["bundle"], built["pub"])
    assert res.code == 0, res.out + res.err
    report = res.json()
    assert report["verified"] is True
    assert {c["check"] for c in report["checks"]} >= {
        "signature",
        "files",
        "checksums",
        "provenance",
        "sigstore bundle",
    }
    names = [info.name for info, _ in read_members(built["bundle"])]
    assert names[: len(HEAD)] == HEAD
    payload = names[len(HEAD) :]
    assert payload == sorted(payload) and payload
    assert "data/raw/advisory.pack" in payload and "data/raw/advisory.index.jsonl" in payload
    assert "data/advisories.jsonl.zst" in payload


def _tamper(built: dict[str, Any], tmp_path: Path, name: str, mutate: Any) -> Path:
    members = read_members(built["bundle"])
    out = []
    for info, data in members:
        if info.name == name:
            result = mutate(copy.copy(info), data)
            if result is None:
                continue
            out.append(result)
        else:
            out.append((info, data))
    return write_members(tmp_path / f"tampered-{name.replace('/', '_')}.tar.zst", out)


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("export.json", 5),
        ("export.json.sig", 5),
        ("checksums.txt", 5),  # the signature over it no longer verifies
        ("checksums.txt.sig", 5),
        ("README.txt", 4),
        ("verify.sh", 4),
        ("provenance.json", 4),
        ("provenance.dsse.json", 4),
        ("provenance.sigstore.json", 4),
        ("data/advisories.jsonl.zst", 4),
    ],
)
def test_one_flipped_byte_in_each_kind_of_file(
    stella: Any, built: dict[str, Any], tmp_path: Path, name: str, code: int
) -> None:
    bad = _tamper(built, tmp_path, name, lambda info, data: (info, flip(data)))
    res = _verify(stella, bad, built["pub"])
    assert res.code == code, res.out
    report = res.json()
    assert report["verified"] is False
    failed = [c for c in report["checks"] if not c["ok"]]
    assert failed and (failed[0].get("path") == name or name in failed[0]["detail"] or name.startswith("export.json"))


def test_raw_documents_come_out_byte_for_byte(built: dict[str, Any]) -> None:
    import json

    members = {i.name: d for i, d in read_members(built["bundle"])}
    originals = {hashlib.sha256(p.read_bytes()).hexdigest(): p.read_bytes() for p in SAMPLES.rglob("*") if p.is_file()}
    seen = 0
    for name in [n for n in members if n.endswith(".index.jsonl")]:
        pack = members[name.replace(".index.jsonl", ".pack")]
        for line in members[name].splitlines():
            entry = json.loads(line)
            doc = pack[entry["offset"] : entry["offset"] + entry["size"]]
            assert hashlib.sha256(doc).hexdigest() == entry["sha256"]
            assert doc == originals[entry["sha256"]]
            seen += 1
    assert seen == 11  # advisories, VEX and SBOMs among the samples


def test_flipped_byte_in_a_raw_document(stella: Any, built: dict[str, Any], tmp_path: Path) -> None:
    raw = "data/raw/advisory.pack"
    bad = _tamper(built, tmp_path, raw, lambda info, data: (info, flip(data)))
    res = _verify(stella, bad, built["pub"])
    assert res.code == 4
    assert raw in res.out


def test_removed_file(stella: Any, built: dict[str, Any], tmp_path: Path) -> None:
    bad = _tamper(built, tmp_path, "data/vex.jsonl.zst", lambda info, data: None)
    res = _verify(stella, bad, built["pub"])
    assert res.code == 4 and "missing" in res.out and "data/vex.jsonl.zst" in res.out


def test_added_file(stella: Any, built: dict[str, Any], tmp_path: Path) -> None:
    members = read_members(built["bundle"])
    extra = tarfile.TarInfo("data/zz-extra.json")
    extra.mtime = members[0][0].mtime
    bad = write_members(tmp_path / "added.tar.zst", [*members, (extra, b"{}")])
    res = _verify(stella, bad, built["pub"])
    assert res.code == 4 and "not listed" in res.out and "data/zz-extra.json" in res.out


def test_swapped_signature_and_wrong_key(stella: Any, built: dict[str, Any], tmp_path: Path) -> None:
    assert stella("keys", "generate", "other").code == 0
    other_pub = tmp_path / "other.pub"
    assert stella("keys", "export-public", "other", "--out", other_pub).code == 0
    res = _verify(stella, built["bundle"], other_pub)
    assert res.code == 5 and "does not verify" in res.out
    second = tmp_path / "second.tar.zst"
    assert stella("export", "run", "--profile", "json:raw", "--key", "other", "--out", second).code == 0
    other_sig = next(d for i, d in read_members(second) if i.name == "export.json.sig")
    bad = _tamper(built, tmp_path, "export.json.sig", lambda info, data: (info, other_sig))
    assert _verify(stella, bad, built["pub"]).code == 5


def test_truncated_archive(stella: Any, built: dict[str, Any], tmp_path: Path) -> None:
    data = built["bundle"].read_bytes()
    cut = tmp_path / "cut.tar.zst"
    cut.write_bytes(data[: len(data) * 3 // 4])
    res = _verify(stella, cut, built["pub"])
    assert res.code == 3, res.out


@pytest.mark.parametrize("kind", ["dotdot", "symlink"])
def test_hostile_entries(stella: Any, built: dict[str, Any], tmp_path: Path, kind: str) -> None:
    members = read_members(built["bundle"])
    info = tarfile.TarInfo("data/../../etc/evil" if kind == "dotdot" else "data/zz-link")
    if kind == "symlink":
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
    bad = write_members(tmp_path / f"{kind}.tar.zst", [*members, (info, b"x")])
    res = _verify(stella, bad, built["pub"])
    assert res.code == 4, res.out
    assert info.name in res.out


def test_unsigned_bundle_and_no_trusted_key(stella: Any, built: dict[str, Any], tmp_path: Path) -> None:
    res = stella("verify", built["bundle"], "--json")  # empty trust store
    assert res.code == 5 and "no trusted signer" in res.out
    assert stella("trust", "add", "release", built["pub"]).code == 0
    assert stella("verify", built["bundle"]).code == 0


def test_retry_reproduces_byte_identical_bundle_under_other_tz_locale_umask(
    stella: Any, home: Path, built: dict[str, Any], tmp_path: Path
) -> None:
    run_id = built["run"]["runId"]
    env = dict(os.environ, STELLA_HOME=str(home), TZ="Pacific/Chatham", LC_ALL="C.UTF-8", LANG="de_DE.UTF-8")
    again = tmp_path / "again.tar.zst"
    code = (
        "import os, sys; os.umask(0o077); from app.cli import main; "
        f"sys.exit(main(['export', 'retry', {run_id!r}, '--out', {str(again)!r}]))"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert hashlib.sha256(again.read_bytes()).hexdigest() == hashlib.sha256(built["bundle"].read_bytes()).hexdigest()


@pytest.mark.interop
def test_openssl_sha256sum_and_bundled_verify_sh(built: dict[str, Any], tmp_path: Path) -> None:
    openssl = require_tool("openssl")
    require_tool("sha256sum")
    tree = extract(built["bundle"], tmp_path / "tree")
    sig = tmp_path / "sig.der"
    sig.write_bytes(__import__("base64").b64decode((tree / "export.json.sig").read_bytes()))
    ok = subprocess.run(
        [openssl, "dgst", "-sha256", "-verify", built["pub"], "-signature", sig, tree / "export.json"],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0 and "Verified OK" in ok.stdout
    assert (
        subprocess.run(["sha256sum", "-c", "--strict", "checksums.txt"], cwd=tree, capture_output=True).returncode == 0
    )
    good = subprocess.run(["sh", tree / "verify.sh", built["pub"]], capture_output=True, text=True)
    assert good.returncode == 0, good.stderr


@pytest.mark.interop
@pytest.mark.parametrize(
    ("action", "code"),
    [("flip-payload", 4), ("flip-manifest", 5), ("remove", 4), ("add", 4), ("flip-provenance", 4), ("symlink", 4)],
)
def test_verify_sh_fails_on_each_tampering(built: dict[str, Any], tmp_path: Path, action: str, code: int) -> None:
    require_tool("openssl")
    tree = extract(built["bundle"], tmp_path / "tree")
    payload = sorted(p for p in (tree / "data").rglob("*") if p.is_file())[0]
    if action == "flip-payload":
        payload.write_bytes(flip(payload.read_bytes()))
    elif action == "flip-manifest":
        m = tree / "export.json"
        m.write_bytes(m.read_bytes().replace(b'"tenant":"default"', b'"tenant":"defaulT"'))
    elif action == "remove":
        payload.unlink()
    elif action == "add":
        (tree / "data" / "extra.json").write_text("{}")
    elif action == "flip-provenance":
        p = tree / "provenance.json"
        p.write_bytes(flip(p.read_bytes()))
    elif action == "symlink":
        (tree / "data" / "link").symlink_to("/etc/passwd")
    res = subprocess.run(["sh", tree / "verify.sh", built["pub"]], capture_output=True, text=True)
    assert res.returncode == code, res.stdout + res.stderr
    assert "FAILED" in res.stderr


@pytest.mark.interop
def test_sigstore_js_verifies_the_bundles_provenance(built: dict[str, Any], tmp_path: Path) -> None:
    cmd = sigstore_js_verifier()
    tree = extract(built["bundle"], tmp_path / "tree")
    ok = subprocess.run(
        [*cmd, str(tree / "provenance.sigstore.json"), str(built["pub"])], capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    bundle = tree / "provenance.sigstore.json"
    bundle.write_bytes(bundle.read_bytes().replace(b'"payload":"ey', b'"payload":"eZ', 1))
    bad = subprocess.run([*cmd, str(bundle), str(built["pub"])], capture_output=True, text=True)
    assert bad.returncode != 0


@pytest.mark.interop
def test_openssl_verifies_the_dsse_signature_over_pae(built: dict[str, Any], tmp_path: Path) -> None:
    import base64
    import json

    openssl = require_tool("openssl")
    tree = extract(built["bundle"], tmp_path / "tree")
    envelope = json.loads((tree / "provenance.dsse.json").read_text())
    payload = base64.b64decode(envelope["payload"])
    assert payload == (tree / "provenance.json").read_bytes()
    ptype = envelope["payloadType"].encode()
    pae = tmp_path / "pae.bin"
    pae.write_bytes(b"DSSEv1 %d %s %d %s" % (len(ptype), ptype, len(payload), payload))
    sig = tmp_path / "dsse.sig"
    sig.write_bytes(base64.b64decode(envelope["signatures"][0]["sig"]))
    res = subprocess.run(
        [openssl, "dgst", "-sha256", "-verify", built["pub"], "-signature", sig, pae], capture_output=True, text=True
    )
    assert res.returncode == 0 and "Verified OK" in res.stdout


def test_json_policy_bundle_carries_snapshot_and_findings(stella: Any, built: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "policy.tar.zst"
    res = stella("export", "run", "--profile", "json:policy", "--key", "signer", "--out", out, "--json")
    assert res.code == 0, res.err
    assert _verify(stella, out, built["pub"]).code == 0
    members = dict((i.name, d) for i, d in read_members(out))
    manifest = __import__("json").loads(members["export.json"])
    assert manifest["profile"]["id"] == "json:policy"
    assert manifest["counts"]["policySnapshots"] == 1 and manifest["counts"]["findings"] > 0
    import zstandard

    snap = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(members["data/policy/snapshots.jsonl.zst"])).read()
    record = __import__("json").loads(snap.splitlines()[0])
    assert {"policyVersion", "inputsHash", "decisionTraceFingerprint"} <= set(record)


def test_redaction_allowlist_keeps_only_listed_fields(stella: Any, built: dict[str, Any], tmp_path: Path) -> None:
    assert (
        stella(
            "export",
            "profile",
            "create",
            "minimal",
            "--base",
            "json:raw",
            "--set",
            "redaction_allowlist=advisoryId,aliases,affected.purl",
        ).code
        == 0
    )
    out = tmp_path / "redacted.tar.zst"
    assert stella("export", "run", "--profile", "minimal", "--key", "signer", "--out", out).code == 0
    assert _verify(stella, out, built["pub"]).code == 0
    members = dict((i.name, d) for i, d in read_members(out))
    assert not [n for n in members if n.startswith("data/raw/")], "raw documents carry every field: never shipped"
    import json

    import zstandard

    lines = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(members["data/advisories.jsonl.zst"])).read()
    for line in lines.splitlines():
        rec = json.loads(line)
        assert set(rec) <= {"advisoryId", "aliases", "affected"}
        for aff in rec.get("affected", []):
            assert set(aff) <= {"purl"}
    assert b"summary" not in lines


def test_a_cancelled_verification_raises_instead_of_giving_a_verdict(built: dict[str, Any]) -> None:
    from core.errors import Cancelled
    from core.progress import CancelToken, Check, CheckObserver
    from services.trust import keys_from_files
    from verify.bundle import verify_bundle

    token = CancelToken()
    seen: list[str] = []

    def cancel_after_the_signature(check: Check) -> None:
        seen.append(check.name)
        if check.name == "signature":
            token.cancel()

    with pytest.raises(Cancelled):
        verify_bundle(
            built["bundle"],
            keys_from_files([built["pub"]]),
            observer=CheckObserver(cancel_after_the_signature, token),
        )
    assert "signature" in seen and "files" not in seen
