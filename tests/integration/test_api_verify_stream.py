"""``POST /api/v1/verify`` streams its report: a JSON line per check as the verifier completes it, then a summary.

The app runs in uvicorn on a loopback port inside this process (so a test can hold the real verification between two
checks), over a home with the samples imported into two tenants, a signing key and that key in the trust store.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

import services.export
import services.receive
from app.api.server import create_app
from core import __version__
from core.contract.api import SCOPES
from core.errors import Cancelled
from core.home import Home
from core.progress import Check, Observer
from services.tokens import create_token
from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "sdk" / "python"))

from stella_api_client import AuthenticatedClient
from stella_api_client.verify_stream import VerifyProblem, iter_verify, verify_report

NDJSON = "application/x-ndjson"
PROBLEM = "application/problem+json"


def stella(home: Home, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "app.cli", "--home", str(home.root), *args]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)


class InProcess:
    """uvicorn serving ``create_app(home, **settings)`` on a free loopback port, in a thread of this process."""

    def __init__(self, home: Home, **settings: Any) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        self.sock = sock
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.app = create_app(home, **settings)
        config = uvicorn.Config(self.app, http="h11", loop="asyncio", lifespan="off", log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "the server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = Home(tmp_path_factory.mktemp("verify-stream") / "home")
    samples = [str(p) for p in sorted((ROOT / "samples").iterdir()) if p.is_dir()]
    for tenant in ("acme", "globex"):
        done = stella(home, "import", "--quiet", "--tenant", tenant, *samples)
        assert done.returncode == 0, done.stderr
    for argv in (["keys", "generate", "k"], ["trust", "add", "k", str(home.keys_dir / "k.pub")]):
        done = stella(home, *argv)
        assert done.returncode == 0, done.stderr
    tokens = {
        t: create_token(home, tenant=t, scopes=SCOPES, ttl=timedelta(hours=1), subject="verify-stream")[1]
        for t in ("acme", "globex")
    }
    server = InProcess(home)
    try:
        runs: dict[str, dict[str, Any]] = {}
        for tenant in ("acme", "globex"):
            headers = {"Authorization": f"Bearer {tokens[tenant]}"}
            body = {"profile": "json:raw", "options": {"key": "k"}}
            created = httpx.post(f"{server.url}/api/v1/export/runs", json=body, headers=headers, timeout=60)
            assert created.status_code == 202, created.text
            runs[tenant] = wait_done(server.url, created.json()["id"], headers)
        bundles = {
            t: httpx.get(
                f"{server.url}/api/v1/export/runs/{runs[t]['id']}/download",
                headers={"Authorization": f"Bearer {tokens[t]}"},
                timeout=60,
            ).content
            for t in runs
        }
        yield {"home": home, "url": server.url, "tokens": tokens, "runs": runs, "bundles": bundles}
    finally:
        server.stop()


def wait_done(url: str, run_id: str, headers: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        view: dict[str, Any] = httpx.get(f"{url}/api/v1/export/runs/{run_id}", headers=headers, timeout=30).json()
        if view["status"] in ("succeeded", "failed", "aborted"):
            assert view["status"] == "succeeded", view
            return view
        assert time.monotonic() < deadline, view
        time.sleep(0.1)


def client(served: dict[str, Any], tenant: str = "acme") -> AuthenticatedClient:
    return AuthenticatedClient(base_url=served["url"], token=served["tokens"][tenant], timeout=httpx.Timeout(60))


def headers(served: dict[str, Any], tenant: str = "acme", **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {served['tokens'][tenant]}", **extra}


def spool(home: Home) -> list[Path]:
    return sorted((home.root / "tmp").glob("upload-*")) if (home.root / "tmp").is_dir() else []


class Gate:
    """Wraps the real verification service: after its first check, the verifier waits until the test opens the
    gate (or, with ``cancel_after_first``, its observer says cancelled from then on); notes how it ended."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, cancel_after_first: bool = False) -> None:
        self.first_check = threading.Event()
        self.open = threading.Event()
        self.checks_after_open: list[str] = []
        self.ended: BaseException | str | None = None
        self.cancel_after_first = cancel_after_first
        self.server_observer: Observer | None = None  # the observer the server gave the service
        real_built, real_received = services.export.verify_built, services.receive.verify_received

        def built(home: Home, run: Any, *, observer: Observer | None = None) -> Any:
            return self._around(lambda obs: real_built(home, run, observer=obs), observer)

        def received(home: Home, request: Any, observer: Observer | None = None) -> Any:
            return self._around(lambda obs: real_received(home, request, obs), observer)

        monkeypatch.setattr(services.export, "verify_built", built)
        monkeypatch.setattr(services.receive, "verify_received", received)

    def outcome(self) -> BaseException | str | None:
        """None while the verification runs, then "finished" or what it raised."""
        return self.ended

    def _around(self, call: Any, observer: Observer | None) -> Any:
        assert observer is not None
        real: Observer = observer
        self.server_observer = real
        gate = self

        class Held:
            def start(self, phase: str, total: int | None = None) -> None:
                real.start(phase, total)

            def advance(self, units: int = 1, *, detail: str | None = None) -> None:
                real.advance(units, detail=detail)

            def finish(self, phase: str) -> None:
                real.finish(phase)

            def check(self, check: Check) -> None:
                if gate.first_check.is_set():
                    gate.checks_after_open.append(check.name)
                    real.check(check)
                    return
                gate.first_check.set()
                real.check(check)  # the line leaves for the client here
                if not gate.cancel_after_first:
                    assert gate.open.wait(60), "the test never opened the gate"

            def is_cancelled(self) -> bool:
                return real.is_cancelled() or (gate.cancel_after_first and gate.first_check.is_set())

        try:
            result = call(Held())
        except BaseException as exc:
            self.ended = exc
            raise
        self.ended = "finished"
        return result


