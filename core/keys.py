"""Signing keys under the home: generate, import, list, rename, delete, export the public half.

Private keys are PKCS#8 PEM files with mode 0600, encrypted with a passphrase when one is given
(``-----BEGIN ENCRYPTED PRIVATE KEY-----``). Public keys are SubjectPublicKeyInfo PEM, the form
``cosign verify-blob --key`` and ``openssl dgst -verify`` read. The key id is the hex SHA-256 of
the DER public key.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from core.atomic import write_bytes
from core.clock import rfc3339, utcnow
from core.errors import BadInputError, EnvironmentFailure, NotFoundError, SignatureError, UsageError
from core.home import Home

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class KeyAlgorithm(StrEnum):
    ECDSA_P256 = "ecdsa-p256"
    ED25519 = "ed25519"


@dataclass(frozen=True)
class KeyInfo:
    """What ``keys list`` shows about a key."""

    name: str
    algorithm: KeyAlgorithm
    keyid: str
    created: str
    encrypted: bool

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "algorithm": str(self.algorithm),
            "keyid": self.keyid,
            "created": self.created,
            "encrypted": self.encrypted,
        }


def keyid_of(public: PublicKey) -> str:
    """Hex SHA-256 of the DER SubjectPublicKeyInfo."""
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def public_pem(public: PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def read_passphrase_file(path: Path) -> bytes:
    """The first line of ``path`` (without its newline); an empty passphrase is refused."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise BadInputError(f"cannot read passphrase file: {exc.strerror}", path=str(path)) from exc
    first = text.splitlines()[0] if text.strip() else b""
    if not first:
        raise BadInputError("passphrase file is empty", path=str(path))
    return first


