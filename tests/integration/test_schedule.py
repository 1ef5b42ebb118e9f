"""`stella schedule`: calendars and import triggers, run keys (one run per slot, even from two processes at once),
catch-up, retries of transient failures only, and the systemd units `schedule install` writes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from core.clock import rfc3339
from core.home import Home
from tests.conftest import FIXTURES, ROOT, CliResult, require_tool

Stella = Callable[..., CliResult]
SAMPLES = ROOT / "samples"
KEV_JSON = FIXTURES / "kev" / "known_exploited_vulnerabilities.json"


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _at(days: int, hh: int, mm: int = 0) -> str:
    """RFC 3339 text of HH:MM UTC, ``days`` days from today."""
    day = _now().replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=days)
    return rfc3339(day.replace(hour=hh, minute=mm))


@pytest.fixture
def ready(stella: Stella) -> None:
    assert stella("import", "--quiet", *sorted(p for p in SAMPLES.iterdir() if p.is_dir())).code == 0
    assert stella("keys", "generate", "k").code == 0


def _runs(stella: Stella) -> list[dict[str, Any]]:
    return stella("export", "runs", "--json").json()["runs"]  # type: ignore[index,no-any-return]


def _process(home: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "STELLA_HOME": str(home)}
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_add_list_remove_and_what_is_refused(stella: Stella, ready: None) -> None:
    res = stella("schedule", "add", "nightly", "--profile", "json:raw", "--key", "k", "--calendar", "daily 02:00 UTC")
    assert res.code == 0 and "OnCalendar=*-*-* 02:00:00 UTC" in res.out
    refused = {
        ("cron", "--profile", "json:raw", "--key", "k", "--calendar", "0 2 * * *"): 2,
        ("zoned", "--profile", "json:raw", "--key", "k", "--calendar", "daily 02:00 CET"): 2,
        ("nightly", "--profile", "json:raw", "--key", "k", "--calendar", "daily 03:00"): 2,  # name taken
        ("Bad/Name", "--profile", "json:raw", "--key", "k", "--calendar", "daily 03:00"): 2,
        ("nokey", "--profile", "json:raw", "--key", "missing", "--calendar", "daily 03:00"): 3,
        ("noprofile", "--profile", "nope", "--key", "k", "--calendar", "daily 03:00"): 3,
        ("pinned", "--profile", "json:raw@1", "--key", "k", "--calendar", "daily 03:00"): 2,
        ("both", "--profile", "json:raw", "--key", "k", "--calendar", "daily 03:00", "--after-import", "kev"): 2,
        ("kind", "--profile", "json:raw", "--key", "k", "--after-import", "weather"): 2,
        ("prune", "--retention", "--profile", "json:raw", "--calendar", "daily 03:00"): 2,
        ("noprofile2", "--key", "k", "--calendar", "daily 03:00"): 2,
        ("sel", "--profile", "json:raw", "--key", "k", "--selector", "bogus", "--calendar", "daily 03:00"): 2,
    }
    for args, code in refused.items():
        res = stella("schedule", "add", *args)
        assert res.code == code, (args, res.out, res.err)
    assert stella("schedule", "add", "prune", "--retention", "--calendar", "every 6 hours").code == 0
    listed = stella("schedule", "list", "--json").json()["schedules"]  # type: ignore[index]
    assert [(s["name"], s["calendar"], s["onCalendar"]) for s in listed] == [
        ("nightly", "daily 02:00 UTC", "*-*-* 02:00:00 UTC"),
        ("prune", "every 6 hours UTC", "*-*-* 00,06,12,18:00:00 UTC"),
    ]
    assert listed[0]["lastFiring"] is None and listed[0]["nextDue"].endswith("T02:00:00Z")
    assert stella("schedule", "remove", "nightly").code == 0
    assert stella("schedule", "remove", "nightly").code == 3
    assert [s["name"] for s in stella("schedule", "list", "--json").json()["schedules"]] == ["prune"]  # type: ignore[index]


def test_each_slot_fires_once_and_missed_slots_are_caught_up_once(stella: Stella, ready: None, home: Path) -> None:
    assert (
        stella("schedule", "add", "nightly", "--profile", "json:raw", "--key", "k", "--calendar", "daily 02:00").code
        == 0
    )
    before = stella("schedule", "run-due", "--at", _at(0, 0, 0) if _now().hour >= 2 else _at(-1, 1), "--json").json()
    assert before["firings"] == []  # type: ignore[index]  # the slots before the schedule was added never fire

    first = stella("schedule", "run-due", "--at", _at(1, 2, 41), "--json")
    assert first.code == 0, first.err
    (firing,) = first.json()["firings"]  # type: ignore[index]
    assert firing["outcome"] == "succeeded" and firing["slot"] == _at(1, 2) and firing["attempts"] == 1
    again = stella("schedule", "run-due", "--at", _at(1, 23, 59), "--json").json()
    assert again["firings"] == [] and again["notDue"] == [{"schedule": "nightly", "nextDue": _at(2, 2)}]  # type: ignore[index]
    assert len(_runs(stella)) == 1

    # Four days later: three slots were missed; only the latest fires.
    late = stella("schedule", "run-due", "--at", _at(5, 9), "--json").json()
    assert [(f["slot"], f["outcome"]) for f in late["firings"]] == [(_at(5, 2), "succeeded")]  # type: ignore[index]
    runs = _runs(stella)
    assert len(runs) == 2 and {r["state"] for r in runs} == {"succeeded"}

    shown = stella("export", "show", firing["runId"], "--json").json()
    assert shown["schedule"]["name"] == "nightly" and shown["schedule"]["slot"] == _at(1, 2)  # type: ignore[index]
    assert shown["schedule"]["runKey"] == firing["runKey"]  # type: ignore[index]
    assert {Path(r["artifact"]["path"]).parent for r in runs} == {home / "exports"}  # the home's exports directory
    text = stella("schedule", "list")
    assert "nightly" in text.out and f"{_at(5, 2)} succeeded" in text.out


def test_an_import_trigger_fires_once_per_new_import(stella: Stella, ready: None, tmp_path: Path) -> None:
    kev = tmp_path / "known_exploited_vulnerabilities.json"
    day = _now()
    kev.write_bytes(
        KEV_JSON.read_bytes().replace(b'"2025-08-25T17:04:19.9796Z"', f'"{day:%Y-%m-%d}T00:00:00Z"'.encode())
    )
    add = ("schedule", "add", "risk", "--profile", "risk:bundle", "--key", "k", "--provider", "kev")
    assert stella(*add, "--on-risk-feed-update").code == 0
    assert stella("schedule", "run-due", "--json").json()["firings"] == []  # type: ignore[index]  # nothing new
    assert stella("import", "--quiet", kev).code == 0
    fired = stella("schedule", "run-due", "--json")
    assert fired.code == 0, fired.err
    (firing,) = fired.json()["firings"]  # type: ignore[index]
    assert firing["outcome"] == "succeeded"
    assert stella("export", "show", firing["runId"], "--json").json()["profile"]["id"] == "risk:bundle"  # type: ignore[index]
    assert stella("schedule", "run-due", "--json").json()["firings"] == []  # type: ignore[index]
    assert stella("import", "--quiet", kev).code == 0  # the same document again: a duplicate, nothing new
    assert stella("schedule", "run-due", "--json").json()["firings"] == []  # type: ignore[index]


def test_two_concurrent_run_due_for_one_slot_create_one_run(stella: Stella, ready: None, home: Path) -> None:
    assert (
        stella("schedule", "add", "nightly", "--profile", "json:raw", "--key", "k", "--calendar", "daily 02:00").code
        == 0
    )
    at = _at(1, 2, 30)
    procs = [_process(home, "schedule", "run-due", "--at", at, "--backoff", "0.3", "--attempts", "8") for _ in range(2)]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    assert [code for code, _, _ in results] == [0, 0], results
    outs = " ".join(out for _, out, _ in results)
    assert outs.count("fired: run ") == 1, outs  # one process started the run...
    assert "not due" in outs or "already fired" in outs, outs  # ...the other found the slot taken
    runs = _runs(stella)
    assert len(runs) == 1 and runs[0]["state"] == "succeeded"
    with duckdb.connect(str(Home(home).store_path)) as db:
        assert db.execute("SELECT count(*), count(DISTINCT run_key) FROM schedule_firings").fetchone() == (1, 1)
        with pytest.raises(duckdb.ConstraintException):  # the key is unique in the store itself
            db.execute("CREATE TEMP TABLE t AS SELECT * FROM schedule_firings")
            db.execute("INSERT INTO schedule_firings SELECT * FROM t")


def test_a_busy_store_is_retried_with_backoff(stella: Stella, ready: None, home: Path) -> None:
    assert (
        stella("schedule", "add", "nightly", "--profile", "json:raw", "--key", "k", "--calendar", "daily 02:00").code
        == 0
    )
    holder = subprocess.Popen(  # another process holds the store's writer lock for 1.5 s
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('locked', flush=True)\n"
            "time.sleep(1.5)\n",
            str(Home(home).lock_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    res = stella("schedule", "run-due", "--at", _at(1, 3), "--backoff", "0.4", "--attempts", "6", "--json")
    holder.wait(timeout=30)
    assert res.code == 0, res.err
    assert "store is locked" in res.err and "attempt 1 of 6; trying again in 0.4 s" in res.err
    report = res.json()
    assert report["storeAttempts"] >= 2  # type: ignore[index]
    assert [f["outcome"] for f in report["firings"]] == ["succeeded"]  # type: ignore[index]
    # With too few attempts the busy store ends run-due as an environment failure (exit 8), and nothing fired.
    assert (
        stella("schedule", "add", "hourly", "--profile", "json:raw", "--key", "k", "--calendar", "hourly :05").code == 0
    )
    holder = subprocess.Popen(holder.args, stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    res = stella("schedule", "run-due", "--at", _at(1, 4), "--backoff", "0.1", "--attempts", "2")
    holder.wait(timeout=30)
    assert res.code == 8 and res.err.count("trying again") == 1 and "store is locked" in res.err


def test_an_integrity_failure_is_not_retried(stella: Stella, home: Path, tmp_path: Path) -> None:
    assert stella("keys", "generate", "k").code == 0
    kev = tmp_path / "known_exploited_vulnerabilities.json"
    kev.write_bytes(
        KEV_JSON.read_bytes().replace(b'"2025-08-25T17:04:19.9796Z"', f'"{_now():%Y-%m-%d}T00:00:00Z"'.encode())
    )
    assert stella("import", "--quiet", kev).code == 0
    add = ("schedule", "add", "risk", "--profile", "risk:bundle", "--key", "k", "--provider", "kev")
    assert stella(*add, "--calendar", "hourly :00").code == 0
    # The stored catalog is damaged on disk after it was imported: its bytes no longer match their digest.
    with duckdb.connect(str(Home(home).store_path), read_only=True) as db:
        (sha,) = db.execute("SELECT sha256 FROM raw_documents WHERE kind = 'kev' AND content IS NULL").fetchone() or (
            "",
        )
    blob = Home(home).blobs_dir / sha[:2] / sha  # the catalog is over 1 MiB: its bytes live beside the store
    blob.write_bytes(blob.read_bytes() + b"\n")
    res = stella("schedule", "run-due", "--at", _at(1, 5, 30), "--attempts", "4", "--backoff", "0", "--json")
    assert res.code == 4, res.err
    (firing,) = res.json()["firings"]  # type: ignore[index]
    assert firing["outcome"] == "failed" and firing["attempts"] == 1 and firing["failureClass"] == "integrity"
    assert "differ from its digest" in firing["error"] and "trying again" not in res.err
    runs = _runs(stella)
    assert [r["state"] for r in runs] == ["failed"] and runs[0]["runId"] == firing["runId"]
    # The slot is spent: a later run-due in the same hour does not try it again.
    assert stella("schedule", "run-due", "--at", _at(1, 5, 45), "--json").json()["firings"] == []  # type: ignore[index]


def test_install_writes_units_systemd_accepts(stella: Stella, ready: None, home: Path, tmp_path: Path) -> None:
    analyze = require_tool("systemd-analyze")
    exe = Path(sys.executable).parent / "stella"
    assert (
        stella("schedule", "add", "nightly", "--profile", "json:raw", "--key", "k", "--calendar", "daily 02:30").code
        == 0
    )
    assert stella("schedule", "add", "weekly", "--profile", "json:raw", "--key", "k", "--selector", "format=osv",
                  "--calendar", "weekly sun 04:00").code == 0  # fmt: skip
    assert stella("schedule", "add", "risk", "--profile", "json:raw", "--key", "k", "--after-import", "kev").code == 0
    assert stella("schedule", "add", "prune", "--retention", "--calendar", "every 8 hours").code == 0
    units = tmp_path / "units"
    units.mkdir()
    (units / "stella-schedule-default_gone.timer").write_text("[Timer]\nOnCalendar=daily\n")  # a removed schedule's
    (units / "stella-schedule-default_x_y.timer").write_text("[Timer]\nOnCalendar=daily\n")  # tenant default_x's
    res = stella("schedule", "install", "--unit-dir", units, "--stella", exe, "--json")
    assert res.code == 0, res.err
    names = sorted(p.name for p in units.iterdir())
    assert names == sorted(
        [
            f"stella-schedule-default_{n}.{s}"
            for n in ("nightly", "weekly", "risk", "prune")
            for s in ("timer", "service")
        ]
        + ["stella-schedule-default_x_y.timer"]
    )
    timer = (units / "stella-schedule-default_nightly.timer").read_text()
    assert "OnCalendar=*-*-* 02:30:00 UTC\n" in timer and "Persistent=true\n" in timer
    service = (units / "stella-schedule-default_nightly.service").read_text()
    assert (
        f'ExecStart="{exe}" "--home" "{home.resolve()}" "schedule" "run-due" "--tenant" "default" "--only" "nightly"'
        in service
    )
    ours = sorted(str(p) for p in units.glob("stella-schedule-default_*") if "_x_" not in p.name)
    verify = subprocess.run([analyze, "verify", "--man=no", *ours], capture_output=True, text=True, cwd=units)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    for name in ("nightly", "weekly", "prune"):
        expr = (units / f"stella-schedule-default_{name}.timer").read_text().split("OnCalendar=")[1].splitlines()[0]
        cal = subprocess.run(
            [analyze, "calendar", expr], capture_output=True, text=True, env={**os.environ, "TZ": "UTC"}
        )
        assert cal.returncode == 0 and "Next elapse:" in cal.stdout, cal.stderr
    # A broken unit is caught by the same check: the test above can fail.
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.service").write_text(service)
    (bad / "x.timer").write_text(timer.replace("*-*-* 02:30:00 UTC", "30 2 * * *"))
    assert (
        subprocess.run([analyze, "verify", "--man=no", "x.timer", "x.service"], capture_output=True, cwd=bad).returncode
        != 0
    )


def test_unit_text_cannot_be_injected(stella: Stella, ready: None, tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "stella"
    units = tmp_path / "units"
    units.mkdir()
    add = ("schedule", "add", "evil", "--profile", "json:raw", "--key", "k", "--calendar", "daily 01:00")
    assert stella(*add, "--selector", "product=a\n[Service]\nExecStartPre=/bin/rm -rf /").code == 0
    res = stella("schedule", "install", "--unit-dir", units, "--stella", exe)
    assert res.code == 2 and "control character" in res.err
    assert list(units.iterdir()) == []  # refused before any unit was written
    assert stella("schedule", "remove", "evil").code == 0
    assert stella(*add, "--selector", "product=50%n$USER").code == 0
    assert stella("schedule", "install", "--unit-dir", units, "--stella", exe).code == 0
    service = (units / "stella-schedule-default_evil.service").read_text()
    assert "product=50%%n$USER" in service and service.count("[Service]") == 1  # no specifier expands in it
    assert stella("schedule", "install", "--unit-dir", tmp_path / "missing", "--stella", exe).code == 2
