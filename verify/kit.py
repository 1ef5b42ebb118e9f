"""Offline, fail-closed verification of Offline Kit volumes, each on its own or several together.

One volume (a directory: a USB stick, a mounted or extracted ISO) is checked in this order, stopping at the first
failure with the error whose exit code the CLI returns:

1. ``layout``: the directory holds ``KIT-VOLUME.json`` (else it is not a kit volume: exit 3);
2. ``signature``: ``KIT-VOLUME.json.sig`` verifies over the manifest's bytes with a trusted key (exit 5);
3. ``manifest``: the manifest is one stella writes (schema, canonical JSON, safe sorted paths; exit 3);
4. ``index``: ``KIT-INDEX.json`` has the size and sha256 the signed manifest names, parses, is of the same kit,
   and agrees with the manifest about every part on this volume (exit 4);
5. ``files``: only regular files and directories, every file present is listed and every listed file present
   (exit 4, naming the file);
6. ``checksums``: ``KIT-VOLUME.sha256`` is exactly the list the manifest implies and its signature verifies with
   the same key (what ``verify.sh`` trusts; exit 4 or 5);
7. ``digests``: every listed file's size and sha256, streamed (exit 4, naming the volume and the file).

The report then says which bundles the volume completes and which volumes the others still need. Several volumes
are checked each alone, then together: one kit, one index, no volume twice (exit 4).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from core.contract.kit import (
    KIT_INDEX,
    KIT_SUMS,
    KIT_SUMS_SIG,
    VOLUME_MANIFEST,
    VOLUME_MANIFEST_SIG,
    VOLUME_SUMS,
    VOLUME_SUMS_SIG,
)
from core.errors import BadInputError, Cancelled, IntegrityError, SignatureError, StellaError, UsageError
from core.keys import KeyAlgorithm
from core.kit import MAX_DOCUMENT, KitIndex, VolumeManifest, check_manifest_against_index, volume_sums
from core.progress import Observer
from core.signing import verify_prehashed_sha256, verify_raw
from core.trust import TrustedKey
from verify.bundle import Recorder, VerifyReport

CHUNK = 1 << 20
MAX_SIGNATURE = 1 << 16


@dataclass
class VolumeReport(VerifyReport):
    """What ``stella kit verify`` says about one volume."""

    _: KW_ONLY
    volume: VolumeManifest | None = None
    index: KitIndex | None = None
    index_sha256: str | None = None

    @property
    def complete(self) -> list[str]:
        """The bundles whose every part lies on this volume."""
        if self.volume is None or self.index is None:
            return []
        return [b.name for b in self.index.bundles if set(b.volumes) == {self.volume.volume}]

    @property
    def needs(self) -> dict[str, list[int]]:
        """Bundles with a part on this volume and others elsewhere: the other volumes each still needs."""
        if self.volume is None or self.index is None:
            return {}
        here = self.volume.volume
        return {
            b.name: [v for v in b.volumes if v != here]
            for b in self.index.bundles
            if here in b.volumes and set(b.volumes) != {here}
        }

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "volumeDir": self.bundle,
            "verified": self.ok,
            "exitCode": 0 if self.ok else int(self.error.exit_code if self.error else 4),
            "checks": [c.to_dict() for c in self.checks],
        }
        if self.volume is not None:
            out |= {
                "kitId": self.volume.kit_id,
                "volume": self.volume.volume,
                "volumes": self.volume.volumes,
                "label": self.volume.label,
                "files": len(self.volume.files),
                "bytes": sum(f.size for f in self.volume.files),
            }
        if self.index is not None and self.ok:
            out |= {"completes": self.complete, "needs": self.needs}
        if self.signer:
            out["signer"] = self.signer
        if self.error is not None:
            out["error"] = self.error.to_dict()
        return out


@dataclass
class KitReport:
    """Several volumes: each one's report, then what they are together."""

    volumes: list[VolumeReport]
    _: KW_ONLY
    error: StellaError | None = None
    #: Kit directories whose signed ``SHA256SUMS`` matched their volumes.
    sums_checked: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and all(v.ok for v in self.volumes)

    @property
    def index(self) -> KitIndex | None:
        return next((v.index for v in self.volumes if v.index is not None), None)

    @property
    def present(self) -> list[int]:
        return sorted(v.volume.volume for v in self.volumes if v.volume is not None and v.ok)

    @property
    def missing(self) -> list[int]:
        index = self.index
        return [] if index is None else [v.volume for v in index.volumes if v.volume not in self.present]

    @property
    def complete(self) -> list[str]:
        """The bundles every part of which lies on the volumes given."""
        index = self.index
        here = set(self.present)
        return [] if index is None else [b.name for b in index.bundles if set(b.volumes) <= here]

    def to_dict(self) -> dict[str, Any]:
        index = self.index
        out: dict[str, Any] = {
            "verified": self.ok,
            "exitCode": 0 if self.ok else int(self.error.exit_code if self.error else self._first_code()),
            "kitId": index.kit_id if index else None,
            "volumes": [v.to_dict() for v in self.volumes],
            "present": self.present,
            "missing": self.missing,
            "completes": self.complete if self.ok else [],
            "sha256sums": self.sums_checked,
        }
        if self.error is not None:
            out["error"] = self.error.to_dict()
        return out

    def _first_code(self) -> int:
        failed = next((v for v in self.volumes if not v.ok), None)
        return int(failed.error.exit_code) if failed is not None and failed.error is not None else 4

    @property
    def first_error(self) -> StellaError | None:
        """The error the command exits with: the first failing volume's, else the kit's."""
        failed = next((v for v in self.volumes if v.error is not None), None)
        return failed.error if failed is not None else self.error


