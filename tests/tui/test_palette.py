"""The command palette lists every action by name, and each opens the screen and the form that does it."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Footer, Input, Label
from textual.widgets._footer import FooterKey

from app.tui.app import StellaApp
from app.tui.navigation import ACTIONS, SCREENS_HELP
from app.tui.screens.forms import ConfirmModal, FormModal
from app.tui.screens.modals import ErrorModal, TextModal
from app.tui.screens.runs import RunsScreen
from core.home import Home, resolve_home
from core.keys import KeyAlgorithm, KeyStore
from core.planner import plan_run
from core.profiles import ProfileStore
from core.selectors import parse_selectors
from core.store import Store
from core.trust import TrustStore
from core.tuf_repo import TOP_LEVEL_ROLES
from services.tuf import init_tuf
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


#: What each action shows in a home with data and one key (no runs, no TUF repository, nothing verified yet): a
#: dialog, or the field it puts the focus in; None: the screen alone (it says why there is nothing to do).
EXPECTED: dict[str, type[object] | str | None] = {
    "Import files, directories or archives": "import-paths",
    "Browse data: filter or find a record by id": "data-filter",
    "Store counts": TextModal,
    "New export profile": FormModal,
    "Edit the highlighted export profile": FormModal,
    "Export: run a profile (wizard)": "wiz-profiles",
    "Show the highlighted run's parameters": None,
    "Cancel the highlighted export run": None,
    "Verify a bundle": "verify-bundle",
    "Import or install a verified bundle": None,
    "Import a mirror bundle": "verify-bundle",
    "Install a Trivy DB": "verify-bundle",
    "Import a risk bundle (KEV/EPSS)": "verify-bundle",
    "Import an attestation bundle": "verify-bundle",
    "Mirror status": "mirror-dir",
    "Verify a mirror directory": "mirror-dir",
    "Roll back a mirror": "mirror-dir",
    "Query a mirror": "mirror-query",
    "Generate a signing key": FormModal,
    "Export the highlighted public key": FormModal,
    "Import a signing key from a PEM file": FormModal,
    "Rename the highlighted signing key": FormModal,
    "Delete the highlighted signing key": ConfirmModal,
    "Trust a receipt key (receipts only)": FormModal,
    "Trust a public key": FormModal,
    "Stop trusting the highlighted key": None,
    "Create the TUF repository": FormModal,
    "Change a TUF role's expiry": None,
    "Rotate a TUF role's keys": None,
    "Assemble an Offline Kit": "kit-runs",
    "Verify an Offline Kit volume": "kit-volume",
    "Verify the highlighted evidence bundle": None,  # the locker is empty: the screen says there is nothing to act on
    "Place a legal hold on the highlighted evidence": None,
    "Release a legal hold on the highlighted evidence": None,
    "Export the highlighted evidence bundle": None,
    "Filter the timeline": "timeline-filter",
    "Build a bootstrap pack": "boot-spec",
    "List a bootstrap pack (verified)": "boot-pack",
    "Push a bootstrap pack to a registry": "boot-registry",
}


def test_the_palette_lists_every_action_and_each_opens_its_screen(filled_home: Home) -> None:
    assert {a.title for a in ACTIONS} == set(EXPECTED)
    for words in (
        "rotate",
        "rollback",
        "roll back",
        "generate",
        "trivy",
        "import",
        "export",
        "verify",
        "trust",
        "kit",
        "hold",
    ):
        assert any(words in f"{a.title} {a.command}".lower() for a in ACTIONS), words

    async def script(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, StellaApp)
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        for action in ACTIONS:
            app.call_later(commands[action.title].callback)  # as the palette runs a command
            await settle(pilot)
            assert app.current_mode == action.mode, action.title
            expected = EXPECTED[action.title]
            if isinstance(expected, type):
                assert isinstance(app.screen, expected), (action.title, app.screen)
                assert not isinstance(app.screen, ErrorModal)
                await pilot.press("escape")
                await settle(pilot)
            elif expected is not None:
                focused = app.screen.focused
                assert focused is not None and focused.id == expected, (action.title, focused)
                await pilot.press("escape")
            assert app.screen is app.screen_stack[0], action.title

    drive(filled_home, script)


def test_ctrl_p_then_a_name_opens_the_form(filled_home: Home) -> None:
    async def script(pilot: Pilot[None]) -> None:
        await pilot.press("ctrl+p")
        await settle(pilot)
        await pilot.press(*"generate a signing")
        await settle(pilot, 0.3)
        await pilot.press("enter")
        await settle(pilot)
        assert pilot.app.current_mode == "keys"
        form = pilot.app.screen
        assert isinstance(form, FormModal)
        assert form.form_title.lower().startswith("generate")
        assert isinstance(form.focused, Input)

    drive(filled_home, script)


def footer_width(pilot: Pilot[None]) -> tuple[int, list[str]]:
    keys = list(pilot.app.screen.query_one(Footer).query(FooterKey))
    return sum(k.outer_size.width for k in keys), [k.description for k in keys]


def test_every_footer_fits_80_columns_with_the_palette_key(filled_home: Home) -> None:
    """At 80x24 the footer cut off (`^p palettei`, the Keys screen lost its init key): every screen's footer, with
    the most keys it can show (a trusted key, a TUF repository), fits, and the palette key is whole."""
    TrustStore(filled_home).add("me", KeyStore(filled_home).public_pem("k"))

    async def script(pilot: Pilot[None]) -> None:
        for key, title, _ in SCREENS_HELP.values():
            await pilot.press("d")
            await settle(pilot)
            await pilot.press(key)
            await settle(pilot)
            pilot.app.screen.set_focus(None)  # a focused field adds nothing, but hides nothing either
            await settle(pilot)
            width, shown = footer_width(pilot)
            assert width <= 80, (title, width, shown)
            assert shown[-1] == "palette", (title, shown)

    drive(filled_home, script)
    init_tuf(filled_home, {role: ("k",) for role in TOP_LEVEL_ROLES})

    async def keys_screen(pilot: Pilot[None]) -> None:
        await pilot.press("k")
        await settle(pilot)
        width, shown = footer_width(pilot)
        assert width <= 80 and {"Expiry", "Rotate", "Generate", "Trust", "Untrust"} <= set(shown), (width, shown)

    drive(filled_home, keys_screen)


def test_enter_on_a_recent_run_of_the_dashboard_opens_it(filled_home: Home, tmp_path: Path) -> None:
    with Store.open(filled_home) as store:
        profile = ProfileStore(store).get("default", "json:raw")
        first = plan_run(store, "default", profile, parse_selectors([]), key_name="k", out_path=tmp_path / "a.tar.zst")
        plan_run(store, "default", profile, parse_selectors([]), key_name="k", out_path=tmp_path / "b.tar.zst")

    async def script(pilot: Pilot[None]) -> None:
        table = pilot.app.screen.query_one("#dash-runs", DataTable)
        assert table.row_count == 2
        table.focus()
        table.move_cursor(row=table.get_row_index(first.run_id))
        await pilot.press("enter")
        await settle(pilot)
        assert pilot.app.current_mode == "runs"
        screen = pilot.app.screen
        assert isinstance(screen, RunsScreen)
        runs = screen.query_one("#runs-table", DataTable)
        assert runs.coordinate_to_cell_key(runs.cursor_coordinate).row_key.value == first.run_id
        assert first.run_id in str(screen.query_one("#runs-events-title", Label).render())

    drive(filled_home, script)
