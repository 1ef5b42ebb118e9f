"""Receive: after a bundle verified, import or install what verified, according to the bundle's kind.

The kinds, their options and their steps are :mod:`services.receive`'s registry: the screen draws the kind's options
as its form, runs its apply step in a worker (the calls of its CLI command, in the same order, so a refusal shows
the CLI's sentence) and draws the outcome. Each check appears as it completes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Footer, Header, Input, Select, Static

from app.tui.messages import CheckCompleted, ReceiveDone
from app.tui.progress import MessageObserver
from app.tui.screens.base import StellaScreen, add_check_row, sentence_of, shown_path
from app.tui.text import cells, plain, plain_lines
from core.contract.manifest import VerifiedManifest
from core.errors import Cancelled
from core.progress import CancelToken
from services.receive import Option, OptionType, Receivable, ReceiveRequest, request_from_form


def _field(option: Option) -> Input | Select[str]:
    """The form field of a kind's option."""
    if option.type is OptionType.CHOICE:
        choices = [(c, c) for c in option.choices]
        value = option.default or option.choices[0]
        return Select(choices, value=value, allow_blank=False, id=f"receive-{option.key}")
    return Input(placeholder=option.label, id=f"receive-{option.key}")


class ReceiveScreen(StellaScreen):
    """Opened from Verify (ctrl+n) on a bundle that verified: the kind's inputs, then ctrl+r."""

    DEFAULT_CSS = """
    ReceiveScreen #receive-what, ReceiveScreen #receive-summary {
        padding: 0 1;
        height: auto;
        max-height: 3;
    }
    ReceiveScreen #receive-summary.ok { color: $success; }
    ReceiveScreen #receive-summary.failed { color: $error; }
    /* The tables sit in boxes: the boxes share the height, each table scrolls inside its own. */
    ReceiveScreen #receive-checks-box { height: 1fr; min-height: 4; }
    ReceiveScreen #receive-results-box { height: auto; max-height: 8; display: none; }
    ReceiveScreen #receive-results-box.-shown { display: block; }
    ReceiveScreen #receive-policy { width: 16; }
    ReceiveScreen #receive-grace { width: 20; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+r", "receive", "Run"),
        Binding("escape", "back", "Leave field / back"),
        Binding("ctrl+x", "cancel_receive", "Cancel"),
    ]

    def __init__(
        self, receiving: Receivable[Any, Any], bundle: Path, key: Path | None, manifest: VerifiedManifest
    ) -> None:
        super().__init__()
        self.receiving = receiving
        self.bundle = bundle
        self.key = key
        self.manifest = manifest
        self.running = False
        #: The running import's cancel token, for a cancellable kind (None otherwise).
        self.token: CancelToken | None = None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """ctrl+x is in the footer only while a cancellable import runs."""
        if action == "cancel_receive":
            return self.token is not None
        return True

    def action_cancel_receive(self) -> None:
        """ctrl+x: stop the import at the archive's next read, or before it changes anything."""
        if self.token is not None:
            self.token.cancel()
            self.query_one("#receive-summary", Static).update("cancelling ...")

    def compose(self) -> ComposeResult:
        m = self.manifest
        yield Header()
        yield Static(
            f"verified {shown_path(self.bundle)}: {m.profile.id} run {m.run_id} for tenant {m.tenant}; "
            f"{self.receiving.title} ({self.receiving.command})",
            id="receive-what",
            markup=False,
        )
        options = self.receiving.options
        rows = sorted({o.row for o in options}) or [0]
        with Vertical(classes="form"):
            for row in rows:
                with Horizontal(classes="row"):
                    for option in options:
                        if option.row == row:
                            yield _field(option)
                    if row == rows[-1]:
                        yield Button(self.receiving.action, id="receive-run", variant="primary")
        yield Static("", id="receive-summary", markup=False)
        with Vertical(id="receive-checks-box"):
            yield DataTable(id="receive-checks", cursor_type="row", zebra_stripes=True)
        with Vertical(id="receive-results-box"):
            yield DataTable(id="receive-results", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = f"verify: {self.receiving.kind}"
        checks = self.query_one("#receive-checks", DataTable)
        for heading in ("result", "check", "detail"):
            checks.add_column(heading, key=heading)
        results = self.query_one("#receive-results", DataTable)
        for heading in self.receiving.columns:
            results.add_column(heading, key=heading)
        inputs = self.query(Input)
        if inputs:
            inputs.first().focus()
        else:
            self.query_one("#receive-run", Button).focus()

    def action_back(self) -> None:
        if isinstance(self.focused, Input):
            self.action_leave_field()
        elif not self.running:
            self.dismiss(None)

    def request(self) -> ReceiveRequest:
        """The form's fields as the kind's request."""
        values: dict[str, str] = {}
        for option in self.receiving.options:
            found = self.query(f"#receive-{option.key}")
            if not found:
                continue
            widget = found.first()
            if isinstance(widget, Select):
                values[option.key] = str(widget.value)
            elif isinstance(widget, Input):
                values[option.key] = widget.value
        return request_from_form(self.receiving, self.bundle, self.key, values)

    @on(Button.Pressed, "#receive-run")
    @on(Input.Submitted)
    def action_receive(self) -> None:
        if self.running:
            return
        self.running = True
        self.query_one("#receive-checks", DataTable).clear()
        self.query_one("#receive-results", DataTable).clear()
        self.query_one("#receive-results-box").set_class(False, "-shown")
        summary = self.query_one("#receive-summary", Static)
        summary.set_classes("")
        summary.update(f"{self.receiving.doing} {shown_path(self.bundle)} ...")
        self.query_one("#receive-run", Button).disabled = True
        self.token = CancelToken() if self.receiving.cancellable else None
        self.refresh_bindings()
        self.run_receive(self.request())

    # -- the worker -------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="receive", exit_on_error=False, description="import a verified bundle")
    def run_receive(self, request: ReceiveRequest) -> None:
        receiving = self.receiving
        try:
            observer = MessageObserver(self, self.token)
            done = receiving.receive(self.home, request, observer, store_lock=self.store_guard)
            outcome = receiving.describe(done, request, shown_path)
        except Cancelled as exc:
            self.post_message(ReceiveDone(None, f"cancelled ({exc.diagnostics()}); nothing was changed"))
            return
        except BaseException as exc:
            self.post_message(ReceiveDone(None, sentence_of(exc)[1]))
            raise  # the screen's worker-error handler shows the CLI's sentence in a dialog
        self.post_message(ReceiveDone(outcome))
        if outcome.error is not None:
            raise outcome.error  # done in part (attestations that did not verify): the dialog says why, as the CLI does

    # -- messages ---------------------------------------------------------------------------------
    def on_check_completed(self, message: CheckCompleted) -> None:
        add_check_row(self.query_one("#receive-checks", DataTable), message.check)

    def on_receive_done(self, message: ReceiveDone) -> None:
        self.running = False
        self.token = None
        self.refresh_bindings()
        self.query_one("#receive-run", Button).disabled = False
        summary = self.query_one("#receive-summary", Static)
        # Keep the last check in view, once the rows and the results (which take room from the checks) are laid out.
        checks = self.query_one("#receive-checks", DataTable)
        self.call_after_refresh(checks.scroll_end, animate=False)
        received = message.outcome
        if received is None:
            summary.update(plain(f"nothing imported: {message.failure}"))
            summary.set_classes("failed")
            return
        summary.update(plain_lines(received.summary))
        summary.set_classes("ok" if received.ok else "failed")
        table = self.query_one("#receive-results", DataTable)
        for row in received.rows:
            table.add_row(*cells(*row))
        self.query_one("#receive-results-box").set_class(bool(received.rows), "-shown")
