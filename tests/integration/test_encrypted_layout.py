"""Encrypted payload layout: each file is compressed (one zstd frame), then age-encrypted.

An encrypted mirror bundle is about the size of the plain one, and every way the content inside age can be wrong
is refused: a correctly encrypted and signed ``.age`` file whose content is not exactly one zstd frame of the
signed plaintext fails `stella verify --identity` and `stella mirror import` with exit 4, and leaves nothing in
the mirror. The replacements are re-signed through ``core.bundle_rewrite``, so only the decryption check can
catch them.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pyrage
import pytest
import zstandard
from pyrage import x25519

from core.age_stream import decrypt_stream
from core.bundle_rewrite import rewrite_bundle
from core.home import Home
from core.keys import KeyStore
from core.signing import Signer
from tests.conftest import ROOT
from tests.integration.bundle_helpers import read_members

SAMPLES = ROOT / "samples"


@pytest.fixture
def sender(stella: Any, home: Path, tmp_path: Path) -> dict[str, Any]:
    assert stella("import", "--quiet", *sorted(p for p in SAMPLES.iterdir() if p.is_dir())).code == 0
    assert stella("keys", "generate", "signer").code == 0
    assert stella("tuf", "init", "--key", "signer").code == 0
    pub = tmp_path / "signer.pub"
    assert stella("keys", "export-public", "signer", "--out", pub).code == 0
    identity = x25519.Identity.generate()
    id_file = tmp_path / "receiver.key"
    id_file.write_text(f"{identity}\n")
    return {
        "home": home,
        "pub": pub,
        "root": home / "tuf" / "root" / "1.root.json",
        "identity": identity,
        "id_file": id_file,
    }


def _export(stella: Any, tmp_path: Path, name: str, *extra: str | Path) -> Path:
    out = tmp_path / f"{name}.tar.zst"
    result = stella("export", "run", "--profile", "mirror:full", "--key", "signer", "--out", out, *extra)
    assert result.code == 0, result.err
    return out


def _members(bundle: Path) -> dict[str, bytes]:
    return {info.name: data for info, data in read_members(bundle)}


def test_each_encrypted_file_is_one_zstd_frame_of_its_signed_plaintext(
    stella: Any, sender: dict[str, Any], tmp_path: Path
) -> None:
    plain = _export(stella, tmp_path, "plain")
    sealed = _export(stella, tmp_path, "sealed", "--recipient", str(sender["identity"].to_public()))
    plain_members, members = _members(plain), _members(sealed)
    manifest = json.loads(members["export.json"])
    section = manifest["encryption"]
    assert section["compression"] == "zstd" and section["files"]
    for entry in section["files"]:
        frame = io.BytesIO()
        decrypt_stream(io.BytesIO(members[entry["path"]]), frame, [str(sender["identity"])])
        data = frame.getvalue()
        assert data.startswith(b"\x28\xb5\x2f\xfd")
        content = zstandard.ZstdDecompressor().decompress(data, max_output_size=entry["plaintextSize"])
        # The plaintext is the very file the unencrypted bundle ships under the same path.
        assert content == plain_members[entry["path"].removesuffix(".age")]
    # Compressed before it is encrypted: the JSON packs shrink inside age, so the sealed bundle is not the
    # size of its plaintext (it was 4.7x the plain bundle when ciphertext reached the archive's compressor).
    assert sealed.stat().st_size < 1.10 * plain.stat().st_size + 16 * 1024 * len(section["files"])
    raw = sum(e["plaintextSize"] for e in section["files"] if e["path"].startswith("data/raw/"))
    ciphertext = sum(len(members[e["path"]]) for e in section["files"] if e["path"].startswith("data/raw/"))
    assert ciphertext < raw / 2


def _replace(stella: Any, sender: dict[str, Any], tmp_path: Path, content: Any) -> tuple[Path, str]:
    """A re-signed copy of an encrypted mirror bundle whose first raw pack's age file holds ``content(frame, plain)``
    (encrypted to the receiver, so it decrypts; only what is inside is wrong)."""
    sealed = _export(stella, tmp_path, "sealed", "--recipient", str(sender["identity"].to_public()))
    members = _members(sealed)
    entry = next(
        e for e in json.loads(members["export.json"])["encryption"]["files"] if e["path"].startswith("data/raw/")
    )
    frame = io.BytesIO()
    decrypt_stream(io.BytesIO(members[entry["path"]]), frame, [str(sender["identity"])])
    plaintext = zstandard.ZstdDecompressor().decompress(frame.getvalue(), max_output_size=entry["plaintextSize"])
    replacement = tmp_path / "replacement.age"
    replacement.write_bytes(pyrage.encrypt(content(frame.getvalue(), plaintext), [sender["identity"].to_public()]))
    out = tmp_path / "hostile.tar.zst"
    signer = Signer.from_keystore(KeyStore(Home(sender["home"])), "signer")
    rewrite_bundle(sealed, out, signer, {entry["path"]: replacement})
    return out, entry["path"]


_HOSTILE = {
    "the plaintext itself, not a frame": lambda frame, plain: plain,
    "a frame with bytes after it": lambda frame, plain: frame + b"\0",
    "two frames": lambda frame, plain: frame + frame,
    "a frame cut short": lambda frame, plain: frame[:-9],
    "a frame of other bytes": lambda frame, plain: zstandard.ZstdCompressor().compress(plain[:-1] + b"?"),
    "a frame of more bytes than signed": lambda frame, plain: zstandard.ZstdCompressor().compress(plain + b"\n"),
    "a frame whose checksum fails": lambda frame, plain: frame[:-1] + bytes([frame[-1] ^ 1]),
}


@pytest.mark.parametrize("case", sorted(_HOSTILE))
def test_content_inside_age_that_is_not_the_signed_frame_is_refused(
    stella: Any, sender: dict[str, Any], tmp_path: Path, case: str
) -> None:
    hostile, _ = _replace(stella, sender, tmp_path, _HOSTILE[case])
    # Without the identity only ciphertext digests are checked, and they are signed: it verifies.
    assert stella("verify", hostile, "--key", sender["pub"]).code == 0
    checked = stella("verify", hostile, "--key", sender["pub"], "--identity", sender["id_file"], "--json")
    assert checked.code == 4, checked.out
    assert "decrypted plaintext differs from the signed manifest" in checked.out
    mirror = tmp_path / "mirror"
    imported = stella(
        "mirror", "import", hostile, "--into", mirror, "--key", sender["pub"], "--trust-root", sender["root"],
        "--identity", sender["id_file"], "--json",
    )  # fmt: skip
    assert imported.code == 4, imported.err
    assert not (mirror / "current").exists()


def test_the_untouched_bundle_passes_the_same_checks(stella: Any, sender: dict[str, Any], tmp_path: Path) -> None:
    """The hostile cases differ from this one only in what is inside age: the checks above are not ones that
    anything fails."""
    good, _ = _replace(stella, sender, tmp_path, lambda frame, plain: frame)
    checked = stella("verify", good, "--key", sender["pub"], "--identity", sender["id_file"], "--json")
    assert checked.code == 0, checked.out
    mirror = tmp_path / "mirror"
    imported = stella(
        "mirror", "import", good, "--into", mirror, "--key", sender["pub"], "--trust-root", sender["root"],
        "--identity", sender["id_file"], "--json",
    )  # fmt: skip
    assert imported.code == 0, imported.err
