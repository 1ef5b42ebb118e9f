"""Profile ids are spelled one way, kind:variant: the risk bundle's built-in is `risk:bundle` everywhere, the
former `risk-bundle` is refused with the id to use, and a store written before the rename keeps its runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from tests.conftest import CliResult
from tests.integration.bundle_helpers import read_members
from tests.integration.test_risk_bundle import TODAY, redated

Stella = Callable[..., CliResult]


def test_profile_list_and_export_run_spell_the_risk_bundle_one_way(stella: Stella, tmp_path: Path) -> None:
    listed: Any = stella("export", "profile", "list", "--json").json()
    ids = {p["id"] for p in listed["profiles"]}
    assert "risk:bundle" in ids and "risk-bundle" not in ids
    assert all(":" in pid for pid in ids)  # every built-in is kind:variant
    assert stella("keys", "generate", "k").code == 0
    kev, epss = redated(tmp_path, TODAY)
    assert stella("import", "--quiet", kev, epss).code == 0
    res = stella("export", "run", "--profile", "risk-bundle", "--key", "k", "--out", tmp_path / "r.tar.zst")
    assert res.code == 2
    assert "profile 'risk-bundle' is now called 'risk:bundle'" in res.err and "--profile risk:bundle" in res.err
    res = stella("export", "profile", "create", "mine", "--base", "risk-bundle")
    assert res.code == 2 and "'risk:bundle'" in res.err
    res = stella("export", "run", "--profile", "risk:bundle", "--key", "k", "--out", tmp_path / "r.tar.zst")
    assert res.code == 0, res.err


def test_a_store_from_before_the_rename_keeps_its_runs(stella: Stella, home: Path, tmp_path: Path) -> None:
    assert stella("keys", "generate", "k").code == 0
    kev, epss = redated(tmp_path, TODAY)
    assert stella("import", "--quiet", kev, epss).code == 0
    run: Any = stella(
        "export", "run", "--profile", "risk:bundle", "--key", "k", "--out", tmp_path / "a.tar.zst", "--json"
    ).json()
    # What an older stella left: the built-in seeded as `risk-bundle`, a run pinned to it, migration 4 not applied
    # (the later migrations' tables stay: they are independent of the rename, and a missing one is applied).
    with duckdb.connect(str(home / "store.duckdb")) as conn:
        conn.execute("UPDATE export_profiles SET profile_id = 'risk-bundle' WHERE profile_id = 'risk:bundle'")
        conn.execute("UPDATE export_runs SET profile_id = 'risk-bundle'")
        conn.execute("DELETE FROM schema_version WHERE version = 4")
    listed: Any = stella("export", "profile", "list", "--json").json()
    risk = [p for p in listed["profiles"] if p["config"]["kind"] == "risk" and p["config"]["variant"] == "bundle"]
    assert [(p["id"], p["revision"]) for p in risk] == [("risk:bundle", 1)]  # renamed, revisions kept
    shown: Any = stella("export", "show", run["runId"], "--json").json()
    assert shown["profile"]["id"] == "risk-bundle"  # the run keeps the id its bundle's manifest records
    res = stella("export", "retry", run["runId"], "--key", "k", "--out", tmp_path / "b.tar.zst")
    assert res.code == 0, res.err
    manifest = json.loads(dict((i.name, d) for i, d in read_members(tmp_path / "b.tar.zst"))["export.json"])
    assert manifest["profile"]["id"] == "risk-bundle"  # rebuilt as the run was pinned
    again: Any = stella(
        "export", "run", "--profile", "risk:bundle", "--key", "k", "--out", tmp_path / "c.tar.zst", "--json"
    ).json()
    assert again["profile"] == {"id": "risk:bundle", "revision": 1, "kind": "risk", "variant": "bundle"}
