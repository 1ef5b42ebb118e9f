"""Signing keys under the home: generate, list, export the public half, and unlock one to sign a build."""

from __future__ import annotations

from pathlib import Path

from core.atomic import write_bytes
from core.home import Home
from core.keys import KeyAlgorithm, KeyInfo, KeyStore, keyid_of, read_passphrase_file
from core.signing import Signer, algorithm_of
from core.trust import TrustedKey, parse_public_key


def read_passphrase(path: Path | None) -> bytes | None:
    """The passphrase in ``path`` (None when no file is given)."""
    return read_passphrase_file(path) if path is not None else None


def generate_key(home: Home, name: str, algorithm: KeyAlgorithm, passphrase_file: Path | None = None) -> KeyInfo:
    """`stella keys generate`: a new key pair, encrypted with the passphrase in ``passphrase_file`` if given."""
    passphrase = read_passphrase(passphrase_file)
    return KeyStore(home.ensure()).generate(name, algorithm, passphrase)


def list_keys(home: Home) -> list[KeyInfo]:
    """`stella keys list`: the signing keys of the home."""
    return KeyStore(home).list()


def public_key_pem(home: Home, name: str) -> bytes:
    """The public key of ``name`` (SubjectPublicKeyInfo PEM, as cosign writes it)."""
    return KeyStore(home).public_pem(name)


def export_public_key(home: Home, name: str, out: Path) -> Path:
    """`stella keys export-public NAME --out FILE`: write the public key to ``out``; returns its resolved path.

    The file is written whole or not at all (a link at ``out`` is replaced, not followed); a file that cannot be
    written is an :class:`EnvironmentFailure` (exit 8) naming it.
    """
    pem = public_key_pem(home, name)
    write_bytes(out, pem, what="cannot write the public key")
    return out.absolute()


def signer_for(home: Home, name: str, passphrase_file: Path | None = None) -> Signer:
    """The signer of key ``name``, unlocked with the passphrase in ``passphrase_file`` when it is encrypted."""
    return Signer.from_keystore(KeyStore(home), name, read_passphrase(passphrase_file))


def signer_trusted_key(home: Home, name: str) -> TrustedKey:
    """The public half of signing key ``name`` as a trusted key: what `stella verify --key NAME.pub` uses."""
    public = parse_public_key(public_key_pem(home, name), source=f"key {name}")
    return TrustedKey(f"key {name}", keyid_of(public), algorithm_of(public), public)
