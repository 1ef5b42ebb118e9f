"""Offline TUF verification of a mirror tree, from a pinned trusted root.

The mirror carries its metadata under ``tuf/metadata`` (see ``core.tuf_repo``). python-tuf's own client
(``tuf.ngclient.Updater``) does the TUF workflow: it follows root rotations from the pinned root
(``2.root.json``, ``3.root.json``, ... each signed by a threshold of the previous root's keys and its
own), then loads timestamp, snapshot and targets, checking signatures, thresholds, versions and expiry.
Its "network" is ``LocalDirFetcher``, which reads files from a directory and answers 404 for the rest.

Targets are then checked in place, where they lie in the mirror tree, against the length and sha256
the verified targets metadata lists, so nothing is copied. Unlisted files, links and special files in
the tree are refused too.

Rollback protection needs memory: pass ``state_dir`` (the receiver's TUF cache, kept between imports)
and a mirror older than one already accepted is refused. Without it each call starts from the pinned
root and only rollbacks inside one mirror are caught.

Errors: ``TrustMetadataError`` (exit 6) for metadata that is expired, rolled back, badly signed, below
threshold, missing or malformed; ``IntegrityError`` (exit 4) for a target whose bytes do not match.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from urllib.parse import unquote

from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import Metadata, Root, Snapshot, Targets, Timestamp  # type: ignore[attr-defined]
from tuf.ngclient import Updater, UpdaterConfig  # type: ignore[attr-defined]
from tuf.ngclient.fetcher import FetcherInterface

from core.contract.mirror import TUF_METADATA
from core.errors import EnvironmentFailure, IntegrityError, StellaError, TrustMetadataError

METADATA_SUBDIR = PurePosixPath(TUF_METADATA)
_BASE_URL = "stella-mirror://local/"
_CHUNK = 1 << 20


class LocalDirFetcher(FetcherInterface):
    """A python-tuf fetcher that serves files from one local directory, and 404 for anything else.

    URLs are ``base_url`` + a path relative to ``root``; a path that leaves ``root`` (``..``, a link
    pointing out) is "not found". The 404 matters: it is how the updater learns there is no newer root.
    """

    def __init__(self, root: Path, base_url: str = _BASE_URL) -> None:
        self.root = root.resolve()
        self.base_url = base_url
        self.last_path: str | None = None

    def _fetch(self, url: str) -> Iterator[bytes]:
        if not url.startswith(self.base_url):
            raise tuf_errors.DownloadHTTPError(f"not a URL of this mirror: {url}", 404)
        relative = unquote(url[len(self.base_url) :])
        self.last_path = relative
        path = (self.root / relative).resolve()
        if self.root not in path.parents or not path.is_file():
            raise tuf_errors.DownloadHTTPError(f"not found in mirror: {relative}", 404)
        return self._chunks(path)

    @staticmethod
    def _chunks(path: Path) -> Iterator[bytes]:
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                yield chunk


@dataclass(frozen=True)
class VerifiedTarget:
    """A file of the mirror whose length and sha256 match the verified targets metadata."""

    path: str
    length: int
    sha256: str


@dataclass(frozen=True)
class TufVerification:
    """The outcome of a successful ``verify_mirror``: the metadata versions trusted and the targets checked."""

    root_version: int
    timestamp_version: int
    snapshot_version: int
    targets_version: int
    targets: tuple[VerifiedTarget, ...]

    def to_dict(self) -> dict[str, object]:
        """The stable JSON form for ``--json`` reports."""
        return {
            "rootVersion": self.root_version,
            "timestampVersion": self.timestamp_version,
            "snapshotVersion": self.snapshot_version,
            "targetsVersion": self.targets_version,
            "targets": [{"path": t.path, "length": t.length, "sha256": t.sha256} for t in self.targets],
        }


def _metadata_error(exc: Exception, fetcher: LocalDirFetcher) -> StellaError:
    where = str(METADATA_SUBDIR / fetcher.last_path) if fetcher.last_path else None
    if isinstance(exc, tuf_errors.ExpiredMetadataError):
        return TrustMetadataError(
            f"TUF metadata expired: {exc}",
            path=where,
            hint="get a newer export, or check the clock; --at states the time to verify at",
        )
    if isinstance(exc, tuf_errors.BadVersionNumberError):
        return TrustMetadataError(
            f"TUF rollback refused: {exc}",
            path=where,
            hint="this mirror is older than one already trusted; import the newer one",
        )
    if isinstance(exc, tuf_errors.UnsignedMetadataError):
        return TrustMetadataError(
            f"TUF metadata not signed by a threshold of trusted keys: {exc}",
            path=where,
            hint="the metadata was altered, or signed by keys the trusted root does not name",
        )
    if isinstance(exc, tuf_errors.DownloadError):
        return TrustMetadataError(f"TUF metadata missing or unreadable: {exc}", path=where)
    return TrustMetadataError(f"TUF metadata rejected: {exc}", path=where)


def _safe_target(targets_dir: Path, target: str) -> Path:
    parts = PurePosixPath(target).parts
    if not parts or target.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\\" in target:
        raise IntegrityError(f"target path {target!r} is unsafe", hint="the targets metadata names a path outside")
    path = targets_dir.joinpath(*parts)
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise IntegrityError(f"target {target} is not a regular file", path=str(path))
    if not path.exists():
        raise IntegrityError(f"target {target} is missing", path=str(path))
    return path


def _unlisted(targets_dir: Path, listed: set[str], skip: Path) -> list[str]:
    extra: list[str] = []
    root = targets_dir.resolve()
    skip = skip.resolve()
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if (here / d).resolve() != skip]
        for name in [*dirnames, *filenames]:
            path = here / name
            if path.is_symlink():
                raise IntegrityError("links are not allowed in a mirror tree", path=str(path))
            if name in filenames:
                if not path.is_file():
                    raise IntegrityError("only regular files are allowed in a mirror tree", path=str(path))
                relative = path.relative_to(root).as_posix()
                if relative not in listed:
                    extra.append(relative)
    return sorted(extra)


def _version(state_dir: Path, name: str, kind: type[Root | Timestamp | Snapshot | Targets]) -> int:
    # The updater persists each file only after it verified it, so these are trusted copies.
    md = Metadata[kind].from_file(str(state_dir / name))  # type: ignore[valid-type]
    return md.signed.version


def verify_mirror(
    mirror_dir: Path,
    trusted_root: bytes,
    *,
    targets_dir: Path | None = None,
    state_dir: Path | None = None,
    at: datetime | None = None,
    strict: bool = True,
) -> TufVerification:
    """Verify the TUF metadata of ``mirror_dir`` from ``trusted_root`` and check every target it lists.

    ``targets_dir`` is where target paths are resolved (default: ``mirror_dir``). ``state_dir`` keeps
    trusted metadata between calls for rollback protection. ``at`` evaluates expiry at that time instead
    of now. With ``strict``, a file under ``targets_dir`` (outside ``tuf/``) that no target lists fails.
    """
    targets_dir = targets_dir or mirror_dir
    fetcher = LocalDirFetcher(mirror_dir / METADATA_SUBDIR)
    with tempfile.TemporaryDirectory(prefix="stella-tuf-") as scratch:
        cache = state_dir or Path(scratch)
        try:
            cache.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EnvironmentFailure(f"cannot create TUF state directory: {exc.strerror}", path=str(cache)) from exc
        try:
            updater = Updater(
                metadata_dir=str(cache),
                metadata_base_url=_BASE_URL,
                fetcher=fetcher,
                config=UpdaterConfig(max_root_rotations=256),
                bootstrap=trusted_root,
            )
        except tuf_errors.RepositoryError as exc:
            raise TrustMetadataError(
                f"the pinned TUF root is not valid: {exc}", hint="pin the 1.root.json of a trusted export"
            ) from exc
        if at is not None:
            # python-tuf fixes its reference time when the updater is made; an air-gapped receiver's
            # clock drifts, so ``--at`` replaces it before any expiry check runs.
            aware = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
            updater._trusted_set.reference_time = aware
        try:
            updater.refresh()
            names = list(Metadata[Targets].from_file(str(cache / "targets.json")).signed.targets)
            infos = [(name, updater.get_targetinfo(name)) for name in names]
        except (tuf_errors.RepositoryError, tuf_errors.DownloadError) as exc:
            raise _metadata_error(exc, fetcher) from exc
        except OSError as exc:
            raise EnvironmentFailure(f"cannot write TUF state: {exc.strerror}", path=str(cache)) from exc

        verified: list[VerifiedTarget] = []
        for name, info in infos:
            if info is None:  # listed by top-level targets but not resolvable: cannot happen without delegations
                raise TrustMetadataError(f"target {name} is not trusted by any role that may list it")
            path = _safe_target(targets_dir, name)
            try:
                with path.open("rb") as fh:
                    info.verify_length_and_hashes(fh)
            except tuf_errors.LengthOrHashMismatchError as exc:
                raise IntegrityError(
                    f"target {name} does not match the targets metadata: {exc}",
                    path=str(path),
                    hint="the file was altered or damaged after export",
                ) from exc
            except OSError as exc:
                raise EnvironmentFailure(f"cannot read target {name}: {exc.strerror}", path=str(path)) from exc
            verified.append(VerifiedTarget(name, info.length, info.hashes.get("sha256", "")))

        if strict:
            extra = _unlisted(targets_dir, set(names), mirror_dir / "tuf")
            if extra:
                raise IntegrityError(
                    f"{len(extra)} file(s) not listed in the TUF targets metadata, first: {extra[0]}",
                    path=str(targets_dir / extra[0]),
                )

        return TufVerification(
            root_version=_version(cache, "root.json", Root),
            timestamp_version=_version(cache, "timestamp.json", Timestamp),
            snapshot_version=_version(cache, "snapshot.json", Snapshot),
            targets_version=_version(cache, "targets.json", Targets),
            targets=tuple(verified),
        )
