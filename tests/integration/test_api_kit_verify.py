"""``POST /api/v1/kit/verify`` against a served instance: a kit assembled by `stella kit assemble` verified over
HTTP as `stella kit verify --json` reports it, a damaged volume, refused paths, and the 401/403 of its scope."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.contract.api import SCOPE_EXPORT_READ, SCOPES
from core.home import Home
from services.tokens import create_token
from tests.conftest import ROOT
from tests.integration.test_api_verify_stream import InProcess, stella


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("api-kit")
    home = Home(base / "home")
    samples = [str(p) for p in sorted((ROOT / "samples").iterdir()) if p.is_dir()]
    for argv in (["import", "--quiet", *samples], ["keys", "generate", "signer"]):
        done = stella(home, *argv)
        assert done.returncode == 0, done.stderr
    done = stella(home, "trust", "add", "signer", str(home.keys_dir / "signer.pub"))
    assert done.returncode == 0, done.stderr
    bundles = []
    for profile, name in (("json:raw", "raw"), ("risk:bundle", "risk")):
        out = base / f"{name}.tar.zst"
        done = stella(home, "export", "run", "--profile", profile, "--key", "signer", "--out", str(out), "--json")
        assert done.returncode == 0, done.stderr
        bundles.append(str(out))
    kit = base / "kit"
    done = stella(home, "kit", "assemble", "--volume-size", "64K", "--key", "signer", "--out", str(kit), *bundles)
    assert done.returncode == 0, done.stderr
    no_read = [s for s in SCOPES if s != SCOPE_EXPORT_READ]
    tokens = {
        name: create_token(home, tenant="acme", scopes=scopes, ttl=timedelta(hours=1), subject="api-kit")[1]
        for name, scopes in (("all", list(SCOPES)), ("no-read", no_read))
    }
    server = InProcess(home, store_linger=0)
    try:
        yield {"home": home, "url": server.url, "tokens": tokens, "kit": kit, "base": base}
    finally:
        server.stop()


def verify(served: dict[str, Any], dirs: list[str], token: str = "all") -> httpx.Response:
    return httpx.post(
        f"{served['url']}/api/v1/kit/verify",
        json={"dirs": dirs},
        headers={"Authorization": f"Bearer {served['tokens'][token]}"},
        timeout=120,
    )


def test_a_kit_verifies_as_the_cli_reports_it(served: dict[str, Any]) -> None:
    kit: Path = served["kit"]
    volumes = sorted(p for p in kit.iterdir() if p.name.startswith("vol-"))
    assert len(volumes) >= 2  # the volumes are verified each alone, then together
    answer = verify(served, [str(kit)])
    assert answer.status_code == 200, answer.text
    report = answer.json()
    cli = stella(served["home"], "kit", "verify", str(kit), "--json")
    assert cli.returncode == 0, cli.stderr
    assert report == json.loads(cli.stdout)
    assert report["verified"] is True and report["exitCode"] == 0 and report["missing"] == []
    assert [v["volume"] for v in report["volumes"]] == list(range(1, len(volumes) + 1))
    assert all(c["ok"] for v in report["volumes"] for c in v["checks"])
    # One volume alone: verified, and says which volumes are still needed.
    alone = verify(served, [str(volumes[0])]).json()
    assert alone["verified"] is True and alone["missing"] == list(range(2, len(volumes) + 1))


def test_a_damaged_volume_is_a_report_with_the_cli_exit_code(served: dict[str, Any], tmp_path: Path) -> None:
    copy = tmp_path / "kit"
    shutil.copytree(served["kit"], copy)
    volume = sorted(p for p in copy.iterdir() if p.name.startswith("vol-"))[0]
    victim = max(
        (p for p in volume.rglob("*") if p.is_file() and p.stat().st_size > 1024), key=lambda p: p.stat().st_size
    )
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    answer = verify(served, [str(copy)])
    assert answer.status_code == 200, answer.text
    report = answer.json()
    cli = stella(served["home"], "kit", "verify", str(copy), "--json")
    assert report["verified"] is False and report["exitCode"] == cli.returncode == 4
    assert report == json.loads(cli.stdout)
    assert not all(c["ok"] for c in report["volumes"][0]["checks"])


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("relative/kit", "is not an absolute path"),
        ("/nonexistent-stella-kit", "no directory /nonexistent-stella-kit"),
        ("HOME/keys", "inside the server's home"),
    ],
)
def test_a_refused_path_is_a_usage_problem(served: dict[str, Any], path: str, says: str) -> None:
    path = path.replace("HOME", str(served["home"].root))
    answer = verify(served, [str(served["kit"]), path])
    assert answer.status_code == 400, answer.text
    problem = answer.json()
    assert (problem["code"], problem["exitCode"], problem["pointer"]) == ("usage", 2, "/dirs/1")
    assert says in problem["detail"]


def test_the_scope_is_export_read(served: dict[str, Any]) -> None:
    url = f"{served['url']}/api/v1/kit/verify"
    assert httpx.post(url, json={"dirs": [str(served["kit"])]}, timeout=30).status_code == 401
    refused = verify(served, [str(served["kit"])], token="no-read")
    assert refused.status_code == 403 and refused.json()["scope"] == SCOPE_EXPORT_READ
