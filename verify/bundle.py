"""Offline, fail-closed, streaming verification of a received bundle (see docs/architecture.md).

The archive is read once, member by member, straight from the compressed file: nothing is extracted. The
manifest is spooled to a temporary file while it is hashed, its signature is checked against the trusted
keys, and then its (path-sorted) file list is merge-joined with the (path-sorted) payload members, so memory
stays flat however many files a bundle has. Every check is reported as it completes; the first failure
raises the error whose exit code the CLI returns (4 integrity, 5 signature, 6 trust metadata, 3 bad input).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import KW_ONLY, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, TypeVar

import orjson
from cryptography.hazmat.primitives.asymmetric import ec

from core.archive.canonical import EXEC_MODE, FILE_MODE
from core.archive.reader import ArchiveMember, ReaderLimits, SafeArchiveReader
from core.compression import BAD_FRAME, PAYLOAD_COMPRESSIONS, plaintext_sink
from core.contract.bundle import (
    CHECKSUMS,
    CHECKSUMS_SIG,
    LISTED_HEAD,
    MANIFEST,
    MANIFEST_SIG,
    PROVENANCE,
    PROVENANCE_DSSE,
    PROVENANCE_SIGSTORE,
    UNLISTED,
    VERIFY_SCRIPT,
    bundle_order,
)
from core.contract.manifest import VerifiedManifest
from core.contract.media_types import SIGSTORE_BUNDLE_V03, TRIVY_DB_LAYER
from core.contract.payload_types import IN_TOTO
from core.contract.trivy import DB_FILE
from core.errors import (
    BadInputError,
    Cancelled,
    IntegrityError,
    SignatureError,
    StellaError,
    TrustMetadataError,
    UsageError,
)
from core.keys import KeyAlgorithm
from core.progress import Check, NullObserver, Observer
from core.signing import dsse_signer, envelope_signatures, pae_prefix, sha256_file, verify_prehashed_sha256, verify_raw
from core.trust import TrustedKey
from verify.export_attestation import check_export_attestation
from verify.manifest import ListedFile, ManifestReader

MAX_MANIFEST = 1 << 30
MAX_SIGNATURE = 1 << 16
CHUNK = 1 << 20


@dataclass
class VerifyReport:
    """Everything ``stella verify`` says about a bundle, as a human report or as JSON evidence.

    The verifiers of kinds of bundle (attestation, risk, devportal) extend it: :meth:`details` is what they add
    to the JSON form.
    """

    bundle: str
    _: KW_ONLY
    checks: list[Check] = field(default_factory=list)
    manifest: VerifiedManifest = field(default_factory=VerifiedManifest.empty)
    signer: dict[str, Any] | None = None
    error: StellaError | None = None

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return self.error is None and bool(self.checks) and all(c.ok for c in self.checks)

    def details(self) -> dict[str, Any]:
        """What a kind of bundle adds to the JSON form, after ``manifest``."""
        return {}

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` form."""
        out: dict[str, Any] = {
            "bundle": self.bundle,
            "verified": self.ok,
            "exitCode": 0 if self.ok else int(self.error.exit_code if self.error else 4),
            "checks": [c.to_dict() for c in self.checks],
            "manifest": self.manifest.to_dict(),
        } | self.details()
        if self.signer:
            out["signer"] = self.signer
        if self.error is not None:
            out["error"] = self.error.to_dict()
        return out


Report = TypeVar("Report", bound=VerifyReport)


