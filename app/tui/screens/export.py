"""The run wizard: profile -> selectors (with a live count of matching inputs) -> options -> confirm -> run screen."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.timer import Timer
from textual.widgets import Button, ContentSwitcher, DataTable, Footer, Header, Input, Label, Select, Static
from textual.worker import get_current_worker

from app.tui.messages import InputsCounted, WizardProfilesRead
from app.tui.screens.base import StellaScreen, sentence_of, shown_path
from app.tui.screens.run import RunScreen
from core.contract.profiles import JSON_RAW, MIRROR_DELTA
from core.errors import BadInputError, StellaError, UsageError
from core.keys import KeyInfo
from core.profiles import Profile
from core.selectors import SELECTOR_KEYS
from core.tenants import DEFAULT_TENANT, validate_tenant
from services.export import ExportPlan, ExportRequest, check_selectors, preview_inputs
from services.keys import list_keys
from services.profiles import list_profiles

STEPS: tuple[tuple[str, str], ...] = (
    ("step-profile", "1/4 profile"),
    ("step-selectors", "2/4 selectors"),
    ("step-options", "3/4 options"),
    ("step-confirm", "4/4 confirm"),
)
#: Seconds the selector field must stay unchanged before the matching inputs are counted again.
COUNT_DELAY = 0.3
DEFAULT_KEY = ""  # the Select value meaning "the profile's signing_key"


def split_words(text: str) -> list[str]:
    """Words typed on one line, shell-style (quote a value with spaces)."""
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


class ExportScreen(StellaScreen):
    """`stella export run` as four steps; every value is checked by the same core calls when the run is planned."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+n", "next", "Next"),
        Binding("ctrl+b", "back", "Back"),
        Binding("escape", "leave_field", "Leave field", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.step = 0
        self.profiles: dict[str, Profile] = {}
        self.keys: list[KeyInfo] = []
        self.count_timer: Timer | None = None
        self.counted: ExportPlan | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label("", id="wiz-step", classes="section")
        with ContentSwitcher(initial="step-profile", id="wiz-steps"):
            with Vertical(id="step-profile"):
                with Horizontal(classes="row form"):
                    yield Label("tenant", classes="inline-label")
                    yield Input(value=DEFAULT_TENANT, placeholder="tenant", id="wiz-tenant")
                yield DataTable(id="wiz-profiles", cursor_type="row", zebra_stripes=True)
            with Vertical(id="step-selectors", classes="form"):
                yield Input(placeholder="KEY=VALUE ... (empty: everything the profile takes)", id="wiz-selectors")
                yield Static("", id="wiz-count", markup=False)
                yield Static(
                    "Selectors combine with AND; a repeated key means OR. Keys: " + ", ".join(SELECTOR_KEYS),
                    id="wiz-selector-help",
                    markup=False,
                )
            with VerticalScroll(id="step-options", classes="form"):
                with Horizontal(classes="row"):
                    yield Label("signing key", classes="inline-label")
                    yield Select([], allow_blank=True, id="wiz-key")
                with Horizontal(classes="row"):
                    yield Label("key passphrase", classes="inline-label")
                    yield Input(placeholder="file with the passphrase (encrypted keys only)", id="wiz-passphrase")
                with Horizontal(classes="row"):
                    yield Label("age recipients", classes="inline-label")
                    yield Input(placeholder="age1... (space separated; empty: no encryption)", id="wiz-recipients")
                with Horizontal(classes="row"):
                    yield Label("output", classes="inline-label")
                    yield Input(placeholder="bundle path (empty: HOME/exports/...)", id="wiz-out")
                with Horizontal(classes="row", id="wiz-base-row"):
                    yield Label("delta base", classes="inline-label")
                    yield Input(placeholder="RUN, MANIFEST or RECEIPT the receiver has", id="wiz-base")
            with VerticalScroll(id="step-confirm"):
                yield Static("", id="wiz-summary", markup=False)
        with Horizontal(classes="row wizard-nav"):
            yield Button("Back", id="wiz-back")
            yield Button("Next", id="wiz-next", variant="primary")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "export run"
        table = self.query_one("#wiz-profiles", DataTable)
        for heading in ("profile", "rev", "kind", "record types"):
            table.add_column(heading, key=heading)
        self.show_step(0)
        self.load_profiles(DEFAULT_TENANT)

    def resumed(self) -> None:
        if self.step == 0:
            self.load_profiles(self.tenant)

    # -- reading --------------------------------------------------------------------------------
    @property
    def tenant(self) -> str:
        return self.query_one("#wiz-tenant", Input).value.strip() or DEFAULT_TENANT

    @on(Input.Submitted, "#wiz-tenant")
    def tenant_submitted(self) -> None:
        self.load_profiles(self.tenant)
        self.query_one("#wiz-profiles", DataTable).focus()

    @work(thread=True, exclusive=True, group="wizard-profiles", exit_on_error=False, description="read profiles")
    def load_profiles(self, tenant: str) -> None:
        validate_tenant(tenant)
        keys = list_keys(self.home)
        with self.store_guard:
            profiles = list_profiles(self.home, tenant)
        self.loaded(WizardProfilesRead(tenant, profiles, keys))

    def on_wizard_profiles_read(self, message: WizardProfilesRead) -> None:
        table = self.query_one("#wiz-profiles", DataTable)
        chosen = self.chosen_profile()
        table.clear()
        self.profiles = {p.profile_id: p for p in message.profiles}
        for p in message.profiles:
            table.add_row(
                p.profile_id, str(p.revision), p.config.profile_kind, ",".join(p.config.record_types), key=p.profile_id
            )
        # Keep the choice across a reload; the first time, start on json:raw, the plainest bundle.
        start = chosen.profile_id if chosen is not None else JSON_RAW
        if start in self.profiles:
            table.move_cursor(row=table.get_row_index(start))
        self.keys = message.keys
        select = self.query_one("#wiz-key", Select)
        select.set_options([("the profile's signing key", DEFAULT_KEY), *((k.name, k.name) for k in message.keys)])
        select.value = message.keys[0].name if len(message.keys) == 1 else DEFAULT_KEY

    def chosen_profile(self) -> Profile | None:
        table = self.query_one("#wiz-profiles", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.profiles.get(key or "")

    # -- the live count --------------------------------------------------------------------------
    @on(Input.Changed, "#wiz-selectors")
    def selectors_changed(self) -> None:
        if self.count_timer is not None:
            self.count_timer.stop()
        self.query_one("#wiz-count", Static).update("counting ...")
        self.counted = None
        self.count_timer = self.set_timer(COUNT_DELAY, self.action_count)

    def action_count(self) -> None:
        profile = self.chosen_profile()
        if profile is not None:
            self.count(self.tenant, profile, self.query_one("#wiz-selectors", Input).value)

    @work(thread=True, exclusive=True, group="wizard-count", exit_on_error=False, description="count inputs")
    def count(self, tenant: str, profile: Profile, text: str) -> None:
        try:
            with self.store_guard:
                plan = preview_inputs(self.home, tenant, profile, split_words(text), first=0)
        except StellaError as exc:
            # While typing, a half-written selector is normal: say why inline instead of opening a modal.
            self.post_message(InputsCounted(text, None, exc.diagnostics()))
            return
        if not get_current_worker().is_cancelled:
            self.post_message(InputsCounted(text, plan))

    def on_inputs_counted(self, message: InputsCounted) -> None:
        if message.text != self.query_one("#wiz-selectors", Input).value:
            return  # the field changed since: a newer count is on its way
        label = self.query_one("#wiz-count", Static)
        if message.plan is None:
            label.update(f"not yet valid: {message.error}")
            label.set_class(True, "failed")
            self.counted = None
            return
        label.set_class(False, "failed")
        self.counted = message.plan
        label.update(message.plan.count_text)

    # -- steps --------------------------------------------------------------------------------
    def show_step(self, step: int) -> None:
        self.step = step
        name, title = STEPS[step]
        self.query_one("#wiz-steps", ContentSwitcher).current = name
        profile = self.chosen_profile()
        what = f": {profile.ref} ({profile.config.profile_kind})" if profile is not None and step else ""
        self.query_one("#wiz-step", Label).update(f"Export run, step {title}{what}")
        self.query_one("#wiz-back", Button).disabled = step == 0
        self.query_one("#wiz-next", Button).label = "Run" if step == len(STEPS) - 1 else "Next"
        if name == "step-profile":
            self.query_one("#wiz-profiles", DataTable).focus()
        elif name == "step-selectors":
            self.query_one("#wiz-selectors", Input).focus()
            self.action_count()
        elif name == "step-options":
            delta = profile is not None and profile.config.profile_kind == MIRROR_DELTA
            self.query_one("#wiz-base-row").display = delta
            self.query_one("#wiz-key", Select).focus()
        else:
            self.query_one("#wiz-summary", Static).update(self.summary())
            self.query_one("#wiz-next", Button).focus()

    @on(Button.Pressed, "#wiz-back")
    def action_back(self) -> None:
        if self.step > 0:
            self.show_step(self.step - 1)

    @on(Button.Pressed, "#wiz-next")
    def action_next(self) -> None:
        try:
            self.check_step()
        except StellaError as exc:
            title, sentence = sentence_of(exc)
            self.show_error(title, sentence)
            return
        if self.step < len(STEPS) - 1:
            self.show_step(self.step + 1)
        else:
            self.app.push_screen(RunScreen(self.request()))

    def check_step(self) -> None:
        """What can be refused without the store, refused before the next step (the run checks it all again)."""
        name = STEPS[self.step][0]
        if name == "step-profile":
            validate_tenant(self.tenant)
            if self.chosen_profile() is None:
                raise UsageError(f"no profile chosen for tenant {self.tenant!r}", hint="pick one in the list")
        elif name == "step-selectors":
            check_selectors(self.selector_args())
            counted = self.counted
            if counted is not None and counted.total == 0:
                # As `stella export run` refuses it without --allow-empty: an empty bundle is almost never meant.
                raise BadInputError(
                    f"the selection matches no document of tenant {counted.tenant!r} for profile {counted.profile.ref}",
                    hint="change the selectors; `stella export run --allow-empty` builds an empty bundle on purpose",
                )

    def selector_args(self) -> list[str]:
        return split_words(self.query_one("#wiz-selectors", Input).value)

    def request(self) -> ExportRequest:
        profile = self.chosen_profile()
        assert profile is not None
        key = self.query_one("#wiz-key", Select).value
        passphrase = self.query_one("#wiz-passphrase", Input).value.strip()
        out = self.query_one("#wiz-out", Input).value.strip()
        base = self.query_one("#wiz-base", Input).value.strip()
        delta = profile.config.profile_kind == MIRROR_DELTA
        return ExportRequest(
            tenant=self.tenant,
            profile=profile.ref,
            selectors=tuple(self.selector_args()),
            key=key if isinstance(key, str) and key else None,
            passphrase_file=Path(passphrase).expanduser() if passphrase else None,
            recipients=tuple(split_words(self.query_one("#wiz-recipients", Input).value)),
            out=Path(out).expanduser() if out else None,
            base=base if delta and base else None,
        )

    def summary(self) -> str:
        req = self.request()
        profile = self.profiles[req.profile.rpartition("@")[0]]
        key = req.key or profile.config.signing_key or "(none: the run will be refused)"
        lines = [
            f"tenant      {req.tenant}",
            f"profile     {req.profile} ({profile.config.profile_kind}: {', '.join(profile.config.record_types)})",
            f"selectors   {' '.join(req.selectors) or '(none)'}",
            f"inputs      {self.counted.count_text if self.counted else 'not counted'}",
            f"signing key {key}" + (f" (passphrase from {req.passphrase_file})" if req.passphrase_file else ""),
            f"encryption  {', '.join(req.recipients) or 'none'}",
            f"output      {shown_path(req.out) if req.out else 'HOME/exports/<profile>-<time>-<random>.tar.zst'}",
        ]
        if profile.config.profile_kind == MIRROR_DELTA:
            lines.append(f"delta base  {req.base or '(none)'}")
        lines.append("")
        lines.append("Run (ctrl+n) plans the run, builds and signs the bundle, then verifies it.")
        return "\n".join(lines)
