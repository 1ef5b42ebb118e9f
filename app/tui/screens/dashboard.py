"""Dashboard: what the store holds per tenant, recent runs, keys, the trust store, and what needs attention."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Footer, Header, Label, Static

from app.tui.messages import DashboardLoaded
from app.tui.navigation import nav_bindings
from app.tui.screens.base import StellaScreen, shown_path
from core.clock import utcnow

if TYPE_CHECKING:
    from core.runs import ExportRun

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

#: Warn this long before the home's TUF root expires: mirror bundles signed after that are refused by receivers,
#: and a rotation (`stella tuf rotate root`) issues a new root with a fresh expiry.
TUF_EXPIRY_WARNING = timedelta(days=14)
#: A tenant's newest KEV catalog older than this is stale: CISA updates the catalog several times a week.
KEV_STALE_AFTER = timedelta(days=7)
#: A tenant's newest EPSS snapshot older than this is stale: FIRST publishes new scores every day.
EPSS_STALE_AFTER = timedelta(days=3)
STALE_AFTER = {"kev": KEV_STALE_AFTER, "epss": EPSS_STALE_AFTER}

# The newest snapshot time of each risk feed per tenant: a KEV catalog's dateReleased (a KEV CSV, which has none,
# counts as of its newest dateAdded, as risk bundles date it), an EPSS file's score_date. Undated EPSS files are
# left out: nothing says how old they are.
_FEEDS_SQL = """
SELECT c.tenant, 'kev', max(coalesce(c.date_released, CAST(e.newest AS TIMESTAMP)))
  FROM kev_catalogs c
  LEFT JOIN (SELECT tenant, document_sha256, max(date_added) AS newest FROM kev_entries GROUP BY ALL) e
    ON e.tenant = c.tenant AND e.document_sha256 = c.document_sha256
 GROUP BY c.tenant
UNION ALL
SELECT tenant, 'epss', max(score_date) FROM epss_snapshots GROUP BY tenant
"""


@dataclass(frozen=True, order=True)
class FeedSnapshot:
    """The newest snapshot of a risk feed (``kev`` or ``epss``) a tenant holds."""

    tenant: str
    provider: str
    taken_at: datetime


@dataclass
class DashboardData:
    """Everything the dashboard shows, read in one worker; ``now`` is the time warnings are judged at."""

    now: datetime = field(default_factory=utcnow)
    stats: dict[str, dict[str, int]] = field(default_factory=dict)
    runs: list[ExportRun] = field(default_factory=list)
    keys: int = 0
    trusted: int = 0
    sigstore_roots: int = 0
    #: The latest TUF root's version and expiry, or None when the home has no TUF repository.
    tuf_root: tuple[int, datetime] | None = None
    feeds: list[FeedSnapshot] = field(default_factory=list)


def read_feeds(query: Any) -> list[FeedSnapshot]:
    """The newest dated KEV and EPSS snapshot of each tenant, from a store connection or cursor."""
    rows = query.execute(_FEEDS_SQL).fetchall()
    return sorted(FeedSnapshot(t, p, when) for t, p, when in rows if when is not None)


def _age(delta: timedelta) -> str:
    days = int(delta.total_seconds() // 86400)
    if days >= 1:
        return f"{days} day{'s' if days != 1 else ''}"
    hours = int(delta.total_seconds() // 3600)
    return f"{hours} hour{'s' if hours != 1 else ''}"


def time_left(expires: datetime, now: datetime) -> str:
    """``12 days`` left, or ``expired``: how the TUI shows an expiry next to its date."""
    return "expired" if expires <= now else _age(expires - now)


def tuf_warning(version: int, expires: datetime, now: datetime) -> str | None:
    """The warning for a TUF root that expired or expires within :data:`TUF_EXPIRY_WARNING` of ``now``."""
    fix = "rotate it: `stella tuf rotate root --key NAME` (k, o)"
    if expires <= now:
        return f"TUF role root (version {version}) expired {expires:%Y-%m-%d %H:%M}: mirror bundles fail; {fix}"
    if expires - now <= TUF_EXPIRY_WARNING:
        return f"TUF role root (version {version}) expires {expires:%Y-%m-%d %H:%M} (in {_age(expires - now)}); {fix}"
    return None


def dashboard_warnings(data: DashboardData) -> list[str]:
    """What an operator should fix before exporting or verifying, from what the store and home hold, judged at
    ``data.now``."""
    from core.runs import RunState

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
    if data.tuf_root is not None:
        warning = tuf_warning(*data.tuf_root, data.now)
        if warning:
            out.append(warning)
    for feed in data.feeds:
        age = data.now - feed.taken_at
        if age > STALE_AFTER[feed.provider]:
            out.append(
                f"stale {feed.provider.upper()} in tenant {feed.tenant}: newest snapshot {feed.taken_at:%Y-%m-%d} "
                f"({_age(age)} old); import a fresh one with `stella import FILE` or a risk bundle "
                f"with `stella risk bundle import` (i, or v then ctrl+n)"
            )
    return out


def trust_line(data: DashboardData) -> str:
    """The trust store in one line: trusted keys, custom Sigstore roots, and the TUF repository."""
    if data.tuf_root is None:
        tuf = "no TUF repository (k, t)"
    else:
        version, expires = data.tuf_root
        tuf = f"TUF root {version} until {expires:%Y-%m-%d}"
    roots = data.sigstore_roots
    return (
        f"trust: {data.trusted} trusted key{'s' if data.trusted != 1 else ''}, "
        f"{roots} custom Sigstore root{'s' if roots != 1 else ''}, {tuf}"
    )


def app_now(screen: StellaScreen) -> datetime:
    """The app's time (``StellaApp.now``: pinned in tests), or the wall clock."""
    now = getattr(screen.app, "now", None)
    return now() if callable(now) else utcnow()


