"""Mirror bundles end to end through the CLI: full and delta exports, verified import, rollback, refusals.

The sender and the receiver share one home here (the receiver signs receipts with its own key, which the
sender trusts); the mirror directory is separate, as it would be on the far side of the air gap.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from core.archive.reader import ReaderLimits, SafeArchiveReader
from core.contract.mirror import STATE
from core.mirror_layout import MirrorState
from services.mirror_dir import FAULT_POINTS
from tests.conftest import ROOT

SAMPLES = ROOT / "samples"
GO_ADVISORY = SAMPLES / "advisories" / "GO-2020-0001.json"


@pytest.fixture
def sender(stella: Any, home: Path, tmp_path: Path) -> dict[str, Any]:
    assert stella("import", "--quiet", *sorted(p for p in SAMPLES.iterdir() if p.is_dir())).code == 0
    assert stella("keys", "generate", "signer").code == 0
    assert stella("tuf", "init", "--key", "signer").code == 0
    pub = tmp_path / "signer.pub"
    assert stella("keys", "export-public", "signer", "--out", pub).code == 0
    assert stella("trust", "add", "receiver", pub).code == 0  # the receipt signer (same key here)
    return {"pub": pub, "root": home / "tuf" / "root" / "1.root.json", "mirror": tmp_path / "mirror"}


def _export(stella: Any, tmp_path: Path, profile: str, *extra: str | Path) -> tuple[Path, dict[str, Any]]:
    out = tmp_path / f"{profile.replace(':', '-')}-{len(list(tmp_path.glob('*.tar.zst')))}.tar.zst"
    result = stella("export", "run", "--profile", profile, "--key", "signer", "--out", out, *extra, "--json")
    assert result.code == 0, result.err
    return out, result.json()


def _import(stella: Any, sender: dict[str, Any], bundle: Path, *extra: str | Path) -> Any:
    return stella("mirror", "import", bundle, "--into", sender["mirror"], "--key", sender["pub"], *extra, "--json")


def _status(stella: Any, sender: dict[str, Any]) -> dict[str, Any]:
    result = stella("mirror", "status", sender["mirror"], "--json")
    assert result.code == 0, result.err
    body: dict[str, Any] = result.json()
    return body


def _new_revision(tmp_path: Path, summary: str) -> Path:
    doc = json.loads(GO_ADVISORY.read_text())
    doc["modified"] = "2026-01-02T03:04:05Z"
    doc["summary"] = summary
    path = tmp_path / "revised" / "GO-2020-0001.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def _provenance(bundle: Path) -> dict[str, Any]:
    with SafeArchiveReader(bundle, ReaderLimits()) as reader:
        for member in reader:
            if member.name == "provenance.json":
                with member.stream() as src:
                    doc: dict[str, Any] = json.loads(src.read())
                    return doc
    raise AssertionError("no provenance.json")


def _tree(sender: dict[str, Any]) -> Path:
    mirror: Path = sender["mirror"]
    return mirror / "current" / "tree"


def test_full_import_builds_a_queryable_verified_mirror(stella: Any, sender: dict[str, Any], tmp_path: Path) -> None:
    bundle, run = _export(stella, tmp_path, "mirror:full")
    result = _import(stella, sender, bundle, "--trust-root", sender["root"])
    assert result.code == 0, result.err
    body = result.json()
    assert body["sequence"] == 0 and body["tuf"]["rootVersion"] == 1
    tree = _tree(sender)
    state = MirrorState.from_bytes((tree / STATE).read_bytes())
    assert state.digest == body["stateDigest"] and state.base is None
    assert state.counts["documents"] == run["parameters"]["inputs"]["count"]
    # every file of the state is in the tree, and nothing else outside tuf/
    on_disk = sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_file() and "tuf" not in p.parts)
    assert on_disk == sorted([f.path for f in state.files] + [STATE])

    hits = stella("mirror", "query", sender["mirror"], "--id", "GO-2020-0001", "--json").json()["documents"]
    assert [h["documentId"] for h in hits] == ["GO-2020-0001"]
    raw = stella("mirror", "query", sender["mirror"], "--id", "GO-2020-0001", "--raw")
    assert raw.code == 0 and json.loads(raw.out)["id"] == "GO-2020-0001"
    by_purl = stella("mirror", "query", sender["mirror"], "--purl", hits[0]["purls"][0], "--json").json()
    assert "GO-2020-0001" in {h["documentId"] for h in by_purl["documents"]}

    status = _status(stella, sender)
    assert status["current"]["stateDigest"] == body["stateDigest"]
    assert status["tuf"]["root"]["version"] == 1 and status["expired"] == []
    assert status["lastImport"]["bundle"]["name"] == bundle.name


def test_delta_chain_ships_only_changes_and_applies_on_its_base(
    stella: Any, sender: dict[str, Any], tmp_path: Path
) -> None:
    full, full_run = _export(stella, tmp_path, "mirror:full")
    assert _import(stella, sender, full, "--trust-root", sender["root"]).code == 0
    receipt = sender["mirror"] / "current" / "meta" / "receipt.json"

    assert stella("import", "--quiet", _new_revision(tmp_path, "first revision")).code == 0
    delta1, run1 = _export(stella, tmp_path, "mirror:delta", "--base", receipt)
    assert run1["parameters"]["options"]["base"]["runId"] == full_run["parameters"]["runId"]
    listed = stella("verify", delta1, "--key", sender["pub"], "--json").json()
    assert listed["manifest"]["base"]["sequence"] == 0
    assert listed["manifest"]["mirror"]["removed"] == []  # the old revision's pack still holds live documents
    assert listed["manifest"]["counts"] == listed["manifest"]["counts"] | {"added": 1, "removed": 1}
    assert delta1.stat().st_size < full.stat().st_size
    deps = _provenance(delta1)["predicate"]["buildDefinition"]["resolvedDependencies"]
    assert [d["uri"].split("/")[0] for d in deps] == ["stella:document", "stella:mirror-state"]
    assert deps[1]["digest"]["sha256"] == run1["parameters"]["options"]["base"]["stateDigest"]
    assert (
        len(_provenance(full)["predicate"]["buildDefinition"]["resolvedDependencies"])
        == (full_run["parameters"]["inputs"]["count"])
    )
    result = _import(stella, sender, delta1)
    assert result.code == 0, result.err
    assert result.json()["sequence"] == 1 and result.json()["linkedFiles"] >= 1

    # base by run id, then by the state.json the receiver holds
    assert stella("import", "--quiet", _new_revision(tmp_path, "second revision")).code == 0
    delta2, _ = _export(stella, tmp_path, "mirror:delta", "--base", run1["runId"])
    assert _import(stella, sender, delta2).code == 0
    assert stella("import", "--quiet", _new_revision(tmp_path, "third revision")).code == 0
    delta3, _ = _export(stella, tmp_path, "mirror:delta", "--base", _tree(sender) / STATE)
    assert _import(stella, sender, delta3).code == 0

    raw = stella("mirror", "query", sender["mirror"], "--id", "GO-2020-0001", "--raw")
    assert json.loads(raw.out)["summary"] == "third revision"
    assert _status(stella, sender)["current"]["sequence"] == 3

    # a full bundle resets the chain; the old delta no longer applies
    full2, _ = _export(stella, tmp_path, "mirror:full")
    assert _import(stella, sender, full2).code == 0
    assert _status(stella, sender)["current"]["sequence"] == 0
    stale = _import(stella, sender, delta3)
    assert stale.code == 6


def test_wrong_delta_base_is_refused_quarantined_and_changes_nothing(
    stella: Any, sender: dict[str, Any], tmp_path: Path
) -> None:
    full, full_run = _export(stella, tmp_path, "mirror:full")
    assert stella("import", "--quiet", _new_revision(tmp_path, "revised")).code == 0
    delta, _ = _export(stella, tmp_path, "mirror:delta", "--base", full_run["runId"])
    # the mirror is empty: the delta has nothing to apply to
    empty = _import(stella, sender, delta, "--trust-root", sender["root"])
    assert empty.code == 6 and "mirror is empty" in empty.err
    assert not (sender["mirror"] / "current").exists()
    assert _import(stella, sender, full, "--trust-root", sender["root"]).code == 0
    before = _status(stella, sender)["current"]
    assert _import(stella, sender, delta).code == 0
    wrong = _import(stella, sender, delta)  # its base is no longer current
    assert wrong.code == 6 and "applies to mirror state" in wrong.err
    after = _status(stella, sender)
    assert after["current"]["sequence"] == 1 and after["quarantined"] == 2
    quarantined = sorted((sender["mirror"] / "quarantine").iterdir())
    reason = json.loads((quarantined[-1] / "reason.json").read_text())
    assert reason["error"]["exitCode"] == 6 and (quarantined[-1] / delta.name).is_file()
    assert before["stateDigest"] != after["current"]["stateDigest"]


def test_rollback_restores_the_previous_state(stella: Any, sender: dict[str, Any], tmp_path: Path) -> None:
    full, full_run = _export(stella, tmp_path, "mirror:full")
    assert _import(stella, sender, full, "--trust-root", sender["root"]).code == 0
    first = _status(stella, sender)["current"]["stateDigest"]
    assert stella("import", "--quiet", _new_revision(tmp_path, "revised")).code == 0
    delta, _ = _export(stella, tmp_path, "mirror:delta", "--base", full_run["runId"])
    assert _import(stella, sender, delta).code == 0
    assert stella("mirror", "rollback", sender["mirror"], "--yes").code == 0
    assert _status(stella, sender)["current"]["stateDigest"] == first
    raw = stella("mirror", "query", sender["mirror"], "--id", "GO-2020-0001", "--raw")
    assert json.loads(raw.out)["summary"] != "revised"
    assert stella("mirror", "rollback", sender["mirror"], "--yes").code == 0  # and forward again
    assert _status(stella, sender)["current"]["sequence"] == 1


def test_older_bundle_expired_metadata_and_missing_root_are_trust_failures(
    stella: Any, sender: dict[str, Any], tmp_path: Path
) -> None:
    old, _ = _export(stella, tmp_path, "mirror:full")
    assert _import(stella, sender, old).code == 2  # first import without --trust-root: a usage error
    # createdAt (and so every TUF version) goes up by at least a second between runs
    import time

    time.sleep(1.1)
    new, _ = _export(stella, tmp_path, "mirror:full")
    assert _import(stella, sender, new, "--trust-root", sender["root"]).code == 0
    rollback = _import(stella, sender, old)
    assert rollback.code == 6 and "rollback" in rollback.err.lower()
    later = _import(stella, sender, new, "--at", "2099-01-01T00:00:00Z")
    assert later.code == 6 and "expired" in later.err.lower()
    status = stella("mirror", "status", sender["mirror"], "--at", "2099-01-01T00:00:00Z", "--json").json()
    assert status["expired"] == ["root", "snapshot", "targets", "timestamp"]


def test_rotated_root_is_followed_from_the_pinned_root(stella: Any, sender: dict[str, Any], tmp_path: Path) -> None:
    full, full_run = _export(stella, tmp_path, "mirror:full")
    assert _import(stella, sender, full, "--trust-root", sender["root"]).code == 0
    assert stella("keys", "generate", "signer2").code == 0
    assert stella("tuf", "rotate", "root", "--key", "signer2").code == 0
    assert stella("tuf", "rotate", "targets", "--key", "signer2").code == 0
    assert stella("import", "--quiet", _new_revision(tmp_path, "after rotation")).code == 0
    delta, _ = _export(stella, tmp_path, "mirror:delta", "--base", full_run["runId"])
    result = _import(stella, sender, delta, "--receipt-key", "signer")
    assert result.code == 0, result.err
    assert result.json()["tuf"]["rootVersion"] == 3
    assert _status(stella, sender)["tuf"]["root"]["version"] == 3
    assert (_tree(sender) / "tuf" / "metadata" / "3.root.json").is_file()


def test_a_damaged_mirror_is_caught_by_the_next_import(stella: Any, sender: dict[str, Any], tmp_path: Path) -> None:
    full, full_run = _export(stella, tmp_path, "mirror:full")
    assert _import(stella, sender, full, "--trust-root", sender["root"]).code == 0
    pack = next((_tree(sender) / "data" / "raw").iterdir())
    data = bytearray(pack.read_bytes())
    data[10] ^= 1
    pack.write_bytes(bytes(data))  # bit rot in a file the next delta keeps
    damaged = stella("mirror", "verify", sender["mirror"])
    assert damaged.code == 4 and pack.name in damaged.err
    assert stella("import", "--quiet", _new_revision(tmp_path, "revised")).code == 0
    delta, _ = _export(stella, tmp_path, "mirror:delta", "--base", full_run["runId"])
    result = _import(stella, sender, delta)
    assert result.code == 4 and pack.name in result.err


def test_preflight_refuses_before_writing_and_lock_holds_out_a_second_import(
    stella: Any, sender: dict[str, Any], tmp_path: Path
) -> None:
    full, _ = _export(stella, tmp_path, "mirror:full")
    result = _import(stella, sender, full, "--trust-root", sender["root"], "--min-free", "1000T")
    assert result.code == 8 and "not enough free space" in result.err
    assert sorted(p.name for p in sender["mirror"].iterdir()) == [".lock"]


def test_encrypted_mirror_needs_and_uses_the_identity(stella: Any, sender: dict[str, Any], tmp_path: Path) -> None:
    from pyrage import x25519

    identity = x25519.Identity.generate()
    id_file = tmp_path / "receiver.age"
    id_file.write_text(str(identity) + "\n")
    recipients = tmp_path / "recipients.txt"
    recipients.write_text(f"# the receiver\n{identity.to_public()}\n")
    bundle, _ = _export(stella, tmp_path, "mirror:full", "--recipients-file", recipients)
    manifest = stella("verify", bundle, "--key", sender["pub"], "--json").json()["manifest"]
    encrypted = {f["path"] for f in manifest["encryption"]["files"]}
    assert encrypted and all(p.startswith(("data/", "indexes/")) and p.endswith(".age") for p in encrypted)
    assert _import(stella, sender, bundle, "--trust-root", sender["root"]).code == 2
    wrong = tmp_path / "wrong.age"
    wrong.write_text(str(x25519.Identity.generate()) + "\n")
    assert _import(stella, sender, bundle, "--trust-root", sender["root"], "--identity", wrong).code == 5
    result = _import(stella, sender, bundle, "--trust-root", sender["root"], "--identity", id_file)
    assert result.code == 0, result.err
    assert not list(_tree(sender).rglob("*.age"))
    raw = stella("mirror", "query", sender["mirror"], "--id", "GO-2020-0001", "--raw")
    assert json.loads(raw.out)["id"] == "GO-2020-0001"


def test_passphrase_encrypted_mirror(stella: Any, sender: dict[str, Any], tmp_path: Path) -> None:
    secret = tmp_path / "pass.txt"
    secret.write_text("correct horse battery staple\n")
    bundle, _ = _export(stella, tmp_path, "mirror:full", "--encrypt-passphrase-file", secret)
    manifest = stella("verify", bundle, "--key", sender["pub"], "--json").json()["manifest"]
    assert manifest["encryption"]["scheme"] == "age-scrypt"
    result = _import(stella, sender, bundle, "--trust-root", sender["root"], "--passphrase-file", secret)
    assert result.code == 0, result.err


def test_mirror_retry_reproduces_the_bundle(stella: Any, sender: dict[str, Any], tmp_path: Path) -> None:
    bundle, run = _export(stella, tmp_path, "mirror:full")
    again = tmp_path / "again.tar.zst"
    assert stella("export", "retry", run["runId"], "--out", again).code == 0
    assert again.read_bytes() == bundle.read_bytes()


def test_options_are_checked_per_profile(stella: Any, sender: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "x.tar.zst"
    assert stella("export", "run", "--profile", "mirror:full", "--key", "signer", "--out", out, "--base", "x").code == 2
    assert stella("export", "run", "--profile", "mirror:delta", "--key", "signer", "--out", out).code == 2
    assert stella("export", "run", "--profile", "json:raw", "--key", "signer", "--out", out, "--base", "x").code == 2
    unknown = stella("export", "run", "--profile", "mirror:delta", "--key", "signer", "--out", out, "--base", "run-x")
    assert unknown.code != 0 and not out.exists()


#: A child process that imports a bundle as `stella mirror import` does and kills itself with SIGKILL when the import
#: reaches the named point (argv: home, bundle, mirror, signer key, point).
_KILLED_AT = """
import os, signal, sys
from pathlib import Path
from core.home import Home
from services.mirror import receipt_signer
from services.mirror_import import import_bundle
from services.trust import keys_from_files

