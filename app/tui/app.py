"""The Textual app: one mode per screen, bindings in the footer, one handler for failed workers."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from app.tui.screens.dashboard import DashboardScreen
from app.tui.screens.importing import ImportScreen
from app.tui.screens.keys import KeysScreen
from app.tui.screens.modals import HelpScreen
from app.tui.screens.verify import VerifyScreen
from core import __version__
from core.home import Home

#: mode name -> (title in the command palette, what it shows)
SCREENS_HELP: dict[str, tuple[str, str]] = {
    "dashboard": ("Dashboard", "store counts per tenant, recent runs, keys"),
    "import": ("Import", "import files, directories or archives into a tenant"),
    "verify": ("Verify", "verify a received bundle check by check"),
    "keys": ("Keys and trust", "signing keys and trusted keys"),
}


class StellaApp(App[None]):
    """`stella tui`: dashboard, import, verify, keys; every action calls the same services as the CLI."""

    TITLE = "stella"
    CSS_PATH = "app.tcss"
    MODES: ClassVar[dict[str, str | Callable[[], Screen[None]]]] = {
        "dashboard": DashboardScreen,
        "import": ImportScreen,
        "verify": VerifyScreen,
        "keys": KeysScreen,
    }
    DEFAULT_MODE: ClassVar[str] = "dashboard"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("d", "show('dashboard')", "Dashboard"),
        Binding("i", "show('import')", "Import"),
        Binding("v", "show('verify')", "Verify"),
        Binding("k", "show('keys')", "Keys"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, home: Home) -> None:
        super().__init__()
        self.home = home
        self.store_guard = threading.Lock()
        self.sub_title = f"{__version__}  {home.root}"

    def action_show(self, mode: str) -> None:
        if mode != self.current_mode:
            self.switch_mode(mode)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for mode, (title, what) in SCREENS_HELP.items():
            yield SystemCommand(title, what, lambda mode=mode: self.action_show(mode))
        yield SystemCommand("Help", "key bindings and what each screen does", self.action_help)
