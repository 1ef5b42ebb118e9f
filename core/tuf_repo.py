"""TUF repository metadata for a mirror tree, written with python-tuf's Metadata API.

Layout written under ``out_dir``::

    tuf/metadata/N.root.json         every root version, each signed by its own and its predecessor's keys
    tuf/metadata/N.targets.json      every file under the targets directory (length + sha256)
    tuf/metadata/N.snapshot.json     the targets version
    tuf/metadata/timestamp.json      the snapshot version (the only unversioned file)
    tuf/targets/<dir>/<sha256>.<name>  optional hash-prefixed links, for stock TUF clients (``link_targets``)

With consistent snapshots (the default) targets and snapshot are versioned file names, so a reader never
sees a half-updated repository. Our own receiver (``verify.tuf_client``) checks targets in place, where they
lie in the mirror tree; ``link_targets=True`` adds the ``<sha256>.<name>`` files a stock client (python-tuf,
tuf-js) downloads, as hard links where the file system allows and copies otherwise.

Version rules: ``init_repository`` makes root version 1 and ``rotate_root`` root N+1; nothing else
changes root. Each ``write_repository`` call is a new repository state: targets, snapshot and timestamp
versions each go up by one from what is on disk (1 in an empty directory).

Nothing here reads the wall clock: every function takes ``now`` and expiries are ``now + Expiries.<role>``.
With the same inputs, keys and ``now`` the output is byte-identical (ECDSA signatures are deterministic,
RFC 6979, and Ed25519 is deterministic by construction).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from securesystemslib.signer import Key, Signature, SSlibKey  # type: ignore[attr-defined]
from securesystemslib.signer import Signer as SslibSigner  # type: ignore[attr-defined]
from tuf.api.exceptions import UnsignedMetadataError
from tuf.api.metadata import (  # type: ignore[attr-defined]
    Metadata,
    MetaFile,
    Root,
    Signed,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization import DeserializationError
from tuf.api.serialization.json import JSONSerializer

from core.errors import BadInputError, EnvironmentFailure, SignatureError, UsageError
from core.signing import Signer, sha256_file

TOP_LEVEL_ROLES: tuple[str, ...] = (Root.type, Targets.type, Snapshot.type, Timestamp.type)
METADATA_SUBDIR = Path("tuf") / "metadata"
TARGETS_SUBDIR = Path("tuf") / "targets"

_ROOT_FILE = re.compile(r"^([1-9][0-9]*)\.root\.json$")
_SERIALIZER = JSONSerializer(compact=False)


class TufSigner(SslibSigner):
    """A ``core.signing.Signer`` seen through securesystemslib's signer interface.

    The key id is TUF's default (SHA-256 of the canonical JSON key), which other TUF clients expect; the
    signature is what ``Signer.sign`` makes: DER ECDSA P-256/SHA-256 (scheme ``ecdsa-sha2-nistp256``) or
    raw Ed25519 (scheme ``ed25519``).
    """

    def __init__(self, signer: Signer) -> None:
        self._signer = signer
        self._key = SSlibKey.from_crypto(signer.public_key)

    @property
    def public_key(self) -> Key:
        """The TUF public key of this signer."""
        return self._key

    @property
    def keyid(self) -> str:
        """The TUF key id (not the same as ``core.keys.keyid_of``, which hashes the DER key)."""
        return self._key.keyid

    def sign(self, payload: bytes) -> Signature:
        """Sign canonical-JSON ``payload`` bytes."""
        return Signature(self._key.keyid, self._signer.sign(payload).hex())

    @classmethod
    def from_priv_key_uri(cls, priv_key_uri: str, public_key: Key, secrets_handler: Any = None) -> TufSigner:
        """Not supported: stella loads keys from its key store, not from URIs."""
        raise UsageError("stella TUF signers are made from key-store keys, not private key URIs")


@dataclass(frozen=True)
class TufKeys:
    """The signing keys of each top-level TUF role (one or more each; a role may share keys with another)."""

    root: Sequence[Signer]
    targets: Sequence[Signer]
    snapshot: Sequence[Signer]
    timestamp: Sequence[Signer]

    def for_role(self, role: str) -> list[TufSigner]:
        """The TUF signers of ``role`` (``root``, ``targets``, ``snapshot`` or ``timestamp``)."""
        signers: Sequence[Signer] = getattr(self, role) if role in TOP_LEVEL_ROLES else ()
        if not signers:
            raise UsageError(f"no signing key given for the TUF {role} role")
        return [TufSigner(s) for s in signers]


@dataclass(frozen=True)
class Thresholds:
    """How many of a role's keys must sign its metadata."""

    root: int = 1
    targets: int = 1
    snapshot: int = 1
    timestamp: int = 1