def signature_bytes(sig_text: bytes) -> bytes:
    """A signature file's raw signature from its one accepted spelling: base64 exactly as the writer emits it."""
    raw = base64.b64decode(sig_text, validate=True)
    if base64.b64encode(raw) != sig_text or not raw:
        raise binascii.Error("not the canonical base64 spelling")
    return raw


def signed_by(keys: Sequence[TrustedKey], signature: bytes, data: bytes) -> TrustedKey | None:
    """The first key (never a receipts-only one) whose signature over ``data`` is ``signature``; None if none."""
    digest = hashlib.sha256(data).digest()
    for key in keys:
        if key.receipts_only:
            continue
        if key.algorithm is KeyAlgorithm.ECDSA_P256:
            assert isinstance(key.public_key, ec.EllipticCurvePublicKey)
            if verify_prehashed_sha256(key.public_key, signature, digest):
                return key
        elif verify_raw(key.public_key, signature, data):
            return key
    return None


def _read_small(path: Path, limit: int, name: str) -> bytes:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise IntegrityError(f"{name} is missing", path=str(path)) from None
    if not stat.S_ISREG(st.st_mode):
        raise IntegrityError(f"{name} is not a regular file", path=str(path))
    if st.st_size > limit:
        raise IntegrityError(f"{name} is {st.st_size} bytes, over the limit of {limit}", path=str(path))
    with path.open("rb") as fh:
        return fh.read(limit + 1)


def walk_files(root: Path) -> list[str]:
    """Every regular file under ``root`` as a relative POSIX path, sorted; a link or special file is refused."""
    found: list[str] = []
    stack = [(root, "")]
    while stack:
        folder, prefix = stack.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                rel = f"{prefix}{entry.name}"
                mode = entry.stat(follow_symlinks=False).st_mode
                if stat.S_ISDIR(mode):
                    stack.append((Path(entry.path), rel + "/"))
                elif stat.S_ISREG(mode):
                    found.append(rel)
                else:
                    raise IntegrityError("a link or special file lies on the volume", path=str(root / rel))
    return sorted(found)


