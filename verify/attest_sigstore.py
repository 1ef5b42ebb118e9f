"""Offline verification of single attestations: keyless Sigstore bundles, key-based bundles, DSSE envelopes.

Keyless Sigstore bundles are checked by sigstore-python's ``Verifier`` built from a trusted root read from a
file (never from TUF, never from the network): the Fulcio certificate chain at the signing time, the SCTs of
the certificate, the Rekor inclusion proof against its signed checkpoint and the signed entry timestamp, the
RFC 3161 timestamps, the signature and the consistency of the log entry with the bundle. The signer must then
match an :class:`IdentityPolicy` the receiver gives (certificate identity and OIDC issuer).

Key-based attestations (DSSE envelopes, and Sigstore bundles naming a ``publicKey``) are checked against the
receiver's trusted keys: a key the receiver trusts is the signer's identity. Their transparency-log entries,
if any, are not checked (that takes the log's key from a trusted root, which only keyless bundles use).

sigstore-python is imported only when a keyless bundle is verified, so ``stella verify`` and importing
``verify`` stay light (tests/unit/test_layers.py).

Errors: a document that is not what it claims raises (or reports) ``BadInputError`` (exit 3); a signature,
chain, log proof or identity that does not verify, or no trusted signer, ``SignatureError`` (exit 5).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ObjectIdentifier

from core.contract.media_types import SIGSTORE_BUNDLE_PREFIX, SIGSTORE_TRUSTED_ROOT
from core.contract.payload_types import IN_TOTO
from core.errors import BadInputError, SignatureError, StellaError, UnsupportedFormatError
from core.signing import verify_prehashed_sha256
from core.trust import TrustedKey
from core.x509_path import CERTIFICATE_ERRORS, well_formed
from verify.signatures import verify_dsse, verify_sigstore_bundle_keyed
from verify.sigstore_promise import signing_certificate, sigstore_python_refuses, verify_promise

_BUNDLE_VERSION = re.compile(
    r"application/vnd\.dev\.sigstore\.bundle(?:\+json;version=(?P<old>[^;\s]+)|\.v(?P<new>[^+\s]+)\+json)"
)
_SUPPORTED_VERSIONS = ("0.1", "0.2", "0.3")
#: Fulcio's OIDC issuer extensions: v1 (raw bytes) and v2 (DER UTF8String).
_ISSUER_V1 = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
_ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
#: The otherName type Fulcio uses for identities that are neither e-mail nor URI.
_OTHERNAME_SAN = ObjectIdentifier("1.3.6.1.4.1.57264.1.7")
#: The production trusted root embedded in the sigstore wheel (what `sigstore --offline` bootstraps from).
_PACKAGE_PRODUCTION = ("_store", "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev", "trusted_root.json")


# -- trusted roots --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SigstoreRoot:
    """A Sigstore trusted root (protobuf-specs ``TrustedRoot`` JSON) and where it came from."""

    name: str
    source: str  # "bundle", "trust store", "sigstore package", "file"
    data: bytes = field(repr=False)
    log_ids: frozenset[str] = frozenset()  # base64 key ids of its transparency logs

    @property
    def sha256(self) -> str:
        """The digest of the root's bytes, to name exactly which root verified an attestation."""
        return hashlib.sha256(self.data).hexdigest()

    def describe(self) -> dict[str, Any]:
        """The root as reports name it."""
        return {"name": self.name, "source": self.source, "sha256": self.sha256}


