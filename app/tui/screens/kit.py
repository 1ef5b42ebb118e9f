"""Offline Kit: pick finished runs, choose the medium, see the volume plan, assemble it, verify a volume.

The runs table lists the tenant's finished runs; space picks or drops the highlighted one. The medium (DVD 4.7G,
DVD DL 8.5G, BD 25G, BD DL 50G, or a custom size typed as `stella kit` takes it) and the picked runs give the plan:
each volume, what lies on it and how full it is (`stella kit plan`). ctrl+a assembles the kit into the output
directory with the signing key, with progress (`stella kit assemble`; ctrl+x cancels, nothing is left). ctrl+t
verifies a volume directory alone, check by check (`stella kit verify`).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, DataTable, Footer, Header, Input, Label, ProgressBar, Select, Static

from app.tui.messages import (
    CheckCompleted,
    KitAssembled,
    KitPlanned,
    KitRunsLoaded,
    KitVolumeVerified,
    PhaseStarted,
    ProgressAdvanced,
)
from app.tui.progress import MessageObserver
from app.tui.screens.base import StellaScreen, add_check_row, sentence_of, shown_path
from app.tui.text import cells
from core.errors import Cancelled, StellaError
from core.kit import volume_dir_name
from core.kit_plan import MEDIA, KitPlan, parse_size, size_text
from core.progress import CancelToken
from core.runs import ExportRun, RunState
from core.tenants import DEFAULT_TENANT
from services import kit as kit_service
from services.export import list_runs

#: The media offered, in the order shown: (label, the size `stella kit` takes).
MEDIUMS = (("DVD 4.7G", "dvd"), ("DVD DL 8.5G", "dvd-dl"), ("BD 25G", "bd"), ("BD DL 50G", "bd-dl"), ("custom", ""))
RUNS_LIMIT = 100


class KitScreen(StellaScreen):
    """Runs to put on the kit, the medium, the plan, assemble and verify."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "toggle_run", "Pick run"),
        Binding("ctrl+r", "plan", "Plan"),
        Binding("ctrl+a", "assemble", "Assemble"),
        Binding("ctrl+t", "verify", "Verify volume"),
        Binding("ctrl+x", "cancel", "Cancel"),
        Binding("escape", "leave_field", "Leave field", show=False),
    ]
    AUTO_FOCUS = "#kit-runs"

    def __init__(self) -> None:
        super().__init__()
        self.runs: dict[str, ExportRun] = {}
        self.picked: list[str] = []
        self.plan: KitPlan | None = None
        self.token: CancelToken | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll():
            with Horizontal(classes="row"):
                yield Input(value=DEFAULT_TENANT, placeholder="tenant", id="kit-tenant", compact=True)
                yield Select(
                    [(label, value or "custom") for label, value in MEDIUMS],
                    value="dvd",
                    allow_blank=False,
                    id="kit-medium",
                    compact=True,
                )
                yield Input(placeholder="custom size: 700M, 4GiB", id="kit-size", compact=True)
            yield Static("space picks the highlighted run; ctrl+r plans", id="kit-picked", markup=False)
            yield DataTable(id="kit-runs", cursor_type="row", zebra_stripes=True)
            yield Label("Volume plan", classes="section")
            yield Static("", id="kit-summary", markup=False)
            yield DataTable(id="kit-plan", cursor_type="row", zebra_stripes=True)
            with Horizontal(classes="row"):
                yield Input(placeholder="signing key name", id="kit-key", compact=True)
                yield Input(placeholder="output directory (new)", id="kit-out", compact=True)
                yield Button("Assemble", id="kit-assemble", variant="primary", compact=True)
            yield ProgressBar(id="kit-progress", show_eta=False)
            yield Static("", id="kit-result", markup=False)
            yield Label("Verify a volume (ctrl+t)", classes="section")
            with Horizontal(classes="row"):
                yield Input(placeholder="volume directory", id="kit-volume", compact=True)
                yield Input(placeholder="kit signer PEM (default: trust store)", id="kit-pub", compact=True)
            yield Static("", id="kit-verdict", markup=False)
            yield DataTable(id="kit-checks", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "offline kit"
        columns = {
            "#kit-runs": ("pick", "run", "profile", "bytes", "bundle"),
            "#kit-plan": ("volume", "file", "bundle", "bytes"),
            "#kit-checks": ("result", "check", "detail"),
        }
        for selector, headings in columns.items():
            table = self.query_one(selector, DataTable)
            for heading in headings:
                table.add_column(heading, key=heading)
        self.query_one("#kit-size", Input).display = False
        self.query_one("#kit-progress", ProgressBar).display = False  # until an assemble runs
        self.load_runs(self.tenant_in("#kit-tenant"))

    def resumed(self) -> None:
        self.load_runs(self.tenant_in("#kit-tenant"))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel":
            return self.token is not None
        return True

    # -- runs ------------------------------------------------------------------------------------------------------
    @on(Input.Submitted, "#kit-tenant")
    def tenant_changed(self) -> None:
        self.picked = []
        self.load_runs(self.tenant_in("#kit-tenant"))

    @work(thread=True, exclusive=True, group="kit-runs", exit_on_error=False, description="list finished runs")
    def load_runs(self, tenant: str) -> None:
        with self.store_guard:
            runs = list_runs(self.home, tenant, limit=RUNS_LIMIT)
        finished = [
            r
            for r in runs
            if r.state is RunState.SUCCEEDED and r.artifact_path is not None and r.artifact_path.is_file()
        ]
        self.loaded(KitRunsLoaded(finished))

    def on_kit_runs_loaded(self, message: KitRunsLoaded) -> None:
        self.runs = {r.run_id: r for r in message.runs}
        self.picked = [p for p in self.picked if p in self.runs]
        self._draw_runs()
        self.drawn()

    def _draw_runs(self) -> None:
        table = self.query_one("#kit-runs", DataTable)
        row = table.cursor_row
        table.clear()
        for run in self.runs.values():
            mark = "[x]" if run.run_id in self.picked else "[ ]"
            assert run.artifact_path is not None
            size = size_text(run.artifact_size or 0)
            table.add_row(*cells(mark, run.run_id, run.profile_id, size, shown_path(run.artifact_path)), key=run.run_id)
        if self.runs:
            table.move_cursor(row=min(row, len(self.runs) - 1))
        picked = len(self.picked)
        self.query_one("#kit-picked", Static).update(
            f"{picked} of {len(self.runs)} finished runs picked; ctrl+r plans"
            if self.runs
            else "no finished run with its bundle on disk: export one first (e)"
        )

    def action_toggle_run(self) -> None:
        table = self.query_one("#kit-runs", DataTable)
        if not self.runs or table.cursor_row < 0:
            return
        run_id = list(self.runs)[table.cursor_row]
        if run_id in self.picked:
            self.picked.remove(run_id)
        else:
            self.picked.append(run_id)
        self._draw_runs()

    # -- medium and plan -------------------------------------------------------------------------------------------
    @on(Select.Changed, "#kit-medium")
    def medium_changed(self, event: Select.Changed) -> None:
        custom = event.value == "custom"
        self.query_one("#kit-size", Input).display = custom
        if custom:
            self.query_one("#kit-size", Input).focus()

    def volume_size(self) -> int:
        medium = str(self.query_one("#kit-medium", Select).value)
        if medium in MEDIA:
            return MEDIA[medium]
        return parse_size(self.query_one("#kit-size", Input).value)

    def _items(self) -> tuple[str, ...]:
        return tuple(str(self.runs[r].artifact_path) for r in self.picked)

    @on(Input.Submitted, "#kit-size")
    def action_plan(self) -> None:
        if not self.picked:
            self.query_one("#kit-summary", Static).update("pick at least one run (space) first")
            return
        try:
            size = self.volume_size()
        except StellaError as exc:
            self.show_error(*sentence_of(exc))
            return
        key = self.query_one("#kit-key", Input).value.strip() or None
        self.make_plan(kit_service.PlanRequest(self._items(), size, key))

    @work(thread=True, exclusive=True, group="kit-plan", exit_on_error=False, description="plan the kit")
    def make_plan(self, request: kit_service.PlanRequest) -> None:
        self.loaded(KitPlanned(kit_service.plan(self.home, request)))

    def on_kit_planned(self, message: KitPlanned) -> None:
        self.plan = message.plan
        table = self.query_one("#kit-plan", DataTable)
        table.clear()
        fills = []
        for v in message.plan.volumes:
            for p in v.parts:
                what = p.path.rsplit("/", 1)[-1] if p.parts == 1 else f"part {p.part}/{p.parts}"
                table.add_row(*cells(volume_dir_name(v.volume), what, p.bundle, size_text(p.size)))
            fills.append(f"{volume_dir_name(v.volume)} {v.fill:.0%}")
        count = len(message.plan.volumes)
        split = f"; split: {', '.join(message.plan.split)}" if message.plan.split else ""
        self.query_one("#kit-summary", Static).update(
            f"{count} volume{'s' if count != 1 else ''} of {size_text(message.plan.volume_size)}: "
            f"{', '.join(fills)} full{split}"
        )

    # -- assemble --------------------------------------------------------------------------------------------------
    @on(Button.Pressed, "#kit-assemble")
    @on(Input.Submitted, "#kit-out")
    def action_assemble(self) -> None:
        result = self.query_one("#kit-result", Static)
        key = self.query_one("#kit-key", Input).value.strip()
        out = self.query_one("#kit-out", Input).value.strip()
        if not self.picked or not key or not out:
            result.update("pick runs (space), then type the signing key and a new output directory")
            self.query_one("#kit-runs" if not self.picked else "#kit-key" if not key else "#kit-out").focus()
            return
        try:
            size = self.volume_size()
        except StellaError as exc:
            self.show_error(*sentence_of(exc))
            return
        request = kit_service.AssembleRequest(
            self._items(), size, key, Path(out).expanduser(), tenant=self.tenant_in("#kit-tenant")
        )
        self.token = CancelToken()
        self.refresh_bindings()
        self.query_one("#kit-assemble", Button).disabled = True
        result.update(f"assembling into {out} ...")
        self.assemble(request, self.token)

    @work(thread=True, exclusive=True, group="kit-assemble", exit_on_error=False, description="assemble the kit")
    def assemble(self, request: kit_service.AssembleRequest, token: CancelToken) -> None:
        try:
            made = kit_service.assemble(self.home, request, MessageObserver(self, token))
        except Cancelled as exc:
            self.post_message(KitAssembled(None, exc.diagnostics()))
            return
        finally:
            self.app.call_from_thread(self._enable)
        self.post_message(KitAssembled(made))

    def _enable(self) -> None:
        self.query_one("#kit-assemble", Button).disabled = False
        self.token = None
        self.refresh_bindings()

    def action_cancel(self) -> None:
        if self.token is not None:
            self.token.cancel()
            self.query_one("#kit-result", Static).update("cancelling ...")

    def on_phase_started(self, message: PhaseStarted) -> None:
        bar = self.query_one("#kit-progress", ProgressBar)
        bar.display = True
        bar.update(total=message.total, progress=0)

    def on_progress_advanced(self, message: ProgressAdvanced) -> None:
        self.query_one("#kit-progress", ProgressBar).advance(message.units)

    def on_kit_assembled(self, message: KitAssembled) -> None:
        result = self.query_one("#kit-result", Static)
        made = message.kit
        if made is None:
            result.update(f"not assembled: {message.sentence}; nothing was written")
            return
        self.on_kit_planned(KitPlanned(made.plan))
        lines = [
            f"assembled kit {made.index.kit_id} in {shown_path(made.out)}: {len(made.plan.volumes)} volumes, "
            f"{len(made.index.bundles)} bundles; SHA256SUMS signed"
        ]
        records = made.records
        if records is not None and records.evidence is not None:
            lines.append(f"sealed as evidence {records.evidence.evidence_id} in tenant {records.tenant}")
        if records is not None and records.evidence_error is not None:
            lines.append(f"not sealed into the evidence locker: {sentence_of(records.evidence_error)[1]}")
        if records is not None and records.event_error is not None:
            lines.append(f"not on the timeline: {sentence_of(records.event_error)[1]}")
        result.update("\n".join(lines))
        self.query_one("#kit-volume", Input).value = str(made.out / volume_dir_name(1))

    # -- verify a volume -------------------------------------------------------------------------------------------
    @on(Input.Submitted, "#kit-volume")
    @on(Input.Submitted, "#kit-pub")
    def action_verify(self) -> None:
        volume = self.query_one("#kit-volume", Input).value.strip()
        verdict = self.query_one("#kit-verdict", Static)
        if not volume:
            verdict.update("type a volume directory (a vol-NN, a USB stick, a mounted or extracted ISO)")
            self.query_one("#kit-volume", Input).focus()
            return
        pub = self.query_one("#kit-pub", Input).value.strip()
        self.query_one("#kit-checks", DataTable).clear()
        verdict.update(f"verifying {volume} ...")
        self.verify_volume(Path(volume).expanduser(), (Path(pub).expanduser(),) if pub else ())

    @work(thread=True, exclusive=True, group="kit-verify", exit_on_error=False, description="verify a volume")
    def verify_volume(self, volume: Path, keys: tuple[Path, ...]) -> None:
        report = kit_service.verify_kit(self.home, [volume], keys, MessageObserver(self, CancelToken()))
        self.post_message(KitVolumeVerified(report))

    def on_check_completed(self, message: CheckCompleted) -> None:
        add_check_row(self.query_one("#kit-checks", DataTable), message.check)

    def on_kit_volume_verified(self, message: KitVolumeVerified) -> None:
        verdict = self.query_one("#kit-verdict", Static)
        error = message.report.first_error
        verdict.set_class(error is None, "ok")
        verdict.set_class(error is not None, "failed")
        if error is not None:
            verdict.update(f"not verified: {sentence_of(error)[1]}")
            return
        lines = []
        for v in message.report.volumes:
            assert v.volume is not None
            lines.append(f"verified volume {v.volume.volume} of {v.volume.volumes} ({v.volume.label})")
            if v.complete:
                lines.append(f"completes: {', '.join(v.complete)}")
            lines += [f"{name} also needs volume(s) {', '.join(map(str, n))}" for name, n in v.needs.items()]
        verdict.update("\n".join(lines))