class DashboardScreen(StellaScreen):
    """Per-tenant counts (``Store.stats``), recent runs, keys and trusted keys.

    The first screen of the app: it paints at once with "loading..." and its figures arrive from a thread worker
    started after that first paint, which is also where the store, DuckDB and the key and TUF modules are loaded.
    """

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
        self.query_one("#dash-summary", Static).update(f"home {shown_path(self.home.root)}  (loading...)")
        self.call_after_refresh(self.load)

    def resumed(self) -> None:
        self.action_refresh()

    @on(DataTable.RowSelected, "#dash-runs")
    def run_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a recent run opens it on the Runs screen: its tenant, the run highlighted, its events."""
        run_id = event.row_key.value
        table = self.query_one("#dash-runs", DataTable)
        if run_id is not None:
            tenant = str(table.get_cell(event.row_key, "tenant"))
            self.app.call_later(self.app.run_action, f"open_run({tenant!r}, {run_id!r})")

    def action_refresh(self) -> None:
        self.query_one("#dash-summary", Static).update(f"home {shown_path(self.home.root)}  (loading...)")
        self.load()

    @work(thread=True, exclusive=True, group="dashboard", exit_on_error=False, description="read the store")
    def load(self) -> None:
        from core.keys import KeyStore
        from core.runs import RunEngine
        from core.store import Store
        from core.trust import TrustStore
        from core.tuf_home import TufHome

        home = self.home
        data = DashboardData(now=app_now(self))
        data.keys = len(KeyStore(home).list())
        data.trusted = len(TrustStore(home).list())
        sigstore = home.trust_dir / "sigstore"
        data.sigstore_roots = len(list(sigstore.glob("*.json"))) if sigstore.is_dir() else 0
        tuf = TufHome(home)
        if tuf.initialized:
            root = tuf.latest_root().signed
            data.tuf_root = (root.version, root.expires.astimezone(UTC).replace(tzinfo=None))
        with self.store_guard, Store.open(home, read_only=True) as store:
            data.stats = store.stats()
            data.feeds = read_feeds(store.conn)
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
            f"{data.trusted} trusted key{'s' if data.trusted != 1 else ''}, {len(data.runs)} recent runs\n"
            f"{trust_line(data)}"
        )
        self.drawn()