def load_root(data: bytes, *, name: str, source: str, path: str | None = None) -> SigstoreRoot:
    """Read a trusted root: JSON with a trusted-root media type; ``BadInputError`` (exit 3) otherwise."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise BadInputError("not a Sigstore trusted root: not JSON", path=path or name) from None
    media = doc.get("mediaType") if isinstance(doc, dict) else None
    if not isinstance(media, str) or not media.startswith(SIGSTORE_TRUSTED_ROOT):
        raise BadInputError(
            f"not a Sigstore trusted root (mediaType {media!r})",
            path=path or name,
            hint="a trusted_root.json from Sigstore's TUF repository or `sigstore` has mediaType "
            "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        )
    tlogs = doc.get("tlogs")
    log_ids: set[str] = set()
    for tlog in tlogs if isinstance(tlogs, list) else ():
        log_id = tlog.get("logId") if isinstance(tlog, dict) else None
        key_id = log_id.get("keyId") if isinstance(log_id, dict) else None
        if isinstance(key_id, str) and key_id:
            log_ids.add(key_id)
    return SigstoreRoot(name, source, data, frozenset(log_ids))


def package_production_root() -> SigstoreRoot:
    """Sigstore's production trusted root as shipped inside the ``sigstore`` Python package."""
    ref = resources.files("sigstore").joinpath(*_PACKAGE_PRODUCTION)
    return load_root(ref.read_bytes(), name="sigstore-production", source="sigstore package")


def trust_store_roots(trust_dir: Path) -> list[SigstoreRoot]:
    """The custom trusted roots of a trust store (``trust/sigstore/*.json``), sorted by name."""
    folder = trust_dir / "sigstore"
    if not folder.is_dir():
        return []
    roots = []
    for path in sorted(folder.glob("*.json")):
        roots.append(load_root(path.read_bytes(), name=path.stem, source="trust store", path=str(path)))
    return roots


# -- identity policy ------------------------------------------------------------------------------------------


