"""An imported mirror as npm tuf-js 3.1.0 sees it, served over HTTP, from 127.0.0.1.

The receiver's served tree (``MIRROR/current/tree``) is a TUF repository: tuf-js, pinned to the sender's
first root, must fetch and verify every target, follow root rotations shipped in later bundles, and refuse a
tampered target or tampered metadata. Tampering happens in a copy of the tree, never in the mirror itself.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from core.contract.mirror import STATE
from core.mirror_layout import MirrorState
from tests.conftest import ROOT, require_tool
from tests.integration.mirror_helpers import export_mirror, import_mirror
from tests.integration.test_mirror import _new_revision

pytestmark = pytest.mark.interop

NODE_DIR = ROOT / "tests" / "interop" / "node"
SAMPLES = ROOT / "samples"


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


@contextmanager
def _serve(tree: Path) -> Iterator[str]:
    """Serve ``tree`` on 127.0.0.1 (an ephemeral port) for the duration; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(tree)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _tuf_js_client() -> list[str]:
    node = require_tool("node")
    if not (NODE_DIR / "node_modules" / "tuf-js").is_dir():
        message = f"tuf-js is not installed in {NODE_DIR}: run `npm ci --prefix tests/interop/node`"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return [node, str(NODE_DIR / "tuf-fetch.mjs")]


def _fetch(root: Path, tree: Path, work: Path, targets: list[str]) -> subprocess.CompletedProcess[str]:
    """tuf-js, trusting ``root``, refreshes from ``tree`` served over HTTP and downloads ``targets``."""
    client = _tuf_js_client()
    with _serve(tree) as url:
        return subprocess.run(
            [*client, str(root), url, str(work), *targets], capture_output=True, text=True, check=False, timeout=120
        )


@pytest.fixture
def sender(stella: Any, home: Path, tmp_path: Path) -> dict[str, Any]:
    assert stella("import", "--quiet", *sorted(p for p in SAMPLES.iterdir() if p.is_dir())).code == 0
    assert stella("keys", "generate", "signer").code == 0
    assert stella("tuf", "init", "--key", "signer").code == 0
    pub = tmp_path / "signer.pub"
    assert stella("keys", "export-public", "signer", "--out", pub).code == 0
    assert stella("trust", "add", "receiver", pub).code == 0  # receipts are signed by the same key here
    pinned = tmp_path / "pinned-1.root.json"  # what the receiver was handed out of band
    shutil.copyfile(home / "tuf" / "root" / "1.root.json", pinned)
    return {"pub": pub, "root": pinned, "mirror": tmp_path / "mirror"}


