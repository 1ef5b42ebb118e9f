"""Signing keys under the home: generate, import, list, rename, delete, export the public half, and unlock one
to sign a build.

A passphrase comes from, in order: a passphrase file (``--passphrase-file``); the environment variable
``STELLA_PASSWORD`` (as cosign reads ``COSIGN_PASSWORD``); or, on a terminal, a prompt
(:mod:`core.passphrase`: the CLI allows it, the TUI and scripts never get one). It is never logged or printed.
"""

from __future__ import annotations

from pathlib import Path

from core.atomic import write_bytes
from core.errors import EnvironmentFailure, UsageError
from core.home import Home
from core.keys import KeyAlgorithm, KeyInfo, KeyStore, keyid_of, read_passphrase_file
from core.passphrase import passphrase_from_env_or_prompt
from core.signing import Signer, algorithm_of
from core.trust import TrustedKey, parse_public_key


def read_passphrase(path: Path | None, *, ask: str | None = None) -> bytes | None:
    """The passphrase in ``path``; else ``$STELLA_PASSWORD`` when set; else, with ``ask`` (the question) and the
    CLI on a terminal, the one typed at a prompt; else None."""
    if path is not None:
        return read_passphrase_file(path)
    return passphrase_from_env_or_prompt(ask)


def generate_key(home: Home, name: str, algorithm: KeyAlgorithm, passphrase_file: Path | None = None) -> KeyInfo:
    """`stella keys generate`: a new key pair, encrypted with the passphrase in ``passphrase_file`` or
    ``$STELLA_PASSWORD`` if either is given (unencrypted otherwise: nobody is asked)."""
    passphrase = read_passphrase(passphrase_file)
    return KeyStore(home.ensure()).generate(name, algorithm, passphrase)


def import_key(home: Home, name: str, pem_file: Path, passphrase_file: Path | None = None) -> KeyInfo:
    """`stella keys import NAME FILE`: store the PEM private key in ``pem_file`` (ECDSA P-256 or Ed25519) as
    ``name``. An encrypted key is unlocked with its passphrase (file, ``$STELLA_PASSWORD`` or the prompt) and
    stays encrypted with it."""
    try:
        pem = pem_file.read_bytes()
    except OSError as exc:
        raise EnvironmentFailure(f"cannot read the private key: {exc.strerror}", path=str(pem_file)) from exc
    encrypted = b"ENCRYPTED" in pem
    passphrase = read_passphrase(passphrase_file, ask=f"passphrase of {pem_file.name}" if encrypted else None)
    return KeyStore(home.ensure()).import_pem(name, pem, passphrase, source=str(pem_file))


def _tuf_roles_of(home: Home, name: str) -> list[str]:
    from core.tuf_home import TufHome  # here: it loads tuf (and its boto3), which only delete and rename need

    tuf = TufHome(home)
    if not tuf.initialized:
        return []
    return sorted(role for role, config in tuf.config().roles.items() if name in config.keys)


def delete_key(home: Home, name: str) -> KeyInfo:
    """`stella keys delete NAME --yes`: remove the key for good; refused while it signs a TUF role."""
    _not_a_tuf_key(home, name, "deleted")
    return KeyStore(home).delete(name)


def rename_key(home: Home, old: str, new: str) -> KeyInfo:
    """`stella keys rename OLD NEW`: the same key under a new name; refused while it signs a TUF role (the TUF
    configuration names it)."""
    _not_a_tuf_key(home, old, "renamed")
    return KeyStore(home).rename(old, new)


def _not_a_tuf_key(home: Home, name: str, what: str) -> None:
    roles = _tuf_roles_of(home, name)
    if roles:
        raise UsageError(
            f"key {name!r} signs the TUF role(s) {', '.join(str(r) for r in roles)}: it cannot be {what}",
            hint="rotate it out first (stella tuf rotate), then try again",
        )


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
    """The signer of key ``name``, unlocked when it is encrypted with the passphrase in ``passphrase_file``, else
    ``$STELLA_PASSWORD``, else (the CLI on a terminal) the one typed at a prompt."""
    store = KeyStore(home)
    ask = f"passphrase of key {name}" if store.info(name).encrypted else None
    return Signer.from_keystore(store, name, read_passphrase(passphrase_file, ask=ask))


def signer_trusted_key(home: Home, name: str) -> TrustedKey:
    """The public half of signing key ``name`` as a trusted key: what `stella verify --key NAME.pub` uses."""
    public = parse_public_key(public_key_pem(home, name), source=f"key {name}")
    return TrustedKey(f"key {name}", keyid_of(public), algorithm_of(public), public)
