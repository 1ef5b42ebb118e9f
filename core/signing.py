"""Signing with local keys in the formats other tools check: cosign blob signatures, DSSE, Sigstore bundles.

Three outputs, all made from one ``Signer`` (an ECDSA P-256 or Ed25519 private key of ``core.keys``):

- ``cosign_blob_signature``: what ``cosign sign-blob --key`` writes, the base64 of the signature over the
  blob's bytes (ASN.1 DER ECDSA P-256/SHA-256, or the raw 64-byte Ed25519 signature). ``openssl dgst
  -sha256 -verify`` checks the decoded ECDSA form; ``openssl pkeyutl -verify -rawin`` the Ed25519 one.
- ``dsse_envelope``: a DSSE v1 envelope, the signature taken over ``pae(payloadType, payload)``.
  ``keyid`` is empty, as cosign and sigstore-go write it: DSSE says keyid is unauthenticated, so a
  verifier must never choose or trust a key because of it.
- ``sigstore_bundle_v03``: a Sigstore bundle v0.3 wrapping that envelope, naming the key by a
  ``publicKey.hint`` (base64 SHA-256 of the DER SubjectPublicKeyInfo, sigstore-go's rule) with no
  transparency-log entries, since an offline signer has no log to write to.

ECDSA signatures are deterministic (RFC 6979): the same key and bytes always give the same signature,
so a retried run reproduces the bundle byte for byte. They are ordinary ECDSA
signatures to any verifier.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x448, x25519
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature

from core.contract.media_types import SIGSTORE_BUNDLE_V03
from core.errors import BadInputError, EnvironmentFailure, SignatureError, UsageError
from core.keys import KeyAlgorithm, KeyStore, PrivateKey, PublicKey, keyid_of, public_pem

if TYPE_CHECKING:
    from core.trust import TrustedKey  # core.trust imports this module

_CHUNK = 1 << 20


def spki_der(public: PublicKey) -> bytes:
    """The DER SubjectPublicKeyInfo of ``public`` (what key ids and hints are hashed from)."""
    return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def public_key_hint(public: PublicKey) -> str:
    """The Sigstore ``publicKey.hint``: standard base64 of the SHA-256 of the DER SubjectPublicKeyInfo."""
    return base64.b64encode(hashlib.sha256(spki_der(public)).digest()).decode("ascii")


def algorithm_of(public: object) -> KeyAlgorithm:
    """The algorithm of a public key the tool accepts; anything but P-256 or Ed25519 is refused."""
    if isinstance(public, ed25519.Ed25519PublicKey):
        return KeyAlgorithm.ED25519
    if isinstance(public, ec.EllipticCurvePublicKey) and isinstance(public.curve, ec.SECP256R1):
        return KeyAlgorithm.ECDSA_P256
    raise BadInputError(f"unsupported key type {_describe(public)}", hint="stella accepts ECDSA P-256 and Ed25519 keys")


def sha256_file(path: str | os.PathLike[str]) -> bytes:
    """The SHA-256 digest of a file, read in 1 MiB chunks so memory stays flat."""
    digest = hashlib.sha256()
    try:
        with Path(path).open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
    except OSError as exc:
        raise EnvironmentFailure(f"cannot read file: {exc.strerror}", path=str(path)) from exc
    return digest.digest()


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    """A whole file; used only where the algorithm needs the full message (Ed25519)."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise EnvironmentFailure(f"cannot read file: {exc.strerror}", path=str(path)) from exc


def verify_raw(public: PublicKey, signature: bytes, data: bytes) -> bool:
    """True when ``signature`` is a valid signature of ``data`` under ``public``.

    ECDSA signatures are ASN.1 DER (cosign, Sigstore). A 64-byte raw ``r||s`` is accepted too, because the
    DSSE specification's own ECDSA example uses that encoding; both carry the same two integers.
    """
    if isinstance(public, ed25519.Ed25519PublicKey):
        try:
            public.verify(signature, data)
        except InvalidSignature:
            return False
        return True
    return _verify_ecdsa(public, signature, data, ec.ECDSA(hashes.SHA256()))


def verify_prehashed_sha256(public: ec.EllipticCurvePublicKey, signature: bytes, digest: bytes) -> bool:
    """Like ``verify_raw`` for ECDSA, given the SHA-256 digest of the data instead of the data."""
    if len(digest) != 32:
        raise BadInputError(f"a SHA-256 digest is 32 bytes, not {len(digest)}")
    return _verify_ecdsa(public, signature, digest, ec.ECDSA(Prehashed(hashes.SHA256())))


