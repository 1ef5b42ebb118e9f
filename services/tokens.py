"""Access tokens for the local API: minted, listed and revoked on this machine, checked on every request.

A token is a short-lived JWT (RFC 9068 ``at+jwt``) signed ES256 with a key the home generates on first use
(``api/token-signing-key.pem``, mode 0600): whoever may read the home may mint tokens, as whoever may read the
store may read its data. Claims: ``iss``/``aud`` (fixed), ``sub`` (who the token is for), ``tenant``, ``scope``
(space separated), ``iat``/``nbf``/``exp``, ``jti`` (the token id) and, for a client that keeps a key, ``cnf.jkt``
(RFC 9449 §6.1): such a token is accepted only with a DPoP proof signed by that key (:mod:`services.dpop`).

Every minted token is recorded by id (never the token itself) in ``api/tokens.json`` so that ``stella token list``
shows it and ``stella token revoke`` ends it before it expires; a token whose id is not recorded, or is revoked,
is refused. :func:`authenticate` checks, in order: a credential is given (``Bearer`` or ``DPoP`` scheme); the JWT
is well formed, ``typ`` is ``at+jwt``, ``alg`` is ES256 (nothing else is tried, so ``none`` and HMAC algorithm
confusion fail) and ``kid`` names this home's key; the signature verifies; ``iss``, ``aud``, ``nbf``/``exp`` (with
:data:`LEEWAY`), tenant and scopes are valid; the id is recorded, not revoked, and its record agrees; a DPoP-bound
token comes with the DPoP scheme and a valid proof, and an unbound one with the Bearer scheme.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from core.atomic import failing_as_environment, write_bytes
from core.contract.api import ACCESS_TOKEN_TYPE, SCOPES, TOKEN_AUDIENCE, TOKEN_ISSUER
from core.errors import (
    AuthenticationError,
    BadInputError,
    NotFoundError,
    PermissionDenied,
    UsageError,
)
from core.home import Home
from core.jose import ES256, JoseError, parse_compact, public_jwk, sign_compact, thumbprint, verify_signature
from core.tenants import validate_tenant
from services import dpop as dpop_proofs

__all__ = [
    "SCOPES",
    "Principal",
    "TokenInfo",
    "authenticate",
    "create_token",
    "list_tokens",
    "require_scope",
    "revoke_token",
]

#: The longest a token may live; tokens are meant to be short-lived and re-minted.
MAX_TTL = timedelta(days=30)
#: How long `token list` keeps showing an expired or revoked token's record after it expired.
FORGET_AFTER = timedelta(days=30)
#: Clock skew tolerated on ``nbf`` and ``exp``.
LEEWAY = timedelta(seconds=30)
API_DIR = "api"
KEY_FILE = "token-signing-key.pem"
REGISTRY_FILE = "tokens.json"
_LOCK_FILE = "tokens.lock"
_REGISTRY_VERSION = 1
_JKT = re.compile(r"^[A-Za-z0-9_-]{43}$")  # base64url of a SHA-256 digest
_SUBJECT = re.compile(r"^[^\x00-\x1f\x7f]{1,128}$")

BEARER_CHALLENGE = 'Bearer realm="stella"'


def _invalid_token(reason: str, *, scheme: str = "Bearer") -> AuthenticationError:
    head = BEARER_CHALLENGE if scheme == "Bearer" else dpop_proofs.CHALLENGE
    return AuthenticationError(
        f"access token refused: {reason}",
        www_authenticate=f'{head}, error="invalid_token", error_description="{dpop_proofs.header_safe(reason)}"',
    )


@dataclass(frozen=True)
class Principal:
    """Who a request acts for: the token's id, tenant, scopes and subject, when it ends, and its DPoP key."""

    token_id: str
    tenant: str
    scopes: frozenset[str]
    subject: str
    expires_at: datetime
    dpop_jkt: str | None


