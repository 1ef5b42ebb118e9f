"""Dashboard: what the store holds per tenant, recent runs, keys and trusted keys."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Footer, Header, Label, Static

from app.tui.navigation import nav_bindings
from app.tui.screens.base import StellaScreen, shown_path
from core.keys import KeyStore
from core.runs import ExportRun, RunEngine, RunState
from core.store import Store
from core.trust import TrustStore

#: Dashboard columns: (heading, stats key). Kept short so the table fits in 80 columns.
COUNT_COLUMNS: list[tuple[str, str]] = [
    ("documents", "raw_documents"),
    ("advisories", "advisories"),
    ("vex", "vex_statements"),
    ("sbom comp.", "sbom_components"),
    ("kev", "kev_entries"),
    ("epss", "epss_scores"),
    ("findings", "findings"),
]
RECENT_RUNS = 10


@dataclass
class DashboardData:
    """Everything the dashboard shows, read in one worker."""

    stats: dict[str, dict[str, int]] = field(default_factory=dict)
    runs: list[ExportRun] = field(default_factory=list)
    keys: int = 0
    trusted: int = 0


def dashboard_warnings(data: DashboardData) -> list[str]:
    """What an operator should fix before exporting or verifying, from what the store and home hold."""
    out: list[str] = []
    if not data.stats:
        out.append("the store is empty: import documents with `stella import PATH` (i)")
    if not data.keys:
        out.append("no signing key: exports cannot be signed; create one with `stella keys generate NAME` (k, g)")
    if not data.trusted:
        out.append(
            "no trusted key: `stella verify` without --key refuses every bundle; add one with `stella trust add` (k, a)"
        )
    failed = sum(1 for r in data.runs if r.state is RunState.FAILED)
    if failed:
        out.append(f"{failed} of the recent runs failed: see their events (h)")
    return out


class DashboardLoaded(Message):
    def __init__(self, data: DashboardData) -> None:
        super().__init__()
        self.data = data


class DashboardScreen(StellaScreen):
    """Per-tenant counts (``Store.stats``), recent runs, keys and trusted keys."""

    BINDINGS: ClassVar[list[BindingType]] = [
        *nav_bindings(show=True, prefix="app."),
        Binding("r", "refresh", "Refresh", show=False),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll():
            yield Static("", id="dash-summary", markup=False)
            yield Static("", id="dash-warnings", markup=False)
            yield Label("Store", classes="section")
            yield DataTable(id="dash-counts", cursor_type="row", zebra_stripes=True)
            yield Label("Recent runs", classes="section")
            yield DataTable(id="dash-runs", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "dashboard"
        counts = self.query_one("#dash-counts", DataTable)
        counts.add_column("tenant", key="tenant")
        for heading, key in COUNT_COLUMNS:
            counts.add_column(heading, key=key)
        runs = self.query_one("#dash-runs", DataTable)
        for heading in ("run", "tenant", "profile", "state", "created"):
            runs.add_column(heading, key=heading)
        self.action_refresh()

    def resumed(self) -> None:
        self.action_refresh()

    def action_refresh(self) -> None:
        self.query_one("#dash-summary", Static).update(f"home {shown_path(self.home.root)}  (loading...)")
        self.load()

    @work(thread=True, exclusive=True, group="dashboard", exit_on_error=False, description="read the store")
    def load(self) -> None:
        home = self.home
        data = DashboardData()
        data.keys = len(KeyStore(home).list())
        data.trusted = len(TrustStore(home).list())
        with self.store_guard, Store.open(home, read_only=True) as store:
            data.stats = store.stats()
            engine = RunEngine(store)
            for tenant in sorted(data.stats):
                data.runs.extend(engine.list_runs(tenant, limit=RECENT_RUNS))
        data.runs.sort(key=lambda r: (r.created_at, r.run_id), reverse=True)
        del data.runs[RECENT_RUNS:]
        self.loaded(DashboardLoaded(data))

    def on_dashboard_loaded(self, message: DashboardLoaded) -> None:
        data = message.data
        counts = self.query_one("#dash-counts", DataTable)
        counts.clear()
        for tenant in sorted(data.stats):
            row = data.stats[tenant]
            counts.add_row(tenant, *(str(row.get(key, 0)) for _, key in COUNT_COLUMNS), key=tenant)
        runs = self.query_one("#dash-runs", DataTable)
        runs.clear()
        for run in data.runs:
            runs.add_row(
                run.run_id,
                run.tenant,
                f"{run.profile_id}@{run.profile_revision}",
                str(run.state),
                f"{run.created_at:%Y-%m-%d %H:%M}",
                key=run.run_id,
            )
        warnings = dashboard_warnings(data)
        box = self.query_one("#dash-warnings", Static)
        box.update("\n".join(f"! {w}" for w in warnings))
        box.display = bool(warnings)
        tenants = len(data.stats)
        self.query_one("#dash-summary", Static).update(
            f"home {shown_path(self.home.root)}\n"
            f"{tenants} tenant{'s' if tenants != 1 else ''}, {data.keys} signing key{'s' if data.keys != 1 else ''}, "
            f"{data.trusted} trusted key{'s' if data.trusted != 1 else ''}, {len(data.runs)} recent runs"
        )
        self.drawn()
