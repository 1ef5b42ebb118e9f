"""Verified, atomic import of mirror bundles into a mirror directory; rollback; status.

A mirror directory::

    current -> states/<name>       the state being served (a relative symlink, swapped atomically)
    previous -> states/<name>      the state before the last import or rollback (for ``mirror rollback``)
    states/<name>/tree/            the mirror tree: manifests/, data/, indexes/, tuf/metadata/
    states/<name>/meta/            export.json and its signature, the signed import receipt, and tuf/:
                                   the TUF metadata this state's import trusted (rollback protection)
    receipts/                      every receipt written, oldest first
    quarantine/<time>-<bundle>/    bundles that failed, with reason.json
    .lock, .staging-*              the import lock; work in progress (removed by the next import)

An import verifies everything before the mirror changes: the bundle's signature and every digest
(``verify.bundle``), then, after extracting into a staging directory on the same file system and linking
the unchanged files of the current state beside the new ones, the TUF chain from the pinned root through any
rotations to timestamp, snapshot and targets, with expiry at ``at`` and versions that only go up
(``verify.tuf_client``), and every target's length and digest. A delta must name the current state as its
base. Only then is the staging directory renamed into ``states/`` and ``current`` replaced by a symlink
pointing at it (``rename(2)`` is atomic), so a process killed at any point leaves the old state or the new
one in place, never a mixture.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import os
import secrets
import shutil
import signal
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import orjson
import pyrage
from tuf.api.metadata import Metadata

from core.age_stream import AgeError, decrypt_stream
from core.archive import ReaderLimits, SafeArchiveReader, unsafe_path_reason
from core.errors import (
    Cancelled,
    EnvironmentFailure,
    IntegrityError,
    PolicyRefusal,
    SignatureError,
    StellaError,
    StoreLockedError,
    TrustMetadataError,
    UsageError,
)
from core.mirror_layout import STATE, MirrorState, load_state
from core.mirror_receipt import make_receipt
from core.progress import CancelToken, Check, CheckObserver
from core.signing import Signer, sha256_file
from core.trust import TrustedKey
from verify.bundle import copy_member, verify_bundle
from verify.tuf_client import TufVerification, verify_mirror

_HEAD = frozenset(
    {
        "export.json",
        "export.json.sig",
        "checksums.txt",
        "README.txt",
        "verify.sh",
        "provenance.json",
        "provenance.dsse.json",
        "provenance.sigstore.json",
    }
)
_KEPT_HEAD = ("export.json", "export.json.sig")
DEFAULT_MIN_FREE = 64 << 20
#: Crash-safety tests name a point here (``STELLA_FAULT_AT``) and the process kills itself there with SIGKILL.
FAULT_POINTS = ("after-extract", "after-verify", "before-swap", "mid-swap", "after-swap")


def _fault(point: str) -> None:
    if os.environ.get("STELLA_FAULT_AT") == point:
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass(frozen=True)
class ImportResult:
    """What ``import_bundle`` did."""

    state: MirrorState
    state_digest: str
    previous_digest: str | None
    tuf: TufVerification
    receipt_path: Path
    receipt: dict[str, Any]
    written_bytes: int
    linked_files: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "stateDigest": self.state_digest,
            "previousStateDigest": self.previous_digest,
            "sequence": self.state.sequence,
            "runId": self.state.run_id,
            "tenant": self.state.tenant,
            "counts": dict(self.state.counts),
            "files": len(self.state.files) + 1,
            "writtenBytes": self.written_bytes,
            "linkedFiles": self.linked_files,
            "tuf": {k: v for k, v in self.tuf.to_dict().items() if k != "targets"},
            "receipt": str(self.receipt_path),
        }


class MirrorDir:
    """A receiver's mirror directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.current_link = path / "current"
        self.previous_link = path / "previous"
        self.states = path / "states"
        self.receipts = path / "receipts"
        self.quarantine_dir = path / "quarantine"

    # -- reading ---------------------------------------------------------------------------------
    def _target(self, link: Path) -> Path | None:
        if not link.is_symlink():
            return None
        target = self.path / link.readlink()
        return target if target.is_dir() else None

    def current(self) -> Path | None:
        """The current state's directory (``states/<name>``), or None for an empty mirror."""
        return self._target(self.current_link)

    def previous(self) -> Path | None:
        return self._target(self.previous_link)

    # -- locking and recovery ----------------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise EnvironmentFailure(f"cannot open the mirror directory: {exc.strerror}", path=str(self.path)) from exc
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
                raise StoreLockedError(
                    f"mirror is locked by PID {holder}", path=str(self.path), hint="wait for that import to finish"
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            self.recover()
            yield
        finally:
            os.close(fd)

    def recover(self) -> None:
        """Remove what an interrupted import or rollback left: staging, half-made links, unreferenced states."""
        for leftover in self.path.glob(".staging-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        for name in (".current.new", ".previous.new"):
            with contextlib.suppress(FileNotFoundError):
                (self.path / name).unlink()
        keep = {p.resolve() for p in (self.current(), self.previous()) if p is not None}
        if self.states.is_dir():
            for state in self.states.iterdir():
                if state.resolve() not in keep:
                    shutil.rmtree(state, ignore_errors=True)

    def _point(self, link: Path, state: Path) -> None:
        tmp = self.path / f".{link.name}.new"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(os.path.relpath(state, self.path))
        if link == self.current_link:
            _fault("mid-swap")
        tmp.replace(link)
        _fsync_dir(self.path)

    # -- quarantine --------------------------------------------------------------------------------
    def quarantine(self, bundle: Path, error: StellaError) -> Path:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        where = self.quarantine_dir / f"{stamp}-{secrets.token_hex(3)}-{bundle.name}"
        where.mkdir(parents=True, exist_ok=True)
        target = where / bundle.name
        try:
            os.link(bundle, target)
        except OSError:
            with contextlib.suppress(OSError):
                shutil.copyfile(bundle, target)
        reason = {"bundle": str(bundle), "quarantinedAt": stamp, "error": error.to_dict()}
        (where / "reason.json").write_bytes(orjson.dumps(reason, option=orjson.OPT_INDENT_2) + b"\n")
        return where


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _safe_member(name: str) -> PurePosixPath:
    reason = unsafe_path_reason(name)
    if reason is not None:
        raise IntegrityError(f"bundle path {reason}", path=name)
    return PurePosixPath(name)


class _Import:
    def __init__(
        self,
        mirror: MirrorDir,
        bundle: Path,
        *,
        keys: Sequence[TrustedKey],
        trust_root: bytes | None,
        identities: Sequence[Any],
        passphrase: str | None,
        at: datetime | None,
        signer: Signer,
        min_free: int,
        on_check: Callable[[Check], None],
    ) -> None:
        self.mirror = mirror
        self.bundle = bundle
        self.keys = keys
        self.trust_root = trust_root
        self.identities = identities
        self.passphrase = passphrase
        self.at = at
        self.signer = signer
        self.min_free = min_free
        self.on_check = on_check
        self.cancel: CancelToken | None = None
        self.staging = mirror.path / f".staging-{os.getpid()}-{secrets.token_hex(4)}"
        self.tree = self.staging / "tree"
        self.meta = self.staging / "meta"
        self.written = 0
        self.linked = 0

    def check(self, name: str, detail: str) -> None:
        self.on_check(Check(name, True, detail))

    def run(self) -> ImportResult:
        report = verify_bundle(self.bundle, self.keys, at=self.at, observer=CheckObserver(self.on_check, self.cancel))
        if report.error is not None:
            raise report.error
        manifest = report.manifest
        profile = manifest.get("profile") or {}
        if profile.get("kind") != "mirror":
            raise UsageError(
                f"{profile.get('kind')}:{profile.get('variant')} is not a mirror bundle",
                path=str(self.bundle),
                hint="stella mirror import takes mirror:full and mirror:delta bundles; use stella verify for others",
            )
        current = self.mirror.current()
        current_state = load_state(current / "tree") if current is not None else None
        self.check_base(manifest, current_state)
        encryption = manifest.get("encryption") or {}
        if encryption and not self.identities and self.passphrase is None:
            raise UsageError(
                "the payload is age-encrypted", hint="give --identity FILE (or --passphrase-file F) to import it"
            )
        self.preflight(manifest, encryption)

        self.staging.mkdir(mode=0o755)
        self.tree.mkdir()
        self.meta.mkdir()
        self.extract(str(manifest["sha256"]))
        self.decrypt(encryption)
        state = load_state(self.tree)
        mirror_section = manifest.get("mirror") or {}
        if state.digest != mirror_section.get("stateDigest"):
            raise IntegrityError("manifests/state.json differs from the state the signed manifest names", path=STATE)
        base = manifest.get("base") or {}
        if state.base != base.get("stateDigest"):
            raise IntegrityError("the state's base differs from the signed manifest's base", path=STATE)
        if current_state is not None and current_state.tenant != state.tenant:
            raise PolicyRefusal(
                f"this mirror holds tenant {current_state.tenant!r}; the bundle is for {state.tenant!r}",
                path=str(self.bundle),
            )
        self.carry_over(state, current, current_state)
        _fault("after-extract")

        tuf = self.verify_tuf(current)
        self.check(
            "tuf",
            f"TUF chain verified: root {tuf.root_version}, timestamp {tuf.timestamp_version}, snapshot "
            f"{tuf.snapshot_version}, targets {tuf.targets_version}; {len(tuf.targets)} targets match",
        )
        _fault("after-verify")

        previous_digest = current_state.digest if current_state is not None else None
        receipt = {
            "stateDigest": state.digest,
            "sequence": state.sequence,
            "tenant": state.tenant,
            "runId": state.run_id,
            "createdAt": state.created_at,
            "previousStateDigest": previous_digest,
            "bundle": {"name": self.bundle.name, "sha256": _hex_sha256(self.bundle)},
            "manifestSha256": manifest["sha256"],
            "tuf": {k: v for k, v in tuf.to_dict().items() if k != "targets"},
            "importedAt": _now_text(),
            "signer": {"keyid": self.signer.keyid},
        }
        receipt_bytes = make_receipt(receipt, self.signer)
        (self.meta / "receipt.json").write_bytes(receipt_bytes)
        _fsync_tree(self.staging)

        _fault("before-swap")
        if self.cancel is not None and self.cancel.is_cancelled():  # the last moment the mirror is untouched
            raise Cancelled(
                "the mirror import was cancelled before the new state was swapped in", path=str(self.bundle)
            )
        name = f"{state.sequence:06d}-{state.digest[:12]}-{secrets.token_hex(3)}"
        self.mirror.states.mkdir(exist_ok=True)
        final = self.mirror.states / name
        self.staging.rename(final)
        _fsync_dir(self.mirror.states)
        if current is not None:  # first, so that a kill after the swap still leaves the rollback target
            self.mirror._point(self.mirror.previous_link, current)
        self.mirror._point(self.mirror.current_link, final)
        _fault("after-swap")
        self.mirror.recover()
        self.mirror.receipts.mkdir(exist_ok=True)
        log = self.mirror.receipts / f"{receipt['importedAt'].replace(':', '')}-{state.sequence:06d}.json"
        log.write_bytes(receipt_bytes)
        return ImportResult(
            state,
            state.digest,
            previous_digest,
            tuf,
            final / "meta" / "receipt.json",
            receipt,
            self.written,
            self.linked,
        )

    def check_base(self, manifest: dict[str, Any], current: MirrorState | None) -> None:
        base = manifest.get("base")
        if not base:
            self.check("base", "full bundle: replaces whatever the mirror holds")
            return
        want = str(base.get("stateDigest"))
        if current is None:
            raise TrustMetadataError(
                f"this delta applies to mirror state {want[:12]}, but the mirror is empty",
                path=str(self.bundle),
                hint="import the full bundle of its chain first",
            )
        if current.digest != want:
            raise TrustMetadataError(
                f"this delta applies to mirror state {want[:12]} (sequence {base.get('sequence')}), but the mirror "
                f"is at {current.digest[:12]} (sequence {current.sequence})",
                path=str(self.bundle),
                hint="ask the sender for a delta against this mirror's receipt (stella mirror status shows it)",
            )
        self.check("base", f"delta base {want[:12]} is the mirror's current state")

    def preflight(self, manifest: dict[str, Any], encryption: dict[str, Any]) -> None:
        # The listed sizes come from the signed, verified manifest; decrypted copies need room beside them.
        need = self._listed_bytes()
        need += sum(int(f.get("plaintextSize", 0)) for f in encryption.get("files") or [])
        try:
            free = shutil.disk_usage(self.mirror.path).free
        except OSError as exc:
            raise EnvironmentFailure(
                f"cannot stat the mirror file system: {exc.strerror}", path=str(self.mirror.path)
            ) from exc
        if need + self.min_free > free:
            raise EnvironmentFailure(
                f"not enough free space: the import needs {need} bytes and keeps {self.min_free} free; "
                f"{free} are available",
                path=str(self.mirror.path),
                hint="free space on the mirror's file system, or lower --min-free",
            )
        self.check("space", f"{need} bytes needed, {free} free")

    def _listed_bytes(self) -> int:
        total = 0
        with SafeArchiveReader(self.bundle, ReaderLimits()) as reader:
            for member in reader:
                if member.name == "export.json":
                    with member.stream() as src:
                        doc = orjson.loads(src.read())
                    total = sum(int(f["size"]) for f in doc.get("files") or [])
                    break
        return total

    def extract(self, manifest_sha: str) -> None:
        """Write every listed payload file into the staging tree, checking each against the verified manifest."""
        listed: dict[str, tuple[str, int]] = {}
        with SafeArchiveReader(self.bundle, ReaderLimits(), cancel=self.cancel) as reader:
            for member in reader:
                name = member.name
                if name in _HEAD:
                    with member.stream() as src:
                        data = src.read()
                    if name == "export.json":
                        if hashlib.sha256(data).hexdigest() != manifest_sha:
                            raise IntegrityError("export.json changed since it was verified", path=name)
                        doc = orjson.loads(data)
                        listed = {str(f["path"]): (str(f["sha256"]), int(f["size"])) for f in doc["files"]}
                    if name in _KEPT_HEAD:
                        (self.meta / name).write_bytes(data)
                    continue
                want = listed.get(name)
                if want is None:
                    raise IntegrityError("file is not listed in the signed manifest", path=name)
                sha, size = copy_member(member, self.tree.joinpath(*_safe_member(name).parts), exclusive=True)
                if (sha, size) != want:
                    raise IntegrityError("file changed since it was verified", path=name)
                self.written += size
        self.check("extract", f"{self.written} bytes written to staging, each checked against the signed manifest")

    def decrypt(self, encryption: dict[str, Any]) -> None:
        files = encryption.get("files") or []
        for entry in files:
            name = str(entry["path"])
            source = self.tree.joinpath(*_safe_member(name).parts)
            target = source.with_name(source.name.removesuffix(".age"))
            try:
                if self.passphrase is not None:
                    target.write_bytes(pyrage.passphrase.decrypt(source.read_bytes(), self.passphrase))
                else:
                    with source.open("rb") as src, target.open("xb") as out:
                        decrypt_stream(src, out, [str(i) for i in self.identities])
            except (pyrage.DecryptError, AgeError) as exc:
                raise SignatureError(
                    f"cannot decrypt with the given identity or passphrase: {exc}", path=name
                ) from None
            if (_hex_sha256(target), target.stat().st_size) != (entry["plaintextSha256"], entry["plaintextSize"]):
                raise IntegrityError("decrypted plaintext differs from the signed manifest", path=name)
            source.unlink()
        if files:
            self.check("decryption", f"{len(files)} files decrypted; plaintext digests match the signed manifest")

    def carry_over(self, state: MirrorState, current: Path | None, current_state: MirrorState | None) -> None:
        """Hard-link the files the new state keeps from the current one (the delta did not ship them)."""
        kept = current_state.file_map() if current_state is not None else {}
        for entry in state.files:
            target = self.tree.joinpath(*PurePosixPath(entry.path).parts)
            if target.exists():
                continue
            old = kept.get(entry.path)
            if current is None or old is None or old.sha256 != entry.sha256:
                raise IntegrityError(
                    "the new state needs this file, but neither the bundle nor the current mirror has it",
                    path=entry.path,
                )
            source = current / "tree" / PurePosixPath(entry.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(source, target)
            except OSError:
                shutil.copyfile(source, target)
            self.linked += 1
        if self.linked:
            self.check("carry-over", f"{self.linked} unchanged files kept from the current state (hard links)")

    def verify_tuf(self, current: Path | None) -> TufVerification:
        cache = self.meta / "tuf"
        if current is not None and (current / "meta" / "tuf").is_dir():
            shutil.copytree(current / "meta" / "tuf", cache)
        root = self.trust_root
        if root is None and (cache / "root.json").is_file():
            root = (cache / "root.json").read_bytes()
        if root is None:
            raise UsageError(
                "the first import into a mirror needs the TUF root to trust",
                hint="give --trust-root 1.root.json (received out of band, e.g. from `stella tuf status`'s home)",
            )
        return verify_mirror(self.tree, root, state_dir=cache, at=self.at, strict=True)


def _hex_sha256(path: Path) -> str:
    return sha256_file(path).hex()


def _fsync_tree(root: Path) -> None:
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            fd = os.open(Path(dirpath) / name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(dirpath))


def _now_text() -> str:
    return datetime.now(UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def import_bundle(
    bundle: Path,
    into: Path,
    *,
    keys: Sequence[TrustedKey],
    signer: Signer,
    trust_root: bytes | None = None,
    identities: Sequence[Any] = (),
    passphrase: str | None = None,
    at: datetime | None = None,
    min_free: int = DEFAULT_MIN_FREE,
    on_check: Callable[[Check], None] | None = None,
    cancel: CancelToken | None = None,
) -> ImportResult:
    """Verify ``bundle`` and make it the current state of the mirror at ``into``; see the module docstring.

    A bundle that fails is quarantined (``quarantine/``) and the mirror is left as it was. Errors carry the
    exit codes of DESIGN.md section 7: 4 integrity, 5 signature, 6 TUF/expiry/rollback/wrong base,
    7 policy, 8 environment (space, lock). ``cancel``, set from another thread, stops the import with
    :class:`Cancelled` at the archive's next read or before the swap, never after it; the mirror is left as it
    was, and the bundle is not quarantined (it did not fail).
    """
    if not bundle.is_file():
        raise UsageError("no such bundle file", path=str(bundle))
    mirror = MirrorDir(into)
    with mirror.locked():
        job = _Import(
            mirror,
            bundle,
            keys=keys,
            trust_root=trust_root,
            identities=identities,
            passphrase=passphrase,
            at=at,
            signer=signer,
            min_free=min_free,
            on_check=on_check or (lambda _c: None),
        )
        job.cancel = cancel
        try:
            return job.run()
        except StellaError as exc:
            if not isinstance(exc, UsageError | StoreLockedError | EnvironmentFailure | Cancelled):
                where = mirror.quarantine(bundle, exc)
                exc.hint = (f"{exc.hint}; " if exc.hint else "") + f"the bundle was quarantined in {where}"
            raise
        finally:
            shutil.rmtree(job.staging, ignore_errors=True)


def rollback(into: Path) -> dict[str, Any]:
    """Make the previous state current again (and the current one previous)."""
    mirror = MirrorDir(into)
    with mirror.locked():
        current, previous = mirror.current(), mirror.previous()
        if previous is None or current is None or previous.resolve() == current.resolve():
            raise UsageError("this mirror has no previous state to roll back to", path=str(into))
        mirror._point(mirror.current_link, previous)
        mirror._point(mirror.previous_link, current)
        now, before = load_state(previous / "tree"), load_state(current / "tree")
        return {"stateDigest": now.digest, "sequence": now.sequence, "previousStateDigest": before.digest}


def verify_current(
    into: Path, *, at: datetime | None = None, on_check: Callable[[Check], None] | None = None
) -> dict[str, Any]:
    """Verify the mirror's current state afresh: the TUF chain from the root it trusts, every target's
    length and digest, no unlisted file, and a state that lists exactly the targets.

    ``on_check`` hears each check as it completes (``root``, ``tuf``, ``state``), a failed one included,
    before its error is raised."""
    report = on_check or (lambda _c: None)

    def failed(name: str, error: StellaError) -> StellaError:
        report(Check(name, False, error.message, error.path))
        return error

    current = MirrorDir(into).current()
    if current is None:
        raise failed("state", UsageError("the mirror is empty: nothing to verify", path=str(into)))
    root_path = current / "meta" / "tuf" / "root.json"
    try:
        root = root_path.read_bytes()
    except OSError as exc:
        raise failed(
            "root",
            TrustMetadataError(f"the mirror's trusted TUF root is unreadable: {exc.strerror}", path=str(root_path)),
        ) from None
    report(Check("root", True, f"the TUF root this state's import trusted ({len(root)} bytes)"))
    tree = current / "tree"
    try:
        tuf = verify_mirror(tree, root, at=at, strict=True)
    except StellaError as exc:
        raise failed("tuf", exc) from exc
    report(
        Check(
            "tuf",
            True,
            f"TUF chain verified: root {tuf.root_version}, timestamp {tuf.timestamp_version}, snapshot "
            f"{tuf.snapshot_version}, targets {tuf.targets_version}; {len(tuf.targets)} targets match",
        )
    )
    state = load_state(tree)
    listed = {f.path for f in state.files} | {STATE}
    targets = {t.path for t in tuf.targets}
    if listed != targets:
        odd = sorted(listed ^ targets)[0]
        raise failed("state", IntegrityError("the mirror state and the TUF targets disagree", path=odd))
    report(Check("state", True, f"state {state.digest[:12]} (sequence {state.sequence}) lists exactly the targets"))
    return {"stateDigest": state.digest, "sequence": state.sequence, "files": len(listed), **tuf.to_dict()}


def _role_info(cache: Path, name: str) -> dict[str, Any] | None:
    path = cache / f"{name}.json"
    if not path.is_file():
        return None
    md: Metadata[Any] = Metadata.from_bytes(path.read_bytes())
    expires = md.signed.expires.astimezone(UTC).replace(tzinfo=None)
    return {"version": md.signed.version, "expires": expires.isoformat() + "Z"}


def _state_summary(state_dir: Path) -> dict[str, Any]:
    state = load_state(state_dir / "tree")
    return {
        "stateDigest": state.digest,
        "sequence": state.sequence,
        "base": state.base,
        "tenant": state.tenant,
        "runId": state.run_id,
        "createdAt": state.created_at,
        "counts": dict(state.counts),
        "files": len(state.files) + 1,
        "path": str(state_dir / "tree"),
    }


def status(into: Path, *, at: datetime | None = None) -> dict[str, Any]:
    """The mirror's current state, previous state, TUF versions and expiry, last receipt, quarantine count."""
    mirror = MirrorDir(into)
    if not into.is_dir():
        raise UsageError("no such mirror directory", path=str(into))
    current, previous = mirror.current(), mirror.previous()
    when = (at or datetime.now(UTC).replace(tzinfo=None)).replace(microsecond=0)
    body: dict[str, Any] = {
        "mirror": str(into),
        "current": None,
        "previous": _state_summary(previous) if previous is not None and previous != current else None,
        "quarantined": len(list(mirror.quarantine_dir.iterdir())) if mirror.quarantine_dir.is_dir() else 0,
        "at": when.isoformat() + "Z",
    }
    if current is None:
        return body
    body["current"] = _state_summary(current)
    cache = current / "meta" / "tuf"
    roles = {r: _role_info(cache, r) for r in ("root", "timestamp", "snapshot", "targets")}
    body["tuf"] = roles
    body["expired"] = sorted(
        r for r, info in roles.items() if info and datetime.fromisoformat(info["expires"].rstrip("Z")) <= when
    )
    receipt_path = current / "meta" / "receipt.json"
    if receipt_path.is_file():
        envelope = orjson.loads(receipt_path.read_bytes())
        receipt = orjson.loads(base64.b64decode(envelope["payload"]))
        body["lastImport"] = {"receipt": str(receipt_path), "importedAt": receipt.get("importedAt")} | {
            "bundle": receipt.get("bundle")
        }
    return body


def receipt_history(into: Path) -> list[dict[str, Any]]:
    """Every import receipt the mirror kept (``receipts/``), newest first, as the receipts' bodies (unchecked:
    the mirror signed them itself) with ``path``; a file that is not a readable receipt is left out."""
    folder = MirrorDir(into).receipts
    if not folder.is_dir():
        return []
    out: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.json"), reverse=True):
        try:
            body = orjson.loads(base64.b64decode(orjson.loads(path.read_bytes())["payload"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if isinstance(body, dict):
            out.append(body | {"path": str(path)})
    return out
