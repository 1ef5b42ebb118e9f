"""`stella inspect BUNDLE`: the manifest at a glance, said first and in JSON to be unverified; damaged archives fail
with the archive reader's clean error."""

from __future__ import annotations

import gzip
import tarfile
from pathlib import Path
from typing import Any

import pytest
from pyrage import x25519

from tests.conftest import ROOT
from tests.integration.test_risk_bundle import TODAY, redated


@pytest.fixture
def signed(stella: Any, tmp_path: Path) -> dict[str, Any]:
    assert stella("import", "--quiet", ROOT / "samples" / "advisories").code == 0
    assert stella("keys", "generate", "signer").code == 0
    pub = tmp_path / "signer.pub"
    assert stella("keys", "export-public", "signer", "--out", pub).code == 0
    out = tmp_path / "bundle.tar.zst"
    assert stella("export", "run", "--profile", "json:raw", "--key", "signer", "--out", out).code == 0
    return {"bundle": out, "pub": pub}


def test_inspect_shows_the_manifest_and_says_first_that_it_is_not_verified(stella: Any, signed: dict[str, Any]) -> None:
    shown = stella("inspect", signed["bundle"])
    assert shown.code == 0, shown.err
    lines = shown.out.splitlines()
    assert lines[0].startswith("NOT VERIFIED") and f"stella verify {signed['bundle']}" in shown.out
    verified = stella("verify", signed["bundle"], "--key", signed["pub"], "--json").json()["manifest"]
    keyid = stella("keys", "list", "--json").json()
    assert "json:raw" in shown.out and "default" in shown.out and verified["runId"] in shown.out

    body = stella("inspect", signed["bundle"], "--json").json()
    assert body["verified"] is False and body["note"].startswith("NOT VERIFIED")
    assert (body["profile"], body["tenant"], body["runId"]) == ("json:raw", "default", verified["runId"])
    assert body["createdAt"] == verified["createdAt"] and body["counts"] == verified["counts"]
    assert body["files"] == verified["fileCount"] > 6  # the six advisories and the head files
    assert body["payloadBytes"] > 0 and f"{body['files']} listed, {body['payloadBytes']} bytes" in shown.out
    assert body["archiveSize"] == signed["bundle"].stat().st_size
    assert body["signer"]["keyid"] == verified["signing"]["keyid"] in str(keyid)
    assert body["signer"]["signaturePresent"] is True and body["encryption"] is None and body["expiresAt"] is None


def test_inspect_shows_an_untrusted_bundle_that_verify_refuses(
    stella: Any, signed: dict[str, Any], tmp_path: Path
) -> None:
    """An inspector that read the claims is no verification: the same bundle fails `stella verify` (no trusted key)."""
    assert stella("inspect", signed["bundle"]).code == 0
    refused = stella("verify", signed["bundle"])
    assert refused.code == 5


def test_inspect_summarises_encryption(stella: Any, signed: dict[str, Any], tmp_path: Path) -> None:
    recipient = x25519.Identity.generate().to_public()
    out = tmp_path / "sealed.tar.zst"
    made = stella(
        "export", "run", "--profile", "json:raw", "--key", "signer", "--recipient", str(recipient), "--out", out
    )
    assert made.code == 0, made.err
    body = stella("inspect", out, "--json").json()
    assert body["encryption"]["recipients"] == 1 and body["encryption"]["files"] >= 1
    assert "age, 1 recipient(s)" in stella("inspect", out).out


def test_inspect_shows_a_risk_bundles_signed_expiry(stella: Any, signed: dict[str, Any], tmp_path: Path) -> None:
    kev, epss = redated(tmp_path, TODAY)
    gz = tmp_path / f"{epss.name}.gz"
    gz.write_bytes(gzip.compress(epss.read_bytes(), mtime=0))
    assert stella("import", "--quiet", kev, gz).code == 0
    out = tmp_path / "risk.tar.zst"
    made = stella("export", "run", "--profile", "risk:bundle", "--provider", "kev", "--provider", "epss", "--key",
                  "signer", "--out", out)  # fmt: skip
    assert made.code == 0, made.err
    signed_expiry = stella("verify", out, "--key", signed["pub"], "--json").json()["manifest"]["risk"]["expiresAt"]
    body = stella("inspect", out, "--json").json()
    assert body["profile"] == "risk:bundle" and body["expiresAt"] == signed_expiry
    assert f"expires     {signed_expiry}" in stella("inspect", out).out


def test_damaged_or_foreign_archives_fail_cleanly(stella: Any, signed: dict[str, Any], tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar.zst"
    junk.write_bytes(b"\x28\xb5\x2f\xfd" + bytes(range(256)) * 8)
    truncated = tmp_path / "truncated.tar.zst"
    truncated.write_bytes(signed["bundle"].read_bytes()[:4000])
    foreign = tmp_path / "foreign.tar.gz"
    readme = tmp_path / "README.md"
    readme.write_text("not a bundle\n")
    with tarfile.open(foreign, "w:gz") as tar:
        tar.add(readme, arcname="README.md")
    for path in (junk, truncated, foreign):
        result = stella("inspect", path)
        assert result.code in (3, 4), (path.name, result.code, result.err)
        assert result.out == "" and "Traceback" not in result.err
        assert result.err.startswith("error:") and len(result.err.strip().splitlines()) <= 2, result.err
    missing = stella("inspect", tmp_path / "nope.tar.zst")
    assert missing.code == 3 and "cannot read the bundle" in missing.err
