"""Offline, fail-closed verification of a ``devportal:offline`` bundle before anyone browses or imports it.

Checks, in order, each reported as it completes; the first failure decides the exit code:

1. ``signature`` (5): ``manifest.dsse.json`` is present, is a DSSE envelope with payloadType
   :data:`core.contract.payload_types.DEVPORTAL_MANIFEST`, and one of its signatures verifies over the PAE bytes
   with a trusted key.
2. ``manifest`` (4): the envelope carries exactly the bytes of ``manifest.json``, a devportal manifest.
3. ``signer scope`` (5): the trusted key may sign ``devportal:offline`` bundles for the manifest's tenant.
4. ``files`` (4): every file manifest.json lists is present with its size and sha256, has a safe path, and
   nothing else is there but the bundle contract's own files (``export.json`` and the rest).
5. ``bundle`` (4/5): for an archive, the whole bundle contract as ``stella verify`` checks it
   (``export.json.sig``, ``checksums.txt``, provenance).

The archive is read with the fail-closed :class:`core.archive.reader.SafeArchiveReader` (links, devices, ``..`` and
absolute names are refused there). :func:`materialize_portal` writes the members to a private directory while
hashing them and keeps that copy only if everything verified: the local server serves that copy, never files
someone can still change.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

from core.archive.reader import ReaderLimits, SafeArchiveReader
from core.archive.rules import unsafe_path_reason
from core.contract.bundle import HEAD_ORDER
from core.contract.devportal import MANIFEST, MANIFEST_DSSE, MANIFEST_SCHEMA, PORTAL_DIR
from core.contract.manifest import VerifiedManifest
from core.contract.payload_types import DEVPORTAL_MANIFEST
from core.contract.profiles import DEVPORTAL_OFFLINE
from core.errors import BadInputError, EnvironmentFailure, IntegrityError, SignatureError, StellaError, UsageError
from core.progress import Observer
from core.signing import dsse_signer, envelope_signatures
from core.trust import TrustedKey
from verify.bundle import Recorder, VerifyReport, verify_bundle

#: The bundle contract's own files: checked by the ``bundle`` step, not listed in manifest.json.
CONTRACT_FILES = frozenset(HEAD_ORDER)
PROFILE = DEVPORTAL_OFFLINE
MAX_MANIFEST = 64 << 20
_CHUNK = 1 << 20


class PortalReport(VerifyReport):
    """What ``stella devportal verify`` says about a bundle, check by check, as text or JSON (``stella verify``'s
    shape)."""


class _Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class _Seen:
    sha256: str
    size: int


class _Collected:
    """The two manifest files in memory, and every other file's digest and size."""

    def __init__(self) -> None:
        self.manifest: bytes | None = None
        self.envelope: bytes | None = None
        self.files: dict[str, _Seen] = {}

    def add(self, name: str, stream: _Readable, size: int, copy_to: Path | None) -> None:
        if name in (MANIFEST, MANIFEST_DSSE):
            if size > MAX_MANIFEST:
                raise IntegrityError(f"{size} bytes, over the {MAX_MANIFEST}-byte limit", path=name)
            data = stream.read(MAX_MANIFEST + 1)
            if name == MANIFEST:
                self.manifest = data
            else:
                self.envelope = data
            if copy_to is not None:
                _write_new(copy_to, name, [data])
            self.files[name] = _Seen(hashlib.sha256(data).hexdigest(), len(data))
            return
        digest = hashlib.sha256()
        count = 0

        def chunks() -> Iterator[bytes]:
            nonlocal count
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
                count += len(chunk)
                yield chunk

        if copy_to is not None:
            _write_new(copy_to, name, chunks())
        else:
            for _ in chunks():
                pass
        self.files[name] = _Seen(digest.hexdigest(), count)


def _write_new(root: Path, name: str, chunks: Iterator[bytes] | list[bytes]) -> None:
    """Create ``root/name`` (never through a link or over an existing file) from ``chunks``."""
    target = root.joinpath(*name.split("/"))
    target.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(target, flags, 0o644)
    except OSError as exc:
        raise EnvironmentFailure(f"cannot write: {exc.strerror}", path=str(target)) from exc
    with os.fdopen(fd, "wb") as out:
        for chunk in chunks:
            out.write(chunk)


def _collect_archive(bundle: Path, copy_to: Path | None) -> _Collected:
    found = _Collected()
    with SafeArchiveReader(bundle, ReaderLimits()) as reader:
        for member in reader:
            with member.stream() as src:
                found.add(member.name, src, member.size, copy_to)
    return found


