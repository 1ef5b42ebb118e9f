"""`stella serve` fires due schedules itself, as `stella schedule run-due` does, in its one build worker."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from tests.integration.test_api import SAMPLES, Server, cli, mint


def _runs(server: Server, token: str) -> list[dict[str, Any]]:
    got = httpx.get(f"{server.url}/api/v1/export/runs", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert got.status_code == 200, got.text
    runs: list[dict[str, Any]] = got.json()["runs"]
    return runs


def test_the_server_fires_a_due_schedule_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert cli(home, "keys", "generate", "k").returncode == 0
    added = cli(home, "schedule", "add", "raw", "--profile", "json:raw", "--key", "k", "--after-import", "advisory")
    assert added.returncode == 0, added.stderr
    # An advisory imported after the schedule was added makes it due.
    assert cli(home, "import", "--quiet", str(SAMPLES / "advisories")).returncode == 0
    token = mint(home, "default", "export:read")
    server = Server(home, args=("--schedule-interval", "0.5"))
    try:
        deadline = time.monotonic() + 90
        while not (runs := _runs(server, token)) or runs[0]["status"] not in ("succeeded", "failed"):
            assert time.monotonic() < deadline, runs
            time.sleep(0.3)
        assert [r["status"] for r in runs] == ["succeeded"], runs
        time.sleep(2)  # several more ticks: the slot is spent, nothing fires again
        assert len(_runs(server, token)) == 1
    finally:
        server.stop()
    assert "schedule raw fired" in server.stderr_path.read_text()
    shown = cli(home, "export", "runs", "--json")
    assert shown.returncode == 0, shown.stderr


def test_an_interval_of_zero_fires_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert cli(home, "keys", "generate", "k").returncode == 0
    added = cli(home, "schedule", "add", "raw", "--profile", "json:raw", "--key", "k", "--after-import", "advisory")
    assert added.returncode == 0, added.stderr
    assert cli(home, "import", "--quiet", str(SAMPLES / "advisories")).returncode == 0
    token = mint(home, "default", "export:read")
    server = Server(home, args=("--schedule-interval", "0"))
    try:
        time.sleep(2)
        assert _runs(server, token) == []
    finally:
        server.stop()
    # The schedule is still due: run-due fires it.
    fired = cli(home, "schedule", "run-due", "--json")
    assert fired.returncode == 0, fired.stderr
    assert '"succeeded"' in fired.stdout
