"""``POST/GET /api/v1/export/runs/{id}/distributions`` against a served instance: a copy into a directory on the
server host (what `stella export download --to DIR --json` records), a push to a real registry on 127.0.0.1
(Debian's docker-registry, as tests/interop start it; skipped when it is not installed), the refusals of a target
with the CLI's error code and exit code, and the 401/403/404 matrix per scope and tenant."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.contract.api import SCOPE_EXPORT_READ, SCOPE_EXPORT_RUN, SCOPES
from core.home import Home
from services.tokens import create_token
from tests.conftest import ROOT, require_tool
from tests.integration.test_api_verify_stream import InProcess, stella, wait_done
from tests.interop import test_s3_distribution as s3_interop

sys.path.insert(0, str(ROOT / "sdk" / "python"))

from stella_api_client import AuthenticatedClient
from stella_api_client.api.distributions import list_distributions

PROBLEM = "application/problem+json"
#: moto's S3 server on 127.0.0.1, environment credentials and a boto3 client of it, as the interop tests have them.
moto_endpoint = s3_interop.moto_endpoint
aws_env = s3_interop.aws_env
s3 = s3_interop.s3


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("api-distribute")
    home = Home(base / "home")
    samples = [str(p) for p in sorted((ROOT / "samples").iterdir()) if p.is_dir()]
    for tenant in ("acme", "globex"):
        done = stella(home, "import", "--quiet", "--tenant", tenant, *samples)
        assert done.returncode == 0, done.stderr
    done = stella(home, "keys", "generate", "k")
    assert done.returncode == 0, done.stderr
    tokens = {
        name: create_token(home, tenant=tenant, scopes=scopes, ttl=timedelta(hours=1), subject="api-distribute")[1]
        for name, tenant, scopes in (
            ("acme", "acme", SCOPES),
            ("globex", "globex", SCOPES),
            ("reader", "acme", (SCOPE_EXPORT_READ,)),
            ("runner", "acme", (SCOPE_EXPORT_RUN,)),
        )
    }
    allowed = base / "allowed"
    allowed.mkdir()
    # store_linger=0: the CLI can open the home between requests (it is compared with the API below).
    server = InProcess(home, store_linger=0, distribute_dirs=[allowed])
    try:
        runs: dict[str, dict[str, Any]] = {}
        for tenant in ("acme", "globex"):
            headers = {"Authorization": f"Bearer {tokens[tenant]}"}
            body = {"profile": "json:raw", "options": {"key": "k"}}
            created = httpx.post(f"{server.url}/api/v1/export/runs", json=body, headers=headers, timeout=60)
            assert created.status_code == 202, created.text
            runs[tenant] = wait_done(server.url, created.json()["id"], headers)
        yield {"home": home, "url": server.url, "tokens": tokens, "runs": runs, "allowed": allowed, "base": base}
    finally:
        server.stop()


def post(served: dict[str, Any], body: dict[str, Any], *, token: str = "acme", run: str = "acme") -> httpx.Response:
    url = f"{served['url']}/api/v1/export/runs/{served['runs'][run]['id']}/distributions"
    return httpx.post(url, json=body, headers={"Authorization": f"Bearer {served['tokens'][token]}"}, timeout=120)


def listed(served: dict[str, Any], *, token: str = "acme", run: str = "acme") -> httpx.Response:
    url = f"{served['url']}/api/v1/export/runs/{served['runs'][run]['id']}/distributions"
    return httpx.get(url, headers={"Authorization": f"Bearer {served['tokens'][token]}"}, timeout=60)


def fresh_dir(served: dict[str, Any], name: str) -> Path:
    path: Path = served["allowed"] / name
    path.mkdir()
    return path


def test_directory_copy_is_the_bundle_recorded_as_the_cli_records_it(served: dict[str, Any]) -> None:
    run = served["runs"]["acme"]
    out = fresh_dir(served, "copy")
    answer = post(served, {"to": str(out)})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["type"] == "file"
    record = body["distribution"]
    copied = out / Path(record["target"]).name
    assert record["target"] == str(copied)
    # The bundle, and its attestation with the copy's own signed line, as `stella export download` writes them.
    assert sorted(p.name for p in out.iterdir()) == [copied.name, copied.name + ".intoto.jsonl"]
    assert record["runId"] == run["id"] and record["state"] == "completed" and record["type"] == "file"
    data = copied.read_bytes()
    assert hashlib.sha256(data).hexdigest() == record["sha256"] == run["artifact"]["sha256"]
    assert len(data) == record["size"] == run["artifact"]["size"]

    # The CLI's own record of the same copy has the same fields.
    cli_out = served["base"] / "cli-copy"
    cli_out.mkdir()
    done = stella(served["home"], "export", "download", run["id"], "--to", str(cli_out), "--json")
    assert done.returncode == 0, done.stderr
    cli_record = json.loads(done.stdout)
    assert set(cli_record) == set(record)
    assert (cli_out / copied.name).read_bytes() == data
    assert sorted(p.name for p in cli_out.iterdir()) == sorted(p.name for p in out.iterdir())

    # Both are listed, oldest first; the SDK reads the same list.
    rows = listed(served)
    assert rows.status_code == 200, rows.text
    ids = [d["distributionId"] for d in rows.json()["distributions"]]
    assert rows.json()["run"] == run["id"]
    assert ids[-2:] == [record["distributionId"], cli_record["distributionId"]]
    sdk = AuthenticatedClient(base_url=served["url"], token=served["tokens"]["acme"], timeout=httpx.Timeout(60))
    parsed = list_distributions.sync(run_id=run["id"], client=sdk)
    assert parsed is not None and not isinstance(parsed, dict)
    assert [d["distributionId"] for d in parsed.to_dict()["distributions"]] == ids


@pytest.mark.parametrize(
    ("to", "says"),
    [
        ("relative/dir", "is not an absolute path"),
        ("/nonexistent-stella-dir/x", "no directory /nonexistent-stella-dir/x"),
        ("HOME", "inside the server's home"),
        ("HOME/keys", "inside the server's home"),
        ("OUTSIDE", "outside the directories this server distributes to"),
        ("ftp://example.invalid/x", "unsupported destination 'ftp://example.invalid/x'"),
    ],
)
def test_a_bad_target_is_a_usage_problem_and_writes_nothing(served: dict[str, Any], to: str, says: str) -> None:
    home: Home = served["home"]
    outside = served["base"] / "outside"
    outside.mkdir(exist_ok=True)
    to = to.replace("HOME", str(home.root)).replace("OUTSIDE", str(outside))
    before = sorted(p for p in home.root.rglob("*") if p.suffix == ".tgz" or p.name.endswith((".part", ".zst")))
    answer = post(served, {"to": to})
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM)
    problem = answer.json()
    assert problem["code"] == "usage" and problem["exitCode"] == 2
    assert says in problem["detail"]
    assert not any(outside.iterdir())
    after = sorted(p for p in home.root.rglob("*") if p.suffix == ".tgz" or p.name.endswith((".part", ".zst")))
    assert after == before


def test_unsupported_scheme_is_refused_as_the_cli_refuses_it(served: dict[str, Any]) -> None:
    run = served["runs"]["acme"]["id"]
    done = stella(served["home"], "distribute", run, "--to", "ftp://example.invalid/x", "--json")
    cli = json.loads(done.stdout)
    problem = post(served, {"to": "ftp://example.invalid/x"}).json()
    assert (problem["code"], problem["exitCode"]) == (cli["error"], cli["exitCode"]) == ("usage", done.returncode)
    assert problem["detail"] == f"{cli['message']} ({cli['hint']})"


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"to": "oci://127.0.0.1:5000/acme/x", "endpointUrl": "https://s3.example"}, "/endpointUrl"),
        ({"to": "oci://127.0.0.1:5000/acme/x", "legalHold": True}, "/legalHold"),
        ({"to": "s3://bucket/prefix", "plainHttp": True}, "/plainHttp"),
        ({"to": "/tmp", "chunkSize": 1024}, "/chunkSize"),
    ],
)
def test_an_option_of_another_target_is_refused(served: dict[str, Any], body: dict[str, Any], pointer: str) -> None:
    answer = post(served, body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == "usage" and answer.json()["pointer"] == pointer


def test_credentials_are_not_taken_in_the_body(served: dict[str, Any]) -> None:
    for extra in ({"credentialsFile": "/etc/passwd"}, {"registryConfig": "/root/.docker/config.json"}):
        answer = post(served, {"to": "oci://127.0.0.1:5000/acme/x", **extra})
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"].startswith(PROBLEM)


def test_scopes_and_tenants(served: dict[str, Any]) -> None:
    out = fresh_dir(served, "matrix")
    url = f"{served['url']}/api/v1/export/runs/{served['runs']['acme']['id']}/distributions"
    assert httpx.post(url, json={"to": str(out)}, timeout=30).status_code == 401
    assert httpx.get(url, timeout=30).status_code == 401
    # POST needs export:run, GET export:read.
    refused = post(served, {"to": str(out)}, token="reader")
    assert refused.status_code == 403 and refused.json()["scope"] == SCOPE_EXPORT_RUN
    assert listed(served, token="reader").status_code == 200
    refused = listed(served, token="runner")
    assert refused.status_code == 403 and refused.json()["scope"] == SCOPE_EXPORT_READ
    # Another tenant's run is not found, whatever the body, and nothing is written.
    for token, run in (("globex", "acme"), ("acme", "globex")):
        hidden = post(served, {"to": str(out)}, token=token, run=run)
        assert hidden.status_code == 404 and hidden.json()["code"] == "not-found", hidden.text
        assert listed(served, token=token, run=run).status_code == 404
    missing = httpx.post(
        f"{served['url']}/api/v1/export/runs/no-such-run/distributions",
        json={"to": str(out)},
        headers={"Authorization": f"Bearer {served['tokens']['acme']}"},
        timeout=30,
    )
    assert missing.status_code == 404
    assert not any(out.iterdir())


# -- a real registry on 127.0.0.1 --------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    """docker-registry (distribution 2.8) without auth on a loopback port, as tests/interop/test_oci_distribution.py
    starts it; its ``HOST:PORT``."""
    binary = require_tool("docker-registry")
    port = _free_port()
    root = tmp_path / "registry"
    root.mkdir()
    config = tmp_path / "registry.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {root}\nhttp:\n  addr: 127.0.0.1:{port}\n"
    )
    log = (tmp_path / "registry.log").open("wb")
    proc = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=log)
    host = f"127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(f"http://{host}/v2/", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        else:
            raise AssertionError(f"the registry did not start: {(tmp_path / 'registry.log').read_text()}")
        yield host
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def test_push_to_a_registry_is_recorded_once_and_pulls_back_as_the_bundle(
    served: dict[str, Any], registry: str
) -> None:
    run = served["runs"]["acme"]
    first = post(served, {"to": f"oci://{registry}", "plainHttp": True})
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["type"] == "oci" and body["recorded"] is True and body["blob"] == "uploaded"
    assert body["layerDigest"] == f"sha256:{run['artifact']['sha256']}"
    record = body["distribution"]
    assert record["type"] == "oci" and record["target"] == f"oci://{registry}/acme/json-raw@{body['manifestDigest']}"

    again = post(served, {"to": f"oci://{registry}", "plainHttp": True})
    assert again.status_code == 200, again.text
    assert again.json()["recorded"] is False
    assert again.json()["distribution"]["distributionId"] == record["distributionId"]
    oci_rows = [d for d in listed(served).json()["distributions"] if d["type"] == "oci"]
    assert [d["distributionId"] for d in oci_rows] == [record["distributionId"]]

    # What the registry holds is the run's bundle, byte for byte (stella pull checks every byte).
    pulled = served["base"] / "pulled.tgz"
    done = stella(
        served["home"], "pull", f"oci://{registry}/acme/json-raw@{body['manifestDigest']}", "--out", str(pulled),
        "--plain-http",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert hashlib.sha256(pulled.read_bytes()).hexdigest() == run["artifact"]["sha256"]


def test_registry_refusals_keep_the_cli_codes(served: dict[str, Any], registry: str) -> None:
    # Another tenant's namespace: policy, exit 7, before anything is pushed.
    other = post(served, {"to": f"oci://{registry}/globex/bundles", "plainHttp": True})
    assert other.status_code == 409, other.text
    assert (other.json()["code"], other.json()["exitCode"]) == ("policy", 7)
    assert httpx.get(f"http://{registry}/v2/_catalog", timeout=10).json()["repositories"] == []
    # Plain HTTP is for a registry on this machine only, as in the CLI.
    remote = post(served, {"to": "oci://registry.example.invalid/acme/x", "plainHttp": True})
    assert remote.status_code == 400 and remote.json()["code"] == "usage", remote.text
    assert "only for a registry on this machine" in remote.json()["detail"]


# -- moto's S3 server on 127.0.0.1 (as tests/interop/test_s3_distribution.py starts it) ----------------------------
def test_upload_to_a_bucket_with_the_servers_own_credentials(
    served: dict[str, Any], moto_endpoint: str, aws_env: None, s3: Any
) -> None:
    run = served["runs"]["acme"]
    bucket = f"api-{run['id'][-8:].lower()}"
    s3.create_bucket(Bucket=bucket)
    body = {"to": f"s3://{bucket}/exports", "endpointUrl": moto_endpoint, "pathStyle": True}
    first = post(served, body)
    assert first.status_code == 201, first.text
    answer = first.json()
    assert answer["type"] == "s3" and answer["alreadyPresent"] is False and answer["readBack"] == "get-sha256"
    assert answer["sha256"] == run["artifact"]["sha256"]
    key = answer["url"].split("/", 3)[3]
    stored = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert hashlib.sha256(stored).hexdigest() == run["artifact"]["sha256"]
    again = post(served, body)
    assert again.status_code == 200, again.text
    assert again.json()["alreadyPresent"] is True
    assert again.json()["distribution"]["distributionId"] == answer["distribution"]["distributionId"]
    # Object Lock on a bucket without it: the service's refusal (bad input, exit 3), nothing uploaded.
    locked = post(served, {**body, "to": f"s3://{bucket}/locked", "objectLock": "governance",
                           "retainUntil": "2099-01-01T00:00:00Z"})  # fmt: skip
    assert locked.status_code == 422 and (locked.json()["code"], locked.json()["exitCode"]) == ("bad-input", 3)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="locked").get("Contents", [])] == []
