"""The run screen: plan and build one export with live progress, cancel, then the summary and a verification.

It calls what `stella export run` calls (:func:`services.export.run_export`), so a failure shows the CLI's sentence;
then it verifies the new bundle as `stella verify --key` would. Once the run succeeded, ``d`` distributes its bundle
to an OCI registry or an S3 bucket as `stella distribute` does (:func:`services.distribute.distribute_run`), in a
thread worker with progress; escape cancels it, and the result (reference and digests, or the object's location)
is shown under the summary.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Footer, Header, Label, ProgressBar, Static

from app.tui.messages import (
    CheckCompleted,
    CheckPassed,
    DistributionEnded,
    PhaseStarted,
    ProgressAdvanced,
    RunEnded,
    RunPlanned,
    RunVerified,
)
from app.tui.progress import MessageObserver
from app.tui.screens.base import StellaScreen, add_check_row, sentence_of, shown_path
from app.tui.screens.forms import Field, FormModal
from app.tui.text import cells
from core.errors import Cancelled
from core.progress import CancelToken, Check, CheckObserver
from core.runs import ExportRun, RunState
from services.distribute import Access, distribute_run
from services.distribute_s3 import S3Distribution, S3Options
from services.export import ExportRequest, run_export, shipped_text, verify_built

#: The distribution form: where to, and how to reach it (the same choices as `stella distribute`'s flags).
DISTRIBUTE_FIELDS = [
    Field("to", "Target URL", placeholder="oci://HOST[/TENANT/NAME][:TAG] or s3://BUCKET/PREFIX"),
    Field("registry_config", "Registry config (docker config.json), optional", placeholder="/path/config.json"),
    Field("credentials_file", "Credentials file (USER:PASSWORD, or AWS credentials), optional"),
    Field("plain_http", "Plain HTTP (a registry on this machine only)", choices=("no", "yes")),
    Field("ca_file", "CA file (PEM), optional"),
    Field("endpoint_url", "S3 endpoint URL (s3:// only), optional", placeholder="https://s3.lan:9000"),
    Field("path_style", "S3 path-style addressing", choices=("no", "yes")),
]


def _path(text: str) -> Path | None:
    return Path(text).expanduser() if text else None


def distribution_options(values: dict[str, str]) -> tuple[str, Access, S3Options]:
    """The target and its access from the form's values."""
    ca = _path(values.get("ca_file", ""))
    creds = _path(values.get("credentials_file", ""))
    access = Access(
        registry_config=_path(values.get("registry_config", "")),
        credentials_file=creds,
        plain_http=values.get("plain_http") == "yes",
        ca_file=ca,
    )
    s3 = S3Options(
        endpoint_url=values.get("endpoint_url") or None,
        path_style=values.get("path_style") == "yes",
        ca_file=ca,
        credentials_file=creds,
    )
    return values.get("to", ""), access, s3


