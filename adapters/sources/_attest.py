"""Shared checks for the attestation formats: DSSE envelopes, in-toto Statements, Sigstore bundles.

Attestations are stored, not verified, at import: nothing here checks a signature, a certificate
or a transparency-log proof. What is checked is structure, so that a later verifier only meets
well-formed input: base64 fields decode, envelopes have the DSSE shape, and in-toto Statements
name at least one subject with well-formed digests.

``document_id`` of every attestation document is ``<algorithm>:<hex>`` of the content that was
signed: the SHA-256 of the Statement bytes (bare, or the decoded DSSE payload), or the artifact
digest of a Sigstore message signature. The same Statement thus gets the same identifier whether
it arrives bare, in a DSSE envelope or in a bundle.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import orjson

from adapters.sources._common import load_schema
from core.contract.payload_types import IN_TOTO
from core.errors import SchemaError, StellaError, UnsupportedFormatError
from core.records import AttestationSubject
from core.schema import SchemaValidator
from core.strict_json import repeated_key

STATEMENT_PREFIX = "https://in-toto.io/Statement"
STATEMENT_VERSIONS: Mapping[str, str] = MappingProxyType(
    {
        "https://in-toto.io/Statement/v0.1": "v0.1",
        "https://in-toto.io/Statement/v1": "v1",
    }
)
# in-toto v0.9 metadata (links and layouts) predates Statements but travels in the same envelopes.
LEGACY_TYPES = ("link", "layout")

_STD_B64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_URL_B64 = re.compile(r"[A-Za-z0-9_-]*={0,2}")

# Fixed-size hex digests of the in-toto DigestSet "standard algorithms"; a wrong length is a
# truncated or mislabelled digest that could never match an artifact.
_HEX_LENGTHS: Mapping[str, int] = MappingProxyType(
    {
        "md5": 32,
        "sha1": 40,
        "sha224": 56,
        "sha256": 64,
        "sha384": 96,
        "sha512": 128,
        "sha512_224": 56,
        "sha512_256": 64,
        "sha3_224": 56,
        "sha3_256": 64,
        "sha3_384": 96,
        "sha3_512": 128,
        "ripemd160": 40,
        "sm3": 64,
    }
)
_HEX_ANY_LENGTH = (
    "shake128",
    "shake256",
    "blake2b",
    "blake2s",
    "gost",
    "dirHash",
    "gitCommit",
    "gitTree",
    "gitBlob",
)
_LOWER_HEX = re.compile(r"[0-9a-f]+")
_SLSA_V1 = re.compile(r"https://slsa\.dev/provenance/v1(?:[.?-].*)?")


@dataclass(frozen=True, slots=True)
class Where:
    """Where a checked value lives, for error pointers.

    ``base`` is the JSON pointer of the value inside the document. When the value was decoded
    from a base64 field (a DSSE payload), ``payload`` is that field's pointer: errors then point
    at the field and name the place inside the decoded payload in words.
    """

    path: str
    base: str = ""
    payload: str | None = None

    def at(self, sub: str) -> Where:
        """The location of a child value (``sub`` is a pointer suffix such as ``/subject/0``)."""
        return Where(self.path, self.base + sub, self.payload)

    def error(self, message: str, sub: str = "", *, unsupported: bool = False) -> StellaError:
        """An error at ``base + sub`` (or at the payload field, naming the inner place)."""
        cls = UnsupportedFormatError if unsupported else SchemaError
        if self.payload is None:
            return cls(message, path=self.path, pointer=self.base + sub)
        inner = (self.base + sub) or "/"
        return cls(f"{message} (at {inner} in the decoded payload)", path=self.path, pointer=self.payload)


def decode_base64(value: Any, where: Where, what: str, *, allow_empty: bool = False) -> bytes:
    """Strictly decode standard or URL-safe base64 (padding optional), as DSSE allows both."""
    if not isinstance(value, str):
        raise where.error(f"{what} must be a base64 string, got {type(value).__name__}")
    if _STD_B64.fullmatch(value):
        text = value
    elif _URL_B64.fullmatch(value):
        text = value.replace("-", "+").replace("_", "/")
    else:
        raise where.error(f"{what} is not valid base64 (found characters outside the base64 alphabets)")
    body = text.rstrip("=")
    if len(body) % 4 == 1 or (len(text) != len(body) and len(text) % 4 != 0):
        raise where.error(f"{what} is not valid base64 (wrong length or padding)")
    try:
        decoded = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except binascii.Error as exc:
        raise where.error(f"{what} is not valid base64 ({exc})") from None
    if not decoded and not allow_empty:
        raise where.error(f"{what} is empty")
    return decoded


def content_id(data: bytes) -> str:
    """``sha256:<hex>`` of signed content, the ``document_id`` of attestation documents."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


