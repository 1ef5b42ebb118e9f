"""A served API instance for the contract tests: uvicorn on a loopback port, over a fresh home with tokens."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from core.contract.api import SCOPES
from core.home import Home
from services.tokens import create_token
from tests.conftest import ROOT

SERVE = (
    "import sys, uvicorn\n"
    "from pathlib import Path\n"
    "from app.api.server import create_app\n"
    "from core.home import Home\n"
    "app = create_app(Home(Path(sys.argv[1])), distribute_dirs=[Path(sys.argv[3])])\n"
    "uvicorn.run(app, host='127.0.0.1', port=int(sys.argv[2]), log_level='warning', http='h11')\n"
)


#: The tenant the samples are imported into (the default one) and the signing key runs use.
TENANT = "default"
SIGNING_KEY = "api-key"


@dataclass(frozen=True)
class Served:
    """A running server: its base URL, its home, and tokens of two tenants."""

    base_url: str
    home: Home
    token: str  # tenant TENANT, every scope
    other_token: str  # tenant "globex", every scope
    distribute_dir: Path  # the only directory (a temporary one) the server copies bundles into


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = Home(tmp_path_factory.mktemp("served") / "home")
    stella = [sys.executable, "-m", "app.cli", "--home", str(home.root)]
    samples = sorted(str(p) for p in (ROOT / "samples").iterdir() if p.is_dir())
    for argv in (["import", "--quiet", *samples], ["keys", "generate", SIGNING_KEY]):
        subprocess.run([*stella, *argv], cwd=ROOT, check=True, capture_output=True, timeout=300)
    _, token = create_token(home, tenant=TENANT, scopes=SCOPES, ttl=timedelta(hours=1), subject="contract-tests")
    _, other = create_token(home, tenant="globex", scopes=SCOPES, ttl=timedelta(hours=1), subject="contract-tests")
    port = _free_port()
    distribute_dir = home.root.parent / "distributions"
    distribute_dir.mkdir()
    log = (home.root.parent / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(home.root), str(port), str(distribute_dir)],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "STELLA_HOME": str(home.root)},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the API server did not start: " + (home.root.parent / "server.log").read_text())
            time.sleep(0.2)
        yield Served(base, home, token, other, distribute_dir)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
