"""Keys: generation, file modes, passphrases, and cosign/openssl-compatible public keys."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from core.errors import SignatureError, UsageError
from core.home import Home
from core.keys import KeyAlgorithm, KeyStore
from tests.conftest import require_tool


@pytest.mark.parametrize("algorithm", list(KeyAlgorithm))
def test_generate_writes_private_key_0600_and_lists_it(tmp_path: Path, algorithm: KeyAlgorithm) -> None:
    ks = KeyStore(Home(tmp_path))
    info = ks.generate("release", algorithm)
    key_file = tmp_path / "keys" / "release.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert [k.name for k in ks.list()] == ["release"]
    assert ks.list()[0].keyid == info.keyid and len(info.keyid) == 64


def test_encrypted_key_needs_the_right_passphrase(tmp_path: Path) -> None:
    ks = KeyStore(Home(tmp_path))
    ks.generate("sealed", KeyAlgorithm.ECDSA_P256, b"correct horse")
    assert (tmp_path / "keys" / "sealed.key").read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert ks.info("sealed").encrypted
    with pytest.raises(UsageError, match="encrypted"):
        ks.load_private("sealed")
    with pytest.raises(SignatureError, match="wrong passphrase"):
        ks.load_private("sealed", b"battery staple")
    assert isinstance(ks.load_private("sealed", b"correct horse"), ec.EllipticCurvePrivateKey)


def test_refuses_to_overwrite_and_bad_names(tmp_path: Path) -> None:
    ks = KeyStore(Home(tmp_path))
    ks.generate("k1", KeyAlgorithm.ED25519)
    with pytest.raises(UsageError, match="already exists"):
        ks.generate("k1", KeyAlgorithm.ED25519)
    with pytest.raises(UsageError, match="invalid key name"):
        ks.generate("../escape", KeyAlgorithm.ED25519)


@pytest.mark.interop
def test_openssl_verifies_a_signature_with_the_exported_p256_key(tmp_path: Path) -> None:
    openssl = require_tool("openssl")
    ks = KeyStore(Home(tmp_path))
    ks.generate("cosign", KeyAlgorithm.ECDSA_P256)
    pub = tmp_path / "cosign.pub"
    pub.write_bytes(ks.public_pem("cosign"))
    blob = tmp_path / "blob"
    blob.write_bytes(b"evidence")
    key = ks.load_private("cosign")
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    sig = tmp_path / "blob.sig"
    sig.write_bytes(key.sign(b"evidence", ec.ECDSA(hashes.SHA256())))
    ok = subprocess.run(
        [openssl, "dgst", "-sha256", "-verify", str(pub), "-signature", str(sig), str(blob)],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0 and "Verified OK" in ok.stdout
    blob.write_bytes(b"evidencf")
    bad = subprocess.run(
        [openssl, "dgst", "-sha256", "-verify", str(pub), "-signature", str(sig), str(blob)],
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0


@pytest.mark.interop
def test_openssl_reads_ed25519_public_key(tmp_path: Path) -> None:
    openssl = require_tool("openssl")
    ks = KeyStore(Home(tmp_path))
    ks.generate("ed", KeyAlgorithm.ED25519)
    pub = tmp_path / "ed.pub"
    pub.write_bytes(ks.public_pem("ed"))
    out = subprocess.run(
        [openssl, "pkey", "-pubin", "-in", str(pub), "-text", "-noout"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "ED25519" in out.stdout
