"""Bootstrap packs: build one from a pack spec, list a verified pack's images and charts, push them to a registry.

The build row takes the spec (bootstrap.yaml), an optional output path (empty: under ``HOME/exports/``), the signing
key and the tenant; ctrl+b builds it with progress (`stella bootstrap build`; ctrl+x cancels). The pack just built
fills the pack field; ctrl+t verifies a pack (signature against the PEM given or the trust store, every digest) and
lists its images and charts (`stella bootstrap list`); enter on a row shows the entry in full. ctrl+o verifies the
pack again and pushes every image and chart by digest to ``HOST[/PREFIX]`` (`stella bootstrap push`), showing how
each one's blobs got there. Plain HTTP (the checkbox) is for a registry on this machine only, and applies to the
push and to the ``docker://`` sources of a build. Every step calls :mod:`services.bootstrap`, as the CLI does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Checkbox, DataTable, Footer, Header, Input, Label, ProgressBar, Static

from app.tui.messages import PhaseStarted, ProgressAdvanced
from app.tui.progress import MessageObserver
from app.tui.screens.base import StellaScreen, shown_path
from app.tui.screens.modals import TextModal
from app.tui.text import cells
from core.errors import Cancelled
from core.progress import CancelToken
from core.runs import ExportRun
from core.tenants import DEFAULT_TENANT
from services.bootstrap import Pack, Pushed, build_pack, push_pack, verified_pack
from services.distribute import Access


@dataclass
class PackBuilt(Message):
    """A built pack's run, or (``export_run`` None) why not: a cancel's sentence, or empty when it failed."""

    export_run: ExportRun | None
    cancelled: str | None = None


@dataclass
class PackListed(Message):
    """A verified pack and its entries, or (``pack`` None) a cancel's sentence, or empty when it failed."""

    path: Path
    pack: Pack | None
    cancelled: str | None = None


@dataclass
class PackPushed(Message):
    """What a push put on the registry, or (``pushed`` None) a cancel's sentence, or empty when it failed."""

    registry: str
    pushed: list[Pushed] | None
    cancelled: str | None = None


def platforms_text(entry: dict[str, Any]) -> str:
    """An entry's platforms as `stella bootstrap list` prints them: ``os/architecture[/variant]``, comma-separated."""
    return ", ".join(
        "/".join(str(p[k]) for k in ("os", "architecture", "variant") if k in p) for p in entry.get("platforms") or []
    )


def short_digest(digest: str) -> str:
    """``sha256:`` and the first 12 hex digits (the whole digest is in the entry's detail, enter)."""
    algorithm, _, hexd = digest.partition(":")
    return f"{algorithm}:{hexd[:12]}" if hexd else digest


