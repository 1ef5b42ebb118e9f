"""FastAPI, Starlette and uvicorn are loaded by `stella serve` only: `stella --help` and `stella serve --help` do not
pay for them, and nothing but the server imports the API package."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.test_startup_imports import loaded_by

SERVER = {"fastapi", "starlette", "uvicorn", "pydantic"}


@pytest.mark.parametrize("args", [["--help"], ["serve", "--help"], ["token", "list"]])
def test_start_up_loads_no_server(tmp_path: Path, args: list[str]) -> None:
    loaded = loaded_by(tmp_path, "--home", tmp_path / "home", *args)
    assert loaded["code"] == 0
    assert not SERVER & set(loaded["third_party"]), loaded["third_party"]
    assert not [m for m in loaded["project"] if m.startswith("app.api")]
