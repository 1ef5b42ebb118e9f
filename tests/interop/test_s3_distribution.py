"""`stella distribute RUN --to s3://...` against moto's S3 server on 127.0.0.1, checked with boto3 directly.

What moto enforces and these tests rely on: ``If-None-Match: *`` (412 on an existing key), Object Lock on a delete
of a locked version (403; GOVERNANCE yields to the bypass header, COMPLIANCE and a legal hold do not), and a bucket
without Object Lock refusing lock headers. What it does not, and the product therefore checks itself: moto keeps a
checksum the client claims without hashing the body, and drops the lock headers of a multipart upload; stella reads
every object back with a GET and hashes it, and sets a dropped lock on the version (both exercised below).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core.contract.timeline import EXPORT_DISTRIBUTED
from core.errors import ExitCode
from core.home import Home
from core.store import Store
from tests.conftest import ROOT

pytestmark = pytest.mark.interop

SAMPLES = ROOT / "samples"
MIB = 1024 * 1024


def _require_moto() -> None:
    try:
        import boto3  # noqa: F401
        import moto.server  # noqa: F401
    except ImportError:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("moto[server] and boto3 are missing in CI; install the test extra")
        pytest.skip("moto[server] not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m moto.server`` on a free loopback port, for this module."""
    _require_moto()
    port = _free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Credentials from the usual variables; no user config or credentials file is read."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "stella-test-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "stella-test-secret-do-not-print")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)


