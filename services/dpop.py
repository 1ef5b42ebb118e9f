"""DPoP proof verification for the local API (RFC 9449 §4.3, the resource-server side).

A client that keeps a key pair sends, with each request, ``Authorization: DPoP <token>`` and ``DPoP: <proof>``: a
JWT it signed with that key, naming the request's method and URL. :func:`verify_proof` runs the checks of
RFC 9449 §4.3 in order:

1. the proof is one compact JWS (one ``DPoP`` header; a list of them is refused by the caller);
2. ``typ`` is ``dpop+jwt``; ``alg`` is ES256 or EdDSA (never ``none`` or a MAC), and fits the ``jwk``;
3. ``jwk`` is a public EC P-256 or Ed25519 key (private members refused), and the signature verifies with it;
4. the claims ``jti``, ``htm``, ``htu``, ``iat`` and ``ath`` are present and well typed;
5. ``htm`` equals the request method; ``htu`` equals the request URL, both normalised (RFC 3986 §6.2.2-6.2.3) and
   without query or fragment;
6. ``iat`` is inside the acceptance window (:data:`MAX_AGE` in the past, :data:`MAX_SKEW` in the future);
7. ``ath`` is base64url(SHA-256(access token));
8. the key's RFC 7638 thumbprint equals the token's ``cnf.jkt``;
9. the ``jti`` has not been seen in the window (:class:`ReplayCache`, per process).

Server nonces (§8, §9) are not used. Every failure is an :class:`AuthenticationError` carrying a ``DPoP`` challenge.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

from core.contract.api import DPOP_PROOF_TYPE
from core.errors import AuthenticationError
from core.jose import ASYMMETRIC_ALGORITHMS, JoseError, b64url_encode, key_from_jwk, parse_compact, thumbprint
from core.jose import verify_signature as jws_verify

#: How old a proof's ``iat`` may be, and how far in the future (clock skew between hosts on the LAN), in seconds.
MAX_AGE = 120
MAX_SKEW = 30
#: How many proof ids one server process remembers; past that the oldest is forgotten (see docs/api-auth.md).
REPLAY_CACHE_SIZE = 65536
_DEFAULT_PORTS = {"http": 80, "https": 443}
_UNRESERVED = "-._~"
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")

CHALLENGE = f'DPoP algs="{" ".join(ASYMMETRIC_ALGORITHMS)}"'


def header_safe(text: str) -> str:
    """``text`` fit for a quoted header parameter: printable ASCII only (RFC 6750 §3 error_description), no quote
    or backslash, at most 200 characters. The reasons quote values from the request (an ``alg``, a method), and a
    CR, LF or non-Latin-1 character there must not reach a response header."""
    return "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in text)[:200]


def challenge(error: str, description: str) -> str:
    """A ``WWW-Authenticate: DPoP`` value naming the RFC 9449 §7.1 error code."""
    return f'{CHALLENGE}, error="{error}", error_description="{header_safe(description)}"'


def _refuse(reason: str) -> AuthenticationError:
    return AuthenticationError(
        f"DPoP proof refused: {reason}", www_authenticate=challenge("invalid_dpop_proof", f"DPoP proof {reason}")
    )


def access_token_hash(token: str) -> str:
    """The ``ath`` of an access token: base64url(SHA-256 of its ASCII form)."""
    return b64url_encode(hashlib.sha256(token.encode("ascii")).digest())


def _normal_path(path: str) -> str:
    # RFC 3986 §6.2.2.2: percent-encoded unreserved characters are decoded, every other escape is upper-cased.
    def fix(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char.isascii() and (char.isalnum() or char in _UNRESERVED) else match.group(0).upper()

    return _ESCAPE.sub(fix, path) or "/"


def normalise_url(url: str) -> str:
    """``url`` as DPoP compares it: scheme and host lower-cased, the default port dropped, percent-encoding
    normalised, an empty path as ``/``, without query and fragment."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _refuse("htu is not a URL") from exc
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if not scheme or not host:
        raise _refuse("htu is not an absolute URL")
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
    return urlunsplit((scheme, netloc, _normal_path(parts.path), "", ""))


class ReplayCache:
    """Proof ids seen within the acceptance window, bounded in count (oldest forgotten first), thread-safe."""

    def __init__(self, size: int = REPLAY_CACHE_SIZE) -> None:
        self._size = size
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._seen)

    def remember(self, key: str, forget_after: float, now: float) -> bool:
        """Record ``key`` until ``forget_after``; False if it is already recorded (a replay)."""
        with self._lock:
            while self._seen:
                oldest, until = next(iter(self._seen.items()))
                if until > now and len(self._seen) < self._size:
                    break
                del self._seen[oldest]
            if key in self._seen:
                return False
            self._seen[key] = forget_after
            return True


_PROCESS_CACHE = ReplayCache()


@dataclass(frozen=True)
class ProofKey:
    """What a verified proof tells: the thumbprint of the key that signed it."""

    jkt: str


def verify_proof(
    proof: str,
    *,
    method: str,
    url: str,
    access_token: str,
    bound_jkt: str,
    now: datetime | None = None,
    cache: ReplayCache | None = None,
) -> ProofKey:
    """Check a DPoP proof for one request presenting ``access_token`` bound to ``bound_jkt`` (module docstring)."""
    try:
        jws = parse_compact(proof.strip())
    except JoseError as exc:
        raise _refuse(f"is malformed ({exc})") from exc
    header, claims = jws.header, jws.claims
    if header.get("typ") != DPOP_PROOF_TYPE:
        raise _refuse(f"typ must be {DPOP_PROOF_TYPE}")
    alg = header.get("alg")
    if alg not in ASYMMETRIC_ALGORITHMS:
        raise _refuse(f"alg {alg!r} is not accepted ({', '.join(ASYMMETRIC_ALGORITHMS)})")
    try:
        key, key_alg = key_from_jwk(header.get("jwk"))
        if key_alg != alg:
            raise JoseError(f"alg {alg} does not fit the jwk")
        jws_verify(jws, key, key_alg)
        jkt = thumbprint(header["jwk"])
    except JoseError as exc:
        raise _refuse(f"signature or key refused ({exc})") from exc
    for name in ("jti", "htm", "htu", "ath"):
        if not isinstance(claims.get(name), str) or not claims[name]:
            raise _refuse(f"lacks the {name} claim")
    iat = claims.get("iat")
    if not isinstance(iat, int | float) or isinstance(iat, bool):
        raise _refuse("lacks the iat claim")
    if claims["htm"] != method.upper():
        raise _refuse(f"is for method {claims['htm']!r}, not {method.upper()}")
    if normalise_url(claims["htu"]) != normalise_url(url):
        raise _refuse("is for another URL")
    current = now.timestamp() if now is not None else time.time()
    if iat < current - MAX_AGE or iat > current + MAX_SKEW:
        raise _refuse("iat is outside the acceptance window")
    if claims["ath"] != access_token_hash(access_token):
        raise _refuse("ath does not match the access token")
    if jkt != bound_jkt:
        raise _refuse("key is not the one the access token is bound to")
    replay = cache if cache is not None else _PROCESS_CACHE
    if not replay.remember(f"{jkt}:{claims['jti']}", iat + MAX_AGE + MAX_SKEW, current):
        raise _refuse("was already used (replay)")
    return ProofKey(jkt)
