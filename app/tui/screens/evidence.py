"""Evidence (key y): the tenant's evidence locker, as `stella evidence` shows it, all through services.evidence.

The table lists each sealed bundle (id, kind, subject, created, size, held, retained until). ``o`` (or enter) shows
one: its manifest summary, artifacts, holds and the tail of its chain of custody (an access, as `show` is). ``c``
verifies the locker's archive check by check, as the Verify screen does; ``a`` places a legal hold and ``z``
releases one (a case and a reason), ``x`` exports the sealed archive to a file. Every dialog closes with escape.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import DataTable, Footer, Header, Input, Label, Static

from app.tui.messages import CheckCompleted, EvidenceChanged, EvidenceListed, EvidenceShown, EvidenceVerified
from app.tui.progress import MessageObserver
from app.tui.screens.base import StellaScreen, add_check_row, sentence_of, shown_path
from app.tui.screens.forms import Field, FormModal
from app.tui.screens.modals import TextModal
from app.tui.text import cells, plain
from core.clock import rfc3339
from core.custody import CustodyEvent
from core.evidence_store import EvidenceBundle, Hold
from core.progress import CancelToken
from core.tenants import DEFAULT_TENANT
from services import evidence as locker

#: Custody events shown for one bundle.
CUSTODY_TAIL = 10


def size_text(n: int) -> str:
    """A size in the table's few columns: bytes below 10 kB, else kB or MB (1000s, as `evidence list` sizes)."""
    if n < 10_000:
        return f"{n} B"
    if n < 10_000_000:
        return f"{n // 1000} kB"
    return f"{n // 1_000_000} MB"


def detail_text(detail: locker.EvidenceDetail, custody: list[CustodyEvent]) -> str:
    """One bundle as the show dialog prints it: the manifest summary, artifacts, holds and the custody tail."""
    b = detail.bundle
    lines = [
        f"evidence {b.evidence_id} ({b.kind}, tenant {b.tenant})",
        f"subject    {b.subject}",
        f"created    {rfc3339(b.created_at)} by {b.created_by}",
        f"digest     {b.digest} ({b.size} bytes)",
        f"Merkle     root {b.root_hash} over {b.tree_size} artifacts",
        f"signed     key {b.key_id}, {'timestamped' if b.timestamped else 'not timestamped'}",
        f"redaction  {b.redaction_profile}",
        f"custody    head {b.custody_head}",
        f"retained   until {rfc3339(b.retention_until)}",
    ]
    if b.previous_id:
        lines.append(f"re-seals   {b.previous_id}")
    lines += ["", f"artifacts ({len(detail.artifacts)})"]
    lines += [f"  {a.leaf_index:>3}  {a.sha256[:16]}  {a.size:>9}  {a.path}" for a in detail.artifacts]
    lines += ["", "holds" if detail.holds else "holds: none"]
    for h in detail.holds:
        state = (
            "active" if h.active else f"released {rfc3339(h.released_at) if h.released_at else ''} by {h.released_by}"
        )
        lines.append(f"  case {h.case_id}: {h.reason} (placed {rfc3339(h.placed_at)} by {h.placed_by}; {state})")
    lines += ["", f"custody (last {len(custody)} events of this bundle)"]
    lines += [f"  {e.seq:>5}  {e.at}  {e.action:<14} {e.actor}: {e.why}" for e in custody]
    return "\n".join(lines)


