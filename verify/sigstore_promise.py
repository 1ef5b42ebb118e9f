"""Keyless Sigstore bundles that the specification accepts and sigstore-python refuses, verified offline.

sigstore-python (the verifier :mod:`verify.attest_sigstore` uses first) refuses three kinds of valid bundles:

* a v0.1 bundle whose log entry has an inclusion proof without a checkpoint, or no proof at all. The bundle
  specification makes the signed entry timestamp (SET, Rekor's "inclusion promise") the required proof for v0.1
  and the inclusion proof optional; PyPI's and CPython's 2024 bundles are of this kind;
* an ``intoto/0.0.2`` log entry (npm provenance made by sigstore-js 2.x): sigstore-python takes the integrated
  time only from ``dsse`` and ``hashedrekord`` entries;
* a trusted root whose certificate authority names no ``commonName`` (a private Sigstore instance such as
  sigstore-go's test scaffolding), which its models refuse to load.

This module checks those bundles with the same steps, on ``cryptography`` and the trusted root alone:

1. the signed entry timestamp, with the key of the log the trusted root lists (valid at the integrated time),
   over the RFC 8785 canonical JSON of body, integrated time, log id and log index; this makes the integrated
   time a verified signing time;
2. an inclusion proof, when present, is recomputed (RFC 9162) up to its root hash; its checkpoint, when present,
   must be signed by the log key and name that root hash and tree size (required for bundles after v0.1);
3. the signing certificate chains to a certificate authority of the trusted root valid at the signing time,
   every certificate of the path valid at that time, with CA constraints on issuers;
4. a signed certificate timestamp of the certificate verifies with a CT log of the trusted root;
5. the certificate is a code-signing certificate valid at the signing time;
6. the signature verifies with the certificate's key (over the artifact digest, or the DSSE PAE);
7. the log entry's body describes exactly this signature, certificate and content (CVE-2022-36056).

RFC 3161 timestamps are not used here: each of these bundles carries a SET, which is the signed time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import rfc8785
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import ExtendedKeyUsageOID

from core.errors import BadInputError, SignatureError, UnsupportedFormatError
from core.signing import dsse_verifies
from core.x509_path import CERTIFICATE_ERRORS, issued_by, issuer_path
from core.x509_path import signing_certificate as core_signing_certificate

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: The hash ECDSA pairs with each curve of a Fulcio certificate's key (DSSE signatures sign the PAE with it).
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "secp256r1": hashes.SHA256,
    "secp384r1": hashes.SHA384,
    "secp521r1": hashes.SHA512,
}


@dataclass
class PromiseResult:
    """What a verified bundle signed, by whom, when, and which log checks were made."""

    certificate: x509.Certificate
    signed_at: datetime
    payload_type: str | None = None  # a DSSE bundle
    payload: bytes | None = None
    digest: bytes | None = None  # a message-signature bundle: the SHA-256 of the artifact
    log_checks: list[str] = field(default_factory=list)


def _obj(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one: a bundle's optional objects may be anything."""
    return value if isinstance(value, dict) else {}


def sigstore_python_refuses(doc: dict[str, Any], version: str) -> str | None:
    """Why sigstore-python would refuse this bundle although the specification accepts it, or None."""
    entries = _obj(doc.get("verificationMaterial")).get("tlogEntries") or []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        if _obj(entry.get("kindVersion")).get("kind") == "intoto":
            return "an intoto/0.0.2 log entry"
        proof = entry.get("inclusionProof")
        if version == "0.1" and (not isinstance(proof, dict) or not proof.get("checkpoint")):
            return "a v0.1 bundle proven by its signed entry timestamp"
    return None


