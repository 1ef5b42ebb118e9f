"""Encrypted mirror bundles and the reference Debian `age` CLI,, both ways.

`age -d` decrypts every payload file we encrypted (X25519 recipients and a passphrase), and `stella mirror
import` decrypts payloads that `age` encrypted: our encrypted bundle's ``.age`` members are decrypted and
re-encrypted by the CLI, and the bundle is re-signed through ``core.bundle_rewrite`` (which re-derives the
manifest, provenance, checksums and archive through the bundle writer).

age reads passphrases from the terminal only (never stdin or a file), so the passphrase tests drive it through
a pseudo-terminal (``pty.fork``), answering its prompts the way a person at the keyboard would.
"""

from __future__ import annotations

import hashlib
import json
import os
import pty
import re
import select
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from core.bundle_rewrite import rewrite_bundle
from core.contract.mirror import STATE
from core.home import Home
from core.keys import KeyStore
from core.signing import Signer
from tests.conftest import ROOT, require_tool
from tests.integration.bundle_helpers import read_members

pytestmark = pytest.mark.interop

SAMPLES = ROOT / "samples"
PASSPHRASE = "correct horse battery staple"
_PROMPT = re.compile(rb"passphrase[^\n]*: ", re.IGNORECASE)


@pytest.fixture
def sender(stella: Any, home: Path, tmp_path: Path) -> dict[str, Any]:
    assert stella("import", "--quiet", *sorted(p for p in SAMPLES.iterdir() if p.is_dir())).code == 0
    assert stella("keys", "generate", "signer").code == 0
    assert stella("tuf", "init", "--key", "signer").code == 0
    pub = tmp_path / "signer.pub"
    assert stella("keys", "export-public", "signer", "--out", pub).code == 0
    return {"pub": pub, "root": home / "tuf" / "root" / "1.root.json", "home": home}


@pytest.fixture
def identity(tmp_path: Path) -> tuple[Path, str]:
    """An identity file made by `age-keygen`, and its recipient (as `age-keygen -y` derives it)."""
    keygen = require_tool("age-keygen")
    path = tmp_path / "receiver.key"
    made = subprocess.run([keygen, "-o", str(path)], capture_output=True, text=True, check=False)
    assert made.returncode == 0, made.stderr
    public = subprocess.run([keygen, "-y", str(path)], capture_output=True, text=True, check=False)
    assert public.returncode == 0, public.stderr
    recipient = public.stdout.strip()
    assert recipient.startswith("age1") and recipient in made.stderr
    return path, recipient


def _export(stella: Any, tmp_path: Path, name: str, *extra: str | Path) -> Path:
    out = tmp_path / f"{name}.tar.zst"
    result = stella("export", "run", "--profile", "mirror:full", "--key", "signer", "--out", out, *extra)
    assert result.code == 0, result.err
    return out


def _members(bundle: Path) -> dict[str, bytes]:
    return {info.name: data for info, data in read_members(bundle)}


def _tree_files(mirror: Path) -> dict[str, bytes]:
    tree = mirror / "current" / "tree"
    return {p.relative_to(tree).as_posix(): p.read_bytes() for p in sorted(tree.rglob("*")) if p.is_file()}


def _age_on_a_terminal(age: str, args: list[str], passphrase: str, timeout: float = 60.0) -> tuple[int, bytes]:
    """Run `age ARGS` with a pseudo-terminal as its controlling terminal, typing ``passphrase`` at each prompt.

    Returns the exit status and what age wrote to the terminal (prompts and errors); use ``-o`` for output.
    """
    pid, fd = pty.fork()
    if pid == 0:  # the child: its controlling terminal is the pty, which is what age opens as /dev/tty
        try:
            os.execv(age, [age, *args])
        finally:
            os._exit(127)
    seen = bytearray()
    answered = 0
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal (it exited)
                break
            if not chunk:
                break
            seen += chunk
            while len(_PROMPT.findall(bytes(seen))) > answered:
                os.write(fd, passphrase.encode() + b"\n")
                answered += 1
        else:
            os.kill(pid, 9)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), bytes(seen)


