"""Sealed evidence bundles: the deterministic, signed, timestamped, Merkle-rooted ``.tgz`` of the evidence locker.

:func:`seal_evidence` turns a :class:`SealRequest` into archive bytes; the layout (``docs/evidence-format.md``):

- ``manifest.json``: RFC 8785 canonical JSON: who and what was sealed, every artifact (path, sha256, size, media
  type, leaf index), the RFC 9162 Merkle root over the artifacts' bytes in manifest order, the earlier root a
  re-seal extends, the redaction record, the custody run's anchor, length and head, and the digests of the other
  files; ``manifest.dsse.json`` the DSSE envelope over it; ``manifest.sig`` that envelope's signature bytes;
  ``manifest.sig.tsr`` the RFC 3161 reply over those bytes (when timestamped);
- ``SHA256SUMS`` (``sha256sum -c``), ``signer.pub``, ``verify.sh`` and ``verify.py`` (the offline verifier),
  ``metadata.json`` (the redacted subject), ``custody.jsonl``, ``proofs.json`` (each artifact's inclusion proof and
  the consistency proof of a re-seal), then ``artifacts/...`` in leaf order.

The archive is canonical in the sense of :mod:`core.archive.canonical` (fixed headers, every mtime the
``createdAt``, gzip mtime 0, deflated in 1 MiB blocks by :mod:`core.pgzip`), so the same request, key and
timestamp give the same bytes, and
:class:`core.archive.reader.SafeArchiveReader` reads it back. :func:`attach_timestamp` adds a token produced
elsewhere to a sealed archive.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import io
import tarfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import orjson

from core.archive.canonical import EXEC_MODE, FILE_MODE, end_of_archive, member_header, padding
from core.archive.rules import printable, unsafe_path_reason
from core.canonical import canonical_json
from core.clock import rfc3339
from core.contract.evidence import (
    ARTIFACTS_DIR,
    CHECKSUMS,
    CUSTODY_LOG,
    HEAD_ORDER,
    MANIFEST,
    MANIFEST_DSSE,
    MANIFEST_LISTED,
    MANIFEST_SCHEMA,
    MERKLE_ALGORITHM,
    METADATA,
    METADATA_SCHEMA,
    PAYLOAD_TYPE,
    PROOFS,
    PROOFS_SCHEMA,
    SIGNATURE,
    SIGNER_KEY,
    TIMESTAMP,
    VERIFY_PY,
    VERIFY_SH,
)
from core.custody import GENESIS, CustodyEvent, verify_chain
from core.errors import BadInputError, IntegrityError, UsageError
from core.merkle import LEAF_PREFIX, _all_paths, consistency_proof, root
from core.pgzip import ParallelGzipWriter
from core.signing import Signer, dsse_envelope
from core.tsa import Timestamper, normalize, read_response

#: What an evidence bundle snapshots: an export run, a policy evaluation, a job, an Offline Kit.
KINDS = ("run", "policy", "job", "kit")
#: The templates of the offline verifier, in ``core/bundle_files``.
_SCRIPT_TEMPLATES = {VERIFY_PY: "evidence_verify.py.txt", VERIFY_SH: "evidence_verify.sh"}
_EXECUTABLE = (VERIFY_PY, VERIFY_SH)
#: gzip level of the archive (the reader accepts the header of any level). 6, gzip's own default: at 200,000 inputs
#: a run's seal holds ~190 MB of JSON, which level 9 compressed about 3x slower for a ~2% smaller archive.
GZIP_LEVEL = 6


@dataclass(frozen=True)
class EvidenceArtifact:
    """One sealed file: ``path`` relative to ``artifacts/`` (POSIX), its bytes and media type."""

    path: str
    data: bytes
    media_type: str


@dataclass(frozen=True)
class Redaction:
    """A field of the subject left out by the redaction profile (a dotted path), and why."""

    field: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason}


@dataclass(frozen=True)
class PreviousSeal:
    """The seal a re-seal extends: its artifacts come first, in the same order, then the new ones."""

    evidence_id: str
    tree_size: int
    root_hash: str


@dataclass(frozen=True)
class SealRequest:
    """Everything a sealed bundle says. ``created_at`` is UTC (naive or aware); ``subject`` is already redacted
    (the fields named in ``redactions`` must be absent); ``custody`` a contiguous run of a custody chain."""

    evidence_id: str
    kind: str
    tenant: str
    created_at: datetime
    subject: Mapping[str, Any]
    artifacts: Sequence[EvidenceArtifact]
    redaction_profile: str
    redactions: Sequence[Redaction]
    custody: Sequence[CustodyEvent]
    previous: PreviousSeal | None = None


@dataclass(frozen=True)
class SealedEvidence:
    """A sealed bundle: the archive bytes, their digest (``sha256:<hex>``), the manifest and its root."""

    archive: bytes
    digest: str
    manifest: Mapping[str, Any]
    root_hash: str
    tree_size: int
    timestamped: bool


def seal_evidence(request: SealRequest, signer: Signer, timestamper: Timestamper | None) -> SealedEvidence:
    """Seal ``request``: build the manifest, sign it (DSSE), timestamp the signature (when ``timestamper`` is given)
    and pack the deterministic ``.tgz``.

    Raises UsageError for a request that cannot be sealed as given (unknown kind, no artifacts, an unsafe or
    duplicate path, a redacted field still present, a previous seal whose root the leading artifacts do not give),
    IntegrityError for a custody run that is not an unbroken chain, and what the timestamper raises.
    """
    _check_request(request)
    created = _utc(request.created_at)
    leaves = [a.data for a in request.artifacts]
    digests, leaf_hashes = _hash_artifacts(leaves)
    # One pass over the leaf hashes gives the root and every inclusion proof (core.merkle's own algorithm).
    tree_root, paths = _all_paths(leaf_hashes)
    files: dict[str, bytes] = {
        METADATA: canonical_json(
            {
                "schema": METADATA_SCHEMA,
                "evidenceId": request.evidence_id,
                "kind": request.kind,
                "tenant": request.tenant,
                "createdAt": rfc3339(created),
                "subject": dict(request.subject),
            }
        ),
        CUSTODY_LOG: b"".join(canonical_json(e.to_dict()) + b"\n" for e in request.custody),
        SIGNER_KEY: signer.public_pem,
        **{
            name: resources.files("core.bundle_files").joinpath(t).read_bytes() for name, t in _SCRIPT_TEMPLATES.items()
        },
    }
    artifacts = [
        {
            "path": ARTIFACTS_DIR + a.path,
            "sha256": digests[i],
            "size": len(a.data),
            "mediaType": a.media_type,
            "leafIndex": i,
        }
        for i, a in enumerate(request.artifacts)
    ]
    custody = request.custody
    manifest: dict[str, Any] = {
        "schema": MANIFEST_SCHEMA,
        "evidenceId": request.evidence_id,
        "kind": request.kind,
        "tenant": request.tenant,
        "createdAt": rfc3339(created),
        "artifacts": artifacts,
        "merkle": {"algorithm": MERKLE_ALGORITHM, "treeSize": len(leaves), "rootHash": tree_root.hex()},
        "redaction": {"profile": request.redaction_profile, "redacted": [r.to_dict() for r in request.redactions]},
        "custody": {
            "events": len(custody),
            "firstSeq": custody[0].seq if custody else 0,
            "anchor": custody[0].prev if custody else GENESIS,
            "head": custody[-1].hash if custody else GENESIS,
        },
        "files": [
            {"path": name, "sha256": hashlib.sha256(files[name]).hexdigest(), "size": len(files[name])}
            for name in sorted(MANIFEST_LISTED)
        ],
        "signer": {"keyid": signer.keyid, "algorithm": str(signer.algorithm)},
    }
    proofs: dict[str, Any] = {
        "schema": PROOFS_SCHEMA,
        "treeSize": len(leaves),
        "rootHash": tree_root.hex(),
        "inclusion": [
            {"leafIndex": i, "path": artifacts[i]["path"], "hashes": [h.hex() for h in path]}
            for i, path in enumerate(paths)
        ],
    }
    if request.previous is not None:
        prev = request.previous
        manifest["previous"] = {"evidenceId": prev.evidence_id, "treeSize": prev.tree_size, "rootHash": prev.root_hash}
        proofs["consistency"] = {
            "oldSize": prev.tree_size,
            "oldRoot": prev.root_hash,
            "hashes": [h.hex() for h in consistency_proof(prev.tree_size, leaves)],
        }
    manifest_bytes = canonical_json(manifest)
    envelope = dsse_envelope(signer, PAYLOAD_TYPE, manifest_bytes)
    signature = base64.b64decode(envelope["signatures"][0]["sig"])
    files |= {
        MANIFEST: manifest_bytes,
        MANIFEST_DSSE: canonical_json(envelope),
        SIGNATURE: signature,
        PROOFS: canonical_json(proofs),
    }
    if timestamper is not None:
        files[TIMESTAMP] = normalize(timestamper.timestamp(signature), TIMESTAMP)
    known: dict[str, str] = {}
    for artifact, entry in zip(request.artifacts, artifacts, strict=True):
        files[str(entry["path"])] = artifact.data
        known[str(entry["path"])] = str(entry["sha256"])
    order = [*(n for n in HEAD_ORDER if n in files or n == CHECKSUMS), *(str(e["path"]) for e in artifacts)]
    return _pack(files, order, manifest, int(calendar.timegm(created.timetuple())), known)


def _hash_artifacts(leaves: Sequence[bytes]) -> tuple[list[str], list[bytes]]:
    """Each artifact's sha256 (hex) and RFC 9162 leaf hash: each hashed once for either, the leaf hashes on a second
    thread (hashlib releases the GIL on large data), without copying an artifact to prefix it."""
    leaf_hashes: list[bytes] = []
    failure: list[BaseException] = []

    def leaf_pass() -> None:
        try:
            for data in leaves:
                h = hashlib.sha256(LEAF_PREFIX)
                h.update(data)
                leaf_hashes.append(h.digest())
        except BaseException as exc:  # handed to the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=leaf_pass, name="stella seal leaf hashes", daemon=True)
    thread.start()
    try:
        digests = [hashlib.sha256(data).hexdigest() for data in leaves]
    finally:
        thread.join()
    if failure:
        raise failure[0]
    return digests, leaf_hashes


def attach_timestamp(archive: bytes, token: bytes) -> SealedEvidence:
    """Add an RFC 3161 reply (or bare token) produced elsewhere to a sealed, not yet timestamped, archive.

    The token must be over the archive's ``manifest.sig`` bytes; whether its TSA is trusted is decided when the
    bundle is verified. Raises BadInputError for an archive that is not a sealed bundle or a token that is not
    one, UsageError when the bundle is timestamped already, IntegrityError for a token over other bytes.
    """
    members, mtime = read_members(archive)
    if TIMESTAMP in members:
        raise UsageError("the sealed bundle already carries a timestamp", path=TIMESTAMP)
    missing = [n for n in (MANIFEST, SIGNATURE) if n not in members]
    if missing:
        raise BadInputError(f"not a sealed evidence bundle: no {', '.join(missing)}")
    read_response(token, members[SIGNATURE], label=TIMESTAMP)
    members[TIMESTAMP] = normalize(token, TIMESTAMP)
    try:
        manifest = orjson.loads(members[MANIFEST])
        artifact_paths = [str(a["path"]) for a in manifest["artifacts"]]
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise BadInputError(f"the manifest is not an evidence manifest: {exc}", path=MANIFEST) from None
    order = [*(n for n in HEAD_ORDER if n in members or n == CHECKSUMS), *artifact_paths]
    if set(order) - {CHECKSUMS} != set(members) - {CHECKSUMS}:
        raise BadInputError("the archive's files are not the ones its manifest lists")
    return _pack(members, order, manifest, mtime)


def read_members(archive: bytes) -> tuple[dict[str, bytes], int]:
    """The files of a sealed archive stella wrote, by name, and the mtime they share (for re-packing).

    Only regular files with safe names are accepted; anything else is a BadInputError. This reads archives from
    the locker; a received bundle is checked by ``verify.evidence`` instead.
    """
    out: dict[str, bytes] = {}
    mtime = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            for info in tar:
                reason = unsafe_path_reason(info.name)
                if not info.isreg() or reason or info.name in out:
                    raise BadInputError(f"not a sealed evidence bundle: member {printable(info.name)} is not allowed")
                handle = tar.extractfile(info)
                assert handle is not None
                out[info.name] = handle.read()
                mtime = int(info.mtime)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BadInputError(f"not a sealed evidence bundle: {exc}") from None
    return out, mtime


def checksums_text(files: Mapping[str, bytes], known: Mapping[str, str] | None = None) -> bytes:
    """``SHA256SUMS``: ``<hex>  <path>`` for every file but itself, sorted by path (``sha256sum -c`` reads it).

    ``known`` gives the sha256 (hex) of files already hashed (the artifacts), so they are not hashed again."""
    known = known or {}
    lines = [
        f"{known.get(name) or hashlib.sha256(data).hexdigest()}  {name}\n"
        for name, data in sorted(files.items())
        if name != CHECKSUMS
    ]
    return "".join(lines).encode("utf-8")


def _pack(
    files: dict[str, bytes],
    order: list[str],
    manifest: Mapping[str, Any],
    mtime: int,
    known: Mapping[str, str] | None = None,
) -> SealedEvidence:
    files = {**files, CHECKSUMS: checksums_text(files, known)}
    out = io.BytesIO()
    offset = 0
    # Each member goes straight into the compressor: the artifacts of a large run are held once, not in a tar copy.
    # Blocks of 1 MiB are deflated on two threads (core.pgzip): a seal under 1 MiB is the bytes GzipFile writes.
    with ParallelGzipWriter(out, level=GZIP_LEVEL) as gz:
        for name in order:
            data = files[name]
            header = member_header(name, len(data), EXEC_MODE if name in _EXECUTABLE else FILE_MODE, mtime)
            gz.write(header)
            gz.write(data)
            gz.write(bytes(padding(len(data))))
            offset += len(header) + len(data) + padding(len(data))
        gz.write(end_of_archive(offset))
    archive = out.getvalue()
    merkle = manifest["merkle"]
    return SealedEvidence(
        archive=archive,
        digest="sha256:" + hashlib.sha256(archive).hexdigest(),
        manifest=manifest,
        root_hash=str(merkle["rootHash"]),
        tree_size=int(merkle["treeSize"]),
        timestamped=TIMESTAMP in files,
    )


def _utc(value: datetime) -> datetime:
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.replace(microsecond=0)


def _has_field(subject: Mapping[str, Any], dotted: str) -> bool:
    node: Any = subject
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def _check_request(request: SealRequest) -> None:
    if request.kind not in KINDS:
        raise UsageError(f"unknown evidence kind {request.kind!r}", hint=f"one of {', '.join(KINDS)}")
    if not request.evidence_id or not request.tenant:
        raise UsageError("an evidence bundle needs an id and a tenant")
    if not request.artifacts:
        raise UsageError("an evidence bundle seals at least one artifact")
    seen: set[str] = set()
    for artifact in request.artifacts:
        reason = unsafe_path_reason(artifact.path)
        if reason:
            raise UsageError(f"artifact path {reason}", path=printable(artifact.path))
        if artifact.path in seen:
            raise UsageError("two artifacts have the same path", path=artifact.path)
        seen.add(artifact.path)
    for redaction in request.redactions:
        if _has_field(request.subject, redaction.field):
            raise UsageError(f"field {redaction.field!r} is recorded as redacted but is still in the subject")
    if request.custody:
        verify_chain(request.custody, anchor=request.custody[0].prev, path=CUSTODY_LOG)
    previous = request.previous
    if previous is not None:
        if not 0 < previous.tree_size <= len(request.artifacts):
            raise UsageError(
                f"the earlier seal {previous.evidence_id} has {previous.tree_size} artifacts; "
                f"a re-seal lists them first and has {len(request.artifacts)}"
            )
        earlier = root([a.data for a in request.artifacts[: previous.tree_size]]).hex()
        if earlier != previous.root_hash:
            raise IntegrityError(
                f"the leading {previous.tree_size} artifacts do not give the root of {previous.evidence_id}",
                hint="a re-seal lists the earlier artifacts first, unchanged and in the same order",
            )
