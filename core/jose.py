"""The small part of JOSE the local API needs: compact JWS with ES256 or EdDSA, public JWKs, RFC 7638 thumbprints.

Written on ``cryptography`` rather than a JOSE library so that exactly these rules hold and nothing else:

- a signature is checked only with the algorithm the *caller* names (the header's ``alg`` must equal it), so
  ``alg: none``, an HMAC algorithm keyed with a public key, or any other algorithm swap is refused;
- ES256 signatures are the 64-byte ``r || s`` form of RFC 7518 §3.4 (a DER signature is refused);
- a JWK is accepted only as a public EC P-256 or Ed25519 key (RFC 7518 §6.2, RFC 8037), never with private members.

Failures raise :class:`JoseError` with a short reason; callers turn it into the error their surface needs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

ES256 = "ES256"
EDDSA = "EdDSA"
ASYMMETRIC_ALGORITHMS = (ES256, EDDSA)

_MAX_COMPACT = 16 * 1024  # a token or proof larger than this is refused before any parsing
_P256_COORD = 32

PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


class JoseError(Exception):
    """A compact JWS, a JWK or a signature that is not acceptable."""


def b64url_encode(data: bytes) -> str:
    """base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict base64url without padding: any other character, or padding, is refused."""
    if not isinstance(text, str) or "=" in text:
        raise JoseError("not base64url")
    try:
        raw = text.encode("ascii")
        data = base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
    except (UnicodeEncodeError, binascii.Error, ValueError) as exc:
        raise JoseError("not base64url") from exc
    if b64url_encode(data) != text:  # non-canonical trailing bits or stray characters
        raise JoseError("not base64url")
    return data


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise JoseError(f"{what} is not JSON") from exc
    if not isinstance(value, dict):
        raise JoseError(f"{what} is not a JSON object")
    return value


def _canonical(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True)
class CompactJws:
    """A parsed compact JWS whose signature has NOT been checked yet."""

    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes


def parse_compact(token: str) -> CompactJws:
    """Split and decode ``header.payload.signature``; the payload must be a JSON object (JWT claims)."""
    if not isinstance(token, str) or len(token) > _MAX_COMPACT:
        raise JoseError("too long")
    parts = token.split(".")
    if len(parts) != 3:
        raise JoseError("not a compact JWS (three dot-separated parts)")
    header = _json_object(b64url_decode(parts[0]), "header")
    claims = _json_object(b64url_decode(parts[1]), "payload")
    signature = b64url_decode(parts[2])
    if "crit" in header:
        raise JoseError("critical header parameters are not supported")
    return CompactJws(header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature)


def sign_compact(header: dict[str, Any], claims: dict[str, Any], key: ec.EllipticCurvePrivateKey) -> str:
    """An ES256 compact JWS of ``claims`` with ``header`` (whose ``alg`` is set to ES256)."""
    head = b64url_encode(_canonical({**header, "alg": ES256}))
    body = b64url_encode(_canonical(claims))
    signing_input = f"{head}.{body}".encode("ascii")
    return f"{head}.{body}.{b64url_encode(es256_sign(key, signing_input))}"


def es256_sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """The 64-byte ``r || s`` ES256 signature of ``data``."""
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(_P256_COORD, "big") + s.to_bytes(_P256_COORD, "big")


def verify_signature(jws: CompactJws, key: PublicKey, algorithm: str) -> None:
    """Check ``jws`` was signed by ``key`` with ``algorithm``; the header must name exactly that algorithm."""
    if jws.header.get("alg") != algorithm:
        raise JoseError(f"algorithm {jws.header.get('alg')!r} is not the accepted {algorithm}")
    try:
        if algorithm == ES256 and isinstance(key, ec.EllipticCurvePublicKey):
            if not isinstance(key.curve, ec.SECP256R1) or len(jws.signature) != 2 * _P256_COORD:
                raise JoseError("bad signature")
            r = int.from_bytes(jws.signature[:_P256_COORD], "big")
            s = int.from_bytes(jws.signature[_P256_COORD:], "big")
            key.verify(encode_dss_signature(r, s), jws.signing_input, ec.ECDSA(hashes.SHA256()))
        elif algorithm == EDDSA and isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(jws.signature, jws.signing_input)
        else:
            raise JoseError(f"the key does not fit algorithm {algorithm}")
    except InvalidSignature as exc:
        raise JoseError("bad signature") from exc


def public_jwk(key: PublicKey) -> dict[str, str]:
    """The public JWK of an EC P-256 or Ed25519 key (required members only)."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        numbers = key.public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": b64url_encode(numbers.x.to_bytes(_P256_COORD, "big")),
            "y": b64url_encode(numbers.y.to_bytes(_P256_COORD, "big")),
        }
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(raw)}


_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")


def key_from_jwk(jwk: object) -> tuple[PublicKey, str]:
    """The public key a JWK describes and the one algorithm it may be used with (ES256 or EdDSA).

    Refused: anything but an object, private members, and any key type or curve but EC P-256 and OKP Ed25519.
    """
    if not isinstance(jwk, dict):
        raise JoseError("jwk is not a JSON object")
    if any(member in jwk for member in _PRIVATE_MEMBERS):
        raise JoseError("jwk holds private key material")
    kty, crv = jwk.get("kty"), jwk.get("crv")
    try:
        if kty == "EC" and crv == "P-256":
            x, y = b64url_decode(jwk.get("x", "")), b64url_decode(jwk.get("y", ""))
            if len(x) != _P256_COORD or len(y) != _P256_COORD:
                raise JoseError("jwk coordinates are not 32 bytes")
            numbers = ec.EllipticCurvePublicNumbers(int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1())
            return numbers.public_key(), ES256
        if kty == "OKP" and crv == "Ed25519":
            x = b64url_decode(jwk.get("x", ""))
            if len(x) != 32:
                raise JoseError("jwk x is not 32 bytes")
            return ed25519.Ed25519PublicKey.from_public_bytes(x), EDDSA
    except ValueError as exc:  # a point not on the curve
        raise JoseError("jwk is not a valid public key") from exc
    raise JoseError(f"jwk type {kty!r}/{crv!r} is not accepted (EC P-256 or OKP Ed25519)")


def thumbprint(jwk: dict[str, Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint (base64url) of a public EC or OKP JWK: its required members only,
    lexicographically ordered, no whitespace."""
    kty = jwk.get("kty")
    if kty == "EC":
        members = {name: jwk.get(name) for name in ("crv", "kty", "x", "y")}
    elif kty == "OKP":
        members = {name: jwk.get(name) for name in ("crv", "kty", "x")}
    else:
        raise JoseError(f"no thumbprint for key type {kty!r}")
    if not all(isinstance(value, str) for value in members.values()):
        raise JoseError("jwk members must be strings")
    return b64url_encode(hashlib.sha256(_canonical(members)).digest())