def verify_promise(
    doc: dict[str, Any], root: dict[str, Any], *, version: str, path: str, artifact: str | None = None
) -> PromiseResult:
    """Verify a keyless bundle against one trusted root (parsed JSON); raise on the first failed step.

    ``artifact``, a SHA-256 hex digest, must then be the digest a message signature covers.
    """
    material = doc.get("verificationMaterial") or {}
    leaf = signing_certificate(material, path)
    entries = material.get("tlogEntries") or []
    if not isinstance(entries, list) or len(entries) != 1 or not isinstance(entries[0], dict):
        raise BadInputError("expected exactly one log entry in the bundle", path=path)
    entry = entries[0]
    try:
        body_b64 = str(entry["canonicalizedBody"])
        body_raw = base64.b64decode(body_b64, validate=True)
        log_index = int(entry["logIndex"])
        log_id = base64.b64decode(str(entry["logId"]["keyId"]), validate=True)
        signed_at = _EPOCH + timedelta(seconds=int(entry["integratedTime"]))
        set_sig = base64.b64decode(str(entry["inclusionPromise"]["signedEntryTimestamp"]), validate=True)
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise BadInputError(
            f"the log entry lacks what an offline check needs (body, log id and index, integrated time, "
            f"signed entry timestamp): {type(exc).__name__} {exc}",
            path=path,
        ) from None

    result = PromiseResult(leaf, signed_at)
    log_key = _log_key(root, "tlogs", log_id, signed_at, path)
    promise = rfc8785.dumps(
        {"body": body_b64, "integratedTime": int(entry["integratedTime"]), "logID": log_id.hex(), "logIndex": log_index}
    )
    if not _verifies(log_key, set_sig, promise, hashes.SHA256()):
        raise SignatureError(
            "invalid log entry: the signed entry timestamp does not verify with the log's key", path=path
        )
    result.log_checks.append("signed entry timestamp")
    _inclusion(entry.get("inclusionProof"), body_raw, log_key, log_id, version, path, result)

    chain = _chain(leaf, root, signed_at, path)
    _sct(leaf, chain[0], root, path)
    _code_signing(leaf, signed_at, path)

    body = _json(body_raw, "the log entry body", path)
    kind = entry.get("kindVersion") or {}
    if body.get("kind") != kind.get("kind") or body.get("apiVersion") != kind.get("version"):
        raise SignatureError("the log entry's body is not of the kind it claims", path=path)
    if doc.get("dsseEnvelope") is not None:
        _dsse(doc["dsseEnvelope"], body, leaf, path, result)
    elif doc.get("messageSignature") is not None:
        _message(doc["messageSignature"], body, leaf, path, artifact, result)
    else:
        raise BadInputError("the bundle carries neither dsseEnvelope nor messageSignature", path=path)
    return result


# -- the log ---------------------------------------------------------------------------------------------------


def _log_key(root: dict[str, Any], section: str, log_id: bytes, at: datetime, path: str) -> ec.EllipticCurvePublicKey:
    """The key of the log ``log_id`` in ``root[section]``, which must be valid at ``at``."""
    wanted = base64.b64encode(log_id).decode()
    for log in root.get(section) or []:
        if _obj(_obj(log).get("logId")).get("keyId") != wanted:
            continue
        public = log.get("publicKey") or {}
        if not _valid_for(public.get("validFor"), at):
            raise SignatureError(f"the log {wanted} of the trusted root was not valid at {at.isoformat()}", path=path)
        key = serialization.load_der_public_key(base64.b64decode(public.get("rawBytes", "")))
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise UnsupportedFormatError(f"the log {wanted} has a key type this verifier does not take", path=path)
        return key
    what = "transparency log" if section == "tlogs" else "CT log"
    raise SignatureError(f"the {what} {wanted} is not in the trusted root", path=path)


