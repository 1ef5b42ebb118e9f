"""Offline verification of a sealed evidence bundle (``.tgz``), check by check (``docs/evidence-format.md``).

The checks, in order; each is reported as it completes and the first failure decides the exit code. The offline
script in the bundle (``verify.py``) makes the same checks in the same order with the same codes:

1. ``archive`` (3/4): a canonical ``.tgz`` (:class:`core.archive.reader.SafeArchiveReader`: regular files, safe
   names, the writer's headers), read into memory up to 1 GiB;
2. ``files`` (4): the head files are present, every other file is under ``artifacts/``;
3. ``checksums`` (4): ``SHA256SUMS`` lists every other file exactly once, sorted, with its sha256;
4. ``signature`` (5): ``manifest.dsse.json`` carries ``manifest.json`` as its payload and ``manifest.sig`` as
   its one signature, which verifies with a trusted key (5 when no trusted key verifies it, as for an export
   bundle; when the bundle's own ``signer.pub`` verifies it, the message says the signer is not trusted);
5. ``manifest`` (3/4): the signed manifest is well formed (3) and lists the other signed files by digest (4); its
   ``createdAt`` is the archive's mtime; ``signer scope`` (5): the key may sign evidence for this tenant;
6. ``artifacts`` (4): every artifact's sha256 and size, leaf indexes in order, no unlisted file;
7. ``merkle root`` (4): the RFC 9162 root over the artifacts' bytes in leaf order is the signed root;
8. ``inclusion proofs`` (4): each artifact's proof in ``proofs.json`` leads from its leaf to the signed root;
9. ``consistency proof`` (4, re-seals only): the proof links the earlier root the manifest names to this one;
10. ``custody`` (4): every event matches its hash and follows the one before; the run's first seq, anchor, length
    and head are the signed ones, so a removed, inserted or reordered event is detected;
11. ``metadata`` (4): ``metadata.json`` names this evidence and holds no field the redaction record removed;
12. ``timestamp`` (6): ``manifest.sig.tsr`` is a granted RFC 3161 reply whose imprint is the hash of the signature
    bytes; with ``tsa_certs`` it is required and must chain to one of them (at its own genTime, with the critical
    timeStamping EKU), checked by ``rfc3161-client``. Without ``tsa_certs`` a present timestamp is checked for its
    imprint only and reported as not trust-checked.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from rfc3161_client import VerificationError, VerifierBuilder, decode_timestamp_response

from core.archive.reader import ReaderLimits, SafeArchiveReader
from core.canonical import canonical_json
from core.contract.evidence import (
    ARTIFACTS_DIR,
    CHECKSUMS,
    CUSTODY_LOG,
    MANIFEST,
    MANIFEST_DSSE,
    MANIFEST_LISTED,
    MANIFEST_SCHEMA,
    MERKLE_ALGORITHM,
    METADATA,
    PAYLOAD_TYPE,
    PROOFS,
    PROOFS_SCHEMA,
    SIGNATURE,
    SIGNER_KEY,
    TIMESTAMP,
    VERIFY_PY,
    VERIFY_SH,
)
from core.custody import CustodyEvent, verify_chain
from core.errors import (
    BadInputError,
    Cancelled,
    IntegrityError,
    SignatureError,
    StellaError,
    TrustMetadataError,
    UsageError,
)
from core.keys import keyid_of
from core.merkle import leaf_hash, root_from_hashes, verify_consistency, verify_inclusion
from core.progress import Observer
from core.signing import algorithm_of, dsse_signer, dsse_verifies
from core.trust import TrustedKey
from core.tsa import TimestampInfo, normalize, read_response
from verify.bundle import Recorder, VerifyReport

#: An evidence bundle is read into memory; it holds manifests and transcripts, not payloads.
MAX_TOTAL = 1 << 30
CHUNK = 1 << 20
REQUIRED = (
    MANIFEST,
    MANIFEST_DSSE,
    SIGNATURE,
    CHECKSUMS,
    SIGNER_KEY,
    VERIFY_PY,
    VERIFY_SH,
    METADATA,
    CUSTODY_LOG,
    PROOFS,
)
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_CHECKSUM_LINE = re.compile(r"^([0-9a-f]{64})  (.+)$")
_CREATED = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
_ABSENT = object()


@dataclass
class EvidenceReport(VerifyReport):
    """What ``stella evidence verify`` says about a sealed bundle: the checks and what the manifest seals."""

    evidence: dict[str, Any] = field(default_factory=dict)
    timestamp: TimestampInfo | None = None

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["manifest"] = self.evidence
        if self.timestamp is not None:
            out["timestamp"] = self.timestamp.to_dict()
        return out


class _Verification(Recorder):
    report: EvidenceReport

    def __init__(
        self,
        path: Path,
        keys: Sequence[TrustedKey],
        tsa_certs: Sequence[bytes] | None,
        report: EvidenceReport,
        observer: Observer | None,
    ) -> None:
        super().__init__(report, observer)
        self.path = path
        self.keys = keys
        self.tsa_certs = list(tsa_certs or ())
        self.files: dict[str, bytes] = {}
        self.mtime: int | None = None

    def fail(self, name: str, error: StellaError) -> StellaError:
        return self.failed(name, error)

    def run(self) -> None:
        self.read_archive()
        self.check_files()
        self.check_checksums()
        self.check_signature()
        manifest = self.check_manifest()
        self.check_scope(f"evidence:{manifest['kind']}", str(manifest["tenant"]), "evidence bundles")
        self.check_artifacts(manifest)
        root = self.check_merkle(manifest)
        self.check_custody(manifest)
        self.check_metadata(manifest)
        self.check_timestamp()
        self.report.evidence = {
            "evidenceId": manifest["evidenceId"],
            "kind": manifest["kind"],
            "tenant": manifest["tenant"],
            "createdAt": manifest["createdAt"],
            "rootHash": root.hex(),
            "treeSize": len(manifest["artifacts"]),
            "custodyHead": manifest["custody"]["head"],
            "custodyEvents": manifest["custody"]["events"],
            "redactionProfile": manifest["redaction"].get("profile"),
            "previous": manifest.get("previous"),
        }

    # -- the archive -----------------------------------------------------------------------------------------------
    def read_archive(self) -> None:
        label = str(self.path)
        limits = ReaderLimits(max_total_bytes=MAX_TOTAL, max_entry_bytes=MAX_TOTAL)
        try:
            with SafeArchiveReader(self.path, limits, cancel=self.observer) as reader:
                if reader.compression != "gzip":
                    raise BadInputError("a sealed evidence bundle is a .tgz (gzip) archive", path=label)
                for member in reader:
                    stream = member.stream()
                    # read() may return less than asked (one decompressed chunk): read to the member's end.
                    self.files[member.name] = b"".join(iter(functools.partial(stream.read, CHUNK), b""))
                self.mtime = reader.mtime
        except Cancelled:
            raise
        except StellaError as exc:
            raise self.fail("archive", exc) from None
        self.passed("archive", f"{len(self.files)} regular files", label)

    def check_files(self) -> None:
        names = set(self.files)
        missing = [n for n in REQUIRED if n not in names]
        if missing:
            raise self.fail("files", IntegrityError(f"missing {', '.join(missing)}", path=str(self.path)))
        extra = sorted(n for n in names if n not in REQUIRED and n != TIMESTAMP and not n.startswith(ARTIFACTS_DIR))
        if extra:
            raise self.fail("files", IntegrityError(f"files a sealed bundle does not have: {', '.join(extra)}"))
        count = sum(1 for n in names if n.startswith(ARTIFACTS_DIR))
        self.passed("files", f"{len(names)} files, {count} artifacts")

    def check_checksums(self) -> None:
        def bad(message: str) -> StellaError:
            return self.fail("checksums", IntegrityError(message, path=CHECKSUMS))

        try:
            text = self.files[CHECKSUMS].decode("utf-8")
        except UnicodeDecodeError:
            raise bad("SHA256SUMS is not UTF-8 text") from None
        if text and not text.endswith("\n"):
            raise bad("SHA256SUMS does not end with a newline")
        listed: list[tuple[str, str]] = []
        for line in text.split("\n")[:-1] if text else []:
            match = _CHECKSUM_LINE.match(line)
            if not match:
                raise bad(f"line {line[:80]!r} is not '<sha256>  <path>'")
            listed.append((match.group(2), match.group(1)))
        paths = [p for p, _ in listed]
        if paths != sorted(set(paths)) or set(paths) != set(self.files) - {CHECKSUMS}:
            raise bad("SHA256SUMS does not list every file of the bundle exactly once, sorted")
        for path, digest in listed:
            if hashlib.sha256(self.files[path]).hexdigest() != digest:
                raise self.fail("checksums", IntegrityError("sha256 differs from SHA256SUMS", path=path))
        self.passed("checksums", f"{len(listed)} files match SHA256SUMS", CHECKSUMS)

    # -- the signature ---------------------------------------------------------------------------------------------
    def check_signature(self) -> None:
        def bad(message: str) -> StellaError:
            return self.fail("signature", SignatureError(message, path=MANIFEST_DSSE))

        try:
            envelope = orjson.loads(self.files[MANIFEST_DSSE])
        except orjson.JSONDecodeError:
            raise bad("not JSON") from None
        sigs = envelope.get("signatures") if isinstance(envelope, dict) else None
        if envelope_type(envelope) != PAYLOAD_TYPE or not isinstance(sigs, list) or len(sigs) != 1:
            raise bad("not an evidence manifest envelope")
        try:
            payload = base64.b64decode(str(envelope.get("payload")), validate=True)
            entry = sigs[0] if isinstance(sigs[0], dict) else {}
            signature = base64.b64decode(str(entry.get("sig", "")), validate=True)
        except (binascii.Error, ValueError):
            raise bad("not valid base64") from None
        if payload != self.files[MANIFEST]:
            raise self.fail("signature", SignatureError("is not the payload the signature covers", path=MANIFEST))
        if not signature or signature != self.files[SIGNATURE]:
            raise self.fail("signature", SignatureError("is not the envelope's signature", path=SIGNATURE))
        key = dsse_signer(PAYLOAD_TYPE, payload, [signature], self.keys)
        if key is None:
            included = _included_key(self.files[SIGNER_KEY])
            if included is not None and dsse_verifies(included, signature, PAYLOAD_TYPE, payload):
                hint = "pass the signer's public key with --key" if not self.keys else None
                raise self.fail(
                    "signature",
                    SignatureError(
                        f"the manifest is signed by key {keyid_of(included)[:16]} (signer.pub), which is not a trusted"
                        " key",
                        path=MANIFEST,
                        hint=hint or "trust the sealing locker's key (stella trust add LABEL KEY.pub)",
                    ),
                )
            tried = ", ".join(k.label for k in self.keys) or "no key given"
            raise self.fail(
                "signature", SignatureError(f"the manifest signature does not verify (tried: {tried})", path=MANIFEST)
            )
        self.signed_by(key, MANIFEST)

    # -- the manifest and what it lists ----------------------------------------------------------------------------
    def check_manifest(self) -> dict[str, Any]:
        def malformed(message: str) -> StellaError:
            return self.fail("manifest", BadInputError(message, path=MANIFEST))

        try:
            manifest = orjson.loads(self.files[MANIFEST])
        except orjson.JSONDecodeError:
            raise malformed("not JSON") from None
        if not isinstance(manifest, dict):
            raise malformed("not a JSON object")
        shape = (
            manifest.get("schema") == MANIFEST_SCHEMA
            and all(isinstance(manifest.get(k), str) for k in ("evidenceId", "kind", "tenant", "createdAt"))
            and isinstance(manifest.get("artifacts"), list)
            and all(isinstance(manifest.get(k), dict) for k in ("merkle", "custody", "redaction"))
            and isinstance(manifest.get("files"), list)
        )
        if not shape:
            raise malformed(f"not an evidence manifest of schema {MANIFEST_SCHEMA}")
        created = str(manifest["createdAt"])
        if not _CREATED.match(created):
            raise malformed(f"createdAt {created!r} is not RFC 3339 UTC")
        epoch = int(_epoch(created))
        if self.mtime is not None and self.mtime != epoch:
            raise self.fail("manifest", IntegrityError("the archive's mtime is not the manifest's createdAt"))
        entries: dict[str, dict[str, Any]] = {}
        for entry in manifest["files"]:
            if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
                raise malformed("a files entry is not an object with a path")
            entries[entry["path"]] = entry
        if sorted(entries) != sorted(MANIFEST_LISTED):
            raise malformed(f"the manifest lists {sorted(entries)}, not {sorted(MANIFEST_LISTED)}")
        for name in MANIFEST_LISTED:
            data = self.files[name]
            if entries[name].get("sha256") != hashlib.sha256(data).hexdigest() or entries[name].get("size") != len(
                data
            ):
                raise self.fail("manifest", IntegrityError("is not the file the signed manifest lists", path=name))
        self.passed(
            "manifest",
            f"evidence {manifest['evidenceId']} ({manifest['kind']}, tenant {manifest['tenant']})",
            MANIFEST,
        )
        return manifest

    def check_artifacts(self, manifest: dict[str, Any]) -> None:
        seen: set[str] = set()
        for i, artifact in enumerate(manifest["artifacts"]):
            if not isinstance(artifact, dict) or not isinstance(artifact.get("path"), str) or not _index(artifact, i):
                raise self.fail(
                    "artifacts",
                    BadInputError(f"artifact {i} is not an object with path and leafIndex {i}", path=MANIFEST),
                )
            path = str(artifact["path"])
            if not path.startswith(ARTIFACTS_DIR) or path in seen:
                raise self.fail(
                    "artifacts",
                    BadInputError(f"artifact path {path!r} is not under artifacts/ or repeated", path=MANIFEST),
                )
            seen.add(path)
            data = self.files.get(path)
            if data is None:
                raise self.fail("artifacts", IntegrityError("is missing", path=path))
            if artifact.get("sha256") != hashlib.sha256(data).hexdigest() or artifact.get("size") != len(data):
                raise self.fail(
                    "artifacts", IntegrityError("sha256 or size differs from the signed manifest", path=path)
                )
        unlisted = sorted(n for n in self.files if n.startswith(ARTIFACTS_DIR) and n not in seen)
        if unlisted:
            raise self.fail("artifacts", IntegrityError(f"files the manifest does not list: {', '.join(unlisted)}"))
        self.passed("artifacts", f"{len(seen)} artifacts match the signed manifest")

    # -- the Merkle tree -------------------------------------------------------------------------------------------
    def check_merkle(self, manifest: dict[str, Any]) -> bytes:
        merkle = manifest["merkle"]
        leaves = [leaf_hash(self.files[str(a["path"])]) for a in manifest["artifacts"]]
        root = self.hex32(merkle.get("rootHash"), "merkle root", "the signed root")
        if (
            merkle.get("algorithm") != MERKLE_ALGORITHM
            or not _index(merkle, len(leaves), "treeSize")
            or root_from_hashes(leaves) != root
        ):
            raise self.fail("merkle root", IntegrityError("the artifacts do not give the signed Merkle root"))
        self.passed("merkle root", f"{root.hex()} over {len(leaves)} artifacts")
        proofs = self.load_proofs()
        inclusion = proofs.get("inclusion")
        if (
            proofs.get("schema") != PROOFS_SCHEMA
            or not _index(proofs, len(leaves), "treeSize")
            or proofs.get("rootHash") != root.hex()
            or not isinstance(inclusion, list)
            or len(inclusion) != len(leaves)
        ):
            raise self.fail("inclusion proofs", IntegrityError("is not for this tree", path=PROOFS))
        for i, proof in enumerate(inclusion):
            path = str(manifest["artifacts"][i]["path"])
            hashes = proof.get("hashes") if isinstance(proof, dict) else None
            if not isinstance(hashes, list) or not _index(proof, i) or proof.get("path") != path:
                raise self.fail(
                    "inclusion proofs", IntegrityError(f"the proof of {path} is malformed or out of order", path=PROOFS)
                )
            path_hashes = [self.hex32(h, "inclusion proofs", f"a hash of the proof of {path}") for h in hashes]
            if not verify_inclusion(i, len(leaves), leaves[i], path_hashes, root):
                raise self.fail(
                    "inclusion proofs",
                    IntegrityError(f"the inclusion proof of {path} does not lead to the root", path=PROOFS),
                )
        self.passed("inclusion proofs", f"{len(inclusion)} proofs lead to the signed root", PROOFS)
        self.check_consistency(manifest, proofs, len(leaves), root)
        return root

    def load_proofs(self) -> dict[str, Any]:
        try:
            proofs = orjson.loads(self.files[PROOFS])
        except orjson.JSONDecodeError:
            proofs = None
        if not isinstance(proofs, dict):
            raise self.fail("inclusion proofs", IntegrityError("is not a JSON object", path=PROOFS))
        return proofs

    def check_consistency(self, manifest: dict[str, Any], proofs: dict[str, Any], size: int, root: bytes) -> None:
        previous = manifest.get("previous")
        consistency = proofs.get("consistency")
        name = "consistency proof"
        if previous is None:
            if consistency is not None:
                raise self.fail(
                    name, IntegrityError("a consistency proof without a previous seal in the manifest", path=PROOFS)
                )
            return
        if not isinstance(previous, dict) or not isinstance(consistency, dict):
            raise self.fail(
                name, IntegrityError("the manifest names a previous seal but there is no proof", path=PROOFS)
            )
        old_size = previous.get("treeSize")
        old_root = self.hex32(previous.get("rootHash"), name, "the previous root")
        hashes = consistency.get("hashes")
        if (
            not isinstance(old_size, int)
            or isinstance(old_size, bool)
            or consistency.get("oldSize") != old_size
            or consistency.get("oldRoot") != old_root.hex()
            or not isinstance(hashes, list)
        ):
            raise self.fail(name, IntegrityError("the consistency proof is not for the previous seal", path=PROOFS))
        path_hashes = [self.hex32(h, name, "a hash of the consistency proof") for h in hashes]
        if not verify_consistency(old_size, size, old_root, root, path_hashes):
            raise self.fail(
                name, IntegrityError(f"this tree does not extend {previous.get('evidenceId')}", path=PROOFS)
            )
        self.passed(name, f"extends {previous.get('evidenceId')} ({old_size} artifacts, {old_root.hex()[:16]})", PROOFS)

    def hex32(self, value: Any, check: str, what: str) -> bytes:
        if not isinstance(value, str) or not _HEX64.match(value):
            raise self.fail(check, IntegrityError(f"{what} is not 64 lowercase hex digits", path=PROOFS))
        return bytes.fromhex(value)

    # -- custody, metadata -----------------------------------------------------------------------------------------
    def check_custody(self, manifest: dict[str, Any]) -> None:
        custody = manifest["custody"]
        try:
            lines = self.files[CUSTODY_LOG].decode("utf-8").split("\n")[:-1]
        except UnicodeDecodeError:
            raise self.fail("custody", IntegrityError("is not UTF-8", path=CUSTODY_LOG)) from None
        events: list[CustodyEvent] = []
        for n, line in enumerate(lines, start=1):
            try:
                events.append(CustodyEvent.from_dict(orjson.loads(line)))
            except (orjson.JSONDecodeError, BadInputError) as exc:
                message = exc.message if isinstance(exc, BadInputError) else "not JSON"
                raise self.fail("custody", IntegrityError(f"custody event {n}: {message}", path=CUSTODY_LOG)) from None
        anchor = custody.get("anchor")
        if not isinstance(anchor, str):
            raise self.fail("custody", BadInputError("the manifest's custody anchor is not a string", path=MANIFEST))
        try:
            head = verify_chain(events, anchor=anchor, path=CUSTODY_LOG)
        except IntegrityError as exc:
            raise self.fail("custody", exc) from None
        if events and events[0].seq != custody.get("firstSeq"):
            raise self.fail(
                "custody",
                IntegrityError(f"custody event 1 (seq {events[0].seq}): expected seq {custody.get('firstSeq')}"),
            )
        if self.files[CUSTODY_LOG] != b"".join(canonical_json(e.to_dict()) + b"\n" for e in events):
            raise self.fail("custody", IntegrityError("is not one canonical JSON event per line", path=CUSTODY_LOG))
        if len(events) != custody.get("events") or head != custody.get("head"):
            raise self.fail(
                "custody",
                IntegrityError("the custody log is not the run the manifest signed (length or head)", path=CUSTODY_LOG),
            )
        self.passed("custody", f"{len(events)} events, head {head[:16]}", CUSTODY_LOG)

    def check_metadata(self, manifest: dict[str, Any]) -> None:
        try:
            metadata = orjson.loads(self.files[METADATA])
        except orjson.JSONDecodeError:
            metadata = None
        if not isinstance(metadata, dict):
            raise self.fail("metadata", IntegrityError("is not a JSON object", path=METADATA))
        for key in ("evidenceId", "kind", "tenant", "createdAt"):
            if metadata.get(key) != manifest[key]:
                raise self.fail("metadata", IntegrityError(f"its {key} is not the manifest's", path=METADATA))
        redaction = manifest["redaction"]
        redacted = redaction.get("redacted")
        if not isinstance(redacted, list):
            raise self.fail("metadata", BadInputError("the redaction record is not a list", path=MANIFEST))
        for record in redacted:
            dotted = str(record.get("field")) if isinstance(record, dict) else ""
            node: Any = metadata.get("subject")
            for part in dotted.split("."):
                node = node[part] if isinstance(node, dict) and part in node else _ABSENT
                if node is _ABSENT:
                    break
            if node is not _ABSENT:
                raise self.fail("metadata", IntegrityError(f"redacted field {dotted!r} is present", path=METADATA))
        self.passed(
            "metadata", f"redaction profile {redaction.get('profile')!r}, {len(redacted)} fields redacted", METADATA
        )

    # -- the timestamp ---------------------------------------------------------------------------------------------
    def check_timestamp(self) -> None:
        reply = self.files.get(TIMESTAMP)
        if reply is None:
            if self.tsa_certs:
                raise self.fail(
                    "timestamp", TrustMetadataError("the bundle carries no timestamp, and a TSA certificate was given")
                )
            self.passed("timestamp", "not timestamped")
            return
        signature = self.files[SIGNATURE]
        try:
            info = read_response(reply, signature, label=TIMESTAMP)
        except StellaError as exc:
            raise self.fail("timestamp", TrustMetadataError(exc.message, path=TIMESTAMP)) from None
        self.report.timestamp = info
        stamped = info.to_dict()["genTime"]
        if not self.tsa_certs:
            self.passed("timestamp", f"stamped {stamped}; the TSA is not checked: no TSA certificate given", TIMESTAMP)
            return
        try:
            roots = [cert for blob in self.tsa_certs for cert in _certificates(blob)]
        except ValueError as exc:
            raise self.fail("timestamp", BadInputError(f"a TSA certificate is not PEM or DER: {exc}")) from None
        builder = VerifierBuilder()
        for cert in roots:
            builder = builder.add_root_certificate(cert)
        try:
            builder.build().verify_message(decode_timestamp_response(normalize(reply, TIMESTAMP)), signature)
        except (VerificationError, ValueError) as exc:
            raise self.fail(
                "timestamp",
                TrustMetadataError(f"the timestamp is not from a trusted TSA: {exc}", path=TIMESTAMP),
            ) from None
        self.passed("timestamp", f"stamped {stamped} by a trusted TSA (policy {info.policy})", TIMESTAMP)


def envelope_type(envelope: Any) -> Any:
    """The envelope's ``payloadType`` (None for anything not an object)."""
    return envelope.get("payloadType") if isinstance(envelope, dict) else None