class Recorder:
    """Records each check in a report as it completes, and tells the observer; the signer checks of a verifier."""

    def __init__(self, report: VerifyReport, observer: Observer | None = None) -> None:
        self.report = report
        self.observer: Observer = observer or NullObserver()
        self.signer: TrustedKey | None = None

    def passed(self, name: str, detail: str, path: str | None = None) -> None:
        check = Check(name, True, detail, path)
        self.report.checks.append(check)
        self.observer.check(check)

    def failed(self, name: str, error: StellaError) -> StellaError:
        """Record ``error`` as the failure of check ``name``; returns it, to raise."""
        check = Check(name, False, error.message, error.path)
        self.report.checks.append(check)
        self.observer.check(check)
        return error

    def settle(self, name: str, error: StellaError) -> None:
        """Make ``error`` the report's; as check ``name`` unless a failed check already says it."""
        if not self.report.checks or self.report.checks[-1].ok:
            self.failed(name, error)
        self.report.error = error

    def require_keys(self, keys: Sequence[TrustedKey]) -> None:
        if not keys:
            raise self.failed(
                "signature",
                SignatureError(
                    "no trusted signer: no key was given and the trust store is empty",
                    hint="pass --key SIGNER.pub or add it with `stella trust add`",
                ),
            )

    def signed_by(self, key: TrustedKey, name: str) -> None:
        """Check ``signature`` passed: ``name`` verified with ``key``, the signer from now on."""
        self.signer = key
        self.report.signer = {"label": key.label, "keyid": key.keyid, "algorithm": str(key.algorithm)}
        self.passed("signature", f"{name} verified with trusted key {key.label!r} ({key.keyid[:16]})", name)

    def unsigned(self, keys: Sequence[TrustedKey], name: str) -> StellaError:
        tried = ", ".join(k.label for k in keys)
        return self.failed(
            "signature", SignatureError(f"{name} does not verify with any trusted key (tried: {tried})", path=name)
        )

    def check_scope(self, profile: str, tenant: str, what: str) -> None:
        """Check ``signer scope``: the signer may sign ``profile`` (``what`` when refused) for ``tenant``."""
        assert self.signer is not None
        if self.signer.receipts_only:
            raise self.failed(
                "signer scope",
                SignatureError(
                    f"trusted key {self.signer.label!r} is trusted for import receipts only, not to sign {what}",
                    hint="trust the sender's bundle key (stella trust add LABEL SENDER.pub), not a receipt key",
                ),
            )
        if not self.signer.allows(profile, tenant):
            raise self.failed(
                "signer scope",
                SignatureError(f"trusted key {self.signer.label!r} may not sign {what} for tenant {tenant!r}"),
            )
        self.passed("signer scope", f"key {self.signer.label!r} may sign {profile} for tenant {tenant}")