def _inclusion(
    proof: Any,
    body: bytes,
    log_key: ec.EllipticCurvePublicKey,
    log_id: bytes,
    version: str,
    path: str,
    result: PromiseResult,
) -> None:
    """Recompute an inclusion proof to its root hash, and check its checkpoint when there is one."""
    if not isinstance(proof, dict):
        if version != "0.1":
            raise BadInputError("the log entry has no inclusion proof (required after bundle v0.1)", path=path)
        return
    try:
        index, size = int(proof["logIndex"]), int(proof["treeSize"])
        root_hash = base64.b64decode(str(proof["rootHash"]), validate=True)
        path_hashes = [base64.b64decode(str(h), validate=True) for h in proof.get("hashes") or []]
    except (KeyError, TypeError, ValueError, binascii.Error):
        raise BadInputError("the inclusion proof is malformed", path=path) from None
    leaf = hashlib.sha256(b"\x00" + body).digest()
    if _merkle_root(index, size, leaf, path_hashes) != root_hash:
        raise SignatureError("invalid log entry: the inclusion proof does not lead to its root hash", path=path)
    checkpoint = _obj(proof.get("checkpoint")).get("envelope")
    if not checkpoint:
        if version != "0.1":
            raise BadInputError("the inclusion proof has no checkpoint (required after bundle v0.1)", path=path)
        result.log_checks.append("inclusion proof (no checkpoint: its root hash is not signed)")
        return
    _checkpoint(str(checkpoint), log_key, log_id, root_hash, size, path)
    result.log_checks.append("inclusion proof and signed checkpoint")


def _merkle_root(index: int, size: int, leaf: bytes, proof: list[bytes]) -> bytes | None:
    """The root hash an inclusion proof leads to (RFC 9162 section 2.1.3.2), or None if it cannot."""
    if not 0 <= index < size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def _checkpoint(
    note: str, log_key: ec.EllipticCurvePublicKey, log_id: bytes, root_hash: bytes, size: int, path: str
) -> None:
    """A signed note (origin, tree size, root hash, then ``— name base64(hint || signature)`` lines): a line whose
    key hint is the log's (the first four bytes of its log id) must carry a signature by the log's key."""
    text, _, signatures = note.partition("\n\n")
    lines = text.split("\n")
    try:
        noted_size, noted_root = int(lines[1]), base64.b64decode(lines[2], validate=True)
    except (IndexError, ValueError, binascii.Error):
        raise BadInputError("the checkpoint is malformed", path=path) from None
    if noted_size != size or noted_root != root_hash:
        raise SignatureError("invalid log entry: the checkpoint is for another tree than the proof", path=path)
    signed = (text + "\n").encode()
    for line in signatures.splitlines():
        if not line.startswith("\u2014 "):
            continue
        try:
            raw = base64.b64decode(line.rsplit(" ", 1)[-1], validate=True)
        except (ValueError, binascii.Error):
            continue
        if len(raw) > 4 and raw[:4] == log_id[:4] and _verifies(log_key, raw[4:], signed, hashes.SHA256()):
            return
    raise SignatureError("invalid log entry: the checkpoint is not signed by the log's key", path=path)


# -- the certificate --------------------------------------------------------------------------------------------


def signing_certificate(material: dict[str, Any], path: str) -> x509.Certificate:
    """The leaf certificate of a bundle's verification material; ``BadInputError`` when there is none."""
    leaf = core_signing_certificate(material)
    if leaf is None:
        raise BadInputError("the bundle has no signing certificate (or it is not DER X.509)", path=path)
    return leaf


#: A trusted root's CA entry that is not an object of base64 DER certificates is skipped.
_CA_ERRORS: tuple[type[Exception], ...] = (KeyError, binascii.Error, *CERTIFICATE_ERRORS)


def _chain(leaf: x509.Certificate, root: dict[str, Any], at: datetime, path: str) -> list[x509.Certificate]:
    """The CA certificates (issuer first) of the trusted root's authority that issued ``leaf``, valid at ``at``."""
    for ca in root.get("certificateAuthorities") or []:
        if not _valid_for(_obj(ca).get("validFor"), at):
            continue
        try:
            certs = [
                x509.load_der_x509_certificate(base64.b64decode(c["rawBytes"]))
                for c in (_obj(ca.get("certChain")).get("certificates") or [])
            ]
        except _CA_ERRORS:
            continue
        holds = bool(certs) and _path_holds(leaf, certs, at)
        if holds:
            return certs
    raise SignatureError(
        f"the signing certificate does not chain to a certificate authority of the trusted root at the signing "
        f"time {at.isoformat()}",
        path=path,
    )


