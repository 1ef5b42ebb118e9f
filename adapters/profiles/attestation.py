"""``attestation:bundle``: DSSE envelopes, in-toto Statements and Sigstore bundles with what checks them offline.

Payload, inside the normal signed bundle (``export.json`` and its signature, ``checksums.txt``, provenance)::

    attestations/documents/<sha256>.json   every attestation document exactly as imported, named by its digest
    attestations/index.jsonl               one line per attestation: document, entry, kind, signing method,
                                           payload and predicate type, subjects, log entries, certificate file
    attestations/subjects.jsonl            the subject index: one line per (digest, name, attestation), by digest
    attestations/manifest.json             an in-toto Statement v1 whose subjects are every file above and below
                                           and whose predicate lists the attestations and the trust material
    attestations/manifest.dsse.json        DSSE envelope over it, signed with the run's key
    attestations/manifest.sigstore.json    the same envelope as a key-based Sigstore bundle v0.3
    trust/sigstore/<name>.json             the Sigstore trusted roots the keyless attestations chain to
    trust/keys/<label>.pem                 trusted public keys (of the exporter's trust store) that verify
                                           key-based attestations of the bundle
    trust/certificates/<sha256>-<n>.pem    each keyless attestation's signing certificate and its CA chain
    tlog/entries.jsonl                     transparency-log segments: each log entry with its inclusion proof,
                                           signed entry timestamp and canonicalized body
    tlog/checkpoints.jsonl                 the signed checkpoints (tree heads) those proofs verify against

The export does not verify attestations (the receiver does, with ``stella attest bundle verify``); it only
picks the trust material that belongs to them: a trusted root whose transparency log wrote an attestation's
log entry (the Sigstore production root shipped with the ``sigstore`` package, plus custom roots of the
exporter's trust store, ``trust/sigstore/*.json``), and a trusted key whose signature an attestation carries.

``attestations/manifest.dsse.json`` exists beside ``export.json.sig`` and ``provenance.dsse.json`` so that the
attestation inventory is itself an attestation: ``cosign``-style tools and ``@sigstore/verify`` check
``attestations/manifest.sigstore.json`` with the exporter's public key alone, without stella.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from core.bundle import PayloadContext
from core.canonical import canonical_json
from core.contract.attestation import (
    CERTIFICATES,
    DOCUMENTS,
    INDEX,
    KEYS,
    MANIFEST,
    MANIFEST_DSSE,
    MANIFEST_PREDICATE,
    MANIFEST_SIGSTORE,
    SIGSTORE_ROOTS,
    SUBJECTS,
    TLOG_CHECKPOINTS,
    TLOG_ENTRIES,
)
from core.contract.media_types import DSSE_ENVELOPE, SIGSTORE_BUNDLE_V03, SIGSTORE_TRUSTED_ROOT
from core.contract.payload_types import IN_TOTO
from core.errors import IntegrityError, UsageError
from core.home import Home
from core.signing import (
    dsse_envelope,
    dsse_signer,
    envelope_signatures,
    sigstore_bundle_v03,
    verify_prehashed_sha256,
)
from core.trust import TrustedKey, TrustStore
from core.x509_path import issuer_path, signing_certificate

_PACKAGE_PRODUCTION = ("_store", "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev", "trusted_root.json")

_DOCUMENTS_SQL = """
SELECT r.sha256, r.format, r.media_type, r.document_id
  FROM export_inputs i
  JOIN raw_documents r ON r.tenant = i.tenant AND r.sha256 = i.document_sha256
 WHERE i.run_id = ? AND i.tenant = ? AND i.kind = 'attestation'
 ORDER BY i.ordinal
"""
_ATTESTATIONS_SQL = """
SELECT entry_index, envelope_kind, media_type, payload_type, statement_type, predicate_type, signature_count, keyids
  FROM attestations WHERE tenant = ? AND document_sha256 = ? ORDER BY entry_index