def _full_mirror(stella: Any, sender: dict[str, Any], tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    bundle, run = export_mirror(stella, tmp_path, "mirror:full")
    import_mirror(stella, sender, bundle, "--trust-root", sender["root"])
    return sender["mirror"] / "current" / "tree", run


def _targets_on_disk(tree: Path) -> dict[str, bytes]:
    """Every served file that is not TUF metadata: what the targets metadata must list, path for path."""
    return {
        p.relative_to(tree).as_posix(): p.read_bytes()
        for p in sorted(tree.rglob("*"))
        if p.is_file() and not p.relative_to(tree).as_posix().startswith("tuf/")
    }


def _assert_fetched_exactly(
    result: subprocess.CompletedProcess[str], files: dict[str, bytes], *, known: bool = True
) -> dict[str, Any]:
    """tuf-js fetched ``files`` (path to bytes) and nothing else; ``known``: they are all the targets it knows."""
    assert result.returncode == 0, result.stderr
    body: dict[str, Any] = json.loads(result.stdout)
    if known:  # the targets metadata lists the served payload, nothing more or less
        assert body["known"] == sorted(files)
    assert [t["path"] for t in body["targets"]] == sorted(files)
    for got in body["targets"]:
        want = files[got["path"]]
        assert got["length"] == len(want)
        assert got["sha256"] == hashlib.sha256(want).hexdigest()
        assert Path(got["file"]).read_bytes() == want
    return body


def _tamper_copy(tree: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "tampered-tree"
    shutil.copytree(tree, copy)  # copies contents: the mirror's own (possibly hard-linked) files stay intact
    return copy


def _flip(path: Path, at: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2 if at is None else at] ^= 0x01
    path.write_bytes(bytes(data))


def test_tuf_js_fetches_and_verifies_every_target_of_a_mirror(
    stella: Any, sender: dict[str, Any], tmp_path: Path
) -> None:
    tree, _ = _full_mirror(stella, sender, tmp_path)
    files = _targets_on_disk(tree)
    state = MirrorState.from_bytes(files[STATE])
    assert sorted(files) == sorted([f.path for f in state.files] + [STATE])
    assert any(p.startswith("data/raw/") and p.endswith(".pack") for p in files)
    body = _assert_fetched_exactly(_fetch(sender["root"], tree, tmp_path / "client", sorted(files)), files)
    assert body["rootVersion"] == 1


def test_tuf_js_follows_root_and_targets_rotation_from_the_old_pinned_root(
    stella: Any, sender: dict[str, Any], tmp_path: Path
) -> None:
    tree, full_run = _full_mirror(stella, sender, tmp_path)
    first = _fetch(sender["root"], tree, tmp_path / "before", [STATE])
    assert first.returncode == 0, first.stderr
    assert stella("keys", "generate", "newkey").code == 0
    assert stella("tuf", "rotate", "root", "--key", "newkey").code == 0
    assert stella("tuf", "rotate", "targets", "--key", "newkey").code == 0
    assert stella("import", "--quiet", _new_revision(tmp_path, "after rotation")).code == 0
    delta, _ = export_mirror(stella, tmp_path, "mirror:delta", "--base", full_run["runId"])
    assert import_mirror(stella, sender, delta, "--receipt-key", "signer")["tuf"]["rootVersion"] == 3

    files = _targets_on_disk(tree)
    body = _assert_fetched_exactly(_fetch(sender["root"], tree, tmp_path / "after", sorted(files)), files)
    assert body["rootVersion"] == 3
    # tuf-js persisted the newest root it verified through the chain: the one the mirror serves.
    trusted = (tmp_path / "after" / "metadata" / "root.json").read_bytes()
    assert trusted == (tree / "tuf" / "metadata" / "3.root.json").read_bytes()
    old_root = json.loads(sender["root"].read_text())["signed"]["roles"]
    new_root = json.loads(trusted)["signed"]["roles"]
    assert new_root["root"]["keyids"] != old_root["root"]["keyids"]
    assert new_root["targets"]["keyids"] != old_root["targets"]["keyids"]

    # Without the rotation chain, the old root's targets key did not sign these targets: tuf-js refuses.
    hidden = _tamper_copy(tree, tmp_path)
    for version in (2, 3):
        (hidden / "tuf" / "metadata" / f"{version}.root.json").unlink()
    refused = _fetch(sender["root"], hidden, tmp_path / "no-chain", [STATE])
    assert refused.returncode == 1
    assert "targets was signed by 0/1 keys" in refused.stderr, refused.stderr


@pytest.mark.parametrize("damage", ["flip", "append"])
def test_tuf_js_rejects_a_tampered_target(stella: Any, sender: dict[str, Any], tmp_path: Path, damage: str) -> None:
    tree, _ = _full_mirror(stella, sender, tmp_path)
    copy = _tamper_copy(tree, tmp_path)
    pack = next(p for p in sorted(_targets_on_disk(copy)) if p.endswith(".pack"))
    if damage == "flip":
        _flip(copy / pack)
    else:
        with (copy / pack).open("ab") as fh:
            fh.write(b"\0")
    result = _fetch(sender["root"], copy, tmp_path / "client", [pack])
    assert result.returncode == 1, result.stdout
    if damage == "flip":
        assert "LengthOrHashMismatchError" in result.stderr and "Expected hash" in result.stderr, result.stderr
    else:  # one byte more than the signed length: the download stops at the length tuf-js trusts
        assert "DownloadLengthMismatchError" in result.stderr, result.stderr
    assert result.stdout == ""
    assert not list((tmp_path / "client" / "targets").iterdir())
    # The untouched tree still verifies, with tuf-js and with stella.
    untouched = _fetch(sender["root"], tree, tmp_path / "clean", [pack])
    _assert_fetched_exactly(untouched, {pack: (tree / pack).read_bytes()}, known=False)
    assert stella("mirror", "verify", sender["mirror"]).code == 0


def test_tuf_js_rejects_tampered_targets_metadata(stella: Any, sender: dict[str, Any], tmp_path: Path) -> None:
    tree, _ = _full_mirror(stella, sender, tmp_path)
    copy = _tamper_copy(tree, tmp_path)
    pack = next(p for p in sorted(_targets_on_disk(copy)) if p.endswith(".pack"))
    _flip(copy / pack)
    # The attacker rewrites the targets metadata to name the swapped pack's digest, keeping the old signatures.
    (targets_file,) = (copy / "tuf" / "metadata").glob("*.targets.json")
    md = json.loads(targets_file.read_bytes())
    entry = md["signed"]["targets"][pack]
    entry["hashes"]["sha256"] = hashlib.sha256((copy / pack).read_bytes()).hexdigest()
    targets_file.write_text(json.dumps(md, separators=(",", ":"), sort_keys=True))
    result = _fetch(sender["root"], copy, tmp_path / "client", [pack])
    assert result.returncode == 1, result.stdout
    # snapshot names targets by version only, so it is the targets key's signature that no longer verifies
    assert "targets was signed by 0/1 keys" in result.stderr, result.stderr
    assert not list((tmp_path / "client" / "targets").iterdir())


def test_tuf_js_rejects_a_tampered_timestamp(stella: Any, sender: dict[str, Any], tmp_path: Path) -> None:
    tree, _ = _full_mirror(stella, sender, tmp_path)
    copy = _tamper_copy(tree, tmp_path)
    timestamp = copy / "tuf" / "metadata" / "timestamp.json"
    md = json.loads(timestamp.read_bytes())
    md["signed"]["version"] += 1  # a "newer" timestamp nobody signed
    timestamp.write_text(json.dumps(md))
    result = _fetch(sender["root"], copy, tmp_path / "client", [STATE])
    assert result.returncode == 1, result.stdout
    assert "UnsignedMetadataError" in result.stderr and "timestamp" in result.stderr, result.stderr
