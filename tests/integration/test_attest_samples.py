"""The samples' attestations as a new user meets them: an unsigned in-toto Statement is named as such, with what
to do; the keyless Sigstore bundle alone, with the identity that signed it, verifies and imports."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.conftest import ROOT, CliResult

Stella = Callable[..., CliResult]
SAMPLES = ROOT / "samples" / "attestations"
IDENTITY = (
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/"
    "extremely-dangerous-oidc-beacon.yml@refs/heads/main"
)
ISSUER = "https://token.actions.githubusercontent.com"


def test_an_unsigned_statement_is_named_with_what_to_do(stella: Stella, tmp_path: Path) -> None:
    assert stella("keys", "generate", "release").code == 0
    pub = tmp_path / "release.pub"
    assert stella("keys", "export-public", "release", "--out", pub).code == 0
    assert stella("import", "--quiet", SAMPLES).code == 0
    everything = tmp_path / "all.tar.zst"
    assert stella("export", "run", "--profile", "attestation:bundle", "--key", "release", "--out", everything).code == 0
    res = stella(
        "attest", "bundle", "verify", everything, "--key", pub,
        "--certificate-identity", IDENTITY, "--certificate-oidc-issuer", ISSUER,
    )  # fmt: skip
    assert res.code == 5
    assert "an unsigned in-toto Statement: there is no signature to verify" in res.out
    assert "hint: 1 of the attestations is a bare in-toto Statement with no signature" in res.err
    assert "--selector format=sigstore-bundle" in res.err

    # The walkthrough: only the keyless Sigstore bundle, with the identity that signed it.
    signed = tmp_path / "attestations.tar.zst"
    res = stella(
        "export", "run", "--profile", "attestation:bundle", "--selector", "format=sigstore-bundle",
        "--key", "release", "--out", signed,
    )  # fmt: skip
    assert res.code == 0, res.err
    res = stella(
        "attest", "bundle", "verify", signed, "--key", pub,
        "--certificate-identity", IDENTITY, "--certificate-oidc-issuer", ISSUER,
    )  # fmt: skip
    assert res.code == 0, res.out + res.err
    assert "hint:" not in res.err
    res = stella(
        "attest", "bundle", "import", signed, "--key", pub,
        "--certificate-identity-regexp", r"https://github\.com/sigstore-conformance/.*",
        "--certificate-oidc-issuer", ISSUER, "--home", tmp_path / "receiver",
    )  # fmt: skip
    assert res.code == 0, res.out + res.err
    assert "imported 1 new" in res.out