def certificate_identities(cert: x509.Certificate) -> list[str]:
    """The identities a Fulcio certificate names: e-mail, URI and Sigstore otherName SANs."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    out: list[str] = [
        *san.get_values_for_type(x509.RFC822Name),
        *san.get_values_for_type(x509.UniformResourceIdentifier),
    ]
    for other in san.get_values_for_type(x509.OtherName):
        if other.type_id == _OTHERNAME_SAN:
            out.append(_der_utf8(other.value))
    return out


def certificate_issuer(cert: x509.Certificate) -> str | None:
    """The OIDC issuer Fulcio recorded in the certificate (the v2 extension, else v1)."""
    for oid, der in ((_ISSUER_V2, True), (_ISSUER_V1, False)):
        try:
            ext = cert.extensions.get_extension_for_oid(oid).value
        except x509.ExtensionNotFound:
            continue
        raw = ext.value if isinstance(ext, x509.UnrecognizedExtension) else b""
        return _der_utf8(raw) if der else raw.decode("utf-8", "replace")
    return None


def _der_utf8(raw: bytes) -> str:
    """The text of a DER UTF8String (tag 0x0c, short or long length), or the bytes as text."""
    if len(raw) >= 2 and raw[0] == 0x0C:
        length, offset = raw[1], 2
        if length & 0x80:
            n = length & 0x7F
            length, offset = int.from_bytes(raw[2 : 2 + n], "big"), 2 + n
        return raw[offset : offset + length].decode("utf-8", "replace")
    return raw.decode("utf-8", "replace")


@dataclass(frozen=True)
class IdentityPolicy:
    """Which keyless signers a receiver accepts: a certificate identity and an OIDC issuer, exact or regexp.

    An identity condition (``identities`` or ``identity_regexp``) and an issuer condition (``issuer`` or
    ``issuer_regexp``) are both required, as cosign and sigstore require both: an identity is only meaningful
    together with the issuer that vouched for it. Regular expressions must match the whole value.
    """

    identities: tuple[str, ...] = ()
    identity_regexp: str | None = None
    issuer: str | None = None
    issuer_regexp: str | None = None

    def __post_init__(self) -> None:
        for flag, pattern in (("identity", self.identity_regexp), ("OIDC issuer", self.issuer_regexp)):
            if pattern is not None:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise BadInputError(f"the certificate {flag} regexp {pattern!r} is invalid: {exc}") from None

    @property
    def given(self) -> bool:
        """True when the receiver stated any condition at all."""
        return bool(self.identities or self.identity_regexp or self.issuer or self.issuer_regexp)

    @property
    def complete(self) -> bool:
        """True when both an identity and an issuer condition are stated."""
        has_identity = bool(self.identities) or self.identity_regexp is not None
        has_issuer = self.issuer is not None or self.issuer_regexp is not None
        return has_identity and has_issuer

    def describe(self) -> dict[str, Any]:
        """The policy as reports show it."""
        out: dict[str, Any] = {}
        if self.identities:
            out["certificateIdentity"] = list(self.identities)
        if self.identity_regexp is not None:
            out["certificateIdentityRegexp"] = self.identity_regexp
        if self.issuer is not None:
            out["certificateOidcIssuer"] = self.issuer
        if self.issuer_regexp is not None:
            out["certificateOidcIssuerRegexp"] = self.issuer_regexp
        return out

    def mismatch(self, identities: Sequence[str], issuer: str | None) -> str | None:
        """Why a certificate with these identities and issuer is refused, or None when it is accepted."""
        if not self.complete:
            return (
                "no identity policy: a keyless signature is trusted only for a stated certificate identity and "
                "OIDC issuer"
            )
        if self.issuer is not None and issuer != self.issuer:
            return f"the certificate's OIDC issuer {issuer!r} is not {self.issuer!r}"
        if self.issuer_regexp is not None and (issuer is None or not re.fullmatch(self.issuer_regexp, issuer)):
            return f"the certificate's OIDC issuer {issuer!r} does not match {self.issuer_regexp!r}"
        if self.identities and not set(identities) & set(self.identities):
            return f"the certificate identity {', '.join(identities) or '(none)'} is not {' or '.join(self.identities)}"
        if self.identity_regexp is not None and not any(re.fullmatch(self.identity_regexp, i) for i in identities):
            return (
                f"the certificate identity {', '.join(identities) or '(none)'} does not match {self.identity_regexp!r}"
            )
        return None


# -- results --------------------------------------------------------------------------------------------------


@dataclass
class AttestationResult:
    """The outcome of verifying one attestation (one entry of a document)."""

    path: str
    document_sha256: str
    entry_index: int = 0
    kind: str = "unknown"  # sigstore-bundle | dsse | intoto-statement
    method: str = "unknown"  # keyless | key | unsigned
    payload_type: str | None = None
    predicate_type: str | None = None
    subjects: list[dict[str, Any]] = field(default_factory=list)
    signer: dict[str, Any] = field(default_factory=dict)
    tlog: list[dict[str, Any]] = field(default_factory=list)
    trusted_root: dict[str, Any] | None = None
    verified_by: dict[str, Any] | None = None  # which verifier checked a keyless bundle, and why that one
    error: StellaError | None = None

    @property
    def verified(self) -> bool:
        """True when the attestation verified."""
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """The stable ``--json`` form."""
        out: dict[str, Any] = {
            "path": self.path,
            "document": self.document_sha256,
            "entryIndex": self.entry_index,
            "kind": self.kind,
            "method": self.method,
            "verified": self.verified,
            "subjects": self.subjects,
        }
        for key, value in (
            ("payloadType", self.payload_type),
            ("predicateType", self.predicate_type),
            ("trustedRoot", self.trusted_root),
            ("verifiedBy", self.verified_by),
        ):
            if value is not None:
                out[key] = value
        if self.signer:
            out["signer"] = self.signer
        if self.tlog:
            out["tlog"] = self.tlog
        if self.error is not None:
            out["error"] = self.error.to_dict()
        return out


@dataclass(frozen=True)
class Trust:
    """What attestations are checked against: trusted keys, Sigstore trusted roots and an identity policy."""

    keys: Sequence[TrustedKey] = ()
    roots: Sequence[SigstoreRoot] = ()
    policy: IdentityPolicy = IdentityPolicy()


# -- documents ------------------------------------------------------------------------------------------------


def verify_document(data: bytes, *, path: str, trust: Trust) -> list[AttestationResult]:
    """Verify every attestation of one document (a Sigstore bundle, an npm attestations response, a DSSE
    envelope or a bare in-toto Statement); one result per attestation, failures included, nothing raised."""
    sha = hashlib.sha256(data).hexdigest()
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        error = BadInputError(f"not JSON: {exc}", path=path)
        return [AttestationResult(path, sha, error=error)]
    if isinstance(doc, dict) and isinstance(doc.get("attestations"), list) and "mediaType" not in doc:
        results = []
        for i, item in enumerate(doc["attestations"]):
            bundle = item.get("bundle") if isinstance(item, dict) else None
            raw = json.dumps(bundle).encode() if bundle is not None else b""
            results.append(_bundle(bundle, raw, path=path, sha=sha, index=i, trust=trust, pointer=f"/attestations/{i}"))
        if not results:
            results.append(AttestationResult(path, sha, error=BadInputError("no attestations", path=path)))
        return results
    if isinstance(doc, dict) and (
        str(doc.get("mediaType", "")).startswith(SIGSTORE_BUNDLE_PREFIX) or "verificationMaterial" in doc
    ):
        return [_bundle(doc, data, path=path, sha=sha, index=0, trust=trust, pointer="")]
    if isinstance(doc, dict) and {"payload", "payloadType", "signatures"} <= doc.keys():
        return [_dsse(doc, path=path, sha=sha, trust=trust)]
    result = AttestationResult(path, sha, kind="intoto-statement", method="unsigned")
    if isinstance(doc, dict):
        result.predicate_type = doc.get("predicateType") if isinstance(doc.get("predicateType"), str) else None
        result.subjects = _subjects(doc)
    result.error = SignatureError(
        "an unsigned in-toto Statement: there is no signature to verify",
        path=path,
        hint="only signed attestations (DSSE envelopes, Sigstore bundles) can be verified and imported",
    )
    return [result]


def verify_bundle_file(path: Path, *, trust: Trust, artifact_sha256: str | None = None) -> AttestationResult:
    """Verify one Sigstore bundle file; with ``artifact_sha256`` a message signature must cover that digest."""
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        return AttestationResult(
            str(path), sha, kind="sigstore-bundle", error=BadInputError(f"not JSON: {exc}", path=str(path))
        )
    return _bundle(doc, data, path=str(path), sha=sha, index=0, trust=trust, pointer="", artifact=artifact_sha256)


def _subjects(statement: Any) -> list[dict[str, Any]]:
    subjects = statement.get("subject") if isinstance(statement, dict) else None
    out = []
    for s in subjects if isinstance(subjects, list) else []:
        if isinstance(s, dict):
            out.append({"name": s.get("name", ""), "digest": s.get("digest") or {}})
    return out


def _read_statement(result: AttestationResult, payload_type: str, payload: bytes) -> None:
    """Record what a verified DSSE payload says; an in-toto payload must be a Statement with subjects."""
    result.payload_type = payload_type
    if payload_type != IN_TOTO:
        return
    try:
        statement = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise BadInputError("the in-toto payload is not JSON", path=result.path) from None
    if not isinstance(statement, dict):
        raise BadInputError("the in-toto payload is not a JSON object", path=result.path)
    kind = statement.get("_type")
    if kind in ("link", "layout"):  # in-toto v0.9 metadata: signed, but no Statement subjects
        result.predicate_type = f"in-toto {kind}"
        return
    result.predicate_type = statement.get("predicateType") if isinstance(statement.get("predicateType"), str) else None
    result.subjects = _subjects(statement)
    if not result.subjects:
        raise BadInputError("the in-toto Statement names no subjects", path=result.path)


def _dsse(env: dict[str, Any], *, path: str, sha: str, trust: Trust) -> AttestationResult:
    result = AttestationResult(path, sha, kind="dsse", method="key")
    try:
        payload_type, payload, key = verify_dsse(env, list(trust.keys), path=path)
        result.signer = {"key": key.label, "keyid": key.keyid, "algorithm": str(key.algorithm)}
        _read_statement(result, payload_type, payload)
    except StellaError as exc:
        result.error = exc
    return result


def _bundle(
    doc: Any,
    raw: bytes,
    *,
    path: str,
    sha: str,
    index: int,
    trust: Trust,
    pointer: str,
    artifact: str | None = None,
) -> AttestationResult:
    result = AttestationResult(path, sha, index, kind="sigstore-bundle")
    try:
        if not isinstance(doc, dict):
            raise BadInputError("a Sigstore bundle must be a JSON object", path=path, pointer=pointer)
        version = _bundle_version(doc.get("mediaType"), path, pointer)
        material = doc.get("verificationMaterial")
        if not isinstance(material, dict):
            raise BadInputError("the bundle has no verificationMaterial", path=path, pointer=pointer)
        result.tlog = [_tlog_summary(e) for e in material.get("tlogEntries") or [] if isinstance(e, dict)]
        if material.get("publicKey") is not None:
            result.method = "key"
            _keyed_bundle(doc, result, trust, pointer, artifact)
        else:
            result.method = "keyless"
            _keyless_bundle(raw, doc, version, result, trust, artifact)
    except StellaError as exc:
        result.error = exc
    return result


def _bundle_version(media_type: Any, path: str, pointer: str) -> str:
    match = _BUNDLE_VERSION.fullmatch(media_type) if isinstance(media_type, str) else None
    version = (match.group("old") or match.group("new")) if match else None
    if version not in _SUPPORTED_VERSIONS:
        raise UnsupportedFormatError(
            f"unsupported Sigstore bundle mediaType {media_type!r}",
            path=path,
            pointer=f"{pointer}/mediaType",
            hint="supported: Sigstore bundle versions 0.1 to 0.3",
        )
    return str(version)


def _obj(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one: a bundle's optional objects may be anything."""
    return value if isinstance(value, dict) else {}


