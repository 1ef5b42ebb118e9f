"""Who may do what, over HTTP against a served instance: 401 without a valid credential, 403 without the scope,
404 for another tenant's objects, and DPoP-bound tokens end to end (docs/api-auth.md)."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from core.contract.api import SCOPES
from services.tokens import create_token
from tests.conftest import ROOT
from tests.contract.conftest import TENANT, Served
from tests.contract.test_sdk_download import finished_run

SPEC = json.loads((ROOT / "docs" / "openapi.json").read_text(encoding="utf-8"))
PUBLIC = {"/health/ready"}
#: The scope each operation needs (docs/api-auth.md); an operation missing here fails the test.
NEEDS = {
    ("get", "/api/v1/export/profiles"): "export:read",
    ("get", "/api/v1/export/profiles/{profile_id}"): "export:read",
    ("post", "/api/v1/export/profiles"): "export:profile:manage",
    ("patch", "/api/v1/export/profiles/{profile_id}"): "export:profile:manage",
    ("get", "/api/v1/export/runs"): "export:read",
    ("post", "/api/v1/export/runs"): "export:run",
    ("get", "/api/v1/export/runs/{run_id}"): "export:read",
    ("post", "/api/v1/export/runs/{run_id}/cancel"): "export:run",
    ("get", "/api/v1/export/runs/{run_id}/events"): "export:read",
    ("get", "/api/v1/export/runs/{run_id}/download"): "export:download",
    ("get", "/api/v1/export/runs/{run_id}/manifest"): "export:download",
    ("get", "/api/v1/export/runs/{run_id}/provenance"): "export:download",
    ("get", "/api/v1/export/runs/{run_id}/attestation"): "export:download",
    ("post", "/api/v1/export/runs/{run_id}/distributions"): "export:run",
    ("get", "/api/v1/export/runs/{run_id}/distributions"): "export:read",
    ("post", "/api/v1/verify"): "export:read",
    ("post", "/api/v1/kit/verify"): "export:read",
    ("get", "/api/v1/export/runs/{run_id}/bootstrap"): "export:read",
    ("post", "/api/v1/export/runs/{run_id}/bootstrap/push"): "export:run",
    ("get", "/metrics"): "export:read",
    ("get", "/api/v1/timeline"): "timeline:read",
    ("get", "/api/v1/timeline/{event_id}"): "timeline:read",
    ("get", "/api/v1/timeline/{event_id}/evidence"): "timeline:read",
    ("get", "/api/v1/evidence/{evidence_id}"): "evidence:read",
    ("post", "/api/v1/evidence/verify"): "evidence:read",
    ("post", "/api/v1/evidence/hold/{case_id}"): "evidence:hold",
    ("post", "/api/v1/evidence/snapshot"): "evidence:hold",
}
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/api/v1/export/profiles"): {"id": "matrix", "base": "json:raw", "settings": {}},
    ("patch", "/api/v1/export/profiles/{profile_id}"): {"settings": {"compression_level": "3"}},
    ("post", "/api/v1/export/runs"): {"profile": "json:raw", "options": {"key": "api-key"}},
    ("post", "/api/v1/verify"): {"run": "{run_id}"},
    ("post", "/api/v1/export/runs/{run_id}/distributions"): {"to": "{distribute_dir}"},
    ("post", "/api/v1/kit/verify"): {"dirs": ["/"]},
    ("post", "/api/v1/export/runs/{run_id}/bootstrap/push"): {"registry": "127.0.0.1:9/matrix", "plainHttp": True},
    ("post", "/api/v1/evidence/verify"): {"id": "no-such-evidence"},
    ("post", "/api/v1/evidence/hold/{case_id}"): {"bundle": "no-such-evidence", "reason": "matrix"},
    ("post", "/api/v1/evidence/snapshot"): {"kind": "run", "ref": "{run_id}", "key": "api-key"},
}


def _operations() -> list[tuple[str, str]]:
    return sorted(
        (method, path)
        for path, item in SPEC["paths"].items()
        for method in item
        if method in ("get", "post", "patch", "put", "delete") and path not in PUBLIC
    )


def _token(served: Served, scopes: list[str], tenant: str = TENANT) -> str:
    _, token = create_token(served.home, tenant=tenant, scopes=scopes, ttl=timedelta(minutes=10), subject="matrix")
    return token


def _call(served: Served, method: str, path: str, run_id: str, headers: dict[str, str]) -> httpx.Response:
    ids = {"run_id": run_id, "profile_id": "json:raw", "event_id": "no-such-event", "evidence_id": "no-such-evidence"}
    url = served.base_url + path.format(case_id="case-matrix", **ids)
    body = BODIES.get((method, path))
    if body is not None:
        values = {"run_id": run_id, "distribute_dir": served.distribute_dir}
        body = {k: v.format(**values) for k, v in body.items() if isinstance(v, str)} | {
            k: v for k, v in body.items() if not isinstance(v, str)
        }
    return httpx.request(method, url, headers=headers, json=body, timeout=30)


def _is_problem(response: httpx.Response) -> bool:
    media = response.headers.get("content-type", "").split(";")[0]
    return media == "application/problem+json" and response.json()["status"] == response.status_code


@pytest.fixture(scope="module")
def run(served: Served) -> dict[str, Any]:
    return finished_run(served)


def test_every_operation_is_in_the_scope_table() -> None:
    assert set(_operations()) == set(NEEDS)


def test_no_or_bad_credentials_are_401_problems_with_a_challenge(served: Served, run: dict[str, Any]) -> None:
    expired = _token(served, list(SCOPES))
    for method, path in _operations():
        hostile = "eyJhbGciOiJcdTAwZTlcclxuWDogeSJ9.e30.AAAA"  # {"alg":"é\r\nX: y"}
        for headers in (
            {},
            {"Authorization": "Bearer nope"},
            {"Authorization": f"Basic {expired}"},
            {"Authorization": f"Bearer {hostile}"},
        ):
            response = _call(served, method, path, run["id"], headers)
            assert response.status_code == 401, (method, path, headers, response.text)
            assert _is_problem(response) and response.headers["www-authenticate"].startswith('Bearer realm="stella"')
            assert expired not in response.text


def test_each_operation_needs_its_scope_and_only_that(served: Served, run: dict[str, Any]) -> None:
    for (method, path), scope in NEEDS.items():
        without = _token(served, [s for s in SCOPES if s != scope])
        response = _call(served, method, path, run["id"], {"Authorization": f"Bearer {without}"})
        assert response.status_code == 403, (method, path, response.text)
        assert _is_problem(response)
        assert f'error="insufficient_scope", scope="{scope}"' in response.headers["www-authenticate"]
        only = _token(served, [scope])
        allowed = _call(served, method, path, run["id"], {"Authorization": f"Bearer {only}"})
        assert allowed.status_code not in (401, 403), (method, path, allowed.text)


def test_another_tenant_sees_nothing_of_a_run(served: Served, run: dict[str, Any]) -> None:
    other = {"Authorization": f"Bearer {served.other_token}"}
    for method, path in _operations():
        if "{run_id}" not in path:
            continue
        response = _call(served, method, path, run["id"], other)
        assert response.status_code == 404, (method, path, response.text)
        assert _is_problem(response) and TENANT not in response.text
        unknown = _call(served, method, path, "run-20991231T000000Z-00000000", other)
        assert (
            unknown.status_code == 404
            and unknown.json()["detail"].replace("run-20991231T000000Z-00000000", run["id"])
            == response.json()["detail"]
        )  # the same answer as for an id that does not exist
    listed = httpx.get(f"{served.base_url}/api/v1/export/runs", headers=other).json()
    assert run["id"] not in json.dumps(listed)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _proof(key: ec.EllipticCurvePrivateKey, jwk: dict[str, str], token: str, method: str, url: str) -> str:
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}
    claims = {
        "jti": str(uuid.uuid4()),
        "htm": method,
        "htu": url,
        "iat": int(time.time()),
        "ath": _b64(hashlib.sha256(token.encode()).digest()),
    }
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}".encode()
    r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
    return f"{signing_input.decode()}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def test_a_dpop_bound_token_works_only_with_fresh_proofs_of_its_key(served: Served) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    n = key.public_key().public_numbers()
    jwk = {"kty": "EC", "crv": "P-256", "x": _b64(n.x.to_bytes(32, "big")), "y": _b64(n.y.to_bytes(32, "big"))}
    members = f'{{"crv":"P-256","kty":"EC","x":"{jwk["x"]}","y":"{jwk["y"]}"}}'
    jkt = _b64(hashlib.sha256(members.encode()).digest())
    _, token = create_token(
        served.home, tenant=TENANT, scopes=["export:read"], ttl=timedelta(minutes=10), subject="dpop", dpop_jkt=jkt
    )
    url = f"{served.base_url}/api/v1/export/runs"
    proof = _proof(key, jwk, token, "GET", url)
    ok = httpx.get(url, headers={"Authorization": f"DPoP {token}", "DPoP": proof})
    assert ok.status_code == 200, ok.text
    replayed = httpx.get(url, headers={"Authorization": f"DPoP {token}", "DPoP": proof})
    wrong_url = _proof(key, jwk, token, "GET", f"{served.base_url}/api/v1/export/profiles")
    thief = ec.generate_private_key(ec.SECP256R1())
    tn = thief.public_key().public_numbers()
    thief_jwk = {"kty": "EC", "crv": "P-256", "x": _b64(tn.x.to_bytes(32, "big")), "y": _b64(tn.y.to_bytes(32, "big"))}
    for headers in (
        {},
        {"Authorization": f"DPoP {token}"},
        {"Authorization": f"Bearer {token}"},
        {"Authorization": f"DPoP {token}", "DPoP": _proof(key, jwk, token, "POST", url)},
        {"Authorization": f"DPoP {token}", "DPoP": wrong_url},
        {"Authorization": f"DPoP {token}", "DPoP": _proof(thief, thief_jwk, token, "GET", url)},
    ):
        response = httpx.get(url, headers=headers)
        assert response.status_code == 401 and _is_problem(response), (headers.keys(), response.text)
    assert replayed.status_code == 401
    assert 'error="invalid_dpop_proof"' in replayed.headers["www-authenticate"]
    first, second = _proof(key, jwk, token, "GET", url), _proof(key, jwk, token, "GET", url)
    two = httpx.get(url, headers=[("Authorization", f"DPoP {token}"), ("DPoP", first), ("DPoP", second)])
    assert two.status_code == 401 and _is_problem(two), two.text  # RFC 9449 §4.3: exactly one proof
    alone = httpx.get(url, headers={"Authorization": f"DPoP {token}", "DPoP": second})
    assert alone.status_code == 200, alone.text  # each proof on its own was good (and neither was used up)


def test_no_token_is_401_before_the_body_is_looked_at(served: Served) -> None:
    for method, path in _operations():
        if method not in ("post", "patch"):
            continue
        url = served.base_url + path.format(run_id="r", profile_id="json:raw", case_id="c")
        for body in (b"{not json", b'{"unexpected": 1}', b"[]"):
            response = httpx.request(method, url, content=body, headers={"Content-Type": "application/json"})
            assert response.status_code == 401 and _is_problem(response), (method, path, body, response.text)
    token = {"Authorization": f"Bearer {served.token}", "Content-Type": "application/json"}
    bad = httpx.post(f"{served.base_url}/api/v1/export/runs", content=b"{not json", headers=token)
    assert bad.status_code == 422 and _is_problem(bad)  # with a token, the body is what is wrong
