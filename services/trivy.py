"""Receive a trivy:db / trivy:java-db bundle: verify it, then install its Trivy cache files atomically.

The bundle is verified first exactly as `stella verify` does (signature, every digest, the bbolt structure of a
trivy.db). Then it is read a second time and only the members under ``cache/`` are taken, each checked again
against the digest in the *verified* manifest (the archive's ``export.json`` must be the one that verified), so a
bundle swapped between the two reads installs nothing. Files are staged inside the cache directory (same file
system), fsynced, and each database directory (``db``, ``java-db``) is swapped in with a rename.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from core.archive.reader import ReaderLimits, SafeArchiveReader
from core.contract.bundle import MANIFEST
from core.contract.trivy import CACHE, DB_DIR, DB_FILE, JAVA_DB_DIR, JAVA_DB_FILE, METADATA
from core.errors import BadInputError, Cancelled, EnvironmentFailure, IntegrityError, UsageError
from core.progress import Check, NullObserver, Observer
from core.trust import TrustedKey
from verify.bundle import copy_member, verify_bundle
from verify.manifest import ListedFile, ManifestReader

#: Cache sub-directories a Trivy bundle may install, and the files each must contain (trivy-db / trivy-java-db).
DB_DIRS = {DB_DIR: (METADATA, DB_FILE), JAVA_DB_DIR: (METADATA, JAVA_DB_FILE)}
#: The flags that keep Trivy offline on an installed cache.
SCAN_FLAGS = "--skip-db-update --skip-java-db-update --offline-scan --skip-version-check --disable-telemetry"


@dataclass
class InstallResult:
    """What was installed where: the report ``--json`` prints."""

    bundle: str
    cache_dir: str
    profile: str
    schema_version: int | None
    files: list[dict[str, Any]] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    @property
    def scan(self) -> str:
        """The Trivy command line that scans offline with the installed cache."""
        return f"trivy <target> --cache-dir {self.cache_dir} {SCAN_FLAGS}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "installed": True,
            "bundle": self.bundle,
            "cacheDir": self.cache_dir,
            "profile": self.profile,
            "schemaVersion": self.schema_version,
            "files": self.files,
            "checks": [c.to_dict() for c in self.checks],
            "scan": self.scan,
        }


def _cache_member(path: str) -> tuple[str, str] | None:
    """(db dir, file name) for a bundle path ``cache/<dir>/<file>`` a Trivy cache takes; None for anything else."""
    parts = PurePosixPath(path).parts
    if len(parts) == 3 and parts[0] == "cache" and parts[1] in DB_DIRS and parts[2] in DB_DIRS[parts[1]]:
        return parts[1], parts[2]
    return None


def _stage(
    bundle: Path, manifest_sha256: str, stage: Path, observer: Observer
) -> tuple[dict[str, ListedFile], list[str]]:
    """Copy the cache files of the (already verified) bundle into ``stage``, re-checking every digest."""
    listed: dict[str, ListedFile] = {}
    written: list[str] = []
    with SafeArchiveReader(bundle, ReaderLimits(), cancel=observer) as reader:
        members = iter(reader)
        first = next(members, None)
        if first is None or first.name != MANIFEST:
            raise IntegrityError("export.json is no longer the first entry: the bundle changed", path=str(bundle))
        manifest_path = stage / ".export.json"
        if copy_member(first, manifest_path)[0] != manifest_sha256:
            raise IntegrityError("export.json differs from the one that verified: the bundle changed", path=str(bundle))
        listed = {f.path: f for f in ManifestReader(manifest_path).files() if _cache_member(f.path)}
        manifest_path.unlink()
        for member in members:
            where = _cache_member(member.name)
            entry = listed.get(member.name)
            if where is None or entry is None:
                continue
            if copy_member(member, stage / where[0] / where[1], fsync=True) != (entry.sha256, entry.size):
                raise IntegrityError("differs from the verified manifest: the bundle changed", path=member.name)
            written.append(member.name)
    missing = sorted(set(listed) - set(written))
    if missing:
        raise IntegrityError("listed in the verified manifest but missing from the bundle", path=missing[0])
    return listed, written


def _swap_in(stage: Path, cache_dir: Path, name: str) -> None:
    """Replace ``cache_dir/name`` with ``stage/name`` by renames; the old directory is restored on failure."""
    target = cache_dir / name
    old = stage / f"old-{name}"
    had_old = target.exists() or target.is_symlink()
    if had_old:
        target.rename(old)
    try:
        (stage / name).rename(target)
    except OSError:
        if had_old:
            old.rename(target)
        raise


def install_bundle(
    bundle: Path,
    cache_dir: Path,
    keys: Sequence[TrustedKey],
    *,
    at: datetime | None = None,
    observer: Observer | None = None,
) -> InstallResult:
    """Verify ``bundle`` and install its Trivy cache files under ``cache_dir``; raises the first failure.

    ``observer`` hears each check; once it says it is cancelled, the install stops with ``Cancelled`` at the
    archive's next read or before the swap, and the cache is as it was."""
    watch = observer or NullObserver()
    report = verify_bundle(bundle, keys, at=at, observer=watch)
    if report.error is not None:
        raise report.error
    manifest = report.manifest
    ref = manifest.profile.ref
    if manifest.profile.kind != "trivy":
        raise BadInputError(f"a {ref} bundle has no Trivy DB to install", path=str(bundle), hint="build trivy:db")
    if manifest.encryption:
        raise UsageError(
            "the bundle's payload is encrypted; stella trivy install takes unencrypted Trivy bundles",
            path=str(bundle),
            hint="export the Trivy profile without --recipient / --encrypt-passphrase-file",
        )
    trivy = manifest.section("trivy")
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        stage = cache_dir / f".stella-install-{secrets.token_hex(6)}"
        stage.mkdir(mode=0o700)
    except OSError as exc:
        raise EnvironmentFailure(f"cannot write to the cache directory: {exc.strerror}", path=str(cache_dir)) from exc
    result = InstallResult(str(bundle), str(cache_dir), ref, trivy.get("schemaVersion"), checks=report.checks)
    try:
        listed, written = _stage(bundle, str(manifest.sha256), stage, watch)
        dirs = sorted({PurePosixPath(p).parts[1] for p in written})
        for name in dirs:
            absent = [f for f in DB_DIRS[name] if f"{CACHE}{name}/{f}" not in listed]
            if absent:
                raise IntegrityError(f"the bundle's cache/{name} lacks {', '.join(absent)}", path=str(bundle))
        if not dirs:
            raise IntegrityError("the bundle has no Trivy cache files (cache/db or cache/java-db)", path=str(bundle))
        if watch.is_cancelled():
            raise Cancelled("the Trivy install was cancelled before the cache was changed", path=str(bundle))
        for name in dirs:
            _swap_in(stage, cache_dir, name)
        with contextlib.suppress(OSError):
            fd = os.open(cache_dir, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        for path in written:
            entry = listed[path]
            installed = cache_dir / PurePosixPath(path).relative_to("cache")
            result.files.append({"path": str(installed), "sha256": entry.sha256, "size": entry.size})
    except OSError as exc:
        raise EnvironmentFailure(f"cannot install into the cache: {exc.strerror or exc}", path=str(cache_dir)) from exc
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return result
