"""`stella verify` reads the bundle file once: the in-toto release check uses the sha256 the archive reader took
while it verified the archive, which is the digest of the file's bytes (the same as hashlib's over the file)."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from core.archive.reader import ReaderLimits, SafeArchiveReader
from services.trust import keys_from_files
from tests.conftest import ROOT
from verify.bundle import verify_bundle

SAMPLES = ROOT / "samples"

_WATCHED: list[tuple[str, list[str]]] = []  # (path, the modes it was opened with) while a test watches it


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _WATCHED and event == "open" and isinstance(args[0], str | bytes | os.PathLike):
        path, opened = _WATCHED[0]
        if os.fsdecode(os.fspath(args[0])) == path:
            opened.append(str(args[1]))


sys.addaudithook(_audit)  # inert unless a test below watches a path


@pytest.fixture
def built(stella: Any, tmp_path: Path) -> dict[str, Path]:
    """A signed json:raw bundle of the samples with its in-toto release attestation beside it."""
    assert stella("import", "--quiet", *sorted(p for p in SAMPLES.iterdir() if p.is_dir())).code == 0
    assert stella("keys", "generate", "k").code == 0
    pub = tmp_path / "k.pub"
    assert stella("keys", "export-public", "k", "--out", pub).code == 0
    out = tmp_path / "b.tar.zst"
    assert stella("export", "run", "--profile", "json:raw", "--key", "k", "--out", out).code == 0
    assert Path(f"{out}.intoto.jsonl").is_file()
    return {"bundle": out, "pub": pub}


def test_verify_opens_the_bundle_once_and_checks_the_attestation_with_that_pass(built: dict[str, Path]) -> None:
    opened: list[str] = []
    _WATCHED.append((str(built["bundle"]), opened))
    try:
        report = verify_bundle(built["bundle"], keys_from_files([built["pub"]]))
    finally:
        _WATCHED.clear()
    assert report.ok, report.error
    release = next(c for c in report.checks if c.name == "in-toto release")
    assert release.ok and "1 in-toto Release statement" in release.detail
    assert len(opened) == 1, opened  # one read of the file: no second pass for its digest


def test_the_readers_digest_of_a_real_bundle_is_the_files_sha256(built: dict[str, Path]) -> None:
    with SafeArchiveReader(built["bundle"], ReaderLimits()) as reader:
        for member in reader:
            with member.stream() as src:
                while src.read(1 << 16):
                    pass
        assert reader.file_sha256 == hashlib.sha256(built["bundle"].read_bytes()).hexdigest()