@functools.cache
def _envelope_validator() -> SchemaValidator:
    schema = load_schema("sigstore/Envelope.schema.json")
    defs = schema["definitions"]
    # The schema is generated from proto3, which cannot mark fields required; the DSSE spec
    # (envelope.proto comments) makes payload, payloadType and at least one signature REQUIRED.
    defs["Envelope"]["required"] = ["payload", "payloadType", "signatures"]
    defs["Envelope"]["properties"]["signatures"]["minItems"] = 1
    defs["io.intoto.Signature"]["required"] = ["sig"]
    # slsa-github-generator (and slsa-verifier's own fixtures) add a non-standard "cert" field
    # (the Fulcio PEM) next to each signature. DSSE verifiers ignore unknown signature fields,
    # so refusing them would reject real provenance; the envelope itself stays strict.
    defs["io.intoto.Signature"]["additionalProperties"] = True
    return SchemaValidator("DSSE envelope schema", schema)


@dataclass(slots=True)
class Envelope:
    """A structurally checked DSSE envelope with its payload decoded."""

    payload_type: str
    payload: bytes
    signature_count: int
    keyids: list[str]


def looks_like_envelope(value: Any) -> bool:
    """Cheap shape test used by sniffers: an object with the three DSSE keys."""
    return isinstance(value, dict) and {"payload", "payloadType", "signatures"} <= value.keys()


def check_envelope(env: Any, where: Where) -> Envelope:
    """Validate a DSSE envelope (schema, strict base64) and decode its payload."""
    _envelope_validator().check(env, path=where.path, base_pointer=where.base)
    payload = decode_base64(env["payload"], where.at("/payload"), "the DSSE payload")
    keyids: list[str] = []
    for i, sig in enumerate(env["signatures"]):
        decode_base64(sig["sig"], where.at(f"/signatures/{i}/sig"), "the signature")
        keyid = sig.get("keyid")
        # An empty keyid is how cosign says "no key hint"; it identifies nothing.
        if keyid and keyid not in keyids:
            keyids.append(keyid)
    return Envelope(env["payloadType"], payload, len(env["signatures"]), keyids)


@dataclass(slots=True)
class PayloadInfo:
    """What an attestation says, read from an in-toto Statement or v0.9 link/layout."""

    statement_type: str | None = None
    predicate_type: str | None = None
    version: str | None = None
    subjects: list[AttestationSubject] = field(default_factory=list)
    label: str | None = None  # a name for documents without subjects (v0.9 links)


def read_envelope_payload(env: Envelope, where: Where) -> PayloadInfo:
    """Check the payload of an in-toto envelope; other payload types are stored as they are."""
    if env.payload_type != IN_TOTO:
        return PayloadInfo()
    inner = Where(where.path, "", where.base + "/payload")
    try:
        doc = orjson.loads(env.payload)
    except orjson.JSONDecodeError as exc:
        raise inner.error(f"the in-toto payload is not JSON: {exc}") from None
    repeated = repeated_key(env.payload)
    if repeated is not None:
        raise inner.error(f"the in-toto payload repeats the key {repeated[0]!r} in one object", repeated[1])
    if not isinstance(doc, dict):
        raise inner.error("the in-toto payload must be a JSON object")
    kind = doc.get("_type")
    if kind in LEGACY_TYPES:
        name = doc.get("name")
        return PayloadInfo(statement_type=kind, label=f"{kind}:{name}" if isinstance(name, str) else kind)
    return check_statement(doc, inner)


