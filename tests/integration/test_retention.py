"""`stella retention`: expires_at from the profile's policy, prune (dry and real) of expired bundles and distribution
records, legal holds that keep a run's bundle, the record of what went, and a retention schedule."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core.clock import rfc3339
from tests.conftest import ROOT, CliResult

Stella = Callable[..., CliResult]
SAMPLES = ROOT / "samples"


def _later(days: int) -> str:
    return rfc3339(datetime.now(UTC).replace(tzinfo=None, microsecond=0) + timedelta(days=days))


@pytest.fixture
def runs(stella: Stella, home: Path, tmp_path: Path) -> dict[str, dict[str, Any]]:
    """Three succeeded json:raw runs under a one-day policy: two in the home's exports directory, one with --out."""
    assert stella("import", "--quiet", *sorted(p for p in SAMPLES.iterdir() if p.is_dir())).code == 0
    assert stella("keys", "generate", "k").code == 0
    assert stella("retention", "set", "json:raw", "--keep", "1d").code == 0
    made = {}
    for name, extra in (("a", ()), ("b", ("--out", tmp_path / "b.tar.zst")), ("c", ("--selector", "ecosystem=Go"))):
        res = stella("export", "run", "--profile", "json:raw", "--key", "k", *extra, "--json")
        assert res.code == 0, res.err
        made[name] = res.json()
    assert Path(made["a"]["artifact"]["path"]).parent == home / "exports"  # type: ignore[index]
    return made  # type: ignore[return-value]


def _show(stella: Stella, run_id: str) -> dict[str, Any]:
    return stella("export", "show", run_id, "--json").json()  # type: ignore[return-value]


def test_policy_stamps_expiry_and_prune_keeps_held_and_foreign_bundles(
    stella: Stella, runs: dict[str, dict[str, Any]], home: Path
) -> None:
    listed = {r["runId"]: r for r in stella("retention", "list", "--json").json()["runs"]}  # type: ignore[index]
    for run in runs.values():
        finished = datetime.fromisoformat(run["finishedAt"].rstrip("Z"))
        assert listed[run["runId"]]["expiresAt"] == rfc3339(finished + timedelta(days=1))
    shown = stella("retention", "show", "--json").json()["policies"]  # type: ignore[index]
    assert [(p["profile"], p["keepSeconds"]) for p in shown] == [("json:raw", 86400)]
    bundles = {k: Path(r["artifact"]["path"]) for k, r in runs.items()}

    # Not expired yet: nothing to do.
    now = stella("retention", "prune", "--json").json()
    assert now["removed"] == [] and now["kept"] == []  # type: ignore[index]

    # Run c's evidence is under a legal hold.
    evidence = stella("evidence", "list", "--json").json()["evidence"]  # type: ignore[index]
    (sealed,) = [e for e in evidence if e["subject"] == runs["c"]["runId"]]
    assert stella("evidence", "hold", "CASE-7", "--bundle", sealed["id"], "--reason", "litigation").code == 0

    dry = stella("retention", "prune", "--dry-run", "--at", _later(2), "--json").json()
    assert dry["dryRun"] is True and dry["bundlesRemoved"] == 1  # type: ignore[index]
    assert all(p.is_file() for p in bundles.values())  # a dry run changes nothing
    assert _show(stella, runs["a"]["runId"])["distributions"] != []

    attestation = bundles["a"].with_name(bundles["a"].name + ".intoto.jsonl")
    assert attestation.is_file()
    res = stella("retention", "prune", "--at", _later(2), "--json")
    assert res.code == 0, res.err
    report = res.json()
    removed = {r["runId"]: r for r in report["removed"]}  # type: ignore[index]
    kept = {r["runId"]: r["kept"] for r in report["kept"]}  # type: ignore[index]
    assert [(r["runId"], r["bundle"]) for r in dry["removed"]] == [(k, v["bundle"]) for k, v in removed.items()]  # type: ignore[index]
    assert removed[runs["a"]["runId"]]["bundle"] == str(bundles["a"]) and not bundles["a"].exists()
    assert not attestation.exists()  # the bundle's attestation goes with it
    assert "CASE-7" in kept[runs["c"]["runId"]] and "legal hold" in kept[runs["c"]["runId"]]
    assert bundles["c"].is_file() and _show(stella, runs["c"]["runId"])["distributions"] != []
    # b was written with --out: its file stays, its distribution record goes.
    assert (
        removed[runs["b"]["runId"]]["bundle"] is None
        and "outside the home's exports" in removed[runs["b"]["runId"]]["kept"]
    )
    assert bundles["b"].is_file() and _show(stella, runs["b"]["runId"])["distributions"] == []

    # What went is recorded on the run.
    detail = _show(stella, runs["a"]["runId"])
    assert detail["distributions"] == []
    (event,) = [e for e in detail["events"] if e["type"] == "retention-pruned"]
    assert (
        event["detail"]["bundle"] == str(bundles["a"]) and event["detail"]["sha256"] == runs["a"]["artifact"]["sha256"]
    )

    # Pruning again removes nothing more; the held run is still kept, and says why.
    again = stella("retention", "prune", "--at", _later(2))
    assert again.code == 0 and "removed 0 bundle(s) and 0 distribution record(s)" in again.out
    assert "CASE-7" in again.out
    # Released, it goes.
    assert stella("evidence", "release", "CASE-7", "--bundle", sealed["id"], "--reason", "closed").code == 0
    last = stella("retention", "prune", "--at", _later(2), "--json").json()
    assert [r["runId"] for r in last["removed"]] == [runs["c"]["runId"]] and not bundles["c"].exists()  # type: ignore[index]


def test_a_changed_bundle_is_left_in_place(stella: Stella, runs: dict[str, dict[str, Any]]) -> None:
    bundle = Path(runs["a"]["artifact"]["path"])
    bundle.write_bytes(bundle.read_bytes() + b"x")
    report = stella("retention", "prune", "--at", _later(2), "--json").json()
    (a,) = [r for r in report["removed"] if r["runId"] == runs["a"]["runId"]]  # type: ignore[index]
    assert a["bundle"] is None and "was changed" in a["kept"] and bundle.is_file()


def test_refusals(stella: Stella, runs: dict[str, dict[str, Any]]) -> None:
    assert stella("retention", "set", "json:raw", "--keep", "soon").code == 3
    assert stella("retention", "set", "nope", "--keep", "1d").code == 3
    assert stella("retention", "set", "json:raw", "--keep", "1d", "--tenant", "../x").code == 2
    assert stella("retention", "clear", "json:policy").code == 3
    assert stella("retention", "prune", "--at", "tomorrow").code == 2
    assert stella("retention", "clear", "json:raw").code == 0
    assert stella("retention", "show", "--json").json()["policies"] == []  # type: ignore[index]


def test_a_retention_schedule_prunes(stella: Stella, runs: dict[str, dict[str, Any]]) -> None:
    assert stella("schedule", "add", "prune", "--retention", "--calendar", "hourly :00").code == 0
    res = stella("schedule", "run-due", "--at", _later(3), "--json")
    assert res.code == 0, res.err
    (firing,) = res.json()["firings"]  # type: ignore[index]
    assert firing["outcome"] == "succeeded" and firing["detail"]["bundlesRemoved"] == 2
    assert not Path(runs["a"]["artifact"]["path"]).exists() and not Path(runs["c"]["artifact"]["path"]).exists()
