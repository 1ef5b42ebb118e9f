"""Encrypted payloads (age X25519): readable manifest, checkable without the identity, decryptable by `age`."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pyrage import x25519

from tests.conftest import ROOT, require_tool
from tests.integration.bundle_helpers import read_members

SAMPLES = ROOT / "samples"


@pytest.fixture
def encrypted(stella: Any, tmp_path: Path) -> dict[str, Any]:
    identity = x25519.Identity.generate()
    id_file = tmp_path / "receiver.key"
    id_file.write_text(f"# receiver\n{identity}\n")
    assert stella("import", "--quiet", *sorted(p for p in SAMPLES.iterdir() if p.is_dir())).code == 0
    assert stella("keys", "generate", "k").code == 0
    pub = tmp_path / "k.pub"
    assert stella("keys", "export-public", "k", "--out", pub).code == 0
    res = stella(
        "export",
        "profile",
        "create",
        "sealed",
        "--base",
        "json:raw",
        "--set",
        f"encryption_recipients={identity.to_public()}",
    )
    assert res.code == 0, res.err
    out = tmp_path / "sealed.tar.zst"
    assert stella("export", "run", "--profile", "sealed", "--key", "k", "--out", out).code == 0
    return {"bundle": out, "pub": pub, "identity": id_file}


def test_only_payload_is_encrypted_and_manifest_records_both_digests(encrypted: dict[str, Any]) -> None:
    members = {i.name: d for i, d in read_members(encrypted["bundle"])}
    payload = [n for n in members if n.startswith("data/")]
    assert payload and all(n.endswith(".age") for n in payload)
    assert all(members[n].startswith(b"age-encryption.org/v1\n") for n in payload)
    manifest = json.loads(members["export.json"])  # readable for a cross-domain guard
    enc = manifest["encryption"]
    assert enc["scheme"] == "age-x25519" and len(enc["recipients"]) == 1
    assert {f["path"] for f in enc["files"]} == set(payload)
    assert b"AGE-SECRET-KEY" not in members["export.json"]
    json.loads(members["provenance.json"])  # provenance stays readable too


def test_verify_without_identity_checks_ciphertext(stella: Any, encrypted: dict[str, Any]) -> None:
    res = stella("verify", encrypted["bundle"], "--key", encrypted["pub"], "--json")
    assert res.code == 0, res.out
    checks = {c["check"]: c for c in res.json()["checks"]}  # type: ignore[index]
    assert "give --identity" in checks["encryption"]["detail"]


def test_verify_with_identity_checks_plaintext_and_wrong_identity_fails(
    stella: Any, encrypted: dict[str, Any], tmp_path: Path
) -> None:
    res = stella(
        "verify", encrypted["bundle"], "--key", encrypted["pub"], "--identity", encrypted["identity"], "--json"
    )
    assert res.code == 0, res.out
    assert any(c["check"] == "decryption" and c["ok"] for c in res.json()["checks"])  # type: ignore[index]
    other = tmp_path / "other.key"
    other.write_text(f"{x25519.Identity.generate()}\n")
    bad = stella("verify", encrypted["bundle"], "--key", encrypted["pub"], "--identity", other, "--json")
    assert bad.code == 5 and "cannot decrypt" in bad.out


def test_bad_recipient_is_refused(stella: Any) -> None:
    res = stella(
        "export", "profile", "create", "broken", "--base", "json:raw", "--set", "encryption_recipients=age1nope"
    )
    assert res.code == 3 and "not an age X25519 recipient" in res.err


@pytest.mark.interop
def test_reference_age_cli_decrypts_our_payload(encrypted: dict[str, Any], tmp_path: Path) -> None:
    """Compressed, then encrypted: `age -d` gives one zstd frame, and the `zstd` CLI gives the signed plaintext."""
    age = require_tool("age")
    zstd = require_tool("zstd")
    members = {i.name: d for i, d in read_members(encrypted["bundle"])}
    manifest = json.loads(members["export.json"])
    assert manifest["encryption"]["compression"] == "zstd"
    for entry in manifest["encryption"]["files"]:
        ct = tmp_path / "ct.age"
        ct.write_bytes(members[entry["path"]])
        out = subprocess.run([age, "-d", "-i", str(encrypted["identity"]), str(ct)], capture_output=True)
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith(b"\x28\xb5\x2f\xfd")  # a zstd frame, not the plaintext itself
        plain = subprocess.run([zstd, "-d", "-c", "-q"], input=out.stdout, capture_output=True)
        assert plain.returncode == 0, plain.stderr
        assert hashlib.sha256(plain.stdout).hexdigest() == entry["plaintextSha256"]
        assert len(plain.stdout) == entry["plaintextSize"]
