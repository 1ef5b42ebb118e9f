"""Profiles: list, inspect, create and edit a tenant's export profiles (`stella export profile ...`)."""

from __future__ import annotations

import json
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Footer, Header, Input, Label, Static

from app.tui.messages import ProfileSaved, ProfilesRead, RevisionsRead
from app.tui.screens.base import StellaScreen
from app.tui.screens.export import split_words
from app.tui.screens.forms import Field, FormModal
from core.contract.profiles import JSON_RAW
from core.profiles import BUILTIN_PROFILES, Profile
from core.tenants import DEFAULT_TENANT
from services.profiles import create_profile, list_profiles, profile_revisions, update_profile

SETTINGS_HINT = (
    "FIELD=VALUE pairs, space separated, as `--set`: record_types=advisory,vex compression_level=19 "
    "redaction_allowlist=advisory_id signing_key=NAME encryption_recipients=age1... (an empty value unsets a field)"
)


def settings_of(profile: Profile) -> str:
    """The profile's overridable fields as the FIELD=VALUE words the edit form starts from."""
    c = profile.config
    words = [f"record_types={','.join(c.record_types)}", f"compression_level={c.compression_level}"]
    if c.redaction_allowlist is not None:
        words.append(f"redaction_allowlist={','.join(c.redaction_allowlist)}")
    if c.signing_key:
        words.append(f"signing_key={c.signing_key}")
    if c.encryption_recipients:
        words.append(f"encryption_recipients={','.join(c.encryption_recipients)}")
    return " ".join(words)


class ProfilesScreen(StellaScreen):
    """Latest revision of every profile; the highlighted one's config and revision history below."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "refresh", "Refresh"),
        Binding("n", "create", "New"),
        Binding("e", "edit", "Edit"),
        Binding("t", "focus('#profiles-tenant')", "Tenant"),
        Binding("escape", "leave_field", "Leave field", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.profiles: dict[str, Profile] = {}
        self.selected: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(classes="row form"):
            yield Label("tenant", classes="inline-label")
            yield Input(value=DEFAULT_TENANT, placeholder="tenant", id="profiles-tenant")
            yield Static("", id="profiles-summary", markup=False)
        yield DataTable(id="profiles-table", cursor_type="row", zebra_stripes=True)
        with VerticalScroll(id="profiles-detail-box"):
            yield Static("", id="profiles-detail", markup=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "profiles"
        table = self.query_one("#profiles-table", DataTable)
        for heading in ("profile", "revision", "kind", "builtin", "record types"):
            table.add_column(heading, key=heading)
        self.action_refresh()

    def resumed(self) -> None:
        self.action_refresh()

    @property
    def tenant(self) -> str:
        return self.tenant_in("#profiles-tenant")

    @on(Input.Submitted, "#profiles-tenant")
    def action_refresh(self) -> None:
        self.load(self.tenant)
        self.query_one("#profiles-table", DataTable).focus()

    @work(thread=True, exclusive=True, group="profiles", exit_on_error=False, description="read profiles")
    def load(self, tenant: str) -> None:
        with self.store_guard:
            profiles = list_profiles(self.home, tenant)
        self.loaded(ProfilesRead(tenant, profiles))

    def on_profiles_read(self, message: ProfilesRead) -> None:
        table = self.query_one("#profiles-table", DataTable)
        table.clear()
        self.profiles = {p.profile_id: p for p in message.profiles}
        for p in message.profiles:
            table.add_row(
                p.profile_id,
                str(p.revision),
                p.config.profile_kind,
                "yes" if p.builtin else "no",
                ",".join(p.config.record_types),
                key=p.profile_id,
            )
        custom = sum(1 for p in message.profiles if not p.builtin)
        self.query_one("#profiles-summary", Static).update(
            f"  {len(message.profiles)} profiles ({custom} custom) in tenant {message.tenant}"
        )
        if self.selected in self.profiles:
            table.move_cursor(row=table.get_row_index(self.selected))

    @on(DataTable.RowHighlighted, "#profiles-table")
    def profile_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self.selected = event.row_key.value
            self.load_revisions(self.tenant, event.row_key.value)

    @work(thread=True, exclusive=True, group="profile-revisions", exit_on_error=False, description="read revisions")
    def load_revisions(self, tenant: str, profile_id: str) -> None:
        with self.store_guard:
            revisions = profile_revisions(self.home, tenant, profile_id)
        self.loaded(RevisionsRead(revisions))

    def on_revisions_read(self, message: RevisionsRead) -> None:
        latest = message.revisions[-1]
        if latest.profile_id != self.selected:
            return
        history = ", ".join(
            f"@{p.revision} {p.created_at:%Y-%m-%d %H:%M}" if p.created_at else f"@{p.revision}"
            for p in message.revisions
        )
        self.query_one("#profiles-detail", Static).update(
            f"{latest.ref}{' (builtin)' if latest.builtin else ''}  revisions: {history}\n"
            + json.dumps(latest.config.to_dict(), indent=2)
        )

    # -- create and edit ------------------------------------------------------------------------------
    def action_create(self) -> None:
        base = self.profiles.get(self.selected or "")
        form = FormModal(
            f"New profile in tenant {self.tenant}",
            [
                Field("profile_id", "profile id", placeholder="e.g. nightly-npm"),
                Field(
                    "base",
                    "based on",
                    value=base.profile_id if base is not None and base.builtin else JSON_RAW,
                    choices=tuple(BUILTIN_PROFILES),
                ),
                Field("settings", "settings (optional)", placeholder="FIELD=VALUE ..."),
            ],
            "Create",
            note=SETTINGS_HINT,
        )
        tenant = self.tenant

        def done(values: dict[str, str] | None) -> None:
            if values is not None:
                self.create_profile(tenant, values["profile_id"], values["base"], split_words(values["settings"]))

        self.app.push_screen(form, done)

    @work(thread=True, group="profile-write", exit_on_error=False, description="create a profile")
    def create_profile(self, tenant: str, profile_id: str, base: str, settings: list[str]) -> None:
        with self.store_guard:
            profile = create_profile(self.home, tenant, profile_id, base, settings)
        self.post_message(ProfileSaved(profile, f"created profile {profile.ref} from {base}"))

    def action_edit(self) -> None:
        profile = self.profiles.get(self.selected or "")
        if profile is None:
            return
        tenant = self.tenant
        form = FormModal(
            f"Edit {profile.ref} (a changed config is a new revision)",
            [Field("settings", "settings", value=settings_of(profile))],
            "Save",
            note=SETTINGS_HINT,
        )

        def done(values: dict[str, str] | None) -> None:
            if values is not None:
                self.update_profile(tenant, profile.profile_id, split_words(values["settings"]))

        self.app.push_screen(form, done)

    @work(thread=True, group="profile-write", exit_on_error=False, description="update a profile")
    def update_profile(self, tenant: str, profile_id: str, settings: list[str]) -> None:
        with self.store_guard:
            result = update_profile(self.home, tenant, profile_id, settings)
        self.post_message(ProfileSaved(result.profile, result.text))

    def on_profile_saved(self, message: ProfileSaved) -> None:
        self.notify(message.text)
        self.selected = message.profile.profile_id
        self.action_refresh()
