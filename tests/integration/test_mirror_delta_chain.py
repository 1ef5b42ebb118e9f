"""Mirror deltas on chained state records, through the CLI: a delta pins and records only what changed, a delta after a
delta after a full bundle imports, the sender's resolved record lists what the receiver holds, a compacted record
gives the same delta, and a state record of the first format still serves as a base."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import zstandard

from adapters.profiles import mirror
from adapters.profiles.mirror import StateRecords
from core.canonical import canonical_json
from core.home import Home
from core.mirror_layout import MirrorState, live_documents, load_state
from tests.conftest import ROOT
from tests.integration.mirror_helpers import export_mirror, import_mirror

SAMPLES = ROOT / "samples"
GO_ADVISORY = SAMPLES / "advisories" / "GO-2020-0001.json"


@pytest.fixture
def sender(stella: Any, home: Path, tmp_path: Path) -> dict[str, Any]:
    assert stella("import", "--quiet", *sorted(p for p in SAMPLES.iterdir() if p.is_dir())).code == 0
    assert stella("keys", "generate", "signer").code == 0
    assert stella("tuf", "init", "--key", "signer").code == 0
    pub = tmp_path / "signer.pub"
    assert stella("keys", "export-public", "signer", "--out", pub).code == 0
    assert stella("trust", "add", "receiver", pub).code == 0
    return {"pub": pub, "root": home / "tuf" / "root" / "1.root.json", "mirror": tmp_path / "mirror", "home": home}


def _revise(stella: Any, tmp_path: Path, summary: str) -> None:
    doc = json.loads(GO_ADVISORY.read_text())
    doc["modified"] = f"2026-01-0{len(summary) % 9 + 1}T03:04:05Z"
    doc["summary"] = summary
    path = tmp_path / "revised" / summary.replace(" ", "-") / "GO-2020-0001.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(doc))
    assert stella("import", "--quiet", path).code == 0


def _state_digest(run: dict[str, Any], home: Path) -> str:
    digest = StateRecords(Home(home)).digest_of_run(run["parameters"]["runId"])
    assert digest is not None
    return digest


def _receiver_live(sender: dict[str, Any]) -> set[tuple[str, str, str]]:
    tree = sender["mirror"] / "current" / "tree"
    return {(d.sha256, d.kind, d.pack) for d in live_documents(tree, load_state(tree)).values()}


def _sender_live(home: Path, digest: str) -> set[tuple[str, str, str]]:
    table = StateRecords(Home(home)).live(digest).table()
    return set(zip(*(table[c].to_pylist() for c in ("sha256", "kind", "pack")), strict=True))


def _payload(bundle: Path, into: Path) -> dict[str, bytes]:
    into.mkdir()
    subprocess.run(["tar", "-C", str(into), "--zstd", "-xf", str(bundle)], check=True)
    return {
        str(p.relative_to(into)): p.read_bytes()
        for p in sorted(into.rglob("*"))
        if p.is_file() and str(p.relative_to(into)).startswith(("data/", "indexes/"))
    }


def test_delta_after_delta_after_full_records_a_chain_and_imports(
    stella: Any, sender: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = sender["home"]
    full, full_run = export_mirror(stella, tmp_path, "mirror:full")
    import_mirror(stella, sender, full, "--trust-root", sender["root"])
    state_size = full_run["parameters"]["inputs"]["count"]
    counts = load_state(sender["mirror"] / "current" / "tree").counts
    policy = counts.get("documents.policy", 0) + counts.get("documents.findings", 0)

    _revise(stella, tmp_path, "first revision")
    delta1, run1 = export_mirror(stella, tmp_path, "mirror:delta", "--base", full_run["runId"])
    # The run pins the new revision (and the policy documents its policy files are made of) and the old revision as
    # removed, not every live document.
    assert state_size > 1 + policy
    assert run1["parameters"]["inputs"]["count"] == 1 + policy and len(run1["parameters"]["options"]["removed"]) == 1
    assert import_mirror(stella, sender, delta1)["sequence"] == 1

    _revise(stella, tmp_path, "second revision")
    delta2, run2 = export_mirror(stella, tmp_path, "mirror:delta", "--base", run1["runId"])
    assert run2["parameters"]["inputs"]["count"] == 1 + policy
    assert import_mirror(stella, sender, delta2)["sequence"] == 2
    raw = stella("mirror", "query", sender["mirror"], "--id", "GO-2020-0001", "--raw")
    assert json.loads(raw.out)["summary"] == "second revision"

    records = StateRecords(Home(home))
    digest2 = _state_digest(run2, home)
    header = records.load(digest2)
    assert header.chain_base == _state_digest(run1, home) and header.depth == 2
    assert _sender_live(home, digest2) == _receiver_live(sender)
    assert len(_receiver_live(sender)) == state_size

    # The same delta on a compacted record (a full one) ships the same payload and state.
    monkeypatch.setattr(mirror, "MAX_CHAIN", 0)
    again, run2b = export_mirror(stella, tmp_path, "mirror:delta", "--base", run1["runId"])
    assert records.load(_state_digest(run2b, home)).chain_base is None
    assert _payload(again, tmp_path / "again") == _payload(delta2, tmp_path / "delta2")
    assert _sender_live(home, _state_digest(run2b, home)) == _sender_live(home, digest2)

    # A retry reproduces the chained delta byte for byte.
    retried = tmp_path / "retried.tar.zst"
    assert stella("export", "retry", run2["runId"], "--out", retried).code == 0
    assert retried.read_bytes() == delta2.read_bytes()


def test_a_first_format_record_serves_as_a_base(stella: Any, sender: dict[str, Any], tmp_path: Path) -> None:
    home = sender["home"]
    full, full_run = export_mirror(stella, tmp_path, "mirror:full")
    import_mirror(stella, sender, full, "--trust-root", sender["root"])
    # Rewrite the full bundle's record as the first format wrote it: the state, then every live document.
    digest = _state_digest(full_run, home)
    states = home / "mirror" / "states"
    tree = sender["mirror"] / "current" / "tree"
    state = load_state(tree)
    docs = live_documents(tree, state)
    lines = [canonical_json({"state": state.to_dict()})] + [canonical_json(docs[s].to_dict()) for s in sorted(docs)]
    (states / f"{digest}.jsonl.zst").write_bytes(zstandard.ZstdCompressor(level=3).compress(b"\n".join(lines) + b"\n"))
    (states / f"{digest}.arrow").unlink()

    _revise(stella, tmp_path, "after the upgrade")
    delta, run = export_mirror(stella, tmp_path, "mirror:delta", "--base", tree / "manifests" / "state.json")
    assert import_mirror(stella, sender, delta)["sequence"] == 1
    assert _sender_live(home, _state_digest(run, home)) == _receiver_live(sender)
    current = MirrorState.from_bytes((sender["mirror"] / "current" / "tree" / "manifests" / "state.json").read_bytes())
    assert current.base == digest and current.counts["removed"] == 1 and current.counts["added"] == 1
