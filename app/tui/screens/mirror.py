"""Mirror: a receiver's mirror directory, as `stella mirror status|verify|rollback|query` show it.

Type the directory; its current state, TUF versions and expiry, previous state and the receipts of every import
follow. ctrl+t verifies the current state afresh, check by check; ctrl+b rolls back to the previous state after a
confirmation; the query row finds documents by id, purl or SBOM subject. Importing a bundle into a mirror is the
Verify screen's: verify it there (v), then ctrl+n.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, DataTable, Footer, Header, Input, Label, Select, Static

from app.tui.messages import MirrorChanged, MirrorCheckDone, MirrorQueried, MirrorStatusLoaded, MirrorVerified
from app.tui.screens.base import StellaScreen, add_check_row, shown_path
from app.tui.screens.dashboard import app_now, time_left
from app.tui.screens.forms import ConfirmModal
from app.tui.text import cells
from core.progress import Check, CheckObserver
from services.mirror import (
    MirrorStatus,
    query_mirror,
    receipt_history,
    rollback,
    status,
    verify_current,
)
from services.mirror_dir import MirrorDir

#: The query row's keys: (choice shown, `stella mirror query` option).
QUERY_KEYS = (("id", "--id"), ("purl", "--purl"), ("subject", "--subject"))
IMPORT_HINT = "import a mirror bundle: verify it on the Verify screen (v), then ctrl+n"


def layout_of(mirror: Path) -> str:
    """What a directory without a current state is: ``"empty"`` (nothing in it yet: an import can start a mirror
    there), ``"mirror"`` (it has the mirror's layout: states, receipts, quarantine or the current link) or
    ``"other"`` (something else's files)."""
    found = MirrorDir(mirror)
    marks = (found.current_link, found.previous_link, found.states, found.receipts, found.quarantine_dir)
    if any(p.is_symlink() or p.exists() for p in marks):
        return "mirror"
    return "other" if any(mirror.iterdir()) else "empty"


def state_lines(mirror: MirrorStatus, layout: str = "mirror") -> list[str]:
    """`stella mirror status` in a few lines: the current state, expiry, previous state, quarantine."""
    current = mirror.current
    if current is None:
        where = shown_path(mirror.mirror)
        if layout == "other":
            return [f"{where}: not a mirror directory (no states/, receipts/ or current); {IMPORT_HINT}"]
        return [f"{where}: empty mirror (no import yet); {IMPORT_HINT}"]
    lines = [
        f"state {current.state_digest[:12]}  sequence {current.sequence}  tenant {current.tenant}  "
        f"{current.documents} documents",
        f"run {current.run_id}  created {current.created_at}",
    ]
    if mirror.expired:
        lines.append(f"expired at {mirror.at_text}: {', '.join(mirror.expired)}")
    previous = mirror.previous
    if previous:
        lines.append(f"previous state {previous.state_digest[:12]} (sequence {previous.sequence}): ctrl+b rolls back")
    else:
        lines.append("no previous state to roll back to")
    if mirror.quarantined:
        lines.append(f"{mirror.quarantined} bundle(s) in quarantine: {shown_path(mirror.mirror / 'quarantine')}")
    return lines


class MirrorScreen(StellaScreen):
    """Status, receipts, verify, rollback and query of one mirror directory."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+r", "status", "Status"),
        Binding("ctrl+t", "verify", "Verify"),
        Binding("ctrl+b", "rollback", "Roll back"),
        Binding("escape", "leave_field", "Leave field"),
    ]

    def __init__(self) -> None:
        super().__init__()
        #: The directory whose status is shown, and that status (None until one was read).
        self.mirror: Path | None = None
        self.shown: MirrorStatus | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll():
            with Horizontal(classes="row"):
                yield Input(placeholder="mirror directory; enter reads its status", id="mirror-dir", compact=True)
                yield Button("Status", id="mirror-load", variant="primary", compact=True)
            yield Static(IMPORT_HINT, id="mirror-state", markup=False)
            yield Label("TUF metadata the current state trusts", classes="section")
            yield DataTable(id="mirror-tuf", cursor_type="row", zebra_stripes=True)
            yield Label("Import receipts, newest first", classes="section")
            yield DataTable(id="mirror-receipts", cursor_type="row", zebra_stripes=True)
            yield Label("Verify the current state (ctrl+t)", classes="section")
            yield Static("", id="mirror-verdict", markup=False)
            yield DataTable(id="mirror-checks", cursor_type="row", zebra_stripes=True)
            yield Label("Query (stella mirror query)", classes="section")
            with Horizontal(classes="row"):
                yield Select(
                    [(name, name) for name, _ in QUERY_KEYS],
                    value="id",
                    allow_blank=False,
                    id="mirror-query-key",
                    compact=True,
                )
                yield Input(placeholder="advisory id, purl or SBOM subject; enter", id="mirror-query", compact=True)
            yield DataTable(id="mirror-hits", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "mirror"
        columns = {
            "#mirror-tuf": ("role", "version", "expires", "left"),
            "#mirror-checks": ("result", "check", "detail"),
            "#mirror-hits": ("kind", "document", "format", "sha256"),
            "#mirror-receipts": ("imported", "seq", "state", "bundle"),
        }
        for selector, headings in columns.items():
            table = self.query_one(selector, DataTable)
            for heading in headings:
                table.add_column(heading, key=heading)
        self.query_one("#mirror-dir", Input).focus()

    def resumed(self) -> None:
        if self.mirror is not None:
            self.load(self.mirror)

    def _dir(self) -> Path | None:
        text = self.query_one("#mirror-dir", Input).value.strip()
        if not text:
            self.query_one("#mirror-state", Static).update(f"type the mirror directory first; {IMPORT_HINT}")
            self.query_one("#mirror-dir", Input).focus()
            return None
        return Path(text).expanduser()

    # -- status ---------------------------------------------------------------------------------------
    @on(Button.Pressed, "#mirror-load")
    @on(Input.Submitted, "#mirror-dir")
    def action_status(self) -> None:
        mirror = self._dir()
        if mirror is not None:
            self.query_one("#mirror-checks", DataTable).clear()
            self.query_one("#mirror-verdict", Static).update("")
            self.query_one("#mirror-hits", DataTable).clear()
            self.load(mirror)

    @work(thread=True, exclusive=True, group="mirror", exit_on_error=False, description="read the mirror status")
    def load(self, mirror: Path) -> None:
        read = status(mirror, at=app_now(self))
        layout = "mirror" if read.current is not None else layout_of(mirror)
        self.loaded(MirrorStatusLoaded(mirror, read, receipt_history(mirror), layout))

    def on_mirror_status_loaded(self, message: MirrorStatusLoaded) -> None:
        self.mirror, self.shown = message.mirror, message.status
        read = message.status
        self.query_one("#mirror-state", Static).update("\n".join(state_lines(read, message.layout)))
        tuf = self.query_one("#mirror-tuf", DataTable)
        tuf.clear()
        for role, info in read.tuf.items():
            if info:
                tuf.add_row(role, str(info.version), info.expires_text, time_left(info.expires, read.at), key=role)
        receipts = self.query_one("#mirror-receipts", DataTable)
        receipts.clear()
        for r in message.receipts:
            sequence = "" if r.sequence is None else str(r.sequence)
            receipts.add_row(*cells(r.imported_at, sequence, r.state_digest[:12], r.bundle_name))
        self.drawn()

    # -- verify ---------------------------------------------------------------------------------------
    def action_verify(self) -> None:
        mirror = self._dir()
        if mirror is None:
            return
        self.query_one("#mirror-checks", DataTable).clear()
        verdict = self.query_one("#mirror-verdict", Static)
        verdict.update(f"verifying {shown_path(mirror)} ...")
        verdict.set_class(False, "ok")
        verdict.set_class(False, "failed")
        self.run_verify(mirror)

    @work(thread=True, exclusive=True, group="mirror-verify", exit_on_error=False, description="verify the mirror")
    def run_verify(self, mirror: Path) -> None:
        verified = verify_current(mirror, at=app_now(self), observer=CheckObserver(self._report))
        self.post_message(MirrorVerified(verified))

    def _report(self, check: Check) -> None:
        self.post_message(MirrorCheckDone(check))

    def on_mirror_check_done(self, message: MirrorCheckDone) -> None:
        check = message.check
        detail = add_check_row(self.query_one("#mirror-checks", DataTable), check, follow=False)
        if not check.ok:
            verdict = self.query_one("#mirror-verdict", Static)
            verdict.update(f"not verified: {detail}")
            verdict.set_class(True, "failed")

    def on_mirror_verified(self, message: MirrorVerified) -> None:
        verified = message.verified
        verdict = self.query_one("#mirror-verdict", Static)
        verdict.update(
            f"verified state {verified.state.digest[:12]} (sequence {verified.state.sequence}): {verified.files} "
            f"files match TUF targets {verified.tuf.targets_version} under root {verified.tuf.root_version}"
        )
        verdict.set_class(True, "ok")
        self.query_one("#mirror-checks", DataTable).scroll_visible(animate=False, immediate=True)

    # -- rollback -------------------------------------------------------------------------------------
    def action_rollback(self) -> None:
        mirror = self._dir()
        if mirror is None:
            return
        previous = self.shown.previous if self.shown is not None and mirror == self.mirror else None
        target = (
            f"state {previous.state_digest[:12]} (sequence {previous.sequence})" if previous else "the previous state"
        )

        def answered(yes: bool | None) -> None:
            if yes:
                # The state confirmed, so an import that changed it meanwhile makes the rollback refuse.
                self.run_rollback(mirror, previous.state_digest if previous is not None else None)

        question = f"Make {target} of {shown_path(mirror)} current again? (stella mirror rollback)"
        self.app.push_screen(ConfirmModal(question, "Roll back"), answered)

    @work(thread=True, exclusive=True, group="mirror-write", exit_on_error=False, description="roll back the mirror")
    def run_rollback(self, mirror: Path, expect: str | None = None) -> None:
        done = rollback(mirror, expect=expect)
        self.post_message(
            MirrorChanged(f"rolled back: current state {done.state_digest[:12]} (sequence {done.sequence})")
        )

    def on_mirror_changed(self, message: MirrorChanged) -> None:
        self.notify(message.text)
        self.query_one("#mirror-checks", DataTable).clear()
        self.query_one("#mirror-verdict", Static).update("")
        if self.mirror is not None:
            self.load(self.mirror)

    # -- query ----------------------------------------------------------------------------------------
    @on(Input.Submitted, "#mirror-query")
    def submit_query(self) -> None:
        mirror = self._dir()
        if mirror is None:
            return
        key = str(self.query_one("#mirror-query-key", Select).value)
        value = self.query_one("#mirror-query", Input).value.strip() or None
        self.run_query(mirror, key, value)

    @work(thread=True, exclusive=True, group="mirror-query", exit_on_error=False, description="query the mirror")
    def run_query(self, mirror: Path, key: str, value: str | None) -> None:
        found = query_mirror(
            mirror,
            document_id=value if key == "id" else None,
            purl=value if key == "purl" else None,
            subject=value if key == "subject" else None,
        )
        self.post_message(MirrorQueried(list(found.documents)))

    def on_mirror_queried(self, message: MirrorQueried) -> None:
        table = self.query_one("#mirror-hits", DataTable)
        table.clear()
        for d in message.hits:
            table.add_row(*cells(d.kind, d.document_id, d.format, d.sha256[:16]))
        if not message.hits:
            self.notify("no document matches")