@dataclass(frozen=True)
class TokenInfo:
    """The record of a minted token (the token itself is never kept)."""

    id: str
    tenant: str
    subject: str
    scopes: tuple[str, ...]
    created_at: datetime
    expires_at: datetime
    dpop_jkt: str | None = None
    revoked_at: datetime | None = None

    def status(self, now: datetime | None = None) -> str:
        """``revoked``, ``expired`` or ``active``."""
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if (now or datetime.now(UTC)) >= self.expires_at else "active"

    def to_dict(self, now: datetime | None = None) -> dict[str, object]:
        return {
            "id": self.id,
            "tenant": self.tenant,
            "subject": self.subject,
            "scopes": list(self.scopes),
            "createdAt": _iso(self.created_at),
            "expiresAt": _iso(self.expires_at),
            "dpopJkt": self.dpop_jkt,
            "revokedAt": _iso(self.revoked_at) if self.revoked_at else None,
            "status": self.status(now),
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TokenInfo:
        revoked = raw.get("revokedAt")
        return cls(
            id=str(raw["id"]),
            tenant=str(raw["tenant"]),
            subject=str(raw["subject"]),
            scopes=tuple(str(s) for s in raw["scopes"]),
            created_at=datetime.fromisoformat(raw["createdAt"]),
            expires_at=datetime.fromisoformat(raw["expiresAt"]),
            dpop_jkt=raw.get("dpopJkt"),
            revoked_at=datetime.fromisoformat(revoked) if revoked else None,
        )


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _api_dir(home: Home) -> Path:
    return home.root / API_DIR


@contextlib.contextmanager
def _locked(home: Home) -> Iterator[None]:
    """Serialise changes to the registry and the key between processes (`token create` while `serve` runs)."""
    directory = _api_dir(home)
    with failing_as_environment(directory, "cannot prepare the token directory"):
        home.ensure()
        directory.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(directory / _LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# -- the signing key ----------------------------------------------------------------------------------------------

_key_cache: dict[Path, tuple[tuple[int, int], ec.EllipticCurvePrivateKey]] = {}


def _load_key(home: Home, *, create: bool) -> ec.EllipticCurvePrivateKey | None:
    path = _api_dir(home) / KEY_FILE
    try:
        st = path.stat()
    except FileNotFoundError:
        if not create:
            return None
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        write_bytes(path, pem, mode=0o600, what="cannot write the token signing key")
        return key
    stamp = (st.st_mtime_ns, st.st_ino)
    cached = _key_cache.get(path)
    if cached and cached[0] == stamp:
        return cached[1]
    with failing_as_environment(path, "cannot read the token signing key"):
        data = path.read_bytes()
    try:
        loaded = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise BadInputError(
            "the token signing key is not a usable PEM private key",
            path=str(path),
            hint="move it away: a new key is made at the next `stella token create` (existing tokens stop working)",
        ) from exc
    if not isinstance(loaded, ec.EllipticCurvePrivateKey) or not isinstance(loaded.curve, ec.SECP256R1):
        raise BadInputError("the token signing key is not an ECDSA P-256 key", path=str(path))
    _key_cache[path] = (stamp, loaded)
    return loaded


def _key_id(key: ec.EllipticCurvePrivateKey) -> str:
    return thumbprint(public_jwk(key.public_key()))


# -- the registry -------------------------------------------------------------------------------------------------

_registry_cache: dict[Path, tuple[tuple[int, int, int], dict[str, TokenInfo]]] = {}


def _read_registry(home: Home) -> dict[str, TokenInfo]:
    path = _api_dir(home) / REGISTRY_FILE
    try:
        st = path.stat()
    except FileNotFoundError:
        return {}
    stamp = (st.st_mtime_ns, st.st_ino, st.st_size)
    cached = _registry_cache.get(path)
    if cached and cached[0] == stamp:
        return cached[1]
    with failing_as_environment(path, "cannot read the token registry"):
        data = path.read_bytes()
    try:
        raw = json.loads(data)
        if raw.get("version") != _REGISTRY_VERSION:
            raise ValueError("unknown version")
        tokens = {info.id: info for info in (TokenInfo.from_dict(item) for item in raw["tokens"])}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BadInputError(
            f"the token registry is damaged ({exc})",
            path=str(path),
            hint="move it away: every token minted so far then stops working; mint new ones",
        ) from exc
    _registry_cache[path] = (stamp, tokens)
    return tokens


def _write_registry(home: Home, tokens: Iterable[TokenInfo]) -> None:
    body = {"version": _REGISTRY_VERSION, "tokens": [t.to_dict() for t in tokens]}
    data = json.dumps(body, indent=2, sort_keys=True).encode("utf-8") + b"\n"
    write_bytes(_api_dir(home) / REGISTRY_FILE, data, mode=0o600, what="cannot write the token registry")


# -- minting, listing, revoking -----------------------------------------------------------------------------------


def _check_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    wanted = set(scopes)
    if not wanted:
        raise UsageError("a token needs at least one --scope", hint=f"scopes: {', '.join(SCOPES)}")
    unknown = sorted(wanted - set(SCOPES))
    if unknown:
        raise UsageError(f"unknown scope {unknown[0]!r}", hint=f"scopes: {', '.join(SCOPES)}")
    return tuple(s for s in SCOPES if s in wanted)


def create_token(
    home: Home,
    *,
    tenant: str,
    scopes: Iterable[str],
    ttl: timedelta,
    subject: str,
    dpop_jkt: str | None = None,
    now: datetime | None = None,
) -> tuple[TokenInfo, str]:
    """Mint a token for ``tenant`` with ``scopes``, valid for ``ttl`` (at most :data:`MAX_TTL`), optionally bound
    to the DPoP key whose RFC 7638 thumbprint is ``dpop_jkt``. Returns its record and the token (shown once)."""
    validate_tenant(tenant)
    granted = _check_scopes(scopes)
    if ttl <= timedelta(0) or ttl > MAX_TTL:
        raise UsageError(f"a token lives at most {MAX_TTL.days} days", hint="choose a shorter --ttl, e.g. 8h")
    if not _SUBJECT.match(subject):
        raise UsageError(f"invalid subject {subject!r}", hint="1 to 128 printable characters")
    if dpop_jkt is not None and not _JKT.match(dpop_jkt):
        raise UsageError(
            f"--dpop-jkt {dpop_jkt!r} is not a JWK SHA-256 thumbprint",
            hint="the 43-character base64url RFC 7638 thumbprint of the client's public key",
        )
    issued = (now or datetime.now(UTC)).replace(microsecond=0)
    info = TokenInfo(
        id=secrets.token_hex(16),
        tenant=tenant,
        subject=subject,
        scopes=granted,
        created_at=issued,
        expires_at=issued + ttl,
        dpop_jkt=dpop_jkt,
    )
    with _locked(home):
        key = _load_key(home, create=True)
        assert key is not None
        registry = _read_registry(home)
        claims: dict[str, Any] = {
            "iss": TOKEN_ISSUER,
            "aud": TOKEN_AUDIENCE,
            "sub": subject,
            "tenant": tenant,
            "scope": " ".join(granted),
            "iat": int(issued.timestamp()),
            "nbf": int(issued.timestamp()),
            "exp": int(info.expires_at.timestamp()),
            "jti": info.id,
        }
        if dpop_jkt is not None:
            claims["cnf"] = {"jkt": dpop_jkt}
        token = sign_compact({"typ": ACCESS_TOKEN_TYPE, "kid": _key_id(key)}, claims, key)
        # Records of tokens expired long ago go: their tokens are refused by `exp` alone, and the file stays small.
        kept = [t for t in registry.values() if t.expires_at > issued - FORGET_AFTER]
        _write_registry(home, [*kept, info])
    return info, token


def list_tokens(home: Home) -> list[TokenInfo]:
    """Every token minted by this home, oldest first, with its status."""
    return sorted(_read_registry(home).values(), key=lambda t: (t.created_at, t.id))


def revoke_token(home: Home, token_id: str, *, now: datetime | None = None) -> TokenInfo:
    """End a token before it expires (its record stays, marked revoked); revoking it again changes nothing."""
    with _locked(home):
        registry = _read_registry(home)
        info = registry.get(token_id)
        if info is None:
            raise NotFoundError(f"no token {token_id!r}", hint="see `stella token list`")
        if info.revoked_at is None:
            info = replace(info, revoked_at=(now or datetime.now(UTC)).replace(microsecond=0))
            _write_registry(home, [info if t.id == token_id else t for t in registry.values()])
    return info


# -- checking a request -------------------------------------------------------------------------------------------


def _claim_time(claims: dict[str, Any], name: str, scheme: str) -> datetime:
    value = claims.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _invalid_token(f"the {name} claim is missing or not an integer", scheme=scheme)
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise _invalid_token(f"the {name} claim is out of range", scheme=scheme) from exc


def authenticate(
    home: Home,
    *,
    authorization: str | None,
    dpop: str | None,
    method: str,
    url: str,
    now: datetime | None = None,
) -> Principal:
    """The principal a request's ``Authorization`` (and ``DPoP``) header values prove; else AuthenticationError."""
    if not authorization or not authorization.strip():
        raise AuthenticationError("no access token", www_authenticate=f"{BEARER_CHALLENGE}, {dpop_proofs.CHALLENGE}")
    scheme_raw, _, token = authorization.strip().partition(" ")
    scheme = scheme_raw.lower()
    token = token.strip()
    if scheme not in ("bearer", "dpop") or not token:
        raise _invalid_token("the Authorization header is not 'Bearer TOKEN' or 'DPoP TOKEN'")
    shown = "Bearer" if scheme == "bearer" else "DPoP"
    key = _load_key(home, create=False)
    if key is None:
        raise _invalid_token("this home has minted no tokens", scheme=shown)
    try:
        jws = parse_compact(token)
    except JoseError as exc:
        raise _invalid_token(f"malformed ({exc})", scheme=shown) from exc
    if jws.header.get("typ") != ACCESS_TOKEN_TYPE:
        raise _invalid_token(f"typ is not {ACCESS_TOKEN_TYPE}", scheme=shown)
    if jws.header.get("kid") != _key_id(key):
        raise _invalid_token("not signed by this home's token key", scheme=shown)
    try:
        verify_signature(jws, key.public_key(), ES256)
    except JoseError as exc:
        raise _invalid_token(str(exc), scheme=shown) from exc
    claims = jws.claims
    if claims.get("iss") != TOKEN_ISSUER or claims.get("aud") != TOKEN_AUDIENCE:
        raise _invalid_token("wrong issuer or audience", scheme=shown)
    current = now or datetime.now(UTC)
    if current + LEEWAY < _claim_time(claims, "nbf", shown):
        raise _invalid_token("not valid yet", scheme=shown)
    expires = _claim_time(claims, "exp", shown)
    if current - LEEWAY >= expires:
        raise _invalid_token("expired", scheme=shown)
    token_id, tenant, scope, subject = (claims.get(n) for n in ("jti", "tenant", "scope", "sub"))
    if not all(isinstance(v, str) for v in (token_id, tenant, scope, subject)):
        raise _invalid_token("jti, tenant, scope or sub missing", scheme=shown)
    assert isinstance(token_id, str) and isinstance(tenant, str) and isinstance(scope, str)
    assert isinstance(subject, str)
    record = _read_registry(home).get(token_id)
    if record is None:
        raise _invalid_token("unknown token id", scheme=shown)
    if record.revoked_at is not None:
        raise _invalid_token("revoked", scheme=shown)
    scopes = frozenset(scope.split(" "))
    cnf = claims.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    if record.tenant != tenant or frozenset(record.scopes) != scopes or record.dpop_jkt != jkt:
        raise _invalid_token("claims disagree with the token's record", scheme=shown)
    if jkt is not None:
        if scheme != "dpop":
            raise _invalid_token("a DPoP-bound token must be sent with the DPoP scheme and a proof", scheme="DPoP")
        if not dpop or not dpop.strip():
            raise AuthenticationError(
                "DPoP proof missing",
                www_authenticate=dpop_proofs.challenge("invalid_dpop_proof", "DPoP proof missing"),
            )
        if "," in dpop.strip():  # two DPoP header fields joined into one value (RFC 9449 §4.3 check 1)
            raise AuthenticationError(
                "more than one DPoP proof",
                www_authenticate=dpop_proofs.challenge("invalid_dpop_proof", "exactly one DPoP proof is allowed"),
            )
        dpop_proofs.verify_proof(dpop, method=method, url=url, access_token=token, bound_jkt=jkt, now=now)
    elif scheme == "dpop":
        raise _invalid_token("the DPoP scheme needs a DPoP-bound token; send this one as Bearer", scheme="DPoP")
    return Principal(
        token_id=token_id,
        tenant=tenant,
        scopes=scopes,
        subject=subject,
        expires_at=expires,
        dpop_jkt=jkt,
    )


def require_scope(principal: Principal, scope: str) -> None:
    """Refuse (403, ``insufficient_scope``) a principal without ``scope``."""
    if scope not in principal.scopes:
        raise PermissionDenied(
            f"the token lacks the scope {scope}",
            scope=scope,
            www_authenticate=f'{BEARER_CHALLENGE}, error="insufficient_scope", scope="{scope}"',
            hint="mint a token with it: stella token create --scope " + scope,
        )
