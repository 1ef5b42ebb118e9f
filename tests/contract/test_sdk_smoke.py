"""The generated SDK (sdk/python) drives every operation of docs/openapi.json against a served instance.

Operations are found as the generator names them (tag package, operationId module), so the test follows a
regenerated SDK; one that lags behind the spec fails here."""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import sys
import uuid
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import httpx
import pytest
from openapi_python_client.strings import snake_case

from tests.conftest import ROOT
from tests.contract.conftest import SIGNING_KEY, Served
from tests.contract.test_api_uploads import trust_the_signer
from tests.contract.test_sdk_download import finished_run

sys.path.insert(0, str(ROOT / "sdk" / "python"))

from stella_api_client import AuthenticatedClient
from stella_api_client.types import File

SPEC: dict[str, Any] = json.loads((ROOT / "docs" / "openapi.json").read_text(encoding="utf-8"))
METHODS = ("get", "post", "put", "patch", "delete")


def _operation(method: str, path: str) -> dict[str, Any]:
    op: dict[str, Any] = SPEC["paths"][path][method]
    return op


def _module(method: str, path: str) -> ModuleType:
    op = _operation(method, path)
    tag = snake_case(op["tags"][0]) if op.get("tags") else "default"
    return importlib.import_module(f"stella_api_client.api.{tag}.{snake_case(op['operationId'])}")


def _model(name: str) -> Any:
    models = importlib.import_module("stella_api_client.models")
    return getattr(models, name)


