"""What an operator saw cut or wrong at 80x24: the Import results' columns, the Verify checks after a failed
attempt and a cut detail, a directory that is not a mirror, and identifiers never wrapped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Select, Static
from textual.widgets.data_table import ColumnKey

from app.tui.screens.importing import ImportScreen
from app.tui.screens.mirror import MirrorScreen
from app.tui.screens.modals import ErrorModal, TextModal
from app.tui.screens.verify import VerifyScreen
from core.home import Home, resolve_home
from core.keys import KeyAlgorithm, KeyStore
from core.planner import plan_run
from core.profiles import ProfileStore
from core.selectors import parse_selectors
from core.store import Store
from core.tuf_repo import TOP_LEVEL_ROLES
from services.tuf import init_tuf
from tests.tui.support import SAMPLES, drive, import_samples, settle, text_of


@pytest.fixture
def tui_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    monkeypatch.setenv("STELLA_HOME", str(home))
    return resolve_home(home)


def column_starts(table: DataTable[Any]) -> dict[str, int]:
    """Where each column starts on screen (cell padding included)."""
    out, x = {}, 0
    for key, column in table.columns.items():
        out[str(key.value)] = x
        x += column.get_render_width(table)
    return out


def test_import_results_show_format_and_reason_at_80_columns(tui_home: Home, tmp_path: Path) -> None:
    deep = tmp_path / "a-rather-long-directory-name" / "of-received-feeds"
    deep.mkdir(parents=True)
    (deep / "broken-advisory.json").write_text('{"id": "GHSA-0000-0000-0000",')
    (deep / "osv.json").write_bytes(next((SAMPLES / "advisories").glob("*.json")).read_bytes())

    async def script(pilot: Pilot[None]) -> None:
        await pilot.press("i")
        await settle(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, ImportScreen)
        screen.query_one("#import-paths", Input).value = str(deep)
        await pilot.press("ctrl+r")
        await settle(pilot, 0.2)
        table = screen.query_one("#import-results", DataTable)
        assert table.row_count == 2
        starts = column_starts(table)
        assert starts["reason"] < 80 - 10, starts  # the reason's first words are on screen
        cells = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        rejected = [row for row in cells if row[0] == "rejected"]
        assert rejected and all(row[3] for row in rejected)
        assert rejected[0][1].endswith("broken-advisory.json")  # a long path keeps its file name
        assert all(row[2] for row in cells if row[0] == "imported")

    drive(tui_home, script)


def test_verify_columns_start_afresh_and_enter_shows_a_whole_detail(tui_home: Home, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.tar.zst"
    garbage.write_bytes(b"this is not a bundle\n" * 50)

    async def script(pilot: Pilot[None]) -> None:
        await pilot.press("v")
        await settle(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, VerifyScreen)
        table = screen.query_one("#verify-checks", DataTable)
        fresh = [(str(c.label), c.content_width) for c in table.columns.values()]
        screen.query_one("#verify-bundle", Input).value = str(garbage)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(pilot.app.screen, ErrorModal)
        await pilot.press("escape")
        await settle(pilot)
        failed = table.row_count
        assert failed >= 1
        # A second attempt: the table starts from new, empty columns, not the old widths.
        screen.query_one("#verify-bundle", Input).value = str(tmp_path / "nope.tar.zst")
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)
        assert table.row_count == 0
        assert [(str(c.label), c.content_width) for c in table.columns.values()] == fresh
        # Enter on a check shows its detail whole.
        screen.query_one("#verify-bundle", Input).value = str(garbage)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)
        table.focus()
        table.move_cursor(row=table.row_count - 1)
        await pilot.press("enter")
        await settle(pilot)
        shown = pilot.app.screen
        assert isinstance(shown, TextModal)
        assert shown.title_text.startswith("FAIL: ")
        assert shown.text == str(table.get_row_at(table.row_count - 1)[2])

    drive(tui_home, script)


@pytest.mark.parametrize(
    ("content", "said"),
    [("file", "not a mirror directory"), ("nothing", "empty mirror (no import yet)"), ("layout", "empty mirror")],
)
def test_mirror_screen_tells_a_mirror_from_any_directory(
    tui_home: Home, tmp_path: Path, content: str, said: str
) -> None:
    where = tmp_path / "somewhere"
    where.mkdir()
    if content == "file":
        (where / "notes.txt").write_text("not a mirror\n")
    elif content == "layout":
        (where / "receipts").mkdir()

    async def script(pilot: Pilot[None]) -> None:
        await pilot.press("m")
        await settle(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, MirrorScreen)
        screen.query_one("#mirror-dir", Input).value = str(where)
        await pilot.press("enter")
        await settle(pilot)
        state = text_of(screen.query_one("#mirror-state", Static))
        assert said in state
        assert ("not a mirror" in state) == (content == "file")

    drive(tui_home, script)


def test_identifiers_are_never_wrapped_in_tables(tui_home: Home, tmp_path: Path) -> None:
    """At 80 columns a run id, a profile id and an advisory id stay whole on one line in their tables."""
    assert import_samples(tui_home)["default"]["raw_documents"] > 5
    KeyStore(tui_home.ensure()).generate("k", KeyAlgorithm.ED25519)
    with Store.open(tui_home) as store:
        profile = ProfileStore(store).get("default", "attestation:bundle")
        run = plan_run(store, "default", profile, parse_selectors([]), key_name="k", out_path=tmp_path / "a.tar.zst")

    async def script(pilot: Pilot[None]) -> None:
        table = pilot.app.screen.query_one("#dash-runs", DataTable)
        assert table.row_count == 1
        for column, value in (("run", run.run_id), ("profile", "attestation:bundle@1")):
            assert str(table.get_cell(run.run_id, column)) == value
            assert table.columns[ColumnKey(column)].get_render_width(table) >= len(value) + 2
        await pilot.press("b")
        await settle(pilot)
        data = pilot.app.screen.query_one("#data-table", DataTable)
        data.focus()
        screen = pilot.app.screen
        kind = screen.query_one("#data-kind", Select)
        kind.value = "advisories"
        await settle(pilot)
        ids = [str(c) for c in data.get_column(ColumnKey("advisory_id"))]
        assert any(i.startswith("GHSA-") for i in ids)
        width = data.columns[ColumnKey("advisory_id")].get_render_width(data)
        assert width >= max(len(i) for i in ids) + 2
        assert all(data.rows[key].height == 1 for key in data.rows)

    drive(tui_home, script)


def test_keys_screen_labels_tuf_key_ids_apart_from_the_key_id(tui_home: Home) -> None:
    """A key has a stella key id (the signing and trusted tables) and a TUF key id (TUF's own hash of it): the TUF
    table names its column so the two are not read as one key with two ids."""
    KeyStore(tui_home.ensure()).generate("k", KeyAlgorithm.ED25519)
    init_tuf(tui_home, {role: ("k",) for role in TOP_LEVEL_ROLES})

    async def script(pilot: Pilot[None]) -> None:
        await pilot.press("k")
        await settle(pilot)
        screen = pilot.app.screen
        signing = [str(c.label) for c in screen.query_one("#keys-signing", DataTable).columns.values()]
        tuf = [str(c.label) for c in screen.query_one("#keys-tuf", DataTable).columns.values()]
        assert "key id" in signing and "key id" not in tuf and "key ids" not in tuf
        assert "TUF key ids" in tuf

    drive(tui_home, script)
