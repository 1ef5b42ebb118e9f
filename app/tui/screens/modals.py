"""Modal screens shared by the whole app: the error sentence and the help text."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from app.tui.text import plain, plain_lines


class ErrorModal(ModalScreen[None]):
    """Shows one error sentence (the CLI's ``StellaError.diagnostics()``) until dismissed."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss_modal", "Close"),
        Binding("enter", "dismiss_modal", "Close", show=False),
    ]

    def __init__(self, title: str, sentence: str) -> None:
        super().__init__()
        self.title_text = title
        self.sentence = sentence

    def compose(self) -> ComposeResult:
        with Vertical(id="error-box", classes="modal-box"):
            yield Label(plain(self.title_text), id="error-title", markup=False)
            yield Static(plain_lines(self.sentence), id="error-sentence", markup=False)
            yield Button("OK", id="error-ok", variant="error")

    def on_mount(self) -> None:
        self.query_one("#error-ok", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)

    def action_dismiss_modal(self) -> None:
        self.dismiss(None)


HELP_TEXT = """\
stella: import security data, build signed bundles, verify them offline.

Screens (letters work when no text field has the focus)
  d  Dashboard   store counts per tenant, recent runs, keys, warnings
  i  Import      import files, directories or archives into a tenant
  b  Browse      what `stella data list|show|stats` shows ([ ] pages, o opens,
                 / filter, t tenant)
  p  Profiles    list and inspect profiles; n new, e edit (a changed config
                 is a new revision)
  e  Export      run wizard: profile, selectors (live count), options,
                 confirm (ctrl+n next, ctrl+b back); then the run with
                 progress, escape cancels, and the bundle is verified
  h  Runs        runs of a tenant and the event timeline of each;
                 o parameters, c cancel
  v  Verify      verify a received bundle, check by check, trust chain;
                 ctrl+n imports or installs what verified (mirror, risk,
                 attestations, Trivy DB, devportal)
  m  Mirror      a mirror directory: status, TUF expiry, receipts;
                 ctrl+t verify, ctrl+b roll back, query by id/purl/subject
  k  Keys        g generate, I import, n rename, D delete, x export public
                 key, a trust a key, c trust a receipt key, del untrust;
                 TUF roles: t init, l expiry, o rotate
  w  Timeline    what happened, in order: runs, evidence, holds, incidents
  u  Kit         Offline Kit volumes: plan, assemble, verify
  y  Evidence    the evidence locker: sealed bundles, verify, legal holds
  j  Bootstrap   bootstrap packs of images and Helm charts: ctrl+b build,
                 ctrl+t verify and list, ctrl+o push to a registry

Everywhere
  ?       this help
  ctrl+p  command palette (every screen and action by name)
  tab     next field;  enter  run the focused button or field
  escape  leave a text field, cancel a running import or run, close a dialog
  r       refresh the current screen
  q       quit (also in the palette: ctrl+p)

Every action here has a CLI twin with the same messages: stella import,
stella data, stella export profile|run|runs|show|cancel, stella verify,
stella mirror, stella keys, stella trust, stella tuf, stella timeline,
stella kit, stella evidence, stella bootstrap.
"""


class HelpScreen(ModalScreen[None]):
    """Key bindings and what each screen does."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark", "close", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box", classes="modal-box"):
            yield Static(HELP_TEXT, id="help-text", markup=False)

    def action_close(self) -> None:
        self.dismiss(None)


class TextModal(ModalScreen[None]):
    """A long text (a document, a profile, a run's parameters) in a scrollable box; escape closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q", "close", "Close")]

    def __init__(self, title: str, text: str) -> None:
        super().__init__()
        self.title_text = title
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical(id="text-box", classes="modal-box"):
            yield Label(plain(self.title_text), id="text-title", markup=False)
            with VerticalScroll(id="text-scroll"):
                yield Static(plain_lines(self.text), id="text-body", markup=False)

    def on_mount(self) -> None:
        self.query_one("#text-scroll", VerticalScroll).focus()

    def action_close(self) -> None:
        self.dismiss(None)
