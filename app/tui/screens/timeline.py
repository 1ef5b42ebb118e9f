"""Timeline (key w): a tenant's events in order, with `stella timeline list`'s filters; enter opens the event's run.

The filter field takes the CLI's options as ``name=value`` words: ``type=export.* since=24h run=RUN case=C
subject=run:* until=TIME trace=ID`` (``type`` may repeat). ``o`` shows the highlighted event as a CloudEvent, ``x``
its signed references (manifest digest, sealed evidence with its holds, attestation subjects), ``l`` opens the
Evidence screen on the sealed evidence it links, ``n`` the next page.
"""

from __future__ import annotations

import json
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import DataTable, Footer, Header, Input, Label, Static

from app.tui.messages import TimelineEvidenceLoaded, TimelinePageLoaded
from app.tui.screens.base import StellaScreen
from app.tui.screens.modals import TextModal
from app.tui.text import cells, plain
from core.clock import rfc3339
from core.contract.bundle import MANIFEST
from core.errors import StellaError, UsageError
from core.tenants import DEFAULT_TENANT
from core.timeline import EventFilter, TimelineEvent
from services.timeline import EventEvidence, event_evidence, list_timeline, parse_when

#: Events read per page.
PAGE = 100
#: The filter words the field takes, as `stella timeline list` options.
FILTER_WORDS = ("type", "subject", "since", "until", "run", "case", "trace")


def parse_filter(text: str) -> EventFilter:
    """The filter field's ``name=value`` words as the CLI's filter; an unknown word is a usage error."""
    values: dict[str, list[str]] = {}
    for word in text.split():
        name, sep, value = word.partition("=")
        if not sep or name not in FILTER_WORDS or not value:
            raise UsageError(f"filter {word!r} is not name=value", hint=f"names: {', '.join(FILTER_WORDS)}")
        if name != "type" and name in values:
            raise UsageError(f"filter {name} is given twice")
        values.setdefault(name, []).append(value)

    def one(name: str) -> str | None:
        return values[name][0] if name in values else None

    return EventFilter(
        types=tuple(values.get("type", ())),
        subject=one("subject"),
        since=parse_when(one("since"), "since"),
        until=parse_when(one("until"), "until"),
        run_id=one("run"),
        case_id=one("case"),
        trace_id=one("trace"),
    )


def evidence_text(refs: EventEvidence) -> str:
    """The signed references of an event, as `stella timeline evidence` prints them."""
    lines = [f"event {refs.event.id} ({refs.event.short_type}, {refs.event.subject})", ""]
    if refs.manifest_sha256:
        lines.append(f"manifest  {refs.manifest_sha256}  ({MANIFEST}, signed by the bundle's key)")
    if refs.bundle_sha256:
        path = refs.event.data.get("bundle", {}).get("path")
        lines.append(f"bundle    {refs.bundle_sha256}  {path or ''}")
    for e in refs.evidence:
        if e.evidence_id is None:
            lines.append(f"evidence  {e.digest}  (not in this store's locker)")
            continue
        held = f"; held by {', '.join(e.holds)}" if e.holds else ""
        lines.append(f"evidence  {e.digest}  {e.evidence_id} ({e.kind})")
        lines.append(f"          Merkle root {e.root_hash} over {e.tree_size} artifacts")
        lines.append(f"          key {e.key_id}, {'timestamped' if e.timestamped else 'not timestamped'}{held}")
    for s in refs.event.attestation_subjects:
        lines.append(f"attests   {s.digest}  {s.name}")
    if len(lines) == 2:
        lines.append("no signed references: this event links no bundle, evidence or attestation")
    return "\n".join(lines)


