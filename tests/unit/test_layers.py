"""The layer rule: only app imports textual/rich; verify never imports adapters or app."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "modules",
    [
        ["core", "core.store", "core.ingest", "core.keys", "core.query", "core.inputs"],
        ["adapters", "adapters.sources.registry"],
        ["verify"],
    ],
)
def test_importing_lower_layers_leaves_textual_and_rich_unloaded(modules: list[str]) -> None:
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich', 'app'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"{modules} pulled in: {out.stdout.strip()}"


def test_verify_does_not_load_adapters() -> None:
    code = "import verify, sys; print(any(m.startswith('adapters') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_stella_verify_does_not_load_the_store_or_the_adapters() -> None:
    code = (
        "import sys\n"
        "from app.cli import main\n"
        "main(['verify', '/nonexistent.tar.zst', '--key', '/nonexistent.pub'])\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'duckdb', 'pyarrow', 'adapters', 'jsonschema_rs'})\n"
        "print('loaded:' + ','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "loaded:"
