"""`stella distribute --to oci://` and `stella pull` against Debian's docker-registry (distribution 2.8) on 127.0.0.1,
with no auth, htpasswd (bcrypt) and TLS (a test CA made with openssl); skopeo as the second client."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT, require_tool

pytestmark = pytest.mark.interop

SAMPLES = ROOT / "samples"
BUNDLE_TYPE = "application/vnd.stellaops.bundle.v1"
REFERRER_TYPE = "application/vnd.stellaops.bundle.signature.v1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Registry:
    host: str
    root: Path
    scheme: str
    ca: Path | None = None

    def blob_file(self, digest: str) -> Path:
        hexd = digest.removeprefix("sha256:")
        return self.root / "docker/registry/v2/blobs/sha256" / hexd[:2] / hexd / "data"

    def get(self, path: str, auth: tuple[str, str] | None = None, accept: str = "") -> httpx.Response:
        with httpx.Client(verify=ssl.create_default_context(cafile=str(self.ca)) if self.ca else True) as c:
            return c.get(f"{self.scheme}://{self.host}{path}", auth=auth, headers={"Accept": accept})


@pytest.fixture
def registry_factory(tmp_path: Path) -> Iterator[Callable[..., Registry]]:
    binary = require_tool("docker-registry")
    procs: list[subprocess.Popen[bytes]] = []

    def start(
        *,
        htpasswd: Path | None = None,
        tls: tuple[Path, Path] | None = None,
        token: tuple[str, Path] | None = None,
        delete: bool = True,
    ) -> Registry:
        port = _free_port()
        root = tmp_path / f"registry-{port}"
        root.mkdir()
        lines = [
            "version: 0.1",
            "log:",
            "  level: error",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {root}",
            "  delete:",
            f"    enabled: {'true' if delete else 'false'}",
            "http:",
            f"  addr: 127.0.0.1:{port}",
        ]
        if tls:
            lines += ["  tls:", f"    certificate: {tls[0]}", f"    key: {tls[1]}"]
        if htpasswd:
            lines += ["auth:", "  htpasswd:", "    realm: basic-realm", f"    path: {htpasswd}"]
        if token:
            lines += ["auth:", "  token:", f"    realm: {token[0]}", "    service: stella-registry",
                      "    issuer: stella-test-issuer", f"    rootcertbundle: {token[1]}"]  # fmt: skip
        config = tmp_path / f"registry-{port}.yml"
        config.write_text("\n".join(lines) + "\n")
        log = (tmp_path / f"registry-{port}.log").open("wb")
        procs.append(subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=log))
        reg = Registry(f"127.0.0.1:{port}", root, "https" if tls else "http", tls[0] if tls else None)
        for _ in range(100):
            try:
                reg.get("/v2/")
                return reg
            except httpx.TransportError:
                time.sleep(0.05)
        raise AssertionError(f"the registry did not start: {(tmp_path / f'registry-{port}.log').read_text()}")

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def run(stella: Any, tmp_path: Path) -> dict[str, Any]:
    """A succeeded json:raw run of the samples: its id, bundle and signer's public key."""
    assert stella("import", "--quiet", *sorted(p for p in SAMPLES.iterdir() if p.is_dir())).code == 0
    assert stella("keys", "generate", "k").code == 0
    pub = tmp_path / "k.pub"
    assert stella("keys", "export-public", "k", "--out", pub).code == 0
    out = tmp_path / "bundle.tar.zst"
    res = stella("export", "run", "--profile", "json:raw", "--key", "k", "--out", out, "--json")
    assert res.code == 0, res.err
    return {"id": res.json()["runId"], "bundle": out, "pub": pub}


