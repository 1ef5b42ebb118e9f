"""--home and --json work before the command name as well as after it."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.cli import main


def test_home_before_the_command_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_home, given = tmp_path / "env", tmp_path / "given"
    monkeypatch.setenv("STELLA_HOME", str(env_home))
    assert main(["--home", str(given), "keys", "generate", "before"]) == 0
    assert main(["keys", "generate", "after", "--home", str(given)]) == 0
    assert sorted(p.name for p in (given / "keys").glob("*.pub")) == ["after.pub", "before.pub"]
    assert not (env_home / "keys").exists()


def test_json_before_the_command_is_kept(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--json", "--home", str(tmp_path), "keys", "list"]) == 0
    assert capsys.readouterr().out.lstrip().startswith("{")