home, bundle, into, key, point = sys.argv[1:]

def faults(at: str) -> None:
    if at == point:
        os.kill(os.getpid(), signal.SIGKILL)

keys = keys_from_files([Path(key)])
import_bundle(Path(bundle), Path(into), keys=keys, signer=receipt_signer(Home(Path(home)), None), faults=faults)
"""


def test_an_import_passes_every_fault_point_in_order(
    stella: Any, sender: dict[str, Any], home: Path, tmp_path: Path
) -> None:
    from core.home import Home
    from services.mirror import receipt_signer
    from services.mirror_import import import_bundle
    from services.trust import keys_from_files

    full, _ = _export(stella, tmp_path, "mirror:full")
    passed: list[str] = []
    keys, signer = keys_from_files([sender["pub"]]), receipt_signer(Home(home), None)
    root = sender["root"].read_bytes()
    import_bundle(full, sender["mirror"], keys=keys, signer=signer, trust_root=root, faults=passed.append)
    assert passed == list(FAULT_POINTS)


@pytest.mark.parametrize("point", FAULT_POINTS)
def test_killed_import_leaves_the_old_or_the_new_state(
    stella: Any, sender: dict[str, Any], home: Path, tmp_path: Path, point: str
) -> None:
    full, full_run = _export(stella, tmp_path, "mirror:full")
    assert _import(stella, sender, full, "--trust-root", sender["root"]).code == 0
    old = _status(stella, sender)["current"]["stateDigest"]
    assert stella("import", "--quiet", _new_revision(tmp_path, "revised")).code == 0
    delta, _ = _export(stella, tmp_path, "mirror:delta", "--base", full_run["runId"])
    args = [str(home), str(delta), str(sender["mirror"]), str(sender["pub"]), point]
    killed = subprocess.run([sys.executable, "-c", _KILLED_AT, *args], cwd=ROOT, capture_output=True)
    assert killed.returncode == -9, killed.stderr  # SIGKILL at the named point
    state = _status(stella, sender)["current"]["stateDigest"]
    expected_new = point == "after-swap"
    assert (state != old) is expected_new
    fresh = stella("mirror", "verify", sender["mirror"], "--json")
    assert fresh.code == 0 and fresh.json()["stateDigest"] == state
    # whatever state it is, it verifies: the next import of the same delta either applies or is refused as stale
    again = _import(stella, sender, delta)
    assert again.code == (6 if expected_new else 0), again.err
    final = _status(stella, sender)
    assert final["current"]["sequence"] == 1
    leftovers = [p.name for p in sender["mirror"].iterdir() if p.name.startswith(".staging") or p.name.endswith(".new")]
    assert leftovers == []
    assert len(list((sender["mirror"] / "states").iterdir())) == 2  # current and previous only


def test_refresh_renews_timestamp_without_touching_the_payload(
    stella: Any, sender: dict[str, Any], tmp_path: Path
) -> None:
    import time

    from pyrage import x25519

    identity = x25519.Identity.generate()
    id_file = tmp_path / "receiver.age"
    id_file.write_text(str(identity) + "\n")
    assert stella("tuf", "expiry", "timestamp", "2s").code == 0
    bundle, _ = _export(stella, tmp_path, "mirror:full", "--recipient", str(identity.to_public()))
    time.sleep(3)
    stale = _import(stella, sender, bundle, "--trust-root", sender["root"], "--identity", id_file)
    assert stale.code == 6 and "expired" in stale.err.lower()
    assert stella("tuf", "expiry", "timestamp", "1d").code == 0
    fresh = tmp_path / "refreshed.tar.zst"
    assert stella("tuf", "refresh", bundle, "--out", fresh, "--key", "signer").code == 0
    before = stella("verify", bundle, "--key", sender["pub"], "--json").json()["manifest"]
    after = stella("verify", fresh, "--key", sender["pub"], "--json").json()["manifest"]
    assert after["runId"] == before["runId"] and after["encryption"] == before["encryption"]
    assert after["mirror"]["stateDigest"] == before["mirror"]["stateDigest"]
    assert after["mirror"]["tuf"]["timestampVersion"] > before["mirror"]["tuf"]["timestampVersion"]
    assert after["mirror"]["tuf"]["targetsVersion"] == before["mirror"]["tuf"]["targetsVersion"]
    result = _import(stella, sender, fresh, "--trust-root", sender["root"], "--identity", id_file)
    assert result.code == 0, result.err
    assert stella("tuf", "refresh", fresh, "--out", tmp_path / "x.tar.zst", "--key", "other").code != 0


@pytest.mark.parametrize("when", ["first-read", "before-swap"])
def test_a_cancelled_import_changes_nothing_and_quarantines_nothing(
    stella: Any, sender: dict[str, Any], home: Path, tmp_path: Path, when: str
) -> None:
    from core.errors import Cancelled
    from core.home import Home
    from core.progress import CancelToken, Check, CheckObserver
    from services.mirror import import_into_mirror

    full, _ = _export(stella, tmp_path, "mirror:full")
    token = CancelToken()
    seen: list[str] = []
    if when == "first-read":
        token.cancel()

    def cancel_once_verified(check: Check) -> None:
        # "tuf" is the last check before the swap: everything is extracted and verified in staging by then.
        seen.append(check.name)
        if when == "before-swap" and check.name == "tuf":
            token.cancel()

    with pytest.raises(Cancelled) as stopped:
        import_into_mirror(
            Home(home),
            full,
            sender["mirror"],
            key_files=[sender["pub"]],
            trust_root=sender["root"],
            observer=CheckObserver(cancel_once_verified, token),
        )
    assert ("tuf" in seen) is (when == "before-swap")
    assert "swapped in" in stopped.value.message if when == "before-swap" else "cancelled" in stopped.value.message
    mirror = sender["mirror"]
    assert not (mirror / "current").exists() and not (mirror / "quarantine").exists()
    # Only the lock file: no staging directory, no state, no link, no quarantine.
    assert sorted(p.name for p in mirror.iterdir()) == [".lock"]
    # The same bundle then imports, untroubled.
    assert _import(stella, sender, full, "--trust-root", sender["root"]).code == 0
