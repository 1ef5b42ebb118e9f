"""No screen traps the user: on every screen, each key the footer shows, then escape, leaves the app responsive
and back on that screen; every error modal closes with escape; an invalid field does not re-raise on close."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.binding import BindingsMap
from textual.pilot import Pilot
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input

from app.tui.app import StellaApp
from app.tui.navigation import SCREENS_HELP
from app.tui.screens.base import StellaScreen
from app.tui.screens.data import DataScreen
from app.tui.screens.forms import ConfirmModal, Field, FormModal
from app.tui.screens.modals import ErrorModal, HelpScreen, TextModal
from core.home import Home, resolve_home
from core.keys import KeyAlgorithm, KeyStore
from tests.tui.support import drive, import_samples, settle


@pytest.fixture
def tui_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    monkeypatch.setenv("STELLA_HOME", str(home))
    return resolve_home(home)


@pytest.fixture
def filled_home(tui_home: Home) -> Home:
    assert import_samples(tui_home)["default"]["raw_documents"] > 5
    KeyStore(tui_home.ensure()).generate("k", KeyAlgorithm.ED25519)
    return tui_home


#: Keys with a name that type a character into a text field.
PRINTABLE = {"left_square_bracket", "right_square_bracket", "slash", "question_mark", "space", "delete"}


def footer_keys(pilot: Pilot[None]) -> list[str]:
    """The keys the footer advertises on the current screen, whatever has the focus (quit excepted: it ends the
    app, as it says; screen switches excepted: the walk itself presses those)."""
    screen = pilot.app.screen
    keys = []
    for bindings in (BindingsMap(type(screen).BINDINGS), BindingsMap(StellaApp.BINDINGS)):
        for key, found in bindings.key_to_bindings.items():
            binding = found[0]
            if binding.show and binding.action != "quit" and "show(" not in binding.action and key not in keys:
                keys.append(key)
    return keys


async def back_to(pilot: Pilot[None], screen: object) -> None:
    """Escape until ``screen`` is on top again (a modal, a form or a text field may be in the way)."""
    for _ in range(4):
        if pilot.app.screen is screen and not isinstance(pilot.app.focused, Input):
            return
        await pilot.press("escape")
        await settle(pilot)
    assert pilot.app.screen is screen, f"escape did not lead back to {screen!r}: {pilot.app.screen!r} is on top"


def test_every_screen_footer_keys_then_escape_never_trap(filled_home: Home) -> None:
    async def script(pilot: Pilot[None]) -> None:
        for mode, (nav_key, title, _) in SCREENS_HELP.items():
            # From the dashboard: a screen's own letters may shadow a screen key (`e` edits on Profiles).
            await pilot.press("d")
            await settle(pilot)
            assert pilot.app.current_mode == "dashboard", title
            await pilot.press(nav_key)
            await settle(pilot)
            screen = pilot.app.screen
            assert isinstance(screen, StellaScreen), (title, screen)
            keys = footer_keys(pilot)
            own = BindingsMap(type(screen).BINDINGS).key_to_bindings
            if any(len(key) == 1 or key in PRINTABLE for key in keys if key in own):
                # A letter the footer advertises must not type into a field that has the focus on arrival.
                assert not isinstance(pilot.app.focused, Input), f"{title}: a text field has the focus on arrival"
            for key in keys:
                await pilot.press(key)
                await settle(pilot)
                await back_to(pilot, screen)
            assert pilot.app.current_mode == mode
        # Still responsive: the dashboard key works from wherever the walk ended.
        await pilot.press("d")
        await settle(pilot)
        assert pilot.app.current_mode == "dashboard"

    drive(filled_home, script)


def test_data_screen_letters_act_and_an_invalid_tenant_never_comes_back(filled_home: Home) -> None:
    """The issue's report: on arrival `/`, `]`, `d`, `h` typed into the tenant field and its error came back on every
    key. Now the table has the focus, `t` reaches the tenant field, and the error closes for good with escape."""

    async def script(pilot: Pilot[None]) -> None:
        await pilot.press("b")
        await settle(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, DataScreen)
        assert isinstance(pilot.app.focused, DataTable)
        tenant = screen.query_one("#data-tenant", Input)
        await pilot.press("right_square_bracket", "s")
        await settle(pilot)
        assert tenant.value == "default"
        await pilot.press("escape")  # closes the stats text
        await settle(pilot)
        await pilot.press("t")
        assert pilot.app.screen.focused is tenant
        tenant.value = "/"
        await pilot.press("enter")
        await settle(pilot)
        error = pilot.app.screen
        assert isinstance(error, ErrorModal)
        assert "invalid tenant '/'" in error.sentence
        await pilot.press("escape")
        await settle(pilot)
        assert pilot.app.screen is screen, "the error came back after escape"
        assert tenant.value == "default", "the invalid tenant stayed in the field"
        for key in ("enter", "tab", "enter", "escape"):
            await pilot.press(key)
            await settle(pilot)
            assert not isinstance(pilot.app.screen, ErrorModal), f"the error came back after {key}"
        await pilot.press("escape", "h")
        await settle(pilot)
        assert pilot.app.current_mode == "runs"

    drive(filled_home, script)


def modal_classes() -> set[type[ModalScreen[object]]]:
    """Every dialog class of the TUI, found in its modules (a new one is tested without being listed here)."""
    import app.tui.screens as package

    found: set[type[ModalScreen[object]]] = set()
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"app.tui.screens.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, ModalScreen) and cls.__module__ == module.__name__:
                found.add(cls)
    return found


def test_every_dialog_closes_with_escape(tui_home: Home) -> None:
    examples: dict[type[ModalScreen[Any]], Callable[[], ModalScreen[Any]]] = {
        ErrorModal: lambda: ErrorModal("error (bad_input, exit 3)", "invalid tenant '/'"),
        HelpScreen: HelpScreen,
        TextModal: lambda: TextModal("a document", "{}"),
        FormModal: lambda: FormModal("Generate", [Field("name", "name")], "Generate"),
        ConfirmModal: lambda: ConfirmModal("Roll back?", "Roll back"),
    }
    assert modal_classes() == set(examples), "a dialog class without an example here"

    async def script(pilot: Pilot[None]) -> None:
        dashboard = pilot.app.screen
        for make in examples.values():
            dialog = make()
            await pilot.app.push_screen(dialog)
            await settle(pilot)
            assert pilot.app.screen is dialog
            await pilot.press("escape")
            await settle(pilot)
            assert pilot.app.screen is dashboard, f"{type(dialog).__name__} did not close with escape"

    drive(tui_home, script)


def test_data_filter_narrows_the_page_and_a_record_reads_as_fields_then_json(filled_home: Home) -> None:
    async def script(pilot: Pilot[None]) -> None:
        await pilot.press("b")
        await settle(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, DataScreen)
        table = screen.query_one("#data-table", DataTable)
        everything = table.row_count
        formats = {str(table.get_row_at(i)[table.get_column_index("format")]) for i in range(everything)}
        assert len(formats) > 1
        wanted = sorted(formats)[0]
        await pilot.press("slash")
        assert screen.focused is screen.query_one("#data-filter", Input)
        await pilot.press(*wanted)
        await settle(pilot)
        assert 0 < table.row_count < everything
        column = table.get_column_index("format")
        assert all(wanted in str(table.get_row_at(i)[column]) for i in range(table.row_count))
        assert f"match '{wanted}'" in str(screen.query_one("#data-summary").render())
        await pilot.press("escape")
        await pilot.press("o")
        await settle(pilot)
        shown = pilot.app.screen
        assert isinstance(shown, TextModal)
        first, _, rest = shown.text.partition("\n")
        assert first.startswith("sha256 ")  # the fields first, one a line
        assert f"format {wanted}" in " ".join(shown.text.split()) and "\nJSON (stella data show --json)\n{" in rest
        await pilot.press("escape")
        await settle(pilot)
        # Enter in the filter with nothing matching on the page looks the text up as `data show` does: an alias.
        advisory = "CVE-2020-36567"
        filt = screen.query_one("#data-filter", Input)
        filt.value = ""
        await pilot.press("slash", *advisory, "enter")
        await settle(pilot)
        found = pilot.app.screen
        assert isinstance(found, TextModal), found
        assert found.title_text == f"{advisory} in tenant default"
        assert "advisories: " in found.text and "GHSA-6vm3-jj99-7229" in found.text

    drive(filled_home, script)