def _index(entry: dict[str, Any], value: int, key: str = "leafIndex") -> bool:
    got = entry.get(key)
    return isinstance(got, int) and not isinstance(got, bool) and got == value


def _epoch(created: str) -> float:
    from datetime import UTC, datetime

    return datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def _included_key(pem: bytes) -> Any:
    """The bundle's own ``signer.pub`` as a key, or None when it is not a key stella accepts."""
    try:
        key = load_pem_public_key(pem)
        algorithm_of(key)
    except (ValueError, TypeError, StellaError):
        return None
    return key


def _certificates(blob: bytes) -> list[x509.Certificate]:
    if b"-----BEGIN" in blob:
        return x509.load_pem_x509_certificates(blob)
    return [x509.load_der_x509_certificate(blob)]


def verify_sealed_evidence(
    path: Path,
    *,
    keys: Sequence[TrustedKey],
    tsa_certs: Sequence[bytes] | None = None,
    observer: Observer | None = None,
) -> EvidenceReport:
    """Verify the sealed evidence bundle at ``path`` against trusted ``keys`` and, when given, the TSA certificates
    (PEM or DER bytes, each possibly several PEM certificates) a timestamp must chain to.

    Returns the report; ``report.error`` is the first failure (its exit code: 3, 4, 5 or 6), None when verified:
    5 whenever no trusted key verifies the manifest signature (whoever made it), 6 for the TSA's trust.
    Raises UsageError when ``path`` is not a file and Cancelled when ``observer`` says so.
    """
    if not path.is_file():
        raise UsageError("no such sealed evidence bundle", path=str(path))
    report = EvidenceReport(str(path))
    job = _Verification(path, keys, tsa_certs, report, observer)
    try:
        job.run()
    except Cancelled:
        raise
    except StellaError as exc:
        job.settle("archive", exc)
    return report