class _VolumeCheck(Recorder):
    def __init__(self, root: Path, keys: Sequence[TrustedKey], report: VolumeReport, observer: Observer | None) -> None:
        super().__init__(report, observer)
        self.root = root
        self.keys = keys
        self.volume_report = report

    def run(self, *, digests: bool) -> None:
        root = self.root
        if not root.is_dir():
            raise self.failed("layout", UsageError("not a directory (a kit volume)", path=str(root)))
        if not (root / VOLUME_MANIFEST).exists():
            raise self.failed(
                "layout",
                BadInputError(
                    f"not an Offline Kit volume: there is no {VOLUME_MANIFEST}",
                    path=str(root),
                    hint="name a volume directory (vol-01), a kit directory, or a mounted or extracted ISO",
                ),
            )
        data = _read_small(root / VOLUME_MANIFEST, MAX_DOCUMENT, VOLUME_MANIFEST)
        manifest_sha = hashlib.sha256(data).hexdigest()
        self.passed("layout", f"{VOLUME_MANIFEST} ({len(data)} bytes)")
        self.require_keys(self.keys)
        try:
            signature = signature_bytes(_read_small(root / VOLUME_MANIFEST_SIG, MAX_SIGNATURE, VOLUME_MANIFEST_SIG))
        except IntegrityError as exc:
            raise self.failed("signature", SignatureError(exc.message, path=exc.path)) from None
        except (binascii.Error, ValueError):
            raise self.failed(
                "signature", SignatureError("the signature is not canonical base64", path=VOLUME_MANIFEST_SIG)
            ) from None
        key = signed_by(self.keys, signature, data)
        if key is None:
            raise self.unsigned([k for k in self.keys if not k.receipts_only] or self.keys, VOLUME_MANIFEST)
        self.signed_by(key, VOLUME_MANIFEST)
        try:
            manifest = VolumeManifest.from_bytes(data, VOLUME_MANIFEST)
        except BadInputError as exc:
            raise self.failed("manifest", exc) from None
        self.volume_report.volume = manifest
        self.passed("manifest", f"volume {manifest.volume} of {manifest.volumes} of kit {manifest.kit_id}")
        index_data = _read_small(root / KIT_INDEX, MAX_DOCUMENT, KIT_INDEX)
        index_sha = hashlib.sha256(index_data).hexdigest()
        if len(index_data) != manifest.index_size or index_sha != manifest.index_sha256:
            raise self.failed(
                "index",
                IntegrityError(
                    f"{KIT_INDEX} is not the index the signed manifest names (sha256 {index_sha[:16]}..., "
                    f"expected {manifest.index_sha256[:16]}...)",
                    path=str(root / KIT_INDEX),
                ),
            )
        try:
            index = KitIndex.from_bytes(index_data, KIT_INDEX)
            check_manifest_against_index(manifest, index, KIT_INDEX)
        except BadInputError as exc:
            raise self.failed("index", IntegrityError(exc.message, path=exc.path, hint=exc.hint)) from None
        self.volume_report.index = index
        self.volume_report.index_sha256 = index_sha
        self.passed("index", f"{len(index.bundles)} bundles over {len(index.volumes)} volumes")
        try:
            present = walk_files(root)
        except IntegrityError as exc:
            raise self.failed("files", exc) from None
        listed = {f.path for f in manifest.files} | {KIT_INDEX, VOLUME_MANIFEST, VOLUME_MANIFEST_SIG}
        listed |= {VOLUME_SUMS, VOLUME_SUMS_SIG}
        unlisted = [p for p in present if p not in listed]
        if unlisted:
            raise self.failed(
                "files",
                IntegrityError(
                    f"unlisted file on volume {manifest.volume} of kit {manifest.kit_id}: {unlisted[0]}",
                    path=str(root / unlisted[0]),
                    hint="the signed volume manifest does not list it: something was added to the volume",
                ),
            )
        missing = sorted(listed - set(present))
        if missing:
            raise self.failed(
                "files",
                IntegrityError(
                    f"missing file on volume {manifest.volume} ({manifest.label}): {missing[0]}",
                    path=str(root / missing[0]),
                ),
            )
        self.passed("files", f"{len(present)} files, none unlisted, none missing")
        sums = _read_small(root / VOLUME_SUMS, MAX_DOCUMENT, VOLUME_SUMS)
        if sums != volume_sums(manifest, manifest_sha):
            raise self.failed(
                "checksums",
                IntegrityError(
                    f"{VOLUME_SUMS} is not the list the signed manifest implies", path=str(root / VOLUME_SUMS)
                ),
            )
        try:
            sums_sig = signature_bytes(_read_small(root / VOLUME_SUMS_SIG, MAX_SIGNATURE, VOLUME_SUMS_SIG))
        except (binascii.Error, ValueError):
            sums_sig = b""
        if signed_by([key], sums_sig, sums) is None:
            raise self.failed(
                "checksums",
                SignatureError(
                    f"{VOLUME_SUMS_SIG} does not verify with {key.label!r}", path=str(root / VOLUME_SUMS_SIG)
                ),
            )
        self.passed("checksums", f"{VOLUME_SUMS} is the manifest's list and signed by the same key")
        if digests:
            self.check_digests(manifest)

    def check_digests(self, manifest: VolumeManifest) -> None:
        observer = self.observer
        observer.start("bytes", sum(f.size for f in manifest.files))
        for entry in manifest.files:
            path = self.root / entry.path
            what = f"volume {manifest.volume} ({manifest.label}): {entry.path}"
            size = os.lstat(path).st_size
            if size != entry.size:
                raise self.failed(
                    "digests", IntegrityError(f"{what} is {size} bytes, the manifest says {entry.size}", path=str(path))
                )
            digest = hashlib.sha256()
            with path.open("rb") as fh:
                while chunk := fh.read(CHUNK):
                    if observer.is_cancelled():
                        raise Cancelled("verification cancelled")
                    digest.update(chunk)
                    observer.advance(len(chunk), detail=entry.path)
            if digest.hexdigest() != entry.sha256:
                raise self.failed(
                    "digests",
                    IntegrityError(f"{what} does not match its sha256 in the signed manifest", path=str(path)),
                )
        observer.finish("bytes")
        self.passed("digests", f"{len(manifest.files)} files, {sum(f.size for f in manifest.files)} bytes")