def _walk_dir(root: Path) -> Iterator[tuple[str, Path]]:
    """Regular files under an extracted bundle, in path order; links and special files are refused."""

    def visit(directory: Path, prefix: str) -> Iterator[tuple[str, Path]]:
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            raise EnvironmentFailure(f"cannot list directory: {exc.strerror}", path=str(directory)) from exc
        for entry in entries:
            rel = prefix + entry.name
            reason = unsafe_path_reason(rel)
            if reason is not None:
                raise IntegrityError(f"unsafe path: {reason}", path=rel)
            mode = os.lstat(entry.path).st_mode
            if stat.S_ISDIR(mode):
                yield from visit(Path(entry.path), rel + "/")
            elif stat.S_ISREG(mode):
                yield rel, Path(entry.path)
            elif stat.S_ISLNK(mode):
                raise IntegrityError("a symbolic link in the portal: links are never followed or served", path=rel)
            else:
                raise IntegrityError("not a regular file (device, socket or pipe)", path=rel)

    yield from visit(root, "")


def _collect_dir(root: Path, copy_to: Path | None) -> _Collected:
    found = _Collected()
    for rel, path in _walk_dir(root):
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(path, flags)
        except OSError as exc:
            raise EnvironmentFailure(f"cannot read: {exc.strerror}", path=rel) from exc
        with os.fdopen(fd, "rb") as src:
            found.add(rel, src, os.fstat(src.fileno()).st_size, copy_to)
    return found


class _Verification(Recorder):
    def __init__(self, keys: Sequence[TrustedKey], report: PortalReport, observer: Observer | None) -> None:
        super().__init__(report, observer)
        self.keys = keys

    def check_signature(self, envelope_bytes: bytes | None) -> bytes:
        """The DSSE payload, once a trusted key's signature over it verified."""
        if envelope_bytes is None:
            raise self.failed(
                "signature",
                SignatureError(
                    "manifest.dsse.json is missing: the portal is unsigned",
                    path=MANIFEST_DSSE,
                    hint="do not serve or import this portal; ask the sender for the signed bundle",
                ),
            )
        self.require_keys(self.keys)
        try:
            envelope = orjson.loads(envelope_bytes)
            payload_type = envelope["payloadType"]
            payload = base64.b64decode(envelope["payload"], validate=True)
            signatures = envelope["signatures"]
        except (orjson.JSONDecodeError, KeyError, TypeError, binascii.Error) as exc:
            raise self.failed(
                "signature", SignatureError(f"manifest.dsse.json is not a DSSE envelope: {exc}", path=MANIFEST_DSSE)
            ) from None
        if payload_type != DEVPORTAL_MANIFEST:
            raise self.failed(
                "signature",
                SignatureError(f"DSSE payloadType is {payload_type!r}, not {DEVPORTAL_MANIFEST!r}", path=MANIFEST_DSSE),
            )
        if not isinstance(signatures, list) or not signatures:
            raise self.failed(
                "signature",
                SignatureError("manifest.dsse.json carries no signature: the portal is unsigned", path=MANIFEST_DSSE),
            )
        key = dsse_signer(DEVPORTAL_MANIFEST, payload, envelope_signatures(signatures), self.keys)
        if key is None:
            raise self.unsigned(self.keys, MANIFEST_DSSE)
        self.signed_by(key, MANIFEST_DSSE)
        return payload

    def check_manifest(self, payload: bytes, manifest_bytes: bytes | None) -> dict[str, Any]:
        if manifest_bytes is None:
            raise self.failed("manifest", IntegrityError("manifest.json is missing", path=MANIFEST))
        if manifest_bytes != payload:
            raise self.failed(
                "manifest",
                IntegrityError("manifest.json differs from the payload its DSSE envelope signs", path=MANIFEST),
            )
        try:
            manifest = orjson.loads(manifest_bytes)
        except orjson.JSONDecodeError as exc:
            raise self.failed("manifest", BadInputError(f"manifest.json is not JSON: {exc}", path=MANIFEST)) from None
        if not isinstance(manifest, dict) or manifest.get("schema") != MANIFEST_SCHEMA:
            raise self.failed("manifest", BadInputError("not a devportal manifest", path=MANIFEST))
        if not isinstance(manifest.get("files"), list):
            raise self.failed("manifest", BadInputError("manifest.json has no file list", path=MANIFEST))
        self.report.manifest = VerifiedManifest.from_dict(
            {k: v for k, v in manifest.items() if k != "files"}
            | {"fileCount": len(manifest["files"]), "sha256": hashlib.sha256(manifest_bytes).hexdigest()}
        )
        self.passed("manifest", f"manifest.json is the signed payload ({len(manifest['files'])} files)", MANIFEST)
        self.check_scope(PROFILE, str(manifest.get("tenant", "")), PROFILE)
        return manifest

    def check_files(self, manifest: dict[str, Any], seen: dict[str, _Seen]) -> None:
        listed: set[str] = set()
        for n, entry in enumerate(manifest["files"]):
            try:
                path, sha, size = str(entry["path"]), str(entry["sha256"]), int(entry["size"])
            except (KeyError, TypeError, ValueError):
                raise self.failed(
                    "files", BadInputError(f"malformed file entry at /files/{n}", path=MANIFEST)
                ) from None
            reason = unsafe_path_reason(path)
            if reason is not None or path in CONTRACT_FILES or path in (MANIFEST, MANIFEST_DSSE):
                raise self.failed(
                    "files",
                    IntegrityError(f"unsafe or reserved path in manifest.json: {reason or 'reserved'}", path=path),
                )
            if path in listed:
                raise self.failed("files", IntegrityError("listed twice in manifest.json", path=path))
            listed.add(path)
            got = seen.get(path)
            if got is None:
                raise self.failed("files", IntegrityError("listed in manifest.json but missing", path=path))
            if got.size != size:
                raise self.failed(
                    "files", IntegrityError(f"size {got.size} differs from manifest.json's {size}", path=path)
                )
            if got.sha256 != sha:
                raise self.failed("files", IntegrityError("sha256 differs from manifest.json (tampered)", path=path))
        for name in sorted(seen):
            if name not in listed and name not in CONTRACT_FILES and name not in (MANIFEST, MANIFEST_DSSE):
                raise self.failed(
                    "files", IntegrityError("file is not listed in manifest.json (added after signing)", path=name)
                )
        self.passed("files", f"{len(listed)} files match manifest.json (digest and size); none missing or unlisted")


