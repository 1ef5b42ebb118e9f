"""The SDK's streaming download (sdk/python/stella_api_client/download.py) against a served instance: a download
interrupted at a random offset and resumed gives the bytes whose sha256 is ``X-Export-Digest``; a corrupted part
is caught; a stale part restarts."""

from __future__ import annotations

import hashlib
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT
from tests.contract.conftest import SIGNING_KEY, Served

sys.path.insert(0, str(ROOT / "sdk" / "python"))

from stella_api_client import AuthenticatedClient
from stella_api_client.download import DigestMismatch, DownloadError, download_bundle


def finished_run(served: Served) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {served.token}"}
    base = f"{served.base_url}/api/v1/export/runs"
    created = httpx.post(base, json={"profile": "json:raw", "options": {"key": SIGNING_KEY}}, headers=headers)
    assert created.status_code == 202, created.text
    run_id = created.json()["id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run: dict[str, Any] = httpx.get(f"{base}/{run_id}", headers=headers).json()
        if run["status"] in ("succeeded", "failed", "cancelled"):
            assert run["status"] == "succeeded", run
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not finish")


@pytest.fixture(scope="module")
def run(served: Served) -> dict[str, Any]:
    return finished_run(served)


@pytest.fixture
def client(served: Served) -> Iterator[AuthenticatedClient]:
    with AuthenticatedClient(base_url=served.base_url, token=served.token) as c:
        yield c


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_download_interrupted_at_a_random_offset_resumes_to_the_announced_digest(
    client: AuthenticatedClient, run: dict[str, Any], tmp_path: Path, served: Served
) -> None:
    head = httpx.get(
        f"{served.base_url}/api/v1/export/runs/{run['id']}/download",
        headers={"Authorization": f"Bearer {served.token}", "Range": "bytes=0-0"},
    )
    announced = head.headers["x-export-digest"].removeprefix("sha256:")
    size = int(head.headers["x-export-length"])
    assert announced == run["artifact"]["sha256"] and size == run["artifact"]["size"]
    offset = random.Random(18).randrange(1, size - 1)
    dest = tmp_path / "bundle.tar.zst"
    with pytest.raises(DownloadError, match=f"stopped after {offset} bytes"):
        download_bundle(client, run["id"], dest, max_bytes=offset)
    assert not dest.exists() and (tmp_path / "bundle.tar.zst.part").stat().st_size == offset
    result = download_bundle(client, run["id"], dest)
    assert result.resumed_from == offset and result.size == size
    assert _sha256(dest) == announced == result.sha256
    assert not (tmp_path / "bundle.tar.zst.part").exists() and not (tmp_path / "bundle.tar.zst.part.etag").exists()


def test_a_corrupted_part_is_caught_and_dropped(
    client: AuthenticatedClient, run: dict[str, Any], tmp_path: Path
) -> None:
    dest = tmp_path / "bundle.tar.zst"
    with pytest.raises(DownloadError):
        download_bundle(client, run["id"], dest, max_bytes=1000)
    part = tmp_path / "bundle.tar.zst.part"
    data = bytearray(part.read_bytes())
    data[500] ^= 0xFF
    part.write_bytes(bytes(data))
    with pytest.raises(DigestMismatch):
        download_bundle(client, run["id"], dest)
    assert not dest.exists() and not part.exists()
    assert download_bundle(client, run["id"], dest).resumed_from == 0  # the next call starts afresh
    assert _sha256(dest) == run["artifact"]["sha256"]


def test_a_part_of_another_bundle_restarts_from_zero(
    client: AuthenticatedClient, run: dict[str, Any], tmp_path: Path
) -> None:
    dest = tmp_path / "bundle.tar.zst"
    (tmp_path / "bundle.tar.zst.part").write_bytes(b"x" * 2000)
    (tmp_path / "bundle.tar.zst.part.etag").write_text('"' + "0" * 64 + '"')  # If-Range fails: the server sends 200
    result = download_bundle(client, run["id"], dest)
    assert result.resumed_from == 0 and _sha256(dest) == run["artifact"]["sha256"]


def test_another_tenant_cannot_download(served: Served, run: dict[str, Any], tmp_path: Path) -> None:
    with (
        AuthenticatedClient(base_url=served.base_url, token=served.other_token) as other,
        pytest.raises(DownloadError, match="answered 404"),
    ):
        download_bundle(other, run["id"], tmp_path / "b")
    assert not (tmp_path / "b").exists()
