"""The Import screen counts the files a directory walk passes by (documentation beside the documents), as
`stella import` does: a skipped row that says why, and "N skipped" in the summary."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from app.tui.screens.importing import ImportScreen
from core.home import Home
from tests.tui.support import SAMPLES, drive, rows, settle, text_of
from tests.tui.test_flows import open_mode, tui_home  # noqa: F401 - tui_home is a fixture


def test_a_directory_with_documentation_reports_it_skipped_as_the_cli_does(
    tui_home: Home,  # noqa: F811
    stella: Any,
    tmp_path: Path,
) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    shutil.copy(SAMPLES / "advisories" / "GO-2020-0001.json", folder)
    shutil.copy(SAMPLES / "SOURCES.md", folder)  # where the documents came from: not a document
    shown: dict[str, Any] = {}

    async def script(pilot: Pilot[None]) -> None:
        screen = await open_mode(pilot, "i")
        assert isinstance(screen, ImportScreen)
        screen.query_one("#import-paths", Input).value = str(folder)
        await pilot.press("enter")
        await settle(pilot)
        shown["rows"] = rows(screen.query_one("#import-results", DataTable))
        shown["summary"] = text_of(screen.query_one("#import-summary", Static))

    drive(tui_home, script)
    outcomes = {row[0]: row for row in shown["rows"]}
    assert sorted(outcomes) == ["imported", "skipped"]
    assert outcomes["skipped"][1].endswith("SOURCES.md") and outcomes["skipped"][3]  # the reason, not a warning
    assert not outcomes["skipped"][3].startswith("warning")
    assert shown["summary"] == f"1 imported, 0 duplicate, 0 rejected, 1 skipped into tenant default ({tui_home.root})"

    # The CLI's last line on the same folder (another tenant, so the document is new there too) reads the same.
    cli = stella("import", "--tenant", "cli", folder)
    assert cli.code == 0, cli.err
    last = cli.out.strip().splitlines()[-1]
    assert last == shown["summary"].replace("tenant default", "tenant cli")
