"""`stella verify` compares checksums.txt with the signed manifest during its one walk over the file list
(verify.bundle.ChecksumsMatch): the verdict equals the line-by-line comparison it replaced, on a real bundle's
manifest and checksums.txt, intact and changed in each way, and a changed line re-signed by the key holder still
fails the checksums check with its message and exit 4."""

from __future__ import annotations

import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from core.contract.bundle import MANIFEST, bundle_order
from core.home import Home
from core.keys import KeyStore
from core.signing import Signer, cosign_blob_signature
from tests.conftest import ROOT
from tests.integration.bundle_helpers import read_members, write_members
from verify.bundle import ChecksumsMatch
from verify.manifest import ManifestReader

SAMPLES = ROOT / "samples"


@pytest.fixture
def built(stella: Any, home: Path, tmp_path: Path) -> dict[str, Any]:
    assert stella("import", "--quiet", *sorted(p for p in SAMPLES.iterdir() if p.is_dir())).code == 0
    assert stella("keys", "generate", "signer").code == 0
    pub = tmp_path / "signer.pub"
    assert stella("keys", "export-public", "signer", "--out", pub).code == 0
    out = tmp_path / "b.tar.zst"
    assert stella("export", "run", "--profile", "json:raw", "--key", "signer", "--out", out).code == 0
    members = read_members(out)
    data = {info.name: body for info, body in members}
    (tmp_path / "export.json").write_bytes(data["export.json"])
    return {
        "bundle": out,
        "pub": pub,
        "members": members,
        "manifest": tmp_path / "export.json",
        "checksums": data["checksums.txt"],
        "signer": Signer.from_keystore(KeyStore(Home(home)), "signer"),
    }


def _reference(checksums: Path, manifest: ManifestReader, manifest_sha: str) -> tuple[int | None, bool]:
    """The comparison verify made before (a walk of its own): the first differing line, and extra lines."""

    def expected_lines() -> Iterator[bytes]:
        manifest_line = f"{manifest_sha}  {MANIFEST}\n".encode()
        for entry in manifest.files():
            if manifest_line and bundle_order(entry.path) > bundle_order(MANIFEST):
                yield manifest_line
                manifest_line = b""
            yield f"{entry.sha256}  {entry.path}\n".encode()
        if manifest_line:
            yield manifest_line

    with checksums.open("rb") as fh:
        for n, want in enumerate(expected_lines(), start=1):
            if fh.readline() != want:
                return n, False
        return None, bool(fh.read(1))


def _mutations(text: bytes) -> dict[str, bytes]:
    lines = text.splitlines(keepends=True)
    changed = lines[2][:10] + (b"0" if lines[2][10:11] != b"0" else b"1") + lines[2][11:]
    return {
        "intact": text,
        "a line changed": b"".join([*lines[:2], changed, *lines[3:]]),
        "the last line missing": b"".join(lines[:-1]),
        "a line appended": text + b"0" * 64 + b"  data/evil.json\n",
        "two lines swapped": b"".join([lines[1], lines[0], *lines[2:]]),
        "no newline at the end": text.rstrip(b"\n"),
        "empty": b"",
    }


def test_the_one_walk_gives_the_verdict_of_the_separate_comparison(built: dict[str, Any], tmp_path: Path) -> None:
    import hashlib

    manifest = ManifestReader(built["manifest"])
    manifest_sha = hashlib.sha256(built["manifest"].read_bytes()).hexdigest()
    verdicts = {}
    for name, text in _mutations(built["checksums"]).items():
        path = tmp_path / "checksums.txt"
        path.write_bytes(text)
        match = ChecksumsMatch(path, manifest_sha)
        walked = [entry.path for entry in match.track(manifest.files())]
        assert walked == [entry.path for entry in manifest.files()]  # the file list passes through unchanged
        assert match.done
        verdicts[name] = (match.differs, match.extra)
        assert verdicts[name] == _reference(path, manifest, manifest_sha), name
    assert verdicts["intact"] == (None, False)
    assert verdicts["a line changed"] == (3, False)
    assert verdicts["a line appended"] == (None, True)
    assert verdicts["empty"] == (1, False)


def _resigned(built: dict[str, Any], tmp_path: Path, edit: Callable[[bytes], bytes]) -> Path:
    """The bundle with checksums.txt edited and re-signed by the key holder (its signature verifies)."""
    text = edit(built["checksums"])
    sig = cosign_blob_signature(built["signer"], text)
    members: list[tuple[tarfile.TarInfo, bytes]] = []
    for info, body in built["members"]:
        if info.name in ("checksums.txt", "checksums.txt.sig"):
            body = text if info.name == "checksums.txt" else sig
            info.size = len(body)
        members.append((info, body))
    return write_members(tmp_path / "resigned.tar.zst", members)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace(t[:1], b"0" if t[:1] != b"0" else b"1", 1), "line 1 differs from the signed manifest"),
        (lambda t: t + b"0" * 64 + b"  data/evil.json\n", "has lines the signed manifest does not"),
    ],
    ids=["changed", "appended"],
)
def test_a_resigned_checksums_txt_that_disagrees_fails_the_checksums_check(
    stella: Any, built: dict[str, Any], tmp_path: Path, edit: Callable[[bytes], bytes], message: str
) -> None:
    bad = _resigned(built, tmp_path, edit)
    res = stella("verify", bad, "--key", built["pub"], "--json")
    assert res.code == 4, res.out
    report = res.json()
    failed = [c for c in report["checks"] if not c["ok"]]
    assert [c["check"] for c in failed] == ["checksums"]
    assert message in failed[0]["detail"]
    assert [c["check"] for c in report["checks"] if c["ok"]][-1] == "files"  # files passed first, as before
