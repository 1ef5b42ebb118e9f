"""Import: run the Importer on typed paths, with a progress bar, per-file results and cancel."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, DataTable, Footer, Header, Input, ProgressBar, Static

from app.tui.screens.base import StellaScreen
from app.tui.screens.modals import TextModal
from app.tui.text import cells, plain
from core.errors import Cancelled
from core.ingest import DEFAULT_TENANT, FileResult, ImportSummary
from core.progress import CancelToken, Check
from services.imports import import_files


class ImportProgress(Message):
    """Progress from the import worker: a phase began (``total``) or ``units`` more are done."""

    def __init__(self, *, total: int | None = None, units: int = 0, started: bool = False) -> None:
        super().__init__()
        self.total = total
        self.units = units
        self.started = started


class FileImported(Message):
    def __init__(self, result: FileResult) -> None:
        super().__init__()
        self.result = result


class ImportFinished(Message):
    """The import ended: with a summary, or cancelled (``cancelled`` holds the error's sentence)."""

    def __init__(self, summary: ImportSummary | None, cancelled: str | None = None) -> None:
        super().__init__()
        self.summary = summary
        self.cancelled = cancelled


class MessageSink:
    """A ``Observer`` that posts messages to a screen (thread-safe) and reports a cancel token."""

    def __init__(self, screen: ImportScreen, token: CancelToken) -> None:
        self.screen = screen
        self.token = token

    def start(self, phase: str, total: int | None = None) -> None:
        self.screen.post_message(ImportProgress(total=total, started=True))

    def advance(self, units: int = 1, *, detail: str | None = None) -> None:
        self.screen.post_message(ImportProgress(units=units))

    def finish(self, phase: str) -> None:
        return None

    def check(self, check: Check) -> None:
        return None  # checks are drawn by the command or screen that asked for them

    def is_cancelled(self) -> bool:
        return self.token.is_cancelled()


def result_text(result: FileResult) -> str:
    """One file's import result in full, as `stella import` reports it: one line per field, whatever it holds."""
    lines = [f"outcome   {result.outcome}", f"path      {result.path}"]
    lines.append(f"format    {result.format or '(not recognised)'}")
    if result.document_id:
        lines.append(f"document  {result.document_id} ({result.kind}, sha256 {result.sha256})")
    if result.error is not None:
        lines.append(f"reason    {result.error.diagnostics()}")
        lines.append(f"exit code {int(result.error.exit_code)} ({result.error.code})")
    lines += [f"warning   {w}" for w in result.warnings]
    return "\n".join(plain(line) for line in lines)


def split_paths(text: str) -> list[Path]:
    """Paths typed on one line, shell-style (quote a path with spaces)."""
    try:
        parts = shlex.split(text)
    except ValueError:
        parts = text.split()
    return [Path(p).expanduser() for p in parts]


class ImportScreen(StellaScreen):
    """Type files, directories or archives to import into a tenant."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel / leave field"),
        Binding("ctrl+r", "start", "Import"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.token: CancelToken | None = None
        self.results: list[FileResult] = []

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(classes="form"):
            yield Input(placeholder="paths to import (files, directories, archives)", id="import-paths")
            with Horizontal(classes="row"):
                yield Input(value=DEFAULT_TENANT, placeholder="tenant", id="import-tenant")
                yield Button("Import", id="import-run", variant="primary")
                yield Button("Cancel", id="import-cancel", variant="warning", disabled=True)
        yield ProgressBar(id="import-progress", show_eta=False)
        yield Static("", id="import-summary", markup=False)
        yield DataTable(id="import-results", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "import"
        table = self.query_one("#import-results", DataTable)
        for heading in ("outcome", "path", "format", "reason"):
            table.add_column(heading, key=heading)
        self.query_one("#import-paths", Input).focus()

    @on(Button.Pressed, "#import-run")
    @on(Input.Submitted)
    def action_start(self) -> None:
        if self.token is not None:
            return
        paths = split_paths(self.query_one("#import-paths", Input).value)
        if not paths:
            self.query_one("#import-summary", Static).update("type one or more paths to import")
            self.query_one("#import-paths", Input).focus()
            return
        tenant = self.query_one("#import-tenant", Input).value.strip() or DEFAULT_TENANT
        self.token = CancelToken()
        self.query_one("#import-results", DataTable).clear()
        self.results.clear()
        self.query_one("#import-progress", ProgressBar).update(total=None, progress=0)
        self.query_one("#import-summary", Static).update(f"importing into tenant {tenant} ...")
        self._set_running(True)
        self.run_import(paths, tenant, self.token)

    @on(Button.Pressed, "#import-cancel")
    def action_cancel(self) -> None:
        if self.token is None:
            self.action_leave_field()
        else:
            self.token.cancel()
            self.query_one("#import-summary", Static).update("cancelling ...")

    def _set_running(self, running: bool) -> None:
        self.query_one("#import-run", Button).disabled = running
        self.query_one("#import-cancel", Button).disabled = not running

    @work(thread=True, exclusive=True, group="import", exit_on_error=False, description="import documents")
    def run_import(self, paths: list[Path], tenant: str, token: CancelToken) -> None:
        try:
            with self.store_guard:
                summary = import_files(
                    self.home, paths, tenant=tenant, observer=MessageSink(self, token), on_result=self._report
                )
        except Cancelled as exc:
            self.post_message(ImportFinished(None, cancelled=exc.diagnostics()))
            return
        except BaseException:
            self.post_message(ImportFinished(None))
            raise  # the app shows the error sentence in a modal
        self.post_message(ImportFinished(summary))

    def _report(self, result: FileResult) -> None:
        self.post_message(FileImported(result))

    def on_import_progress(self, message: ImportProgress) -> None:
        bar = self.query_one("#import-progress", ProgressBar)
        if message.started:
            bar.update(total=message.total, progress=0)
        elif message.units:
            bar.advance(message.units)

    def on_file_imported(self, message: FileImported) -> None:
        result = message.result
        reason = ""
        if result.error is not None:
            where = f" at {result.error.pointer}" if result.error.pointer else ""
            reason = result.error.message + where
        elif result.warnings:
            reason = "warning: " + "; ".join(result.warnings)
        table = self.query_one("#import-results", DataTable)
        table.add_row(*cells(result.outcome, result.path, result.format or "", reason))
        self.results.append(result)
        table.move_cursor(row=table.row_count - 1)

    @on(DataTable.RowSelected, "#import-results")
    def result_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a result: the whole of it, above all a rejected file's reason (the table cuts it short)."""
        result = self.results[event.cursor_row]
        self.app.push_screen(TextModal(f"{result.outcome}: {result.path}", result_text(result)))

    def on_import_finished(self, message: ImportFinished) -> None:
        self.token = None
        self._set_running(False)
        bar = self.query_one("#import-progress", ProgressBar)
        done = int(bar.progress)
        bar.update(total=max(done, 1), progress=max(done, 1) if message.summary else done)
        text = self.query_one("#import-summary", Static)
        summary = message.summary
        if message.cancelled is not None:
            text.update(plain(f"cancelled: {message.cancelled}"))
        elif summary is None:
            text.update("import failed")
        else:
            text.update(
                f"{summary.imported} imported, {summary.duplicates} duplicate, {summary.rejected} rejected "
                f"into tenant {summary.tenant} ({self.home.root})"
            )