@pytest.fixture
def s3(moto_endpoint: str, aws_env: None) -> Any:
    """An independent boto3 client of the same server, to check what stella stored."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="stella-test-key",
        aws_secret_access_key="stella-test-secret-do-not-print",
        config=Config(s3={"addressing_style": "path"}),
    )


def _bucket(s3: Any, name: str, *, lock: bool = False) -> str:
    bucket = f"{name}-{os.urandom(4).hex()}"
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=lock)
    return bucket


def _run(stella: Any, tmp_path: Path, tenant: str, source: Path = SAMPLES / "advisories") -> tuple[str, Path]:
    """A succeeded json:raw run of ``tenant``: its id and its bundle."""
    assert stella("import", "--quiet", "--tenant", tenant, source).code == 0
    if not (tmp_path / "home" / "keys" / "k.key").exists():
        assert stella("keys", "generate", "k").code == 0
    out = tmp_path / f"{tenant}.tar.zst"
    run = stella("export", "run", "--tenant", tenant, "--profile", "json:raw", "--key", "k", "--out", out, "--json")
    assert run.code == 0, run.err
    return str(run.json()["runId"]), out


def _distribute(stella: Any, endpoint: str, run_id: str, to: str, *extra: str) -> Any:
    return stella("distribute", run_id, "--to", to, "--endpoint-url", endpoint, "--path-style", *extra)


def _b64sha(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _s3_rows(home: Path, run_id: str) -> list[tuple[Any, ...]]:
    with Store.open(Home(home), read_only=True) as store:
        return store.conn.execute(
            "SELECT distribution_id, target, sha256, size, expires_at FROM export_distributions"
            " WHERE run_id = ? AND type = 's3' ORDER BY created_at",
            [run_id],
        ).fetchall()


def _in_a_day() -> str:
    return (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_put_reads_back_under_tenant_prefixes_and_records_once(
    stella: Any, home: Path, tmp_path: Path, s3: Any, moto_endpoint: str
) -> None:
    bucket = _bucket(s3, "plain")
    acme, acme_bundle = _run(stella, tmp_path, "acme")
    globex, globex_bundle = _run(stella, tmp_path, "globex")
    res = _distribute(stella, moto_endpoint, acme, f"s3://{bucket}/exports/", "--json")
    assert res.code == 0, res.err
    out = res.json()
    key = f"exports/acme/{acme}/{acme_bundle.name}"
    assert out["url"] == f"s3://{bucket}/{key}" and out["alreadyPresent"] is False and out["readBack"] == "get-sha256"
    assert _distribute(stella, moto_endpoint, globex, f"s3://{bucket}/exports").code == 0
    listed = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    globex_key = f"exports/globex/{globex}/{globex_bundle.name}"
    # Each bundle has its in-toto attestation (with the copy's own line) beside it.
    assert listed == sorted([key, f"{key}.intoto.jsonl", globex_key, f"{globex_key}.intoto.jsonl"])
    # What is stored, read with boto3 alone: the bundle's bytes and their SHA-256 checksum.
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert body == acme_bundle.read_bytes()
    head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == _b64sha(body) == out["checksumSha256"]
    assert out["sha256"] == hashlib.sha256(body).hexdigest() and out["size"] == len(body)
    # One export_distributions row and one export.distributed event, which a second distribution does not repeat.
    again = _distribute(stella, moto_endpoint, acme, f"s3://{bucket}/exports", "--json")
    assert again.code == 0, again.err
    assert again.json()["alreadyPresent"] is True
    assert again.json()["distribution"]["distributionId"] == out["distribution"]["distributionId"]
    [(_, target, sha, size, expires)] = _s3_rows(home, acme)
    assert (target, sha, size, expires) == (out["url"], out["sha256"], len(body), None)
    events = stella("timeline", "list", "--tenant", "acme", "--run", acme, "--type", "export.distributed", "--json")
    listed_events = events.json()["events"]
    targets = [e["data"]["distribution"]["target"] for e in listed_events]
    assert targets.count(out["url"]) == 1, targets
    assert all(e["type"] == EXPORT_DISTRIBUTED for e in listed_events)
    assert "already present" in _distribute(stella, moto_endpoint, acme, f"s3://{bucket}/exports").out
    # The secret never shows, in text or JSON.
    assert "do-not-print" not in res.out + res.err + again.out + again.err


def test_an_existing_different_object_is_refused_and_left_alone(
    stella: Any, tmp_path: Path, s3: Any, moto_endpoint: str
) -> None:
    bucket = _bucket(s3, "taken")
    run_id, bundle = _run(stella, tmp_path, "acme")
    key = f"acme/{run_id}/{bundle.name}"
    s3.put_object(Bucket=bucket, Key=key, Body=b"someone else's bytes")
    res = _distribute(stella, moto_endpoint, run_id, f"s3://{bucket}")
    assert res.code == ExitCode.POLICY, res.err
    assert "already holds a different object" in res.err and "nothing was overwritten" in res.err
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"someone else's bytes"
    assert stella("export", "show", run_id, "--json").json()["distributions"][-1]["type"] != "s3"


def test_object_lock_retention_and_legal_hold_on_a_locked_bucket(
    stella: Any, home: Path, tmp_path: Path, s3: Any, moto_endpoint: str
) -> None:
    import botocore.exceptions

    bucket = _bucket(s3, "locked", lock=True)
    run_id, bundle = _run(stella, tmp_path, "acme")
    until = _in_a_day()
    res = _distribute(
        stella, moto_endpoint, run_id, f"s3://{bucket}/x", "--object-lock", "compliance", "--retain-until", until,
        "--legal-hold", "--json",
    )  # fmt: skip
    assert res.code == 0, res.err
    out = res.json()
    assert out["objectLock"] == {"mode": "compliance", "retainUntil": until, "legalHold": True}
    key = f"x/acme/{run_id}/{bundle.name}"
    head = s3.head_object(Bucket=bucket, Key=key, VersionId=out["versionId"])
    assert head["ObjectLockMode"] == "COMPLIANCE" and head["ObjectLockLegalHoldStatus"] == "ON"
    assert head["ObjectLockRetainUntilDate"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") == until
    [(_, _, _, _, expires)] = _s3_rows(home, run_id)
    assert expires == datetime.strptime(until, "%Y-%m-%dT%H:%M:%SZ")  # expires_at is the retention's end
    # The store refuses to delete the locked version (moto enforces COMPLIANCE and the legal hold).
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        s3.delete_object(Bucket=bucket, Key=key, VersionId=out["versionId"])
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == bundle.read_bytes()

    # GOVERNANCE, no legal hold: a delete without the bypass header is refused, with it the store allows it.
    other, other_bundle = _run(stella, tmp_path, "globex")
    gov = _distribute(
        stella, moto_endpoint, other, f"s3://{bucket}/x", "--object-lock", "governance", "--retain-until", until,
        "--json",
    )  # fmt: skip
    assert gov.code == 0, gov.err
    assert gov.json()["objectLock"] == {"mode": "governance", "retainUntil": until, "legalHold": False}
    gov_key, version = f"x/globex/{other}/{other_bundle.name}", gov.json()["versionId"]
    # Distributed again with a legal hold: the same bytes are present, the hold is added to that version.
    held = _distribute(stella, moto_endpoint, other, f"s3://{bucket}/x", "--legal-hold", "--json")
    assert held.code == 0, held.err
    assert held.json()["alreadyPresent"] is True and held.json()["objectLock"]["legalHold"] is True
    assert s3.head_object(Bucket=bucket, Key=gov_key, VersionId=version)["ObjectLockLegalHoldStatus"] == "ON"
    s3.put_object_legal_hold(Bucket=bucket, Key=gov_key, VersionId=version, LegalHold={"Status": "OFF"})
    with pytest.raises(botocore.exceptions.ClientError):
        s3.delete_object(Bucket=bucket, Key=gov_key, VersionId=version)
    s3.delete_object(Bucket=bucket, Key=gov_key, VersionId=version, BypassGovernanceRetention=True)


def test_a_bucket_without_object_lock_refuses_lock_options_before_writing(
    stella: Any, tmp_path: Path, s3: Any, moto_endpoint: str
) -> None:
    bucket = _bucket(s3, "nolock")
    run_id, _ = _run(stella, tmp_path, "acme")
    for extra in (["--object-lock", "governance", "--retain-until", _in_a_day()], ["--legal-hold"]):
        res = _distribute(stella, moto_endpoint, run_id, f"s3://{bucket}", *extra)
        assert res.code == ExitCode.BAD_INPUT, res.err
        assert f"bucket {bucket} does not have Object Lock enabled" in res.err and "nothing was uploaded" in res.err
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_multipart_upload_streams_parts_and_sets_the_lock_moto_drops(
    stella: Any, home: Path, tmp_path: Path, s3: Any, moto_endpoint: str
) -> None:
    """A bundle larger than --chunk-size goes up in parts; moto drops the lock headers of a multipart upload, and
    stella sets them on the version, then reads it back."""
    big = tmp_path / "big"
    big.mkdir()
    doc = json.loads((SAMPLES / "advisories" / "GO-2020-0001.json").read_text())
    doc["id"] = "GO-2099-0001"
    doc["details"] = base64.b64encode(os.urandom(12 * MIB)).decode()  # base64 of random bytes: zstd keeps ~75 %
    (big / "GO-2099-0001.json").write_text(json.dumps(doc))
    run_id, bundle = _run(stella, tmp_path, "acme", big)
    assert bundle.stat().st_size > 2 * 5 * MIB  # three parts of 5 MiB at least
    bucket = _bucket(s3, "parts", lock=True)
    until = _in_a_day()
    res = _distribute(
        stella, moto_endpoint, run_id, f"s3://{bucket}", "--chunk-size", str(5 * MIB), "--object-lock", "governance",
        "--retain-until", until, "--json",
    )  # fmt: skip
    assert res.code == 0, res.err
    out = res.json()
    data = bundle.read_bytes()
    parts = -(-len(data) // (5 * MIB))
    assert out["parts"] == parts >= 3
    digests = b"".join(hashlib.sha256(data[i : i + 5 * MIB]).digest() for i in range(0, len(data), 5 * MIB))
    composite = base64.b64encode(hashlib.sha256(digests).digest()).decode()
    key = f"acme/{run_id}/{bundle.name}"
    head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"].split("-")[0] == composite == out["checksumSha256"]
    assert head["ObjectLockMode"] == "GOVERNANCE"
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_memory_stays_at_a_part_whatever_the_bundle_size(tmp_path: Path, s3: Any, moto_endpoint: str) -> None:
    """The adapter reads one part at a time: Python's peak allocation while uploading 40 MiB in 5 MiB parts stays
    near two parts, far below the file."""
    from adapters.objstore.s3 import Endpoint, ObjectLock, S3Store

    bucket = _bucket(s3, "flat")
    blob = tmp_path / "blob"
    digest = hashlib.sha256()
    with blob.open("wb") as fh:
        for _ in range(40):
            chunk = os.urandom(MIB)
            digest.update(chunk)
            fh.write(chunk)
    store = S3Store(Endpoint(moto_endpoint, path_style=True))
    tracemalloc.start()
    try:
        stored = store.put_file(bucket, "k/blob", blob, sha256=digest.hexdigest(), lock=ObjectLock(), part_size=5 * MIB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stored is not None and stored.parts == 8
    assert peak < 16 * MIB, f"peak {peak / MIB:.1f} MiB for a 40 MiB upload"
    assert store.read_sha256(bucket, "k/blob") == (digest.hexdigest(), 40 * MIB)


def test_a_put_never_replaces_an_existing_key(tmp_path: Path, s3: Any, moto_endpoint: str) -> None:
    """The create-only write itself (``If-None-Match: *``), without the HEAD the service does first: single and
    multipart puts onto a taken key answer None, leave the object as it was and no multipart upload behind."""
    from adapters.objstore.s3 import Endpoint, ObjectLock, S3Store

    bucket = _bucket(s3, "race")
    s3.put_object(Bucket=bucket, Key="small", Body=b"first")
    s3.put_object(Bucket=bucket, Key="large", Body=b"first")
    small, large = tmp_path / "small", tmp_path / "large"
    small.write_bytes(b"second")
    large.write_bytes(os.urandom(11 * MIB))
    store = S3Store(Endpoint(moto_endpoint, path_style=True))
    for key, path in (("small", small), ("large", large)):
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        assert store.put_file(bucket, key, path, sha256=sha, lock=ObjectLock(), part_size=5 * MIB) is None
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"first"
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_a_cancelled_multipart_upload_leaves_nothing(tmp_path: Path, s3: Any, moto_endpoint: str) -> None:
    from adapters.objstore.s3 import Endpoint, ObjectLock, S3Store
    from core.errors import Cancelled
    from core.progress import CheckObserver

    bucket = _bucket(s3, "cancel")
    blob = tmp_path / "blob"
    blob.write_bytes(os.urandom(12 * MIB))

    class SecondPart:  # let the first part go, stop before the second
        asked = 0

        def is_cancelled(self) -> bool:
            self.asked += 1
            return self.asked > 1

    store = S3Store(Endpoint(moto_endpoint, path_style=True))
    sha = hashlib.sha256(blob.read_bytes()).hexdigest()
    with pytest.raises(Cancelled):
        store.put_file(
            bucket,
            "k",
            blob,
            sha256=sha,
            lock=ObjectLock(),
            part_size=5 * MIB,
            observer=CheckObserver(cancel=SecondPart()),
        )
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_a_changed_bundle_uploads_nothing(stella: Any, tmp_path: Path, s3: Any, moto_endpoint: str) -> None:
    bucket = _bucket(s3, "changed")
    run_id, bundle = _run(stella, tmp_path, "acme")
    data = bytearray(bundle.read_bytes())
    data[-1] ^= 1
    bundle.write_bytes(bytes(data))
    res = _distribute(stella, moto_endpoint, run_id, f"s3://{bucket}")
    assert res.code == ExitCode.INTEGRITY, res.err
    assert "changed since it was built" in res.err
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_credentials_file_by_path_and_refusals(
    stella: Any, tmp_path: Path, s3: Any, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = _bucket(s3, "creds")
    run_id, bundle = _run(stella, tmp_path, "acme")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    none = _distribute(stella, moto_endpoint, run_id, f"s3://{bucket}")
    assert none.code == ExitCode.ENVIRONMENT and "no S3 credentials" in none.err
    creds = tmp_path / "aws-credentials"
    creds.write_text("[default]\naws_access_key_id = filekey\naws_secret_access_key = file-secret-do-not-print\n")
    res = _distribute(stella, moto_endpoint, run_id, f"s3://{bucket}", "--credentials-file", creds)
    assert res.code == 0, res.err
    assert "do-not-print" not in res.out + res.err
    assert s3.get_object(Bucket=bucket, Key=f"acme/{run_id}/{bundle.name}")["Body"].read() == bundle.read_bytes()
    missing = _distribute(stella, moto_endpoint, run_id, f"s3://{bucket}", "--credentials-file", tmp_path / "nope")
    assert missing.code == ExitCode.BAD_INPUT and "nope" in missing.err
    absent = _distribute(stella, moto_endpoint, run_id, "s3://no-such-bucket-here", "--credentials-file", creds)
    assert absent.code == ExitCode.BAD_INPUT and "NoSuchBucket" in absent.err


@pytest.mark.parametrize(
    ("to", "extra", "message"),
    [
        ("s3://bucket/../x", [], "not a plain key segment"),
        ("s3://bucket/a//x", [], "not a plain key segment"),
        ("s3://B_ad", [], "not a valid bucket name"),
        ("s3://bucket", ["--object-lock", "governance"], "--object-lock needs --retain-until"),
        ("s3://bucket", ["--retain-until", "2099-01-01T00:00:00Z"], "--retain-until needs --object-lock"),
        ("s3://bucket", ["--object-lock", "compliance", "--retain-until", "2020-01-01T00:00:00Z"], "not in the future"),
    ],
)
def test_bad_targets_and_options_are_usage_errors(
    stella: Any, tmp_path: Path, aws_env: None, moto_endpoint: str, to: str, extra: list[str], message: str
) -> None:
    run_id, _ = _run(stella, tmp_path, "acme")
    res = _distribute(stella, moto_endpoint, run_id, to, *extra)
    assert res.code == ExitCode.USAGE and message in res.err, res.err


def test_plain_http_only_to_loopback(stella: Any, tmp_path: Path, aws_env: None) -> None:
    run_id, _ = _run(stella, tmp_path, "acme")
    res = stella("distribute", run_id, "--to", "s3://bucket", "--endpoint-url", "http://192.0.2.1:9000")
    assert res.code == ExitCode.USAGE and "plain HTTP" in res.err


def test_the_s3_modules_import_no_boto3() -> None:
    """boto3 is imported when a store is opened, not when the command's modules load."""
    code = "import sys, adapters.objstore.s3; print(sorted({'boto3', 'botocore'} & set(sys.modules)))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert run.stdout.strip() == "[]"