def call(client: AuthenticatedClient, method: str, path: str, body: Any = None, **params: Any) -> Any:
    """``sync_detailed`` of the generated operation for ``method path``, the body built as the generated model."""
    kwargs: dict[str, Any] = {snake_case(k): v for k, v in params.items()}
    if body is not None and not isinstance(body, dict):
        kwargs["body"] = body  # already an SDK type (a File upload)
    elif body is not None:
        ref = _operation(method, path)["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        kwargs["body"] = _model(ref.rsplit("/", 1)[1]).from_dict(body)
    return _module(method, path).sync_detailed(client=client, **kwargs)


def _json(response: Any) -> Any:
    return json.loads(response.content)


@pytest.fixture
def client(served: Served) -> Iterator[AuthenticatedClient]:
    with AuthenticatedClient(base_url=served.base_url, token=served.token, timeout=httpx.Timeout(60)) as c:
        yield c


def test_the_sdk_has_every_operation_of_the_spec() -> None:
    for path, item in SPEC["paths"].items():
        for method in item:
            if method in METHODS:
                assert hasattr(_module(method, path), "sync_detailed"), (method, path)


def test_profiles_through_the_sdk(client: AuthenticatedClient) -> None:
    ready = call(client, "get", "/health/ready")
    assert ready.status_code == 200 and ready.parsed.status == "ready"
    listed = call(client, "get", "/api/v1/export/profiles")
    assert listed.status_code == 200 and type(listed.parsed).__name__ == "ProfileList"  # a typed model, not bytes
    assert "json:raw" in [p["id"] for p in listed.parsed.profiles]
    name = f"sdk-{uuid.uuid4().hex[:8]}"
    created = call(client, "post", "/api/v1/export/profiles", {"id": name, "base": "json:raw", "settings": {}})
    assert created.status_code == 201, created.content
    assert created.parsed.id == name and created.parsed.revision == 1
    shown = call(client, "get", "/api/v1/export/profiles/{profile_id}", profile_id=name)
    assert shown.status_code == 200 and shown.parsed.id == name
    patched = call(
        client,
        "patch",
        "/api/v1/export/profiles/{profile_id}",
        {"settings": {"compression_level": "3"}},
        profile_id=name,
    )
    assert patched.status_code == 200, patched.content
    assert patched.parsed.changed is True and patched.parsed.revision == 2
    missing = call(client, "get", "/api/v1/export/profiles/{profile_id}", profile_id="no-such-profile")
    assert missing.status_code == 404 and _json(missing)["status"] == 404  # a problem, parsed as JSON


def test_runs_events_downloads_and_metrics_through_the_sdk(client: AuthenticatedClient, served: Served) -> None:
    key = str(uuid.uuid4())
    body = {"profile": "json:raw", "options": {"key": SIGNING_KEY}}
    first = call(client, "post", "/api/v1/export/runs", body, idempotency_key=key)
    assert first.status_code == 202, first.content
    run_id = first.parsed.id
    again = call(client, "post", "/api/v1/export/runs", body, idempotency_key=key)
    assert again.status_code in (200, 202) and again.parsed.id == run_id  # a retry answers the same run
    other = {"profile": "json:policy", "options": {"key": SIGNING_KEY}}
    assert call(client, "post", "/api/v1/export/runs", other, idempotency_key=key).status_code == 422

    run = finished_run(served)  # waits for a run to succeed (created over plain HTTP)
    got = call(client, "get", "/api/v1/export/runs/{run_id}", run_id=run["id"])
    assert got.status_code == 200 and got.parsed.status == "succeeded" and got.parsed["artifact"] == run["artifact"]
    listed = call(client, "get", "/api/v1/export/runs")
    assert listed.status_code == 200 and run["id"] in [r["id"] for r in listed.parsed.runs]
    events = call(client, "get", "/api/v1/export/runs/{run_id}/events", run_id=run["id"])
    assert events.status_code == 200 and b"id:" in events.content and b"data:" in events.content
    bundle = call(client, "get", "/api/v1/export/runs/{run_id}/download", run_id=run["id"])
    assert bundle.status_code == 200
    assert hashlib.sha256(bundle.content).hexdigest() == run["artifact"]["sha256"]
    assert bundle.headers["x-export-digest"] == f"sha256:{run['artifact']['sha256']}"
    manifest = call(client, "get", "/api/v1/export/runs/{run_id}/manifest", run_id=run["id"])
    assert manifest.status_code == 200 and run["id"] in manifest.content.decode()
    provenance = call(client, "get", "/api/v1/export/runs/{run_id}/provenance", run_id=run["id"])
    assert provenance.status_code == 200 and b"https://in-toto.io/Statement/v1" in provenance.content
    cancelled = call(client, "post", "/api/v1/export/runs/{run_id}/cancel", run_id=run["id"])
    assert cancelled.status_code == 409 and _json(cancelled)["status"] == 409  # a finished run cannot be cancelled
    metrics = call(client, "get", "/metrics")
    assert metrics.status_code == 200 and b"# TYPE" in metrics.content


def test_verify_attestation_timeline_and_evidence_through_the_sdk(client: AuthenticatedClient, served: Served) -> None:
    run = finished_run(served)
    verified = call(client, "post", "/api/v1/verify", {"run": run["id"]})
    assert verified.status_code == 200, verified.content
    report = verified.parsed
    assert report.verified is True and report.exit_code == 0 and report.checks, verified.content
    trust_the_signer(served)  # an upload is checked against the trust store, as by `stella verify` without --key
    bundle = httpx.get(
        f"{served.base_url}/api/v1/export/runs/{run['id']}/download",
        headers={"Authorization": f"Bearer {served.token}"},
        timeout=60,
    ).content
    uploaded = call(client, "post", "/api/v1/verify", File(io.BytesIO(bundle)))
    assert uploaded.status_code == 200, uploaded.content
    checks = [c["check"] for c in uploaded.parsed.to_dict()["checks"]]
    assert uploaded.parsed.verified is True and checks == [c["check"] for c in report.to_dict()["checks"]]
    attestation = call(client, "get", "/api/v1/export/runs/{run_id}/attestation", run_id=run["id"])
    assert attestation.status_code == 200, attestation.content
    assert b"payloadType" in attestation.content.splitlines()[0]  # one DSSE envelope a line
    timeline = call(client, "get", "/api/v1/timeline")
    assert timeline.status_code == 200, timeline.content
    events = [e.to_dict() for e in timeline.parsed.events if run["id"] in json.dumps(e.to_dict())]
    event_id = events[0]["id"]
    event = call(client, "get", "/api/v1/timeline/{event_id}", event_id=event_id)
    assert event.status_code == 200 and event.parsed.id == event_id
    linked = call(client, "get", "/api/v1/timeline/{event_id}/evidence", event_id=event_id)
    assert linked.status_code in (200, 404) and linked.headers["content-type"].startswith(
        "application/json" if linked.status_code == 200 else "application/problem+json"
    )
    for method, path, body, params in (
        ("get", "/api/v1/evidence/{evidence_id}", None, {"evidence_id": "no-such-evidence"}),
        ("post", "/api/v1/evidence/verify", {"id": "no-such-evidence"}, {}),
        (
            "post",
            "/api/v1/evidence/hold/{case_id}",
            {"bundle": "no-such-evidence", "reason": "smoke"},
            {"case_id": "c1"},
        ),
    ):
        missing = call(client, method, path, body, **params)
        assert missing.status_code == 404 and _json(missing)["status"] == 404, (path, missing.content)
    sealed = call(client, "post", "/api/v1/evidence/snapshot", {"kind": "run", "ref": run["id"], "key": SIGNING_KEY})
    assert sealed.status_code == 201, sealed.content
    assert sealed.parsed.id and sealed.parsed["kind"] == "run" and sealed.parsed["subject"] == run["id"]
    shown = call(client, "get", "/api/v1/evidence/{evidence_id}", evidence_id=sealed.parsed.id)
    assert shown.status_code == 200 and shown.parsed.id == sealed.parsed.id
    checked = call(client, "post", "/api/v1/evidence/verify", {"id": sealed.parsed.id})
    assert checked.status_code == 200 and checked.parsed.id == sealed.parsed.id, checked.content
    held = call(
        client, "post", "/api/v1/evidence/hold/{case_id}", {"bundle": sealed.parsed.id, "reason": "smoke"}, case_id="c1"
    )
    assert held.status_code == 201 and held.parsed.new is True, held.content