"""
_SUBJECTS_SQL = """
SELECT entry_index, name, digest_algorithm, digest
  FROM attestation_subjects WHERE tenant = ? AND document_sha256 = ?
 ORDER BY entry_index, name, digest_algorithm, digest
"""


@dataclass(frozen=True)
class _Root:
    name: str
    data: bytes
    log_ids: frozenset[str]
    cas: tuple[x509.Certificate, ...]


@dataclass
class _Entry:
    """One attestation of a document, as the index describes it."""

    document: str
    index: int
    record: dict[str, Any]
    signed: dict[str, Any] | None = None  # the Sigstore bundle or DSSE envelope that carries the signature
    log_ids: set[str] = field(default_factory=set)


def _load_root(name: str, data: bytes) -> _Root | None:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(doc, dict) or not str(doc.get("mediaType", "")).startswith(SIGSTORE_TRUSTED_ROOT):
        return None
    log_ids = frozenset(
        str(t["logId"]["keyId"]) for t in doc.get("tlogs") or [] if isinstance(t, dict) and t.get("logId")
    )
    cas = []
    for ca in doc.get("certificateAuthorities") or []:
        for cert in ((ca or {}).get("certChain") or {}).get("certificates") or []:
            try:
                cas.append(x509.load_der_x509_certificate(base64.b64decode(cert["rawBytes"])))
            except (KeyError, TypeError, ValueError, binascii.Error):
                continue
    return _Root(name, data, log_ids, tuple(cas))


def candidate_roots(home: Path | None) -> list[_Root]:
    """The production root shipped with ``sigstore``, then the trust store's custom roots, by name."""
    roots: list[_Root] = []
    production = _load_root(
        "sigstore-production", resources.files("sigstore").joinpath(*_PACKAGE_PRODUCTION).read_bytes()
    )
    if production is not None:
        roots.append(production)
    folder = Home(home).trust_dir / "sigstore" if home is not None else None
    if folder is not None and folder.is_dir():
        for path in sorted(folder.glob("*.json")):
            root = _load_root(path.stem, path.read_bytes())
            if root is not None and root.data != roots[0].data:
                roots.append(root)
    return roots


def _chain(leaf: x509.Certificate, roots: list[_Root]) -> tuple[_Root | None, list[x509.Certificate]]:
    """The root whose CA issued ``leaf``, and the CA chain up to a self-signed certificate."""
    for root in roots:
        chain = issuer_path(leaf, root.cas)
        if chain:
            return root, chain
    return None, []


def _entries(sha: str, doc: Any, rows: list[tuple[Any, ...]], subjects: list[tuple[Any, ...]]) -> list[_Entry]:
    """Index records of a document's attestations, with the signed object of each."""
    signed: list[dict[str, Any] | None]
    if isinstance(doc, dict) and isinstance(doc.get("attestations"), list) and "mediaType" not in doc:
        signed = [item.get("bundle") if isinstance(item, dict) else None for item in doc["attestations"]]
    elif isinstance(doc, dict) and ("verificationMaterial" in doc or {"payload", "signatures"} <= doc.keys()):
        signed = [doc]
    else:
        signed = [None]
    out = []
    for entry_index, kind, media, payload_type, statement_type, predicate_type, n_sigs, keyids in rows:
        obj = signed[entry_index] if entry_index < len(signed) else None
        material = (obj or {}).get("verificationMaterial") if isinstance(obj, dict) else None
        if kind == "intoto-statement":
            method = "unsigned"
        elif isinstance(material, dict) and material.get("publicKey") is None:
            method = "keyless"
        else:
            method = "key"
        record: dict[str, Any] = {
            "document": sha,
            "path": f"{DOCUMENTS}{sha}.json",
            "entryIndex": entry_index,
            "kind": kind,
            "method": method,
            "signatureCount": n_sigs,
            "keyids": list(keyids or []),
            "subjects": [
                {"name": name, "digest": {algorithm: digest}}
                for i, name, algorithm, digest in subjects
                if i == entry_index
            ],
        }
        for key, value in (
            ("mediaType", media),
            ("payloadType", payload_type),
            ("statementType", statement_type),
            ("predicateType", predicate_type),
        ):
            if value is not None:
                record[key] = value
        entry = _Entry(sha, entry_index, record, obj if isinstance(obj, dict) else None)
        if isinstance(material, dict):
            entry.log_ids = {
                str((e.get("logId") or {}).get("keyId"))
                for e in material.get("tlogEntries") or []
                if isinstance(e, dict)
            }
        out.append(entry)
    return out