class _Verification(Recorder):
    def __init__(
        self,
        bundle: Path,
        keys: Sequence[TrustedKey],
        at: datetime | None,
        report: VerifyReport,
        observer: Observer | None,
        workdir: Path,
    ) -> None:
        super().__init__(report, observer)
        self.bundle = bundle
        self.keys = keys
        self.at = at
        self.work = workdir
        self.identities: list[str] = []
        self.plaintext: dict[str, tuple[str, int]] = {}
        self.compression: object = None  # encryption.compression: how each plaintext is compressed inside age
        self.decrypted = 0
        self.trivy_db = False  # a trivy:db bundle: every trivy.db in it gets a bbolt structure check
        self.bbolt_checked: set[str] = set()  # digests already checked (the OCI layer repeats db.tar.gz)
        self.file_sha256: str | None = None  # the bundle file's sha256, from the one pass that read it
        self.checksums_match: ChecksumsMatch | None = None  # checksums.txt against the manifest, in check_members

    # -- members -------------------------------------------------------------------------
    def spool(self, member: Any, limit: int) -> tuple[Path, str]:
        if member.size > limit:
            raise IntegrityError(f"{member.name} is {member.size} bytes, over the {limit}-byte limit", path=member.name)
        target = self.work / member.name.replace("/", "_")
        return target, copy_member(member, target)[0]

    def run(self) -> None:
        with SafeArchiveReader(self.bundle, ReaderLimits(), cancel=self.observer) as reader:
            members = self.with_contract_modes(iter(reader))
            first = next(members, None)
            if first is None or first.name != MANIFEST:
                found = first.name if first is not None else "an empty archive"
                raise self.failed(
                    "layout",
                    IntegrityError(f"export.json must be the first entry, found {found}", path=str(self.bundle)),
                )
            manifest_path, manifest_sha = self.spool(first, MAX_MANIFEST)
            second = next(members, None)
            if second is None or second.name != MANIFEST_SIG:
                raise self.failed(
                    "signature", SignatureError("export.json.sig is missing: the bundle is unsigned", path=MANIFEST_SIG)
                )
            sig_path, _ = self.spool(second, MAX_SIGNATURE)
            self.check_manifest_signature(manifest_path, sig_path.read_bytes())
            manifest = ManifestReader(manifest_path)
            self.check_archive_time(reader.mtime, manifest.header)
            self.report.manifest = VerifiedManifest.from_dict(
                {k: v for k, v in manifest.header.items() if k != "selectors"}
                | {
                    "selectors": manifest.header.get("selectors"),
                    "fileCount": manifest.file_count,
                    "sha256": manifest_sha,
                }
            )
            self.check_scope_of(manifest.header)
            self.read_encryption(manifest.header)
            profile = self.report.manifest.profile
            self.trivy_db = (profile.kind, profile.variant) == ("trivy", "db")
            third = next(members, None)
            if third is None or third.name != CHECKSUMS:
                raise self.failed("layout", IntegrityError("checksums.txt must follow the signature", path=CHECKSUMS))
            checksums_path, _ = self.spool(third, MAX_MANIFEST)
            fourth = next(members, None)
            if fourth is None or fourth.name != CHECKSUMS_SIG:
                raise self.failed(
                    "layout", IntegrityError("checksums.txt.sig must follow checksums.txt", path=CHECKSUMS_SIG)
                )
            checksums_sig, _ = self.spool(fourth, MAX_SIGNATURE)
            self.check_checksums_signature(checksums_path, checksums_sig.read_bytes())
            self.checksums_match = ChecksumsMatch(checksums_path, manifest_sha)
            head_seen = self.check_members(members, manifest)
            self.file_sha256 = reader.file_sha256
        if self.identities and self.plaintext:
            self.passed("decryption", f"{self.decrypted} encrypted files decrypted; plaintext digests match")
        self.check_checksums(checksums_path, manifest, manifest_sha)
        self.check_provenance(head_seen)
        self.check_time(manifest.header)

    def with_contract_modes(self, members: Iterator[ArchiveMember]) -> Iterator[ArchiveMember]:
        """The members, each checked for the mode the bundle writer gives it: 0755 for verify.sh, else 0644.

        The archive reader already refuses every other header byte that differs from the writer's; which of its
        two modes a file has is the bundle's rule, so it is checked here."""
        for member in members:
            want = EXEC_MODE if member.name == VERIFY_SCRIPT else FILE_MODE
            if member.mode != want:
                raise self.failed(
                    "layout",
                    IntegrityError(f"archive mode {member.mode:#o}, where a bundle has {want:#o}", path=member.name),
                )
            yield member

    def check_archive_time(self, mtime: int | None, header: dict[str, Any]) -> None:
        """Every archive entry carries the same mtime (the reader checks); it must be the manifest's createdAt."""
        created = header.get("createdAt")
        try:
            created_at = datetime.fromisoformat(str(created).replace("Z", "+00:00")).replace(tzinfo=None)
        except ValueError:
            return  # the time check reports a malformed createdAt
        want = int((created_at - datetime(1970, 1, 1)).total_seconds())
        if mtime != want:
            raise self.failed(
                "layout",
                IntegrityError(
                    f"archive entries carry mtime {mtime}, not the manifest's createdAt {created} ({want})",
                    path=str(self.bundle),
                ),
            )

    def check_manifest_signature(self, manifest_path: Path, sig_text: bytes) -> None:
        self.require_keys(self.keys)
        try:
            signature = _signature_bytes(sig_text)
        except binascii.Error:
            raise self.failed(
                "signature", SignatureError("export.json.sig is not canonical base64", path=MANIFEST_SIG)
            ) from None
        for key in self.keys:
            if _blob_verifies(key, signature, manifest_path):
                return self.signed_by(key, MANIFEST_SIG)
        raise self.unsigned(self.keys, MANIFEST_SIG)

    def check_checksums_signature(self, checksums_path: Path, sig_text: bytes) -> None:
        """``checksums.txt.sig`` verifies with the key that signed the manifest (what ``verify.sh`` relies on).

        A failure is the ``checksums`` check's; a pass is reported with the ``checksums`` check, at the end."""
        try:
            signature = _signature_bytes(sig_text)
        except binascii.Error:
            signature = b""
        assert self.signer is not None  # the manifest signature passed first
        if not _blob_verifies(self.signer, signature, checksums_path):
            raise self.failed(
                "checksums",
                SignatureError(
                    f"checksums.txt.sig does not verify with the manifest's signer {self.signer.label!r}",
                    path=CHECKSUMS_SIG,
                ),
            )

    def check_scope_of(self, header: dict[str, Any]) -> None:
        profile = str((header.get("profile") or {}).get("id", ""))
        self.check_scope(profile, str(header.get("tenant", "")), f"profile {profile!r}")

    def consume_head(self, member: Any) -> HeadFile:
        """Hash a head member as it streams past, keeping only what later checks need.

        For ``provenance.json`` that is also the digest of its DSSE PAE bytes (its size is known up front), and
        the file itself when the signer is Ed25519 (which cannot verify a digest). For the two envelopes it is
        the small JSON tail after the base64 payload: payload type and signatures, media type and key hint.
        """
        name = member.name
        digest = hashlib.sha256()
        pae = hashlib.sha256(pae_prefix(IN_TOTO, member.size)) if name == PROVENANCE else None
        keep = bytearray() if name == PROVENANCE and self._needs_full_pae() else None
        scanner = _EnvelopeScanner(name) if name in (PROVENANCE_DSSE, PROVENANCE_SIGSTORE) else None
        with member.stream() as src:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                if pae is not None:
                    pae.update(chunk)
                if keep is not None:
                    keep += chunk
                if scanner is not None:
                    scanner.feed(chunk)
        return HeadFile(
            digest.hexdigest(),
            member.size,
            pae_digest=pae.digest() if pae is not None else None,
            content=bytes(keep) if keep is not None else None,
            tail=scanner.tail() if scanner is not None else None,
        )

    def _needs_full_pae(self) -> bool:
        return self.signer is not None and self.signer.algorithm is not KeyAlgorithm.ECDSA_P256

    def check_members(self, members: Iterator[Any], manifest: ManifestReader) -> dict[str, HeadFile]:
        # The walk over the manifest's file list also compares checksums.txt with it (reported later, in order).
        listed = manifest.files() if self.checksums_match is None else self.checksums_match.track(manifest.files())
        head_expected: dict[str, ListedFile] = {}

        def next_payload() -> ListedFile | None:
            for entry in listed:
                if entry.path in LISTED_HEAD:
                    head_expected[entry.path] = entry
                    continue
                return entry
            return None

        expected = next_payload()
        head_seen: dict[str, HeadFile] = {}
        previous = ""
        count = 0
        in_head = True
        for member in members:
            name = member.name
            if in_head and name in LISTED_HEAD:
                if name in head_seen:
                    raise self.failed("files", IntegrityError("duplicate entry", path=name))
                head_seen[name] = self.consume_head(member)
                continue
            in_head = False
            if name in LISTED_HEAD or name in UNLISTED:
                raise self.failed("files", IntegrityError("entry out of place (head files come first)", path=name))
            if previous and bundle_order(name) <= bundle_order(previous):
                raise self.failed(
                    "files", IntegrityError(f"payload is not in bundle order (after {previous!r})", path=name)
                )
            previous = name
            while expected is not None and bundle_order(expected.path) < bundle_order(name):
                raise self.failed(
                    "files",
                    IntegrityError("listed in the signed manifest but missing from the bundle", path=expected.path),
                )
            if expected is None or expected.path != name:
                raise self.failed("files", IntegrityError("file is not listed in the signed manifest", path=name))
            if member.size != expected.size:
                raise self.failed(
                    "files",
                    IntegrityError(f"size {member.size} differs from the manifest's {expected.size}", path=name),
                )
            digest = hashlib.sha256()
            spool = self.bbolt_spool(expected)
            with member.stream() as src:
                if name in self.plaintext and self.identities:
                    self.decrypt_and_check(name, _TeeReader(src, digest))
                else:
                    while chunk := src.read(CHUNK):
                        digest.update(chunk)
                        if spool is not None:
                            spool.write(chunk)
            if digest.hexdigest() != expected.sha256:
                raise self.failed("files", IntegrityError("sha256 differs from the signed manifest", path=name))
            if spool is not None:
                self.check_trivy_db(expected, spool)
            count += 1
            expected = next_payload()
        if expected is not None:
            raise self.failed(
                "files", IntegrityError("listed in the signed manifest but missing from the bundle", path=expected.path)
            )
        if self.trivy_db and not self.bbolt_checked and not self.plaintext:
            raise self.failed("bbolt", IntegrityError("a trivy:db bundle without a trivy.db", path=MANIFEST))
        for entry in listed:  # drain: collect head entries listed after the last payload path
            if entry.path in LISTED_HEAD:
                head_expected[entry.path] = entry
            else:
                raise self.failed(
                    "files",
                    IntegrityError("listed in the signed manifest but missing from the bundle", path=entry.path),
                )
        for name, seen in head_seen.items():
            want = head_expected.get(name)
            if want is None:
                raise self.failed("files", IntegrityError("file is not listed in the signed manifest", path=name))
            if seen.size != want.size or seen.sha256 != want.sha256:
                raise self.failed("files", IntegrityError("sha256 or size differs from the signed manifest", path=name))
        for name in head_expected:
            if name not in head_seen:
                raise self.failed(
                    "files", IntegrityError("listed in the signed manifest but missing from the bundle", path=name)
                )
        self.passed(
            "files",
            f"{count + len(head_seen)} files match the signed manifest (digest and size); no missing or unlisted files",
        )
        return head_seen

    def bbolt_spool(self, entry: ListedFile) -> IO[bytes] | None:
        """A file to copy a member into while it is hashed, when it is a trivy.db (or a Trivy DB layer) to check.

        Encrypted members are not checked (their plaintext never touches the disk here); a digest already checked
        is not checked again.
        """
        if not self.trivy_db or entry.path in self.plaintext or entry.sha256 in self.bbolt_checked:
            return None
        if entry.path.rsplit("/", 1)[-1] != DB_FILE and entry.media_type != TRIVY_DB_LAYER:
            return None
        return (self.work / "bbolt-spool").open("wb")

    def check_trivy_db(self, entry: ListedFile, spool: IO[bytes]) -> None:
        """Check the bbolt structure (meta checksums, page ids, reachability) before anyone hands it to Trivy."""
        from verify.bbolt_check import check_bbolt  # only trivy:db bundles

        spool.close()
        path, where = Path(spool.name), entry.path
        try:
            if entry.media_type == TRIVY_DB_LAYER:
                path, where = self.work / "bbolt-layer.db", f"{entry.path}:trivy.db"
                _extract_member(Path(spool.name), DB_FILE, path)
            report = check_bbolt(path)
        except StellaError as exc:
            raise self.failed(
                "bbolt",
                IntegrityError(exc.message, path=where, hint="do not hand this database to Trivy; rebuild it"),
            ) from None
        finally:
            Path(spool.name).unlink(missing_ok=True)
            (self.work / "bbolt-layer.db").unlink(missing_ok=True)
        self.bbolt_checked.add(entry.sha256)
        self.passed(
            "bbolt",
            f"{where}: meta checksums, page ids and reachability OK ({report.high_water} pages, "
            f"{report.buckets} buckets, {report.keys} keys)",
            where,
        )

    def read_encryption(self, header: dict[str, Any]) -> None:
        section = header.get("encryption")
        if not section:
            if self.identities:
                self.passed("encryption", "payload is not encrypted; --identity not needed")
            return
        for entry in section.get("files") or []:
            self.plaintext[str(entry["path"])] = (str(entry["plaintextSha256"]), int(entry["plaintextSize"]))
        # Compressed, then encrypted: each file is a zstd frame inside age ("compression" absent: the earlier layout).
        self.compression = section.get("compression")
        if self.compression is not None and self.compression not in PAYLOAD_COMPRESSIONS:
            raise self.failed(
                "encryption",
                BadInputError(
                    f"the payload's compression {self.compression!r} is unknown to this version",
                    path=MANIFEST,
                    hint="a newer stella wrote it; verify it with that",
                ),
            )
        n = len(section.get("recipients") or [])
        if not self.identities:
            self.passed(
                "encryption",
                f"payload is age-encrypted to {n} recipient(s): ciphertext digests are checked; "
                "give --identity to check the plaintext too",
            )

    def decrypt_and_check(self, name: str, reader: _TeeReader) -> None:
        from core.age_stream import AgeError, decrypt_stream  # only an encrypted payload, with --identity

        sink = _HashingSink()
        want_sha, want_size = self.plaintext[name]
        plain = plaintext_sink(sink, self.compression, limit=want_size)
        try:
            decrypt_stream(reader, plain, self.identities)
            plain.close()
        except AgeError as exc:
            raise self.failed(
                "decryption", SignatureError(f"cannot decrypt with the given identity: {exc}", path=name)
            ) from None
        except BAD_FRAME:
            raise self.failed(
                "decryption", IntegrityError("decrypted plaintext differs from the signed manifest", path=name)
            ) from None
        reader.drain()
        if sink.size != want_size or sink.sha.hexdigest() != want_sha:
            raise self.failed(
                "decryption", IntegrityError("decrypted plaintext differs from the signed manifest", path=name)
            )
        self.decrypted += 1

    def check_checksums(self, checksums_path: Path, manifest: ManifestReader, manifest_sha: str) -> None:
        """``checksums.txt`` says, line for line, what the signed manifest lists: the verdict
        :meth:`check_members` took on its walk over the file list, or else (not walked) a walk of its own."""
        match = self.checksums_match
        if match is None or not match.done:
            match = ChecksumsMatch(checksums_path, manifest_sha)
            for _ in match.track(manifest.files()):
                pass
        if match.differs is not None:
            raise self.failed(
                "checksums", IntegrityError(f"line {match.differs} differs from the signed manifest", path=CHECKSUMS)
            )
        if match.extra:
            raise self.failed("checksums", IntegrityError("has lines the signed manifest does not", path=CHECKSUMS))
        self.passed("checksums", "checksums.txt agrees with the signed manifest", CHECKSUMS)  # and its signature

    def check_provenance(self, head: dict[str, HeadFile]) -> None:
        if PROVENANCE not in head or PROVENANCE_DSSE not in head:
            raise self.failed(
                "provenance", IntegrityError("provenance.json or its DSSE envelope is missing", path=PROVENANCE)
            )
        statement = head[PROVENANCE]
        envelope = _parse_tail(head[PROVENANCE_DSSE], PROVENANCE_DSSE, nested=False)
        if not self._signed_by_signer(envelope, statement):
            assert self.signer is not None
            raise self.failed(
                "provenance",
                SignatureError(
                    f"provenance.dsse.json is not a signature over provenance.json by the manifest's signer "
                    f"{self.signer.label!r}",
                    path=PROVENANCE_DSSE,
                ),
            )
        self.passed("provenance", "in-toto provenance DSSE signature verified over provenance.json", PROVENANCE_DSSE)
        if PROVENANCE_SIGSTORE in head:
            self.check_sigstore(head[PROVENANCE_SIGSTORE], statement)

    def _signed_by_signer(self, envelope: dict[str, Any], statement: HeadFile) -> bool:
        """Does one of the envelope's signatures verify over PAE(provenance.json) with the manifest's signer?

        The PAE digest was computed from provenance.json itself, so a valid signature proves the signer signed
        exactly those bytes; the envelope's own copy of the payload is covered by the manifest digest.
        """
        key = self.signer
        assert key is not None and statement.pae_digest is not None
        if envelope.get("payloadType") != IN_TOTO:
            return False
        signatures = envelope_signatures(envelope.get("signatures") or [])
        return dsse_signer(IN_TOTO, statement.content, signatures, [key], pae_sha256=statement.pae_digest) is not None

    def check_sigstore(self, bundle: HeadFile, statement: HeadFile) -> None:
        rest = _parse_tail(bundle, PROVENANCE_SIGSTORE, nested=True)
        assert self.signer is not None
        hint = ((rest.get("verificationMaterial") or {}).get("publicKey") or {}).get("hint")
        want = base64.b64encode(bytes.fromhex(self.signer.keyid)).decode()
        if rest.get("mediaType") != SIGSTORE_BUNDLE_V03 or hint != want:
            raise self.failed(
                "sigstore bundle",
                IntegrityError(
                    "provenance.sigstore.json is not a v0.3 bundle with the signer's public-key hint",
                    path=PROVENANCE_SIGSTORE,
                ),
            )
        if not self._signed_by_signer(rest.get("dsseEnvelope") or {}, statement):
            raise self.failed(
                "sigstore bundle",
                SignatureError(
                    "provenance.sigstore.json's envelope is not signed by the manifest's signer",
                    path=PROVENANCE_SIGSTORE,
                ),
            )
        self.passed(
            "sigstore bundle", "Sigstore bundle v0.3: key hint and DSSE signature verified", PROVENANCE_SIGSTORE
        )

    def check_attestation(self) -> None:
        """``in-toto release``: ``BUNDLE.intoto.jsonl`` beside the verified bundle, when present; its subjects are
        checked against the bundle file's sha256 taken while the archive was read (the file is read once)."""
        assert self.file_sha256 is not None  # run() read the archive to its end
        try:
            found = check_export_attestation(
                self.bundle, self.keys, self.report.manifest, self.file_sha256, self.observer.is_cancelled
            )
        except Cancelled:
            raise
        except StellaError as exc:
            raise self.failed("in-toto release", exc) from None
        self.passed("in-toto release", found.detail, None if found.path is None else found.path.name)

    def check_time(self, header: dict[str, Any]) -> None:
        created = header.get("createdAt")
        try:
            created_at = datetime.fromisoformat(str(created).replace("Z", "+00:00")).replace(tzinfo=None)
        except ValueError:
            raise self.failed("time", BadInputError(f"createdAt {created!r} is not RFC 3339", path=MANIFEST)) from None
        at = self.at
        if at is not None and created_at > at:
            raise self.failed(
                "time",
                TrustMetadataError(
                    f"bundle was created at {created}, after the evaluation time {at.isoformat()}Z",
                    path=MANIFEST,
                    hint="check the clock, or pass --at",
                ),
            )
        self.passed("time", f"created {created}" + (f", evaluated at {at.isoformat()}Z" if at else ""))