def _run(source: Path, keys: Sequence[TrustedKey], observer: Observer | None, copy_to: Path | None) -> PortalReport:
    report = PortalReport(str(source))
    job = _Verification(keys, report, observer)
    try:
        try:
            found = _collect_dir(source, copy_to) if source.is_dir() else _collect_archive(source, copy_to)
        except StellaError as exc:
            raise job.failed("archive", exc) from None
        payload = job.check_signature(found.envelope)
        manifest = job.check_manifest(payload, found.manifest)
        job.check_files(manifest, found.files)
        if source.is_dir():
            job.passed("bundle", "an extracted directory: the bundle contract (export.json.sig) is checked on archives")
        else:
            outer = verify_bundle(source, keys)
            if outer.error is not None:
                raise job.failed("bundle", outer.error)
            job.passed("bundle", f"bundle contract verified ({len(outer.checks)} checks: export.json.sig, checksums)")
    except StellaError as exc:
        report.error = exc
    return report


def verify_portal(bundle: Path, keys: Sequence[TrustedKey], *, observer: Observer | None = None) -> PortalReport:
    """Verify a devportal bundle (``bundle.tgz``, or a directory it was extracted to) against ``keys``."""
    if not bundle.exists():
        raise UsageError("no such bundle file or directory", path=str(bundle))
    return _run(bundle, keys, observer, None)


def materialize_portal(
    bundle: Path, keys: Sequence[TrustedKey], target: Path, *, observer: Observer | None = None
) -> tuple[PortalReport, Path | None]:
    """Verify ``bundle`` while copying it into a new private directory under ``target``.

    Returns the report and, only when everything verified, the directory to serve (``<copy>/portal``). On any
    failure the copy is removed. The copy's bytes are the ones that were hashed, so what is served is what
    verified, whatever happens to ``bundle`` afterwards.
    """
    if not bundle.exists():
        raise UsageError("no such bundle file or directory", path=str(bundle))
    copy = Path(tempfile.mkdtemp(prefix="stella-portal-", dir=target))
    try:
        report = _run(bundle, keys, observer, copy)
    except BaseException:
        shutil.rmtree(copy, ignore_errors=True)
        raise
    served = copy / PORTAL_DIR
    if not report.ok or not served.is_dir():
        shutil.rmtree(copy, ignore_errors=True)
        if report.ok:
            report.error = IntegrityError("the bundle has no portal/ directory", path=str(bundle))
        return report, None
    return report, served