def _signing_keys(signed: dict[str, Any], keys: list[TrustedKey]) -> list[TrustedKey]:
    """The trusted keys whose signature ``signed`` (a DSSE envelope or key-based bundle) carries."""
    try:
        if "dsseEnvelope" in signed or "payload" in signed:
            env = signed.get("dsseEnvelope", signed)
            payload_type, payload = str(env["payloadType"]), base64.b64decode(env["payload"])
            sigs = list(envelope_signatures(env["signatures"]))
            return [k for k in keys if dsse_signer(payload_type, payload, sigs, [k]) is not None]
        ms = signed["messageSignature"]
        digest = base64.b64decode(ms["messageDigest"]["digest"])
        sig = base64.b64decode(ms["signature"])
    except (KeyError, TypeError, ValueError, binascii.Error):
        return []
    return [
        k
        for k in keys
        if isinstance(k.public_key, ec.EllipticCurvePublicKey) and verify_prehashed_sha256(k.public_key, sig, digest)
    ]


def _tlog(entry: _Entry) -> Iterator[tuple[dict[str, Any], dict[str, Any] | None]]:
    """Log segments of an attestation: (entry record, checkpoint record or None)."""
    material = (entry.signed or {}).get("verificationMaterial") or {}
    for n, tlog in enumerate(material.get("tlogEntries") or []):
        if not isinstance(tlog, dict):
            continue
        record = {"document": entry.document, "entryIndex": entry.index, "tlogIndex": n} | {
            k: v for k, v in tlog.items() if v is not None
        }
        proof = tlog.get("inclusionProof") or {}
        envelope = (proof.get("checkpoint") or {}).get("envelope") if isinstance(proof, dict) else None
        checkpoint = None
        if isinstance(envelope, str):
            lines = envelope.split("\n")
            checkpoint = {
                "logId": (tlog.get("logId") or {}).get("keyId"),
                "origin": lines[0],
                "treeSize": lines[1] if len(lines) > 1 else None,
                "rootHash": lines[2] if len(lines) > 2 else None,
                "envelope": envelope,
            }
        yield record, checkpoint


