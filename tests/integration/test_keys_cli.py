"""`stella keys import|rename|delete` and where a passphrase comes from (file, $STELLA_PASSWORD, a prompt)."""

from __future__ import annotations

import os
import pty
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from tests.conftest import ROOT, CliResult

Stella = Callable[..., CliResult]
SECRET = "correct horse battery staple"


def _pem(key: Any, passphrase: str | None = None, fmt: Any = serialization.PrivateFormat.PKCS8) -> bytes:
    encryption = (
        serialization.BestAvailableEncryption(passphrase.encode()) if passphrase else serialization.NoEncryption()
    )
    data: bytes = key.private_bytes(serialization.Encoding.PEM, fmt, encryption)
    return data


def _public(key: Any) -> bytes:
    data: bytes = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return data


def test_import_plain_and_encrypted_keys_and_sign_with_them(
    stella: Stella, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p256 = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "sec1.pem").write_bytes(_pem(p256, fmt=serialization.PrivateFormat.TraditionalOpenSSL))
    res = stella("keys", "import", "plain", tmp_path / "sec1.pem")
    assert res.code == 0, res.err
    assert "imported ecdsa-p256 key plain (unencrypted)" in res.out
    assert stella("keys", "export-public", "plain").out.encode() == _public(p256)

    edkey = ed25519.Ed25519PrivateKey.generate()
    (tmp_path / "ed.pem").write_bytes(_pem(edkey, SECRET))
    res = stella("keys", "import", "ed", tmp_path / "ed.pem")  # no passphrase anywhere, no terminal
    assert res.code == 2 and "encrypted" in res.err and "STELLA_PASSWORD" in res.err
    monkeypatch.setenv("STELLA_PASSWORD", "wrong")
    res = stella("keys", "import", "ed", tmp_path / "ed.pem")
    assert res.code == 5 and "wrong passphrase" in res.err
    monkeypatch.setenv("STELLA_PASSWORD", SECRET)
    res = stella("keys", "import", "ed", tmp_path / "ed.pem", "--json")
    assert res.code == 0, res.err
    body: Any = res.json()
    assert body["algorithm"] == "ed25519" and body["encrypted"] is True
    assert SECRET not in res.out + res.err

    # The encrypted key signs with $STELLA_PASSWORD; without it the build says where a passphrase comes from.
    assert stella("import", "--quiet", ROOT / "samples" / "advisories" / "GO-2020-0001.json").code == 0
    res = stella("export", "run", "--profile", "json:raw", "--key", "ed", "--out", tmp_path / "b.tar.zst")
    assert res.code == 0, res.err
    monkeypatch.delenv("STELLA_PASSWORD")
    res = stella("export", "run", "--profile", "json:raw", "--key", "ed", "--out", tmp_path / "c.tar.zst")
    assert res.code == 2 and "is encrypted" in res.err and "STELLA_PASSWORD" in res.err

    passfile = tmp_path / "pass.txt"
    passfile.write_text(SECRET + "\n")
    (tmp_path / "p256-enc.pem").write_bytes(_pem(ec.generate_private_key(ec.SECP256R1()), SECRET))
    assert stella("keys", "import", "enc", tmp_path / "p256-enc.pem", "--passphrase-file", passfile).code == 0

    # What cannot sign a stella bundle is refused, saying what it is.
    (tmp_path / "rsa.pem").write_bytes(_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)))
    res = stella("keys", "import", "rsa", tmp_path / "rsa.pem")
    assert res.code == 3 and "ECDSA P-256 and Ed25519" in res.err
    (tmp_path / "pub.pem").write_bytes(_public(p256))
    res = stella("keys", "import", "pub", tmp_path / "pub.pem")
    assert res.code == 3 and "not a PEM private key" in res.err and "stella trust add" in res.err
    assert stella("keys", "import", "plain", tmp_path / "sec1.pem").code == 2  # the name is taken
    listed: Any = stella("keys", "list", "--json").json()
    assert [k["name"] for k in listed["keys"]] == ["ed", "enc", "plain"]


def test_rename_and_delete(stella: Stella, home: Path, tmp_path: Path) -> None:
    assert stella("keys", "generate", "old").code == 0
    pub = stella("keys", "export-public", "old").out
    res = stella("keys", "rename", "old", "new")
    assert res.code == 0 and "renamed key old to new" in res.out
    assert stella("keys", "export-public", "new").out == pub
    res = stella("keys", "export-public", "old")
    assert res.code != 0 and "no key named 'old'" in res.err
    assert sorted(p.name for p in (home / "keys").iterdir()) == ["new.json", "new.key", "new.pub"]
    assert stella("keys", "generate", "other").code == 0
    res = stella("keys", "rename", "new", "other")
    assert res.code == 2 and "already exists" in res.err
    res = stella("keys", "delete", "other")
    assert res.code == 2 and "--yes" in res.err and (home / "keys" / "other.key").exists()
    res = stella("keys", "delete", "other", "--yes")
    assert res.code == 0 and "deleted key other" in res.out
    assert not (home / "keys" / "other.key").exists()
    # A key the TUF repository signs with is neither deleted nor renamed behind its back.
    assert stella("tuf", "init", "--key", "new").code == 0
    res = stella("keys", "delete", "new", "--yes")
    assert res.code == 2 and "signs the TUF role" in res.err
    assert stella("keys", "rename", "new", "newer").code == 2
    assert (home / "keys" / "new.key").exists()


def test_an_encrypted_key_passphrase_is_asked_for_on_a_terminal(tmp_path: Path) -> None:
    """On a terminal, with no file and no $STELLA_PASSWORD, `keys import` asks (without echo) and goes on."""
    (tmp_path / "enc.pem").write_bytes(_pem(ec.generate_private_key(ec.SECP256R1()), SECRET))
    env = {k: v for k, v in os.environ.items() if k != "STELLA_PASSWORD"} | {"STELLA_HOME": str(tmp_path / "h")}
    argv = [sys.executable, "-m", "app.cli", "keys", "import", "k", str(tmp_path / "enc.pem")]
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.chdir(ROOT)
        os.execve(sys.executable, argv, env)
    seen = b""
    deadline = time.monotonic() + 60
    while b"passphrase of enc.pem:" not in seen and time.monotonic() < deadline:
        seen += os.read(fd, 1024)
    os.write(fd, SECRET.encode() + b"\n")
    while time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, seen
    assert b"imported ecdsa-p256 key" in seen and b"(encrypted), key id" in seen  # the name is in bold
    assert SECRET.encode() not in seen  # not echoed
