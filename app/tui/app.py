"""The Textual app: one mode per screen, bindings in the footer, one handler for failed workers."""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.worker import WorkerCancelled, WorkerFailed

from app.tui.navigation import ACTIONS, SCREENS_HELP, PaletteAction, nav_bindings
from app.tui.screens.base import shown_path
from app.tui.screens.dashboard import DashboardScreen
from core import __version__
from core.clock import utcnow
from core.home import Home


def _lazy(module: str, name: str) -> Callable[[], Screen[None]]:
    """A mode's screen, imported when the mode is first shown: the first screen paints without loading the others
    (nor the store, DuckDB and the adapters they use)."""

    def make() -> Screen[None]:
        screen: Screen[None] = getattr(importlib.import_module(module), name)()
        return screen

    return make


class StellaApp(App[None]):
    """`stella tui`: every action calls the same services as the CLI."""

    TITLE = "stella"
    CSS_PATH = "app.tcss"
    MODES: ClassVar[dict[str, str | Callable[[], Screen[None]]]] = {
        "dashboard": DashboardScreen,
        "import": _lazy("app.tui.screens.importing", "ImportScreen"),
        "data": _lazy("app.tui.screens.data", "DataScreen"),
        "profiles": _lazy("app.tui.screens.profiles", "ProfilesScreen"),
        "export": _lazy("app.tui.screens.export", "ExportScreen"),
        "runs": _lazy("app.tui.screens.runs", "RunsScreen"),
        "verify": _lazy("app.tui.screens.verify", "VerifyScreen"),
        "mirror": _lazy("app.tui.screens.mirror", "MirrorScreen"),
        "keys": _lazy("app.tui.screens.keys", "KeysScreen"),
        "timeline": _lazy("app.tui.screens.timeline", "TimelineScreen"),
        "kit": _lazy("app.tui.screens.kit", "KitScreen"),
        "evidence": _lazy("app.tui.screens.evidence", "EvidenceScreen"),
        "bootstrap": _lazy("app.tui.screens.bootstrap", "BootstrapScreen"),
    }
    DEFAULT_MODE: ClassVar[str] = "dashboard"
    BINDINGS: ClassVar[list[BindingType]] = [
        *nav_bindings(show=False),
        Binding("question_mark", "help", "Help", key_display="?"),
        # Not in the footer: 80 columns hold a screen's own keys, help and the palette; help and the palette list it.
        Binding("q", "quit", "Quit", show=False),
    ]

    def __init__(
        self, home: Home, *, screenshot: Path | None = None, now: Callable[[], datetime] | None = None
    ) -> None:
        super().__init__()
        self.home = home
        self._now = now
        self.store_guard = threading.Lock()
        self.sub_title = f"{__version__}  {shown_path(home.root)}"
        self.screenshot = screenshot
        self._first_screen_shown = False

    def now(self) -> datetime:
        """The time warnings and expiry are judged at (naive UTC): ``now`` if given (tests pin it), else the clock."""
        return self._now() if self._now is not None else utcnow()

    def action_show(self, mode: str) -> None:
        if mode != self.current_mode:
            self.switch_mode(mode)

    async def action_open_run(self, tenant: str, run_id: str) -> None:
        """A run from the dashboard: the Runs screen on its tenant, the run highlighted with its events."""
        from app.tui.screens.runs import RunsScreen  # loaded with its mode, not with the first screen

        if self.current_mode != "runs":
            await self.switch_mode("runs")
        if isinstance(self.screen, RunsScreen):
            self.screen.show_run(tenant, run_id)

    async def action_open_evidence(self, tenant: str, evidence_id: str) -> None:
        """A sealed bundle from the timeline: the Evidence screen on its tenant, the bundle shown."""
        from app.tui.screens.evidence import EvidenceScreen  # loaded with its mode, not with the first screen

        if self.current_mode != "evidence":
            await self.switch_mode("evidence")
        if isinstance(self.screen, EvidenceScreen):
            self.screen.show_bundle(tenant, evidence_id)

    def action_help(self) -> None:
        from app.tui.screens.modals import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for mode, (key, title, what) in SCREENS_HELP.items():
            yield SystemCommand(f"{title} ({key})", what, lambda mode=mode: self.action_show(mode))
        for action in ACTIONS:
            yield SystemCommand(action.title, action.command, lambda action=action: self.open_action(action))
        yield SystemCommand("Help (?)", "key bindings and what each screen does", self.action_help)

    async def open_action(self, action: PaletteAction) -> None:
        """A palette action: its screen, once that has read what it shows, then the screen's action (which opens
        the form or confirmation that does it, or puts the focus in the field to fill)."""
        if action.mode != self.current_mode:
            await self.switch_mode(action.mode)
            # A screen's action acts on what it read (the highlighted key, the TUF roles): let its loads finish.
            for worker in [w for w in self.workers if w.node is self.screen]:
                with contextlib.suppress(WorkerCancelled, WorkerFailed):  # a newer load replaced it; its error shows
                    await worker.wait()
        if action.action is not None:
            await self.run_action(action.action, self.screen)

    def first_screen_shown(self) -> None:
        """Called once the first screen has drawn what it read: with ``screenshot``, save it as SVG and exit.

        This is `stella tui --screenshot PATH`: the smoke test of the binary, and the time to first screen.
        """
        if self._first_screen_shown:
            return
        self._first_screen_shown = True
        if self.screenshot is not None:
            # Rows added and texts updated are laid out on the next refresh: save after that one.
            self.call_after_refresh(self._save_screenshot_and_exit)

    def _save_screenshot_and_exit(self) -> None:
        assert self.screenshot is not None
        self.save_screenshot(filename=self.screenshot.name, path=str(self.screenshot.parent))
        self.exit()
