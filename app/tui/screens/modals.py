"""Modal screens shared by the whole app: the error sentence and the help text."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static


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
            yield Label(self.title_text, id="error-title")
            yield Static(self.sentence, id="error-sentence", markup=False)
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

Screens
  d  Dashboard   store counts per tenant, recent runs, keys, trusted keys
  i  Import      import files, directories or archives into a tenant
  v  Verify      verify a received bundle, check by check
  k  Keys        signing keys and trusted keys

Everywhere
  ?       this help
  ctrl+p  command palette (every screen and action by name)
  tab     next field;  enter  run the focused button or field
  escape  leave a text field (then d i v k q work), cancel a running import,
          close a dialog
  r       refresh the current screen
  q       quit

Every action here has a CLI twin with the same messages:
  stella import, stella verify, stella keys list, stella trust list, stella data stats.
"""


class HelpScreen(ModalScreen[None]):
    """Key bindings and what each screen does."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark", "close", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box", classes="modal-box"):
            yield Static(HELP_TEXT, id="help-text", markup=False)

    def action_close(self) -> None:
        self.dismiss(None)