@pytest.mark.parametrize("source", ["run", "upload"])
def test_the_first_check_line_arrives_while_the_verifier_is_still_at_work(
    served: dict[str, Any], monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    gate = Gate(monkeypatch)
    if source == "run":
        kwargs: dict[str, Any] = {"json": {"run": served["runs"]["acme"]["id"]}, "headers": headers(served)}
    else:
        media = {"Content-Type": "application/octet-stream"}
        kwargs = {"content": served["bundles"]["acme"], "headers": headers(served, **media)}
    url = f"{served['url']}/api/v1/verify"
    with httpx.stream("POST", url, timeout=60, **kwargs) as got:
        assert got.status_code == 200 and got.headers["content-type"] == NDJSON, got.read()
        lines = got.iter_lines()
        first = json.loads(next(lines))
        # The verifier is held inside its first check: nothing after it has run, and yet its line is here.
        assert gate.first_check.is_set() and not gate.open.is_set() and gate.outcome() is None
        assert first["type"] == "check" and first["ok"] is True and first["check"], first
        gate.open.set()
        rest = [json.loads(text) for text in lines if text]
    assert gate.outcome() == "finished" and gate.checks_after_open, "the verifier ran more checks after the first line"
    result = rest[-1]
    checks = [first, *rest[:-1]]
    assert [c["type"] for c in checks] == ["check"] * len(checks) and [c["check"] for c in checks[1:]] == (
        gate.checks_after_open
    )
    assert result["type"] == "result" and result["verified"] is True and result["exitCode"] == 0, result
    assert result["exitMeaning"] == "success" and result["code"] is None and result["checkCount"] == len(checks)
    assert result["run"] == (served["runs"]["acme"]["id"] if source == "run" else None)
    assert "bundle" not in result and spool(served["home"]) == []


def test_the_stream_is_the_json_document_and_stella_verifys_report(served: dict[str, Any], tmp_path: Path) -> None:
    run_id = served["runs"]["acme"]["id"]
    with client(served) as sdk:
        streamed = verify_report(sdk, run=run_id)
        bundle = tmp_path / "acme.tar.zst"
        bundle.write_bytes(served["bundles"]["acme"])
        uploaded = verify_report(sdk, bundle=bundle)  # streamed from disk
        from stella_api_client.api.verify import verify_bundle
        from stella_api_client.models import VerifyRun

        document = verify_bundle.sync_detailed(client=sdk, body=VerifyRun(run=run_id))  # the generated operation
    assert document.status_code == 200 and document.headers["content-type"] == "application/json"
    assert json.loads(document.content) == streamed  # the same report, whole
    assert document.parsed is not None and document.parsed.verified is True and document.parsed.exit_code == 0
    assert streamed["verified"] is True and streamed["provenance"] and streamed["checks"]
    cli = stella(served["home"], "--json", "verify", str(bundle))  # the same service, on the command line
    assert cli.returncode == 0, cli.stderr
    by_cli = json.loads(cli.stdout)
    assert uploaded["checks"] == by_cli["checks"] and uploaded["manifest"] == by_cli["manifest"]
    assert uploaded["run"] is None and uploaded["verified"] is True and uploaded["exitCode"] == by_cli["exitCode"]


def test_a_tampered_upload_streams_its_checks_and_a_failed_result(served: dict[str, Any], tmp_path: Path) -> None:
    data = bytearray(served["bundles"]["acme"])
    data[len(data) // 2] ^= 0xFF
    bundle = tmp_path / "tampered.tar.zst"
    bundle.write_bytes(bytes(data))
    with client(served) as sdk:
        lines = list(iter_verify(sdk, bundle=bytes(data)))
    result = lines[-1]
    assert result["type"] == "result" and result["verified"] is False, result
    assert result["exitCode"] in (3, 4, 5) and result["code"] == result["error"]["error"], result
    assert result["exitMeaning"].startswith({3: "bad input", 4: "integrity", 5: "signature"}[result["exitCode"]])
    assert [line["type"] for line in lines[:-1]] == ["check"] * (len(lines) - 1) and not lines[-2]["ok"]
    cli = stella(served["home"], "--json", "verify", str(bundle))
    assert cli.returncode == result["exitCode"], cli.stderr
    by_cli = json.loads(cli.stdout)
    here = str(bundle)  # the CLI names the file it read; the API never names a path on the server
    assert [{k: v for k, v in c.items() if v != here} for c in by_cli["checks"]] == [
        {k: v for k, v in line.items() if k != "type"} for line in lines[:-1]
    ]
    assert {k: v for k, v in by_cli["error"].items() if v != here} == result["error"]
    assert "/tmp" not in json.dumps(lines) and str(served["home"].root) not in json.dumps(lines)
    assert spool(served["home"]) == []


def test_another_tenants_bundle_is_refused_before_streaming(served: dict[str, Any]) -> None:
    url = f"{served['url']}/api/v1/verify"
    theirs = httpx.post(
        url,
        content=served["bundles"]["globex"],
        headers=headers(served, "acme", **{"Content-Type": "application/octet-stream"}),
        timeout=60,
    )
    assert theirs.status_code == 403 and theirs.headers["content-type"] == PROBLEM, theirs.text
    problem = theirs.json()
    assert problem["code"] == "cross-tenant" and problem["exitCode"] == 7 and "'globex'" in problem["detail"]
    by_run = httpx.post(url, json={"run": served["runs"]["globex"]["id"]}, headers=headers(served), timeout=60)
    assert by_run.status_code == 404 and by_run.json()["code"] == "not-found"
    assert served["runs"]["globex"]["id"] not in by_run.text.replace(f"'{served['runs']['globex']['id']}'", "")
    with client(served) as sdk, pytest.raises(VerifyProblem) as refused:
        list(iter_verify(sdk, bundle=served["bundles"]["globex"]))
    assert refused.value.status == 403 and refused.value.code == "cross-tenant" and refused.value.exit_code == 7
    assert spool(served["home"]) == []


def test_a_verification_that_stops_after_the_first_line_ends_with_a_problem_line(
    served: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    Gate(monkeypatch, cancel_after_first=True)  # the real verifier sees a cancel once its first check is out
    url = f"{served['url']}/api/v1/verify"
    got = httpx.post(url, json={"run": served["runs"]["acme"]["id"]}, headers=headers(served), timeout=60)
    assert got.status_code == 200 and got.headers["content-type"] == NDJSON
    lines = [json.loads(text) for text in got.text.splitlines()]
    assert lines[0]["type"] == "check" and lines[-1]["type"] == "problem", lines
    problem = lines[-1]["problem"]
    assert problem["code"] == "cancelled" and problem["exitCode"] == 130 and problem["status"] == 409, problem
    assert problem["type"].endswith("/cancelled") and problem["title"] and problem["detail"]
    with client(served) as sdk, pytest.raises(VerifyProblem) as stopped:
        list(iter_verify(sdk, run=served["runs"]["acme"]["id"]))
    assert stopped.value.code == "cancelled"


def test_a_client_that_leaves_mid_stream_stops_the_verification(
    served: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = Gate(monkeypatch)
    url = f"{served['url']}/api/v1/verify"
    upload = headers(served, **{"Content-Type": "application/octet-stream"})
    with httpx.stream("POST", url, content=served["bundles"]["acme"], headers=upload, timeout=60) as got:
        first = json.loads(next(got.iter_lines()))
        assert first["type"] == "check" and len(spool(served["home"])) == 1  # the upload is being verified
    # The connection is closed: the server cancels the verification (its observer says so), and the verifier,
    # released, meets the cancel at its next read; the upload goes.
    deadline = time.monotonic() + 30
    assert gate.server_observer is not None
    while not gate.server_observer.is_cancelled():
        assert time.monotonic() < deadline, "the server did not cancel the verification of a client that left"
        time.sleep(0.02)
    gate.open.set()
    deadline = time.monotonic() + 30
    while gate.ended is None or spool(served["home"]):
        assert time.monotonic() < deadline, (gate.ended, spool(served["home"]))
        time.sleep(0.05)
    assert isinstance(gate.ended, Cancelled), gate.ended


def test_accept_chooses_the_stream_or_the_document(served: dict[str, Any]) -> None:
    url = f"{served['url']}/api/v1/verify"
    body = {"run": served["runs"]["acme"]["id"]}
    for accept, media in (
        (None, NDJSON),
        ("*/*", NDJSON),
        (NDJSON, NDJSON),
        ("application/json", "application/json"),
        ("application/json, application/x-ndjson;q=0.5", "application/json"),
        ("application/json;q=0.4, */*", NDJSON),
        ("text/html", NDJSON),
    ):
        extra = {} if accept is None else {"Accept": accept}
        got = httpx.post(url, json=body, headers=headers(served, **extra), timeout=60)
        assert got.status_code == 200 and got.headers["content-type"] == media, (accept, got.headers)
        assert got.headers["vary"] == "Accept" and got.headers["x-stella-version"] == __version__
        if media == NDJSON:
            assert json.loads(got.text.splitlines()[-1])["verified"] is True
        else:
            assert got.json()["verified"] is True and got.json()["checks"]
