"""A receiver's receipt key is trusted for import receipts only (`stella trust add LABEL PUB --receipts-only`):
the sender takes the receiver's receipts as the base of a delta, and refuses any bundle that key signed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import ROOT, CliResult

Stella = Callable[..., CliResult]
SAMPLES = ROOT / "samples"


def test_a_receipts_only_key_signs_receipts_and_no_bundle(stella: Stella, home: Path, tmp_path: Path) -> None:
    # The sender: documents, a bundle signing key, a TUF repository, a full mirror bundle.
    assert stella("import", "--quiet", *sorted(p for p in SAMPLES.iterdir() if p.is_dir())).code == 0
    assert stella("keys", "generate", "signer").code == 0
    assert stella("tuf", "init", "--key", "signer").code == 0
    signer_pub = tmp_path / "signer.pub"
    assert stella("keys", "export-public", "signer", "--out", signer_pub).code == 0
    full = tmp_path / "full.tar.zst"
    assert stella("export", "run", "--profile", "mirror:full", "--key", "signer", "--out", full).code == 0
    # The receiver, in its own home: imports it and signs a receipt with its own receipt key.
    receiver, mirror = tmp_path / "receiver", tmp_path / "mirror"
    root = home / "tuf" / "root" / "1.root.json"
    res = stella(
        "mirror", "import", full, "--into", mirror, "--key", signer_pub, "--trust-root", root, "--home", receiver,
        "--json",
    )  # fmt: skip
    assert res.code == 0, res.err
    receipt_key: Any = res.json()
    receipt_pub = tmp_path / "receipt.pub"
    name = receipt_key["receiptKey"]["name"]
    assert stella("keys", "export-public", name, "--out", receipt_pub, "--home", receiver).code == 0

    # Not trusted yet: the receipt is refused as the base of a delta.
    receipt = mirror / "current" / "meta" / "receipt.json"
    delta = tmp_path / "delta.tar.zst"
    res = stella("export", "run", "--profile", "mirror:delta", "--base", receipt, "--key", "signer", "--out", delta)
    assert res.code == 5 and "not signed by a trusted key" in res.err

    # The sender trusts that key for receipts only.
    res = stella("trust", "add", "receiver", receipt_pub, "--receipts-only")
    assert res.code == 0 and "for import receipts only" in res.out
    listed: Any = stella("trust", "list", "--json").json()
    assert [(k["label"], k["receiptsOnly"]) for k in listed["keys"]] == [("receiver", True)]
    assert "receipts only" in stella("trust", "list").out
    res = stella("trust", "add", "again", receipt_pub, "--receipts-only", "--profile", "mirror")
    assert res.code == 2 and "no --profile or --tenant" in res.err

    # Accepted for receipts: the receipt is the base of the next delta.
    res = stella("export", "run", "--profile", "mirror:delta", "--base", receipt, "--key", "signer", "--out", delta)
    assert res.code == 0, res.err

    # Refused as a bundle signer, of any profile, saying why.
    assert stella("keys", "generate", "rogue").code == 0
    rogue_pub = tmp_path / "rogue.pub"
    assert stella("keys", "export-public", "rogue", "--out", rogue_pub).code == 0
    assert stella("trust", "add", "rogue", rogue_pub, "--receipts-only").code == 0
    signed = tmp_path / "signed-by-a-receipt-key.tar.zst"
    assert stella("export", "run", "--profile", "json:raw", "--key", "rogue", "--out", signed).code == 0
    res = stella("verify", signed)
    assert res.code == 5
    assert "trusted key 'rogue' is trusted for import receipts only, not to sign profile 'json:raw'" in res.err
    body: Any = stella("verify", signed, "--json").json()
    assert body["exitCode"] == 5 and body["error"]["error"] == "signature"
    # The same key trusted without the scope verifies: the refusal is the scope's, not the signature's.
    assert stella("trust", "remove", "rogue").code == 0
    assert stella("trust", "add", "rogue", rogue_pub).code == 0
    assert stella("verify", signed).code == 0