def _path_holds(leaf: x509.Certificate, certs: list[x509.Certificate], at: datetime) -> bool:
    """``certs`` (issuer first) is ``leaf``'s whole path to a self-signed CA, each one a CA valid at ``at``."""
    if issuer_path(leaf, certs) != certs or not issued_by(certs[-1], certs[-1]):
        return False
    for issuer in certs:
        if not issuer.not_valid_before_utc <= at <= issuer.not_valid_after_utc:
            return False
        try:
            if not issuer.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
                return False
        except x509.ExtensionNotFound:
            return False
    return True


def _sct(leaf: x509.Certificate, issuer: x509.Certificate, root: dict[str, Any], path: str) -> None:
    """At least one embedded SCT must verify with a CT log of the trusted root (RFC 6962 section 3.2)."""
    try:
        scts = leaf.extensions.get_extension_for_class(x509.PrecertificateSignedCertificateTimestamps).value
    except x509.ExtensionNotFound:
        raise SignatureError("the signing certificate carries no signed certificate timestamp", path=path) from None
    issuer_key_hash = hashlib.sha256(
        issuer.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    ).digest()
    tbs = leaf.tbs_precertificate_bytes
    failures = []
    for sct in scts:
        millis = (sct.timestamp.replace(tzinfo=UTC) - _EPOCH) // timedelta(milliseconds=1)
        try:
            key = _log_key(root, "ctlogs", sct.log_id, sct.timestamp.replace(tzinfo=UTC), path)
        except SignatureError as exc:
            failures.append(exc.message)
            continue
        signed = (
            b"\x00\x00"
            + millis.to_bytes(8, "big")
            + b"\x00\x01"
            + issuer_key_hash
            + len(tbs).to_bytes(3, "big")
            + tbs
            + len(sct.extension_bytes).to_bytes(2, "big")
            + sct.extension_bytes
        )
        algorithm = sct.signature_hash_algorithm
        if isinstance(algorithm, hashes.HashAlgorithm) and _verifies(key, sct.signature, signed, algorithm):
            return
        failures.append(f"the SCT of log {base64.b64encode(sct.log_id).decode()} does not verify")
    raise SignatureError(f"failed to verify SCT on signing certificate: {'; '.join(failures) or 'no SCT'}", path=path)


def _code_signing(leaf: x509.Certificate, at: datetime, path: str) -> None:
    if not leaf.not_valid_before_utc <= at <= leaf.not_valid_after_utc:
        raise SignatureError(
            f"invalid signing cert: not valid at the signing time {at.isoformat()} (valid "
            f"{leaf.not_valid_before_utc.isoformat()} to {leaf.not_valid_after_utc.isoformat()})",
            path=path,
        )
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
        extended = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        raise SignatureError("the signing certificate lacks key usage extensions", path=path) from None
    if not usage.digital_signature or ExtendedKeyUsageOID.CODE_SIGNING not in extended:
        raise SignatureError("the signing certificate is not a code-signing certificate", path=path)


# -- the signature and the log entry's body ---------------------------------------------------------------------