def check_statement(doc: Any, where: Where) -> PayloadInfo:
    """Check an in-toto Statement v0.1/v1: known _type, subjects with digests, predicateType."""
    if not isinstance(doc, dict):
        raise where.error("an in-toto Statement must be a JSON object")
    kind = doc.get("_type")
    if not isinstance(kind, str) or kind not in STATEMENT_VERSIONS:
        raise where.error(
            f"_type {kind!r} is not a supported in-toto Statement type (expected {' or '.join(STATEMENT_VERSIONS)})",
            "/_type",
            unsupported=True,
        )
    predicate_type = doc.get("predicateType")
    if not isinstance(predicate_type, str) or not predicate_type:
        raise where.error("the Statement has no predicateType", "/predicateType")
    subjects = _check_subjects(doc.get("subject"), where)
    predicate = doc.get("predicate")
    if predicate is not None and not isinstance(predicate, dict):
        raise where.error("predicate must be a JSON object", "/predicate")
    if _SLSA_V1.fullmatch(predicate_type):
        _check_slsa_v1(predicate, predicate_type, where)
    return PayloadInfo(kind, predicate_type, STATEMENT_VERSIONS[kind], subjects)


def _check_subjects(value: Any, where: Where) -> list[AttestationSubject]:
    if value is None or value == []:
        raise where.error("the Statement has no subjects: it must name at least one artifact", "/subject")
    if not isinstance(value, list):
        raise where.error("subject must be a list of artifacts", "/subject")
    out: list[AttestationSubject] = []
    for i, subject in enumerate(value):
        sub = f"/subject/{i}"
        if not isinstance(subject, dict):
            raise where.error("a subject must be an object with a name and a digest", sub)
        name = subject.get("name")
        if not isinstance(name, str):
            raise where.error("the subject has no name", sub + "/name")
        digest = subject.get("digest")
        if not isinstance(digest, dict) or not digest:
            raise where.error(f"subject {name!r} has no digest", sub + "/digest")
        for algorithm, value_ in digest.items():
            _check_digest(algorithm, value_, where, f"{sub}/digest/{algorithm}")
            out.append(AttestationSubject(name=name, digest_algorithm=algorithm, digest=value_))
    return out


def _check_digest(algorithm: str, value: Any, where: Where, sub: str) -> None:
    if not isinstance(value, str) or not value:
        raise where.error(f"the {algorithm} digest must be a non-empty string", sub)
    expected = _HEX_LENGTHS.get(algorithm)
    if expected is not None or algorithm in _HEX_ANY_LENGTH:
        if not _LOWER_HEX.fullmatch(value):
            raise where.error(f"the {algorithm} digest {value!r} is not lowercase hex", sub)
        if expected is not None and len(value) != expected:
            raise where.error(f"the {algorithm} digest has {len(value)} hex digits, expected {expected}", sub)
    # Other algorithm names are allowed by the DigestSet spec for immutable non-hash
    # identifiers (e.g. Google's gce_image_id); their encoding is not ours to judge.


def _check_slsa_v1(predicate: Any, predicate_type: str, where: Where) -> None:
    # SLSA v1 makes both halves of the provenance REQUIRED; a v1 predicate without them is
    # either a pre-v1 draft mislabelled as v1 or a truncated document, and cannot be evaluated.
    for part in ("buildDefinition", "runDetails"):
        if not isinstance(predicate, dict) or not isinstance(predicate.get(part), dict):
            raise where.error(
                f"SLSA provenance v1 ({predicate_type}) requires buildDefinition and runDetails; {part} is missing",
                "/predicate",
            )


def subject_label(info: PayloadInfo, fallback: str) -> str:
    """The ``subject`` of a parsed attestation: its first subject, else a label, else ``fallback``."""
    if info.subjects:
        first = info.subjects[0]
        return first.name or f"{first.digest_algorithm}:{first.digest}"
    return info.label or info.statement_type or fallback
