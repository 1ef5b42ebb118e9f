"""Data browser: what `stella data stats|list|show` shows, a page at a time."""

from __future__ import annotations

from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import DataTable, Footer, Header, Input, Select, Static

from app.tui.messages import PageRead, Shown
from app.tui.screens.base import StellaScreen
from app.tui.screens.modals import TextModal
from app.tui.text import cells, json_text, plain
from core.query import ListKind
from core.tenants import DEFAULT_TENANT
from services.data import DataPage, data_stats, list_data, short_value, show_data

PAGE = 50


def ident_of(kind: ListKind, row: dict[str, Any]) -> str:
    """What `stella data show` takes for a listed row: an advisory ID, else the document's sha256."""
    if kind is ListKind.ADVISORIES:
        return str(row["advisory_id"])
    return str(row.get("sha256") or row["document_sha256"])


def stats_text(stats: dict[str, dict[str, int]]) -> str:
    """`stella data stats` as text: per tenant, documents per kind, then every table's count."""
    if not stats:
        return "the store is empty; import documents with `stella import PATH`"
    lines: list[str] = []
    for tenant, counts in sorted(stats.items()):
        lines.append(f"tenant {tenant}")
        kinds = sorted((k.split(".", 1)[1], v) for k, v in counts.items() if k.startswith("documents."))
        lines += [f"  documents ({k:<12}) {v:>8}" for k, v in kinds]
        rows = [(k, v) for k, v in sorted(counts.items()) if "." not in k or k == "advisories.distinct_ids"]
        lines += [f"  {k:<24} {v:>8}" for k, v in rows]
    return "\n".join(lines)


def record_text(result: dict[str, Any]) -> str:
    """`stella data show` for a reader: the document's fields, what was parsed from it (a count per table and the
    first rows' identifying fields), then the whole JSON below."""
    lines: list[str] = []
    document = result.get("document") or {}
    width = max((len(k) for k in document), default=0)
    lines += [f"{k:<{width}}  {'' if v is None else v}" for k, v in document.items()]
    revisions = result.get("revisions") or []
    if len(revisions) > 1:
        lines.append(f"{'revisions':<{width}}  {len(revisions)} (the latest is shown)")
    parsed = [(k, v) for k, v in result.items() if k not in ("document", "revisions") and isinstance(v, list) and v]
    if parsed:
        lines += ["", "parsed from it"]
        for table, table_rows in parsed:
            lines.append(f"  {table}: {len(table_rows)}")
            for row in table_rows[:5]:
                ident = _row_label(row)
                if ident:
                    lines.append(f"    {ident}")
            if len(table_rows) > 5:
                lines.append(f"    ... {len(table_rows) - 5} more")
    lines += ["", "JSON (stella data show --json)", json_text(result)]
    return "\n".join(lines)


#: The fields that name a parsed row, in the order they are tried.
_LABEL_FIELDS = ("advisory_id", "cve_id", "vulnerability_id", "purl", "name", "subject", "predicate_type", "title")


def _row_label(row: Any) -> str:
    if not isinstance(row, dict):
        return ""
    found = [str(row[k]) for k in _LABEL_FIELDS if row.get(k) not in (None, "")]
    return "  ".join(found[:2])


def row_matches(row: dict[str, Any], columns: list[str], needle: str) -> bool:
    """The filter of the Data screen: the text appears in a cell as shown, ignoring case."""
    needle = needle.casefold()
    return any(needle in str(short_value(row[c])).casefold() for c in columns)


