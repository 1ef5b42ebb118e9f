"""DPoP-bound tokens (RFC 9449): a valid proof is accepted; every check of §4.3 refuses with 401.

Proofs are built here with ``cryptography`` alone (not with the product's JOSE code), the thumbprint by hand per
RFC 7638, so the product is checked against the RFCs rather than against itself."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from core.errors import AuthenticationError
from core.home import Home
from services.dpop import ReplayCache, normalise_url
from services.tokens import authenticate, create_token

URL = "http://127.0.0.1:8470/api/export/runs/r1/download"
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Client:
    """A DPoP client key: its public JWK, RFC 7638 thumbprint, and proofs it signs."""

    def __init__(self, kind: str = "ec") -> None:
        self.kind = kind
        if kind == "ec":
            self.key: Any = ec.generate_private_key(ec.SECP256R1())
            n = self.key.public_key().public_numbers()
            self.jwk = {
                "kty": "EC",
                "crv": "P-256",
                "x": b64(n.x.to_bytes(32, "big")),
                "y": b64(n.y.to_bytes(32, "big")),
            }
            members = f'{{"crv":"P-256","kty":"EC","x":"{self.jwk["x"]}","y":"{self.jwk["y"]}"}}'
            self.alg = "ES256"
        else:
            self.key = ed25519.Ed25519PrivateKey.generate()
            raw = self.key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            self.jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64(raw)}
            members = f'{{"crv":"Ed25519","kty":"OKP","x":"{self.jwk["x"]}"}}'
            self.alg = "EdDSA"
        self.jkt = b64(hashlib.sha256(members.encode()).digest())

    def sign(self, header: dict[str, Any], claims: dict[str, Any]) -> str:
        signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}".encode()
        if self.kind == "ec":
            r, s = decode_dss_signature(self.key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
            sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        else:
            sig = self.key.sign(signing_input)
        return f"{signing_input.decode()}.{b64(sig)}"

    def proof(
        self, token: str, *, method: str = "GET", url: str = URL, iat: datetime = NOW, drop: str = "", **change: Any
    ) -> str:
        """A proof for one request; ``change`` sets a header or claim member (None drops it), ``drop`` a claim."""
        header = {"typ": "dpop+jwt", "alg": self.alg, "jwk": self.jwk}
        claims = {
            "jti": str(uuid.uuid4()),
            "htm": method,
            "htu": url,
            "iat": int(iat.timestamp()),
            "ath": b64(hashlib.sha256(token.encode()).digest()),
        }
        for name, value in change.items():
            target: dict[str, Any] = header if name in ("typ", "alg", "jwk") else claims
            if value is None:
                target.pop(name, None)
            else:
                target[name] = value
        claims.pop(drop, None)
        return self.sign(header, claims)


@pytest.fixture
def h(tmp_path: Path) -> Home:
    return Home(tmp_path / "home")


def _bound(h: Home, client: Client) -> str:
    _, token = create_token(
        h, tenant="acme", scopes=["export:download"], ttl=timedelta(hours=1), subject="ci", dpop_jkt=client.jkt, now=NOW
    )
    return token


def _call(h: Home, token: str, proof: str | None, *, method: str = "GET", url: str = URL, scheme: str = "DPoP") -> Any:
    return authenticate(h, authorization=f"{scheme} {token}", dpop=proof, method=method, url=url, now=NOW)


@pytest.mark.parametrize("kind", ["ec", "ed25519"])
def test_a_valid_proof_is_accepted_for_its_key(h: Home, kind: str) -> None:
    client = Client(kind)
    token = _bound(h, client)
    principal = _call(h, token, client.proof(token))
    assert principal.dpop_jkt == client.jkt and principal.tenant == "acme"
    # htu is compared without query or fragment, with host case and default port normalised.
    upper = "HTTP://127.0.0.1:8470/api/export/runs/r1/download"
    assert _call(h, token, client.proof(token, url=upper), url=URL + "?x=1#f").tenant == "acme"


def _refused(h: Home, token: str, proof: str | None, match: str, **kw: Any) -> None:
    with pytest.raises(AuthenticationError, match=match) as exc:
        _call(h, token, proof, **kw)
    assert exc.value.http_status == 401
    assert exc.value.www_authenticate.startswith('DPoP algs="ES256 EdDSA"')
    assert token not in exc.value.diagnostics() and token not in exc.value.www_authenticate


def test_a_replayed_proof_is_refused(h: Home) -> None:
    client = Client()
    token = _bound(h, client)
    proof = client.proof(token)
    _call(h, token, proof)
    _refused(h, token, proof, "replay")


def test_wrong_method_or_url_is_refused(h: Home) -> None:
    client = Client()
    token = _bound(h, client)
    _refused(h, token, client.proof(token, method="POST"), "method")
    _refused(h, token, client.proof(token, url="http://127.0.0.1:8470/api/export/runs/r2/download"), "another URL")
    _refused(h, token, client.proof(token, url="http://127.0.0.1:8471/api/export/runs/r1/download"), "another URL")
    _refused(h, token, client.proof(token, url="https://127.0.0.1:8470/api/export/runs/r1/download"), "another URL")


def test_a_proof_from_another_key_is_refused(h: Home) -> None:
    client, thief = Client(), Client()
    token = _bound(h, client)
    _refused(h, token, thief.proof(token), "not the one the access token is bound to")
    # The thief's key in the header with the client's signature does not verify.
    good = client.proof(token)
    head, body, sig = good.split(".")
    swapped = json.loads(base64.urlsafe_b64decode(head + "=="))
    swapped["jwk"] = thief.jwk
    _refused(h, token, f"{b64(json.dumps(swapped).encode())}.{body}.{sig}", "bad signature")


def test_a_missing_or_wrong_access_token_hash_is_refused(h: Home) -> None:
    client = Client()
    token = _bound(h, client)
    _refused(h, token, client.proof(token, ath=None), "lacks the ath claim")
    _refused(h, token, client.proof(token, ath=b64(hashlib.sha256(b"other").digest())), "ath does not match")


def test_missing_proof_or_bound_token_sent_as_bearer_is_refused(h: Home) -> None:
    client = Client()
    token = _bound(h, client)
    _refused(h, token, None, "proof missing")
    with pytest.raises(AuthenticationError, match="DPoP scheme"):
        _call(h, token, client.proof(token), scheme="Bearer")
    _refused(h, token, f"{client.proof(token)}, {client.proof(token)}", "more than one")


def test_stale_future_and_malformed_proofs_are_refused(h: Home) -> None:
    client = Client()
    token = _bound(h, client)
    _refused(h, token, client.proof(token, iat=NOW - timedelta(minutes=5)), "acceptance window")
    _refused(h, token, client.proof(token, iat=NOW + timedelta(minutes=5)), "acceptance window")
    _refused(h, token, client.proof(token, typ="JWT"), "typ")
    _refused(h, token, client.proof(token, alg="none"), "alg")
    _refused(h, token, client.proof(token, alg="HS256"), "alg")
    _refused(h, token, client.proof(token, alg="EdDSA"), "does not fit")
    _refused(h, token, client.proof(token, jwk={**client.jwk, "d": "AAAA"}), "private")
    _refused(h, token, client.proof(token, jwk=None), "jwk")
    for claim in ("jti", "htm", "htu", "iat"):
        _refused(h, token, client.proof(token, drop=claim), claim)
    _refused(h, token, "not-a-jwt", "malformed")


def test_the_replay_cache_is_bounded_and_forgets_expired_ids() -> None:
    cache = ReplayCache(size=3)
    assert cache.remember("a", forget_after=100, now=0)
    assert not cache.remember("a", forget_after=100, now=1)
    for key in ("b", "c", "d"):
        assert cache.remember(key, forget_after=100, now=2)
    assert len(cache) == 3
    assert cache.remember("e", forget_after=300, now=150)  # everything earlier has expired
    assert len(cache) == 1


def test_urls_are_normalised_as_rfc_3986_says() -> None:
    assert normalise_url("HTTP://Example.COM:80/a%7eb?q#f") == "http://example.com/a~b"
    assert normalise_url("https://h:443") == "https://h/"
    assert normalise_url("http://h:8080/x%2fy") == "http://h:8080/x%2Fy"  # a reserved escape stays escaped
    assert normalise_url("http://[::1]:8470/a") == "http://[::1]:8470/a"