def _decrypt_all_with_age(members: dict[str, bytes], tmp_path: Path, decrypt: Any) -> dict[str, bytes]:
    """Every encrypted member decrypted by the age CLI (``decrypt(path, ct, out)``), checked against the manifest."""
    manifest = json.loads(members["export.json"])
    listed = {f["path"]: f for f in manifest["files"]}
    entries = manifest["encryption"]["files"]
    assert entries and {e["path"] for e in entries} == {p for p in members if p.endswith(".age")}
    plaintexts: dict[str, bytes] = {}
    for n, entry in enumerate(entries):
        data = members[entry["path"]]
        assert data.startswith(b"age-encryption.org/v1\n")
        assert hashlib.sha256(data).hexdigest() == listed[entry["path"]]["sha256"]  # ciphertext digest is signed
        ct, out = tmp_path / f"ct-{n}.age", tmp_path / f"pt-{n}"
        ct.write_bytes(data)
        decrypt(entry["path"], ct, out)
        # Compressed, then encrypted: what age gives back is one zstd frame of the plaintext (the zstd CLI reads it).
        assert manifest["encryption"]["compression"] == "zstd" and out.read_bytes().startswith(b"\x28\xb5\x2f\xfd")
        unpacked = subprocess.run([require_tool("zstd"), "-d", "-c", "-q", str(out)], capture_output=True, check=False)
        assert unpacked.returncode == 0, unpacked.stderr
        plain = unpacked.stdout
        assert hashlib.sha256(plain).hexdigest() == entry["plaintextSha256"]
        assert len(plain) == entry["plaintextSize"]
        plaintexts[entry["path"]] = plain
    return plaintexts


def _signer(home: Path) -> Signer:
    return Signer.from_keystore(KeyStore(Home(home)), "signer")


def test_age_cli_decrypts_every_payload_file_of_an_encrypted_mirror(
    stella: Any, sender: dict[str, Any], identity: tuple[Path, str], tmp_path: Path
) -> None:
    age = require_tool("age")
    id_file, recipient = identity
    bundle = _export(stella, tmp_path, "sealed", "--recipient", recipient)
    members = _members(bundle)

    def decrypt(_path: str, ct: Path, out: Path) -> None:
        res = subprocess.run([age, "-d", "-i", str(id_file), "-o", str(out), str(ct)], capture_output=True, check=False)
        assert res.returncode == 0, res.stderr

    plaintexts = _decrypt_all_with_age(members, tmp_path, decrypt)
    assert any(p.startswith("data/raw/") for p in plaintexts) and any(p.startswith("indexes/") for p in plaintexts)
    # Only payload is encrypted: state, TUF metadata, manifest and provenance stay readable.
    assert STATE in members and all(not p.endswith(".age") for p in members if p.startswith(("tuf/", "manifests/")))

    # A different identity is refused by age: the check above is not one that anything passes.
    other = tmp_path / "other.key"
    assert subprocess.run([require_tool("age-keygen"), "-o", str(other)], capture_output=True).returncode == 0
    ct = tmp_path / "one.age"
    ct.write_bytes(members[next(iter(plaintexts))])
    refused = subprocess.run([age, "-d", "-i", str(other), str(ct)], capture_output=True, text=True, check=False)
    assert refused.returncode != 0 and "no identity matched" in refused.stderr


def test_rewrite_with_no_replacement_reproduces_the_bundle(stella: Any, sender: dict[str, Any], tmp_path: Path) -> None:
    """The rewrite re-derives every digest and signature the way the build did: same bytes (Ed25519 signs
    deterministically), so what it writes for a replaced file is what a build would have written."""
    assert stella("keys", "generate", "ed", "--algorithm", "ed25519").code == 0
    out = tmp_path / "ed.tar.zst"
    assert stella("export", "run", "--profile", "mirror:full", "--key", "ed", "--out", out).code == 0
    again = tmp_path / "again.tar.zst"
    sha, size = rewrite_bundle(out, again, Signer.from_keystore(KeyStore(Home(sender["home"])), "ed"), {})
    assert again.read_bytes() == out.read_bytes()
    assert (sha, size) == (hashlib.sha256(out.read_bytes()).hexdigest(), out.stat().st_size)