class EvidenceScreen(StellaScreen):
    """The tenant's sealed evidence; the highlighted bundle's holds below the table, a verification's checks under."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("o", "show_evidence", "Show"),
        Binding("c", "verify", "Verify"),
        Binding("a", "hold", "Hold"),
        Binding("z", "release", "Release"),
        Binding("x", "export", "Export"),
        Binding("r", "refresh", "Refresh"),
        Binding("t", "focus('#evidence-tenant')", "Tenant", show=False),
        Binding("escape", "leave_field", "Leave field", show=False),
    ]
    AUTO_FOCUS = "#evidence-table"
    DEFAULT_CSS = """
    #evidence-table, #evidence-checks { height: 1fr; }
    #evidence-summary, #evidence-detail, #evidence-verdict { padding: 0 1; height: auto; max-height: 3; }
    #evidence-verdict.ok { color: $success; text-style: bold; }
    #evidence-verdict.failed { color: $error; text-style: bold; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.tenant = DEFAULT_TENANT
        self.bundles: dict[str, tuple[EvidenceBundle, list[Hold]]] = {}
        #: Shown after a refresh (the bundle a caller asked for, e.g. from the timeline).
        self.wanted: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(classes="row form"):
            yield Label("tenant ", classes="inline-label")
            yield Input(value=DEFAULT_TENANT, placeholder="tenant", id="evidence-tenant")
        yield Static("", id="evidence-summary", markup=False)
        yield DataTable(id="evidence-table", cursor_type="row", zebra_stripes=True)
        yield Label("", id="evidence-detail", markup=False)
        yield Static("", id="evidence-verdict", markup=False)
        yield DataTable(id="evidence-checks", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "evidence"
        table = self.query_one("#evidence-table", DataTable)
        # The subject last: a run id is long, and 80 columns should still show whether a bundle is held.
        for heading in ("id", "kind", "held", "size", "created", "retained", "subject"):
            table.add_column(heading, key=heading)
        self.query_one("#evidence-checks", DataTable).display = False
        self.query_one("#evidence-verdict", Static).display = False
        self.action_refresh()

    def resumed(self) -> None:
        self.action_refresh()

    # -- the list ------------------------------------------------------------------------------------------------
    @on(Input.Submitted, "#evidence-tenant")
    def action_refresh(self) -> None:
        self.tenant = self.tenant_in("#evidence-tenant")
        self.query_one("#evidence-summary", Static).update("loading ...")
        self.load(self.tenant)
        self.query_one("#evidence-table", DataTable).focus()

    def show_bundle(self, tenant: str, evidence_id: str) -> None:
        """Open on ``evidence_id`` of ``tenant`` (the timeline's signed references): list, highlight, show it."""
        self.query_one("#evidence-tenant", Input).value = tenant
        self.wanted = evidence_id
        self.action_refresh()

    @work(thread=True, exclusive=True, group="evidence", exit_on_error=False, description="read the locker")
    def load(self, tenant: str) -> None:
        with self.store_guard:
            items = locker.list_evidence(self.home, tenant)
        self.loaded(EvidenceListed(tenant, items))

    def on_evidence_listed(self, message: EvidenceListed) -> None:
        table = self.query_one("#evidence-table", DataTable)
        # A refresh after a hold, a release or an export keeps the cursor on the bundle acted on.
        kept = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value if table.row_count else None
        table.clear()
        self.bundles = {}
        for bundle, holds in message.items:
            self.bundles[bundle.evidence_id] = (bundle, holds)
            table.add_row(
                *cells(
                    bundle.evidence_id,
                    bundle.kind,
                    "held" if holds else "",
                    size_text(bundle.size),
                    f"{bundle.created_at:%Y-%m-%d}",
                    f"{bundle.retention_until:%Y-%m-%d}",
                    bundle.subject,
                ),
                key=bundle.evidence_id,
            )
        n = len(self.bundles)
        summary = (
            f" {n} evidence bundle{'' if n == 1 else 's'} of tenant {message.tenant}; enter: show, c: verify"
            if n
            else f" no evidence in tenant {message.tenant}; seal some with `stella evidence snapshot`"
        )
        self.query_one("#evidence-summary", Static).update(plain(summary))
        if not n:
            self.query_one("#evidence-detail", Label).update("")
        wanted, self.wanted = self.wanted, None
        if wanted is None and kept in self.bundles:
            table.move_cursor(row=table.get_row_index(kept))
        if n:  # the line under the table says what the cursor is on now, whether or not the cursor moved
            self.describe(kept if wanted is None and kept in self.bundles else message.items[0][0].evidence_id)
        if wanted is not None:
            if wanted in self.bundles:
                table.move_cursor(row=table.get_row_index(wanted))
                self.action_show_evidence()
            else:
                self.notify(f"evidence {wanted} is not in tenant {message.tenant}'s locker", severity="warning")
        self.drawn()

    def highlighted(self) -> EvidenceBundle | None:
        table = self.query_one("#evidence-table", DataTable)
        if not table.row_count:
            self.notify("no evidence bundle to act on", severity="warning")
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        found = self.bundles.get(key or "")
        return found[0] if found else None

    @on(DataTable.RowHighlighted, "#evidence-table")
    def bundle_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.describe(event.row_key.value or "")

    def describe(self, evidence_id: str) -> None:
        """The line under the table: the highlighted bundle's subject, size of tree, timestamp and holds."""
        found = self.bundles.get(evidence_id)
        if found is None:
            return
        bundle, holds = found
        held = f"held by {', '.join(sorted({h.case_id for h in holds}))}" if holds else "not held"
        stamped = "timestamped" if bundle.timestamped else "not timestamped"
        self.query_one("#evidence-detail", Label).update(
            plain(f" {bundle.subject}  {bundle.tree_size} artifacts  {stamped}  {held}")
        )

    # -- show ----------------------------------------------------------------------------------------------------
    @on(DataTable.RowSelected, "#evidence-table")
    def action_show_evidence(self) -> None:
        bundle = self.highlighted()
        if bundle is not None:
            self.read_one(self.tenant, bundle.evidence_id)

    @work(thread=True, exclusive=True, group="evidence-show", exit_on_error=False, description="show evidence")
    def read_one(self, tenant: str, evidence_id: str) -> None:
        with self.store_guard:
            detail = locker.show_evidence(self.home, tenant, evidence_id, why="shown in the TUI")
            custody = locker.custody_of(self.home, tenant, evidence_id, last=CUSTODY_TAIL)
        self.loaded(EvidenceShown(detail, custody))

    def on_evidence_shown(self, message: EvidenceShown) -> None:
        b = message.detail.bundle
        self.app.push_screen(TextModal(f"evidence {b.evidence_id}", detail_text(message.detail, message.custody)))

    # -- verify --------------------------------------------------------------------------------------------------
    def action_verify(self) -> None:
        bundle = self.highlighted()
        if bundle is None:
            return
        fields = [
            Field("key", "signer's public key (PEM)", placeholder="empty: the home's key that sealed it + trust store"),
            Field("tsa", "TSA CA certificate (PEM)", placeholder="empty: the timestamp's TSA is not checked"),
        ]

        def chosen(values: dict[str, str] | None) -> None:
            if values is None:
                return
            key = [Path(values["key"]).expanduser()] if values["key"] else []
            tsa = [Path(values["tsa"]).expanduser()] if values["tsa"] else []
            table = self.query_one("#evidence-checks", DataTable)
            table.clear(columns=True)
            for heading in ("result", "check", "detail"):
                table.add_column(heading, key=heading)
            table.display = True
            verdict = self.query_one("#evidence-verdict", Static)
            verdict.display = True
            verdict.set_class(False, "ok")
            verdict.set_class(False, "failed")
            verdict.update(f"verifying {bundle.evidence_id} ...")
            self.verify_one(self.tenant, bundle.evidence_id, key, tsa)

        self.app.push_screen(FormModal(f"Verify {bundle.evidence_id}", fields, "Verify"), chosen)

    @work(thread=True, exclusive=True, group="evidence-verify", exit_on_error=False, description="verify evidence")
    def verify_one(self, tenant: str, evidence_id: str, key: list[Path], tsa: list[Path]) -> None:
        observer = MessageObserver(self, CancelToken())
        with self.store_guard:
            bundle, report = locker.verify_stored_evidence(self.home, tenant, evidence_id, key, tsa, observer)
        observer.flush()
        self.loaded(EvidenceVerified(bundle, report))

    def on_check_completed(self, message: CheckCompleted) -> None:
        add_check_row(self.query_one("#evidence-checks", DataTable), message.check)

    def on_evidence_verified(self, message: EvidenceVerified) -> None:
        verdict = self.query_one("#evidence-verdict", Static)
        report = message.report
        verdict.set_class(report.ok, "ok")
        verdict.set_class(not report.ok, "failed")
        if report.error is None:
            stamped = f", stamped {report.timestamp.to_dict()['genTime']}" if report.timestamp is not None else ""
            verdict.update(
                f"verified {message.bundle.evidence_id}: root {message.bundle.root_hash[:16]}…, "
                f"{message.bundle.tree_size} artifacts{stamped}"
            )
            return
        title, sentence = sentence_of(report.error)
        verdict.update(f"not verified: {sentence}")
        self.show_error(f"not verified: {title}", sentence)

    # -- holds and export ----------------------------------------------------------------------------------------
    def action_hold(self) -> None:
        bundle = self.highlighted()
        if bundle is None:
            return
        fields = [Field("case", "case", placeholder="CASE-7"), Field("reason", "reason", placeholder="why it is held")]

        def chosen(values: dict[str, str] | None) -> None:
            if values is not None:
                self.change(self.tenant, "hold", bundle.evidence_id, values)

        note = "A legal hold has no expiry: the bundle cannot be deleted or pruned until the case releases it."
        self.app.push_screen(FormModal(f"Hold {bundle.evidence_id}", fields, "Hold", note=note), chosen)

    def action_release(self) -> None:
        bundle = self.highlighted()
        if bundle is None:
            return
        cases = sorted({h.case_id for h in self.bundles[bundle.evidence_id][1]})
        if not cases:
            self.notify(f"{bundle.evidence_id} is not held", severity="warning")
            return
        fields = [Field("case", "case", value=cases[0], choices=tuple(cases)), Field("reason", "reason")]

        def chosen(values: dict[str, str] | None) -> None:
            if values is not None:
                self.change(self.tenant, "release", bundle.evidence_id, values)

        self.app.push_screen(FormModal(f"Release a hold on {bundle.evidence_id}", fields, "Release"), chosen)

    def action_export(self) -> None:
        bundle = self.highlighted()
        if bundle is None:
            return
        fields = [
            Field("out", "write the sealed archive to", value=f"{bundle.evidence_id}.tgz"),
            Field("to", "handed to (recorded as a transfer)", placeholder="empty: an export"),
            Field("reason", "reason"),
        ]

        def chosen(values: dict[str, str] | None) -> None:
            if values is not None:
                self.change(self.tenant, "export", bundle.evidence_id, values)

        self.app.push_screen(FormModal(f"Export {bundle.evidence_id}", fields, "Export"), chosen)

    @work(thread=True, exclusive=True, group="evidence-change", exit_on_error=False, description="evidence")
    def change(self, tenant: str, what: str, evidence_id: str, values: dict[str, str]) -> None:
        with self.store_guard:
            if what == "hold":
                hold, new = locker.place_hold(self.home, tenant, values["case"], evidence_id, values["reason"])
                text = f"{evidence_id} held under case {hold.case_id}" + ("" if new else " already; nothing changed")
            elif what == "release":
                hold = locker.release_hold(self.home, tenant, values["case"], evidence_id, values["reason"])
                text = f"case {hold.case_id} released its hold on {evidence_id}"
            else:
                out = Path(values["out"]).expanduser()
                _, target = locker.export_evidence(
                    self.home, tenant, evidence_id, out, recipient=values["to"] or None, why=values["reason"]
                )
                text = f"exported {evidence_id} to {shown_path(target)}"
        self.loaded(EvidenceChanged(text))

    def on_evidence_changed(self, message: EvidenceChanged) -> None:
        self.notify(message.text)
        self.action_refresh()
