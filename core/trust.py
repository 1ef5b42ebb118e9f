"""The trust store: public keys a receiver accepts signatures from, each with a label and a scope.

Layout under the home (``home.trust_dir``)::

    trust/keys/<label>.pem    the public key, SubjectPublicKeyInfo PEM (as added, re-encoded)
    trust/keys/<label>.json   {"label", "keyid", "algorithm", "profiles", "tenants", "added", "receiptsOnly"}

A key may be limited to some export profiles and some tenants; an empty list means any. A profile
entry matches the exact profile (``mirror:full``) or every variant of a kind (``mirror``). Only ECDSA
P-256 and Ed25519 keys are accepted, the two algorithms stella and cosign sign with.

A key added with ``receiptsOnly`` (`stella trust add LABEL PUB --receipts-only`, for a receiver's receipt key) is
accepted for mirror import receipts only: it signs no bundle, of any profile, for any tenant, and a bundle it
signed is refused as such (exit 5), saying so.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from core.atomic import write_bytes
from core.clock import rfc3339, utcnow
from core.errors import BadInputError, EnvironmentFailure, NotFoundError, UsageError
from core.home import Home
from core.keys import KeyAlgorithm, PublicKey, keyid_of, public_pem
from core.signing import algorithm_of, public_key_hint

_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class TrustedKey:
    """A public key in the trust store and where it may be used."""

    label: str
    keyid: str
    algorithm: KeyAlgorithm
    public_key: PublicKey = field(compare=False, repr=False)
    profiles: tuple[str, ...] = ()
    tenants: tuple[str, ...] = ()
    added: str = ""
    #: Accepted for mirror import receipts only, never as a bundle signer.
    receipts_only: bool = False

    @property
    def hint(self) -> str:
        """The Sigstore ``publicKey.hint`` of this key (base64 SHA-256 of the DER SubjectPublicKeyInfo)."""
        return public_key_hint(self.public_key)

    @property
    def public_pem(self) -> bytes:
        """The key as SubjectPublicKeyInfo PEM."""
        return public_pem(self.public_key)

    def allows(self, profile: str, tenant: str) -> bool:
        """True when this key may sign bundles of ``profile`` for ``tenant`` (an empty scope allows any)."""
        return self.allows_profile(profile) and self.allows_tenant(tenant)

    def allows_profile(self, profile: str) -> bool:
        """True when ``profile`` (``kind:variant``) is in scope, by exact name or by its kind (never for a
        receipts-only key)."""
        if self.receipts_only:
            return False
        return not self.profiles or profile in self.profiles or profile.split(":", 1)[0] in self.profiles

    def allows_tenant(self, tenant: str) -> bool:
        """True when ``tenant`` is in scope."""
        return not self.tenants or tenant in self.tenants

    def to_dict(self) -> dict[str, object]:
        """The stable JSON form used by ``stella trust list --json``."""
        return {
            "label": self.label,
            "keyid": self.keyid,
            "algorithm": str(self.algorithm),
            "hint": self.hint,
            "profiles": list(self.profiles),
            "tenants": list(self.tenants),
            "added": self.added,
            "receiptsOnly": self.receipts_only,
        }


def parse_public_key(pem: bytes, *, source: str = "public key") -> PublicKey:
    """Load an ECDSA P-256 or Ed25519 public key from PEM; ``source`` names the file in errors."""
    # Recognise the usual wrong files first: a plain "cannot parse" would leave the user guessing.
    if b"PRIVATE KEY-----" in pem:
        raise BadInputError(
            "this is a private key; the trust store takes public keys only",
            path=source,
            hint="export the public half with `stella keys export-public NAME` or `openssl pkey -pubout`",
        )
    if b"-----BEGIN CERTIFICATE-----" in pem:
        raise BadInputError(
            "this is a certificate, not a public key",
            path=source,
            hint="extract its key with `openssl x509 -pubkey -noout -in CERT`",
        )
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm):
        raise BadInputError(
            "not a PEM public key (expected -----BEGIN PUBLIC KEY-----)",
            path=source,
        ) from None
    try:
        algorithm_of(key)
    except BadInputError as exc:
        raise BadInputError(exc.message, path=source, hint=exc.hint) from None
    assert isinstance(key, PublicKey)  # algorithm_of accepted it, so it is P-256 or Ed25519
    return key


def _check_label(label: str) -> None:
    if not _LABEL.match(label):
        raise UsageError(f"invalid label {label!r}", hint="letters, digits, '.', '_' and '-' (at most 64)")


def _scope(values: Iterable[str] | None, what: str) -> tuple[str, ...]:
    out: set[str] = set()
    for value in values or ():
        item = value.strip()
        if not item:
            raise UsageError(f"an empty {what} name is not allowed")
        out.add(item)
    return tuple(sorted(out))


class TrustStore:
    """The trusted public keys of one home (``trust/keys/``)."""

    def __init__(self, home: Home) -> None:
        self.dir = home.trust_dir / "keys"

    def _paths(self, label: str) -> tuple[Path, Path]:
        return self.dir / f"{label}.pem", self.dir / f"{label}.json"

    def add(
        self,
        label: str,
        pem_bytes: bytes,
        *,
        profiles: list[str] | None = None,
        tenants: list[str] | None = None,
        source: str | None = None,
        receipts_only: bool = False,
    ) -> TrustedKey:
        """Trust the public key in ``pem_bytes`` under ``label``; ``source`` names its file in errors.

        Refuses a label in use, a key already trusted under another label (two labels for one key
        would make "which signer was this" ambiguous), and keys other than ECDSA P-256 or Ed25519.
        """
        _check_label(label)
        if receipts_only and (profiles or tenants):
            raise UsageError(
                "a receipts-only key signs no bundle, so it takes no --profile or --tenant",
                hint="drop --profile/--tenant, or --receipts-only",
            )
        public = parse_public_key(pem_bytes, source=source or f"public key for {label!r}")
        pem_path, meta_path = self._paths(label)
        if meta_path.exists():
            raise UsageError(f"a trusted key labelled {label!r} already exists", path=str(meta_path))
        keyid = keyid_of(public)
        for existing in self.list():
            if existing.keyid == keyid:
                raise UsageError(
                    f"this key is already trusted as {existing.label!r}",
                    hint=f"remove it first with `stella trust remove {existing.label}` to change its scope",
                )
        key = TrustedKey(
            label=label,
            keyid=keyid,
            algorithm=algorithm_of(public),
            public_key=public,
            profiles=_scope(profiles, "profile"),
            tenants=_scope(tenants, "tenant"),
            added=rfc3339(utcnow().replace(microsecond=0)),
            receipts_only=receipts_only,
        )
        meta: dict[str, object] = {
            "label": key.label,
            "keyid": key.keyid,
            "algorithm": str(key.algorithm),
            "profiles": list(key.profiles),
            "tenants": list(key.tenants),
            "added": key.added,
        }
        if receipts_only:
            meta["receiptsOnly"] = True
        try:
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise EnvironmentFailure(f"cannot write the trust store: {exc.strerror}", path=str(self.dir)) from exc
        # Each file is written whole or not at all (core.atomic). The .json file marks the entry as present, so it
        # is written last and exclusively: a concurrent `trust add` of the same label fails here instead of
        # overwriting.
        what = "cannot write the trust store"
        write_bytes(pem_path, public_pem(public), mode=0o644, what=what)
        try:
            write_bytes(
                meta_path,
                (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode(),
                mode=0o644,
                exclusive=True,
                what=what,
            )
        except FileExistsError:
            raise UsageError(f"a trusted key labelled {label!r} already exists", path=str(meta_path)) from None
        except BaseException:
            with contextlib.suppress(OSError):
                pem_path.unlink()
            raise
        return key

    def get(self, label: str) -> TrustedKey:
        """The trusted key ``label``; ``NotFoundError`` if there is none."""
        _check_label(label)
        pem_path, meta_path = self._paths(label)
        try:
            meta_text = meta_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise NotFoundError(f"no trusted key labelled {label!r}", hint="see `stella trust list`") from None
        except OSError as exc:
            raise EnvironmentFailure(f"cannot read the trust store: {exc.strerror}", path=str(meta_path)) from exc
        try:
            meta = json.loads(meta_text)
            profiles = tuple(str(p) for p in meta.get("profiles") or ())
            tenants = tuple(str(t) for t in meta.get("tenants") or ())
            recorded_keyid = str(meta["keyid"])
            added = str(meta.get("added", ""))
            receipts_only = meta.get("receiptsOnly", False)
            if not isinstance(receipts_only, bool):
                raise TypeError("receiptsOnly")
        except (ValueError, KeyError, TypeError, AttributeError):
            raise BadInputError("damaged trust store entry (not the expected JSON)", path=str(meta_path)) from None
        try:
            pem = pem_path.read_bytes()
        except FileNotFoundError:
            raise BadInputError(
                "damaged trust store entry: its public key file is missing", path=str(pem_path)
            ) from None
        except OSError as exc:
            raise EnvironmentFailure(f"cannot read the trust store: {exc.strerror}", path=str(pem_path)) from exc
        public = parse_public_key(pem, source=str(pem_path))
        keyid = keyid_of(public)
        # The key id is recorded when the key is added; a different key in the .pem now means the file
        # was replaced behind the store's back, and a trust decision must not rest on it.
        if keyid != recorded_keyid:
            raise BadInputError(
                f"damaged trust store entry: the key in {pem_path.name} is not the one added as {label!r}",
                path=str(pem_path),
                hint=f"remove it with `stella trust remove {label}` and add the right key again",
            )
        return TrustedKey(label, keyid, algorithm_of(public), public, profiles, tenants, added, receipts_only)

    def list(self) -> list[TrustedKey]:
        """Every trusted key, sorted by label."""
        if not self.dir.is_dir():
            return []
        return [self.get(p.stem) for p in sorted(self.dir.glob("*.json")) if _LABEL.match(p.stem)]

    def keys(self, *, profile: str | None = None, tenant: str | None = None) -> builtins.list[TrustedKey]:
        """The keys a verifier may accept as signers: all but the receipts-only ones, narrowed to those allowing
        ``profile`` and/or ``tenant`` when given."""
        return [
            k
            for k in self.list()
            if not k.receipts_only
            and (profile is None or k.allows_profile(profile))
            and (tenant is None or k.allows_tenant(tenant))
        ]

    def remove(self, label: str) -> TrustedKey | None:
        """Stop trusting ``label``; returns what was removed.

        A damaged entry (unreadable metadata, a missing or replaced key file) is removed all the same,
        or the user could never repair the store; then the result is ``None``.
        """
        key: TrustedKey | None
        try:
            key = self.get(label)
        except NotFoundError:
            raise
        except BadInputError:
            key = None
        pem_path, meta_path = self._paths(label)
        try:
            # .json first: once it is gone the entry no longer exists, whatever happens to the .pem.
            meta_path.unlink()
            with contextlib.suppress(FileNotFoundError):
                pem_path.unlink()
        except OSError as exc:
            raise EnvironmentFailure(f"cannot change the trust store: {exc.strerror}", path=str(meta_path)) from exc
        return key