class TimelineScreen(StellaScreen):
    """The events of a tenant in sequence order; the highlighted one's links below the table."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "refresh", "Refresh"),
        Binding("o", "open_event", "Event"),
        Binding("x", "evidence", "Evidence"),
        Binding("l", "locker", "Locker"),
        Binding("n", "next_page", "More"),
        Binding("f", "focus('#timeline-filter')", "Filter"),
        Binding("t", "focus('#timeline-tenant')", "Tenant", show=False),
        Binding("escape", "leave_field", "Leave field", show=False),
    ]
    AUTO_FOCUS = "#timeline-table"

    def __init__(self) -> None:
        super().__init__()
        self.events: dict[str, TimelineEvent] = {}
        self.next_cursor: int | None = None
        self.where = EventFilter()
        self.tenant = DEFAULT_TENANT

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(classes="row form"):
            yield Label("tenant ", classes="inline-label")
            yield Input(value=DEFAULT_TENANT, placeholder="tenant", id="timeline-tenant")
            yield Input(placeholder="type=export.* since=24h run= case=", id="timeline-filter")
        yield Static("", id="timeline-summary", markup=False)
        yield DataTable(id="timeline-table", cursor_type="row", zebra_stripes=True)
        yield Label("", id="timeline-detail", markup=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "timeline"
        table = self.query_one("#timeline-table", DataTable)
        for heading in ("seq", "time", "type", "held", "subject"):
            table.add_column(heading, key=heading)
        self._reload()  # AUTO_FOCUS puts the focus in the table

    def resumed(self) -> None:
        self._reload()  # the focus stays where it was (a palette action may have put it in the filter)

    @on(Input.Submitted, "#timeline-tenant")
    @on(Input.Submitted, "#timeline-filter")
    def action_refresh(self) -> None:
        if self._reload():
            self.query_one("#timeline-table", DataTable).focus()

    def _reload(self) -> bool:
        """Read the first page for the tenant and filter in the fields; False (the error shown) for a bad filter."""
        self.tenant = self.tenant_in("#timeline-tenant")
        try:
            self.where = parse_filter(self.query_one("#timeline-filter", Input).value)
        except StellaError as exc:
            self.show_error(f"error ({exc.code}, exit {int(exc.exit_code)})", exc.diagnostics())
            return False
        self.query_one("#timeline-summary", Static).update("loading ...")
        self.load_page(self.tenant, self.where, 0, False)
        return True

    def action_next_page(self) -> None:
        if self.next_cursor is None:
            self.notify("this is the last page")
            return
        self.load_page(self.tenant, self.where, self.next_cursor, True)

    @work(thread=True, exclusive=True, group="timeline", exit_on_error=False, description="read the timeline")
    def load_page(self, tenant: str, where: EventFilter, after: int, append: bool) -> None:
        with self.store_guard:
            page = list_timeline(self.home, tenant, where, after=after, limit=PAGE)
        self.loaded(TimelinePageLoaded(page, append))

    def on_timeline_page_loaded(self, message: TimelinePageLoaded) -> None:
        table = self.query_one("#timeline-table", DataTable)
        if not message.append:
            table.clear()
            self.events = {}
        for e in message.page.events:
            self.events[e.id] = e
            table.add_row(
                *cells(e.seq, f"{e.time:%Y-%m-%d %H:%M:%S}", e.short_type, "held" if e.held else "", e.subject),
                key=e.id,
            )
        self.next_cursor = message.page.next_cursor
        n = len(self.events)
        more = "; n: more" if self.next_cursor is not None else ""
        self.query_one("#timeline-summary", Static).update(
            plain(f" {n} event{'' if n == 1 else 's'} of tenant {message.page.tenant}{more}; enter: open the run")
        )
        if not self.events:
            self.query_one("#timeline-detail", Label).update("")
        self.drawn()

    def highlighted(self) -> TimelineEvent | None:
        table = self.query_one("#timeline-table", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.events.get(key or "")

    @on(DataTable.RowHighlighted, "#timeline-table")
    def event_highlighted(self, event: DataTable.RowHighlighted) -> None:
        e = self.events.get(event.row_key.value or "")
        if e is None:
            return
        links = [f"run {e.run_id}" if e.run_id else "", f"case {e.case_id}" if e.case_id else ""]
        links += [f"evidence {d[:19]}…" for d in e.evidence_digests]
        self.query_one("#timeline-detail", Label).update(
            plain(f" {e.id}  {rfc3339(e.time)}  " + "  ".join(x for x in links if x))
        )

    @on(DataTable.RowSelected, "#timeline-table")
    def event_selected(self, event: DataTable.RowSelected) -> None:
        e = self.events.get(event.row_key.value or "")
        if e is None:
            return
        if e.run_id is None:
            self.notify("this event belongs to no export run; o shows it, x its evidence", severity="warning")
            return
        self.app.call_later(self.app.run_action, f"open_run({e.tenant!r}, {e.run_id!r})")

    def action_open_event(self) -> None:
        e = self.highlighted()
        if e is not None:
            self.app.push_screen(TextModal(f"event {e.id}", json.dumps(e.to_dict(), indent=2, ensure_ascii=False)))

    def action_evidence(self) -> None:
        e = self.highlighted()
        if e is not None:
            self.load_evidence(e.tenant, e.id, False)

    def action_locker(self) -> None:
        """The Evidence screen on the sealed evidence the highlighted event links (the first in this locker)."""
        e = self.highlighted()
        if e is not None:
            self.load_evidence(e.tenant, e.id, True)

    @work(thread=True, exclusive=True, group="timeline-evidence", exit_on_error=False, description="read evidence")
    def load_evidence(self, tenant: str, event_id: str, open_locker: bool) -> None:
        with self.store_guard:
            refs = event_evidence(self.home, tenant, event_id)
        self.loaded(TimelineEvidenceLoaded(refs, open_locker))

    def on_timeline_evidence_loaded(self, message: TimelineEvidenceLoaded) -> None:
        refs = message.refs
        if not message.open_locker:
            self.app.push_screen(TextModal(f"evidence of {refs.event.id}", evidence_text(refs)))
            return
        stored = [e.evidence_id for e in refs.evidence if e.evidence_id is not None]
        if not stored:
            self.notify("this event links no evidence in this locker; x shows its references", severity="warning")
            return
        self.app.call_later(self.app.run_action, f"open_evidence({refs.event.tenant!r}, {stored[0]!r})")