class ChecksumsMatch:
    """``checksums.txt`` compared, line by line, with the lines the signed manifest's file list gives: each listed
    file's ``SHA256  PATH``, and ``export.json``'s own line in its bundle-order place.

    :meth:`track` passes the file list through while it compares, so the verifier's one walk over the list serves
    both the files check and this one; ``differs`` is the first line that differs (None: none), ``extra`` whether
    the file has lines after the last expected one, ``done`` whether the whole list was walked.
    """

    def __init__(self, checksums: Path, manifest_sha: str) -> None:
        self._path = checksums
        self._manifest_line = f"{manifest_sha}  {MANIFEST}\n".encode()
        self._lines = 0
        self.differs: int | None = None
        self.extra = False
        self.done = False

    def track(self, files: Iterator[ListedFile]) -> Iterator[ListedFile]:
        with self._path.open("rb") as fh:

            def compare(want: bytes) -> None:
                self._lines += 1
                if self.differs is None and fh.readline() != want:
                    self.differs = self._lines

            for entry in files:
                if self._manifest_line and bundle_order(entry.path) > bundle_order(MANIFEST):
                    compare(self._manifest_line)
                    self._manifest_line = b""
                compare(f"{entry.sha256}  {entry.path}\n".encode())
                yield entry
            if self._manifest_line:
                compare(self._manifest_line)
            self.extra = self.differs is None and bool(fh.read(1))
            self.done = True


