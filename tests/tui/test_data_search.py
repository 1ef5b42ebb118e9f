"""The Data screen searches the whole tenant: a word typed in the filter finds records on any page, not only the
page shown, as `stella data list KIND --search TEXT` does."""

from __future__ import annotations

from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Select, Static

from app.tui.screens.data import PAGE, DataScreen
from app.tui.screens.modals import TextModal
from core.home import Home
from core.query import ListKind, count_rows
from core.store import Store
from tests.tui.support import drive, rows, settle, text_of
from tests.tui.test_flows import filled_home, open_mode, tui_home  # noqa: F401 - fixtures


def _count(home: Home, kind: ListKind, search: str | None = None) -> int:
    with Store.open(home, read_only=True) as store:
        return count_rows(store, kind, "default", search=search)


async def _search(pilot: Pilot[None], screen: DataScreen, text: str) -> None:
    screen.query_one("#data-filter", Input).value = ""
    await pilot.press("slash", *text, "enter")
    await settle(pilot)


def test_a_search_finds_a_kev_entry_beyond_the_first_page_and_opens_it(filled_home: Home) -> None:  # noqa: F811
    kev = _count(filled_home, ListKind.KEV)
    microsoft = _count(filled_home, ListKind.KEV, "microsoft")
    assert kev > PAGE and microsoft > PAGE

    async def script(pilot: Pilot[None]) -> None:
        screen = await open_mode(pilot, "b")
        assert isinstance(screen, DataScreen)
        screen.query_one("#data-kind", Select).value = "kev"
        await settle(pilot)
        table = screen.query_one("#data-table", DataTable)
        summary = screen.query_one("#data-summary", Static)
        assert text_of(summary) == f"  kev 1-{PAGE} of {kev}"
        assert not any("Log4j" in " ".join(row) for row in rows(table))  # not on the first page

        # Upper case finds the product "Log4j2" anywhere in the catalog; the table holds the search's rows.
        await _search(pilot, screen, "LOG4J")
        found = rows(table)
        assert [r[0] for r in found] == ["CVE-2021-44228", "CVE-2021-45046"]
        assert all(r[2] == "Log4j2" for r in found)
        assert text_of(summary) == "  kev 1-2 of 2 matching 'LOG4J'"
        assert screen.focused is table
        await pilot.press("down", "enter")
        await settle(pilot)
        modal = pilot.app.screen
        assert isinstance(modal, TextModal)
        assert modal.title_text == f"{screen.rows[1]['document_sha256']} in tenant default"
        assert "kev_entries: " in modal.text and "CVE-2021-45046" in modal.text  # the catalog that lists it
        await pilot.press("escape")
        await settle(pilot)

        # Many matches: a page at a time, the search kept while paging.
        await _search(pilot, screen, "microsoft")
        assert text_of(summary) == f"  kev 1-{PAGE} of {microsoft} matching 'microsoft'"
        assert all(r[1] == "Microsoft" for r in rows(table))
        await pilot.press("right_square_bracket")
        await settle(pilot)
        assert text_of(summary) == f"  kev {PAGE + 1}-{min(2 * PAGE, microsoft)} of {microsoft} matching 'microsoft'"

        # Enter with the filter empty lists everything again.
        await _search(pilot, screen, "")
        assert text_of(summary) == f"  kev 1-{PAGE} of {kev}"

    drive(filled_home, script)


def test_a_single_match_opens_and_the_search_follows_the_kind(filled_home: Home) -> None:  # noqa: F811
    async def script(pilot: Pilot[None]) -> None:
        screen = await open_mode(pilot, "b")
        assert isinstance(screen, DataScreen)
        screen.query_one("#data-kind", Select).value = "advisories"
        await settle(pilot)
        # "log4j" is in one advisory's summary (a CVE record), not in its id: it opens at once.
        await _search(pilot, screen, "log4j")
        modal = pilot.app.screen
        assert isinstance(modal, TextModal)
        assert modal.title_text == "CVE-2021-44228 in tenant default"
        await pilot.press("escape")
        await settle(pilot)
        summary = screen.query_one("#data-summary", Static)
        assert text_of(summary) == "  advisories 1-1 of 1 matching 'log4j'"
        # Another kind, the same search: the KEV entries.
        screen.query_one("#data-kind", Select).value = "kev"
        await settle(pilot)
        assert text_of(summary) == "  kev 1-2 of 2 matching 'log4j'"
        # Nothing matches: the summary says so and the text is looked up as `stella data show` does.
        screen.query_one("#data-kind", Select).value = "advisories"
        await settle(pilot)
        await _search(pilot, screen, "no-such-thing")
        assert text_of(summary) == "  no advisories matching 'no-such-thing' in tenant default"
        error = pilot.app.screen
        assert "nothing in tenant 'default' matches 'no-such-thing'" in " ".join(
            str(getattr(error, "sentence", "")).split()
        )
        await pilot.press("escape")
        await settle(pilot)
        assert pilot.app.screen is screen

    drive(filled_home, script)
