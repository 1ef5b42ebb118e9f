"""Which public keys a receiver trusts: keys given for one command, or else the home's trust store."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from core.errors import EnvironmentFailure, UsageError
from core.home import Home
from core.keys import keyid_of
from core.signing import algorithm_of
from core.trust import TrustedKey, TrustStore, parse_public_key


def keys_from_files(paths: Sequence[Path]) -> list[TrustedKey]:
    """Trusted keys from PEM files given on the command line or in the TUI (labelled by their path)."""
    keys = []
    for path in paths:
        try:
            pem = path.read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read key: {exc.strerror}", path=str(path)) from None
        public = parse_public_key(pem, source=str(path))
        keys.append(TrustedKey(str(path), keyid_of(public), algorithm_of(public), public))
    return keys


def trusted_keys(home: Home, files: Sequence[Path] = ()) -> list[TrustedKey]:
    """The keys a receiving workflow trusts: ``files`` when given, or else every key of the home's trust store
    (receipts-only keys included, so that a bundle one of them signed is refused saying why)."""
    return keys_from_files(files) if files else TrustStore(home).list()


def trusted_signers(home: Home, files: Sequence[Path] = ()) -> list[TrustedKey]:
    """The keys a workflow accepts as the signers of documents inside a bundle (attestations): ``files`` when
    given, or else the trust store's keys but its receipts-only ones."""
    return keys_from_files(files) if files else TrustStore(home).keys()


def add_trusted_key(
    home: Home,
    label: str,
    pubkey: Path,
    *,
    profiles: Sequence[str] = (),
    tenants: Sequence[str] = (),
    receipts_only: bool = False,
) -> TrustedKey:
    """`stella trust add LABEL PUBKEY.pem`: trust the key in ``pubkey`` (for every profile and tenant unless scoped;
    with ``receipts_only``, for a receiver's import receipts and never as a bundle signer)."""
    try:
        pem = pubkey.read_bytes()
    except OSError as exc:
        raise EnvironmentFailure(f"cannot read public key: {exc.strerror}", path=str(pubkey)) from exc
    store = TrustStore(home.ensure())
    return store.add(
        label, pem, profiles=list(profiles), tenants=list(tenants), source=str(pubkey), receipts_only=receipts_only
    )


def list_trusted_keys(home: Home) -> list[TrustedKey]:
    """`stella trust list`: every key of the home's trust store."""
    return TrustStore(home).list()


def remove_trusted_key(home: Home, label: str) -> TrustedKey | None:
    """`stella trust remove LABEL`: the key no longer trusted (None when its entry was damaged)."""
    return TrustStore(home).remove(label)
