"""Receive a trivy:db / trivy:java-db bundle: verify it, then install its Trivy cache files atomically.

The bundle is verified first exactly as `stella verify` does (signature, every digest, the bbolt structure of a
trivy.db). Then it is read a second time and only the members under ``cache/`` are taken, each checked again
against the digest in the *verified* manifest (the archive's ``export.json`` must be the one that verified), so a
bundle swapped between the two reads installs nothing. Files are staged inside the cache directory (same file
system), fsynced, and each database directory (``db``, ``java-db``) is swapped in as one atomic step: Linux's
``renameat2(RENAME_EXCHANGE)`` exchanges the staged directory and the installed one, so Trivy sees the old
database or the new one, never none. Where the exchange is not available, two renames are used and the next
install finishes the job: it holds a lock on the cache directory and, before anything else, puts back an
old database a killed install had moved aside and removes every ``.stella-install-*`` staging directory left.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import secrets
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from core.archive.reader import ReaderLimits, SafeArchiveReader
from core.contract.bundle import MANIFEST
from core.contract.trivy import CACHE, DB_DIR, DB_FILE, JAVA_DB_DIR, JAVA_DB_FILE, METADATA
from core.errors import BadInputError, Cancelled, EnvironmentFailure, IntegrityError, StoreLockedError, UsageError
from core.progress import Check, NullObserver, Observer
from core.trust import TrustedKey
from verify.bundle import copy_member, verify_bundle
from verify.manifest import ListedFile, ManifestReader

#: Cache sub-directories a Trivy bundle may install, and the files each must contain (trivy-db / trivy-java-db).
DB_DIRS = {DB_DIR: (METADATA, DB_FILE), JAVA_DB_DIR: (METADATA, JAVA_DB_FILE)}
#: The flags that keep Trivy offline on an installed cache.
SCAN_FLAGS = "--skip-db-update --skip-java-db-update --offline-scan --skip-version-check --disable-telemetry"
#: Prefix of an install's staging directory inside the cache.
STAGE_PREFIX = ".stella-install-"
#: Named points of an install where crash-safety tests stop the process (``faults``); ``mid-swap`` is passed only
#: when the exchange is not available and two renames are used.
FAULT_POINTS = ("before-swap", "mid-swap", "after-swap")
Faults = Callable[[str], None]

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


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


def default_cache_dir() -> Path:
    """Where Trivy itself looks when no ``--cache-dir`` is given: ``$TRIVY_CACHE_DIR``, else its user cache
    directory (Go's ``os.UserCacheDir``: ``$XDG_CACHE_HOME``, else ``~/.cache``; ``~/Library/Caches`` on macOS)
    followed by ``trivy``."""
    chosen = os.environ.get("TRIVY_CACHE_DIR")
    if chosen:
        return Path(chosen).expanduser().absolute()
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "trivy"


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


def _exchange(a: Path, b: Path) -> bool:
    """Exchange ``a`` and ``b`` atomically (``renameat2(RENAME_EXCHANGE)``); False where that is not available."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False  # the kernel or the file system cannot exchange: fall back to two renames
    raise OSError(code, os.strerror(code), os.fspath(b))


def _swap_in(stage: Path, cache_dir: Path, name: str, faults: Faults) -> None:
    """Make ``stage/name`` the installed ``cache_dir/name`` in one atomic step; the old one ends in ``stage``."""
    target = cache_dir / name
    new = stage / name
    if not (target.exists() or target.is_symlink()):
        new.rename(target)
        return
    if _exchange(new, target):
        return
    old = stage / f"old-{name}"
    target.rename(old)
    faults("mid-swap")  # a kill here leaves no database: the next install puts ``old`` back (see _recover)
    try:
        new.rename(target)
    except OSError:
        old.rename(target)
        raise


def _recover(cache_dir: Path) -> None:
    """Finish what a killed install left (the caller holds the install lock): put back a database moved aside
    and not replaced, then remove the staging directories."""
    for stage in sorted(cache_dir.glob(f"{STAGE_PREFIX}*")):
        if not stage.is_dir() or stage.is_symlink():
            continue
        for name in DB_DIRS:
            old, target = stage / f"old-{name}", cache_dir / name
            if old.is_dir() and not (target.exists() or target.is_symlink()):
                old.rename(target)
        shutil.rmtree(stage, ignore_errors=True)


@contextlib.contextmanager
def _install_lock(cache_dir: Path) -> Iterator[None]:
    """One install at a time per cache: an ``flock`` on the cache directory itself (no file is added to the cache
    Trivy reads); a second install fails at once."""
    fd = os.open(cache_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreLockedError(
                "another stella trivy install is writing this cache", path=str(cache_dir), hint="wait for it to finish"
            ) from None
        yield
    finally:
        os.close(fd)


def install_bundle(
    bundle: Path,
    cache_dir: Path,
    keys: Sequence[TrustedKey],
    *,
    at: datetime | None = None,
    observer: Observer | None = None,
    faults: Faults | None = None,
) -> InstallResult:
    """Verify ``bundle`` and install its Trivy cache files under ``cache_dir``; raises the first failure.

    ``observer`` hears each check; once it says it is cancelled, the install stops with ``Cancelled`` at the
    archive's next read or before the swap, and the cache is as it was. ``faults`` hears each point of
    :data:`FAULT_POINTS` (crash-safety tests kill the process there)."""
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
    except OSError as exc:
        raise EnvironmentFailure(f"cannot write to the cache directory: {exc.strerror}", path=str(cache_dir)) from exc
    try:
        with _install_lock(cache_dir):
            _recover(cache_dir)
            return _install(bundle, cache_dir, report, ref, trivy, watch, faults or _no_faults)
    except OSError as exc:  # a full disk while staging, an I/O error: exit 8, the cache as it was
        where = os.fsdecode(exc.filename) if exc.filename else str(cache_dir)
        raise EnvironmentFailure(f"cannot install into the cache: {exc.strerror or exc}", path=where) from exc


def _no_faults(_point: str) -> None:
    return None


def _install(
    bundle: Path, cache_dir: Path, report: Any, ref: str, trivy: Any, watch: Observer, faults: Faults
) -> InstallResult:
    """Stage, check and swap in the verified bundle's cache files (under the install lock)."""
    manifest = report.manifest
    stage = cache_dir / f"{STAGE_PREFIX}{secrets.token_hex(6)}"
    stage.mkdir(mode=0o700)
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
        faults("before-swap")
        for name in dirs:
            _swap_in(stage, cache_dir, name, faults)
        faults("after-swap")
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
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return result