class RunScreen(StellaScreen):
    """One export run from plan to verified bundle. Escape cancels while it runs and closes the screen after."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel_or_close", "Cancel / close"),
        Binding("h", "runs", "Runs"),
        Binding("d", "distribute", "Distribute"),
    ]

    def __init__(self, request: ExportRequest) -> None:
        super().__init__()
        self.request = request
        self.token: CancelToken | None = CancelToken()
        self.export_run: ExportRun | None = None
        self.distributing = False

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="run-body"):
            yield Static(f"planning {self.request.profile} for tenant {self.request.tenant} ...", id="run-title")
            with Horizontal(classes="row"):
                yield Label("", id="run-phase")
                yield ProgressBar(id="run-progress", show_eta=False)
            yield Static("", id="run-detail", markup=False)
            yield Static("", id="run-summary", markup=False)
            yield Label("Verification", classes="section")
            yield Static("", id="run-verdict", markup=False)
            yield DataTable(id="run-checks", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "export run"
        table = self.query_one("#run-checks", DataTable)
        for heading in ("result", "check", "detail"):
            table.add_column(heading, key=heading)
        assert self.token is not None
        self.build(self.request, self.token)

    @work(thread=True, exclusive=True, group="run", exit_on_error=False, description="build a bundle")
    def build(self, req: ExportRequest, token: CancelToken) -> None:
        home = self.home
        observer = MessageObserver(self, token)
        try:
            with self.store_guard:
                done = run_export(home, req, observer=observer, on_planned=self._planned)
        except Cancelled as exc:
            observer.flush()
            self.post_message(RunEnded(None, cancelled=exc.diagnostics()))
            return
        except BaseException:
            observer.flush()
            self.post_message(RunEnded(None))
            raise  # the screen shows the CLI's sentence in a modal
        observer.flush()  # the progress held back comes before the end
        self.post_message(RunEnded(done, shipped=shipped_text(done)))  # reads the manifest: here, in the worker
        checked = verify_built(home, done, observer=CheckObserver(self._checked))
        self.post_message(RunVerified(checked.report, checked.provenance))

    def _planned(self, run: ExportRun) -> None:
        self.post_message(RunPlanned(run))

    def _checked(self, check: Check) -> None:
        self.post_message(CheckPassed(check))

    def on_run_planned(self, message: RunPlanned) -> None:
        self.export_run = message.export_run
        run = message.export_run
        self.query_one("#run-title", Static).update(
            f"run {run.run_id}: {run.profile_id}@{run.profile_revision} for tenant {run.tenant}, "
            f"{run.input_count} inputs, createdAt {run.bundle_created_at_text}\n"
            f"  -> {shown_path(run.out_path)}"
        )

    def on_phase_started(self, message: PhaseStarted) -> None:
        self.query_one("#run-phase", Label).update(f"{message.phase} ")
        self.query_one("#run-progress", ProgressBar).update(total=message.total, progress=0)

    def on_progress_advanced(self, message: ProgressAdvanced) -> None:
        self.query_one("#run-progress", ProgressBar).advance(message.units)
        if message.detail:
            self.query_one("#run-detail", Static).update(message.detail[-76:])

    def on_run_ended(self, message: RunEnded) -> None:
        self.token = None
        summary = self.query_one("#run-summary", Static)
        run = message.export_run
        if message.cancelled is not None:
            summary.update(f"cancelled: {message.cancelled}")
            summary.set_class(True, "failed")
            return
        if run is None:
            summary.update("the run failed; see `h` for its events")
            summary.set_class(True, "failed")
            return
        bar = self.query_one("#run-progress", ProgressBar)
        bar.update(total=max(int(bar.progress), 1), progress=max(int(bar.progress), 1))
        self.query_one("#run-detail", Static).update("")
        self.export_run = run
        art = run.to_dict()["artifact"] or {}
        summary.update(
            f"{run.state} {run.run_id}: {shown_path(str(art.get('path')))}\n"
            f"  sha256 {art.get('sha256')}\n"
            f"  {art.get('size')} bytes, {message.shipped}, signed with key {run.key_name}"
        )
        summary.set_class(run.state is RunState.SUCCEEDED, "ok")
        self.query_one("#run-verdict", Static).update(f"verifying {shown_path(str(art.get('path')))} ...")

    def on_check_completed(self, message: CheckCompleted) -> None:
        """A check the build itself reports: a failed one is a warning (a risk bundle built from stale data)."""
        if not message.check.ok:
            check = message.check
            self.query_one("#run-checks", DataTable).add_row(*cells("warn", check.name, check.detail))
            self.notify(check.detail, title="warning", severity="warning", timeout=20)

    def on_check_passed(self, message: CheckPassed) -> None:
        add_check_row(self.query_one("#run-checks", DataTable), message.check, follow=False)

    def on_run_verified(self, message: RunVerified) -> None:
        report = message.report
        verdict = self.query_one("#run-verdict", Static)
        if report.ok:
            m = report.manifest
            verdict.update(
                f"verified: manifest sha256 {str(m.sha256)[:16]}..., {m.file_count} files, "
                f"created {m.created_at}\n{message.provenance}"
            )
            verdict.set_class(True, "ok")
        else:
            _, sentence = sentence_of(report.error) if report.error else ("", "not verified")
            verdict.update(f"not verified: {sentence}")
            verdict.set_class(True, "failed")

    def action_cancel_or_close(self) -> None:
        if self.token is not None:
            self.token.cancel()
            where = "#run-distribution" if self.distributing else "#run-summary"
            self.query_one(where, Static).update("cancelling ...")
        else:
            self.dismiss(None)

    # -- distribution ------------------------------------------------------------------------------------------
    def action_distribute(self) -> None:
        run = self.export_run
        if self.token is not None:
            self.notify("wait until the run (or the distribution) has ended", severity="warning")
            return
        if run is None or run.state is not RunState.SUCCEEDED:
            self.notify("only a succeeded run has a bundle to distribute", severity="warning")
            return
        note = "Credentials are read from the files given, never stored; plain HTTP only to 127.0.0.1/::1/localhost."
        self.app.push_screen(
            FormModal(f"Distribute {run.run_id}", DISTRIBUTE_FIELDS, "Distribute", note=note), self._distribute_to
        )

    def _distribute_to(self, values: dict[str, str] | None) -> None:
        if not values or self.export_run is None:
            return
        to, access, s3 = distribution_options(values)
        self.token = CancelToken()
        self.distributing = True
        if not self.query("#run-distribution"):
            self.query_one("#run-body", VerticalScroll).mount(Static("", id="run-distribution", markup=False))
        shown = self.query_one("#run-distribution", Static)
        shown.update(f"distributing to {to} ...")
        shown.set_class(False, "ok")
        shown.set_class(False, "failed")
        self.distribute(self.export_run.run_id, to, access, s3, self.token)

    @work(thread=True, exclusive=True, group="distribute", exit_on_error=False, description="distribute a bundle")
    def distribute(self, run_id: str, to: str, access: Access, s3: S3Options, token: CancelToken) -> None:
        observer = MessageObserver(self, token)
        try:
            with self.store_guard:
                done = distribute_run(self.home, run_id, to, access, s3=s3, observer=observer)
        except Cancelled as exc:
            observer.flush()
            self.post_message(DistributionEnded(cancelled=exc.diagnostics()))
            return
        except BaseException:
            observer.flush()
            self.post_message(DistributionEnded())
            raise  # the screen shows the CLI's sentence in a modal
        observer.flush()
        if isinstance(done, S3Distribution):
            text = done.text + (f"\n  attestation {done.attestation_url}" if done.attestation_url else "")
        else:
            again = "" if done.new else " (already there; nothing new recorded)"
            text = (
                f"pushed {done.reference}{again}\n  bundle layer {done.layer}\n"
                f"  referrer {done.referrer_digest} ({done.referrers})"
            )
        self.post_message(DistributionEnded(text))

    def on_distribution_ended(self, message: DistributionEnded) -> None:
        self.token = None
        self.distributing = False
        shown = self.query_one("#run-distribution", Static)
        if message.cancelled is not None:
            shown.update(f"distribution cancelled: {message.cancelled}")
            shown.set_class(True, "failed")
        elif not message.text:
            shown.update("the distribution failed")
            shown.set_class(True, "failed")
        else:
            shown.update(message.text)
            shown.set_class(True, "ok")

    def action_runs(self) -> None:
        if self.token is None:
            self.dismiss(None)
            self.app.call_later(self.app.switch_mode, "runs")
