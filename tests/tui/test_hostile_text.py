"""A feed cannot style or steer the TUI: console markup, escapes, newlines and bidi overrides in an imported file's
name, id and summary show as written (control characters written out) on the Import and Data screens and in the
document view, as the CLI prints them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Label, Select, Static

from app.tui.screens.data import DataScreen
from app.tui.screens.importing import PATH_WIDTH, ImportScreen, tail
from app.tui.screens.modals import TextModal
from core.home import Home, resolve_home
from tests.tui.support import SAMPLES, drive, settle

IDENT = "GO-2099-[reverse]\x1b[2J0001"
SUMMARY = "[link=https://evil.example][blink]click\x1b]0;pwned\x07\u202eexe.txt\nimported  clean.json"
NAME = "a[bold]\x1b[31mb.json"


@pytest.fixture
def tui_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    monkeypatch.setenv("STELLA_HOME", str(home))
    return resolve_home(home)


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    doc = json.loads((SAMPLES / "advisories" / "GO-2020-0001.json").read_bytes())
    doc.update(id=IDENT, aliases=[], summary=SUMMARY)
    path = tmp_path / NAME
    path.write_text(json.dumps(doc))
    return path


def _cells(table: DataTable[Any], row: int) -> list[Text]:
    found = table.get_row_at(row)
    assert all(isinstance(c, Text) for c in found)  # never a str, which a DataTable reads as markup
    return list(found)


def _tame(text: Text) -> None:
    assert not text.spans and not text.style, text.spans  # no style came from the data
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or 0x202A <= ord(c) <= 0x202E for c in text.plain)


def test_import_and_data_screens_show_hostile_fields_as_written(tui_home: Home, hostile: Path) -> None:
    async def script(pilot: Pilot[None]) -> None:
        await pilot.press("i")
        await settle(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, ImportScreen)
        screen.query_one("#import-paths", Input).value = f"'{hostile}'"
        await pilot.press("enter")
        await settle(pilot)
        outcome, path, _, _ = _cells(screen.query_one("#import-results", DataTable), 0)
        assert outcome.plain == "imported"
        _tame(path)
        assert path.plain.endswith("a[bold]\\x1b[31mb.json")

        await pilot.press("escape", "b")
        await settle(pilot)
        data = pilot.app.screen
        assert isinstance(data, DataScreen)
        data.query_one("#data-kind", Select).value = "advisories"
        await settle(pilot)
        table = data.query_one("#data-table", DataTable)
        row = _cells(table, 0)
        for cell in row:
            _tame(cell)
        assert row[0].plain == "GO-2099-[reverse]\\x1b[2J0001"
        assert row[-1].plain.startswith("[link=https://evil.example][blink]click\\x1b]0;pw")  # cut at 45

        table.focus()
        await pilot.press("enter")
        await settle(pilot)
        modal = pilot.app.screen
        assert isinstance(modal, TextModal)
        title = modal.query_one("#text-title", Label).render()
        body = modal.query_one("#text-body", Static).render()
        assert str(title) == "GO-2099-[reverse]\\x1b[2J0001 in tenant default"  # markup as written, one line
        assert "\x1b" not in str(body) and "\u202e" not in str(body)
        assert '"summary": "[link=https://evil.example][blink]click\\u001b]0;pwned\\u0007\\u202eexe.txt\\n' in str(body)

    drive(tui_home, script)


def test_the_import_screen_opens_a_hostile_result_on_one_line_per_field(tui_home: Home, tmp_path: Path) -> None:
    bad = tmp_path / "x\nimported  clean.json"
    bad.write_text("{")

    async def script(pilot: Pilot[None]) -> None:
        await pilot.press("i")
        await settle(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, ImportScreen)
        screen.query_one("#import-paths", Input).value = f"'{bad}'"
        await pilot.press("enter")
        await settle(pilot)
        table = screen.query_one("#import-results", DataTable)
        table.focus()
        await pilot.press("enter")
        await settle(pilot)
        modal = pilot.app.screen
        assert isinstance(modal, TextModal)
        body = str(modal.query_one("#text-body", Static).render())
        assert not any(line.startswith("imported") for line in body.splitlines())
        assert "x\\nimported  clean.json" in str(modal.query_one("#text-title", Label).render())

    drive(tui_home, script)


def test_samples_still_read_the_same(tui_home: Home) -> None:
    """Ordinary data is untouched: the sample's id and path show exactly as they are."""
    sample = SAMPLES / "advisories" / "GO-2020-0001.json"

    async def script(pilot: Pilot[None]) -> None:
        await pilot.press("i")
        await settle(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, ImportScreen)
        screen.query_one("#import-paths", Input).value = str(sample)
        await pilot.press("enter")
        await settle(pilot)
        assert [c.plain for c in _cells(screen.query_one("#import-results", DataTable), 0)][:3] == [
            "imported",
            tail(str(sample), PATH_WIDTH),  # a long path is cut from the left at 80 columns; its end is as written
            "osv",
        ]

    drive(tui_home, script)
