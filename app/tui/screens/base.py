"""What every screen shares: access to the home, and the error modal for a failed worker."""

from __future__ import annotations

import threading

from textual import on
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from core.errors import StellaError
from core.home import Home


class StellaScreen(Screen[None]):
    """A top-level screen of the app (one per mode)."""

    @property
    def home(self) -> Home:
        home: Home = getattr(self.app, "home")  # noqa: B009 - StellaApp.home; avoids a circular import
        return home

    @on(Worker.StateChanged)
    def worker_failed(self, event: Worker.StateChanged) -> None:
        """Every failed worker of a screen ends here: the CLI's sentence in a modal."""
        if event.state is not WorkerState.ERROR or event.worker.error is None:
            return
        from app.tui.screens.modals import ErrorModal

        title, sentence = sentence_of(event.worker.error)
        self.app.push_screen(ErrorModal(title, sentence))

    def action_leave_field(self) -> None:
        """Escape in a form: leave the text field so the single-letter bindings work again."""
        self.set_focus(None)

    @property
    def store_guard(self) -> threading.Lock:
        """Held by a worker while it has the store open: the store's lock refuses a second opener at once,
        so the app's own workers (a dashboard refresh during an import) take turns instead of failing."""
        guard: threading.Lock = getattr(self.app, "store_guard")  # noqa: B009
        return guard


def sentence_of(error: BaseException) -> tuple[str, str]:
    """The modal title and the sentence a user reads: the CLI's words for a ``StellaError``."""
    if isinstance(error, StellaError):
        return f"error ({error.code}, exit {int(error.exit_code)})", error.diagnostics()
    return (
        "internal error",
        f"internal error: {type(error).__name__}: {error} (this is a bug in stella; report it)",
    )