def _tlog_summary(entry: dict[str, Any]) -> dict[str, Any]:
    kind = _obj(entry.get("kindVersion"))
    out: dict[str, Any] = {
        "logIndex": str(entry.get("logIndex")),
        "logId": _obj(entry.get("logId")).get("keyId"),
        "kind": f"{kind.get('kind')}/{kind.get('version')}",
    }
    if entry.get("integratedTime") is not None:
        out["integratedTime"] = str(entry.get("integratedTime"))
    out["inclusionProof"] = entry.get("inclusionProof") is not None
    out["signedEntryTimestamp"] = _obj(entry.get("inclusionPromise")).get("signedEntryTimestamp") is not None
    return out


def _keyed_bundle(
    doc: dict[str, Any], result: AttestationResult, trust: Trust, pointer: str, artifact: str | None
) -> None:
    keys = list(trust.keys)
    if doc.get("dsseEnvelope") is not None:
        payload_type, payload, key = verify_sigstore_bundle_keyed(doc, keys, path=result.path)
        result.signer = {"key": key.label, "keyid": key.keyid, "algorithm": str(key.algorithm)}
        _read_statement(result, payload_type, payload)
        return
    signature = doc.get("messageSignature")
    if not isinstance(signature, dict):
        raise BadInputError("the bundle carries neither dsseEnvelope nor messageSignature", path=result.path)
    digest_info = signature.get("messageDigest") or {}
    if digest_info.get("algorithm") != "SHA2_256":
        raise UnsupportedFormatError(
            f"message digest algorithm {digest_info.get('algorithm')!r} is not supported with a key",
            path=result.path,
            pointer=f"{pointer}/messageSignature/messageDigest/algorithm",
        )
    try:
        digest = base64.b64decode(str(digest_info.get("digest")), validate=True)
        sig = base64.b64decode(str(signature.get("signature")), validate=True)
    except (binascii.Error, ValueError):
        raise BadInputError("the message signature is not valid base64", path=result.path) from None
    result.subjects = [{"name": "", "digest": {"sha256": digest.hex()}}]
    if artifact is not None and artifact != digest.hex():
        raise SignatureError("the bundle signs another artifact (message digest mismatch)", path=result.path)
    for key in keys:
        if isinstance(key.public_key, ec.EllipticCurvePublicKey) and verify_prehashed_sha256(
            key.public_key, sig, digest
        ):
            result.signer = {"key": key.label, "keyid": key.keyid, "algorithm": str(key.algorithm)}
            return
    raise SignatureError(
        "no trusted signer: the message signature verifies with none of the trusted keys"
        + (f" ({', '.join(k.label for k in keys)})" if keys else ""),
        path=result.path,
        hint="add the signer's public key with `stella trust add LABEL KEY.pem` or give it with --attestation-key",
    )