def verify_volume(
    root: Path, keys: Sequence[TrustedKey], *, observer: Observer | None = None, digests: bool = True
) -> VolumeReport:
    """Verify one volume alone (see the module docstring); ``report.error`` is the first failure.

    With ``digests`` False every check but the file digests runs (a restore hashes each part as it copies it).
    """
    report = VolumeReport(str(root))
    job = _VolumeCheck(root, keys, report, observer)
    try:
        job.run(digests=digests)
    except Cancelled:
        raise
    except StellaError as exc:
        job.settle("volume", exc)
    except OSError as exc:
        job.settle("volume", IntegrityError(f"cannot read the volume: {exc.strerror}", path=str(exc.filename or root)))
    return report


def check_together(reports: Sequence[VolumeReport]) -> StellaError | None:
    """Volumes that each verified belong to one kit with one index, and none is given twice."""
    good = [r for r in reports if r.ok and r.volume is not None]
    if not good:
        return None
    first = good[0]
    assert first.volume is not None
    seen: dict[int, str] = {}
    for r in good:
        assert r.volume is not None
        if r.volume.kit_id != first.volume.kit_id or r.index_sha256 != first.index_sha256:
            return IntegrityError(
                f"{r.bundle} is a volume of kit {r.volume.kit_id}, not of kit {first.volume.kit_id} ({first.bundle})",
                path=r.bundle,
                hint="give the volumes of one kit",
            )
        if r.volume.volume in seen:
            return UsageError(
                f"volume {r.volume.volume} is given twice ({seen[r.volume.volume]} and {r.bundle})", path=r.bundle
            )
        seen[r.volume.volume] = r.bundle
    return None


def verify_volumes(
    roots: Sequence[Path], keys: Sequence[TrustedKey], *, observer: Observer | None = None, digests: bool = True
) -> KitReport:
    """Verify each volume alone, then that they are volumes of one kit (see :func:`check_together`)."""
    reports = [verify_volume(root, keys, observer=observer, digests=digests) for root in roots]
    return KitReport(reports, error=check_together(reports))


def verify_kit_sums(kit_dir: Path, keys: Sequence[TrustedKey], reports: Sequence[VolumeReport]) -> StellaError | None:
    """The kit-wide ``SHA256SUMS`` of a kit directory whose every volume verified: its signature (``SHA256SUMS.sig``,
    a trusted key) and its lines, exactly every file of every volume with the digest the volume's signed manifest
    gives (the manifest, its signature, the checksums and their signature: their digests as read)."""
    try:
        data = _read_small(kit_dir / KIT_SUMS, MAX_DOCUMENT, KIT_SUMS)
    except StellaError as exc:
        return exc
    try:
        signature = signature_bytes(_read_small(kit_dir / KIT_SUMS_SIG, MAX_SIGNATURE, KIT_SUMS_SIG))
    except StellaError as exc:
        return SignatureError(exc.message, path=exc.path)
    except (binascii.Error, ValueError):
        return SignatureError("the signature is not canonical base64", path=str(kit_dir / KIT_SUMS_SIG))
    if signed_by(keys, signature, data) is None:
        return SignatureError(f"{KIT_SUMS_SIG} does not verify with any trusted key", path=str(kit_dir / KIT_SUMS_SIG))
    expected: dict[str, str] = {}
    for report in reports:
        if report.volume is None or report.index_sha256 is None:
            return None  # a volume that did not verify says why
        root = Path(report.bundle)
        prefix = f"{root.name}/"
        expected |= {prefix + f.path: f.sha256 for f in report.volume.files}
        expected[prefix + KIT_INDEX] = report.index_sha256
        for name in (VOLUME_MANIFEST, VOLUME_MANIFEST_SIG, VOLUME_SUMS, VOLUME_SUMS_SIG):
            expected[prefix + name] = hashlib.sha256(_read_small(root / name, MAX_DOCUMENT, name)).hexdigest()
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return IntegrityError(f"{KIT_SUMS} is not ASCII", path=str(kit_dir / KIT_SUMS))
    listed: dict[str, str] = {}
    for line in text.splitlines():
        sha, sep, path = line.partition("  ")
        if not sep or len(sha) != 64 or path in listed:
            return IntegrityError(f"{KIT_SUMS} has a line stella does not write: {line[:80]!r}", path=str(kit_dir))
        listed[path] = sha
    if listed != expected:
        differ = sorted(set(listed.items()) ^ set(expected.items()))[0][0]
        return IntegrityError(
            f"{KIT_SUMS} and the volumes' signed manifests disagree about {differ}", path=str(kit_dir / KIT_SUMS)
        )
    return None
