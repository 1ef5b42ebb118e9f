"""`stella serve --distribute-dir DIR`: the API copies bundles into DIR (and below it) only; a directory elsewhere is
refused before anything is written, and a --distribute-dir that is not a directory stops the server from starting."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.integration.test_api import SAMPLES, Server, cli, mint


def test_serve_confines_api_distributions_to_the_given_directories(tmp_path: Path) -> None:
    home = tmp_path / "home"
    samples = [str(p) for p in sorted(SAMPLES.iterdir()) if p.is_dir()]
    assert cli(home, "import", "--quiet", "--tenant", "acme", *samples).returncode == 0
    assert cli(home, "keys", "generate", "k").returncode == 0
    built = cli(home, "export", "run", "--tenant", "acme", "--profile", "json:raw", "--key", "k", "--json")
    assert built.returncode == 0, built.stderr
    run_id = json.loads(built.stdout)["runId"]
    allowed, outside = tmp_path / "media", tmp_path / "elsewhere"
    (allowed / "kit").mkdir(parents=True)
    outside.mkdir()
    server = Server(home, args=("--distribute-dir", str(allowed)))
    try:
        headers = {"Authorization": f"Bearer {mint(home, 'acme', 'export:run', 'export:read')}"}
        url = f"{server.url}/api/v1/export/runs/{run_id}/distributions"
        refused = httpx.post(url, json={"to": str(outside)}, headers=headers, timeout=60)
        assert refused.status_code == 400, refused.text
        assert "outside the directories this server distributes to" in refused.json()["detail"]
        assert list(outside.iterdir()) == []
        copied = httpx.post(url, json={"to": str(allowed / "kit")}, headers=headers, timeout=60)
        assert copied.status_code == 201, copied.text
        target = Path(copied.json()["distribution"]["target"])
        assert target.parent == allowed / "kit" and target.is_file()
    finally:
        server.stop()


def test_serve_refuses_a_distribute_dir_that_is_not_a_directory(tmp_path: Path) -> None:
    done = cli(tmp_path / "home", "serve", "--port", "0", "--distribute-dir", str(tmp_path / "missing"))
    assert done.returncode == 8
    assert "--distribute-dir is not a directory" in done.stderr and "missing" in done.stderr