def sha(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def skopeo_raw(ref: str, *flags: str) -> bytes:
    skopeo = require_tool("skopeo")
    done = subprocess.run([skopeo, "inspect", "--raw", *flags, f"docker://{ref}"], capture_output=True, check=True)
    return done.stdout


def test_push_pull_verify_and_skopeo_sees_the_same_digests(
    stella: Any, run: dict[str, Any], registry_factory: Callable[..., Registry], tmp_path: Path
) -> None:
    reg = registry_factory()
    res = stella("distribute", run["id"], "--to", f"oci://{reg.host}", "--plain-http", "--json")
    assert res.code == 0, res.err
    pushed = res.json()
    assert pushed["blob"] == "uploaded" and pushed["recorded"] is True
    assert pushed["layerDigest"] == sha(run["bundle"])
    repo = "default/json-raw"  # repository per tenant: TENANT/PROFILE
    digest = pushed["manifestDigest"]
    assert pushed["reference"] == f"{reg.host}/{repo}:{run['id']}@{digest}"

    # skopeo, a second client, reads the same manifest bytes (by digest and by the run-id tag)
    raw = skopeo_raw(f"{reg.host}/{repo}@{digest}", "--tls-verify=false")
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == digest
    assert skopeo_raw(f"{reg.host}/{repo}:{run['id']}", "--tls-verify=false") == raw
    manifest = json.loads(raw)
    assert manifest["artifactType"] == BUNDLE_TYPE
    assert [layer["digest"] for layer in manifest["layers"]] == [sha(run["bundle"])]
    notes = manifest["annotations"]
    assert notes["org.stellaops.tenant"] == "default" and notes["org.stellaops.profile"] == "json:raw"
    assert notes["org.stellaops.run-id"] == run["id"]
    assert notes["org.stellaops.export.digest"].startswith("sha256:")

    # skopeo copies the artifact out into an OCI layout: the bundle blob arrives with the same digest
    layout = tmp_path / "layout"
    subprocess.run(
        [require_tool("skopeo"), "copy", "--src-tls-verify=false", f"docker://{reg.host}/{repo}@{digest}",
         f"oci:{layout}:b"],
        check=True, capture_output=True,
    )  # fmt: skip
    assert (layout / "blobs/sha256" / sha(run["bundle"]).removeprefix("sha256:")).read_bytes() == run[
        "bundle"
    ].read_bytes()

    # the signature/provenance referrer is listed in the sha256-<hex> tag index (distribution 2.8: no referrers API)
    assert reg.get(f"/v2/{repo}/referrers/{digest}").status_code == 404
    index = json.loads(skopeo_raw(f"{reg.host}/{repo}:sha256-{digest.removeprefix('sha256:')}", "--tls-verify=false"))
    assert [(m["digest"], m["artifactType"]) for m in index["manifests"]] == [(pushed["referrerDigest"], REFERRER_TYPE)]
    referrer = json.loads(skopeo_raw(f"{reg.host}/{repo}@{pushed['referrerDigest']}", "--tls-verify=false"))
    assert referrer["subject"]["digest"] == digest
    titles = [layer["annotations"]["org.opencontainers.image.title"] for layer in referrer["layers"]]
    # ... and the run's in-toto attestation with this push's own line (tests/interop/test_distribution_attestation.py)
    assert titles == ["export.json", "export.json.sig", "provenance.dsse.json", "bundle.tar.zst.intoto.jsonl"]

    # pull by digest, then verify offline
    got = tmp_path / "pulled.tar.zst"
    res = stella("pull", f"oci://{reg.host}/{repo}@{digest}", "--out", got, "--plain-http", "--json")
    assert res.code == 0, res.err
    assert got.read_bytes() == run["bundle"].read_bytes()
    assert stella("verify", got, "--key", run["pub"]).code == 0

    # the push is recorded once; pushing again changes nothing (same digests, no new row, no new event)
    shown = stella("export", "show", run["id"], "--json").json()
    oci = [d for d in shown["distributions"] if d["type"] == "oci"]
    assert [d["target"] for d in oci] == [f"oci://{reg.host}/{repo}@{digest}"]
    assert (
        oci[0]["sha256"] == sha(run["bundle"]).removeprefix("sha256:")
        and oci[0]["size"] == run["bundle"].stat().st_size
    )
    again = stella("distribute", run["id"], "--to", f"oci://{reg.host}", "--plain-http", "--json").json()
    assert again["manifestDigest"] == digest and again["referrerDigest"] == pushed["referrerDigest"]
    assert again["blob"] == "present" and again["recorded"] is False
    shown = stella("export", "show", run["id"], "--json").json()
    assert len([d for d in shown["distributions"] if d["type"] == "oci"]) == 1
    index = json.loads(skopeo_raw(f"{reg.host}/{repo}:sha256-{digest.removeprefix('sha256:')}", "--tls-verify=false"))
    assert len(index["manifests"]) == 1  # no duplicate referrer
    events = stella("timeline", "list", "--limit", "500", "--json").out
    assert events.count("export.distributed") >= 1 and events.count(f"oci://{reg.host}") == 1


def test_second_repository_of_the_tenant_mounts_the_blob(
    stella: Any, run: dict[str, Any], registry_factory: Callable[..., Registry]
) -> None:
    reg = registry_factory()
    assert stella("distribute", run["id"], "--to", f"oci://{reg.host}/default/a", "--plain-http").code == 0
    res = stella("distribute", run["id"], "--to", f"oci://{reg.host}/default/b:latest", "--plain-http", "--json")
    assert res.code == 0, res.err
    assert res.json()["blob"] == "mounted"
    assert (
        reg.get("/v2/default/b/manifests/latest", accept="application/vnd.oci.image.manifest.v1+json").status_code
        == 200
    )


def test_refusals_plain_http_elsewhere_cross_tenant_and_pull_by_tag(
    stella: Any, run: dict[str, Any], tmp_path: Path
) -> None:
    res = stella("distribute", run["id"], "--to", "oci://registry.example:5000/default/x", "--plain-http")
    assert res.code == 2 and "only for a registry on this machine" in res.err
    res = stella("distribute", run["id"], "--to", "oci://127.0.0.1:9/acme/bundles", "--plain-http")
    assert res.code == 7 and "outside tenant 'default'" in res.err
    res = stella("distribute", run["id"], "--to", "oci://127.0.0.1:9/bundles", "--plain-http")
    assert res.code == 7
    res = stella("distribute", run["id"], "--to", "s4://bucket")
    assert res.code == 2 and "unsupported destination" in res.err
    res = stella("pull", "oci://127.0.0.1:9/default/x:latest", "--out", tmp_path / "f", "--plain-http")
    assert res.code == 2 and "pull by digest" in res.err
    res = stella("distribute", run["id"], "--to", "oci://127.0.0.1:9/default/x", "--plain-http")
    assert res.code == 8 and "cannot reach the registry 127.0.0.1:9" in res.err  # nothing listens on port 9
    assert stella("distribute", "no-such-run", "--to", "oci://127.0.0.1:9", "--plain-http").code == 3
    # a tenant whose name is not a lowercase repository component: refused, never folded onto another tenant's
    assert stella("import", "--quiet", "--tenant", "Acme", SAMPLES / "advisories").code == 0
    out = tmp_path / "acme.tar.zst"
    acme = stella("export", "run", "--tenant", "Acme", "--profile", "json:raw", "--key", "k", "--out", out, "--json")
    assert acme.code == 0, acme.err
    res = stella("distribute", acme.json()["runId"], "--to", "oci://127.0.0.1:9", "--plain-http")
    assert res.code == 2 and "cannot name a registry namespace" in res.err


def test_corrupted_blob_on_the_registry_disk_is_detected(
    stella: Any, run: dict[str, Any], registry_factory: Callable[..., Registry], tmp_path: Path
) -> None:
    reg = registry_factory()
    pushed = stella("distribute", run["id"], "--to", f"oci://{reg.host}", "--plain-http", "--json").json()
    blob = reg.blob_file(pushed["layerDigest"])
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte changed: the registry still serves its old digest header
    blob.write_bytes(bytes(data))
    got = tmp_path / "pulled.tar.zst"
    res = stella("pull", f"oci://{reg.host}/default/json-raw@{pushed['manifestDigest']}", "--out", got, "--plain-http")
    assert res.code == 4, res.err
    assert "served blob" in res.err and "other bytes" in res.err
    assert not got.exists() and not list(tmp_path.glob(".pulled*"))
    # an altered manifest is caught too: its bytes no longer hash to the digest asked for
    manifest = reg.blob_file(pushed["manifestDigest"])
    manifest.write_bytes(manifest.read_bytes().replace(b'"schemaVersion":2', b'"schemaVersion":2 '))
    res = stella("pull", f"oci://{reg.host}/default/json-raw@{pushed['manifestDigest']}", "--out", got, "--plain-http")
    assert res.code == 4 and "served manifest" in res.err


def test_resumed_pull_yields_identical_bytes(
    stella: Any, run: dict[str, Any], registry_factory: Callable[..., Registry], tmp_path: Path
) -> None:
    reg = registry_factory()
    pushed = stella("distribute", run["id"], "--to", f"oci://{reg.host}", "--plain-http", "--json").json()
    source = f"oci://{reg.host}/default/json-raw@{pushed['manifestDigest']}"
    got = tmp_path / "pulled.tar.zst"
    whole = run["bundle"].read_bytes()
    part = tmp_path / ".pulled.tar.zst.part"
    part.write_bytes(whole[: len(whole) // 3])  # a pull killed a third of the way
    res = stella("pull", source, "--out", got, "--plain-http", "--json")
    assert res.code == 0, res.err
    assert res.json()["resumedFrom"] == len(whole) // 3
    assert got.read_bytes() == whole and not part.exists()
    # a partial file that is not a prefix of the blob: the result fails the digest, nothing is left, a new pull works
    got.unlink()
    part.write_bytes(b"x" * 100)
    res = stella("pull", source, "--out", got, "--plain-http")
    assert res.code == 4 and not got.exists() and not part.exists()
    assert stella("pull", source, "--out", got, "--plain-http").code == 0
    assert got.read_bytes() == whole


class _StopAfter:
    """An observer that asks to stop once ``limit`` bytes went up (a push interrupted between chunks)."""

    def __init__(self, limit: int) -> None:
        self.limit, self.done = limit, 0

    def start(self, phase: str, total: int | None = None) -> None: ...
    def finish(self, phase: str) -> None: ...
    def check(self, check: object) -> None: ...

    def advance(self, units: int = 1, *, detail: str | None = None) -> None:
        self.done += units

    def is_cancelled(self) -> bool:
        return self.done >= self.limit


def test_interrupted_push_resumes_from_the_registry_upload_state(
    stella: Any, run: dict[str, Any], registry_factory: Callable[..., Registry], home: Path, tmp_path: Path
) -> None:
    from core.errors import Cancelled
    from core.home import Home
    from services.distribute import Access, distribute_run

    reg = registry_factory()
    size = run["bundle"].stat().st_size
    chunk = max(size // 8, 1)
    with pytest.raises(Cancelled):
        distribute_run(
            Home(home), run["id"], f"oci://{reg.host}", Access(plain_http=True, chunk_size=chunk),
            observer=_StopAfter(3 * chunk),
        )  # fmt: skip
    states = list((home / "oci-uploads").glob("*.json"))
    assert len(states) == 1 and json.loads(states[0].read_text())["offset"] == 3 * chunk
    assert "password" not in states[0].read_text()
    res = stella("distribute", run["id"], "--to", f"oci://{reg.host}", "--plain-http", "--chunk-size", chunk, "--json")
    assert res.code == 0, res.err
    assert res.json()["resumedFrom"] == 3 * chunk and res.json()["blob"] == "uploaded"
    assert not states[0].exists()
    assert reg.blob_file(sha(run["bundle"])).read_bytes() == run["bundle"].read_bytes()


def test_killed_push_is_finished_by_the_next_one(
    stella: Any, run: dict[str, Any], registry_factory: Callable[..., Registry], home: Path, tmp_path: Path
) -> None:
    """A push killed with SIGKILL mid-upload: the next push finishes it (resumed at the last chunk the registry
    confirmed, or started again if the kill cut a chunk), and the blob is the bundle byte for byte."""
    reg = registry_factory()
    size = run["bundle"].stat().st_size
    chunk = max(size // 200, 512)
    env = dict(os.environ, STELLA_HOME=str(home))
    cmd = [sys.executable, "-m", "app.cli", "distribute", run["id"], "--to", f"oci://{reg.host}", "--plain-http",
           "--chunk-size", str(chunk)]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    state_dir = home / "oci-uploads"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        states = list(state_dir.glob("*.json")) if state_dir.is_dir() else []
        if states:
            try:
                if json.loads(states[0].read_text())["offset"] >= 5 * chunk:
                    break
            except (ValueError, OSError):
                pass
        time.sleep(0.005)
    assert proc.poll() is None, "the push ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert reg.get(f"/v2/default/json-raw/blobs/{sha(run['bundle'])}").status_code == 404  # not there yet
    res = stella("distribute", run["id"], "--to", f"oci://{reg.host}", "--plain-http", "--chunk-size", chunk, "--json")
    assert res.code == 0, res.err
    assert res.json()["blob"] == "uploaded"
    assert reg.blob_file(sha(run["bundle"])).read_bytes() == run["bundle"].read_bytes()


# -- auth and TLS ---------------------------------------------------------------------------------------------------
def _htpasswd(path: Path, user: str, password: str) -> None:
    bcrypt = pytest.importorskip("bcrypt")
    path.write_text(f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()}\n")


def _docker_config(path: Path, host: str, user: str, password: str) -> Path:
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    path.write_text(json.dumps({"auths": {host: {"auth": auth}}}))
    return path


def test_htpasswd_registry(
    stella: Any, run: dict[str, Any], registry_factory: Callable[..., Registry], tmp_path: Path
) -> None:
    users = tmp_path / "htpasswd"
    _htpasswd(users, "stella", "s3cret-pw")
    reg = registry_factory(htpasswd=users)
    to = f"oci://{reg.host}/default/bundles"
    res = stella("distribute", run["id"], "--to", to, "--plain-http")
    assert res.code == 8 and "asks for a user name and password" in res.err and "--registry-config" in res.err
    wrong = _docker_config(tmp_path / "wrong.json", reg.host, "stella", "nope")
    started = time.monotonic()
    res = stella("distribute", run["id"], "--to", to, "--plain-http", "--registry-config", wrong)
    assert res.code == 8 and "refused access for user 'stella'" in res.err
    assert time.monotonic() - started < 5 and "nope" not in res.err + res.out
    good = _docker_config(tmp_path / "config.json", reg.host, "stella", "s3cret-pw")
    res = stella("distribute", run["id"], "--to", to, "--plain-http", "--registry-config", good, "--json")
    assert res.code == 0, res.err
    assert "s3cret-pw" not in res.out + res.err
    digest = res.json()["manifestDigest"]
    creds = tmp_path / "creds"
    creds.write_text("stella:s3cret-pw\n")
    got = tmp_path / "pulled.tar.zst"
    res = stella("pull", f"{to}@{digest}", "--out", got, "--plain-http", "--credentials-file", creds)
    assert res.code == 0, res.err
    assert got.read_bytes() == run["bundle"].read_bytes()
    assert stella("verify", got, "--key", run["pub"]).code == 0
    assert stella("pull", f"{to}@{digest}", "--out", tmp_path / "x", "--plain-http").code == 8
    # the same bytes for skopeo with the same credentials
    raw = skopeo_raw(f"{reg.host}/default/bundles@{digest}", "--tls-verify=false", "--creds", "stella:s3cret-pw")
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == digest
    # the stella home holds no credentials
    home_files = [p for p in Path(os.environ["STELLA_HOME"]).rglob("*") if p.is_file() and p.stat().st_size < 1 << 20]
    assert not [p for p in home_files if b"s3cret-pw" in p.read_bytes()]


def test_tls_registry_with_a_ca_file(
    stella: Any, run: dict[str, Any], registry_factory: Callable[..., Registry], tmp_path: Path
) -> None:
    openssl = require_tool("openssl")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
         "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    reg = registry_factory(tls=(cert, key))
    to = f"oci://{reg.host}/default/bundles"
    res = stella("distribute", run["id"], "--to", to)
    assert res.code == 8 and "cannot reach the registry" in res.err and "CERTIFICATE_VERIFY_FAILED" in res.err
    res = stella("distribute", run["id"], "--to", to, "--ca-file", cert, "--json")
    assert res.code == 0, res.err
    digest = res.json()["manifestDigest"]
    got = tmp_path / "pulled.tar.zst"
    assert stella("pull", f"{to}@{digest}", "--out", got, "--ca-file", cert).code == 0
    assert got.read_bytes() == run["bundle"].read_bytes()
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "ca.crt").write_bytes(cert.read_bytes())  # skopeo trusts the same CA, and checks the certificate
    raw = skopeo_raw(f"{reg.host}/default/bundles@{digest}", "--cert-dir", str(certs))
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == digest


# -- token auth: a tiny token server (ES256 JWTs with the signing certificate in x5c) --------------------------------
class _TokenServer:
    """Grants ``repository:NAME:ACTIONS`` scopes to ``user``/``password``: push only for the repositories in
    ``pushable``, pull for any; logs every scope asked for. A test stand-in for a registry's token service."""

    def __init__(self, tmp_path: Path, pushable: set[str]) -> None:
        import datetime
        import http.server
        import threading

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stella test token issuer")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self.key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(self.key, hashes.SHA256())
        )  # fmt: skip
        self.cert = tmp_path / "token-cert.pem"
        self.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        self.scopes: list[list[str]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None: ...

            def do_GET(self) -> None:
                import urllib.parse

                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                expected = "Basic " + base64.b64encode(b"stella:t0ken-pw").decode()
                if self.headers.get("Authorization") != expected:
                    self.send_response(401)
                    self.end_headers()
                    return
                scopes = query.get("scope", [])
                server.scopes.append(scopes)
                body = json.dumps({"token": server.token(scopes, pushable)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.realm = f"http://127.0.0.1:{self.httpd.server_address[1]}/token"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def token(self, scopes: list[str], pushable: set[str]) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        access = []
        for scope in scopes:
            kind, name, actions = scope.split(":")
            granted = [a for a in actions.split(",") if a == "pull" or name in pushable]
            access.append({"type": kind, "name": name, "actions": granted})
        now = int(time.time())
        claims = {"iss": "stella-test-issuer", "sub": "stella", "aud": "stella-registry", "exp": now + 300,
                  "nbf": now - 10, "iat": now, "jti": os.urandom(8).hex(), "access": access}  # fmt: skip

        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        head = b64(json.dumps({"typ": "JWT", "alg": "ES256", "x5c": [self.x5c]}).encode())
        signing_input = f"{head}.{b64(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return f"{signing_input}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_token_auth_with_scopes(
    stella: Any, run: dict[str, Any], registry_factory: Callable[..., Registry], tmp_path: Path
) -> None:
    tokens = _TokenServer(tmp_path, pushable={"default/a", "default/b"})
    try:
        reg = registry_factory(token=(tokens.realm, tokens.cert))
        config = _docker_config(tmp_path / "config.json", reg.host, "stella", "t0ken-pw")
        res = stella("distribute", run["id"], "--to", f"oci://{reg.host}/default/a", "--plain-http")
        assert res.code == 8 and "refused access" in res.err  # no credentials: the token service says 401
        res = stella(
            "distribute", run["id"], "--to", f"oci://{reg.host}/default/a", "--plain-http", "--registry-config",
            config, "--json",
        )  # fmt: skip
        assert res.code == 0, res.err
        digest = res.json()["manifestDigest"]
        # a second repository of the tenant in another session: the blob is mounted, with a token for both scopes
        res = stella(
            "distribute", run["id"], "--to", f"oci://{reg.host}/default/b", "--plain-http", "--registry-config",
            config, "--json",
        )  # fmt: skip
        assert res.code == 0, res.err
        assert res.json()["blob"] == "mounted"
        asked = {" ".join(s) for s in tokens.scopes}
        assert "repository:default/a:pull,push" in asked
        assert "repository:default/b:pull,push repository:default/a:pull" in asked
        # a repository the user may only pull: the push is refused, exit 8, with the scope named
        res = stella(
            "distribute", run["id"], "--to", f"oci://{reg.host}/default/c", "--plain-http", "--registry-config", config
        )
        assert res.code == 8 and "refused access for user 'stella'" in res.err
        got = tmp_path / "pulled.tar.zst"
        res = stella(
            "pull", f"oci://{reg.host}/default/a@{digest}", "--out", got, "--plain-http", "--registry-config", config
        )
        assert res.code == 0, res.err
        assert stella("verify", got, "--key", run["pub"]).code == 0
        assert ["repository:default/a:pull"] in tokens.scopes  # the pull asked for no more than pull
    finally:
        tokens.close()


# -- faults: a proxy in front of the real registry answers 503/429, drops connections, cuts a download -------------
class _FaultyProxy:
    """Forwards to the registry, except where ``faults`` (request number -> fault) says otherwise: a status such as
    ``"503"`` or ``"429"`` (answered by the proxy), ``"drop"`` (connection closed before forwarding),
    ``"drop-after"`` (forwarded, then closed without the answer), ``"cut"`` (half of the answer's body, then closed)."""

    def __init__(self, upstream: str, faults: dict[tuple[str, int], str]) -> None:
        import http.server
        import threading

        self.seen: dict[str, int] = {}
        self.log: list[tuple[str, str, str]] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None: ...

            def _handle(self) -> None:
                method = self.command
                n = proxy.seen[method] = proxy.seen.get(method, 0) + 1
                fault = faults.get((method, n), "")
                proxy.log.append((method, self.path, fault))
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if fault.isdigit():
                    self.send_response(int(fault))
                    self.send_header("Retry-After", "0")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if fault == "drop":
                    self.close_connection = True
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("content-length", "connection")}
                with httpx.Client() as c:
                    reply = c.request(method, f"http://{upstream}{self.path}", headers=headers, content=body)
                if fault == "drop-after":
                    self.close_connection = True
                    return
                data = reply.content
                self.send_response(reply.status_code)
                for k, v in reply.headers.items():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if method == "HEAD":
                    return
                if fault == "cut":
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(data)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_transient_failures_are_retried_and_a_lost_chunk_is_recovered(
    stella: Any, run: dict[str, Any], registry_factory: Callable[..., Registry], tmp_path: Path
) -> None:
    reg = registry_factory()
    size = run["bundle"].stat().st_size
    chunk = max(size // 6, 1)
    faults = {
        ("HEAD", 1): "503",  # the first HEAD: retried
        ("POST", 1): "429",  # the first upload start: retried after Retry-After
        ("PATCH", 2): "drop",  # a chunk lost before the registry saw it: resumed from the registry's offset
        ("PATCH", 4): "drop-after",  # a chunk the registry took, its answer lost: the blob starts again
        ("PUT", 1): "503",
    }
    proxy = _FaultyProxy(reg.host, faults)
    try:
        res = stella(
            "distribute", run["id"], "--to", f"oci://{proxy.host}", "--plain-http", "--chunk-size", chunk, "--json"
        )
        assert res.code == 0, res.err
        assert reg.blob_file(sha(run["bundle"])).read_bytes() == run["bundle"].read_bytes()
        assert {f for _, _, f in proxy.log} >= {"503", "429", "drop", "drop-after"}
        digest = res.json()["manifestDigest"]
    finally:
        proxy.close()
    # a download cut half-way: exit 8, the part kept; the next pull resumes it and ends with the same bytes
    blob_path = f"/v2/default/json-raw/blobs/{sha(run['bundle'])}"
    proxy = _FaultyProxy(reg.host, {("GET", 2): "cut"})  # GET 1 is the manifest, GET 2 the bundle's blob
    try:
        source = f"oci://{proxy.host}/default/json-raw@{digest}"
        got = tmp_path / "pulled.tar.zst"
        res = stella("pull", source, "--out", got, "--plain-http")
        assert res.code == 8 and "broke off" in res.err, res.err
        part = tmp_path / ".pulled.tar.zst.part"
        kept = part.stat().st_size
        assert not got.exists() and 0 < kept < size
        res = stella("pull", source, "--out", got, "--plain-http", "--json")
        assert res.code == 0, res.err
        assert res.json()["resumedFrom"] == kept
        assert got.read_bytes() == run["bundle"].read_bytes()
        assert [p for m, p, _ in proxy.log if m == "GET"].count(blob_path) == 2
    finally:
        proxy.close()


def test_oras_py_as_a_second_client(
    stella: Any,
    run: dict[str, Any],
    registry_factory: Callable[..., Registry],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What stella pushes, oras-py pulls with the same bytes; a bundle oras-py pushes (its blobs, then a manifest
    with stella's artifactType), stella pulls and verifies."""
    oras = pytest.importorskip("oras.provider")
    reg = registry_factory()
    pushed = stella("distribute", run["id"], "--to", f"oci://{reg.host}", "--plain-http", "--json").json()
    client = oras.Registry(hostname=reg.host, insecure=True)
    files = client.pull(target=f"{reg.host}/default/json-raw@{pushed['manifestDigest']}", outdir=str(tmp_path / "o"))
    assert [Path(f).name for f in files] == [run["bundle"].name]
    assert Path(files[0]).read_bytes() == run["bundle"].read_bytes()

    container = client.get_container(f"{reg.host}/default/from-oras:v1")
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"{}")
    config = {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha(empty), "size": 2}
    layer = {
        "mediaType": "application/vnd.stellaops.bundle.v1.tar+zstd",
        "digest": sha(run["bundle"]),
        "size": run["bundle"].stat().st_size,
        "annotations": {"org.opencontainers.image.title": run["bundle"].name},
    }
    client.upload_blob(str(empty), container, config)
    client.upload_blob(str(run["bundle"]), container, layer)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": BUNDLE_TYPE,
        "config": config,
        "layers": [layer],
    }
    assert client.upload_manifest(manifest, container).status_code == 201
    raw = skopeo_raw(f"{reg.host}/default/from-oras:v1", "--tls-verify=false")
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    got = tmp_path / "from-oras.tar.zst"
    res = stella("pull", f"oci://{reg.host}/default/from-oras@{digest}", "--out", got, "--plain-http")
    assert res.code == 0, res.err
    assert stella("verify", got, "--key", run["pub"]).code == 0
    # a plain oras-py push (no artifactType) is not a stella bundle: refused, exit 3, nothing written
    plain = tmp_path / "notes.txt"
    plain.write_text("hello")
    monkeypatch.chdir(tmp_path)  # oras-py pushes only files under the working directory
    client.push(target=f"{reg.host}/default/plain:v1", files=[plain.name])
    raw = skopeo_raw(f"{reg.host}/default/plain:v1", "--tls-verify=false")
    res = stella(
        "pull",
        f"oci://{reg.host}/default/plain@sha256:{hashlib.sha256(raw).hexdigest()}",
        "--out",
        tmp_path / "p",
        "--plain-http",
    )
    assert res.code == 3 and "not a stella bundle" in res.err and not (tmp_path / "p").exists()


def test_trivy_uses_the_pushed_trivy_db(
    stella: Any, registry_factory: Callable[..., Registry], tmp_path: Path, home: Path
) -> None:
    """A trivy:db run pushed to a registry: its Trivy image (Trivy's media types, tag 2) sits beside the bundle, and
    the real Trivy downloads it with --db-repository into a cache holding the very trivy.db the bundle carries."""
    from tests.integration.bundle_helpers import extract
    from tests.integration.test_trivy_profiles import build_trivy_bundles
    from tests.interop.test_trivy_interop import _env, trivy_binary

    trivy = trivy_binary()
    bundles = build_trivy_bundles(stella, tmp_path)
    runs = stella("export", "runs", "--json").json()["runs"]
    db_run = next(r["runId"] for r in runs if r["profile"]["id"] == "trivy:db")
    reg = registry_factory()
    res = stella("distribute", db_run, "--to", f"oci://{reg.host}", "--plain-http", "--json")
    assert res.code == 0, res.err
    assert res.json()["trivyReference"] == f"{reg.host}/default/trivy-db:2"
    cache = tmp_path / "trivy-cache"
    done = subprocess.run(
        [trivy, "image", "--download-db-only", "--db-repository", f"{reg.host}/default/trivy-db", "--insecure",
         "--cache-dir", str(cache), "--quiet"],
        capture_output=True, text=True, timeout=300, env=_env(tmp_path),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    tree = extract(bundles["db"], tmp_path / "x-db")
    assert (cache / "db" / "trivy.db").read_bytes() == (tree / "cache" / "db" / "trivy.db").read_bytes()
    # the same for the Java DB (tag 1) and --java-db-repository
    java_run = next(r["runId"] for r in runs if r["profile"]["id"] == "trivy:java-db")
    res = stella("distribute", java_run, "--to", f"oci://{reg.host}", "--plain-http", "--json")
    assert res.code == 0, res.err
    assert res.json()["trivyReference"] == f"{reg.host}/default/trivy-java-db:1"
    done = subprocess.run(
        [trivy, "image", "--download-java-db-only", "--java-db-repository", f"{reg.host}/default/trivy-java-db",
         "--insecure", "--cache-dir", str(cache), "--quiet"],
        capture_output=True, text=True, timeout=300, env=_env(tmp_path),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    tree = extract(bundles["java-db"], tmp_path / "x-java-db")
    java = cache / "java-db" / "trivy-java.db"
    assert java.read_bytes() == (tree / "cache" / "java-db" / "trivy-java.db").read_bytes()


def test_credentials_asked_on_a_terminal_are_never_echoed(
    run: dict[str, Any], registry_factory: Callable[..., Registry], tmp_path: Path, home: Path
) -> None:
    """Without a config or credentials file, on a terminal, stella asks for the user name and the password (not
    echoed) when the registry asks for credentials; nothing of the password is shown or kept."""
    import pty

    users = tmp_path / "htpasswd"
    _htpasswd(users, "stella", "typed-s3cret")
    reg = registry_factory(htpasswd=users)
    cmd = [sys.executable, "-m", "app.cli", "distribute", run["id"], "--to", f"oci://{reg.host}", "--plain-http"]
    env = dict(os.environ, STELLA_HOME=str(home), PYTHONPATH=str(ROOT))
    pid, fd = pty.fork()
    if pid == 0:  # the child: stella on the terminal (never back into pytest)
        try:
            os.chdir(ROOT)
            os.execve(cmd[0], cmd, env)
        finally:
            os._exit(127)
    seen = b""

    def until(marker: bytes) -> None:
        nonlocal seen
        deadline = time.monotonic() + 60
        while marker not in seen and time.monotonic() < deadline:
            try:
                seen += os.read(fd, 4096)
            except OSError:
                break
        assert marker in seen, seen.decode(errors="replace")

    until(b"user name: ")
    os.write(fd, b"stella\n")
    until(b"password: ")
    os.write(fd, b"typed-s3cret\n")
    until(b"referrer ")
    try:
        while chunk := os.read(fd, 4096):  # to the end: EIO once stella exits
            seen += chunk
    except OSError:
        pass
    os.close(fd)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, seen.decode(errors="replace")
    assert b"typed-s3cret" not in seen  # the terminal never showed it
    kept = [p for p in home.rglob("*") if p.is_file() and p.stat().st_size < 1 << 20]
    assert not [p for p in kept if b"typed-s3cret" in p.read_bytes()]


def test_a_registry_without_chunked_uploads_gets_one_streamed_put(
    stella: Any, run: dict[str, Any], registry_factory: Callable[..., Registry]
) -> None:
    reg = registry_factory()
    size = run["bundle"].stat().st_size
    proxy = _FaultyProxy(reg.host, {("PATCH", n): "405" for n in range(1, 100)})  # PATCH is not allowed there
    try:
        res = stella(
            "distribute", run["id"], "--to", f"oci://{proxy.host}", "--plain-http", "--chunk-size", size // 4, "--json"
        )
        assert res.code == 0, res.err
        assert [m for m, _, f in proxy.log if f == "405"] == ["PATCH"]  # tried once, then the monolithic PUT
        assert reg.blob_file(sha(run["bundle"])).read_bytes() == run["bundle"].read_bytes()
    finally:
        proxy.close()