class _CuttingProxy:
    """A TCP relay to the S3 server that cuts every connection, and refuses new ones, once ``limit`` bytes have gone
    up: a network that fails in the middle of an upload."""

    def __init__(self, upstream: str, limit: int) -> None:
        host, port = upstream.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.limit = limit
        self.sent = 0
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            with self.lock:
                self.open += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, upward: bool) -> None:
        try:
            while data := src.recv(65536):
                if upward:
                    with self.lock:
                        self.sent += len(data)
                        cut = self.sent > self.limit
                    if cut:
                        self.cut()
                        return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        with suppress(OSError):
            self.listener.close()
        with self.lock:
            for s in self.open:
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


def test_a_multipart_upload_the_network_broke_resumes_from_the_parts_sent(
    stella: Any, tmp_path: Path, s3: Any, moto_endpoint: str
) -> None:
    """The connection to the store breaks after the first 5 MiB part: the command fails (exit 7) saying the parts
    stay; the same command run again sends only the parts the store does not hold, and the object is the bundle."""
    big = tmp_path / "big"
    big.mkdir()
    doc = json.loads((SAMPLES / "advisories" / "GO-2020-0001.json").read_text())
    doc["id"] = "GO-2099-0002"
    doc["details"] = base64.b64encode(os.urandom(16 * MIB)).decode()
    (big / "GO-2099-0002.json").write_text(json.dumps(doc))
    run_id, bundle = _run(stella, tmp_path, "acme", big)
    data = bundle.read_bytes()
    parts = -(-len(data) // (5 * MIB))
    assert parts >= 3
    bucket = _bucket(s3, "resume")
    proxy = _CuttingProxy(moto_endpoint, limit=7 * MIB)  # part 1 arrives whole, part 2 is cut
    broken = _distribute(stella, proxy.url, run_id, f"s3://{bucket}", "--chunk-size", str(5 * MIB))
    assert broken.code == ExitCode.ENVIRONMENT, broken.err
    assert "run the same command again to resume" in broken.err
    [upload] = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    held = s3.list_parts(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]).get("Parts", [])
    assert [p["PartNumber"] for p in held] == [1]
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)

    res = _distribute(stella, moto_endpoint, run_id, f"s3://{bucket}", "--chunk-size", str(5 * MIB), "--json")
    assert res.code == 0, res.err
    out = res.json()
    assert (out["parts"], out["resumedParts"]) == (parts, 1)
    assert s3.get_object(Bucket=bucket, Key=upload["Key"])["Body"].read() == data
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_a_resumed_upload_sends_again_a_part_that_differs(tmp_path: Path, s3: Any, moto_endpoint: str) -> None:
    """An unfinished upload whose part 1 holds other bytes (another file, or a hostile store's): that part is sent
    again, the matching part 2 is not, and the object is the file."""
    from adapters.objstore.s3 import Endpoint, ObjectLock, S3Store

    bucket = _bucket(s3, "differs")
    blob = tmp_path / "blob"
    blob.write_bytes(os.urandom(12 * MIB))
    data = blob.read_bytes()
    upload = s3.create_multipart_upload(Bucket=bucket, Key="k", ChecksumAlgorithm="SHA256")["UploadId"]
    for number, body in ((1, os.urandom(5 * MIB)), (2, data[5 * MIB : 10 * MIB])):
        s3.upload_part(
            Bucket=bucket, Key="k", UploadId=upload, PartNumber=number, Body=body, ChecksumAlgorithm="SHA256",
            ChecksumSHA256=_b64sha(body),
        )  # fmt: skip
    store = S3Store(Endpoint(moto_endpoint, path_style=True))
    stored = store.put_file(
        bucket, "k", blob, sha256=hashlib.sha256(data).hexdigest(), lock=ObjectLock(), part_size=5 * MIB
    )
    assert stored is not None and (stored.parts, stored.reused) == (3, 1)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == data
    assert store.read_sha256(bucket, "k") == (hashlib.sha256(data).hexdigest(), len(data))