def _blob_verifies(key: TrustedKey, signature: bytes, path: Path) -> bool:
    """A cosign blob signature over the file at ``path``: ECDSA over its SHA-256, Ed25519 over its bytes."""
    if key.algorithm is KeyAlgorithm.ECDSA_P256:
        assert isinstance(key.public_key, ec.EllipticCurvePublicKey)
        return verify_prehashed_sha256(key.public_key, signature, sha256_file(path))
    return verify_raw(key.public_key, signature, path.read_bytes())


def _extract_member(tarball: Path, name: str, target: Path) -> None:
    """Copy member ``name`` of a (gzip) tarball to ``target`` with the fail-closed reader; absent: IntegrityError."""
    with SafeArchiveReader(tarball, ReaderLimits()) as reader:
        for member in reader:
            if member.name == name:
                copy_member(member, target)
                return
    raise IntegrityError(f"the Trivy DB layer has no {name}")


def _signature_bytes(sig_text: bytes) -> bytes:
    """A signature file's raw signature, from its one accepted spelling: base64 exactly as the writer emits it.

    No digest covers a signature file, so whitespace around it or set padding bits in its last character (which
    every base64 decoder ignores) would be bytes no signature covers; they raise ``binascii.Error``."""
    raw = base64.b64decode(sig_text, validate=True)
    if base64.b64encode(raw) != sig_text:
        raise binascii.Error("not the canonical base64 spelling")
    return raw