def _verify_ecdsa(public: ec.EllipticCurvePublicKey, signature: bytes, data: bytes, algo: ec.ECDSA) -> bool:
    candidates = [signature]
    if len(signature) == 64:
        r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        candidates.append(encode_dss_signature(r, s))
    for candidate in candidates:
        try:
            public.verify(candidate, data, algo)
        except InvalidSignature:
            continue
        return True
    return False


class Signer:
    """A private signing key (ECDSA P-256 or Ed25519) and what verifiers need to know about it."""

    def __init__(self, private_key: PrivateKey) -> None:
        public = private_key.public_key()
        # Refuse other curves here, once, rather than emitting signatures no verifier of ours accepts.
        self.algorithm: KeyAlgorithm = algorithm_of(public)
        self._private = private_key
        self.public_key: PublicKey = public
        self.keyid: str = keyid_of(public)
        self.public_pem: bytes = public_pem(public)
        self.hint: str = public_key_hint(public)

    @classmethod
    def from_keystore(cls, keystore: KeyStore, name: str, passphrase: bytes | None = None) -> Signer:
        """The signer for key ``name`` of ``keystore``, unlocked with ``passphrase`` if it is encrypted."""
        return cls(keystore.load_private(name, passphrase))

    def sign(self, data: bytes) -> bytes:
        """Sign ``data``: DER ECDSA P-256/SHA-256 (deterministic, RFC 6979) or raw 64-byte Ed25519."""
        if isinstance(self._private, ed25519.Ed25519PrivateKey):
            return self._private.sign(data)
        return self._private.sign(data, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))

    def sign_prehashed_sha256(self, digest: bytes) -> bytes:
        """Sign a SHA-256 digest computed elsewhere (large files); the result equals ``sign(data)``.

        Only ECDSA can do this: Ed25519 hashes the whole message itself, twice, so it needs the data.
        """
        if isinstance(self._private, ed25519.Ed25519PrivateKey):
            raise UsageError("an Ed25519 key signs the message itself, not a digest of it", hint="use sign(data)")
        if len(digest) != 32:
            raise BadInputError(f"a SHA-256 digest is 32 bytes, not {len(digest)}")
        return self._private.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256()), deterministic_signing=True))

    def sign_file(self, path: str | os.PathLike[str]) -> bytes:
        """Sign a file's bytes; ECDSA streams it, Ed25519 has to read it whole."""
        if self.algorithm is KeyAlgorithm.ECDSA_P256:
            return self.sign_prehashed_sha256(sha256_file(path))
        return self.sign(read_bytes(path))


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: ``DSSEv1 SP LEN(type) SP type SP LEN(body) SP body``.

    Lengths are ASCII decimal byte counts (the type's UTF-8 length, not its character count).
    """
    return pae_prefix(payload_type, len(payload)) + payload


def pae_prefix(payload_type: str, length: int) -> bytes:
    """The PAE up to the body of a ``length``-byte payload: what a streamed payload's PAE digest starts with."""
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d " % (len(type_bytes), type_bytes, length)


def cosign_blob_signature(signer: Signer, data: bytes | str | os.PathLike[str]) -> bytes:
    """The signature file ``cosign sign-blob --key`` writes: base64 (standard alphabet) text, no newline.

    ``data`` is the blob's bytes, or a path to it (streamed for ECDSA).
    """
    raw = signer.sign(data) if isinstance(data, bytes) else signer.sign_file(data)
    return base64.b64encode(raw)


def dsse_envelope(signer: Signer, payload_type: str, payload: bytes) -> dict[str, Any]:
    """A DSSE envelope with one signature over ``pae(payload_type, payload)``; ``keyid`` is ``""``."""
    if not payload_type:
        raise UsageError("a DSSE envelope needs a payloadType")
    sig = signer.sign(pae(payload_type, payload))
    return {
        "payload": base64.b64encode(payload).decode("ascii"),
        "payloadType": payload_type,
        "signatures": [{"keyid": "", "sig": base64.b64encode(sig).decode("ascii")}],
    }


def sigstore_bundle_v03(
    envelope: dict[str, Any],
    signer: Signer,
    *,
    rfc3161_timestamps: Sequence[bytes] = (),
) -> dict[str, Any]:
    """A key-based Sigstore bundle v0.3 around ``envelope`` (made by ``dsse_envelope`` with ``signer``).

    ``rfc3161_timestamps`` are DER ``TimeStampResp`` bytes over the envelope's signature bytes, as
    sigstore-go requests them; they go to ``timestampVerificationData``. The envelope is checked against
    ``signer``'s key first, so a bundle never names a key that did not sign it.
    """
    sigs = envelope.get("signatures")
    if not isinstance(sigs, list) or len(sigs) != 1:
        # Sigstore verifiers read exactly one signature from a bundled envelope.
        raise UsageError("a Sigstore bundle wraps a DSSE envelope with exactly one signature")
    try:
        payload = base64.b64decode(envelope["payload"], validate=True)
        signature = base64.b64decode(sigs[0]["sig"], validate=True)
        payload_type = str(envelope["payloadType"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInputError(f"not a DSSE envelope: {exc}") from exc
    if not verify_raw(signer.public_key, signature, pae(payload_type, payload)):
        raise SignatureError(
            f"the DSSE envelope was not signed by key {signer.keyid[:16]}",
            hint="build the envelope and the bundle with the same signer",
        )
    material: dict[str, Any] = {"publicKey": {"hint": signer.hint}, "tlogEntries": []}
    if rfc3161_timestamps:
        material["timestampVerificationData"] = {
            "rfc3161Timestamps": [
                {"signedTimestamp": base64.b64encode(token).decode("ascii")} for token in rfc3161_timestamps
            ]
        }
    return {"mediaType": SIGSTORE_BUNDLE_V03, "verificationMaterial": material, "dsseEnvelope": envelope}


def _describe(public: object) -> str:
    """A short name for a key type in messages: ``RSA-2048``, ``ECDSA secp384r1``, ``Ed448``."""
    if isinstance(public, rsa.RSAPublicKey):
        return f"RSA-{public.key_size}"
    if isinstance(public, ec.EllipticCurvePublicKey):
        return f"ECDSA {public.curve.name}"
    if isinstance(public, dsa.DSAPublicKey):
        return f"DSA-{public.key_size}"
    names: list[tuple[type, str]] = [
        (ed448.Ed448PublicKey, "Ed448"),
        (x25519.X25519PublicKey, "X25519"),
        (x448.X448PublicKey, "X448"),
    ]
    for cls, name in names:
        if isinstance(public, cls):
            return name
    return type(public).__name__


def dsse_verifies(
    public: PublicKey,
    signature: bytes,
    payload_type: str,
    payload: bytes | None,
    *,
    pae_sha256: bytes | None = None,
    certificate_hash: hashes.HashAlgorithm | None = None,
) -> bool:
    """True when ``signature`` is ``public``'s signature over DSSE's PAE(``payload_type``, ``payload``).

    Every DSSE signature stella accepts is checked here: bundles, attestations, receipts, kind manifests. A
    trusted key (ECDSA P-256 or Ed25519) verifies as :func:`verify_raw` does; with ``pae_sha256``, the SHA-256
    of the PAE computed while the payload streamed past, a P-256 key needs no ``payload`` (Ed25519 always needs
    the whole message). A Fulcio certificate's key passes ``certificate_hash``, the hash Sigstore signs with on
    its curve, and then only a DER signature verifies, as in sigstore-python.
    """
    if certificate_hash is not None:
        if not isinstance(public, ec.EllipticCurvePublicKey) or payload is None:
            return False
        try:
            public.verify(signature, pae(payload_type, payload), ec.ECDSA(certificate_hash))
        except InvalidSignature:
            return False
        return True
    if pae_sha256 is not None and isinstance(public, ec.EllipticCurvePublicKey):
        return verify_prehashed_sha256(public, signature, pae_sha256)
    if payload is None:
        return False
    return verify_raw(public, signature, pae(payload_type, payload))


def envelope_signatures(entries: Iterable[Any]) -> Iterator[bytes]:
    """The signatures of a DSSE envelope's ``signatures`` list, leniently: an entry that is not an object or whose
    ``sig`` is not base64 is skipped (it can verify nothing), for callers that report one failure for the lot."""
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        try:
            yield base64.b64decode(str(entry.get("sig", "")), validate=True)
        except ValueError:  # binascii.Error, or a str that is not ASCII
            continue


def dsse_signer(
    payload_type: str,
    payload: bytes | None,
    signatures: Iterable[bytes],
    keys: Sequence[TrustedKey],
    *,
    pae_sha256: bytes | None = None,
) -> TrustedKey | None:
    """The first of ``keys`` that one of ``signatures`` verifies with (see :func:`dsse_verifies`); None if none.

    Signatures are tried in order, each against every key; an empty signature never verifies.
    """
    for signature in signatures:
        if not signature:
            continue
        for key in keys:
            if dsse_verifies(key.public_key, signature, payload_type, payload, pae_sha256=pae_sha256):
                return key
    return None
