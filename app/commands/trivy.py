"""`stella trivy install BUNDLE --cache-dir D`: verify a trivy:db / trivy:java-db bundle, then install it atomically.

The bundle is verified first exactly as `stella verify` does (signature, every digest, the bbolt structure of a
trivy.db). Then it is read a second time and only the members under ``cache/`` are taken, each checked again
against the digest in the *verified* manifest (the archive's ``export.json`` must be the one that verified), so a
bundle swapped between the two reads installs nothing. Files are staged inside the cache directory (same file
system), fsynced, and each database directory (``db``, ``java-db``) is swapped in with a rename.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from rich.markup import escape

from app.commands.verify import parse_at, trusted_keys
from app.output import print_json, stderr, stdout
from core.archive import ReaderLimits, SafeArchiveReader
from core.errors import BadInputError, Cancelled, EnvironmentFailure, IntegrityError, UsageError
from core.progress import CancelToken, Check, CheckObserver
from verify.bundle import copy_member, verify_bundle
from verify.manifest import ListedFile, ManifestReader

#: Cache sub-directories a Trivy bundle may install, and the files each must contain (trivy-db / trivy-java-db).
DB_DIRS = {"db": ("metadata.json", "trivy.db"), "java-db": ("metadata.json", "trivy-java.db")}
SCAN_FLAGS = "--skip-db-update --skip-java-db-update --offline-scan --skip-version-check --disable-telemetry"


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("trivy", parents=[common], help="Trivy DB bundles: install into a Trivy cache")
    tsub = p.add_subparsers(dest="trivy_command", metavar="ACTION", required=True)
    inst = tsub.add_parser(
        "install",
        parents=[common],
        help="verify a trivy:db or trivy:java-db bundle and install it into a Trivy cache directory",
        description="Verify the bundle (as `stella verify` does), then install its Trivy cache files atomically. "
        "Exit codes: 0 installed, 2 usage, 3 bad input, 4 integrity, 5 signature, 6 trust metadata, 8 environment.",
    )
    inst.add_argument("bundle", type=Path)
    inst.add_argument("--cache-dir", type=Path, required=True, metavar="DIR", help="Trivy's --cache-dir")
    inst.add_argument("--key", type=Path, action="append", metavar="PUB", help="trusted public key (PEM); repeatable")
    inst.add_argument("--at", metavar="TIME", help="evaluate time-dependent checks at this RFC 3339 time (UTC)")
    inst.set_defaults(handler=run_install)


@dataclass
class InstallResult:
    """What was installed where: the report ``--json`` prints."""

    bundle: str
    cache_dir: str
    profile: str
    schema_version: int | None
    files: list[dict[str, Any]] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "installed": True,
            "bundle": self.bundle,
            "cacheDir": self.cache_dir,
            "profile": self.profile,
            "schemaVersion": self.schema_version,
            "files": self.files,
            "checks": [c.to_dict() for c in self.checks],
            "scan": f"trivy <target> --cache-dir {self.cache_dir} {SCAN_FLAGS}",
        }


def _cache_member(path: str) -> tuple[str, str] | None:
    """(db dir, file name) for a bundle path ``cache/<dir>/<file>`` a Trivy cache takes; None for anything else."""
    parts = PurePosixPath(path).parts
    if len(parts) == 3 and parts[0] == "cache" and parts[1] in DB_DIRS and parts[2] in DB_DIRS[parts[1]]:
        return parts[1], parts[2]
    return None


def _stage(
    bundle: Path, manifest_sha256: str, stage: Path, cancel: CancelToken | None
) -> tuple[dict[str, ListedFile], list[str]]:
    """Copy the cache files of the (already verified) bundle into ``stage``, re-checking every digest."""
    listed: dict[str, ListedFile] = {}
    written: list[str] = []
    with SafeArchiveReader(bundle, ReaderLimits(), cancel=cancel) as reader:
        members = iter(reader)
        first = next(members, None)
        if first is None or first.name != "export.json":
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
    bundle: Path, cache_dir: Path, keys: list[Any], at: Any, on_check: Any, cancel: CancelToken | None = None
) -> InstallResult:
    """Verify ``bundle`` and install its Trivy cache files under ``cache_dir``; raises the first failure.

    ``cancel`` stops it with ``Cancelled`` at the archive's next read or before the swap; the cache is then as
    it was."""
    report = verify_bundle(bundle, keys, at=at, observer=CheckObserver(on_check, cancel))
    if report.error is not None:
        raise report.error
    manifest = report.manifest
    profile = manifest.get("profile") or {}
    ref = f"{profile.get('kind')}:{profile.get('variant')}"
    if profile.get("kind") != "trivy":
        raise BadInputError(f"a {ref} bundle has no Trivy DB to install", path=str(bundle), hint="build trivy:db")
    if manifest.get("encryption"):
        raise UsageError(
            "the bundle's payload is encrypted; stella trivy install takes unencrypted Trivy bundles",
            path=str(bundle),
            hint="export the Trivy profile without --recipient / --encrypt-passphrase-file",
        )
    trivy = manifest.get("trivy") or {}
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        stage = cache_dir / f".stella-install-{secrets.token_hex(6)}"
        stage.mkdir(mode=0o700)
    except OSError as exc:
        raise EnvironmentFailure(f"cannot write to the cache directory: {exc.strerror}", path=str(cache_dir)) from exc
    result = InstallResult(str(bundle), str(cache_dir), ref, trivy.get("schemaVersion"), checks=report.checks)
    try:
        listed, written = _stage(bundle, str(manifest.get("sha256")), stage, cancel)
        dirs = sorted({PurePosixPath(p).parts[1] for p in written})
        for name in dirs:
            absent = [f for f in DB_DIRS[name] if f"cache/{name}/{f}" not in listed]
            if absent:
                raise IntegrityError(f"the bundle's cache/{name} lacks {', '.join(absent)}", path=str(bundle))
        if not dirs:
            raise IntegrityError("the bundle has no Trivy cache files (cache/db or cache/java-db)", path=str(bundle))
        if cancel is not None and cancel.is_cancelled():
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


def run_install(args: argparse.Namespace) -> int:
    keys = trusted_keys(args)

    def show(check: Check) -> None:
        if args.json or check.ok:
            return
        stderr.print(f"[bold red] FAIL [/] {check.name:16} {escape(check.detail)} [dim]{escape(check.path or '')}[/]")

    result = install_bundle(args.bundle, args.cache_dir, keys, parse_at(args.at), show)
    if args.json:
        print_json(result.to_dict())
        return 0
    for item in result.files:
        stdout.print(f"installed {escape(item['path'])} ({item['size']} bytes, sha256 {item['sha256'][:16]}...)")
    stdout.print(
        f"[bold green]installed[/] {result.profile} (schema {result.schema_version}) from a verified bundle into "
        f"{escape(result.cache_dir)}\n  scan with: trivy <target> --cache-dir {escape(result.cache_dir)} {SCAN_FLAGS}"
    )
    return 0