def copy_member(member: Any, target: Path, *, fsync: bool = False, exclusive: bool = False) -> tuple[str, int]:
    """Copy an archive member to ``target``; returns its sha256 (hex) and size. ``exclusive`` refuses to replace
    an existing file (a staging tree where a second member of the same name would be an attack)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    sha = hashlib.sha256()
    size = 0
    with member.stream() as src, target.open("xb" if exclusive else "wb") as out:
        while chunk := src.read(CHUNK):
            sha.update(chunk)
            size += len(chunk)
            out.write(chunk)
        if fsync:
            out.flush()
            os.fsync(out.fileno())
    return sha.hexdigest(), size


class _TeeReader(io.RawIOBase):
    """A reader that hashes what passes through it (the ciphertext, while it is decrypted)."""

    def __init__(self, src: Any, digest: Any) -> None:
        super().__init__()
        self._src = src
        self._digest = digest

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        data: bytes = self._src.read(n if n and n > 0 else CHUNK)
        self._digest.update(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


class _HashingSink:
    def __init__(self) -> None:
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        return len(data)


@dataclass
class HeadFile:
    """What the verifier keeps of a head member after streaming it once."""

    sha256: str
    size: int
    pae_digest: bytes | None = None
    content: bytes | None = None
    tail: bytes | None = None


class _EnvelopeScanner:
    """Finds the end of a canonical envelope's base64 payload and keeps the JSON after it (bounded).

    Canonical JSON puts ``payload`` first (``{"payload":"...`` for DSSE, ``{"dsseEnvelope":{"payload":"...`` for
    the Sigstore bundle), and base64 never contains a quote, so the payload ends at the first quote after it.
    """

    LIMIT = 1 << 20

    def __init__(self, name: str) -> None:
        self.name = name
        self.prefix = b'{"payload":"' if name == PROVENANCE_DSSE else b'{"dsseEnvelope":{"payload":"'
        self.head = b""
        self.in_payload = False
        self.after: bytearray | None = None

    def feed(self, chunk: bytes) -> None:
        if self.after is not None:
            if len(self.after) + len(chunk) > self.LIMIT:
                raise IntegrityError("envelope has an oversized tail after its payload", path=self.name)
            self.after += chunk
            return
        if not self.in_payload:
            self.head += chunk
            if len(self.head) < len(self.prefix):
                return
            if not self.head.startswith(self.prefix):
                raise IntegrityError("not a canonical envelope (payload must come first)", path=self.name)
            chunk = self.head[len(self.prefix) :]
            self.in_payload = True
        end = chunk.find(b'"')
        if end >= 0:
            self.after = bytearray(chunk[end + 1 :])

    def tail(self) -> bytes:
        if self.after is None:
            raise IntegrityError("envelope ends inside its payload", path=self.name)
        return bytes(self.after)


def _parse_tail(head: HeadFile, name: str, *, nested: bool) -> dict[str, Any]:
    opening = b'{"dsseEnvelope":{"payload":""' if nested else b'{"payload":""'
    try:
        parsed = orjson.loads(opening + (head.tail or b""))
    except orjson.JSONDecodeError:
        raise IntegrityError("envelope is not valid JSON after its payload", path=name) from None
    if not isinstance(parsed, dict):
        raise IntegrityError("envelope is not a JSON object", path=name)
    return parsed


def verify_bundle(
    bundle: Path,
    keys: Sequence[TrustedKey],
    *,
    at: datetime | None = None,
    identities: Sequence[Any] = (),
    observer: Observer | None = None,
) -> VerifyReport:
    """Verify ``bundle`` against ``keys``; the report says what passed, and ``report.error`` what failed first.

    ``identities`` (``AGE-SECRET-KEY-1...``, see :func:`core.age_stream.read_identities`) decrypt an encrypted
    payload as it streams past, to check its plaintext digests too. ``observer`` hears each check as it completes;
    once it says it is cancelled (from another thread), the verification stops at the archive's next read with
    :class:`Cancelled` (raised: a cancelled check is no verdict).
    """
    if not bundle.is_file():
        raise UsageError("no such bundle file", path=str(bundle))
    report = VerifyReport(str(bundle))
    with tempfile.TemporaryDirectory(prefix="stella-verify-") as work:
        job = _Verification(bundle, keys, at, report, observer, Path(work))
        job.identities = [str(i) for i in identities]
        try:
            job.run()
            job.check_attestation()
        except Cancelled:
            raise
        except StellaError as exc:
            job.settle("archive", exc)
    return report


def verify_then(
    report: Report,
    keys: Sequence[TrustedKey],
    name: str,
    then: Callable[[Path], None],
    *,
    at: datetime | None = None,
    observer: Observer | None = None,
) -> Report:
    """Verify ``report.bundle`` as :func:`verify_bundle` does, then, if it verified, the checks of its kind.

    ``then(workdir)`` runs them in a fresh temporary directory; the first failure is the report's
    error, reported as check ``name`` unless a failed check already says it.
    """
    base = verify_bundle(Path(report.bundle), keys, at=at, observer=observer)
    report.checks, report.manifest, report.signer = list(base.checks), base.manifest, base.signer
    if base.error is not None:
        report.error = base.error
        return report
    with tempfile.TemporaryDirectory(prefix=f"stella-{name}-") as work:
        try:
            then(Path(work))
        except StellaError as exc:
            Recorder(report, observer).settle(name, exc)
    return report