def test_mirror_import_decrypts_payload_the_age_cli_encrypted(
    stella: Any, sender: dict[str, Any], identity: tuple[Path, str], tmp_path: Path
) -> None:
    age = require_tool("age")
    id_file, recipient = identity
    ours = _export(stella, tmp_path, "ours", "--recipient", recipient)
    members = _members(ours)
    replaced: dict[str, Path] = {}

    def decrypt_and_reencrypt(path: str, ct: Path, out: Path) -> None:
        res = subprocess.run([age, "-d", "-i", str(id_file), "-o", str(out), str(ct)], capture_output=True, check=False)
        assert res.returncode == 0, res.stderr
        theirs = ct.with_suffix(".theirs.age")
        res = subprocess.run([age, "-r", recipient, "-o", str(theirs), str(out)], capture_output=True, check=False)
        assert res.returncode == 0, res.stderr
        assert theirs.read_bytes() != ct.read_bytes()  # a fresh file key: the CLI's own ciphertext
        replaced[path] = theirs

    manifest = json.loads(members["export.json"])
    plaintexts = _decrypt_all_with_age(members, tmp_path, decrypt_and_reencrypt)
    assert set(replaced) == set(plaintexts)

    theirs = tmp_path / "age-encrypted.tar.zst"
    rewrite_bundle(ours, theirs, _signer(sender["home"]), replaced)
    rewritten = _members(theirs)
    new_manifest = json.loads(rewritten["export.json"])
    listed = {f["path"]: f for f in new_manifest["files"]}
    for path, source in replaced.items():
        assert rewritten[path] == source.read_bytes()
        assert listed[path]["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert new_manifest["encryption"] == manifest["encryption"]  # same plaintext digests
    statement = json.loads(rewritten["provenance.json"])
    subjects = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
    assert all(subjects[p] == listed[p]["sha256"] for p in replaced)
    verified = stella("verify", theirs, "--key", sender["pub"], "--identity", id_file, "--json")
    assert verified.code == 0, verified.out

    mirror = tmp_path / "mirror"
    common = ("--into", mirror, "--key", sender["pub"], "--trust-root", sender["root"], "--json")
    assert stella("mirror", "import", theirs, *common).code == 2  # encrypted: the identity is needed
    imported = stella("mirror", "import", theirs, *common, "--identity", id_file)
    assert imported.code == 0, imported.err
    files = _tree_files(mirror)
    for path, plain in plaintexts.items():
        assert files[path.removesuffix(".age")] == plain
    assert not [p for p in files if p.endswith(".age")]
    raw = stella("mirror", "query", mirror, "--id", "GO-2020-0001", "--raw")
    assert raw.code == 0 and json.loads(raw.out)["id"] == "GO-2020-0001"


def test_age_cli_decrypts_a_passphrase_encrypted_mirror(stella: Any, sender: dict[str, Any], tmp_path: Path) -> None:
    age = require_tool("age")
    secret = tmp_path / "pass.txt"
    secret.write_text(PASSPHRASE + "\n")
    bundle = _export(stella, tmp_path, "scrypt", "--encrypt-passphrase-file", secret)
    members = _members(bundle)
    assert json.loads(members["export.json"])["encryption"]["scheme"] == "age-scrypt"

    def decrypt(_path: str, ct: Path, out: Path) -> None:
        code, screen = _age_on_a_terminal(age, ["-d", "-o", str(out), str(ct)], PASSPHRASE)
        assert code == 0, screen

    _decrypt_all_with_age(members, tmp_path, decrypt)
    # The wrong passphrase is refused by age.
    ct = tmp_path / "ct-0.age"
    code, screen = _age_on_a_terminal(age, ["-d", "-o", str(tmp_path / "nope"), str(ct)], "wrong horse")
    assert code != 0 and b"incorrect passphrase" in screen.lower()


def test_mirror_import_decrypts_payload_the_age_cli_encrypted_with_a_passphrase(
    stella: Any, sender: dict[str, Any], tmp_path: Path
) -> None:
    age = require_tool("age")
    secret = tmp_path / "pass.txt"
    secret.write_text(PASSPHRASE + "\n")
    ours = _export(stella, tmp_path, "scrypt", "--encrypt-passphrase-file", secret)
    members = _members(ours)
    replaced: dict[str, Path] = {}

    def decrypt_and_reencrypt(path: str, ct: Path, out: Path) -> None:
        code, screen = _age_on_a_terminal(age, ["-d", "-o", str(out), str(ct)], PASSPHRASE)
        assert code == 0, screen
        theirs = ct.with_suffix(".theirs.age")
        code, screen = _age_on_a_terminal(age, ["-p", "-o", str(theirs), str(out)], PASSPHRASE)
        assert code == 0, screen
        assert theirs.read_bytes().startswith(b"age-encryption.org/v1\n-> scrypt ")
        replaced[path] = theirs

    plaintexts = _decrypt_all_with_age(members, tmp_path, decrypt_and_reencrypt)
    theirs = tmp_path / "age-scrypt.tar.zst"
    rewrite_bundle(ours, theirs, _signer(sender["home"]), replaced)

    mirror = tmp_path / "mirror"
    common = ("--into", mirror, "--key", sender["pub"], "--trust-root", sender["root"], "--json")
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("wrong horse\n")
    refused = stella("mirror", "import", theirs, *common, "--passphrase-file", wrong)
    assert refused.code == 5 and "cannot decrypt" in refused.err and not (mirror / "current").exists()
    imported = stella("mirror", "import", theirs, *common, "--passphrase-file", secret)
    assert imported.code == 0, imported.err
    files = _tree_files(mirror)
    for path, plain in plaintexts.items():
        assert files[path.removesuffix(".age")] == plain
