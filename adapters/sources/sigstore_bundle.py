"""Sigstore bundles (v0.1, v0.2, v0.3) and npm registry attestation documents that carry them.

The vendored ``Bundle.schema.json`` cannot be used: it was generated with snake_case ``oneOf``
names that real (camelCase) bundles never match, and it refuses the explicit ``null`` fields npm
writes. The checks below follow ``protos/sigstore_bundle.proto`` and the version rules the
reference clients (sigstore-go, sigstore-python) apply before verifying:

* ``verificationMaterial`` holds exactly one of ``publicKey``, ``x509CertificateChain`` (v0.1
  and v0.2 only, at least one certificate) or ``certificate`` (v0.3 only);
* v0.1 bundles carry exactly one transparency-log entry, with an inclusion promise; from v0.2
  every entry carries an inclusion proof with its checkpoint (early v0.1 proofs may lack one);
* exactly one of ``messageSignature`` and ``dsseEnvelope``; every base64 field decodes strictly;
  the DSSE envelope and its in-toto payload pass the ``dsse`` format's checks.

Signatures, certificates and log proofs are verified later, not here: a bundle that merely fails
verification imports as an unverified attestation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from adapters.sources._attest import (
    Where,
    check_envelope,
    content_id,
    decode_base64,
    read_envelope_payload,
    subject_label,
)
from core.contract.media_types import SIGSTORE_BUNDLE_PREFIX
from core.errors import SchemaError
from core.records import Attestation, AttestationSubject, DocumentKind, ParsedDocument
from core.sources import Candidate, SourceFormat

SUPPORTED_VERSIONS = ("0.1", "0.2", "0.3")
_MEDIA_TYPE = re.compile(
    r"application/vnd\.dev\.sigstore\.bundle(?:\+json;version=(?P<old>[^;\s]+)|\.v(?P<new>[^+\s]+)\+json)"
)
_BUNDLE_KEYS = frozenset({"mediaType", "verificationMaterial", "messageSignature", "dsseEnvelope"})
_KEY_MATERIAL = ("publicKey", "x509CertificateChain", "certificate")
# proto HashAlgorithm names -> in-toto DigestSet names, so artifact digests compare across formats.
_HASHES: Mapping[str, tuple[str, int]] = MappingProxyType(
    {
        "SHA2_256": ("sha256", 32),
        "SHA2_384": ("sha384", 48),
        "SHA2_512": ("sha512", 64),
        "SHA3_256": ("sha3_256", 32),
        "SHA3_384": ("sha3_384", 48),
    }
)
_INT64 = re.compile(r"-?[0-9]+")


def _present(obj: dict[str, Any], key: str) -> bool:
    # npm writes absent messages as explicit nulls (e.g. "inclusionProof": null).
    return obj.get(key) is not None


def _obj(value: Any, where: Where, sub: str, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise where.error(f"{what} must be an object", sub)
    return value


def _int64(obj: dict[str, Any], key: str, where: Where, sub: str, *, required: bool) -> None:
    value = obj.get(key)
    if value is None:
        if required:
            raise where.error(f"{key} is required", f"{sub}/{key}")
        return
    # proto3 JSON writes int64 as a decimal string, but numbers are accepted too.
    if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and _INT64.fullmatch(value))):
        raise where.error(f"{key} must be an integer, got {value!r}", f"{sub}/{key}")


def _string(obj: dict[str, Any], key: str, where: Where, sub: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise where.error(f"{key} is required and must be a non-empty string", f"{sub}/{key}")
    return value


def bundle_version(media_type: Any, where: Where) -> str:
    """The bundle version from either media type spelling, or an error naming what is wrong."""
    if not isinstance(media_type, str) or not media_type.startswith(SIGSTORE_BUNDLE_PREFIX):
        raise where.error(
            f"mediaType {media_type!r} is not a Sigstore bundle media type "
            f"(expected {SIGSTORE_BUNDLE_PREFIX}.v0.3+json or {SIGSTORE_BUNDLE_PREFIX}+json;version=0.x)",
            "/mediaType",
        )
    match = _MEDIA_TYPE.fullmatch(media_type)
    if match is None:
        raise where.error(f"unrecognised Sigstore bundle media type {media_type!r}", "/mediaType", unsupported=True)
    version = match.group("old") or match.group("new")
    if version not in SUPPORTED_VERSIONS:
        raise where.error(
            f"Sigstore bundle version {version} is not supported (supported: {', '.join(SUPPORTED_VERSIONS)})",
            "/mediaType",
            unsupported=True,
        )
    return version


def _check_key_material(vm: dict[str, Any], version: str, where: Where) -> list[str]:
    found = [k for k in _KEY_MATERIAL if _present(vm, k)]
    if len(found) != 1:
        what = "none" if not found else " and ".join(found)
        raise where.error(
            "verificationMaterial must hold exactly one of publicKey, x509CertificateChain "
            f"or certificate; found {what}",
            "/verificationMaterial",
        )
    kind, sub = found[0], f"/verificationMaterial/{found[0]}"
    material = _obj(vm[kind], where, sub, kind)
    if kind == "publicKey":
        hint = material.get("hint")
        if hint is not None and not isinstance(hint, str):
            raise where.error("publicKey.hint must be a string", sub + "/hint")
        return [hint] if hint else []
    if kind == "certificate":
        if version != "0.3":
            raise where.error(f"a single certificate is only allowed from bundle v0.3 (this is v{version})", sub)
        decode_base64(material.get("rawBytes"), where.at(sub + "/rawBytes"), "the certificate")
        return []
    if version == "0.3":
        raise where.error("a v0.3 bundle must use certificate, not x509CertificateChain", sub)
    certificates = material.get("certificates")
    if not isinstance(certificates, list) or not certificates:
        raise where.error("x509CertificateChain has no certificates", sub + "/certificates")
    for i, cert in enumerate(certificates):
        cert_sub = f"{sub}/certificates/{i}"
        decode_base64(
            _obj(cert, where, cert_sub, "a certificate").get("rawBytes"),
            where.at(cert_sub + "/rawBytes"),
            "the certificate",
        )
    return []


def _check_tlog_entry(entry: Any, version: str, where: Where, sub: str) -> None:
    entry = _obj(entry, where, sub, "a transparency log entry")
    _int64(entry, "logIndex", where, sub, required=False)
    _int64(entry, "integratedTime", where, sub, required=False)
    log_id = _obj(entry.get("logId"), where, sub + "/logId", "logId")
    decode_base64(log_id.get("keyId"), where.at(sub + "/logId/keyId"), "the log ID")
    kind_version = _obj(entry.get("kindVersion"), where, sub + "/kindVersion", "kindVersion")
    _string(kind_version, "kind", where, sub + "/kindVersion")
    _string(kind_version, "version", where, sub + "/kindVersion")
    if _present(entry, "inclusionPromise"):
        promise = _obj(entry["inclusionPromise"], where, sub + "/inclusionPromise", "inclusionPromise")
        decode_base64(
            promise.get("signedEntryTimestamp"),
            where.at(sub + "/inclusionPromise/signedEntryTimestamp"),
            "the signed entry timestamp",
        )
    elif version == "0.1":
        raise where.error("a v0.1 bundle's log entry must carry an inclusionPromise", sub)
    if _present(entry, "inclusionProof"):
        proof_sub = sub + "/inclusionProof"
        proof = _obj(entry["inclusionProof"], where, proof_sub, "inclusionProof")
        _int64(proof, "logIndex", where, proof_sub, required=False)
        _int64(proof, "treeSize", where, proof_sub, required=True)
        decode_base64(proof.get("rootHash"), where.at(proof_sub + "/rootHash"), "the root hash")
        hashes = proof.get("hashes", [])
        if not isinstance(hashes, list):
            raise where.error("hashes must be a list", proof_sub + "/hashes")
        for i, value in enumerate(hashes):
            decode_base64(value, where.at(f"{proof_sub}/hashes/{i}"), "the proof hash")
        # Early v0.1 clients (e.g. CPython's 3.12.5 release bundle) wrote proofs without a
        # checkpoint; from v0.2 the proof is the only log evidence and needs its signed tree head.
        if _present(proof, "checkpoint"):
            checkpoint = _obj(proof["checkpoint"], where, proof_sub + "/checkpoint", "checkpoint")
            _string(checkpoint, "envelope", where, proof_sub + "/checkpoint")
        elif version != "0.1":
            raise where.error(
                "the inclusionProof has no checkpoint (the signed tree head it proves against)",
                proof_sub + "/checkpoint",
            )
    elif version != "0.1":
        raise where.error(f"a v{version} bundle's log entry must carry an inclusionProof", sub)
    if _present(entry, "canonicalizedBody"):
        decode_base64(entry["canonicalizedBody"], where.at(sub + "/canonicalizedBody"), "the canonicalized body")


def _check_verification_material(bundle: dict[str, Any], version: str, where: Where) -> list[str]:
    vm = _obj(bundle.get("verificationMaterial"), where, "/verificationMaterial", "verificationMaterial")
    hints = _check_key_material(vm, version, where)
    entries = vm.get("tlogEntries") or []
    if not isinstance(entries, list):
        raise where.error("tlogEntries must be a list", "/verificationMaterial/tlogEntries")
    if version == "0.1" and len(entries) != 1:
        raise where.error(
            f"a v0.1 bundle must carry exactly one transparency log entry, found {len(entries)}",
            "/verificationMaterial/tlogEntries",
        )
    for i, entry in enumerate(entries):
        _check_tlog_entry(entry, version, where, f"/verificationMaterial/tlogEntries/{i}")
    if _present(vm, "timestampVerificationData"):
        sub = "/verificationMaterial/timestampVerificationData"
        tsd = _obj(vm["timestampVerificationData"], where, sub, "timestampVerificationData")
        stamps = tsd.get("rfc3161Timestamps") or []
        if not isinstance(stamps, list):
            raise where.error("rfc3161Timestamps must be a list", sub + "/rfc3161Timestamps")
        for i, stamp in enumerate(stamps):
            stamp_sub = f"{sub}/rfc3161Timestamps/{i}"
            decode_base64(
                _obj(stamp, where, stamp_sub, "an RFC 3161 timestamp").get("signedTimestamp"),
                where.at(stamp_sub + "/signedTimestamp"),
                "the RFC 3161 timestamp",
            )
    return hints


def _message_signature(value: Any, where: Where) -> AttestationSubject:
    sig = _obj(value, where, "/messageSignature", "messageSignature")
    decode_base64(sig.get("signature"), where.at("/messageSignature/signature"), "the signature")
    md = _obj(sig.get("messageDigest"), where, "/messageSignature/messageDigest", "messageDigest")
    algorithm = md.get("algorithm")
    if not isinstance(algorithm, str) or algorithm not in _HASHES:
        raise where.error(
            f"unknown message digest algorithm {algorithm!r}", "/messageSignature/messageDigest/algorithm"
        )
    name, size = _HASHES[algorithm]
    digest = decode_base64(md.get("digest"), where.at("/messageSignature/messageDigest/digest"), "the message digest")
    if len(digest) != size:
        raise where.error(
            f"the {algorithm} message digest is {len(digest)} bytes, expected {size}",
            "/messageSignature/messageDigest/digest",
        )
    return AttestationSubject(name="", digest_algorithm=name, digest=digest.hex())


@dataclass(slots=True)
class CheckedBundle:
    """One structurally checked bundle, normalized."""

    attestation: Attestation
    version: str
    document_id: str
    subject: str
    warnings: list[str] = field(default_factory=list)


def check_bundle(bundle: Any, where: Where, entry_index: int = 0) -> CheckedBundle:
    """Check one bundle and normalize it into an attestation record."""
    bundle = _obj(bundle, where, "", "a Sigstore bundle")
    media_type = bundle.get("mediaType")
    version = bundle_version(media_type, where)
    for key in bundle:
        if key not in _BUNDLE_KEYS:
            raise where.error(f"unexpected field {key!r} in a Sigstore bundle", f"/{key}")
    hints = _check_verification_material(bundle, version, where)
    content = [k for k in ("messageSignature", "dsseEnvelope") if _present(bundle, k)]
    if len(content) != 1:
        found = "neither" if not content else "both"
        raise where.error(f"a bundle must hold exactly one of messageSignature and dsseEnvelope; found {found}")
    if content[0] == "messageSignature":
        subject = _message_signature(bundle["messageSignature"], where)
        label = f"{subject.digest_algorithm}:{subject.digest}"
        att = Attestation(
            envelope_kind="sigstore-bundle",
            entry_index=entry_index,
            media_type=media_type,
            signature_count=1,
            keyids=hints,
            subjects=[subject],
        )
        return CheckedBundle(att, version, label, label)
    env_where = where.at("/dsseEnvelope")
    env = check_envelope(bundle["dsseEnvelope"], env_where)
    info = read_envelope_payload(env, env_where)
    warnings: list[str] = []
    if env.signature_count != 1:
        # Verification must refuse this (bundle DSSE envelopes carry exactly one signature), but
        # storing it is harmless and keeps the evidence.
        warnings.append(
            f"the DSSE envelope carries {env.signature_count} signatures; Sigstore verification requires one"
        )
    att = Attestation(
        envelope_kind="sigstore-bundle",
        entry_index=entry_index,
        media_type=media_type,
        payload_type=env.payload_type,
        statement_type=info.statement_type,
        predicate_type=info.predicate_type,
        signature_count=env.signature_count,
        keyids=env.keyids + [h for h in hints if h not in env.keyids],
        subjects=info.subjects,
    )
    return CheckedBundle(att, version, content_id(env.payload), subject_label(info, env.payload_type), warnings)


class SigstoreBundleFormat:
    """The ``sigstore-bundle`` source format (also npm's ``{"attestations": [...]}`` documents)."""

    name = "sigstore-bundle"
    kind = DocumentKind.ATTESTATION
    media_type = SIGSTORE_BUNDLE_PREFIX + ".v0.3+json"
    streams = False

    def sniff(self, candidate: Candidate) -> bool:
        """A bundle media type, a bundle-shaped object, or an npm attestations document."""
        doc = candidate.json
        if doc is None:
            # A truncated bundle is still recognisable by its opening bytes; claiming it lets
            # parse report the JSON error instead of "unrecognised format".
            head = candidate.data[:256]
            return head.lstrip().startswith(b"{") and SIGSTORE_BUNDLE_PREFIX.encode() in head
        if not isinstance(doc, dict):
            return False
        if str(doc.get("mediaType", "")).startswith(SIGSTORE_BUNDLE_PREFIX):
            return True
        # Claim bundle-shaped objects with a wrong media type so that parse names the problem.
        if "verificationMaterial" in doc and ("messageSignature" in doc or "dsseEnvelope" in doc):
            return True
        items = doc.get("attestations")
        return isinstance(items, list) and bool(items) and isinstance(items[0], dict) and "bundle" in items[0]

    def parse(self, candidate: Candidate) -> ParsedDocument:
        """Check the bundle (or every bundle of an npm document) and record its attestations."""
        doc = candidate.json
        if doc is None:
            raise SchemaError(f"not a readable Sigstore bundle: {candidate.json_error}", path=candidate.path)
        where = Where(candidate.path)
        if isinstance(doc, dict) and "attestations" in doc and "mediaType" not in doc:
            return self._parse_npm(doc, where)
        checked = check_bundle(doc, where)
        return ParsedDocument(
            format=self.name,
            kind=self.kind,
            media_type=str(checked.attestation.media_type),
            document_id=checked.document_id,
            subject=checked.subject,
            format_version=checked.version,
            attestations=[checked.attestation],
            warnings=checked.warnings,
        )

    def _parse_npm(self, doc: dict[str, Any], where: Where) -> ParsedDocument:
        items = doc["attestations"]
        if not isinstance(items, list) or not items:
            raise where.error("attestations must be a non-empty list of {predicateType, bundle}", "/attestations")
        checked: list[CheckedBundle] = []
        for i, item in enumerate(items):
            sub = f"/attestations/{i}"
            item = _obj(item, where, sub, "an npm attestation")
            declared = item.get("predicateType")
            if not isinstance(declared, str) or not declared:
                raise where.error("predicateType is required", sub + "/predicateType")
            one = check_bundle(item.get("bundle"), where.at(sub + "/bundle"), i)
            stated = one.attestation.predicate_type
            if stated is not None and stated != declared:
                raise where.error(
                    f"predicateType {declared!r} does not match the bundle's Statement ({stated!r})",
                    sub + "/predicateType",
                )
            checked.append(one)
        return ParsedDocument(
            format=self.name,
            kind=self.kind,
            # The container is the npm registry's JSON response, not itself a bundle; each
            # attestation keeps its bundle's media type.
            media_type="application/json",
            document_id=checked[0].document_id,
            subject=checked[0].subject,
            attestations=[one.attestation for one in checked],
            warnings=[f"attestation {i}: {w}" for i, one in enumerate(checked) for w in one.warnings],
        )


SIGSTORE_BUNDLE = SigstoreBundleFormat()
FORMATS: tuple[SourceFormat, ...] = (SIGSTORE_BUNDLE,)
