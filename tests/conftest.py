"""Shared test fixtures: a temporary home, an in-process CLI runner, and external tool lookup."""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import sys
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).parent.parent


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> object:
        return json.loads(self.out)

    def json_lines(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    return h


@pytest.fixture
def stella(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """Run `stella ARGS` in-process against the temporary home; returns CliResult."""
    from app import output
    from app.cli import main

    monkeypatch.setenv("STELLA_HOME", str(home))

    def run(*args: str | os.PathLike[str]) -> CliResult:
        out, err = io.StringIO(), io.StringIO()
        # rich consoles keep a reference to the original streams; point them at ours.
        output.stdout.file = out
        output.stderr.file = err
        saved_stdout = sys.stdout
        try:
            with redirect_stdout(out), redirect_stderr(err):
                buf = _BytesCapture(out)
                sys.stdout = buf  # type: ignore[assignment]
                code = main([str(a) for a in args])
        finally:
            sys.stdout = saved_stdout
            output.stdout.file = sys.stdout
            output.stderr.file = sys.stderr
        return CliResult(code, out.getvalue(), err.getvalue())

    yield run


class _BytesCapture(io.TextIOBase):
    """A text stream with a ``.buffer`` so commands that write bytes are captured too."""

    def __init__(self, target: io.StringIO) -> None:
        self._target = target
        self.buffer = self

    def write(self, s: str | bytes) -> int:  # type: ignore[override]
        text = s.decode("utf-8", "replace") if isinstance(s, bytes) else s
        return self._target.write(text)

    def flush(self) -> None:
        return None


def require_tool(name: str) -> str:
    """Path of an external tool; skip when missing locally, FAIL under CI=true (docs/architecture.md)."""
    found = shutil.which(name)
    if found:
        return found
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"interop tool {name!r} is missing in CI; scripts/test.sh should have installed it")
    pytest.skip(f"{name} not installed")
    raise AssertionError("unreachable")


def sigstore_js_verifier() -> list[str]:
    """``node tests/interop/node/verify-bundle.js`` (@sigstore/verify 4.1.3): skipped locally, FAILED under CI=true
    when node or the npm packages are missing."""
    node = require_tool("node")
    folder = ROOT / "tests" / "interop" / "node"
    if not (folder / "node_modules" / "@sigstore" / "verify").is_dir():
        message = f"@sigstore/verify is not installed in {folder}: run `npm ci --prefix tests/interop/node`"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return [node, str(folder / "verify-bundle.js")]


class NetworkUsed(AssertionError):
    """Raised by the ``no_network`` guard when code under test tries to reach the network."""


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail on any attempt to reach the network (DNS or a socket connection): a guard, not a stand-in, since
    nothing under test is replaced. Modules whose every test must work offline use it with
    ``pytestmark = pytest.mark.usefixtures("no_network")``."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise NetworkUsed(f"network access attempted: {args[1:] if len(args) > 1 else args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    yield


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the marker into the node id
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``pytest -n N --dist loadgroup`` (scripts/test.sh), the tests that share a module-scoped fixture (a
    served API, an imported home, a built kit) run on one worker, so the fixture is set up once, not once per worker;
    every other test is spread as ``--dist load`` spreads it."""
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is None:
            continue
        if any(d.scope == "module" for defs in info.name2fixturedefs.values() for d in defs):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))