def _message(
    signature: Any, body: dict[str, Any], leaf: x509.Certificate, path: str, artifact: str | None, result: PromiseResult
) -> None:
    try:
        digest = base64.b64decode(str(signature["messageDigest"]["digest"]), validate=True)
        sig = base64.b64decode(str(signature["signature"]), validate=True)
    except (KeyError, TypeError, ValueError, binascii.Error):
        raise BadInputError("the message signature is malformed (digest and signature in base64)", path=path) from None
    if _obj(signature.get("messageDigest")).get("algorithm") != "SHA2_256" or len(digest) != 32:
        raise UnsupportedFormatError("only SHA2_256 message digests are supported", path=path)
    if artifact is not None and digest.hex() != artifact:
        raise SignatureError("the bundle signs another artifact (message digest mismatch)", path=path)
    public = _ec_key(leaf, path)
    try:
        public.verify(sig, digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    except InvalidSignature:
        raise SignatureError("the signature does not verify with the signing certificate", path=path) from None
    spec = body.get("spec") or {}
    logged = spec.get("signature") or {}
    if (
        body.get("kind") != "hashedrekord"
        or _obj(_obj(spec.get("data")).get("hash")).get("value") != digest.hex()
        or _b64(logged.get("content")) != sig
        or _pem_cert(_b64(_obj(logged.get("publicKey")).get("content"))) != leaf
    ):
        raise SignatureError("the transparency log entry is inconsistent with other materials", path=path)
    result.digest = digest


def _dsse(envelope: Any, body: dict[str, Any], leaf: x509.Certificate, path: str, result: PromiseResult) -> None:
    try:
        payload_type = str(envelope["payloadType"])
        payload = base64.b64decode(str(envelope["payload"]), validate=True)
        signatures = list(envelope["signatures"])
    except (KeyError, TypeError, ValueError, binascii.Error):
        raise BadInputError("the DSSE envelope is malformed", path=path) from None
    if len(signatures) != 1:
        raise BadInputError(f"a Sigstore bundle's DSSE envelope has one signature, not {len(signatures)}", path=path)
    sig_b64 = str(_obj(signatures[0]).get("sig", ""))
    sig = _b64(sig_b64)
    public = _ec_key(leaf, path)
    if sig is None or not dsse_verifies(
        public, sig, payload_type, payload, certificate_hash=_HASHES[public.curve.name]()
    ):
        raise SignatureError("DSSE: invalid signature", path=path)
    payload_sha = hashlib.sha256(payload).hexdigest()
    spec = body.get("spec") or {}
    if body.get("kind") == "intoto":
        content = spec.get("content") or {}
        logged_env = content.get("envelope") or {}
        # Rekor stores an intoto envelope's signature base64-encoded once more (the bytes of the base64 text).
        logged = [
            (_b64((_b64(s.get("sig")) or b"").decode("ascii", "replace")), _pem_cert(_b64(s.get("publicKey"))))
            for s in logged_env.get("signatures") or []
            if isinstance(s, dict)
        ]
        consistent = (
            _obj(content.get("payloadHash")).get("value") == payload_sha
            and logged_env.get("payloadType") == payload_type
            and logged == [(sig, leaf)]
        )
    elif body.get("kind") == "dsse":
        logged = [
            (_b64(s.get("signature")), _pem_cert(_b64(s.get("verifier"))))
            for s in spec.get("signatures") or []
            if isinstance(s, dict)
        ]
        consistent = _obj(spec.get("payloadHash")).get("value") == payload_sha and logged == [(sig, leaf)]
    else:
        raise UnsupportedFormatError(f"a DSSE bundle with a {body.get('kind')!r} log entry", path=path)
    if not consistent:
        raise SignatureError("the transparency log entry is inconsistent with other materials", path=path)
    result.payload_type, result.payload = payload_type, payload


# -- small helpers ------------------------------------------------------------------------------------------


def _valid_for(window: Any, at: datetime) -> bool:
    """True when ``at`` is inside a trusted root's ``validFor`` (an open end means "still valid")."""
    window = window or {}
    start, end = window.get("start"), window.get("end")
    if start and at < _time(start):
        return False
    return not (end and at > _time(end))


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _verifies(key: ec.EllipticCurvePublicKey, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm) -> bool:
    try:
        key.verify(signature, data, ec.ECDSA(algorithm))
    except InvalidSignature:
        return False
    return True


def _ec_key(cert: x509.Certificate, path: str) -> ec.EllipticCurvePublicKey:
    public = cert.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name not in _HASHES:
        raise UnsupportedFormatError("the signing certificate's key is not an ECDSA P-256/384/521 key", path=path)
    return public


def _b64(value: Any) -> bytes | None:
    try:
        return base64.b64decode(str(value), validate=True) if value else None
    except (ValueError, binascii.Error):
        return None


def _pem_cert(pem: bytes | None) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(pem) if pem else None
    except CERTIFICATE_ERRORS:
        return None


def _json(raw: bytes, what: str, path: str) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadInputError(f"{what} is not JSON", path=path) from None
    if not isinstance(doc, dict):
        raise BadInputError(f"{what} is not a JSON object", path=path)
    return doc
