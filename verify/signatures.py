"""Offline signature checks on the receiving side: cosign blob signatures, DSSE, key-based Sigstore bundles.

Everything here is decided by a signature under a key the receiver trusts, never by a name the signed
data gives itself: a DSSE ``keyid`` and a Sigstore ``publicKey.hint`` are unauthenticated, so they can
at most narrow which trusted keys are tried first.

Errors: a document that is not what it claims to be raises ``BadInputError`` (exit 3); a well-formed
signature that no trusted key verifies raises ``SignatureError`` (exit 5), with a message that says
which check failed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from core.contract.media_types import SIGSTORE_BUNDLE_V03
from core.errors import BadInputError, EnvironmentFailure, SignatureError, UnsupportedFormatError
from core.keys import PublicKey
from core.signing import dsse_signer, read_bytes, sha256_file, verify_prehashed_sha256, verify_raw
from core.trust import TrustedKey, parse_public_key

# Every media type a Sigstore bundle has been published under. Versions 0.1 and 0.2 predate the
# single-certificate form but carry the same publicKey/dsseEnvelope fields this verifier reads.
SUPPORTED_BUNDLE_MEDIA_TYPES = frozenset(
    {
        "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "application/vnd.dev.sigstore.bundle+json;version=0.2",
        "application/vnd.dev.sigstore.bundle+json;version=0.3",
        SIGSTORE_BUNDLE_V03,
    }
)

_WHITESPACE = re.compile(rb"\s+")
_URLSAFE = bytes.maketrans(b"-_", b"+/")


def load_public_key_file(path: str | os.PathLike[str]) -> PublicKey:
    """An ECDSA P-256 or Ed25519 public key from a PEM file (``cosign.pub``, ``openssl pkey -pubout``)."""
    try:
        pem = Path(path).read_bytes()
    except OSError as exc:
        raise EnvironmentFailure(f"cannot read public key: {exc.strerror}", path=str(path)) from exc
    return parse_public_key(pem, source=str(path))


def decode_base64(text: str | bytes, *, what: str, path: str | None = None, pointer: str | None = None) -> bytes:
    """Decode standard or URL-safe base64, padded or not; whitespace (line wrapping) is ignored.

    DSSE requires verifiers to accept both alphabets; ``base64`` on the command line wraps at 76
    columns. Encoding leniency is safe here: what is verified is the decoded bytes.
    """
    raw = text.encode("ascii", "replace") if isinstance(text, str) else text
    compact = _WHITESPACE.sub(b"", raw).translate(_URLSAFE).rstrip(b"=")
    compact += b"=" * (-len(compact) % 4)
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise BadInputError(f"{what} is not valid base64", path=path, pointer=pointer) from None


def _key_label(public_key: PublicKey | TrustedKey) -> str:
    if isinstance(public_key, TrustedKey):
        return f"trusted key {public_key.label!r}"
    return "the given public key"


def verify_blob_signature(
    public_key: PublicKey | TrustedKey,
    data: bytes | str | os.PathLike[str],
    signature_text: str | bytes,
    *,
    signature_path: str | None = None,
) -> None:
    """Check a cosign-style detached signature (base64 text) over a blob; raise if it does not verify.

    ``data`` is the blob's bytes or a path to it. ECDSA streams the file (memory stays flat); Ed25519
    needs the whole message and reads it. ``signature_path`` names the signature file in errors.
    Raises ``SignatureError`` (exit 5) when the signature does not verify with the key.
    """
    key = public_key.public_key if isinstance(public_key, TrustedKey) else public_key
    signature = decode_base64(signature_text, what="the signature", path=signature_path)
    if isinstance(data, bytes):
        ok = verify_raw(key, signature, data)
        target = "the data"
    else:
        target = str(data)
        if isinstance(key, ec.EllipticCurvePublicKey):
            ok = verify_prehashed_sha256(key, signature, sha256_file(data))
        else:
            ok = verify_raw(key, signature, read_bytes(data))
    if not ok:
        raise SignatureError(
            f"signature does not verify over {target} with {_key_label(public_key)}",
            path=signature_path,
            hint="the file was changed after signing, or it was signed with another key",
        )


def find_blob_signer(
    keys: Sequence[TrustedKey],
    data: bytes | str | os.PathLike[str],
    signature_text: str | bytes,
    *,
    signature_path: str | None = None,
) -> TrustedKey:
    """The trusted key that verifies a cosign-style blob signature; ``SignatureError`` if none does.

    A file is hashed once for all ECDSA keys and read whole only if an Ed25519 key is to be tried.
    """
    signature = decode_base64(signature_text, what="the signature", path=signature_path)
    file = None if isinstance(data, bytes) else data
    digest: bytes | None = hashlib.sha256(data).digest() if isinstance(data, bytes) else None
    whole: bytes | None = data if isinstance(data, bytes) else None
    for key in keys:
        if isinstance(key.public_key, ec.EllipticCurvePublicKey):
            if digest is None and file is not None:
                digest = sha256_file(file)
            ok = digest is not None and verify_prehashed_sha256(key.public_key, signature, digest)
        else:
            if whole is None and file is not None:
                whole = read_bytes(file)
            ok = whole is not None and verify_raw(key.public_key, signature, whole)
        if ok:
            return key
    raise _no_trusted_signer(keys, 1, signature_path)


def _no_trusted_signer(keys: Sequence[TrustedKey], n_signatures: int, path: str | None) -> SignatureError:
    if not keys:
        return SignatureError(
            "no trusted signer: there are no trusted keys to check the signature with",
            path=path,
            hint="add the signer's public key with `stella trust add LABEL KEY.pem`",
        )
    sigs = "the signature" if n_signatures == 1 else f"none of the {n_signatures} signatures"
    verb = "does not verify" if n_signatures == 1 else "verifies"
    count = "the trusted key" if len(keys) == 1 else f"any of the {len(keys)} trusted keys"
    return SignatureError(
        f"no trusted signer: {sigs} {verb} with {count} ({', '.join(k.label for k in keys)})",
        path=path,
        hint="the data was changed after signing, or its signer is not in the trust store (see `stella trust list`)",
    )


_KIND_NAMES: dict[type, str] = {str: "a string", list: "a list", dict: "an object"}


def _field(obj: Mapping[str, Any], name: str, kind: type, *, path: str | None, pointer: str) -> Any:
    value = obj.get(name)
    if not isinstance(value, kind):
        state = "missing" if value is None else f"{type(value).__name__}, not {_KIND_NAMES.get(kind, kind.__name__)}"
        raise BadInputError(f"{name!r} is {state}", path=path, pointer=f"{pointer}/{name}")
    return value


def verify_dsse(
    envelope: Mapping[str, Any],
    keys: Sequence[TrustedKey],
    *,
    path: str | None = None,
    pointer: str = "",
) -> tuple[str, bytes, TrustedKey]:
    """Verify a DSSE envelope against trusted keys: (payloadType, payload bytes, the key that verified).

    One signature verified by one trusted key suffices. ``keyid`` is ignored, as the DSSE spec asks:
    it is not covered by the signature. A malformed envelope raises ``BadInputError``; when no
    signature verifies with any of ``keys``, ``SignatureError`` "no trusted signer". The caller still
    has to check that the payload type and content are what it expects. ``path`` and ``pointer``
    locate the envelope in error messages.
    """
    if not isinstance(envelope, Mapping):
        raise BadInputError("a DSSE envelope must be a JSON object", path=path, pointer=pointer)
    payload_type = _field(envelope, "payloadType", str, path=path, pointer=pointer)
    payload_b64 = _field(envelope, "payload", str, path=path, pointer=pointer)
    signatures = _field(envelope, "signatures", list, path=path, pointer=pointer)
    if not payload_type:
        raise BadInputError("'payloadType' is empty", path=path, pointer=f"{pointer}/payloadType")
    if not signatures:
        raise BadInputError("the envelope carries no signatures", path=path, pointer=f"{pointer}/signatures")
    payload = decode_base64(payload_b64, what="the DSSE payload", path=path, pointer=f"{pointer}/payload")
    raw_sigs: list[bytes] = []
    for i, entry in enumerate(signatures):
        where = f"{pointer}/signatures/{i}"
        if not isinstance(entry, Mapping):
            raise BadInputError("a signature entry must be a JSON object", path=path, pointer=where)
        sig_b64 = _field(entry, "sig", str, path=path, pointer=where)
        raw_sigs.append(decode_base64(sig_b64, what="the signature", path=path, pointer=f"{where}/sig"))
    key = dsse_signer(payload_type, payload, raw_sigs, keys)
    if key is not None:
        return payload_type, payload, key
    raise _no_trusted_signer(keys, len(raw_sigs), path)


def _hint_names(hint: str, key: TrustedKey) -> bool:
    """True when ``hint`` names ``key`` in one of the forms signers use for it."""
    if hint == key.keyid:
        return True
    try:
        digest = decode_base64(hint.removeprefix("SHA256:"), what="hint")
    except BadInputError:
        return False
    return digest.hex() == key.keyid


def verify_sigstore_bundle_keyed(
    bundle: Mapping[str, Any],
    keys: Sequence[TrustedKey],
    *,
    path: str | None = None,
) -> tuple[str, bytes, TrustedKey]:
    """Verify a key-based Sigstore bundle carrying a DSSE envelope: (payloadType, payload, signer key).

    Checks the media type is a known bundle version, that the bundle names a public key (not a
    certificate), and the DSSE signature against ``keys``. The ``publicKey.hint`` narrows the search
    to the trusted key it names (stella writes base64 SHA-256 of the DER public key; the hex key id and
    ``SHA256:``-prefixed forms are recognised too); a hint naming none of them is not an error by
    itself, because the hint format is agreed out of band (npm's registry bundles use their own
    key ids), so then every trusted key is tried.

    Transparency-log entries are neither required nor checked: a bundle signed offline with a local
    key has none, and checking one needs the log's keys from a trusted root, which is the keyless
    verifier's job. Trust here comes from the receiver's trust store alone. RFC 3161 timestamps, if
    any, are left to the timestamp verifier.
    """
    if not isinstance(bundle, Mapping):
        raise BadInputError("a Sigstore bundle must be a JSON object", path=path, pointer="")
    media_type = bundle.get("mediaType")
    if not isinstance(media_type, str) or media_type not in SUPPORTED_BUNDLE_MEDIA_TYPES:
        raise UnsupportedFormatError(
            f"unsupported Sigstore bundle mediaType {media_type!r}",
            path=path,
            pointer="/mediaType",
            hint="supported: Sigstore bundle versions 0.1 to 0.3",
        )
    material = _field(bundle, "verificationMaterial", dict, path=path, pointer="")
    public_key = material.get("publicKey")
    if public_key is None:
        if "certificate" in material or "x509CertificateChain" in material:
            raise UnsupportedFormatError(
                "this bundle is signed with a certificate (keyless), not with a key",
                path=path,
                pointer="/verificationMaterial",
                hint="keyless bundles are checked against a Sigstore trusted root, not the key trust store",
            )
        raise BadInputError("the bundle names no public key", path=path, pointer="/verificationMaterial/publicKey")
    if not isinstance(public_key, Mapping):
        raise BadInputError("'publicKey' must be an object", path=path, pointer="/verificationMaterial/publicKey")
    hint = public_key.get("hint", "")
    if not isinstance(hint, str):
        raise BadInputError("'hint' must be a string", path=path, pointer="/verificationMaterial/publicKey/hint")
    if "dsseEnvelope" not in bundle:
        if "messageSignature" in bundle:
            raise UnsupportedFormatError(
                "this bundle signs a message digest, not a DSSE envelope",
                path=path,
                pointer="/messageSignature",
                hint="stella's key-based bundles carry DSSE envelopes",
            )
        raise BadInputError("the bundle carries no dsseEnvelope", path=path, pointer="/dsseEnvelope")
    named = [k for k in keys if hint and _hint_names(hint, k)]
    try:
        return verify_dsse(bundle["dsseEnvelope"], named or keys, path=path, pointer="/dsseEnvelope")
    except SignatureError:
        if not named:
            raise
        # Say plainly that the key the bundle names did not sign it; trying the others anyway would let
        # a bundle "verify" under a key it does not claim, which is harmless but confusing in a report.
        label = named[0].label
        raise SignatureError(
            f"no trusted signer: the bundle names trusted key {label!r}, and its signature does not verify with it",
            path=path,
            hint="the payload was changed after signing",
        ) from None
