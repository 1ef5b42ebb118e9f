"""The home's TUF repository that signs mirror bundles: init, rotate, expiry, status, and refreshing a bundle.

`stella tuf ...` and the TUI's keys screen call these; each change returns the sentence both show and the
``--json`` body.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from adapters.profiles.mirror_refresh import refresh_bundle
from core.clock import utcnow
from core.durations import human_duration, parse_duration
from core.home import Home
from core.progress import Observer
from core.trust import TrustedKey
from core.tuf_home import DEFAULT_EXPIRIES, TufHome
from core.tuf_repo import TOP_LEVEL_ROLES, Expiries, role_keyids
from services.export import output_path
from services.keys import read_passphrase, signer_for
from verify.bundle import verify_bundle


@dataclass(frozen=True)
class TufChange:
    """What a change to the TUF repository did: the sentence to show and the ``--json`` body."""

    text: str
    body: dict[str, Any]


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


def init_tuf(
    home: Home,
    role_keys: dict[str, tuple[str, ...]],
    thresholds: dict[str, int] | None = None,
    expires: dict[str, timedelta] | None = None,
    *,
    passphrase_file: Path | None = None,
) -> TufChange:
    """`stella tuf init`: root version 1 naming ``role_keys`` (key-store names) for each top-level role.

    Roles missing from ``thresholds`` need one signature; roles missing from ``expires`` get the default expiry
    (:data:`core.tuf_home.DEFAULT_EXPIRIES`).
    """
    durations = {r: getattr(DEFAULT_EXPIRIES, r) for r in TOP_LEVEL_ROLES}
    durations.update(expires or {})
    tuf = TufHome(home.ensure())
    md = tuf.init(
        role_keys, thresholds or {}, Expiries(**durations), now=utcnow(), passphrase=read_passphrase(passphrase_file)
    )
    root_path = tuf.root_path(md.signed.version)
    body = {
        "rootVersion": md.signed.version,
        "rootPath": str(root_path),
        "expires": _iso(md.signed.expires),
        **tuf.config().to_dict(),
    }
    return TufChange(
        f"TUF repository created: root version 1, expires {_iso(md.signed.expires)}\n{pin_hint(root_path)}", body
    )


def pin_hint(root_path: Path) -> str:
    """Where the current root is, and what a receiver does with it (`tuf init`, `tuf rotate`, `tuf status`)."""
    return (
        f"root file: {root_path}\n"
        f"a receiver pins it on its first import: stella mirror import BUNDLE --into DIR --trust-root {root_path.name}"
        " (copy the file across with the bundle; check its sha256 with the receiver out of band)"
    )


def rotate_role(
    home: Home,
    role: str,
    keys: list[str],
    *,
    threshold: int | None = None,
    passphrase_file: Path | None = None,
) -> TufChange:
    """`stella tuf rotate ROLE --key ...`: root N+1 names the role's new keys, signed by the old and new root keys."""
    tuf = TufHome(home)
    md = tuf.rotate(role, tuple(keys), threshold=threshold, now=utcnow(), passphrase=read_passphrase(passphrase_file))
    version = md.signed.version
    root_path = tuf.root_path(version)
    return TufChange(
        f"root {version} names new {role} keys ({', '.join(keys)}), signed by the old and new root "
        f"keys; the next mirror bundle ships {version}.root.json (receivers that pinned an older root follow it)\n"
        f"root file: {root_path}",
        {
            "rootVersion": version,
            "rootPath": str(root_path),
            "role": role,
            "keys": keys,
            "expires": _iso(md.signed.expires),
        },
    )


def set_role_expiry(home: Home, role: str, duration_text: str) -> TufChange:
    """`stella tuf expiry ROLE DURATION`: how long the role's metadata stays valid after signing."""
    duration = parse_duration(duration_text)
    config = TufHome(home).set_expiry(role, duration)
    note = " (applies from the next root rotation)" if role == "root" else " (applies to the next export)"
    return TufChange(f"{role} metadata now expires {human_duration(duration)} after signing{note}", config.to_dict())


@dataclass(frozen=True)
class RefreshedBundle:
    """A mirror bundle with a new snapshot and timestamp (`stella tuf refresh`)."""

    path: Path
    sha256: str
    size: int

    @property
    def text(self) -> str:
        return (
            f"refreshed {self.path}: new snapshot and timestamp, payload unchanged "
            f"({self.size} bytes, sha256 {self.sha256})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {"bundle": str(self.path), "sha256": self.sha256, "size": self.size}


def refresh_mirror_bundle(
    home: Home,
    bundle: Path,
    out: Path,
    key: str,
    *,
    passphrase_file: Path | None = None,
    mkdir: bool = False,
    observer: Observer | None = None,
) -> RefreshedBundle:
    """`stella tuf refresh`: re-sign a mirror bundle's snapshot and timestamp with ``key``; the payload is unchanged.

    Only a bundle that ``key`` signed and that verifies intact is refreshed. The directory of ``out`` must exist
    unless ``mkdir`` (:func:`services.export.output_path`).
    """
    out = output_path(out, mkdir=mkdir)
    signer = signer_for(home, key, passphrase_file)
    own = TrustedKey(key, signer.keyid, signer.algorithm, signer.public_key)
    report = verify_bundle(bundle, [own])
    if report.error is not None:
        raise report.error
    sha, size = refresh_bundle(bundle, out, signer, home, now=utcnow(), sink=observer)
    return RefreshedBundle(out, sha, size)


@dataclass(frozen=True)
class RoleStatus:
    """One top-level role as `stella tuf status` shows it, with the key ids the latest root names for it."""

    role: str
    keys: tuple[str, ...]
    keyids: tuple[str, ...]
    threshold: int
    expires_after: timedelta


@dataclass(frozen=True)
class TufStatus:
    """The home's TUF repository: roles in the order TUF names them, and the latest root."""

    roles: list[RoleStatus]
    root_version: int
    root_expires: datetime
    root_versions: list[int]
    #: The latest root's file: the one a new receiver pins.
    root_path: Path
    body: dict[str, Any]


def tuf_status(home: Home) -> TufStatus:
    """`stella tuf status`: roles, keys, thresholds, expiries and the root versions kept.

    Raises :class:`core.errors.NotFoundError` when the home has no TUF repository (``stella tuf init``)."""
    tuf = TufHome(home)
    config = tuf.config()
    root = tuf.latest_root()
    keyids = role_keyids(root)
    roles = [
        RoleStatus(role, c.keys, keyids.get(role, ()), c.threshold, getattr(config.expiries, role))
        for role, c in sorted(config.roles.items(), key=lambda rc: TOP_LEVEL_ROLES.index(rc[0]))
    ]
    root_path = tuf.root_path(root.signed.version)
    body = {
        "rootVersion": root.signed.version,
        "rootExpires": _iso(root.signed.expires),
        "rootVersions": [v for v, _ in tuf.roots()],
        "rootPath": str(root_path),
        **config.to_dict(),
    }
    expires = root.signed.expires.astimezone(UTC).replace(tzinfo=None)
    return TufStatus(roles, root.signed.version, expires, body["rootVersions"], root_path, body)


def tuf_status_if_initialized(home: Home) -> TufStatus | None:
    """:func:`tuf_status`, or None when the home has no TUF repository yet."""
    return tuf_status(home) if TufHome(home).initialized else None
