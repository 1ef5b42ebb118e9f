"""Our signatures as other tools see them: openssl (blob and DSSE signatures) and @sigstore/verify (bundles).

Each check also runs the other way round where it matters: signatures made by openssl must pass our
verifier, and tampered data must fail in the external tool, so a checker that accepts everything
would be caught.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from core.canonical import canonical_json
from core.contract.payload_types import IN_TOTO as IN_TOTO_PAYLOAD_TYPE
from core.home import Home
from core.keys import KeyAlgorithm, PrivateKey
from core.signing import Signer, cosign_blob_signature, dsse_envelope, sigstore_bundle_v03
from core.trust import TrustStore
from tests.conftest import require_tool, sigstore_js_verifier
from verify.signatures import find_blob_signer, verify_dsse

pytestmark = pytest.mark.interop


STATEMENT = canonical_json(
    {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "export.json", "digest": {"sha256": "0" * 64}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {"buildType": "https://stella.example/export/v1", "externalParameters": {}},
            "runDetails": {"builder": {"id": "https://stella.example/builder"}},
        },
    }
)


def _private(algorithm: KeyAlgorithm) -> PrivateKey:
    if algorithm is KeyAlgorithm.ED25519:
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(params=list(KeyAlgorithm), ids=lambda a: str(a))
def signer(request: pytest.FixtureRequest) -> Signer:
    return Signer(_private(request.param))


def _run(*argv: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, cwd=cwd, check=False)


def _openssl_verify(openssl: str, algorithm: KeyAlgorithm, pub: Path, sig: Path, data: Path) -> bool:
    """The commands verify.sh and an operator use (crypto-stack.md 2.2)."""
    if algorithm is KeyAlgorithm.ED25519:
        res = _run(openssl, "pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin", "-in", data, "-sigfile", sig)
        ok = res.returncode == 0 and "Signature Verified Successfully" in res.stdout
    else:
        res = _run(openssl, "dgst", "-sha256", "-verify", pub, "-signature", sig, data)
        ok = res.returncode == 0 and "Verified OK" in res.stdout
    return ok


# --- openssl ---------------------------------------------------------------------------------------


def test_openssl_verifies_cosign_blob_signature(signer: Signer, tmp_path: Path) -> None:
    openssl, b64 = require_tool("openssl"), require_tool("base64")
    pub = tmp_path / "key.pub"
    pub.write_bytes(signer.public_pem)
    blob = tmp_path / "export.json"
    blob.write_bytes(canonical_json({"counts": {"advisories": 7}, "schema": "stella.export/v1"}))
    sig_text = tmp_path / "export.json.sig"
    sig_text.write_bytes(cosign_blob_signature(signer, blob))
    assert b"\n" not in sig_text.read_bytes()
    # `base64 -d export.json.sig > export.json.sig.raw`, as verify.sh does it.
    decoded = subprocess.run([b64, "-d", str(sig_text)], capture_output=True, check=False)
    assert decoded.returncode == 0, decoded.stderr
    sig_raw = tmp_path / "export.json.sig.raw"
    sig_raw.write_bytes(decoded.stdout)
    assert _openssl_verify(openssl, signer.algorithm, pub, sig_raw, blob)
    blob.write_bytes(blob.read_bytes().replace(b"7", b"8"))
    assert not _openssl_verify(openssl, signer.algorithm, pub, sig_raw, blob)


def test_openssl_verifies_a_streamed_signature_of_a_large_file(tmp_path: Path) -> None:
    openssl = require_tool("openssl")
    signer = Signer(ec.generate_private_key(ec.SECP256R1()))
    pub = tmp_path / "key.pub"
    pub.write_bytes(signer.public_pem)
    blob = tmp_path / "payload.bin"
    blob.write_bytes(os.urandom(3 * 1024 * 1024 + 17))  # spans several 1 MiB read chunks
    sig = tmp_path / "payload.sig"
    sig.write_bytes(base64.b64decode(cosign_blob_signature(signer, blob)))
    assert _openssl_verify(openssl, KeyAlgorithm.ECDSA_P256, pub, sig, blob)


def test_openssl_verifies_dsse_signature_over_pae_rebuilt_by_the_shell(signer: Signer, tmp_path: Path) -> None:
    openssl, bash = require_tool("openssl"), require_tool("bash")
    env = dsse_envelope(signer, IN_TOTO_PAYLOAD_TYPE, STATEMENT)
    pub = tmp_path / "key.pub"
    pub.write_bytes(signer.public_pem)
    payload = tmp_path / "statement.json"
    payload.write_bytes(base64.b64decode(env["payload"]))
    sig = tmp_path / "statement.sig"
    sig.write_bytes(base64.b64decode(env["signatures"][0]["sig"]))
    # Rebuild PAE the way an operator would with nothing but a shell, independently of core.signing.pae.
    pae_file = tmp_path / "statement.pae"
    script = 'T="$1"; LEN=$(wc -c < "$2"); printf "DSSEv1 %d %s %d " "${#T}" "$T" "$LEN"; cat "$2"'
    built = subprocess.run(
        [bash, "-c", script, "pae", env["payloadType"], str(payload)], capture_output=True, check=True
    ).stdout
    pae_file.write_bytes(built)
    assert built.startswith(b"DSSEv1 28 application/vnd.in-toto+json ")
    assert _openssl_verify(openssl, signer.algorithm, pub, sig, pae_file)
    # A payload changed by one byte no longer verifies.
    payload.write_bytes(payload.read_bytes().replace(b"export.json", b"export.jsom"))
    pae_file.write_bytes(
        subprocess.run(
            [bash, "-c", script, "pae", env["payloadType"], str(payload)], capture_output=True, check=True
        ).stdout
    )
    assert not _openssl_verify(openssl, signer.algorithm, pub, sig, pae_file)


@pytest.mark.parametrize("algorithm", list(KeyAlgorithm), ids=str)
def test_our_verifier_accepts_signatures_made_by_openssl(algorithm: KeyAlgorithm, tmp_path: Path) -> None:
    openssl = require_tool("openssl")
    key = tmp_path / "key.pem"
    if algorithm is KeyAlgorithm.ED25519:
        gen = _run(openssl, "genpkey", "-algorithm", "ed25519", "-out", key)
    else:
        gen = _run(openssl, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
    assert gen.returncode == 0, gen.stderr
    pub = tmp_path / "key.pub"
    assert _run(openssl, "pkey", "-in", key, "-pubout", "-out", pub).returncode == 0
    store = TrustStore(Home(tmp_path / "home"))
    trusted = store.add("openssl-made", pub.read_bytes())
    blob = tmp_path / "blob"
    blob.write_bytes(b"made elsewhere")
    sig = tmp_path / "blob.sig"
    if algorithm is KeyAlgorithm.ED25519:
        made = _run(openssl, "pkeyutl", "-sign", "-inkey", key, "-rawin", "-in", blob, "-out", sig)
    else:
        made = _run(openssl, "dgst", "-sha256", "-sign", key, "-out", sig, blob)
    assert made.returncode == 0, made.stderr
    signature_text = base64.b64encode(sig.read_bytes())
    assert find_blob_signer(store.keys(), blob, signature_text) == trusted

    # A DSSE envelope signed by openssl over PAE bytes: our verifier must accept it too.
    pae_file = tmp_path / "pae.bin"
    pae_file.write_bytes(b"DSSEv1 %d %b %d %b" % (len(IN_TOTO_PAYLOAD_TYPE), IN_TOTO_PAYLOAD_TYPE.encode(), 4, b"test"))
    if algorithm is KeyAlgorithm.ED25519:
        made = _run(openssl, "pkeyutl", "-sign", "-inkey", key, "-rawin", "-in", pae_file, "-out", sig)
    else:
        made = _run(openssl, "dgst", "-sha256", "-sign", key, "-out", sig, pae_file)
    assert made.returncode == 0, made.stderr
    env = {
        "payload": base64.b64encode(b"test").decode(),
        "payloadType": IN_TOTO_PAYLOAD_TYPE,
        "signatures": [{"keyid": "", "sig": base64.b64encode(sig.read_bytes()).decode()}],
    }
    assert verify_dsse(env, store.keys()) == (IN_TOTO_PAYLOAD_TYPE, b"test", trusted)


# --- @sigstore/verify 4.1.3 ------------------------------------------------------------------------


def _write_bundle(tmp_path: Path, bundle: dict[str, object], name: str = "provenance.sigstore.json") -> Path:
    path = tmp_path / name
    path.write_bytes(canonical_json(bundle))
    return path


def test_sigstore_js_accepts_our_dsse_bundle(signer: Signer, tmp_path: Path) -> None:
    verifier = sigstore_js_verifier()
    pub = tmp_path / "key.pub"
    pub.write_bytes(signer.public_pem)
    bundle = _write_bundle(
        tmp_path, sigstore_bundle_v03(dsse_envelope(signer, IN_TOTO_PAYLOAD_TYPE, STATEMENT), signer)
    )
    res = _run(*verifier, bundle, pub)
    assert res.returncode == 0, res.stderr
    result = json.loads(res.stdout)
    assert result == {
        "verified": True,
        "hint": signer.hint,
        "keyType": "ed25519" if signer.algorithm is KeyAlgorithm.ED25519 else "ec",
        "payloadType": IN_TOTO_PAYLOAD_TYPE,
    }


def test_sigstore_js_rejects_a_tampered_payload(signer: Signer, tmp_path: Path) -> None:
    verifier = sigstore_js_verifier()
    pub = tmp_path / "key.pub"
    pub.write_bytes(signer.public_pem)
    bundle = sigstore_bundle_v03(dsse_envelope(signer, IN_TOTO_PAYLOAD_TYPE, STATEMENT), signer)
    envelope = bundle["dsseEnvelope"]
    assert isinstance(envelope, dict)
    envelope["payload"] = base64.b64encode(STATEMENT.replace(b"export.json", b"export.jsom")).decode()
    res = _run(*verifier, _write_bundle(tmp_path, bundle), pub)
    assert res.returncode == 1
    assert "SIGNATURE_ERROR" in res.stderr


def test_sigstore_js_rejects_the_wrong_key(signer: Signer, tmp_path: Path) -> None:
    verifier = sigstore_js_verifier()
    impostor = Signer(ec.generate_private_key(ec.SECP256R1()))
    wrong_pub = tmp_path / "wrong.pub"
    wrong_pub.write_bytes(impostor.public_pem)
    bundle = sigstore_bundle_v03(dsse_envelope(signer, IN_TOTO_PAYLOAD_TYPE, STATEMENT), signer)
    # The bundle names our key, so a verifier handed another key does not even find one to try.
    res = _run(*verifier, _write_bundle(tmp_path, bundle), wrong_pub)
    assert res.returncode == 1 and "unknown key hint" in res.stderr
    # Even when the hint is made to name the impostor's key, its signature check fails.
    material = bundle["verificationMaterial"]
    assert isinstance(material, dict)
    material["publicKey"] = {"hint": impostor.hint}
    res = _run(*verifier, _write_bundle(tmp_path, bundle, "relabelled.sigstore.json"), wrong_pub)
    assert res.returncode == 1 and "SIGNATURE_ERROR" in res.stderr
