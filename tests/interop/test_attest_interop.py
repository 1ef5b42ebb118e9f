"""Attestation bundles as other tools see them: @sigstore/verify 4.1.3 and openssl.

* our key-based Sigstore bundles (the signed attestation manifest, and an attestation we signed with a trusted
  key) verify in npm ``@sigstore/verify`` with the public key alone, fully offline, and fail once tampered;
* the DSSE signatures (the attestation manifest's and our own attestation's) verify with ``openssl dgst`` over
  the PAE bytes rebuilt by the shell, and fail once tampered;
* the certificate chains the bundle ships check with ``openssl verify`` at the transparency log's time.
* keyless bundles, real and tampered one way at a time, get the same verdict from stella and @sigstore/verify.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from core.canonical import canonical_json
from core.contract.payload_types import IN_TOTO as IN_TOTO_PAYLOAD_TYPE
from core.signing import Signer, dsse_envelope, sigstore_bundle_v03
from tests.conftest import FIXTURES, ROOT, CliResult, require_tool, sigstore_js_verifier
from tests.integration.bundle_helpers import extract
from verify.attest_sigstore import IdentityPolicy, Trust, load_root, verify_bundle_file

pytestmark = pytest.mark.interop

Stella = Callable[..., CliResult]
NODE_DIR = ROOT / "tests" / "interop" / "node"
TRIVY = FIXTURES / "sigstore-offline" / "trivy-cyclonedx-attestation.sigstore.json"
STATEMENT = canonical_json(
    {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "app.tar", "digest": {"sha256": "ab" * 32}}],
        "predicateType": "https://stellaops.dev/test/release/v1",
        "predicate": {"release": "1.0"},
    }
)


def _run(*argv: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, cwd=cwd, check=False)


@pytest.fixture
def tree(stella: Stella, tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    """(extracted bundle, exporter key, attester key, our key-based attestation as shipped)."""
    assert stella("keys", "generate", "k").code == 0
    exporter = tmp_path / "k.pub"
    assert stella("keys", "export-public", "k", "--out", exporter).code == 0
    attester = Signer(ec.generate_private_key(ec.SECP256R1()))
    attester_pub = tmp_path / "attester.pub"
    attester_pub.write_bytes(attester.public_pem)
    assert stella("trust", "add", "attester", attester_pub).code == 0
    own = tmp_path / "release.sigstore.json"
    own.write_bytes(
        canonical_json(sigstore_bundle_v03(dsse_envelope(attester, IN_TOTO_PAYLOAD_TYPE, STATEMENT), attester))
    )
    assert stella("import", "--quiet", own, TRIVY).code == 0
    out = tmp_path / "att.tar.zst"
    assert stella("export", "run", "--profile", "attestation:bundle", "--key", "k", "--out", out).code == 0
    root = extract(out, tmp_path / "x")
    shipped = root / "attestations" / "documents" / f"{hashlib.sha256(own.read_bytes()).hexdigest()}.json"
    assert shipped.read_bytes() == own.read_bytes()
    return root, exporter, attester_pub, shipped


def _node_verify(bundle: Path, key: Path) -> subprocess.CompletedProcess[str]:
    return _run(*sigstore_js_verifier(), bundle, key, cwd=NODE_DIR)


def test_sigstore_js_accepts_the_signed_attestation_manifest(tree: tuple[Path, Path, Path, Path]) -> None:
    root, exporter, _, _ = tree
    res = _node_verify(root / "attestations" / "manifest.sigstore.json", exporter)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["verified"] is True and out["payloadType"] == IN_TOTO_PAYLOAD_TYPE
    # Tampered: one subject digest of the manifest changed inside the signed payload.
    bundle = json.loads((root / "attestations" / "manifest.sigstore.json").read_bytes())
    payload = base64.b64decode(bundle["dsseEnvelope"]["payload"])
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(payload.replace(b'"sha256":"', b'"sha256":"0', 1)).decode()
    tampered = root / "tampered.sigstore.json"
    tampered.write_text(json.dumps(bundle))
    bad = _node_verify(tampered, exporter)
    assert bad.returncode == 1 and "verification failed" in bad.stderr


def test_sigstore_js_accepts_our_key_based_attestation_as_shipped(tree: tuple[Path, Path, Path, Path]) -> None:
    _, exporter, attester, shipped = tree
    res = _node_verify(shipped, attester)
    assert res.returncode == 0, res.stderr
    # The exporter's key is not the attester's: refused.
    assert _node_verify(shipped, exporter).returncode == 1


@pytest.mark.parametrize("which", ["manifest", "attestation"])
def test_openssl_verifies_the_dsse_signatures_over_pae(tree: tuple[Path, Path, Path, Path], which: str) -> None:
    openssl, bash = require_tool("openssl"), require_tool("bash")
    root, exporter, attester, shipped = tree
    if which == "manifest":
        envelope = json.loads((root / "attestations" / "manifest.dsse.json").read_bytes())
        key = exporter
    else:
        envelope = json.loads(shipped.read_bytes())["dsseEnvelope"]
        key = attester
    payload = root / f"{which}.payload"
    payload.write_bytes(base64.b64decode(envelope["payload"]))
    sig = root / f"{which}.sig"
    sig.write_bytes(base64.b64decode(envelope["signatures"][0]["sig"]))
    script = 'T="$1"; LEN=$(wc -c < "$2"); printf "DSSEv1 %d %s %d " "${#T}" "$T" "$LEN"; cat "$2"'
    pae = root / f"{which}.pae"
    pae.write_bytes(
        subprocess.run(
            [bash, "-c", script, "pae", envelope["payloadType"], str(payload)], capture_output=True, check=True
        ).stdout
    )
    res = _run(openssl, "dgst", "-sha256", "-verify", key, "-signature", sig, pae)
    assert res.returncode == 0 and "Verified OK" in res.stdout, res.stdout + res.stderr
    pae.write_bytes(pae.read_bytes()[:-2] + b"X}")
    assert _run(openssl, "dgst", "-sha256", "-verify", key, "-signature", sig, pae).returncode != 0


def test_openssl_checks_the_shipped_certificate_chain_at_the_log_time(tree: tuple[Path, Path, Path, Path]) -> None:
    openssl = require_tool("openssl")
    root = tree[0]
    [chain_file] = list((root / "trust" / "certificates").glob("*.pem"))
    pems = chain_file.read_text().split("-----END CERTIFICATE-----")
    certs = [p + "-----END CERTIFICATE-----\n" for p in pems if "BEGIN CERTIFICATE" in p]
    assert len(certs) == 3  # leaf, Fulcio intermediate, Fulcio root
    leaf, intermediate, ca = (root / f"c{i}.pem" for i in range(3))
    for path, pem in zip((leaf, intermediate, ca), certs, strict=True):
        path.write_text(pem.lstrip())
    entry = json.loads((root / "tlog" / "entries.jsonl").read_text().splitlines()[0])
    at = str(entry["integratedTime"])
    ok = _run(openssl, "verify", "-attime", at, "-CAfile", ca, "-untrusted", intermediate, leaf)
    assert ok.returncode == 0 and ": OK" in ok.stdout, ok.stdout + ok.stderr
    # Fulcio certificates live ten minutes: now, long after signing, the chain is expired. This is why the
    # signing time comes from the transparency log.
    assert _run(openssl, "verify", "-CAfile", ca, "-untrusted", intermediate, leaf).returncode != 0


# -- keyless bundles: stella and @sigstore/verify reach the same verdict -----------------------------------------

OFFLINE = FIXTURES / "sigstore-offline"
SIGSTORE_JS_BUNDLE = OFFLINE / "sigstore.js@2.0.0-provenance.sigstore.json"


def _flip_b64(value: str) -> str:
    raw = bytearray(base64.b64decode(value))
    raw[-1] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def _entry(doc: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = doc["verificationMaterial"]["tlogEntries"][0]
    return entry


def _flip_checkpoint(doc: dict[str, Any]) -> None:
    checkpoint = _entry(doc)["inclusionProof"]["checkpoint"]
    lines = checkpoint["envelope"].split("\n")
    i = next(n for n, line in enumerate(lines) if line.startswith("\u2014 "))
    head, sig = lines[i].rsplit(" ", 1)
    lines[i] = f"{head} {_flip_b64(sig)}"
    checkpoint["envelope"] = "\n".join(lines)


def _set(*path: Any, to: Callable[[Any], Any]) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        target: Any = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = to(target[path[-1]])

    return change


TLOG_ENTRY = ("verificationMaterial", "tlogEntries", 0)
# (case, bundle, root, change or None): sigstore.js@2.0.0 goes through stella's own check (intoto/0.0.2), the
# conformance and Trivy bundles through sigstore-python; slsa-verifier's two tampered bundles fail in both.
AGREE: list[tuple[str, Path, str, Callable[[dict[str, Any]], None] | None]] = [
    ("sigstore.js", SIGSTORE_JS_BUNDLE, "production", None),
    ("sigstore.js-payload", SIGSTORE_JS_BUNDLE, "production", _set("dsseEnvelope", "payload", to=_flip_b64)),
    (
        "sigstore.js-signature",
        SIGSTORE_JS_BUNDLE,
        "production",
        _set("dsseEnvelope", "signatures", 0, "sig", to=_flip_b64),
    ),
    (
        "sigstore.js-set",
        SIGSTORE_JS_BUNDLE,
        "production",
        _set(*TLOG_ENTRY, "inclusionPromise", "signedEntryTimestamp", to=_flip_b64),
    ),
    (
        "sigstore.js-time",
        SIGSTORE_JS_BUNDLE,
        "production",
        _set(*TLOG_ENTRY, "integratedTime", to=lambda t: str(int(t) + 1)),
    ),
    (
        "sigstore.js-proof",
        SIGSTORE_JS_BUNDLE,
        "production",
        _set(*TLOG_ENTRY, "inclusionProof", "hashes", 0, to=_flip_b64),
    ),
    ("sigstore.js-checkpoint", SIGSTORE_JS_BUNDLE, "production", _flip_checkpoint),
    ("sigstore.js-staging-root", SIGSTORE_JS_BUNDLE, "staging", None),
    (
        "intoto-in-dsse-v3",
        OFFLINE / "conformance/happy-path-intoto-in-dsse-v3/bundle.sigstore.json",
        "production",
        None,
    ),
    ("trivy", OFFLINE / "trivy-cyclonedx-attestation.sigstore.json", "production", None),
    ("slsa-invalid-dsse-sig", OFFLINE / "must-fail/invalid-dsse-sig.intoto.sigstore", "production", None),
    ("slsa-mismatch-tlog", OFFLINE / "must-fail/mismatch-tlog.intoto.sigstore", "production", None),
]


@pytest.mark.parametrize(("case", "bundle", "root", "change"), AGREE, ids=[a[0] for a in AGREE])
def test_stella_and_sigstore_js_agree_on_keyless_bundles(
    case: str, bundle: Path, root: str, change: Callable[[dict[str, Any]], None] | None, tmp_path: Path
) -> None:
    verifier = sigstore_js_verifier()
    doc = json.loads(bundle.read_bytes())
    if change is not None:
        change(doc)
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(doc))
    root_path = OFFLINE / "trust" / f"{root}.trusted_root.json"
    theirs = _run(*verifier, path, "--trusted-root", root_path, cwd=NODE_DIR)
    ours = verify_bundle_file(
        path,
        trust=Trust(
            roots=[load_root(root_path.read_bytes(), name=root, source="file")],
            policy=IdentityPolicy(identity_regexp=".*", issuer_regexp=".*"),
        ),
    )
    assert ours.verified == (theirs.returncode == 0), (
        f"stella: {ours.error.diagnostics() if ours.error else 'verified'}; @sigstore/verify: {theirs.stderr}"
    )
    assert theirs.returncode in (0, 1), theirs.stderr
    if ours.verified:
        assert json.loads(theirs.stdout)["identity"] == ours.signer["identity"]
    expect_verified = change is None and root == "production" and not case.startswith("slsa-")
    assert ours.verified is expect_verified
