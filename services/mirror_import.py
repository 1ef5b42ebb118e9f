"""Verified, atomic import of a mirror bundle into a mirror directory (:mod:`services.mirror_dir`).

An import verifies everything before the mirror changes: the bundle's signature and every digest
(``verify.bundle``), the delta's base (``verify.mirror``), then, after extracting into a staging directory on the
same file system and linking the unchanged files of the current state beside the new ones, the state the signed
manifest names and the TUF chain from the pinned root through any rotations to timestamp, snapshot and targets,
with expiry at ``at`` and versions that only go up (``verify.tuf_client``), and every target's length and digest.
Only then is the staging directory renamed into ``states/`` and ``current`` replaced by a symlink pointing at it,
so a process killed at any point leaves the old state or the new one in place, never a mixture. The named points
of :data:`services.mirror_dir.FAULT_POINTS` are where crash-safety tests kill it (the ``faults`` hook).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

import orjson
import pyrage

from core.age_stream import AgeError, decrypt_stream
from core.archive.reader import ReaderLimits, SafeArchiveReader
from core.archive.rules import unsafe_path_reason
from core.atomic import PreparedFile, environment_failure, failing_as_environment
from core.clock import rfc3339, utcnow
from core.compression import BAD_FRAME, plaintext_sink
from core.contract.bundle import HEAD_ORDER, MANIFEST, MANIFEST_SIG
from core.errors import (
    BadInputError,
    Cancelled,
    EnvironmentFailure,
    IntegrityError,
    SignatureError,
    StellaError,
    StoreLockedError,
    UsageError,
)
from core.mirror_layout import MirrorState, load_state
from core.mirror_receipt import make_receipt
from core.progress import Check, NullObserver, Observer
from core.signing import Signer, sha256_file
from core.trust import TrustedKey
from services.mirror_dir import Faults, MirrorDir, fsync_dir, fsync_tree
from services.mirror_trust import STATE_PIN, RootChoice, RootInfo, choose_root, prepare_pin
from verify.bundle import copy_member, verify_bundle
from verify.mirror import check_base, check_signed_state, check_tenant, tuf_detail
from verify.tuf_client import TufVerification, verify_mirror

#: Head files (see ``core.contract.bundle``): not part of the mirror tree; the manifest and its signature are kept.
_HEAD = frozenset(HEAD_ORDER)
_KEPT_HEAD = (MANIFEST, MANIFEST_SIG)
DEFAULT_MIN_FREE = 64 << 20


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
    #: The key-store key that signed the receipt, and whether this import created it (a fresh receiver).
    receipt_key: str = ""
    receipt_key_created: bool = False
    #: The sentence that names the receipt key and how the sender trusts it, when the surfaces should say it.
    receipt_key_note: str | None = None

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
            "receiptKey": {"name": self.receipt_key, "created": self.receipt_key_created},
        }


def _safe_member(name: str) -> PurePosixPath:
    reason = unsafe_path_reason(name)
    if reason is not None:
        raise IntegrityError(f"bundle path {reason}", path=name)
    return PurePosixPath(name)


def _hex_sha256(path: Path) -> str:
    return sha256_file(path).hex()


def _now_text() -> str:
    return rfc3339(utcnow().replace(microsecond=0))


def _no_faults(_point: str) -> None:
    return None


class _StagedImport:
    """One import: verify, stage, verify the staged tree, sign the receipt, swap."""

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
        observer: Observer,
        faults: Faults,
        receipt_out: Path | None = None,
        root_choice: RootChoice | None = None,
    ) -> None:
        self.mirror = mirror
        self.root_choice = root_choice or RootChoice(trust_root, True, None, None)
        self.bundle = bundle
        self.keys = keys
        self.trust_root = trust_root
        self.identities = identities
        self.passphrase = passphrase
        self.at = at
        self.signer = signer
        self.min_free = min_free
        self.observer = observer
        self.faults = faults
        self.receipt_out = receipt_out
        self.staging = mirror.staging()
        self.tree = self.staging / "tree"
        self.meta = self.staging / "meta"
        self.written = 0
        self.linked = 0

    def check(self, name: str, detail: str) -> None:
        self.observer.check(Check(name, True, detail))

    def run(self) -> ImportResult:
        report = verify_bundle(self.bundle, self.keys, at=self.at, observer=self.observer)
        if report.error is not None:
            raise report.error
        manifest = report.manifest
        if manifest.profile.kind != "mirror":
            raise UsageError(
                f"{manifest.profile.ref} is not a mirror bundle",
                path=str(self.bundle),
                hint="stella mirror import takes mirror:full and mirror:delta bundles; use stella verify for others",
            )
        current = self.mirror.current()
        current_state = load_state(current / "tree") if current is not None else None
        base = manifest.section("base")
        self.check("base", check_base(base, current_state, source=str(self.bundle)))
        encryption = manifest.encryption
        if encryption and not self.identities and self.passphrase is None:
            raise UsageError(
                "the payload is age-encrypted", hint="give --identity FILE (or --passphrase-file F) to import it"
            )
        self.preflight(encryption)
        if self.receipt_out is not None and not self.receipt_out.parent.is_dir():
            raise EnvironmentFailure(
                "cannot write the receipt copy: its directory does not exist",
                path=str(self.receipt_out),
                hint="create the directory first; the mirror was not changed",
            )

        self.staging.mkdir(mode=0o755)
        self.tree.mkdir()
        self.meta.mkdir()
        self.extract(str(manifest.sha256))
        self.decrypt(encryption)
        state = load_state(self.tree)
        check_signed_state(
            state,
            state_digest=manifest.section("mirror").get("stateDigest"),
            base_digest=base.get("stateDigest"),
        )
        check_tenant(state, current_state, source=str(self.bundle))
        self.carry_over(state, current, current_state)
        self.faults("after-extract")

        tuf = self.verify_tuf(current)
        self.check("tuf", tuf_detail(tuf))
        self.faults("after-verify")

        previous_digest = current_state.digest if current_state is not None else None
        receipt = {
            "stateDigest": state.digest,
            "sequence": state.sequence,
            "tenant": state.tenant,
            "runId": state.run_id,
            "createdAt": state.created_at,
            "previousStateDigest": previous_digest,
            "bundle": {"name": self.bundle.name, "sha256": _hex_sha256(self.bundle)},
            "manifestSha256": manifest.sha256,
            "tuf": {k: v for k, v in tuf.to_dict().items() if k != "targets"},
            "importedAt": _now_text(),
            "signer": {"keyid": self.signer.keyid},
        }
        receipt_bytes = make_receipt(receipt, self.signer)
        with failing_as_environment(self.meta / "receipt.json", "cannot write the receipt"):
            (self.meta / "receipt.json").write_bytes(receipt_bytes)
            fsync_tree(self.staging)
        # Every output is written before the point of no return: after the swap only renames are left.
        outputs = [self.mirror.prepare_receipt_log(receipt_bytes, str(receipt["importedAt"]), state.sequence)]
        try:
            if self.receipt_out is not None:
                outputs.append(
                    PreparedFile.prepare(self.receipt_out, receipt_bytes, what="cannot write the receipt copy")
                )
            outputs += prepare_pin(self.mirror.path, self.root_choice)  # the first import pins its TUF root
            self.faults("before-swap")
            if self.observer.is_cancelled():  # the last moment the mirror is untouched
                raise Cancelled(
                    "the mirror import was cancelled before the new state was swapped in", path=str(self.bundle)
                )
            final = self.swap(state, current)
        except BaseException:
            for prepared in outputs:
                prepared.discard()
            with contextlib.suppress(OSError):
                self.mirror.receipts.rmdir()  # made for the receipt log above; removed again while still empty
            raise
        self.faults("after-swap")
        for prepared in outputs:
            prepared.commit(what="cannot write a receipt copy (the import itself succeeded)")
        self.mirror.recover()
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

    def swap(self, state: MirrorState, current: Path | None) -> Path:
        """Make the staged state current (the point of no return); returns its directory."""
        name = f"{state.sequence:06d}-{state.digest[:12]}-{secrets.token_hex(3)}"
        self.mirror.states.mkdir(exist_ok=True)
        final = self.mirror.states / name
        self.staging.rename(final)
        fsync_dir(self.mirror.states)
        if current is not None:  # first, so that a kill after the swap still leaves the rollback target
            self.mirror.point(self.mirror.previous_link, current)
        self.mirror.point(self.mirror.current_link, final, faults=self.faults)
        return final

    def preflight(self, encryption: Mapping[str, Any]) -> None:
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
                if member.name == MANIFEST:
                    with member.stream() as src:
                        doc = orjson.loads(src.read())
                    total = sum(int(f["size"]) for f in doc.get("files") or [])
                    break
        return total

    def extract(self, manifest_sha: str) -> None:
        """Write every listed payload file into the staging tree, checking each against the verified manifest."""
        listed: dict[str, tuple[str, int]] = {}
        with SafeArchiveReader(self.bundle, ReaderLimits(), cancel=self.observer) as reader:
            for member in reader:
                name = member.name
                if name in _HEAD:
                    with member.stream() as src:
                        data = src.read()
                    if name == MANIFEST:
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

    def decrypt(self, encryption: Mapping[str, Any]) -> None:
        files = encryption.get("files") or []
        compression = encryption.get("compression")
        if files:
            try:
                plaintext_sink(None, compression, limit=0)
            except ValueError as exc:
                raise BadInputError(
                    f"the signed manifest's payload {exc}", hint="a newer stella wrote it; import it with that"
                ) from None
        for entry in files:
            name = str(entry["path"])
            source = self.tree.joinpath(*_safe_member(name).parts)
            target = source.with_name(source.name.removesuffix(".age"))
            try:
                with target.open("xb") as out:
                    # Compressed, then encrypted: what age authenticates is a zstd frame of the plaintext.
                    sink = plaintext_sink(out, compression, limit=int(entry["plaintextSize"]))
                    if self.passphrase is not None:
                        sink.write(pyrage.passphrase.decrypt(source.read_bytes(), self.passphrase))
                    else:
                        with source.open("rb") as src:
                            decrypt_stream(src, sink, [str(i) for i in self.identities])
                    sink.close()
            except (pyrage.DecryptError, AgeError) as exc:
                raise SignatureError(
                    f"cannot decrypt with the given identity or passphrase: {exc}", path=name
                ) from None
            except BAD_FRAME:
                raise IntegrityError("decrypted plaintext differs from the signed manifest", path=name) from None
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
        # The TUF state of the current import carries over, unless the pinned root was replaced since.
        if self.root_choice.keep_state and current is not None and (current / "meta" / "tuf").is_dir():
            shutil.copytree(current / "meta" / "tuf", cache)
        root = self.root_choice.root
        if root is None and (cache / "root.json").is_file():
            root = (cache / "root.json").read_bytes()
        if root is None:
            raise UsageError(
                "the first import into a mirror needs the TUF root to trust",
                hint="give --trust-root 1.root.json (received out of band, e.g. from `stella tuf status`'s home)",
            )
        verification = verify_mirror(self.tree, root, state_dir=cache, at=self.at, strict=True)
        pinned = self.root_choice.pinned or RootInfo.of(root)
        with failing_as_environment(self.meta / STATE_PIN, "cannot write the state's pinned root"):
            (self.meta / STATE_PIN).write_text(pinned.sha256 + "\n")
        return verification


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
    observer: Observer | None = None,
    faults: Faults | None = None,
    receipt_out: Path | None = None,
) -> ImportResult:
    """Verify ``bundle`` and make it the current state of the mirror at ``into``; see the module docstring.

    A bundle that fails is quarantined (``quarantine/``) and the mirror is left as it was. Errors carry the exit
    codes of ``stella mirror import``: 4 integrity, 5 signature, 6 TUF/expiry/rollback/wrong base, 7 policy,
    8 environment (space, lock). ``observer`` hears each check; once it says it is cancelled (from another thread)
    the import stops with :class:`Cancelled` at the archive's next read or before the swap, never after it; the
    mirror is left as it was, and the bundle is not quarantined (it did not fail). ``faults`` is called at each
    point of :data:`services.mirror_dir.FAULT_POINTS` (crash-safety tests kill the process there). ``receipt_out``
    gets a copy of the signed receipt: its directory is checked before anything is staged and the copy is written
    before the swap (renamed into place after it), so an unwritable copy fails the import with the mirror unchanged.
    """
    if not bundle.is_file():
        raise UsageError("no such bundle file", path=str(bundle))
    mirror = MirrorDir(into)
    with mirror.locked():
        # A --trust-root other than the pinned one is refused before anything is read (the bundle is not at fault).
        root_choice = choose_root(into, trust_root, mirror.current())
        job = _StagedImport(
            mirror,
            bundle,
            keys=keys,
            trust_root=trust_root,
            identities=identities,
            passphrase=passphrase,
            at=at,
            signer=signer,
            min_free=min_free,
            observer=observer or NullObserver(),
            faults=faults or _no_faults,
            receipt_out=receipt_out,
            root_choice=root_choice,
        )
        try:
            try:
                return job.run()
            except Exception as exc:  # a full disk, an I/O error: exit 8 naming the path (else the mirror)
                unnamed = isinstance(exc, OSError) and not exc.filename
                failure = environment_failure(exc, path=into if unnamed else None, what="cannot write the mirror")
                if failure is None:
                    raise
                raise failure from exc
        except StellaError as exc:
            if not isinstance(exc, UsageError | StoreLockedError | EnvironmentFailure | Cancelled):
                where = mirror.quarantine(bundle, exc)
                exc.hint = (f"{exc.hint}; " if exc.hint else "") + f"the bundle was quarantined in {where}"
            raise
        finally:
            shutil.rmtree(job.staging, ignore_errors=True)
