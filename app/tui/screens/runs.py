"""Runs: a tenant's export runs and the event timeline of the highlighted one (`stella export runs|show|cancel`)."""

from __future__ import annotations

import json
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import DataTable, Footer, Header, Input, Label, Static

from app.tui.messages import EventsLoaded, RunCancelled, RunsLoaded
from app.tui.screens.base import StellaScreen, shown_path
from app.tui.screens.forms import ConfirmModal
from app.tui.screens.modals import TextModal
from core.canonical import canonical_json
from core.runs import ExportRun, RunEvent
from core.tenants import DEFAULT_TENANT
from services.export import cancel_export, list_runs, run_events

RUNS_LIMIT = 50


def event_detail(event: RunEvent) -> str:
    """One line for an event's detail: the message of a failure, the artifact of a success, else compact JSON."""
    detail = event.detail
    if event.event_type == "failed" and "message" in detail:
        return f"{detail.get('error_code')}: {detail['message']}"
    if event.event_type == "succeeded" and "artifact" in detail:
        return f"{shown_path(str(detail['artifact']))} ({detail.get('size')} bytes)"
    if event.event_type == "started" and "pid" in detail:
        return f"pid {detail['pid']} on {detail.get('host')}"
    if event.event_type == "distributed" and "target" in detail:
        return f"{detail.get('type')} {shown_path(str(detail['target']))} ({detail.get('state')})"
    if event.event_type == "planned" and "inputs" in detail:
        return f"{detail.get('profile')}, {detail['inputs']} inputs"
    return canonical_json(detail).decode("utf-8") if detail else ""


class RunsScreen(StellaScreen):
    """The runs of a tenant, newest first; moving the cursor shows that run's events."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "refresh", "Refresh"),
        Binding("o", "open_run", "Parameters"),
        Binding("c", "cancel_run", "Cancel run"),
        Binding("t", "focus('#runs-tenant')", "Tenant"),
        Binding("escape", "leave_field", "Leave field", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.runs: dict[str, ExportRun] = {}
        self.selected: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(classes="row form"):
            yield Label("tenant ", classes="inline-label")
            yield Input(value=DEFAULT_TENANT, placeholder="tenant", id="runs-tenant")
            yield Static("", id="runs-summary", markup=False)
        yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield Label("Events", id="runs-events-title", classes="section")
        yield DataTable(id="runs-events", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "runs"
        runs = self.query_one("#runs-table", DataTable)
        for heading in ("run", "profile", "state", "inputs", "created"):
            runs.add_column(heading, key=heading)
        events = self.query_one("#runs-events", DataTable)
        for heading in ("seq", "time", "event", "state", "actor", "detail"):
            events.add_column(heading, key=heading)
        self.action_refresh()

    def resumed(self) -> None:
        self.action_refresh()

    def show_run(self, tenant: str, run_id: str) -> None:
        """Open on ``run_id`` of ``tenant`` (enter on a recent run of the dashboard)."""
        self.query_one("#runs-tenant", Input).value = tenant
        self.selected = run_id
        self.action_refresh()

    @on(Input.Submitted, "#runs-tenant")
    def action_refresh(self) -> None:
        tenant = self.tenant_in("#runs-tenant")
        self.query_one("#runs-summary", Static).update("loading ...")
        self.load_runs(tenant)
        self.query_one("#runs-table", DataTable).focus()

    @work(thread=True, exclusive=True, group="runs", exit_on_error=False, description="read the runs")
    def load_runs(self, tenant: str) -> None:
        with self.store_guard:
            runs = list_runs(self.home, tenant, limit=RUNS_LIMIT)
        self.loaded(RunsLoaded(tenant, runs))

    def on_runs_loaded(self, message: RunsLoaded) -> None:
        table = self.query_one("#runs-table", DataTable)
        table.clear()
        self.runs = {r.run_id: r for r in message.runs}
        for run in message.runs:
            table.add_row(
                run.run_id,
                f"{run.profile_id}@{run.profile_revision}",
                str(run.state),
                str(run.input_count),
                f"{run.created_at:%Y-%m-%d %H:%M:%S}",
                key=run.run_id,
            )
        n = len(message.runs)
        self.query_one("#runs-summary", Static).update(f"  {n} run{'s' if n != 1 else ''} in tenant {message.tenant}")
        if self.selected in self.runs:
            table.move_cursor(row=table.get_row_index(self.selected))
        elif message.runs:
            self.show_events(message.runs[0].run_id)
        else:
            self.selected = None
            self.query_one("#runs-events", DataTable).clear()
            self.query_one("#runs-events-title", Label).update("Events")

    @on(DataTable.RowHighlighted, "#runs-table")
    def run_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self.show_events(event.row_key.value)

    def show_events(self, run_id: str) -> None:
        self.selected = run_id
        self.load_events(run_id)

    @work(thread=True, exclusive=True, group="events", exit_on_error=False, description="read a run's events")
    def load_events(self, run_id: str) -> None:
        with self.store_guard:
            run, events = run_events(self.home, run_id)
        self.loaded(EventsLoaded(run, events))

    def on_events_loaded(self, message: EventsLoaded) -> None:
        if message.run.run_id != self.selected:
            return
        table = self.query_one("#runs-events", DataTable)
        table.clear()
        for e in message.events:
            moved = f"{e.from_state or ''} -> {e.to_state}" if e.to_state else ""
            table.add_row(str(e.seq), f"{e.event_time:%H:%M:%S}", e.event_type, moved, e.actor or "", event_detail(e))
        run = message.run
        self.query_one("#runs-events-title", Label).update(
            f"Events of {run.run_id} ({run.state}, correlation {run.correlation_id[:8]})"
        )

    def action_open_run(self) -> None:
        run = self.runs.get(self.selected or "")
        if run is not None:
            self.app.push_screen(TextModal(f"run {run.run_id}", json.dumps(run.to_dict(), indent=2)))

    def action_cancel_run(self) -> None:
        run = self.runs.get(self.selected or "")
        if run is None:
            return
        if run.state.terminal:
            self.notify(f"run {run.run_id} has already {run.state}; there is nothing to cancel", severity="warning")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.cancel_run(run.run_id)

        self.app.push_screen(ConfirmModal(f"Cancel run {run.run_id} ({run.state})?", "Cancel run"), answered)

    @work(thread=True, group="cancel", exit_on_error=False, description="cancel a run")
    def cancel_run(self, run_id: str) -> None:
        # As `stella export cancel`: through the store when it is free; when a run holds it (this app's own run
        # screen, or another process), write the cancel request the running engine polls.
        if self.store_guard.acquire(blocking=False):
            try:
                outcome = cancel_export(self.home, run_id)
            finally:
                self.store_guard.release()
        else:
            outcome = cancel_export(self.home, run_id, store_in_use=True)
        text = outcome.text
        self.post_message(RunCancelled(text))

    def on_run_cancelled(self, message: RunCancelled) -> None:
        self.notify(message.text)
        self.action_refresh()