class AttestationBundle:
    """The ``attestation:bundle`` profile."""

    kind = "attestation"
    variant = "bundle"
    #: Encryption is refused (see write_payload): the receiver verifies every attestation before import.
    encrypted_prefixes: tuple[str, ...] | None = None

    def plan_options(self, requested: Mapping[str, Any], store: Any) -> dict[str, Any]:
        """Pin the trust material a run may ship (roots by digest, keys by key id), so a retry rebuilds the same
        bytes even if the trust store or the ``sigstore`` package changes in between."""
        if requested:
            raise UsageError(f"option {sorted(requested)[0]} does not apply to an attestation:bundle export")
        home: Path = store.home.root
        return {
            "trustMaterial": {
                "roots": {r.name: hashlib.sha256(r.data).hexdigest() for r in candidate_roots(home)},
                "keys": {k.label: k.keyid for k in TrustStore(Home(home)).list()},
            }
        }

    def _pinned(self, ctx: PayloadContext) -> tuple[list[_Root], list[TrustedKey]]:
        """The run's pinned trust material, read again; a root or key that changed since planning is refused."""
        roots = candidate_roots(ctx.home)
        keys = TrustStore(Home(ctx.home)).keys(tenant=ctx.spec.tenant) if ctx.home is not None else []
        pinned = ctx.spec.options.get("trustMaterial")
        if pinned is None:  # a run planned without options (e.g. by an older planner): take what is there now
            return roots, keys
        by_root = {r.name: r for r in roots}
        for name, digest in sorted(pinned["roots"].items()):
            root = by_root.get(name)
            if root is None or hashlib.sha256(root.data).hexdigest() != digest:
                raise IntegrityError(
                    f"the Sigstore trusted root {name!r} changed since the run was planned",
                    path=name,
                    hint="plan a new run (`stella export run`) to ship the current trust material",
                )
        by_key = {k.label: k for k in keys}
        chosen_keys = []
        for label, keyid in sorted(pinned["keys"].items()):
            key = by_key.get(label)
            if key is not None and key.keyid != keyid:
                raise IntegrityError(
                    f"trusted key {label!r} changed since the run was planned",
                    path=label,
                    hint="plan a new run (`stella export run`) to ship the current trust material",
                )
            if key is not None:
                chosen_keys.append(key)
        return [r for r in roots if r.name in pinned["roots"]], chosen_keys

    def write_payload(self, ctx: PayloadContext) -> dict[str, int]:
        """Write the documents, index files, trust material, log segments and the signed attestation manifest."""
        spec = ctx.spec
        if spec.options.get("encryptionRecipients") or spec.profile_config.get("encryptionRecipients"):
            raise UsageError(
                "an attestation bundle cannot be encrypted",
                hint="its receiver verifies every attestation before import; Sigstore bundles are public log data",
            )
        if ctx.signer is None:
            raise UsageError("an attestation bundle needs the run's signer for attestations/manifest.dsse.json")
        roots, keys = self._pinned(ctx)
        entries: list[_Entry] = []
        documents = 0
        for sha, _fmt, media_type, doc_id in ctx.query.execute(_DOCUMENTS_SQL, [spec.run_id, spec.tenant]).fetchall():
            ctx.input_done(doc_id)
            data = ctx.raw_bytes(sha)
            written = ctx.writer.add_bytes(f"{DOCUMENTS}{sha}.json", data, media_type)
            if written.sha256 != sha:
                raise IntegrityError("the stored bytes of an attestation differ from its digest", path=sha)
            documents += 1
            rows = ctx.query.execute(_ATTESTATIONS_SQL, [spec.tenant, sha]).fetchall()
            subjects = ctx.query.execute(_SUBJECTS_SQL, [spec.tenant, sha]).fetchall()
            try:
                doc = json.loads(data)
            except (ValueError, UnicodeDecodeError):
                doc = None
            entries.extend(_entries(sha, doc, rows, subjects))

        used_roots: dict[str, _Root] = {}
        used_keys: dict[str, TrustedKey] = {}
        certificates = 0
        for entry in entries:
            if entry.signed is None:
                continue
            if entry.record["method"] == "keyless":
                for root in roots:
                    if root.log_ids & entry.log_ids:
                        used_roots.setdefault(root.name, root)
                        entry.record["trustedRoot"] = f"{SIGSTORE_ROOTS}{root.name}.json"
                        break
                leaf = signing_certificate(entry.signed.get("verificationMaterial") or {})
                if leaf is not None:
                    issuer_root, chain = _chain(leaf, roots)
                    if issuer_root is not None:
                        used_roots.setdefault(issuer_root.name, issuer_root)
                        entry.record.setdefault("trustedRoot", f"{SIGSTORE_ROOTS}{issuer_root.name}.json")
                    pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in [leaf, *chain])
                    path = f"{CERTIFICATES}{entry.document}-{entry.index}.pem"
                    ctx.writer.add_bytes(path, pem, "application/pem-certificate-chain")
                    entry.record["certificateChain"] = path
                    certificates += 1
            elif entry.record["method"] == "key":
                signers = _signing_keys(entry.signed, keys)
                for key in signers:
                    used_keys.setdefault(key.label, key)
                if signers:
                    entry.record["keys"] = [f"{KEYS}{k.label}.pem" for k in signers]
        for name in sorted(used_roots):
            ctx.writer.add_bytes(f"{SIGSTORE_ROOTS}{name}.json", used_roots[name].data, "application/json")
        for label in sorted(used_keys):
            ctx.writer.add_bytes(f"{KEYS}{label}.pem", used_keys[label].public_pem, "application/x-pem-file")

        tlog_count = 0
        checkpoints: dict[tuple[str, str], dict[str, Any]] = {}
        with ctx.writer.jsonl(INDEX) as write_index, ctx.writer.jsonl(TLOG_ENTRIES) as write_tlog:
            for entry in entries:
                segments = list(_tlog(entry)) if entry.signed is not None else []
                entry.record["tlogEntries"] = len(segments)
                write_index(entry.record)
                for record, checkpoint in segments:
                    write_tlog(record)
                    tlog_count += 1
                    if checkpoint is not None:
                        checkpoints.setdefault((str(checkpoint["logId"]), checkpoint["envelope"]), checkpoint)
        with ctx.writer.jsonl(TLOG_CHECKPOINTS) as write_checkpoint:
            for found in sorted(checkpoints):
                write_checkpoint(checkpoints[found])
        subject_rows = sorted(
            (
                (algorithm, digest, s["name"], e.document, e.index)
                for e in entries
                for s in e.record["subjects"]
                for algorithm, digest in s["digest"].items()
            )
        )
        with ctx.writer.jsonl(SUBJECTS) as write_subject:
            for algorithm, digest, name, document, index in subject_rows:
                write_subject(
                    {"algorithm": algorithm, "digest": digest, "name": name, "document": document, "entryIndex": index}
                )

        methods = [e.record["method"] for e in entries]
        counts = {
            "attestations": len(entries),
            "attestationDocuments": documents,
            "keyless": methods.count("keyless"),
            "keyBased": methods.count("key"),
            "unsigned": methods.count("unsigned"),
            "trustedRoots": len(used_roots),
            "trustedKeys": len(used_keys),
            "certificateChains": certificates,
            "tlogEntries": tlog_count,
        }
        files = sorted(ctx.writer.files.values(), key=lambda f: f.path)
        statement = {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": f.path, "digest": {"sha256": f.sha256}} for f in files],
            "predicateType": MANIFEST_PREDICATE,
            "predicate": {
                "tenant": spec.tenant,
                "runId": spec.run_id,
                "createdAt": spec.created_at_text,
                "counts": counts,
                "index": INDEX,
                "subjects": SUBJECTS,
                "trustedRoots": [
                    {"path": f"{SIGSTORE_ROOTS}{n}.json", "sha256": hashlib.sha256(used_roots[n].data).hexdigest()}
                    for n in sorted(used_roots)
                ],
                "trustedKeys": [{"path": f"{KEYS}{k}.pem", "keyid": used_keys[k].keyid} for k in sorted(used_keys)],
                "signing": {"algorithm": str(ctx.signer.algorithm), "keyid": ctx.signer.keyid},
            },
        }
        body = canonical_json(statement)
        ctx.writer.add_bytes(MANIFEST, body, IN_TOTO)
        envelope = dsse_envelope(ctx.signer, IN_TOTO, body)
        ctx.writer.add_bytes(MANIFEST_DSSE, canonical_json(envelope), DSSE_ENVELOPE)
        bundle = sigstore_bundle_v03(envelope, ctx.signer)
        ctx.writer.add_bytes(MANIFEST_SIGSTORE, canonical_json(bundle), SIGSTORE_BUNDLE_V03)
        ctx.extra_manifest["attestations"] = {
            "manifest": MANIFEST,
            "index": INDEX,
            "count": len(entries),
            "trustedRoots": sorted(f"{SIGSTORE_ROOTS}{n}.json" for n in used_roots),
        }
        return counts


PROFILE = AttestationBundle()
