"""Access tokens for the local API (services.tokens): what is accepted, and every way a token is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from core.errors import AuthenticationError, NotFoundError, PermissionDenied, UsageError
from core.home import Home
from services.tokens import (
    API_DIR,
    KEY_FILE,
    Principal,
    TokenInfo,
    authenticate,
    create_token,
    list_tokens,
    require_scope,
    revoke_token,
)

URL = "http://127.0.0.1:8470/api/export/runs"
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _parts(token: str) -> tuple[dict[str, object], dict[str, object], str]:
    head, body, sig = token.split(".")
    return json.loads(base64.urlsafe_b64decode(head + "==")), json.loads(base64.urlsafe_b64decode(body + "==")), sig


def _auth(home: Home, token: str, *, now: datetime = NOW, scheme: str = "Bearer") -> Principal:
    return authenticate(home, authorization=f"{scheme} {token}", dpop=None, method="GET", url=URL, now=now)


@pytest.fixture
def h(tmp_path: Path) -> Home:
    return Home(tmp_path / "home")


def _mint(h: Home, **kw: object) -> tuple[TokenInfo, str]:
    args: dict[str, object] = {
        "tenant": "acme",
        "scopes": ["export:read", "export:run"],
        "ttl": timedelta(hours=8),
        "subject": "ci",
        "now": NOW,
    }
    args.update(kw)
    return create_token(h, **args)  # type: ignore[arg-type]


def test_a_minted_token_authenticates_as_its_tenant_and_scopes(h: Home) -> None:
    info, token = _mint(h)
    principal = authenticate(h, authorization=f"Bearer {token}", dpop=None, method="GET", url=URL, now=NOW)
    assert principal.tenant == "acme"
    assert principal.scopes == frozenset({"export:read", "export:run"})
    assert principal.subject == "ci"
    assert principal.token_id == info.id
    assert principal.expires_at == NOW + timedelta(hours=8)
    assert principal.dpop_jkt is None
    header, claims, _ = _parts(token)
    assert header == {"alg": "ES256", "typ": "at+jwt", "kid": header["kid"]}
    assert claims["tenant"] == "acme" and claims["scope"] == "export:run export:read"
    require_scope(principal, "export:read")
    with pytest.raises(PermissionDenied) as denied:
        require_scope(principal, "export:download")
    assert denied.value.http_status == 403 and int(denied.value.exit_code) == 7
    assert 'error="insufficient_scope"' in denied.value.www_authenticate


def test_the_signing_key_and_registry_are_private_and_keep_no_token(h: Home) -> None:
    _, token = _mint(h)
    api = h.root / API_DIR
    for name in (KEY_FILE, "tokens.json"):
        assert stat.S_IMODE(os.stat(api / name).st_mode) == 0o600, name
    assert stat.S_IMODE(os.stat(api).st_mode) == 0o700
    signature = token.rsplit(".", 1)[1]
    for path in h.root.rglob("*"):
        if path.is_file():
            assert signature.encode() not in path.read_bytes(), path


def test_expired_and_not_yet_valid_tokens_are_refused(h: Home) -> None:
    _, token = _mint(h, ttl=timedelta(minutes=10))
    _auth(h, token, now=NOW + timedelta(minutes=10, seconds=29))  # within the 30 s leeway
    with pytest.raises(AuthenticationError, match="expired") as exc:
        _auth(h, token, now=NOW + timedelta(minutes=11))
    assert exc.value.http_status == 401 and int(exc.value.exit_code) == 5
    assert exc.value.www_authenticate.startswith('Bearer realm="stella", error="invalid_token"')
    with pytest.raises(AuthenticationError, match="not valid yet"):
        _auth(h, token, now=NOW - timedelta(minutes=5))


def test_a_revoked_token_is_refused_and_listed_as_revoked(h: Home) -> None:
    info, token = _mint(h)
    other, other_token = _mint(h, tenant="globex")
    revoked = revoke_token(h, info.id, now=NOW)
    assert revoked.revoked_at == NOW
    with pytest.raises(AuthenticationError, match="revoked"):
        _auth(h, token)
    assert _auth(h, other_token).tenant == "globex"
    statuses = {t.id: t.status(NOW) for t in list_tokens(h)}
    assert statuses == {info.id: "revoked", other.id: "active"}
    assert revoke_token(h, info.id).revoked_at == NOW  # again: unchanged
    with pytest.raises(NotFoundError):
        revoke_token(h, "0" * 32)


def test_a_changed_signature_or_payload_is_refused(h: Home) -> None:
    _, token = _mint(h)
    head, body, sig = token.split(".")
    flipped = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
    with pytest.raises(AuthenticationError, match="bad signature"):
        _auth(h, f"{head}.{body}.{flipped}")
    _, claims, _ = _parts(token)
    claims["scope"] = "export:read export:run export:download"
    forged_body = _b64(json.dumps(claims).encode())
    with pytest.raises(AuthenticationError, match="bad signature"):
        _auth(h, f"{head}.{forged_body}.{sig}")


def test_a_token_of_another_home_is_refused(h: Home, tmp_path: Path) -> None:
    _mint(h)
    other = Home(tmp_path / "other")
    _, foreign = _mint(other)
    with pytest.raises(AuthenticationError, match="not signed by this home"):
        _auth(h, foreign)
    # Even with this home's key id in its header, the other key's signature does not verify.
    head, _, sig = _parts(foreign)
    own_kid = _parts(_mint(h)[1])[0]["kid"]
    head["kid"] = own_kid
    relabelled = f"{_b64(json.dumps(head).encode())}.{foreign.split('.')[1]}.{sig}"
    with pytest.raises(AuthenticationError, match="bad signature"):
        _auth(h, relabelled)


def test_alg_none_and_hmac_algorithm_confusion_are_refused(h: Home) -> None:
    _, token = _mint(h)
    head = _parts(token)[0]
    body = token.split(".")[1]
    none_head = _b64(json.dumps({**head, "alg": "none"}).encode())
    with pytest.raises(AuthenticationError, match="algorithm 'none'"):
        _auth(h, f"{none_head}.{body}.")
    # HS256 keyed with the public key's PEM: the classic confusion attack.
    pem = serialization.load_pem_private_key((h.root / API_DIR / KEY_FILE).read_bytes(), None).public_key()
    public_pem = pem.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    hs_head = _b64(json.dumps({**head, "alg": "HS256"}).encode())
    mac = hmac.new(public_pem, f"{hs_head}.{body}".encode(), hashlib.sha256).digest()
    with pytest.raises(AuthenticationError, match="algorithm 'HS256'"):
        _auth(h, f"{hs_head}.{body}.{_b64(mac)}")
    # A DER-encoded ECDSA signature (what OpenSSL writes) is not the JWS form.
    with pytest.raises(AuthenticationError):
        _auth(h, f"{token.rsplit('.', 1)[0]}.{_b64(b'0' * 70)}")


def test_missing_malformed_and_unknown_credentials_are_refused(h: Home) -> None:
    _, token = _mint(h)
    with pytest.raises(AuthenticationError, match="no access token") as bare:
        authenticate(h, authorization=None, dpop=None, method="GET", url=URL, now=NOW)
    assert "error=" not in bare.value.www_authenticate  # RFC 6750 §3.1: no error code without credentials
    for value in ("Basic dXNlcjpwdw==", "Bearer", "Bearer not.a.jwt", "Bearer a.b", token):
        with pytest.raises(AuthenticationError):
            authenticate(h, authorization=value, dpop=None, method="GET", url=URL, now=NOW)
    # An unbound token under the DPoP scheme is refused (it would look proof-of-possession but is not).
    with pytest.raises(AuthenticationError, match="DPoP-bound"):
        _auth(h, token, scheme="DPoP")


def test_a_home_that_minted_nothing_refuses_every_token(tmp_path: Path) -> None:
    _, token = _mint(Home(tmp_path / "a"))
    with pytest.raises(AuthenticationError, match="minted no tokens"):
        _auth(Home(tmp_path / "b"), token)


def test_an_unrecorded_token_signed_with_the_key_is_refused(h: Home) -> None:
    _, token = _mint(h)
    registry = h.root / API_DIR / "tokens.json"
    data = json.loads(registry.read_text())
    data["tokens"] = []
    registry.write_text(json.dumps(data))
    with pytest.raises(AuthenticationError, match="unknown token id"):
        _auth(h, token)


def test_bad_requests_to_mint_are_usage_errors(h: Home) -> None:
    bad: tuple[dict[str, object], ...] = (
        {"scopes": []},
        {"scopes": ["export:everything"]},
        {"tenant": "a/b"},
        {"ttl": timedelta(days=31)},
        {"dpop_jkt": "short"},
        {"subject": "bad\nname"},
    )
    for kw in bad:
        with pytest.raises(UsageError):
            _mint(h, **kw)
    assert list_tokens(h) == []


def test_values_from_the_request_cannot_break_the_challenge_header(h: Home) -> None:
    _, token = _mint(h)
    head = _parts(token)[0]
    body = token.split(".")[1]
    for alg in ("x\r\nSet-Cookie: a=b", "é€", 'a"b\\c' * 100):
        hostile = _b64(json.dumps({**head, "alg": alg}).encode())
        with pytest.raises(AuthenticationError) as exc:
            _auth(h, f"{hostile}.{body}.AAAA")
        value = exc.value.www_authenticate
        assert all(" " <= c <= "~" for c in value), value
        description = value.split('error_description="', 1)[1]
        assert description.count('"') == 1 and description.endswith('"') and len(description) <= 201


def test_records_of_tokens_expired_over_30_days_ago_are_dropped_at_the_next_create(h: Home) -> None:
    old, _ = _mint(h, ttl=timedelta(hours=1))
    recent, _ = _mint(h, ttl=timedelta(hours=1), now=NOW + timedelta(days=20))
    assert {t.id for t in list_tokens(h)} == {old.id, recent.id}
    latest, _ = _mint(h, now=NOW + timedelta(days=31))
    assert {t.id for t in list_tokens(h)} == {recent.id, latest.id}
