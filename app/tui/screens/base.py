"""What every screen shares: access to the home, and the error modal for a failed worker."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from textual import on
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Input
from textual.worker import Worker, WorkerState, get_current_worker

from app.tui.text import cells
from core.atomic import environment_failure
from core.errors import StellaError
from core.home import Home
from core.progress import Check


class StellaScreen(Screen[None]):
    """A top-level screen of the app (one per mode)."""

    _resumes = 0
    #: An error dialog of this screen is open: closing it must not read again (the same field would fail again,
    #: and the dialog come back: a user could not leave).
    _error_open = False

    def __init__(self) -> None:
        super().__init__()
        self._valid_tenants: dict[str, str] = {}

    def on_screen_resume(self) -> None:
        """Coming back to a screen (from another mode or a dialog) reads the store again; the first showing is
        ``on_mount``'s to load, so it is not read twice, and closing an error dialog reads nothing."""
        self._resumes += 1
        if self._error_open:
            self._error_open = False
            return
        if self._resumes > 1:
            self.resumed()

    def resumed(self) -> None:
        """What a screen does when it is shown again; nothing by default."""

    def loaded(self, message: Message) -> None:
        """Post a worker's result, unless the worker was cancelled (a newer load of the same screen replaced it)."""
        if not get_current_worker().is_cancelled:
            self.post_message(message)

    @property
    def home(self) -> Home:
        home: Home = getattr(self.app, "home")  # noqa: B009 - StellaApp.home; avoids a circular import
        return home

    @on(Worker.StateChanged)
    def worker_failed(self, event: Worker.StateChanged) -> None:
        """Every failed worker of a screen ends here: the CLI's sentence in a modal."""
        if event.state is not WorkerState.ERROR or event.worker.error is None:
            return
        title, sentence = sentence_of(event.worker.error)
        self.show_error(title, sentence)
        self.drawn()

    def show_error(self, title: str, sentence: str) -> None:
        """The error dialog (escape, enter or OK close it); closing it leaves the screen as it was."""
        from app.tui.screens.modals import ErrorModal

        self._error_open = True
        self.app.push_screen(ErrorModal(title, sentence))

    def drawn(self) -> None:
        """The screen shows what it read (or why it could not): tell the app after the next refresh."""
        hook = getattr(self.app, "first_screen_shown", None)
        if hook is not None:
            self.call_after_refresh(hook)

    def action_leave_field(self) -> None:
        """Escape in a form: leave the text field so the single-letter bindings work again (the focus goes to the
        screen's table, when it gives that the focus on arrival)."""
        target = self.query(self.AUTO_FOCUS).first() if self.AUTO_FOCUS and self.AUTO_FOCUS != "*" else None
        self.set_focus(target if isinstance(target, DataTable) else None)

    def tenant_in(self, selector: str) -> str:
        """The tenant typed in a field, checked as every command checks it. An invalid one shows the command's
        sentence once and the field goes back to the last valid tenant, so the same error cannot come back on the
        next key."""
        from core.tenants import DEFAULT_TENANT, validate_tenant  # loads the store: not before the first paint

        field = self.query_one(selector, Input)
        last = self._valid_tenants.get(selector, DEFAULT_TENANT)
        try:
            tenant = validate_tenant(field.value.strip() or DEFAULT_TENANT)
        except StellaError as exc:
            field.value = last
            self.show_error(*sentence_of(exc))
            return last
        self._valid_tenants[selector] = tenant
        return tenant

    @property
    def store_guard(self) -> threading.Lock:
        """Held by a worker while it has the store open: the store's lock refuses a second opener at once,
        so the app's own workers (a dashboard refresh during an import) take turns instead of failing."""
        guard: threading.Lock = getattr(self.app, "store_guard")  # noqa: B009
        return guard


def sentence_of(error: BaseException) -> tuple[str, str]:
    """The modal title and the sentence a user reads: the CLI's words for a ``StellaError`` (an I/O failure, e.g. a
    full disk, reads as the CLI's exit-8 sentence naming the path)."""
    error = environment_failure(error) or error
    if isinstance(error, StellaError):
        return f"error ({error.code}, exit {int(error.exit_code)})", error.diagnostics()
    return (
        "internal error",
        f"internal error: {type(error).__name__}: {error} (this is a bug in stella; report it)",
    )


def shown_path(path: Path | str) -> str:
    """A path as the TUI prints it: relative to the working directory when it is under it (shorter at 80 columns),
    absolute otherwise."""
    p = Path(path)
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        return str(p)


def add_check_row(table: DataTable[Any], check: Check, *, follow: bool = True) -> str:
    """A verification check as a row of a checks table (result, check, detail with the file it names); with
    ``follow`` the cursor moves to it, keeping the newest in view. Returns the detail as shown. The Verify,
    Receive, Run and Mirror screens list checks as they complete."""
    detail = check.detail if check.ok or not check.path else f"{check.detail} ({check.path})"
    table.add_row(*cells("ok" if check.ok else "FAIL", check.name, detail))  # details quote bundle paths
    if follow:
        table.move_cursor(row=table.row_count - 1)
    return detail
