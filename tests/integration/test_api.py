"""`stella serve` over real HTTP: a uvicorn subprocess on a free loopback port, driven with httpx.

Two tenants with the samples imported and a signing key; tokens minted with `stella token create`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.contract.api import SCOPES
from tests.conftest import ROOT

SAMPLES = ROOT / "samples"
PROBLEM = "application/problem+json"


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, STELLA_HOME=str(home))
    code = "import sys; from app.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, cwd=ROOT)


def mint(home: Path, tenant: str, *scopes: str) -> str:
    args = ["token", "create", "--tenant", tenant, "--ttl", "1h"]
    for scope in scopes:
        args += ["--scope", scope]
    done = cli(home, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


class Server:
    def __init__(self, home: Path, env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> None:
        code = "import sys; from app.cli import main; sys.exit(main(sys.argv[1:]))"
        self.stderr_path = home.parent / f"serve-{os.getpid()}-{id(self)}.err"
        self.err = self.stderr_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, "serve", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=self.err,
            text=True,
            env=dict(os.environ, STELLA_HOME=str(home), **(env or {})),
            cwd=ROOT,
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip().rstrip("/")
        assert self.url.startswith("http://127.0.0.1:"), self.stderr()
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(self.url + "/health/ready", timeout=5)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stderr(self) -> str:
        self.err.flush()
        return self.stderr_path.read_text()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)
        self.err.close()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("api") / "home"
    samples = [str(p) for p in sorted(SAMPLES.iterdir()) if p.is_dir()]
    for tenant in ("acme", "globex"):
        done = cli(home, "import", "--quiet", "--tenant", tenant, *samples)
        assert done.returncode == 0, done.stderr
    assert cli(home, "keys", "generate", "k").returncode == 0
    server = Server(home)
    tokens = {tenant: mint(home, tenant, *SCOPES) for tenant in ("acme", "globex")}
    try:
        yield {"home": home, "server": server, "url": server.url, "tokens": tokens}
    finally:
        server.stop()


def auth(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


def start_run(api: dict[str, Any], tenant: str = "acme", key: str | None = None, **body: Any) -> httpx.Response:
    headers = auth(api["tokens"][tenant])
    if key is not None:
        headers["Idempotency-Key"] = key
    payload = {"profile": "json:raw", "selectors": {}, "options": {"key": "k"}} | body
    return httpx.post(f"{api['url']}/api/v1/export/runs", json=payload, headers=headers, timeout=60)


def wait_done(api: dict[str, Any], run_id: str, tenant: str = "acme") -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        got = httpx.get(f"{api['url']}/api/v1/export/runs/{run_id}", headers=auth(api["tokens"][tenant]), timeout=30)
        assert got.status_code == 200, got.text
        view: dict[str, Any] = got.json()
        if view["status"] in ("succeeded", "failed", "aborted"):
            return view
        assert time.monotonic() < deadline, view
        time.sleep(0.2)


@pytest.fixture(scope="module")
def done_run(api: dict[str, Any]) -> dict[str, Any]:
    created = start_run(api)
    assert created.status_code == 202, created.text
    view = wait_done(api, created.json()["id"])
    assert view["status"] == "succeeded", view
    return view


def assert_problem(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"].endswith(body["code"])
    if code is not None:
        assert body["code"] == code, body
    return body


# -- authentication, scopes and tenants ----------------------------------------------------------------------------
ENDPOINTS = [  # method, path template, the scope it needs
    ("GET", "/api/v1/export/profiles", "export:read"),
    ("POST", "/api/v1/export/profiles", "export:profile:manage"),
    ("PATCH", "/api/v1/export/profiles/lean", "export:profile:manage"),
    ("GET", "/api/v1/export/runs", "export:read"),
    ("POST", "/api/v1/export/runs", "export:run"),
    ("GET", "/api/v1/export/runs/{run}", "export:read"),
    ("GET", "/api/v1/export/runs/{run}/events", "export:read"),
    ("POST", "/api/v1/export/runs/{run}/cancel", "export:run"),
    ("GET", "/api/v1/export/runs/{run}/download", "export:download"),
    ("GET", "/api/v1/export/runs/{run}/manifest", "export:download"),
    ("GET", "/api/v1/export/runs/{run}/provenance", "export:download"),
    ("GET", "/api/v1/export/runs/{run}/attestation", "export:download"),
    ("POST", "/api/v1/verify", "export:read"),
    ("GET", "/metrics", "export:read"),
    ("GET", "/api/v1/timeline", "timeline:read"),
    ("GET", "/api/v1/timeline/some-event", "timeline:read"),
    ("GET", "/api/v1/timeline/some-event/evidence", "timeline:read"),
    ("GET", "/api/v1/evidence/some-bundle", "evidence:read"),
    ("POST", "/api/v1/evidence/verify", "evidence:read"),
    ("POST", "/api/v1/evidence/hold/CASE-9", "evidence:hold"),
]
BODIES = {
    ("POST", "/api/v1/export/profiles"): {"id": "nope", "base": "json:raw"},
    ("PATCH", "/api/v1/export/profiles/lean"): {"settings": {"compression_level": "3"}},
    ("POST", "/api/v1/export/runs"): {"profile": "json:raw", "options": {"key": "k"}},
    ("POST", "/api/v1/verify"): {"run": "r-1"},
    ("POST", "/api/v1/evidence/verify"): {"id": "some-bundle"},
    ("POST", "/api/v1/evidence/hold/CASE-9"): {"bundle": "some-bundle", "reason": "audit"},
}


@pytest.mark.parametrize(("method", "path", "scope"), ENDPOINTS)
def test_no_token_401_wrong_scope_403(
    api: dict[str, Any], done_run: dict[str, Any], method: str, path: str, scope: str
) -> None:
    url = api["url"] + path.format(run=done_run["id"])
    body = BODIES.get((method, path))
    bare = httpx.request(method, url, json=body, timeout=30)
    assert_problem(bare, 401, "unauthenticated")
    assert bare.headers["www-authenticate"].startswith("Bearer")
    forged = httpx.request(method, url, json=body, headers=auth(api["tokens"]["acme"][:-4] + "AAAA"), timeout=30)
    assert_problem(forged, 401, "unauthenticated")
    others = [s for s in SCOPES if s != scope]
    lacking = mint(api["home"], "acme", *others)
    refused = httpx.request(method, url, json=body, headers=auth(lacking), timeout=30)
    problem = assert_problem(refused, 403, "forbidden")
    assert problem["exitCode"] == 7 and problem["scope"] == scope
    assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]


@pytest.mark.parametrize("suffix", ["", "/events", "/cancel", "/download", "/manifest", "/provenance"])
def test_another_tenants_run_is_not_found_like_an_unknown_one(
    api: dict[str, Any], done_run: dict[str, Any], suffix: str
) -> None:
    method = "POST" if suffix == "/cancel" else "GET"
    theirs = httpx.request(
        method,
        f"{api['url']}/api/v1/export/runs/{done_run['id']}{suffix}",
        headers=auth(api["tokens"]["globex"]),
        timeout=30,
    )
    unknown = httpx.request(
        method, f"{api['url']}/api/v1/export/runs/r-nothing{suffix}", headers=auth(api["tokens"]["globex"]), timeout=30
    )
    a, b = assert_problem(theirs, 404, "not-found"), assert_problem(unknown, 404, "not-found")
    assert a["detail"].replace(done_run["id"], "X") == b["detail"].replace("r-nothing", "X")
    assert "acme" not in theirs.text


def test_two_tenants_hammering_each_others_ids_see_nothing(api: dict[str, Any], done_run: dict[str, Any]) -> None:
    created = start_run(api, "globex")
    assert created.status_code == 202, created.text
    theirs = {"acme": created.json()["id"], "globex": done_run["id"]}  # each tenant's target: the other's run
    wait_done(api, theirs["acme"], "globex")
    statuses: list[int] = []
    leaks: list[str] = []

    def hammer(tenant: str) -> None:
        with httpx.Client(base_url=api["url"], headers=auth(api["tokens"][tenant]), timeout=30) as client:
            for _ in range(15):
                for suffix in ("", "/download", "/manifest", "/events"):
                    got = client.get(f"/api/v1/export/runs/{theirs[tenant]}{suffix}")
                    statuses.append(got.status_code)
                    other = "globex" if tenant == "acme" else "acme"
                    if other in got.text:
                        leaks.append(got.text)
                listed = client.get("/api/v1/export/runs").json()
                if any(r["id"] == theirs[tenant] or r["tenant"] != tenant for r in listed["runs"]):
                    leaks.append(json.dumps(listed))

    threads = [threading.Thread(target=hammer, args=(t,)) for t in ("acme", "globex")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses and set(statuses) == {404}
    assert not leaks


# -- runs, events, idempotency --------------------------------------------------------------------------------------
def read_sse(response: httpx.Response, stop_after: int | None = None) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    for line in response.iter_lines():
        if line == "":
            if current:
                events.append(current)
                if current.get("event") == "end" or (stop_after is not None and len(events) >= stop_after):
                    break
            current = {}
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            current[field] = value.removeprefix(" ")
    return events


def test_run_events_resume_with_last_event_id_lose_and_duplicate_nothing(api: dict[str, Any]) -> None:
    created = start_run(api)
    assert created.status_code == 202, created.text
    run = created.json()
    assert run["status"] in ("pending", "running", "succeeded") and created.headers["location"].endswith(run["id"])
    url = f"{api['url']}/api/v1/export/runs/{run['id']}/events"
    headers = auth(api["tokens"]["acme"])
    with httpx.stream("GET", url, headers=headers, timeout=60) as first:
        assert first.status_code == 200 and first.headers["content-type"].startswith("text/event-stream")
        part = [e for e in read_sse(first, stop_after=3) if "id" in e]
    assert part, "no event before the cut"
    last = part[-1]["id"]
    with httpx.stream("GET", url, headers={**headers, "Last-Event-ID": last}, timeout=120) as second:
        rest = read_sse(second)
    assert rest[-1]["event"] == "end"
    ids = [int(e["id"]) for e in part + rest if "id" in e]
    view = wait_done(api, run["id"])
    assert view["status"] == "succeeded"
    stored = httpx.get(url, headers=headers, timeout=60)  # the whole history again, from the start
    everything = [int(e["id"]) for e in read_sse_text(stored.text) if "id" in e]
    assert ids == everything == list(range(1, len(everything) + 1))
    history = [json.loads(e["data"]) for e in read_sse_text(stored.text) if "id" in e]
    assert [e["to"] for e in history if e["to"]] == ["pending", "running", "succeeded"] or [
        e["to"] for e in history if e["to"]
    ][-1] == "succeeded", history
    assert {"planned", "started", "succeeded"} <= {e["type"] for e in history}


def read_sse_text(text: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    for line in text.split("\n"):
        if line == "":
            if current:
                events.append(current)
            current = {}
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            current[field] = value.removeprefix(" ")
    return events


def test_run_view_has_status_counts_digest_and_provenance(api: dict[str, Any], done_run: dict[str, Any]) -> None:
    view = done_run
    assert view["tenant"] == "acme" and view["profile"]["id"] == "json:raw"
    assert len(view["artifact"]["sha256"]) == 64 and view["artifact"]["size"] > 0 and "path" not in view["artifact"]
    got = httpx.get(f"{api['url']}/api/v1/export/runs/{view['id']}", headers=auth(api["tokens"]["acme"]), timeout=30)
    assert "provenance:" in got.json()["provenance"]


def test_idempotency_key_returns_the_same_run_and_refuses_another_body(api: dict[str, Any]) -> None:
    first = start_run(api, key="nightly-1")
    assert first.status_code == 202, first.text
    again = start_run(api, key="nightly-1")
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    other = start_run(api, key="nightly-1", selectors={"format": "osv"})
    problem = assert_problem(other, 422, "idempotency-key-reused")
    assert problem["exitCode"] == 3
    # the same key in another tenant is another tenant's key
    theirs = start_run(api, "globex", key="nightly-1")
    assert theirs.status_code == 202 and theirs.json()["id"] != first.json()["id"]
    wait_done(api, first.json()["id"])
    wait_done(api, theirs.json()["id"], "globex")


def test_quota_headers_on_run_creation(api: dict[str, Any]) -> None:
    created = start_run(api)
    assert created.status_code == 202
    assert created.headers["x-stella-quota-active-runs-limit"] == "4"
    used = int(created.headers["x-stella-quota-active-runs-used"])
    assert 0 <= used <= 4
    assert int(created.headers["x-stella-quota-active-runs-remaining"]) == 4 - used
    wait_done(api, created.json()["id"])


def test_cancel_of_a_finished_run_is_a_conflict(api: dict[str, Any], done_run: dict[str, Any]) -> None:
    got = httpx.post(
        f"{api['url']}/api/v1/export/runs/{done_run['id']}/cancel", headers=auth(api["tokens"]["acme"]), timeout=30
    )
    assert assert_problem(got, 409)["exitCode"] == 7


# -- downloads ----------------------------------------------------------------------------------------------------
def test_download_cut_at_a_random_offset_resumes_with_range_to_the_same_digest(
    api: dict[str, Any], done_run: dict[str, Any], tmp_path: Path
) -> None:
    url = f"{api['url']}/api/v1/export/runs/{done_run['id']}/download"
    headers = auth(api["tokens"]["acme"])
    rng = random.Random()
    part = tmp_path / "bundle.part"
    with httpx.stream("GET", url, headers=headers, timeout=60) as first:
        assert first.status_code == 200
        digest = first.headers["x-export-digest"]
        size = int(first.headers["x-export-length"])
        etag = first.headers["etag"]
        assert digest == f"sha256:{done_run['artifact']['sha256']}" and etag == f'"{digest[7:]}"'
        assert first.headers["repr-digest"] == f"sha-256=:{base64.b64encode(bytes.fromhex(digest[7:])).decode()}:"
        cut = rng.randrange(1, size)
        with part.open("wb") as fh:
            for chunk in first.iter_bytes(4096):
                fh.write(chunk[: cut - fh.tell()])
                if fh.tell() >= cut:
                    break  # the connection drops here
    have = part.stat().st_size
    assert have == cut
    resumed = httpx.get(url, headers={**headers, "Range": f"bytes={have}-", "If-Range": etag}, timeout=60)
    assert resumed.status_code == 206, resumed.text
    assert resumed.headers["content-range"] == f"bytes {have}-{size - 1}/{size}"
    assert resumed.headers["x-export-digest"] == digest and resumed.headers["etag"] == etag
    data = part.read_bytes() + resumed.content
    assert len(data) == size and "sha256:" + hashlib.sha256(data).hexdigest() == digest


def test_download_range_refusals_if_range_and_if_none_match(api: dict[str, Any], done_run: dict[str, Any]) -> None:
    url = f"{api['url']}/api/v1/export/runs/{done_run['id']}/download"
    headers = auth(api["tokens"]["acme"])
    size = done_run["artifact"]["size"]
    etag = f'"{done_run["artifact"]["sha256"]}"'
    past = httpx.get(url, headers={**headers, "Range": f"bytes={size}-"}, timeout=30)
    assert_problem(past, 416, "range-not-satisfiable")
    assert past.headers["content-range"] == f"bytes */{size}"
    stale = httpx.get(url, headers={**headers, "Range": "bytes=0-9", "If-Range": '"0000"'}, timeout=30)
    assert stale.status_code == 200 and len(stale.content) == size  # a stale If-Range: the whole bundle
    fresh = httpx.get(url, headers={**headers, "Range": "bytes=0-9", "If-Range": etag}, timeout=30)
    assert fresh.status_code == 206 and fresh.content == stale.content[:10]
    suffix = httpx.get(url, headers={**headers, "Range": "bytes=-5"}, timeout=30)
    assert suffix.status_code == 206 and suffix.content == stale.content[-5:]
    same = httpx.get(url, headers={**headers, "If-None-Match": etag}, timeout=30)
    assert same.status_code == 304 and same.headers["etag"] == etag and same.content == b""


def test_manifest_and_provenance_are_the_bundles_own_bytes(api: dict[str, Any], done_run: dict[str, Any]) -> None:
    headers = auth(api["tokens"]["acme"])
    manifest = httpx.get(f"{api['url']}/api/v1/export/runs/{done_run['id']}/manifest", headers=headers, timeout=30)
    assert manifest.status_code == 200 and manifest.json()["tenant"] == "acme"
    provenance = httpx.get(f"{api['url']}/api/v1/export/runs/{done_run['id']}/provenance", headers=headers, timeout=30)
    assert provenance.status_code == 200 and provenance.json()["_type"].startswith("https://in-toto.io/Statement")


# -- profiles ---------------------------------------------------------------------------------------------------------
def test_profiles_create_and_patch_clone_a_revision(api: dict[str, Any]) -> None:
    headers = auth(api["tokens"]["globex"])
    base = f"{api['url']}/api/v1/export/profiles"
    made = httpx.post(
        base, json={"id": "lean", "base": "json:raw", "settings": {"compression_level": "3"}}, headers=headers
    )
    assert made.status_code == 201, made.text
    assert made.json()["revision"] == 1
    same = httpx.patch(f"{base}/lean", json={"settings": {"compression_level": "3"}}, headers=headers)
    assert same.status_code == 200 and same.json()["changed"] is False and same.json()["revision"] == 1
    new = httpx.patch(f"{base}/lean", json={"settings": {"record_types": "advisory"}}, headers=headers)
    assert new.json()["changed"] is True and new.json()["revision"] == 2
    old = httpx.get(f"{base}/lean@1", headers=headers).json()
    assert old["config"]["recordTypes"] == ["advisory", "vex", "sbom"]
    bad = httpx.post(
        base, json={"id": "x", "base": "json:raw", "settings": {"compression_level": "99"}}, headers=headers
    )
    assert assert_problem(bad, 422)["exitCode"] == 3
    builtin = httpx.patch(f"{base}/json:raw", json={"settings": {"compression_level": "1"}}, headers=headers)
    assert assert_problem(builtin, 400)["exitCode"] == 2
    acme = httpx.get(f"{base}/lean", headers=auth(api["tokens"]["acme"]))
    assert_problem(acme, 404, "not-found")


# -- errors, contract, legacy paths, health, metrics ---------------------------------------------------------------
def test_every_error_is_problem_json(api: dict[str, Any]) -> None:
    headers = auth(api["tokens"]["acme"])
    invalid = httpx.post(f"{api['url']}/api/v1/export/runs", json={"profile": 5, "extra": 1}, headers=headers)
    body = assert_problem(invalid, 422, "usage")
    assert body["exitCode"] == 2 and body["errors"]
    broken = httpx.post(
        f"{api['url']}/api/v1/export/runs",
        content=b"{not json",
        headers={**headers, "Content-Type": "application/json"},
    )
    assert broken.status_code in (400, 422) and broken.headers["content-type"].startswith(PROBLEM)
    assert_problem(httpx.get(f"{api['url']}/api/v1/nothing", headers=headers), 404)
    wrong_method = httpx.delete(f"{api['url']}/api/v1/export/runs", headers=headers)
    assert_problem(wrong_method, 405)
    assert set(wrong_method.headers["allow"].split(", ")) >= {"GET", "POST"}
    unknown_profile = start_run(api, profile="nope")
    assert assert_problem(unknown_profile, 404, "not-found")["exitCode"] == 3


def test_legacy_paths_answer_with_deprecation_sunset_and_link(api: dict[str, Any]) -> None:
    got = httpx.get(f"{api['url']}/api/export/profiles", headers=auth(api["tokens"]["acme"]))
    assert got.status_code == 200 and got.json()["tenant"] == "acme"
    assert got.headers["deprecation"].startswith("@") and int(got.headers["deprecation"][1:]) > 0
    assert got.headers["sunset"].endswith(" GMT")
    assert (
        'rel="deprecation"' in got.headers["link"]
        and '</api/v1/export/profiles>; rel="successor-version"' in got.headers["link"]
    )
    current = httpx.get(f"{api['url']}/api/v1/export/profiles", headers=auth(api["tokens"]["acme"]))
    assert "deprecation" not in current.headers and current.json() == got.json()
    time.sleep(0.2)
    assert "deprecated API path /api/export/profiles" in api["server"].stderr()


def test_openapi_document_has_an_etag_and_answers_304(api: dict[str, Any]) -> None:
    got = httpx.get(f"{api['url']}/.well-known/openapi")
    assert got.status_code == 200
    doc = got.json()
    assert doc["openapi"].startswith("3.1") and "/api/v1/export/runs/{run_id}/download" in doc["paths"]
    etag = got.headers["etag"]
    assert etag == '"' + hashlib.sha256(got.content).hexdigest() + '"'
    again = httpx.get(f"{api['url']}/.well-known/openapi", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.headers["etag"] == etag
    stale = httpx.get(f"{api['url']}/.well-known/openapi", headers={"If-None-Match": '"old"'})
    assert stale.status_code == 200


def test_health_and_metrics(api: dict[str, Any], done_run: dict[str, Any]) -> None:
    ready = httpx.get(f"{api['url']}/health/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert ready.json()["checks"]["signer"]["keys"] == 1
    metrics = httpx.get(f"{api['url']}/metrics", headers=auth(api["tokens"]["acme"]))
    assert metrics.status_code == 200 and "exporter_runs_total" in metrics.text


def test_serve_refuses_a_non_loopback_address_without_tls(tmp_path: Path) -> None:
    done = cli(tmp_path / "home", "serve", "--host", "0.0.0.0", "--port", "0")
    assert done.returncode == 2
    assert "without TLS" in done.stderr and "--tls-cert" in done.stderr
    half = cli(tmp_path / "home", "serve", "--host", "127.0.0.1", "--tls-cert", str(tmp_path / "c.pem"))
    assert half.returncode == 2 and "go together" in half.stderr


# -- verification, attestation, timeline, evidence ---------------------------------------------------------------------
def test_verify_a_run_check_by_check_and_its_attestation(api: dict[str, Any], done_run: dict[str, Any]) -> None:
    headers = auth(api["tokens"]["acme"])
    one = auth(api["tokens"]["acme"], Accept="application/json")  # the report as one document, not streamed
    report = httpx.post(f"{api['url']}/api/v1/verify", json={"run": done_run["id"]}, headers=one, timeout=60)
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["verified"] is True and body["exitCode"] == 0 and len(body["checks"]) > 3 and "bundle" not in body
    legacy = httpx.post(f"{api['url']}/api/verify", json={"run": done_run["id"]}, headers=headers, timeout=60)
    assert legacy.status_code == 200 and legacy.headers["deprecation"]
    lines = [json.loads(line) for line in legacy.text.splitlines()]  # streamed: a line a check, then the result
    assert [line["check"] for line in lines[:-1]] == [c["check"] for c in body["checks"]]
    assert lines[-1]["type"] == "result" and lines[-1]["verified"] is True
    theirs = httpx.post(
        f"{api['url']}/api/v1/verify", json={"run": done_run["id"]}, headers=auth(api["tokens"]["globex"]), timeout=60
    )
    assert_problem(theirs, 404, "not-found")
    att = httpx.get(f"{api['url']}/api/v1/export/runs/{done_run['id']}/attestation", headers=headers, timeout=30)
    assert att.status_code == 200
    envelope = json.loads(att.text.splitlines()[0])
    assert envelope["payloadType"] == "application/vnd.in-toto+json" and envelope["signatures"]


def test_timeline_and_evidence_of_a_run_stay_in_the_tenant(api: dict[str, Any], done_run: dict[str, Any]) -> None:
    mine = auth(api["tokens"]["acme"])
    page = httpx.get(f"{api['url']}/api/v1/timeline", params={"run": done_run["id"]}, headers=mine, timeout=60)
    assert page.status_code == 200, page.text
    events = page.json()["events"]
    assert events and {e["tenant"] for e in events} == {"acme"}
    built = [e for e in events if e["type"].endswith("built")]
    assert built, [e["type"] for e in events]
    one = httpx.get(f"{api['url']}/api/v1/timeline/{built[0]['id']}", headers=mine, timeout=60)
    assert one.status_code == 200 and one.json()["id"] == built[0]["id"]
    refs = httpx.get(f"{api['url']}/api/v1/timeline/{built[0]['id']}/evidence", headers=mine, timeout=60)
    assert refs.status_code == 200, refs.text
    theirs = auth(api["tokens"]["globex"])
    assert_problem(httpx.get(f"{api['url']}/api/v1/timeline/{built[0]['id']}", headers=theirs, timeout=60), 404)
    other_page = httpx.get(f"{api['url']}/api/v1/timeline", params={"run": done_run["id"]}, headers=theirs, timeout=60)
    assert other_page.status_code == 200 and other_page.json()["events"] == []
    legacy = httpx.get(f"{api['url']}/timeline/{built[0]['id']}", headers=mine, timeout=60)
    assert legacy.status_code == 200 and legacy.headers["deprecation"]
    sealed = [e for e in refs.json()["evidence"] if e.get("evidenceId")]
    assert sealed, refs.json()
    evidence_id = sealed[0]["evidenceId"]
    shown = httpx.get(f"{api['url']}/api/v1/evidence/{evidence_id}", headers=mine, timeout=60)
    assert shown.status_code == 200, shown.text
    assert_problem(httpx.get(f"{api['url']}/api/v1/evidence/{evidence_id}", headers=theirs, timeout=60), 404)
    checked = httpx.post(f"{api['url']}/api/v1/evidence/verify", json={"id": evidence_id}, headers=mine, timeout=60)
    assert checked.status_code == 200 and checked.json()["verified"] is True, checked.text
    held = httpx.post(
        f"{api['url']}/api/v1/evidence/hold/CASE-1", json={"bundle": evidence_id, "reason": "audit"}, headers=mine
    )
    assert held.status_code == 201, held.text
    again = httpx.post(
        f"{api['url']}/api/v1/evidence/hold/CASE-1", json={"bundle": evidence_id, "reason": "audit"}, headers=mine
    )
    assert again.status_code == 200 and again.json()["new"] is False
    stolen = httpx.post(
        f"{api['url']}/api/v1/evidence/hold/CASE-1", json={"bundle": evidence_id, "reason": "x"}, headers=theirs
    )
    assert_problem(stolen, 404)


def test_a_tenant_beyond_its_active_runs_gets_429_with_quota_headers(tmp_path: Path) -> None:
    """The tenant's one active run is planned before the server starts, so no build of this server takes it: it stays
    pending (a run the server builds may end before the next request, samples build in a fraction of a second)."""
    from core.home import Home
    from core.store import Store
    from services.export import check_selectors, default_out, plan_export

    home = tmp_path / "home"
    assert (
        cli(
            home, "import", "--quiet", "--tenant", "acme", *[str(p) for p in sorted(SAMPLES.iterdir()) if p.is_dir()]
        ).returncode
        == 0
    )
    assert cli(home, "keys", "generate", "k").returncode == 0
    with Store.open(Home(home)) as store:
        pending = plan_export(
            store,
            "acme",
            "json:raw",
            check_selectors([]),
            requested={},
            key="k",
            out=default_out(Home(home), "json:raw"),
        )
    server = Server(home, {"STELLA_MAX_ACTIVE_RUNS": "1"})
    try:
        api = {"url": server.url, "tokens": {"acme": mint(home, "acme", "export:run", "export:read")}}
        second = start_run(api)  # the pending run takes the tenant's one slot
        problem = assert_problem(second, 429, "quota-exceeded")
        assert problem["exitCode"] == 7
        assert second.headers["x-stella-quota-active-runs-limit"] == "1"
        assert second.headers["x-stella-quota-active-runs-used"] == "1"
        assert second.headers["x-stella-quota-active-runs-remaining"] == "0"
        cancelled = httpx.post(
            f"{api['url']}/api/v1/export/runs/{pending.run_id}/cancel", headers=auth(api["tokens"]["acme"]), timeout=30
        )
        assert cancelled.status_code in (200, 202) and cancelled.json()["status"] == "aborted", cancelled.text
        third = start_run(api)  # the pending run has ended: room again
        assert third.status_code == 202, third.text
        assert third.headers["x-stella-quota-active-runs-limit"] == "1"
        assert wait_done(api, third.json()["id"])["status"] == "succeeded"
    finally:
        server.stop()


def test_serve_over_tls_off_loopback_with_a_certificate(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.2",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        capture_output=True,
    )
    assert made.returncode == 0, made.stderr
    code = "import sys; from app.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            "serve",
            "--host",
            "127.0.0.2",
            "--port",
            "0",
            "--tls-cert",
            str(cert),
            "--tls-key",
            str(key),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, STELLA_HOME=str(tmp_path / "h")),
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("https://127.0.0.2:"), proc.stderr.read() if proc.stderr else ""
        deadline = time.monotonic() + 30
        while True:
            try:
                got = httpx.get(url + ".well-known/openapi", verify=ssl.create_default_context(cafile=cert), timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert got.status_code == 200 and got.json()["openapi"].startswith("3.1")
        with pytest.raises(httpx.TransportError):
            httpx.get(url.replace("https://", "http://") + ".well-known/openapi", timeout=5)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_reads_are_answered_while_builds_run(api: dict[str, Any]) -> None:
    started = [start_run(api, "globex") for _ in range(3)]
    assert all(r.status_code == 202 for r in started), [r.text for r in started]
    ids = [r.json()["id"] for r in started]
    headers = auth(api["tokens"]["globex"])
    seen_running = False
    slowest = 0.0
    with httpx.Client(base_url=api["url"], headers=headers, timeout=30) as client:
        while True:
            # One request for every state, so a build of a fraction of a second is still seen running; then a read
            # of another kind, timed too.
            t0 = time.monotonic()
            listed = {r["id"]: r["status"] for r in client.get("/api/v1/export/runs").json()["runs"]}
            states = [listed[i] for i in ids]
            profiles = client.get("/api/v1/export/profiles")
            slowest = max(slowest, (time.monotonic() - t0) / 2)
            assert profiles.status_code == 200, profiles.text
            seen_running = seen_running or "running" in states
            if all(s in ("succeeded", "failed", "aborted") for s in states):
                break
    assert seen_running, "no read happened while a build ran"
    assert slowest < 2.0, slowest
    assert states == ["succeeded"] * 3