class BootstrapScreen(StellaScreen):
    """Build, list and push bootstrap packs of images and Helm charts."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+b", "build", "Build"),
        Binding("ctrl+t", "list_pack", "List"),
        Binding("ctrl+o", "push", "Push"),
        Binding("ctrl+x", "cancel", "Cancel"),
        Binding("escape", "leave_field", "Leave field", show=False),
    ]
    AUTO_FOCUS = "#boot-spec"

    def __init__(self) -> None:
        super().__init__()
        self.token: CancelToken | None = None
        #: The entries of the pack listed last (rows of the entries table, in order).
        self.entries: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="boot-body"):
            yield Label("Build a pack from a spec (ctrl+b)", classes="section")
            with Horizontal(classes="row"):
                yield Input(placeholder="pack spec (bootstrap.yaml)", id="boot-spec", compact=True)
                yield Input(placeholder="out (default: HOME/exports/)", id="boot-out", compact=True)
            with Horizontal(classes="row"):
                yield Input(placeholder="signing key (default: the profile's)", id="boot-key", compact=True)
                yield Input(value=DEFAULT_TENANT, placeholder="tenant", id="boot-tenant", compact=True)
                yield Button("Build", id="boot-build", variant="primary", compact=True)
            yield ProgressBar(id="boot-progress", show_eta=False)
            yield Static("", id="boot-built", markup=False)
            yield Label("Verify and list a pack (ctrl+t)", classes="section")
            with Horizontal(classes="row"):
                yield Input(placeholder="pack (.tar.zst)", id="boot-pack", compact=True)
                yield Input(placeholder="signer PEM (default: trust store)", id="boot-pub", compact=True)
                yield Button("List", id="boot-list", compact=True)
            yield Static("", id="boot-verdict", markup=False)
            yield DataTable(id="boot-entries", cursor_type="row", zebra_stripes=True)
            yield Label("Push the pack to a registry (ctrl+o)", classes="section")
            with Horizontal(classes="row"):
                yield Input(placeholder="registry HOST[/PREFIX]", id="boot-registry", compact=True)
                yield Checkbox("plain HTTP (this machine)", id="boot-plain", compact=True)
                yield Button("Push", id="boot-push", compact=True)
            yield Static("", id="boot-pushed", markup=False)
            yield DataTable(id="boot-pushes", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "bootstrap packs"
        columns = {
            "#boot-entries": ("type", "name", "digest", "platforms", "source"),
            "#boot-pushes": ("type", "reference", "uploaded", "mounted", "present"),
        }
        for selector, headings in columns.items():
            table = self.query_one(selector, DataTable)
            for heading in headings:
                table.add_column(heading, key=heading)
        self.query_one("#boot-progress", ProgressBar).display = False  # until a build, list or push runs
        self.drawn()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel":
            return self.token is not None
        return True

    # -- shared: one piece of work at a time, its progress, its end ------------------------------------------------
    def _begin(self, what: str, status: str) -> CancelToken | None:
        """A new token for the work ``what`` (None, with a notice, while other work runs); ``status`` says it began."""
        if self.token is not None:
            self.notify("wait until the build, listing or push that runs has ended (ctrl+x cancels it)")
            return None
        self.token = CancelToken()
        self.refresh_bindings()
        for button in self.query(Button):
            button.disabled = True
        shown = self.query_one(what, Static)
        shown.update(status)
        shown.set_class(False, "ok")
        shown.set_class(False, "failed")
        return self.token

    def _end(self) -> None:
        self.token = None
        self.refresh_bindings()
        for button in self.query(Button):
            button.disabled = False

    def _ended(self, what: str, text: str, *, ok: bool) -> None:
        self._end()
        shown = self.query_one(what, Static)
        shown.update(text)
        shown.set_class(ok, "ok")
        shown.set_class(not ok, "failed")

    def action_cancel(self) -> None:
        if self.token is not None:
            self.token.cancel()
            self.notify("cancelling ...")

    def on_phase_started(self, message: PhaseStarted) -> None:
        bar = self.query_one("#boot-progress", ProgressBar)
        bar.display = True
        bar.update(total=message.total, progress=0)

    def on_progress_advanced(self, message: ProgressAdvanced) -> None:
        self.query_one("#boot-progress", ProgressBar).advance(message.units)

    def _access(self) -> Access:
        """How to reach a registry: no credentials (a registry that asks for them needs the CLI's flags), plain HTTP
        when the box is ticked (refused for a registry not on this machine, as `--plain-http` is)."""
        return Access(plain_http=self.query_one("#boot-plain", Checkbox).value)

    def _field(self, selector: str) -> str:
        return self.query_one(selector, Input).value.strip()

    # -- build -----------------------------------------------------------------------------------------------------
    @on(Button.Pressed, "#boot-build")
    @on(Input.Submitted, "#boot-spec")
    @on(Input.Submitted, "#boot-out")
    @on(Input.Submitted, "#boot-key")
    def action_build(self) -> None:
        spec = self._field("#boot-spec")
        if not spec:
            self.query_one("#boot-built", Static).update("type the pack spec (bootstrap.yaml) first")
            self.query_one("#boot-spec", Input).focus()
            return
        tenant = self.tenant_in("#boot-tenant")
        out = self._field("#boot-out")
        key = self._field("#boot-key") or None
        token = self._begin("#boot-built", f"building {spec} ...")
        if token is not None:
            where = Path(out).expanduser() if out else None
            self.build(Path(spec).expanduser(), tenant, where, key, self._access(), token)

    @on(Input.Submitted, "#boot-tenant")
    def tenant_submitted(self) -> None:
        self.action_build()

    @work(thread=True, exclusive=True, group="boot-build", exit_on_error=False, description="build a bootstrap pack")
    def build(
        self, spec: Path, tenant: str, out: Path | None, key: str | None, access: Access, token: CancelToken
    ) -> None:
        observer = MessageObserver(self, token)
        try:
            with self.store_guard:
                run = build_pack(self.home, spec, tenant, out=out, key=key, access=access, observer=observer)
        except Cancelled as exc:
            observer.flush()
            self.post_message(PackBuilt(None, exc.diagnostics()))
            return
        except BaseException:
            observer.flush()
            self.post_message(PackBuilt(None))
            raise  # the screen shows the CLI's sentence in a dialog
        observer.flush()
        self.post_message(PackBuilt(run))

    def on_pack_built(self, message: PackBuilt) -> None:
        run = message.export_run
        if run is None:
            why = f"cancelled: {message.cancelled}" if message.cancelled else "not built (the dialog says why)"
            self._ended("#boot-built", why, ok=False)
            return
        path = run.artifact_path
        shown = shown_path(path) if path is not None else "?"
        self._ended(
            "#boot-built",
            f"built {shown} (run {run.run_id}, tenant {run.tenant}, signed with key {run.key_name}); ctrl+t lists it",
            ok=True,
        )
        if path is not None:
            self.query_one("#boot-pack", Input).value = str(path)

    # -- list ------------------------------------------------------------------------------------------------------
    def _pack_and_keys(self, status: str) -> tuple[Path, tuple[Path, ...]] | None:
        pack = self._field("#boot-pack")
        if not pack:
            self.query_one(status, Static).update("type a pack path first (or build one: ctrl+b)")
            self.query_one("#boot-pack", Input).focus()
            return None
        pub = self._field("#boot-pub")
        return Path(pack).expanduser(), (Path(pub).expanduser(),) if pub else ()

    @on(Button.Pressed, "#boot-list")
    @on(Input.Submitted, "#boot-pack")
    @on(Input.Submitted, "#boot-pub")
    def action_list_pack(self) -> None:
        found = self._pack_and_keys("#boot-verdict")
        if found is None:
            return
        pack, keys = found
        token = self._begin("#boot-verdict", f"verifying {shown_path(pack)} ...")
        if token is not None:
            self.entries = []
            self.query_one("#boot-entries", DataTable).clear()
            self.list_pack(pack, keys, token)

    @work(thread=True, exclusive=True, group="boot-list", exit_on_error=False, description="verify and list a pack")
    def list_pack(self, pack: Path, keys: tuple[Path, ...], token: CancelToken) -> None:
        observer = MessageObserver(self, token)
        try:
            listed = verified_pack(self.home, pack, keys, observer)
        except Cancelled as exc:
            observer.flush()
            self.post_message(PackListed(pack, None, exc.diagnostics()))
            return
        except BaseException:
            observer.flush()
            self.post_message(PackListed(pack, None))
            raise
        observer.flush()
        self.post_message(PackListed(pack, listed))

    def on_pack_listed(self, message: PackListed) -> None:
        pack = message.pack
        if pack is None:
            why = f"cancelled: {message.cancelled}" if message.cancelled else "not verified (the dialog says why)"
            self._ended("#boot-verdict", why, ok=False)
            return
        self.entries = pack.entries
        table = self.query_one("#boot-entries", DataTable)
        table.clear()
        for e in pack.entries:
            table.add_row(
                *cells(e["type"], e["refName"], short_digest(str(e["digest"])), platforms_text(e), e["source"])
            )
        images = sum(1 for e in pack.entries if e["type"] == "image")
        charts = sum(1 for e in pack.entries if e["type"] == "chart")
        who = pack.report.signer or {}
        signer = f", signed by {who.get('label')} (key {who.get('keyid')})" if who else ""
        self._ended(
            "#boot-verdict",
            f"verified {shown_path(message.path)}: {images} images, {charts} charts{signer}; enter shows an entry",
            ok=True,
        )

    @on(DataTable.RowSelected, "#boot-entries")
    def entry_selected(self, event: DataTable.RowSelected) -> None:
        if 0 <= event.cursor_row < len(self.entries):
            entry = self.entries[event.cursor_row]
            text = json.dumps(entry, indent=2, sort_keys=True, ensure_ascii=False)
            self.app.push_screen(TextModal(f"{entry.get('type')} {entry.get('refName')}", text))

    # -- push ------------------------------------------------------------------------------------------------------
    @on(Button.Pressed, "#boot-push")
    @on(Input.Submitted, "#boot-registry")
    def action_push(self) -> None:
        found = self._pack_and_keys("#boot-pushed")
        if found is None:
            return
        registry = self._field("#boot-registry")
        if not registry:
            self.query_one("#boot-pushed", Static).update("type the registry: HOST[/PREFIX], e.g. 127.0.0.1:5000/site")
            self.query_one("#boot-registry", Input).focus()
            return
        pack, keys = found
        token = self._begin("#boot-pushed", f"verifying {shown_path(pack)}, then pushing to {registry} ...")
        if token is not None:
            self.query_one("#boot-pushes", DataTable).clear()
            self.push(pack, registry, self._access(), keys, token)

    @work(thread=True, exclusive=True, group="boot-push", exit_on_error=False, description="push a bootstrap pack")
    def push(self, pack: Path, registry: str, access: Access, keys: tuple[Path, ...], token: CancelToken) -> None:
        observer = MessageObserver(self, token)
        try:
            pushed = push_pack(self.home, pack, registry, access, keys=keys, observer=observer)
        except Cancelled as exc:
            observer.flush()
            self.post_message(PackPushed(registry, None, exc.diagnostics()))
            return
        except BaseException:
            observer.flush()
            self.post_message(PackPushed(registry, None))
            raise
        observer.flush()
        self.post_message(PackPushed(registry, pushed))

    def on_pack_pushed(self, message: PackPushed) -> None:
        if message.pushed is None:
            why = f"cancelled: {message.cancelled}" if message.cancelled else "not pushed (the dialog says why)"
            self._ended("#boot-pushed", why, ok=False)
            return
        table = self.query_one("#boot-pushes", DataTable)
        table.clear()
        totals = {"uploaded": 0, "mounted": 0, "present": 0}
        for p in message.pushed:
            counts = [p.blobs.get(how, 0) for how in totals]
            for how, n in zip(totals, counts, strict=True):
                totals[how] += n
            table.add_row(*cells(p.kind, p.reference, *counts))
        self._ended(
            "#boot-pushed",
            f"pushed {len(message.pushed)} images and charts to {message.registry}: blobs {totals['uploaded']} "
            f"uploaded, {totals['mounted']} mounted, {totals['present']} already there",
            ok=True,
        )