def _log_ids(raw: bytes) -> set[str]:
    try:
        doc = json.loads(raw)
        return {str(e["logId"]["keyId"]) for e in doc["verificationMaterial"].get("tlogEntries") or []}
    except (ValueError, KeyError, TypeError, AttributeError):
        return set()


def _keyless_bundle(
    raw: bytes, doc: dict[str, Any], version: str, result: AttestationResult, trust: Trust, artifact: str | None
) -> None:
    """Verify a keyless bundle with sigstore-python, or with :mod:`verify.sigstore_promise` for the valid bundles
    (and private-instance trusted roots) sigstore-python refuses; then apply the identity policy."""
    # Imported here: sigstore-python pulls in requests, tuf and protobuf models, which a receiver checking
    # a bundle with keys alone never needs.
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import Bundle

    own_reason = sigstore_python_refuses(doc, version)
    bundle = None
    if own_reason is None:
        unreadable: tuple[type[Exception], ...] = (SigstoreError, *CERTIFICATE_ERRORS)  # pydantic raises ValueError
        try:
            bundle = Bundle.from_json(raw)
        except unreadable as exc:
            raise BadInputError(f"not a verifiable Sigstore bundle: {_first_line(exc)}", path=result.path) from None
        cert = bundle.signing_certificate
        if not well_formed(cert):
            raise BadInputError("the bundle's signing certificate is damaged", path=result.path)
    else:
        cert = signing_certificate(doc.get("verificationMaterial") or {}, result.path)
    identities = certificate_identities(cert)
    issuer = certificate_issuer(cert)
    result.signer = {"identity": identities[0] if identities else None, "issuer": issuer}
    if len(identities) > 1:
        result.signer["identities"] = identities
    if not trust.roots:
        raise SignatureError(
            "no Sigstore trusted root to verify a keyless bundle with",
            path=result.path,
            hint="give one with --trusted-root, or put it in the trust store's sigstore/ folder",
        )
    # A bundle's log entry names its log; a root that lists that log is the one to check against. Without a
    # match every root is tried, and the failure reported is the first root's.
    wanted = _log_ids(raw)
    roots = [r for r in trust.roots if r.log_ids & wanted] or list(trust.roots)
    failures: list[str] = []
    for root in roots:
        models_root = None if bundle is None else _models_root(root)
        try:
            if bundle is None or models_root is None:
                why = own_reason or f"trusted root {root.name} is outside sigstore-python's models"
                payload_type, payload = _by_promise(doc, root, version, why, result, artifact)
            else:
                payload_type, payload = _by_sigstore_python(bundle, models_root, result, artifact)
        except SignatureError as exc:
            failures.append(f"{exc.message} (trusted root {root.name})")
            continue
        except SigstoreError as exc:
            failures.append(f"{_first_line(exc)} (trusted root {root.name})")
            continue
        except ValueError as exc:  # a damaged certificate the models refuse
            failures.append(f"{_first_line(exc)} (trusted root {root.name})")
            continue
        result.trusted_root = root.describe()
        if payload_type:
            _read_statement(result, payload_type, payload)
        refused = trust.policy.mismatch(identities, issuer)
        if refused is not None:
            raise SignatureError(
                f"signature, certificate chain and transparency log verified, but {refused}",
                path=result.path,
                hint=f"signed by {', '.join(identities) or '(no identity)'} (issuer {issuer}); accept this signer "
                "with --certificate-identity and --certificate-oidc-issuer (or their -regexp forms)",
            )
        return
    raise SignatureError(
        f"keyless verification failed: {failures[0]}",
        path=result.path,
        hint="the bundle was changed, its log proof does not verify, or it was signed under another Sigstore "
        "instance (give its trusted root with --trusted-root)",
    )


