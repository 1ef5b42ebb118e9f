"""Import: run the Importer on typed paths, with a progress bar, per-file results and cancel."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Footer, Header, Input, ProgressBar, Static

from app.tui.messages import FileImported, ImportFinished, PhaseStarted, ProgressAdvanced
from app.tui.progress import MessageObserver
from app.tui.screens.base import StellaScreen
from app.tui.screens.modals import TextModal
from app.tui.text import cells, plain
from core.errors import Cancelled
from core.ingest import FileResult, ImportSummary, Outcome
from core.progress import CancelToken
from core.tenants import DEFAULT_TENANT
from services.imports import import_files


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


def summary_text(summary: ImportSummary, home: Path) -> str:
    """The import's last line, as `stella import` prints it: the counts (skipped ones only when there are any),
    the tenant and the home."""
    skipped = f", {summary.skipped} skipped" if summary.skipped else ""
    return plain(
        f"{summary.imported} imported, {summary.duplicates} duplicate, {summary.rejected} rejected{skipped} "
        f"into tenant {summary.tenant} ({home})"
    )


def split_paths(text: str) -> list[Path]:
    """Paths typed on one line, shell-style (quote a path with spaces)."""
    try:
        parts = shlex.split(text)
    except ValueError:
        parts = text.split()
    return [Path(p).expanduser() for p in parts]


#: The width of the results' path column.
PATH_WIDTH = 28


def tail(text: str, width: int) -> str:
    """The end of a path when it is too long (its file name matters most), marked with an ellipsis."""
    return text if len(text) <= width else "…" + text[-(width - 1) :]


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
        # At 80 columns the format and the start of the reason stay in view: the path is cut first (enter on a row
        # shows it whole, with the whole reason).
        for heading in ("outcome", "path", "format", "reason"):
            table.add_column(heading, key=heading, width=PATH_WIDTH if heading == "path" else None)
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
        observer = MessageObserver(self, token)
        try:
            with self.store_guard:
                summary = import_files(self.home, paths, tenant=tenant, observer=observer, on_result=self._report)
        except Cancelled as exc:
            observer.flush()
            self.post_message(ImportFinished(None, cancelled=exc.diagnostics()))
            return
        except BaseException:
            observer.flush()
            self.post_message(ImportFinished(None))
            raise  # the app shows the error sentence in a modal
        self.post_message(ImportFinished(summary))

    def _report(self, result: FileResult) -> None:
        self.post_message(FileImported(result))

    def on_phase_started(self, message: PhaseStarted) -> None:
        self.query_one("#import-progress", ProgressBar).update(total=message.total, progress=0)

    def on_progress_advanced(self, message: ProgressAdvanced) -> None:
        self.query_one("#import-progress", ProgressBar).advance(message.units)

    def on_file_imported(self, message: FileImported) -> None:
        result = message.result
        reason = ""
        if result.error is not None:
            where = f" at {result.error.pointer}" if result.error.pointer else ""
            reason = result.error.message + where
        elif result.outcome is Outcome.SKIPPED:
            reason = "; ".join(result.warnings)  # why it was passed by, as `stella import` says it
        elif result.warnings:
            reason = "warning: " + "; ".join(result.warnings)
        table = self.query_one("#import-results", DataTable)
        table.add_row(*cells(result.outcome, tail(str(result.path), PATH_WIDTH), result.format or "", reason))
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
            text.update(summary_text(summary, self.home.root))
