"""`stella evidence ...` and `stella incident ...` through the CLI, against a real store, real export runs, real
keys and (for timestamps) a real `openssl ts -reply` TSA on 127.0.0.1."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.conftest import ROOT
from tests.tsa_server import TsaServer, tsa, tsa_pki  # noqa: F401 - fixtures

SAMPLES = ROOT / "samples"


@pytest.fixture
def ready(stella: Any, tmp_path: Path) -> dict[str, Any]:
    """A home with the advisories and the policy samples imported, key k, and one export run (auto-sealed)."""
    assert stella("import", "--quiet", SAMPLES / "advisories", SAMPLES / "policy").code == 0
    assert stella("keys", "generate", "k").code == 0
    pub = tmp_path / "k.pub"
    assert stella("keys", "export-public", "k", "--out", pub).code == 0
    out = tmp_path / "b.tar.zst"
    run = stella("export", "run", "--profile", "json:raw", "--key", "k", "--out", out, "--json")
    assert run.code == 0, run.err
    return {"pub": pub, "run": run.json()["runId"], "bundle": out}


def _members(tgz: Path) -> dict[str, bytes]:
    with tarfile.open(tgz, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]


def _snapshot(stella: Any, *args: Any) -> dict[str, Any]:
    res = stella("evidence", "snapshot", *args, "--json")
    assert res.code == 0, res.err
    body: dict[str, Any] = res.json()
    return body


def _ids(stella: Any, *tenant: str) -> list[str]:
    listed = stella("evidence", "list", *tenant, "--json")
    assert listed.code == 0, listed.err
    return [e["id"] for e in listed.json()["evidence"]]


def test_an_export_run_seals_itself_and_a_snapshot_of_it_verifies(
    stella: Any, ready: dict[str, Any], tmp_path: Path, home: Path
) -> None:
    run_id = ready["run"]
    # The run sealed its manifest and distribution transcripts on its own, with its key, in its tenant.
    listed = stella("evidence", "list", "--json").json()["evidence"]
    assert [(e["kind"], e["subject"], e["tenant"]) for e in listed] == [("run", run_id, "default")]
    auto = listed[0]
    events = stella("export", "show", run_id, "--json").json()["events"]
    sealed = [e for e in events if e["type"] == "evidence-sealed"]
    assert sealed and sealed[0]["detail"] == {"evidenceId": auto["id"], "digest": auto["digest"]}

    snap = _snapshot(stella, "run", run_id[:16], "--key", "k", "--reason", "audit 2026")
    assert snap["id"].startswith("ev-") and snap["subject"] == run_id and snap["treeSize"] >= 5
    out = tmp_path / "ev.tgz"
    exported = stella("evidence", "export", snap["id"], "--out", out)
    assert exported.code == 0, exported.err
    res = stella("evidence", "verify", out, "--key", ready["pub"])
    assert res.code == 0, res.err
    for check in ("checksums", "signature", "merkle root", "inclusion proofs", "custody"):
        assert check in res.out
    report = stella("evidence", "verify", out, "--key", ready["pub"], "--json").json()
    assert report["verified"] is True and report["exitCode"] == 0

    files = _members(out)
    # The run's own manifest and signatures, byte for byte, and the transcript of where its bundle went.
    bundle = _members_zst(ready["bundle"])
    assert files["artifacts/bundle/export.json"] == bundle["export.json"]
    assert files["artifacts/bundle/export.json.sig"] == bundle["export.json.sig"]
    transcripts = json.loads(files["artifacts/distributions.json"])
    assert [t["type"] for t in transcripts] == ["file"] and "target" not in transcripts[0]  # redacted: a local path
    inputs = json.loads(files["artifacts/inputs.json"])
    assert inputs["count"] == len(inputs["inputs"]) and all(len(i["documentSha256"]) == 64 for i in inputs["inputs"])
    manifest = json.loads(files["manifest.json"])
    assert manifest["merkle"]["rootHash"] == snap["rootHash"]
    redacted = {r["field"] for r in manifest["redaction"]["redacted"]}
    assert "run.json#/parameters/outPath" in redacted and "distributions.json#/*/target" in redacted
    assert str(ready["bundle"]) not in json.dumps({k: v.decode("utf-8", "replace") for k, v in files.items()})

    # Another signer's key is not trusted: exit 5.
    assert stella("keys", "generate", "other").code == 0
    other = tmp_path / "other.pub"
    assert stella("keys", "export-public", "other", "--out", other).code == 0
    untrusted = stella("evidence", "verify", out, "--key", other)
    assert untrusted.code == 5 and "not a trusted key" in untrusted.err  # as for an export bundle
    # An export never overwrites; a changed archive in the home is refused (exit 4) naming it.
    assert stella("evidence", "export", snap["id"], "--out", out).code == 2
    archive = home / "evidence" / "bundles" / (snap["digest"].removeprefix("sha256:") + ".tgz")
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x01
    archive.write_bytes(bytes(data))
    bad = stella("evidence", "export", snap["id"], "--out", tmp_path / "again.tgz")
    assert bad.code == 4 and str(archive) in bad.err
    assert not (tmp_path / "again.tgz").exists()


def _members_zst(path: Path) -> dict[str, bytes]:
    from core.archive.reader import ReaderLimits, SafeArchiveReader

    out: dict[str, bytes] = {}
    with SafeArchiveReader(path, ReaderLimits()) as reader:
        for member in reader:
            with member.stream() as src:
                out[member.name] = src.read()
    return out


def test_policy_and_job_snapshots_verify(stella: Any, ready: dict[str, Any], tmp_path: Path) -> None:
    policy = _snapshot(stella, "policy", "acme/runtime-baseline", "--key", "k")
    job = _snapshot(stella, "job", ready["run"], "--key", "k")
    for ev in (policy, job):
        out = tmp_path / f"{ev['id']}.tgz"
        assert stella("evidence", "export", ev["id"], "--out", out).code == 0
        assert stella("evidence", "verify", out, "--key", ready["pub"]).code == 0
    files = _members(tmp_path / f"{policy['id']}.tgz")
    snapshot = json.loads(files["artifacts/policy/snapshot.json"])
    assert snapshot["policyId"] == "acme/runtime-baseline"
    assert snapshot["inputsHash"] == "sha256:92ea1d5ae85ff5355ad78b4edfacf5a688c7e0834cb74252c39adf1e96091937"
    findings = json.loads(files["artifacts/policy/findings.json"])
    assert [f["id"] for f in findings] == ["F-0001", "F-0002", "F-0003", "F-0004"]  # the sample's four findings
    raw = json.loads(files[f"artifacts/documents/{snapshot['documentSha256']}.json"])
    assert raw["policyId"] == "acme/runtime-baseline"
    env = json.loads(_members(tmp_path / f"{job['id']}.tgz")["artifacts/job/environment.json"])
    assert env["tool"]["name"] == "stella" and len(env["trustState"]["sha256"]) == 64
    assert stella("evidence", "snapshot", "policy", "no/such-policy", "--key", "k").code == 3
    assert stella("evidence", "snapshot", "run", "run-nope", "--key", "k").code == 3
    assert stella("evidence", "snapshot", "run", ready["run"], "--key", "nokey").code == 3


def test_holds_block_delete_and_prune_until_released(stella: Any, ready: dict[str, Any], home: Path) -> None:
    assert stella("evidence", "settings", "--retention", "0").code == 0  # new evidence may be pruned at once
    held = _snapshot(stella, "run", ready["run"], "--key", "k")
    free = _snapshot(stella, "job", ready["run"], "--key", "k")
    auto = [i for i in _ids(stella) if i not in (held["id"], free["id"])]  # sealed by the run, retained 90 days
    hold = stella("evidence", "hold", "CASE-7", "--bundle", held["id"], "--reason", "litigation hold")
    assert hold.code == 0, hold.err
    shown = stella("evidence", "show", held["id"], "--json").json()
    assert shown["held"] is True and shown["holds"][0]["case"] == "CASE-7"

    # Delete under hold: refused, exit 7, naming the case; the refusal is in the chain of custody.
    refused = stella("evidence", "delete", held["id"])
    assert refused.code == 7 and "CASE-7" in refused.err
    custody = stella("evidence", "custody", "--json").json()
    assert custody["events"][-1]["action"] == "delete-refused"

    dry = stella("evidence", "prune", "--dry-run", "--json").json()
    assert [r["id"] for r in dry["removed"]] == [free["id"]]
    assert dry["keptHeld"] == [{"id": held["id"], "cases": ["CASE-7"]}]
    assert [r["id"] for r in dry["keptRetained"]] == auto
    assert sorted(_ids(stella)) == sorted([held["id"], free["id"], *auto])  # a dry run changes nothing

    pruned = stella("evidence", "prune")
    assert pruned.code == 0 and "kept " + held["id"] + ": under legal hold (case CASE-7)" in pruned.out
    assert f"removed {free['id']}" in pruned.out
    assert sorted(_ids(stella)) == sorted([held["id"], *auto])
    assert not (home / "evidence" / "bundles" / (free["digest"].removeprefix("sha256:") + ".tgz")).exists()

    # Retention can be lengthened, never shortened.
    auto_id = auto[0]
    shorter = stella("evidence", "retain", auto_id, "--until", "2020-01-01")
    assert shorter.code == 7 and "never shortened" in shorter.err
    assert stella("evidence", "retain", auto_id, "--until", "2099-12-31").code == 0
    assert stella("evidence", "show", auto_id, "--json").json()["retentionUntil"] == "2099-12-31T23:59:59Z"
    (retained,) = [e for e in stella("evidence", "custody", "--json").json()["events"] if e["action"] == "retain"]
    assert retained["subject"] == f"evidence:{auto_id}"
    assert "retention lengthened from" in retained["why"] and "to 2099-12-31T23:59:59Z" in retained["why"]
    assert stella("evidence", "retain", auto_id, "--until", "2099-01-01").code == 7
    assert stella("evidence", "delete", auto_id).code == 7  # still retained

    # An archive no bundle points to (a process killed between a deletion and the file's removal) is swept.
    orphan = home / "evidence" / "bundles" / ("ab" * 32 + ".tgz")
    orphan.write_bytes(b"left behind")
    assert stella("evidence", "prune", "--dry-run").code == 0 and orphan.exists()

    # Released, the next prune removes it.
    assert stella("evidence", "release", "CASE-7", "--bundle", held["id"], "--reason", "case closed").code == 0
    assert stella("evidence", "release", "CASE-7", "--bundle", held["id"]).code == 3  # nothing left to release
    assert stella("evidence", "prune").code == 0
    assert _ids(stella) == auto
    assert not orphan.exists()
    assert sorted(p.name for p in (home / "evidence" / "bundles").iterdir()) == sorted(
        e["digest"].removeprefix("sha256:") + ".tgz" for e in stella("evidence", "list", "--json").json()["evidence"]
    )
    events = stella("evidence", "custody", "--json").json()["events"]
    actions = [e["action"] for e in events]
    assert actions.count("prune-kept") == 1 and "release" in actions
    # Each removal is a disposal event naming the bundle and why: the first prune's and the one after the release.
    disposed = {e["subject"]: e["why"] for e in events if e["action"] == "dispose"}
    assert disposed.keys() == {f"evidence:{free['id']}", f"evidence:{held['id']}"}
    assert all(why.startswith("pruned") for why in disposed.values())
    accessed = [e["why"] for e in events if e["action"] == "access"]
    assert accessed and not [why for why in accessed if why.startswith(("pruned", "deleted", "retention"))]
    assert stella("evidence", "custody").code == 0


def test_a_deletion_is_a_dispose_event_in_the_chain(stella: Any, ready: dict[str, Any]) -> None:
    assert stella("evidence", "settings", "--retention", "0").code == 0
    ev = _snapshot(stella, "job", ready["run"], "--key", "k")
    deleted = stella("evidence", "delete", ev["id"], "--reason", "sealed by mistake")
    assert deleted.code == 0, deleted.err
    assert ev["id"] not in _ids(stella)
    last = stella("evidence", "custody", "--json").json()["events"][-1]
    assert (last["action"], last["subject"], last["subjectDigest"], last["why"]) == (
        "dispose",
        f"evidence:{ev['id']}",
        ev["digest"],
        "sealed by mistake",
    )
    assert stella("evidence", "custody").code == 0


def test_quota_refuses_a_snapshot_and_writes_nothing(stella: Any, ready: dict[str, Any], home: Path) -> None:
    before = _ids(stella)
    files = sorted((home / "evidence" / "bundles").iterdir())
    chain = stella("evidence", "custody", "--json").json()["events"]
    assert stella("evidence", "settings", "--quota", "30K").code == 0
    refused = stella("evidence", "snapshot", "run", ready["run"], "--key", "k")
    assert refused.code == 7 and "quota" in refused.err
    assert _ids(stella) == before
    assert sorted((home / "evidence" / "bundles").iterdir()) == files
    assert stella("evidence", "custody", "--json").json()["events"] == chain
    # An export run still succeeds over quota; its run says the seal was refused.
    run = stella("export", "run", "--profile", "json:raw", "--key", "k", "--json")
    assert run.code == 0, run.err
    events = stella("export", "show", run.json()["runId"], "--json").json()["events"]
    failed = [e for e in events if e["type"] == "evidence-failed"]
    assert failed and failed[0]["detail"]["error_code"] == "policy"
    settings = stella("evidence", "settings", "--json").json()
    assert settings["quotaBytes"] == 30 * 1024 and settings["usedBytes"] <= 30 * 1024
    assert stella("evidence", "settings", "--quota", "lots").code == 2


def test_removing_or_reordering_a_custody_event_is_detected(stella: Any, ready: dict[str, Any], home: Path) -> None:
    ev = _snapshot(stella, "run", ready["run"], "--key", "k")
    assert stella("evidence", "show", ev["id"]).code == 0
    assert stella("evidence", "hold", "C-1", "--bundle", ev["id"], "--reason", "r").code == 0
    good = stella("evidence", "custody", "--json")
    assert good.code == 0 and good.json()["verified"] is True
    events = good.json()["events"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))

    store = home / "store.duckdb"
    conn = duckdb.connect(str(store))
    rows = conn.execute("SELECT * FROM evidence_custody_events ORDER BY seq").fetchall()
    conn.execute("DELETE FROM evidence_custody_events WHERE seq = 3")
    conn.close()
    removed = stella("evidence", "custody")
    assert removed.code == 4 and "removed, inserted or reordered" in removed.err

    conn = duckdb.connect(str(store))
    conn.execute("DELETE FROM evidence_custody_events")
    columns = len(rows[0])
    reordered = list(rows)
    reordered[2], reordered[3] = reordered[3], reordered[2]
    for seq, row in enumerate(reordered, start=1):
        conn.execute(
            f"INSERT INTO evidence_custody_events VALUES ({', '.join('?' * columns)})", [row[0], seq, *row[2:]]
        )
    conn.close()
    swapped = stella("evidence", "custody", "--json")
    assert swapped.code == 4 and swapped.json()["exitCode"] == 4

    conn = duckdb.connect(str(store))  # the original chain back: verifies again
    conn.execute("DELETE FROM evidence_custody_events")
    for row in rows:
        conn.execute(f"INSERT INTO evidence_custody_events VALUES ({', '.join('?' * columns)})", list(row))
    conn.close()
    assert stella("evidence", "custody").code == 0


def test_another_tenants_evidence_is_invisible(stella: Any, ready: dict[str, Any], tmp_path: Path) -> None:
    ev = _snapshot(stella, "run", ready["run"], "--key", "k")
    other = ("--tenant", "acme")
    assert _ids(stella, *other) == []
    assert ev["id"] in _ids(stella)
    for args in (
        ("show", ev["id"]),
        ("export", ev["id"], "--out", tmp_path / "x.tgz"),
        ("delete", ev["id"]),
        ("hold", "C", "--bundle", ev["id"], "--reason", "r"),
        ("release", "C", "--bundle", ev["id"]),
        ("retain", ev["id"], "--until", "2099-01-01"),
        ("reseal", ev["id"], "--key", "k"),
        ("timestamp", ev["id"], "--signature-out", tmp_path / "sig.bin"),
        ("snapshot", "run", ready["run"], "--key", "k"),  # the run is the default tenant's
    ):
        res = stella("evidence", *args, *other)
        assert res.code == 3, (args, res.out, res.err)
        assert ev["id"] not in res.out
    assert not (tmp_path / "x.tgz").exists() and not (tmp_path / "sig.bin").exists()
    assert stella("evidence", "custody", *other, "--json").json()["events"] == []
    assert stella("evidence", "settings", *other, "--retention", "0").code == 0
    assert stella("evidence", "prune", *other, "--json").json()["removed"] == []
    assert stella("incident", "start", "--reason", "drill", "--key", "k", *other).code == 0
    assert stella("evidence", "show", ev["id"], "--json").json()["retentionUntil"] == ev["retentionUntil"]
    assert ev["id"] in _ids(stella)


def test_reseal_links_to_the_earlier_root(stella: Any, ready: dict[str, Any], tmp_path: Path) -> None:
    first = _snapshot(stella, "run", ready["run"], "--key", "k")
    res = stella("evidence", "reseal", first["id"], "--key", "k", "--reason", "key rotation", "--json")
    assert res.code == 0, res.err
    again = res.json()
    assert again["previousId"] == first["id"] and again["treeSize"] == first["treeSize"] + 1
    out = tmp_path / "again.tgz"
    assert stella("evidence", "export", again["id"], "--out", out).code == 0
    report = stella("evidence", "verify", out, "--key", ready["pub"], "--json").json()
    assert report["verified"] is True
    assert any("consisten" in c["check"] and c["ok"] for c in report["checks"])
    manifest = json.loads(_members(out)["manifest.json"])
    assert manifest["previous"] == {
        "evidenceId": first["id"],
        "treeSize": first["treeSize"],
        "rootHash": first["rootHash"],
    }


def test_a_timestamped_snapshot_and_an_attached_token(
    stella: Any,
    ready: dict[str, Any],
    tmp_path: Path,
    tsa: TsaServer,  # noqa: F811 - the fixture
) -> None:
    untimed = _snapshot(stella, "run", ready["run"], "--key", "k")
    assert stella("evidence", "tsa", "set", tsa.url).code == 0
    timed = _snapshot(stella, "run", ready["run"], "--key", "k")
    assert timed["timestamped"] is True and untimed["timestamped"] is False and tsa.requests >= 1
    out = tmp_path / "timed.tgz"
    assert stella("evidence", "export", timed["id"], "--out", out).code == 0
    ok = stella("evidence", "verify", out, "--key", ready["pub"], "--tsa-cert", tsa.pki.ca_cert, "--json")
    assert ok.code == 0, ok.out
    assert ok.json()["timestamp"]
    assert stella("evidence", "verify", out, "--key", ready["pub"], "--tsa-cert", tsa.pki.other_ca_cert).code == 6

    # A token made elsewhere, over the bundle's manifest signature, attached afterwards.
    sig = tmp_path / "sig.bin"
    assert stella("evidence", "timestamp", untimed["id"], "--signature-out", sig).code == 0
    token = tmp_path / "resp.tsr"
    token.write_bytes(tsa.stamp(sig.read_bytes()))
    wrong = tmp_path / "wrong.tsr"
    wrong.write_bytes(tsa.stamp(b"other bytes"))
    assert stella("evidence", "timestamp", untimed["id"], "--token", wrong).code == 4
    attached = stella("evidence", "timestamp", untimed["id"], "--token", token, "--json")
    assert attached.code == 0, attached.err
    body = attached.json()
    assert body["timestamped"] is True and body["digest"] != untimed["digest"]
    out2 = tmp_path / "attached.tgz"
    assert stella("evidence", "export", untimed["id"], "--out", out2).code == 0
    assert stella("evidence", "verify", out2, "--key", ready["pub"], "--tsa-cert", tsa.pki.ca_cert).code == 0
    assert stella("evidence", "tsa", "unset").code == 0
    assert stella("evidence", "tsa", "set", "ftp://nope").code == 3


def test_incident_mode_lengthens_retention_captures_and_tells_the_timeline(
    stella: Any, ready: dict[str, Any], tmp_path: Path
) -> None:
    before = stella("evidence", "list", "--json").json()["evidence"]
    started = stella("incident", "start", "--reason", "suspected tampering", "--key", "k", "--json")
    assert started.code == 0, started.err
    body = started.json()
    assert body["open"] is True and body["retentionLengthened"] == len(before)
    assert stella("incident", "start", "--reason", "again", "--key", "k").code == 2  # one at a time
    after = {e["id"]: e for e in stella("evidence", "list", "--json").json()["evidence"]}
    for e in before:
        assert after[e["id"]]["retentionUntil"] > e["retentionUntil"]
    retains = [e for e in stella("evidence", "custody", "--json").json()["events"] if e["action"] == "retain"]
    assert sorted(e["subject"] for e in retains) == sorted(f"evidence:{e['id']}" for e in before)
    assert all("by incident " + body["id"] in e["why"] for e in retains)
    capture = after[body["evidence"]["id"]]
    out = tmp_path / "capture.tgz"
    assert stella("evidence", "export", capture["id"], "--out", out).code == 0
    assert stella("evidence", "verify", out, "--key", ready["pub"]).code == 0
    files = _members(out)
    assert json.loads(files["artifacts/incident/incident.json"])["reason"] == "suspected tampering"
    store_state = json.loads(files["artifacts/incident/store.json"])
    assert store_state["rows"]["advisories"] > 0 and len(store_state["rawDocumentsSha256"]) == 64
    runs = json.loads(files["artifacts/incident/runs.json"])
    assert runs[0]["run"]["runId"] == ready["run"] and [e["type"] for e in runs[0]["events"]][:2] == [
        "planned",
        "started",
    ]
    stopped = stella("incident", "stop", "--reason", "resolved", "--key", "k", "--json")
    assert stopped.code == 0 and stopped.json()["open"] is False
    assert stella("incident", "stop", "--reason", "again", "--key", "k").code == 3
    timeline = stella("timeline", "list", "--json").json()["events"]
    types = [e["type"] for e in timeline]
    assert "dev.stella.incident.started" in types and "dev.stella.incident.stopped" in types
    assert "dev.stella.evidence.sealed" in types


def test_bad_arguments_name_the_problem(stella: Any, ready: dict[str, Any], tmp_path: Path) -> None:
    ev = _snapshot(stella, "run", ready["run"], "--key", "k")
    assert stella("evidence", "retain", ev["id"], "--until", "someday").code == 2
    assert stella("evidence", "hold", "bad case!", "--bundle", ev["id"], "--reason", "r").code == 2
    assert stella("evidence", "show", "ev-nope").code == 3
    missing = stella("evidence", "verify", tmp_path / "none.tgz", "--key", ready["pub"])
    assert missing.code == 2 and "none.tgz" in missing.err
    junk = tmp_path / "junk.tgz"
    junk.write_bytes(b"not an archive")
    assert stella("evidence", "verify", junk, "--key", ready["pub"]).code in (3, 4)
    token = tmp_path / "token.tsr"
    token.write_bytes(b"\x30\x03\x02\x01\x00")
    res = stella("evidence", "timestamp", ev["id"], "--token", token)
    assert res.code == 3 and stella("evidence", "show", ev["id"], "--json").json()["digest"] == ev["digest"]
    assert stella("evidence", "export", ev["id"], "--out", tmp_path / "no" / "dir" / "x.tgz").code == 8
    # A TSA that does not answer fails the seal (exit 8, naming it) and leaves nothing behind.
    before = _ids(stella)
    assert stella("evidence", "tsa", "set", "http://127.0.0.1:9/tsa").code == 0
    unreachable = stella("evidence", "snapshot", "run", ready["run"], "--key", "k")
    assert unreachable.code == 8 and "127.0.0.1:9" in unreachable.err
    assert _ids(stella) == before


def test_the_sample_sealed_bundles_verify_from_the_cli_without_a_home(stella: Any, home: Path, tmp_path: Path) -> None:
    fixture = ROOT / "tests" / "fixtures" / "evidence"
    key, ca = fixture / "signer.pub", fixture / "tsa-ca.pem"
    for name in ("sample.tgz", "sample-reseal.tgz"):
        res = stella("evidence", "verify", fixture / name, "--key", key, "--tsa-cert", ca, "--json")
        assert res.code == 0, res.out
        assert res.json()["verified"] is True
    assert not home.exists()  # verifying needs no store and records nothing without a locker
    data = bytearray((fixture / "sample.tgz").read_bytes())
    data[len(data) // 2] ^= 0x01
    bad = tmp_path / "sample.tgz"
    bad.write_bytes(bytes(data))
    res = stella("evidence", "verify", bad, "--key", key, "--tsa-cert", ca)
    assert res.code in (3, 4) and "not verified" in res.err


def _repack(src: Path, dest: Path, change: Any) -> None:
    """``src`` re-packed canonically (as the sealer lays it out) after ``change`` edited its files, with SHA256SUMS
    recomputed: what someone who can rewrite the archive but not re-sign it could produce."""
    import gzip
    import hashlib

    from core.archive.canonical import end_of_archive, member_header, padding

    with tarfile.open(src, "r:gz") as tar:
        members = [(m.name, m.mode, m.mtime, tar.extractfile(m).read()) for m in tar]  # type: ignore[union-attr]
    files = {name: data for name, _, _, data in members}
    change(files)
    files["SHA256SUMS"] = "".join(
        f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in sorted(files.items()) if name != "SHA256SUMS"
    ).encode()
    raw = io.BytesIO()
    offset = 0
    for name, mode, mtime, _ in members:
        data = files[name]
        block = member_header(name, len(data), mode, int(mtime)) + data + bytes(padding(len(data)))
        raw.write(block)
        offset += len(block)
    raw.write(end_of_archive(offset))
    out = io.BytesIO()
    from core.evidence_seal import GZIP_LEVEL

    with gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=GZIP_LEVEL, mtime=0) as gz:
        gz.write(raw.getvalue())
    dest.write_bytes(out.getvalue())


def test_a_removed_or_reordered_event_in_a_sealed_custody_log_is_refused(
    stella: Any, ready: dict[str, Any], tmp_path: Path
) -> None:
    first = _snapshot(stella, "run", ready["run"], "--key", "k")
    assert stella("evidence", "show", first["id"]).code == 0
    assert stella("evidence", "hold", "C-9", "--bundle", first["id"], "--reason", "r").code == 0
    ev = _snapshot(stella, "job", ready["run"], "--key", "k")  # seals the chain so far: 8 events or more
    sealed = tmp_path / "ev.tgz"
    assert stella("evidence", "export", ev["id"], "--out", sealed).code == 0
    same = tmp_path / "same.tgz"
    _repack(sealed, same, lambda files: None)
    assert same.read_bytes() == sealed.read_bytes()  # the re-packer is faithful: what follows changes one thing
    lines = _members(sealed)["custody.jsonl"].splitlines(keepends=True)
    assert len(lines) >= 6

    def drop(files: dict[str, bytes]) -> None:
        files["custody.jsonl"] = b"".join(lines[:2] + lines[3:])

    def swap(files: dict[str, bytes]) -> None:
        files["custody.jsonl"] = b"".join([*lines[:2], lines[3], lines[2], *lines[4:]])

    for name, change in (("dropped", drop), ("swapped", swap)):
        bad = tmp_path / f"{name}.tgz"
        _repack(sealed, bad, change)
        res = stella("evidence", "verify", bad, "--key", ready["pub"], "--json")
        assert res.code == 4, (name, res.out)
        failed = [c for c in res.json()["checks"] if not c["ok"]]
        assert failed and failed[0]["check"] == "custody", (name, failed)