class KeyStore:
    """The ``keys/`` directory of a home."""

    def __init__(self, home: Home) -> None:
        self.dir = home.keys_dir

    def _paths(self, name: str) -> tuple[Path, Path, Path]:
        return self.dir / f"{name}.key", self.dir / f"{name}.pub", self.dir / f"{name}.json"

    def generate(self, name: str, algorithm: KeyAlgorithm, passphrase: bytes | None = None) -> KeyInfo:
        """Create a key pair; refuses to overwrite an existing key."""
        self._free(name)
        private: PrivateKey = (
            ec.generate_private_key(ec.SECP256R1())
            if algorithm is KeyAlgorithm.ECDSA_P256
            else ed25519.Ed25519PrivateKey.generate()
        )
        return self._store(name, private, algorithm, passphrase)

    def import_pem(self, name: str, pem: bytes, passphrase: bytes | None = None, *, source: str) -> KeyInfo:
        """Store the PEM private key ``pem`` (PKCS#8 or SEC1 ``EC PRIVATE KEY``, as openssl and cosign write them;
        ECDSA P-256 or Ed25519) under ``name``, re-encoded as PKCS#8. An encrypted key needs ``passphrase`` and
        stays encrypted with it; an unencrypted one is encrypted only when ``passphrase`` is given."""
        self._free(name)
        if b"PRIVATE KEY-----" not in pem:
            raise BadInputError(
                "not a PEM private key (expected -----BEGIN PRIVATE KEY----- or ...ENCRYPTED PRIVATE KEY-----)",
                path=source,
                hint="a public key goes into the trust store instead: stella trust add LABEL PUB.pem",
            )
        encrypted = b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in pem or b"Proc-Type: 4,ENCRYPTED" in pem
        if encrypted and not passphrase:
            raise UsageError(
                "the private key is encrypted",
                path=source,
                hint="give its passphrase with --passphrase-file, $STELLA_PASSWORD or at the prompt",
            )
        try:
            private = serialization.load_pem_private_key(pem, password=passphrase if encrypted else None)
        except (ValueError, TypeError):
            if encrypted:
                raise SignatureError("cannot unlock the private key: wrong passphrase", path=source) from None
            raise BadInputError("cannot read the private key: not a PEM private key", path=source) from None
        except UnsupportedAlgorithm:
            raise BadInputError("unsupported private key algorithm", path=source) from None
        if isinstance(private, ec.EllipticCurvePrivateKey) and isinstance(private.curve, ec.SECP256R1):
            algorithm = KeyAlgorithm.ECDSA_P256
        elif isinstance(private, ed25519.Ed25519PrivateKey):
            algorithm = KeyAlgorithm.ED25519
        else:
            raise BadInputError("only ECDSA P-256 and Ed25519 private keys can sign stella bundles", path=source)
        return self._store(name, private, algorithm, passphrase)

    def _free(self, name: str) -> None:
        """Refuse an invalid name, or one a key already has."""
        if not _NAME.match(name):
            raise UsageError(f"invalid key name {name!r}", hint="letters, digits, '.', '_' and '-' (at most 64)")
        key_path, _, meta_path = self._paths(name)
        if meta_path.exists() or key_path.exists():
            raise UsageError(f"a key named {name!r} already exists", path=str(key_path))

    def _store(self, name: str, private: PrivateKey, algorithm: KeyAlgorithm, passphrase: bytes | None) -> KeyInfo:
        key_path, pub_path, meta_path = self._paths(name)
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
        )
        pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
        public = private.public_key()
        info = KeyInfo(name, algorithm, keyid_of(public), rfc3339(utcnow().replace(microsecond=0)), bool(passphrase))
        try:
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise EnvironmentFailure(f"cannot create the keys directory: {exc.strerror}", path=str(self.dir)) from exc
        # Each file is written whole or not at all; the private key takes the name exclusively. When one fails, the
        # ones already written are removed, so a full disk never leaves a key that blocks the name.
        written: list[Path] = []
        try:
            for path, data, mode in (
                (key_path, pem, 0o600),
                (pub_path, public_pem(public), 0o666),
                (meta_path, (json.dumps(info.to_dict(), indent=2, sort_keys=True) + "\n").encode(), 0o666),
            ):
                try:
                    write_bytes(path, data, mode=mode, exclusive=path != pub_path, what="cannot write the key")
                except FileExistsError:
                    raise UsageError(f"a key named {name!r} already exists", path=str(path)) from None
                written.append(path)
        except BaseException:
            for path in written:
                with contextlib.suppress(OSError):
                    path.unlink()
            raise
        return info

    def list(self) -> list[KeyInfo]:
        if not self.dir.is_dir():
            return []
        return [self.info(p.stem) for p in sorted(self.dir.glob("*.json"))]

    def info(self, name: str) -> KeyInfo:
        if not _NAME.match(name):
            raise NotFoundError(f"no key named {name!r}", hint="see `stella keys list`")
        _, _, meta_path = self._paths(name)
        try:
            meta = json.loads(meta_path.read_text())
        except FileNotFoundError:
            raise NotFoundError(f"no key named {name!r}", hint="see `stella keys list`") from None
        return KeyInfo(meta["name"], KeyAlgorithm(meta["algorithm"]), meta["keyid"], meta["created"], meta["encrypted"])

    def delete(self, name: str) -> KeyInfo:
        """Remove key ``name`` (private key, public key, metadata); returns what it was."""
        info = self.info(name)
        for path in self._paths(name):
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                raise EnvironmentFailure(f"cannot remove the key: {exc.strerror}", path=str(path)) from exc
        return info

    def rename(self, old: str, new: str) -> KeyInfo:
        """Give key ``old`` the name ``new`` (refused when ``new`` is taken); the key itself is unchanged."""
        info = self.info(old)
        self._free(new)
        renamed = KeyInfo(new, info.algorithm, info.keyid, info.created, info.encrypted)
        (old_key, old_pub, old_meta), (new_key, new_pub, new_meta) = self._paths(old), self._paths(new)
        # The new metadata is written first and exclusively (it claims the name); the old one goes last, so an
        # interrupted rename leaves the key under its old name, or under both, never under none.
        try:
            write_bytes(
                new_meta,
                (json.dumps(renamed.to_dict(), indent=2, sort_keys=True) + "\n").encode(),
                mode=0o666,
                exclusive=True,
                what="cannot rename the key",
            )
        except FileExistsError:
            raise UsageError(f"a key named {new!r} already exists", path=str(new_meta)) from None
        try:
            os.link(old_key, new_key)
            os.link(old_pub, new_pub)
            old_key.unlink()
            old_pub.unlink()
            old_meta.unlink()
        except OSError as exc:
            raise EnvironmentFailure(f"cannot rename the key: {exc.strerror}", path=str(old_key)) from exc
        return renamed

    def public_pem(self, name: str) -> bytes:
        self.info(name)
        return self._paths(name)[1].read_bytes()

    def load_private(self, name: str, passphrase: bytes | None = None) -> PrivateKey:
        """Load a private key; a wrong or missing passphrase is a clear signature-class error."""
        info = self.info(name)
        data = self._paths(name)[0].read_bytes()
        if info.encrypted and not passphrase:
            raise UsageError(
                f"key {name!r} is encrypted",
                hint="give its passphrase with --passphrase-file, or in $STELLA_PASSWORD (or at the prompt)",
            )
        try:
            key = serialization.load_pem_private_key(data, password=passphrase if info.encrypted else None)
        except (ValueError, TypeError):
            raise SignatureError(f"cannot unlock key {name!r}: wrong passphrase or damaged key file") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
            raise SignatureError(f"key {name!r} is not ECDSA P-256 or Ed25519")
        return key
