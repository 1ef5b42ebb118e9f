"""``POST /api/v1/verify`` with an uploaded bundle, and ``POST /api/v1/evidence/snapshot``, against a served
instance (and, for the upload limit, the app in process with a small limit)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.api.server import create_app
from core.home import Home
from services.tokens import create_token
from tests.conftest import ROOT
from tests.contract.conftest import SIGNING_KEY, Served
from tests.contract.test_sdk_download import finished_run


@pytest.fixture(scope="module")
def run(served: Served) -> dict[str, Any]:
    return finished_run(served)


def trust_the_signer(served: Served) -> None:
    pub = served.home.keys_dir / f"{SIGNING_KEY}.pub"
    stella = [sys.executable, "-m", "app.cli", "--home", str(served.home.root), "--json"]
    listed = subprocess.run([*stella, "trust", "list"], cwd=ROOT, capture_output=True, text=True, check=True)
    if SIGNING_KEY not in listed.stdout:
        subprocess.run(
            [*stella, "trust", "add", SIGNING_KEY, str(pub)], cwd=ROOT, capture_output=True, check=True, timeout=60
        )


def _auth(token: str, media: str = "application/octet-stream") -> dict[str, str]:
    # The report as one document (the default is a stream of lines: tests/integration/test_api_verify_stream.py).
    return {"Authorization": f"Bearer {token}", "Content-Type": media, "Accept": "application/json"}


def _bundle(served: Served, run: dict[str, Any]) -> bytes:
    url = f"{served.base_url}/api/v1/export/runs/{run['id']}/download"
    return httpx.get(url, headers={"Authorization": f"Bearer {served.token}"}, timeout=60).content


def _spool(home: Home) -> list[Path]:
    return sorted((home.root / "tmp").glob("*")) if (home.root / "tmp").is_dir() else []


def test_an_uploaded_bundle_is_verified_check_by_check_like_the_run(served: Served, run: dict[str, Any]) -> None:
    url = f"{served.base_url}/api/v1/verify"
    by_run = httpx.post(url, json={"run": run["id"]}, headers=_auth(served.token, "application/json"), timeout=60)
    bundle = _bundle(served, run)
    trust_the_signer(served)  # an upload is checked against the home's trust store, as `stella verify` without --key
    uploaded = httpx.post(url, content=bundle, headers=_auth(served.token), timeout=60)
    assert uploaded.status_code == 200, uploaded.text
    report = uploaded.json()
    assert report["verified"] is True and report["exitCode"] == 0 and "bundle" not in report, report.get("error")
    assert [c["check"] for c in report["checks"]] == [c["check"] for c in by_run.json()["checks"]]
    assert report["manifest"]["runId"] == run["id"]
    assert _spool(served.home) == []  # the temporary file is gone


def test_a_tampered_upload_fails_with_the_integrity_exit_code_and_leaves_nothing(
    served: Served, run: dict[str, Any]
) -> None:
    trust_the_signer(served)
    data = bytearray(_bundle(served, run))
    data[len(data) // 2] ^= 0xFF
    response = httpx.post(f"{served.base_url}/api/v1/verify", content=bytes(data), headers=_auth(served.token))
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["verified"] is False and report["exitCode"] in (3, 4, 5), report
    assert report["error"]["exitCode"] == report["exitCode"] and report["error"]["message"], report
    garbage = httpx.post(f"{served.base_url}/api/v1/verify", content=b"not a bundle", headers=_auth(served.token))
    assert garbage.status_code in (200, 422) and garbage.json()["exitCode"] == 3, garbage.text
    assert _spool(served.home) == []


def test_an_upload_needs_a_token_and_a_known_media_type(served: Served, run: dict[str, Any]) -> None:
    url = f"{served.base_url}/api/v1/verify"
    anonymous = httpx.post(url, content=b"x" * 1000, headers={"Content-Type": "application/octet-stream"})
    assert anonymous.status_code == 401
    text = httpx.post(url, content=b"hello", headers=_auth(served.token, "text/plain"))
    assert text.status_code == 415 and text.headers["content-type"] == "application/problem+json"
    assert text.json()["code"] == "unsupported-media-type"
    assert _spool(served.home) == []


@pytest.fixture
def small(tmp_path: Path) -> Iterator[tuple[TestClient, Home, str]]:
    home = Home(tmp_path / "home").ensure()
    _, token = create_token(home, tenant="default", scopes=["export:read"], ttl=timedelta(minutes=5), subject="t")
    with TestClient(create_app(home, max_upload=1000)) as client:
        yield client, home, token


def test_an_upload_over_the_limit_is_a_413_problem_and_leaves_no_file(small: tuple[TestClient, Home, str]) -> None:
    client, home, token = small
    declared = client.post("/api/v1/verify", content=b"x" * 1001, headers=_auth(token))
    assert declared.status_code == 413 and declared.headers["content-type"] == "application/problem+json"
    assert declared.json()["code"] == "payload-too-large" and "1000 bytes" in declared.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        for _ in range(5):
            yield b"y" * 300

    streamed = client.post("/api/v1/verify", content=chunks(), headers=_auth(token))
    assert streamed.status_code == 413, streamed.text
    assert _spool(home) == []


def test_a_snapshot_seals_the_run_into_the_tenants_locker(served: Served, run: dict[str, Any]) -> None:
    url = f"{served.base_url}/api/v1/evidence/snapshot"
    body = {"kind": "run", "ref": run["id"], "key": SIGNING_KEY, "reason": "audit"}
    sealed = httpx.post(url, json=body, headers={"Authorization": f"Bearer {served.token}"}, timeout=60)
    assert sealed.status_code == 201, sealed.text
    bundle = sealed.json()
    assert bundle["kind"] == "run" and bundle["subject"] == run["id"] and bundle["tenant"] == "default"
    shown = httpx.get(
        f"{served.base_url}/api/v1/evidence/{bundle['id']}", headers={"Authorization": f"Bearer {served.token}"}
    )
    assert shown.status_code == 200 and shown.json()["digest"] == bundle["digest"]
    theirs = httpx.post(url, json=body, headers={"Authorization": f"Bearer {served.other_token}"}, timeout=60)
    assert theirs.status_code == 404 and theirs.headers["content-type"] == "application/problem+json"
    for bad in ({**body, "kind": "image"}, {**body, "key": ""}, {"kind": "run", "ref": run["id"]}):
        refused = httpx.post(url, json=bad, headers={"Authorization": f"Bearer {served.token}"})
        assert refused.status_code == 422 and refused.headers["content-type"] == "application/problem+json", bad
    no_key = httpx.post(
        url, json={**body, "key": "no-such-key"}, headers={"Authorization": f"Bearer {served.token}"}, timeout=60
    )
    assert no_key.status_code in (400, 404) and no_key.headers["content-type"] == "application/problem+json"
