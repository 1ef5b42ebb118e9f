"""Small modal forms: a few labelled fields and a confirmation, returning what the user typed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static


@dataclass(frozen=True)
class Field:
    """One field of a :class:`FormModal`: a text input, or a choice when ``choices`` is given."""

    name: str
    label: str
    value: str = ""
    placeholder: str = ""
    choices: tuple[str, ...] = ()


class FormModal(ModalScreen[dict[str, str] | None]):
    """A titled form; enter or the submit button returns ``{field name: value}``, escape returns None."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Cancel")]

    def __init__(self, title: str, fields: list[Field], submit: str, *, note: str = "") -> None:
        super().__init__()
        self.form_title = title
        self.fields = fields
        self.submit_label = submit
        self.note = note

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-box form-box"):
            yield Label(self.form_title, classes="form-title")
            if self.note:
                yield Static(self.note, classes="form-note", markup=False)
            for field in self.fields:
                yield Label(field.label, classes="form-label")
                if field.choices:
                    yield Select(
                        [(c, c) for c in field.choices],
                        value=field.value or field.choices[0],
                        allow_blank=False,
                        id=f"form-{field.name}",
                        compact=True,
                    )
                else:
                    yield Input(value=field.value, placeholder=field.placeholder, id=f"form-{field.name}", compact=True)
            with Horizontal(classes="form-buttons"):
                yield Button(self.submit_label, id="form-submit", variant="primary")
                yield Button("Cancel", id="form-cancel")

    def values(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for field in self.fields:
            if field.choices:
                out[field.name] = str(self.query_one(f"#form-{field.name}", Select).value)
            else:
                out[field.name] = self.query_one(f"#form-{field.name}", Input).value.strip()
        return out

    @on(Button.Pressed, "#form-submit")
    @on(Input.Submitted)
    def submit(self, event: Button.Pressed | Input.Submitted) -> None:
        event.stop()
        self.dismiss(self.values())

    @on(Button.Pressed, "#form-cancel")
    def action_close(self) -> None:
        self.dismiss(None)


class ConfirmModal(ModalScreen[bool]):
    """A yes/no question; ``y`` or the first button says yes, ``n`` or escape says no."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str, yes: str) -> None:
        super().__init__()
        self.question = question
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-box form-box"):
            yield Static(self.question, classes="form-note", markup=False)
            with Horizontal(classes="form-buttons"):
                yield Button(self.yes, id="confirm-yes", variant="warning")
                yield Button("No", id="confirm-no")

    def on_mount(self) -> None:
        self.query_one("#confirm-no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "confirm-yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
