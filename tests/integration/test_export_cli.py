"""`stella export` subcommands through the CLI, against a real store with the samples imported."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path
from typing import Any

import pytest

from core.archive.canonical import zstd_compressor
from tests.conftest import ROOT

SAMPLES = ROOT / "samples"


@pytest.fixture
def ready(stella: Any, tmp_path: Path) -> dict[str, Any]:
    assert stella("import", "--quiet", *sorted(p for p in SAMPLES.iterdir() if p.is_dir())).code == 0
    assert stella("keys", "generate", "k").code == 0
    pub = tmp_path / "k.pub"
    assert stella("keys", "export-public", "k", "--out", pub).code == 0
    return {"pub": pub}


def test_profile_list_create_update_revisions(stella: Any, ready: dict[str, Any]) -> None:
    listed = stella("export", "profile", "list", "--json").json()
    assert {p["id"] for p in listed["profiles"]} >= {"json:raw", "json:policy"}  # type: ignore[index]
    assert stella("export", "profile", "create", "lean", "--base", "json:raw", "--set", "compression_level=3").code == 0
    same = stella("export", "profile", "update", "lean", "--set", "compression_level=3", "--json").json()
    assert same["changed"] is False and same["revision"] == 1  # type: ignore[index]
    new = stella("export", "profile", "update", "lean", "--set", "record_types=advisory", "--json").json()
    assert new["changed"] is True and new["revision"] == 2  # type: ignore[index]
    old = stella("export", "profile", "show", "lean@1", "--json").json()
    assert old["config"]["recordTypes"] == ["advisory", "vex", "sbom"]  # type: ignore[index]
    assert stella("export", "profile", "update", "json:raw", "--set", "compression_level=1").code == 2
    assert stella("export", "profile", "create", "x", "--base", "json:raw", "--set", "compression_level=99").code == 3


def test_runs_show_download_and_cancel(stella: Any, ready: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "b.tar.zst"
    run = stella(
        "export", "run", "--profile", "json:raw", "--key", "k", "--out", out, "--selector", "ecosystem=Go", "--json"
    ).json()
    run_id = run["runId"]  # type: ignore[index]
    assert run["state"] == "succeeded"  # type: ignore[index]
    runs = stella("export", "runs", "--json").json()
    assert [r["runId"] for r in runs["runs"]] == [run_id]  # type: ignore[index]
    shown = stella("export", "show", run_id, "--json").json()
    assert [e["type"] for e in shown["events"]][:3] == ["planned", "started", "succeeded"]  # type: ignore[index]
    assert shown["distributions"][0]["target"] == str(out)  # type: ignore[index]
    copy = tmp_path / "media" / "copy.tar.zst"
    copy.parent.mkdir()
    copy.write_bytes(out.read_bytes()[:1000])  # an interrupted earlier copy
    assert stella("export", "download", run_id, "--to", copy).code == 0
    assert hashlib.sha256(copy.read_bytes()).digest() == hashlib.sha256(out.read_bytes()).digest()
    assert stella("verify", copy, "--key", ready["pub"]).code == 0
    assert stella("export", "cancel", run_id).code == 2  # a finished run cannot be cancelled
    assert stella("export", "run", "--profile", "json:raw", "--key", "k", "--selector", "tenant=other").code == 7
    assert (
        stella("export", "run", "--profile", "json:raw", "--key", "k", "--selector", "modified_since=yesterday").code
        == 3
    )
    assert stella("export", "run", "--profile", "json:raw", "--key", "nokey").code == 3


def test_tar_bomb_is_refused_by_verify(stella: Any, ready: dict[str, Any], tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:") as tar:
        info = tarfile.TarInfo("export.json")
        zeros = b"\0" * (300 << 20)
        info.size = len(zeros)
        tar.addfile(info, io.BytesIO(zeros))
    bomb = tmp_path / "bomb.tar.zst"
    # Compressed with the writer's zstd settings, so the frame itself is canonical and the ratio limit is what stops it.
    cobj = zstd_compressor(1).compressobj()
    bomb.write_bytes(cobj.compress(buf.getvalue()) + cobj.flush())
    res = stella("verify", bomb, "--key", ready["pub"], "--json")
    assert res.code == 3, res.out
    assert "ratio" in res.out or "limit" in res.out