def _models_root(root: SigstoreRoot) -> Any:
    """sigstore-python's ``TrustedRoot`` for ``root``, or None when its models refuse the document (a private
    instance's root without a CA ``commonName``, which the specification does not require)."""
    from sigstore.models import TrustedRoot
    from sigstore_models.trustroot import v1 as trustroot_v1

    try:
        return TrustedRoot(trustroot_v1.TrustedRoot.from_json(root.data))
    except ValueError:
        return None


def _by_sigstore_python(
    bundle: Any, models_root: Any, result: AttestationResult, artifact: str | None
) -> tuple[str, bytes]:
    """sigstore-python's full check: chain, SCT, inclusion proof and checkpoint, SET, timestamps, signature."""
    from sigstore.hashes import Hashed
    from sigstore.verify import Verifier
    from sigstore_models.common.v1 import HashAlgorithm

    verifier = Verifier(trusted_root=models_root)
    result.verified_by = {"verifier": "sigstore-python"}
    if bundle._dsse_envelope is not None:  # the public API exposes no "is this DSSE" test
        payload_type, payload = verifier.verify_dsse(bundle, _DEFERRED)
        return str(payload_type), bytes(payload)
    signature = bundle._inner.message_signature
    digest = signature.message_digest.digest if signature and signature.message_digest else None
    if digest is None:
        raise BadInputError("the message signature has no digest", path=result.path)
    if artifact is not None and digest.hex() != artifact:
        raise SignatureError("the bundle signs another artifact (message digest mismatch)", path=result.path)
    verifier.verify_artifact(Hashed(algorithm=HashAlgorithm.SHA2_256, digest=digest), bundle, _DEFERRED)
    result.subjects = [{"name": "", "digest": {"sha256": digest.hex()}}]
    return "", b""


def _by_promise(
    doc: dict[str, Any], root: SigstoreRoot, version: str, why: str, result: AttestationResult, artifact: str | None
) -> tuple[str, bytes]:
    """:func:`verify.sigstore_promise.verify_promise`, for what sigstore-python refuses; see that module."""
    promised = verify_promise(doc, json.loads(root.data), version=version, path=result.path, artifact=artifact)
    result.verified_by = {"verifier": "stella", "why": why, "logChecks": promised.log_checks}
    if promised.digest is not None:
        result.subjects = [{"name": "", "digest": {"sha256": promised.digest.hex()}}]
    return promised.payload_type or "", promised.payload or b""


class _DeferredPolicy:
    """A sigstore policy that accepts every certificate: the identity policy is applied after the signature,
    chain and log checks (:meth:`IdentityPolicy.mismatch`), so a refusal can say what was verified and who
    signed. (sigstore's own ``UnsafeNoOp`` would log a warning on every call.)"""

    def verify(self, cert: x509.Certificate) -> None:
        """Accept; see the class docstring."""


_DEFERRED = _DeferredPolicy()


def _first_line(exc: BaseException) -> str:
    """The gist of a library error: pydantic's multi-line reports are folded onto one line."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    return "; ".join(lines[:3])[:400]