@dataclass(frozen=True)
class Expiries:
    """How long each role's metadata stays valid after ``now``."""

    root: timedelta = timedelta(days=365)
    targets: timedelta = timedelta(days=90)
    snapshot: timedelta = timedelta(days=7)
    timestamp: timedelta = timedelta(days=1)


@dataclass(frozen=True)
class RepositoryState:
    """What ``write_repository`` wrote."""

    metadata_dir: Path
    root_version: int
    targets_version: int
    snapshot_version: int
    timestamp_version: int
    targets: tuple[str, ...]


def _utc(now: datetime) -> datetime:
    # Naive datetimes are UTC throughout stella (core.clock); TUF wants aware UTC without microseconds.
    aware = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    return aware.replace(microsecond=0)


def _build_root(
    keys: TufKeys, thresholds: Thresholds, expires: datetime, version: int, consistent_snapshot: bool
) -> Root:
    root = Root(version=version, expires=expires, consistent_snapshot=consistent_snapshot)
    for role in TOP_LEVEL_ROLES:
        signers = keys.for_role(role)
        threshold: int = getattr(thresholds, role)
        distinct = {s.keyid for s in signers}
        if threshold < 1 or threshold > len(distinct):
            raise UsageError(f"TUF {role} threshold {threshold} needs between 1 and {len(distinct)} distinct keys")
        for signer in signers:
            root.add_key(signer.public_key, role)
        root.roles[role].threshold = threshold
    return root


def _sign(md: Metadata[Any], signers: Sequence[TufSigner]) -> None:
    md.signatures.clear()
    seen: set[str] = set()
    for signer in signers:
        if signer.keyid in seen:
            continue
        seen.add(signer.keyid)
        md.sign(signer, append=True)


def init_repository(
    keys: TufKeys,
    thresholds: Thresholds = Thresholds(),
    expiries: Expiries = Expiries(),
    *,
    now: datetime,
    consistent_snapshot: bool = True,
) -> Metadata[Root]:
    """Root metadata version 1 naming ``keys`` for every top-level role, signed by the root keys."""
    root = _build_root(keys, thresholds, _utc(now) + expiries.root, 1, consistent_snapshot)
    md = Metadata(root)
    _sign(md, keys.for_role(Root.type))
    return md