class DataScreen(StellaScreen):
    """Pick a tenant and what to list; enter opens the row as `stella data show` prints it. The table has the
    focus on arrival, so the letters in the footer act; `t` goes to the tenant field, `/` to the filter.

    Typing in the filter narrows the page shown; enter in it searches the whole tenant (`stella data list KIND
    --search TEXT`: ids, aliases, titles, ignoring case), a page at a time; enter with the filter empty lists
    everything again."""

    AUTO_FOCUS = "#data-table"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "focus('#data-filter')", "Filter", key_display="/"),
        Binding("o", "show_row", "Show"),
        Binding("right_square_bracket", "page(1)", "Next", key_display="]"),
        Binding("left_square_bracket", "page(-1)", "Prev", key_display="["),
        Binding("s", "stats", "Stats"),
        Binding("t", "focus('#data-tenant')", "Tenant"),
        Binding("r", "refresh", "Refresh", show=False),
        Binding("escape", "leave_field", "Leave field", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.page_offset = 0
        self.total = 0
        self.rows: list[dict[str, Any]] = []
        self.page: DataPage | None = None
        self.kind = ListKind.DOCUMENTS
        #: The store-wide search the pages come from (None: every row of the kind).
        self.search: str | None = None
        #: A search just submitted: when its first page arrives, a single match opens, and none is looked up.
        self._submitted: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(classes="row form"):
            yield Input(value=DEFAULT_TENANT, placeholder="tenant", id="data-tenant")
            yield Select([(k.value, k.value) for k in ListKind], value="documents", allow_blank=False, id="data-kind")
            yield Static("", id="data-summary", markup=False)
        yield Input(
            placeholder="/ filter this page; enter: search the tenant by id, alias or title",
            id="data-filter",
            compact=True,
        )
        yield DataTable(id="data-table", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "data"
        self.action_refresh()

    def resumed(self) -> None:
        self.action_refresh()

    @property
    def tenant(self) -> str:
        return self.tenant_in("#data-tenant")

    @on(Input.Submitted, "#data-tenant")
    def tenant_submitted(self) -> None:
        self.page_offset = 0
        self.action_refresh()
        self.query_one("#data-table", DataTable).focus()

    @on(Select.Changed, "#data-kind")
    def kind_changed(self, event: Select.Changed) -> None:
        kind = ListKind(str(event.value))
        if kind is self.kind:
            return  # the Select announcing its initial value
        self.kind = kind
        self.page_offset = 0
        self.action_refresh()

    def action_refresh(self) -> None:
        self.query_one("#data-summary", Static).update("  loading ...")
        self.load(self.tenant, self.kind, self.page_offset, self.search)

    def action_page(self, step: int) -> None:
        offset = self.page_offset + step * PAGE
        if 0 <= offset < max(self.total, 1):
            self.page_offset = offset
            self.action_refresh()

    @work(thread=True, exclusive=True, group="data", exit_on_error=False, description="read the store")
    def load(self, tenant: str, kind: ListKind, offset: int, search: str | None) -> None:
        with self.store_guard:
            page = list_data(self.home, kind, tenant, limit=PAGE, offset=offset, search=search)
        self.loaded(PageRead(page))

    def on_page_read(self, message: PageRead) -> None:
        self.page = message.page
        self.total = message.page.total
        self.draw_page()
        submitted, self._submitted = self._submitted, None
        if submitted is None or submitted != message.page.search:
            return
        if message.page.total == 1:
            self.open_row()
        elif message.page.total == 0:
            self.show_ident(message.page.tenant, submitted)  # not a listed row: as `stella data show` finds it

    @on(Input.Changed, "#data-filter")
    def draw_page(self) -> None:
        """The page, the rows matching the filter only."""
        page = self.page
        if page is None:
            return
        needle = self.query_one("#data-filter", Input).value.strip()
        if needle == (page.search or ""):
            needle = ""  # the rows are the search's: each holds the text, if perhaps in a column not shown
        columns = page.columns
        self.rows = [r for r in page.items if row_matches(r, columns, needle)] if needle else page.items
        table = self.query_one("#data-table", DataTable)
        table.clear(columns=True)
        summary = self.query_one("#data-summary", Static)
        searched = f" matching {page.search!r}" if page.search else ""
        if not page.items:
            summary.update(plain(f"  no {page.kind.value}{searched} in tenant {page.tenant}"))
            return
        for column in columns:
            table.add_column(column, key=column)
        for row in self.rows:
            table.add_row(*cells(*(short_value(row[c]) for c in columns)))
        last = page.offset + len(page.items)
        shown = plain(f"  {page.kind.value} {page.offset + 1}-{last} of {page.total}{searched}")
        if needle:
            shown += plain(f", {len(self.rows)} match {needle!r}")
        summary.update(shown)

    @on(Input.Submitted, "#data-filter")
    def filter_submitted(self) -> None:
        """Enter in the filter: the tenant's rows of this kind that hold the text, from the first page; a single
        match opens, and with none the text is looked up as `stella data show` does (an advisory id or alias, a
        document id, a sha256 prefix). Enter with the filter empty lists every row again (or, with no search to
        leave, opens the row under the cursor)."""
        needle = self.query_one("#data-filter", Input).value.strip()
        self.query_one("#data-table", DataTable).focus()
        if needle:
            self.search = self._submitted = needle
        elif self.search is not None:
            self.search = None
        else:
            self.open_row()
            return
        self.page_offset = 0
        self.action_refresh()

    def action_show_row(self) -> None:
        table = self.query_one("#data-table", DataTable)
        if table.has_focus:
            self.open_row()

    def open_row(self) -> None:
        """The row under the cursor, as `stella data show` finds it."""
        table = self.query_one("#data-table", DataTable)
        if self.rows and 0 <= table.cursor_row < len(self.rows):
            self.show_ident(self.tenant, ident_of(self.kind, self.rows[table.cursor_row]))

    @on(DataTable.RowSelected, "#data-table")
    def row_selected(self) -> None:
        self.action_show_row()

    @work(thread=True, group="data-show", exit_on_error=False, description="read a document")
    def show_ident(self, tenant: str, ident: str) -> None:
        with self.store_guard:
            result = show_data(self.home, tenant, ident)
        text = record_text(result)
        self.post_message(Shown(f"{ident} in tenant {tenant}", text))

    def on_shown(self, message: Shown) -> None:
        self.app.push_screen(TextModal(message.title, message.text))

    def action_stats(self) -> None:
        self.load_stats()

    @work(thread=True, group="data-stats", exit_on_error=False, description="count the store")
    def load_stats(self) -> None:
        with self.store_guard:
            stats = data_stats(self.home)
        self.post_message(Shown("store counts (stella data stats)", stats_text(stats)))