def _write(path: Path, md: Metadata[Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(md.to_bytes(_SERIALIZER))
    except OSError as exc:
        raise EnvironmentFailure(f"cannot write TUF metadata: {exc.strerror}", path=str(path)) from exc


def _read(path: Path, kind: type[Signed]) -> Metadata[Any]:
    try:
        md: Metadata[Any] = Metadata.from_bytes(path.read_bytes())
    except OSError as exc:
        raise EnvironmentFailure(f"cannot read TUF metadata: {exc.strerror}", path=str(path)) from exc
    except DeserializationError as exc:
        raise BadInputError(f"not valid TUF {kind.type} metadata: {exc}", path=str(path)) from exc
    if not isinstance(md.signed, kind):
        raise BadInputError(f"expected TUF {kind.type} metadata, found {md.signed.type}", path=str(path))
    return md


def latest_root_version(metadata_dir: Path) -> int:
    """The highest N of the ``N.root.json`` files in ``metadata_dir`` (0 when there is none)."""
    if not metadata_dir.is_dir():
        return 0
    versions = [int(m.group(1)) for p in metadata_dir.iterdir() if (m := _ROOT_FILE.match(p.name))]
    return max(versions, default=0)


def load_root(metadata_dir: Path, version: int | None = None) -> Metadata[Root]:
    """Root metadata ``version`` (the newest when ``None``) from ``metadata_dir``."""
    version = version or latest_root_version(metadata_dir)
    if version == 0:
        raise BadInputError("no TUF root metadata (N.root.json)", path=str(metadata_dir))
    return _read(metadata_dir / f"{version}.root.json", Root)


def rotate_root(
    out_dir: Path,
    old_root_keys: Sequence[Signer],
    new_keys: TufKeys,
    thresholds: Thresholds = Thresholds(),
    expiries: Expiries = Expiries(),
    *,
    now: datetime,
) -> Metadata[Root]:
    """Write root N+1 naming ``new_keys``, signed by the new root keys and by ``old_root_keys``.

    A client that trusts root N accepts N+1 only if it carries a threshold of N's root signatures and a
    threshold of its own; keys no longer named in N+1 are revoked from then on. The targets, snapshot and
    timestamp files still carry the old signatures: call ``write_repository`` with ``new_keys`` next.
    """
    metadata_dir = out_dir / METADATA_SUBDIR
    old = load_root(metadata_dir)
    new_root = _build_root(
        new_keys, thresholds, _utc(now) + expiries.root, old.signed.version + 1, bool(old.signed.consistent_snapshot)
    )
    md = Metadata(new_root)
    _sign(md, [*new_keys.for_role(Root.type), *(TufSigner(s) for s in old_root_keys)])
    for trusted, label in ((old.signed, f"root {old.signed.version}"), (new_root, f"root {new_root.version}")):
        try:
            trusted.verify_delegate(Root.type, md.signed_bytes, md.signatures)
        except UnsignedMetadataError as exc:
            raise SignatureError(
                f"new root {new_root.version} lacks a threshold of signatures from {label}: {exc}",
                hint="sign with enough of the current root keys as well as the new ones",
            ) from exc
    _write(metadata_dir / f"{new_root.version}.root.json", md)
    return md


def _iter_target_files(targets_dir: Path, exclude: Path) -> Iterator[tuple[str, Path]]:
    """(target path, file) for every regular file under ``targets_dir``, sorted, skipping ``exclude``."""
    root = targets_dir.resolve()
    skip = exclude.resolve()
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if (here / d).resolve() != skip)
        for d in dirnames:
            if (here / d).is_symlink():
                raise BadInputError("links are not allowed in a mirror tree", path=str(here / d))
        for name in sorted(filenames):
            path = here / name
            if path.is_symlink() or not path.is_file():
                raise BadInputError("only regular files are allowed in a mirror tree", path=str(path))
            yield path.relative_to(root).as_posix(), path


def _previous_versions(metadata_dir: Path) -> tuple[int, int, int]:
    """(targets, snapshot, timestamp) versions of the state on disk, zeros for an empty repository."""
    ts_path = metadata_dir / "timestamp.json"
    if not ts_path.exists():
        return 0, 0, 0
    timestamp = _read(ts_path, Timestamp).signed
    snap_version = timestamp.snapshot_meta.version
    consistent = load_root(metadata_dir).signed.consistent_snapshot
    snap_path = metadata_dir / (f"{snap_version}.snapshot.json" if consistent else "snapshot.json")
    snapshot = _read(snap_path, Snapshot).signed
    return snapshot.meta["targets.json"].version, snap_version, timestamp.version


def _check_keys(root: Root, keys: TufKeys) -> None:
    for role in (Targets.type, Snapshot.type, Timestamp.type):
        allowed = set(root.roles[role].keyids)
        signers = keys.for_role(role)
        usable = {s.keyid for s in signers if s.keyid in allowed}
        if len(usable) < root.roles[role].threshold:
            raise UsageError(
                f"the {role} keys given are not a threshold of the keys root {root.version} names for {role}",
                hint="use the keys of the current root, or rotate the root first",
            )


def _link(source: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        dest.unlink()
    try:
        dest.hardlink_to(source)
    except OSError:
        shutil.copyfile(source, dest)


def write_repository(
    out_dir: Path,
    targets_dir: Path,
    keys: TufKeys,
    *,
    now: datetime,
    thresholds: Thresholds = Thresholds(),
    expiries: Expiries = Expiries(),
    consistent_snapshot: bool = True,
    link_targets: bool = False,
) -> RepositoryState:
    """Write TUF metadata under ``out_dir/tuf/metadata`` for every file under ``targets_dir``.

    An empty ``out_dir`` gets root 1 (``init_repository`` with ``thresholds`` and ``consistent_snapshot``);
    otherwise the newest root on disk is kept and ``keys`` must be among the keys it names. Targets,
    snapshot and timestamp are each one version above the state on disk. ``out_dir/tuf`` is skipped when
    it lies inside ``targets_dir``. Symlinks and special files in the tree are refused.
    """
    metadata_dir = out_dir / METADATA_SUBDIR
    if latest_root_version(metadata_dir) == 0:
        root_md = init_repository(keys, thresholds, expiries, now=now, consistent_snapshot=consistent_snapshot)
        _write(metadata_dir / "1.root.json", root_md)
    root_md = load_root(metadata_dir)
    root = root_md.signed
    prev_targets, prev_snapshot, prev_timestamp = _previous_versions(metadata_dir)

    targets = Targets()
    try:
        for target_path, path in _iter_target_files(targets_dir, out_dir / "tuf"):
            length = path.stat().st_size
            digest = sha256_file(path).hex()
            targets.targets[target_path] = TargetFile(length, {"sha256": digest}, target_path)
            if link_targets:
                parent, _, name = target_path.rpartition("/")
                prefixed = f"{parent}/{digest}.{name}" if parent else f"{digest}.{name}"
                _link(path, out_dir / TARGETS_SUBDIR / prefixed)
    except OSError as exc:
        raise EnvironmentFailure(f"cannot read mirror tree: {exc.strerror}", path=str(exc.filename)) from exc

    files = top_level_metadata(
        root,
        keys,
        targets.targets,
        versions=(prev_targets + 1, prev_snapshot + 1, prev_timestamp + 1),
        now=now,
        expiries=expiries,
    )
    for name, data in files.items():
        try:
            (metadata_dir / name).write_bytes(data)
        except OSError as exc:
            raise EnvironmentFailure(f"cannot write TUF metadata: {exc.strerror}", path=str(metadata_dir)) from exc
    versions = _previous_versions(metadata_dir)
    return RepositoryState(
        metadata_dir=metadata_dir,
        root_version=root.version,
        targets_version=versions[0],
        snapshot_version=versions[1],
        timestamp_version=versions[2],
        targets=tuple(targets.targets),
    )


def top_level_metadata(
    root: Root,
    keys: TufKeys,
    targets: Mapping[str, TargetFile],
    *,
    versions: tuple[int, int, int],
    now: datetime,
    expiries: Expiries = Expiries(),
) -> dict[str, bytes]:
    """Signed targets, snapshot and timestamp metadata for ``targets`` under ``root``, as file name -> bytes.

    ``versions`` are (targets, snapshot, timestamp). With consistent snapshots the targets and snapshot
    files carry their version in the name. Nothing touches the disk, so a bundle writer can place the
    files where it wants; the keys must be a threshold of those ``root`` names for each role.
    """
    _check_keys(root, keys)
    base = _utc(now)
    signed_targets = Targets(version=versions[0], expires=base + expiries.targets)
    signed_targets.targets = dict(targets)
    snapshot = Snapshot(
        version=versions[1],
        expires=base + expiries.snapshot,
        meta={"targets.json": MetaFile(version=signed_targets.version)},
    )
    timestamp = Timestamp(
        version=versions[2],
        expires=base + expiries.timestamp,
        snapshot_meta=MetaFile(version=snapshot.version),
    )
    out: dict[str, bytes] = {}
    for signed, role in ((signed_targets, Targets.type), (snapshot, Snapshot.type)):
        md: Metadata[Any] = Metadata(signed)
        _sign(md, keys.for_role(role))
        name = f"{signed.version}.{role}.json" if root.consistent_snapshot else f"{role}.json"
        out[name] = md.to_bytes(_SERIALIZER)
    ts_md = Metadata(timestamp)
    _sign(ts_md, keys.for_role(Timestamp.type))
    out["timestamp.json"] = ts_md.to_bytes(_SERIALIZER)
    return out


def fresh_snapshot_and_timestamp(
    root: Root,
    keys: TufKeys,
    targets_version: int,
    *,
    version: int,
    now: datetime,
    expiries: Expiries = Expiries(),
) -> dict[str, bytes]:
    """New snapshot and timestamp metadata (``version``, expiry from ``now``) over an unchanged targets version.

    This is how a bundle that waited too long for transfer gets fresh metadata without touching its payload
    or its targets metadata. Returns file name -> bytes, as :func:`top_level_metadata` does.
    """
    _check_keys(root, keys)
    base = _utc(now)
    snapshot = Snapshot(
        version=version, expires=base + expiries.snapshot, meta={"targets.json": MetaFile(version=targets_version)}
    )
    timestamp = Timestamp(version=version, expires=base + expiries.timestamp, snapshot_meta=MetaFile(version=version))
    snap_md: Metadata[Any] = Metadata(snapshot)
    _sign(snap_md, keys.for_role(Snapshot.type))
    ts_md: Metadata[Any] = Metadata(timestamp)
    _sign(ts_md, keys.for_role(Timestamp.type))
    name = f"{version}.snapshot.json" if root.consistent_snapshot else "snapshot.json"
    return {name: snap_md.to_bytes(_SERIALIZER), "timestamp.json": ts_md.to_bytes(_SERIALIZER)}


def role_keyids(root: Metadata[Root]) -> Mapping[str, tuple[str, ...]]:
    """The key ids ``root`` names for each top-level role (for display and tests)."""
    return {role: tuple(root.signed.roles[role].keyids) for role in TOP_LEVEL_ROLES}


__all__ = [
    "METADATA_SUBDIR",
    "TARGETS_SUBDIR",
    "TOP_LEVEL_ROLES",
    "Expiries",
    "RepositoryState",
    "Thresholds",
    "TufKeys",
    "TufSigner",
    "fresh_snapshot_and_timestamp",
    "init_repository",
    "latest_root_version",
    "load_root",
    "role_keyids",
    "rotate_root",
    "top_level_metadata",
    "write_repository",
]
