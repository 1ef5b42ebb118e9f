"""Keys and trust: signing keys under the home (`stella keys ...`), the trust store (`stella trust ...`) and the
home's TUF roles (`stella tuf status|init|expiry|rotate`), which sign mirror bundles."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Footer, Header, Label, Static

from app.tui.messages import KeysChanged, KeysLoaded
from app.tui.screens.base import StellaScreen, shown_path
from app.tui.screens.dashboard import app_now, time_left
from app.tui.screens.forms import ConfirmModal, Field, FormModal
from core.durations import human_duration
from core.errors import UsageError
from core.keys import KeyAlgorithm
from core.tuf_repo import TOP_LEVEL_ROLES
from services.keys import delete_key, export_public_key, generate_key, import_key, list_keys, rename_key
from services.trust import add_trusted_key, list_trusted_keys, remove_trusted_key
from services.tuf import TufStatus, init_tuf, rotate_role, set_role_expiry, tuf_status_if_initialized


def scope(values: tuple[str, ...]) -> str:
    return ", ".join(values) if values else "any"


def split_list(text: str) -> list[str]:
    return [v.strip() for v in text.replace(",", " ").split() if v.strip()]


def tuf_summary(tuf: TufStatus | None, now: datetime) -> str:
    """The line above the TUF roles: the latest root's version, the versions kept, its expiry and time left, and
    its file (what a receiver pins, as `stella tuf status` says)."""
    if tuf is None:
        return "no TUF repository: mirror exports need one; t creates it (stella tuf init)"
    versions = ", ".join(str(v) for v in tuf.root_versions)
    return (
        f"root version {tuf.root_version} (kept: {versions}), expires {tuf.root_expires:%Y-%m-%d %H:%M} "
        f"({time_left(tuf.root_expires, now)}{' left' if tuf.root_expires > now else ''}); "
        f"a receiver pins {shown_path(tuf.root_path)}"
    )


def _passphrase_file(text: str) -> Path | None:
    return Path(text).expanduser() if text else None


class KeysScreen(StellaScreen):
    """What `stella keys list` and `stella trust list` show, and their generate/export/add/remove actions."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "refresh", "Refresh", show=False),
        Binding("g", "generate", "Generate"),
        # Shifted: `i` and `d` switch to the Import screen and the dashboard from every screen.
        Binding("I", "import_key", "Import", show=False),
        Binding("n", "rename_key", "Rename", show=False),
        Binding("D", "delete_key", "Delete key", show=False),
        Binding("x", "export_public", "Export"),
        Binding("a", "trust_add", "Trust"),
        Binding("c", "trust_receipts", "Trust receipt key", show=False),
        Binding("delete", "trust_remove", "Untrust", key_display="del"),
        Binding("t", "tuf_init", "TUF init"),
        Binding("l", "tuf_expiry", "Expiry"),
        Binding("o", "tuf_rotate", "Rotate"),
    ]

    def __init__(self) -> None:
        super().__init__()
        #: What `stella tuf status` showed last (None: no TUF repository, or not read yet).
        self.tuf: TufStatus | None = None
        self._tuf_read = False
        #: The names of the signing keys (the choices of `tuf init`).
        self.keys: list[str] = []

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """`tuf init` is offered only while the home has no TUF repository; expiry and rotate only once it has."""
        if action == "tuf_init":
            return self._tuf_read and self.tuf is None
        if action in ("tuf_expiry", "tuf_rotate"):
            return self.tuf is not None
        return True

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll():
            yield Label(
                "Signing keys (g generate, I import, n rename, D delete, x export the public key)", classes="section"
            )
            yield DataTable(id="keys-signing", cursor_type="row", zebra_stripes=True)
            yield Label("Trusted keys (a trust a public key, c a receipt key, del stop trusting)", classes="section")
            yield DataTable(id="keys-trusted", cursor_type="row", zebra_stripes=True)
            yield Label("TUF roles (t init, l expiry, o rotate; a TUF key id is TUF's own)", classes="section")
            yield Static("", id="keys-tuf-summary", markup=False)
            yield DataTable(id="keys-tuf", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "keys and trust"
        signing = self.query_one("#keys-signing", DataTable)
        for heading in ("name", "algorithm", "key id", "created", "encrypted"):
            signing.add_column(heading, key=heading)
        trusted = self.query_one("#keys-trusted", DataTable)
        for heading in ("label", "algorithm", "key id", "profiles", "tenants"):
            trusted.add_column(heading, key=heading)
        tuf = self.query_one("#keys-tuf", DataTable)
        for heading in ("role", "keys", "TUF key ids", "threshold", "valid for", "expires"):
            tuf.add_column(heading, key=heading)
        self.action_refresh()

    def resumed(self) -> None:
        self.action_refresh()

    def action_refresh(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="keys", exit_on_error=False, description="read keys")
    def load(self) -> None:
        home = self.home
        tuf = tuf_status_if_initialized(home)
        self.loaded(KeysLoaded(list_keys(home), list_trusted_keys(home), tuf, app_now(self)))

    def on_keys_loaded(self, message: KeysLoaded) -> None:
        signing = self.query_one("#keys-signing", DataTable)
        signing.clear()
        for k in message.keys:
            signing.add_row(
                k.name, str(k.algorithm), k.keyid[:16], k.created, "yes" if k.encrypted else "no", key=k.name
            )
        trusted = self.query_one("#keys-trusted", DataTable)
        trusted.clear()
        for t in message.trusted:
            profiles, tenants = ("receipts only", "-") if t.receipts_only else (scope(t.profiles), scope(t.tenants))
            trusted.add_row(t.label, str(t.algorithm), t.keyid[:16], profiles, tenants, key=t.label)
        self.keys = [k.name for k in message.keys]
        self.tuf, self._tuf_read = message.tuf, True
        self.query_one("#keys-tuf-summary", Static).update(tuf_summary(message.tuf, message.now))
        table = self.query_one("#keys-tuf", DataTable)
        table.clear()
        tuf = message.tuf
        table.display = tuf is not None
        for r in tuf.roles if tuf is not None else []:
            assert tuf is not None
            expires = f"{tuf.root_expires:%Y-%m-%d} ({time_left(tuf.root_expires, message.now)})"
            table.add_row(
                r.role,
                ", ".join(r.keys),
                " ".join(k[:8] for k in r.keyids),
                str(r.threshold),
                human_duration(r.expires_after),
                expires if r.role == "root" else "per bundle",
                key=r.role,
            )
        self.refresh_bindings()
        self.drawn()

    def on_keys_changed(self, message: KeysChanged) -> None:
        self.notify(message.text)
        self.action_refresh()

    @staticmethod
    def _current(table: DataTable[object]) -> str | None:
        if not table.row_count:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    # -- keys -------------------------------------------------------------------------------------
    def action_generate(self) -> None:
        form = FormModal(
            "Generate a signing key (stella keys generate)",
            [
                Field("name", "name", placeholder="letters, digits, '.', '_', '-'"),
                Field("algorithm", "algorithm", choices=tuple(a.value for a in KeyAlgorithm)),
                Field("passphrase_file", "passphrase file (optional: encrypts the private key)"),
            ],
            "Generate",
        )

        def done(values: dict[str, str] | None) -> None:
            if values is not None:
                passphrase = values["passphrase_file"]
                self.generate(values["name"], values["algorithm"], Path(passphrase) if passphrase else None)

        self.app.push_screen(form, done)

    @work(thread=True, group="keys-write", exit_on_error=False, description="generate a key")
    def generate(self, name: str, algorithm: str, passphrase_file: Path | None) -> None:
        info = generate_key(self.home, name, KeyAlgorithm(algorithm), passphrase_file)
        enc = "encrypted" if info.encrypted else "unencrypted"
        self.post_message(KeysChanged(f"generated {info.algorithm} key {info.name} ({enc}), key id {info.keyid}"))

    def action_export_public(self) -> None:
        name = self._current(self.query_one("#keys-signing", DataTable))
        if name is None:
            return
        form = FormModal(
            f"Export the public key of {name} (stella keys export-public)",
            [Field("out", "write the PEM to", value=f"{name}.pub")],
            "Export",
        )

        def done(values: dict[str, str] | None) -> None:
            if values is not None and values["out"]:
                self.export_public(name, Path(values["out"]).expanduser())

        self.app.push_screen(form, done)

    def action_import_key(self) -> None:
        form = FormModal(
            "Import a PEM private key (stella keys import NAME FILE)",
            [
                Field("name", "name", placeholder="letters, digits, '.', '_', '-'"),
                Field("file", "private key file (PEM, ECDSA P-256 or Ed25519)"),
                Field("passphrase_file", "passphrase file (an encrypted key; or $STELLA_PASSWORD)"),
            ],
            "Import",
        )

        def done(values: dict[str, str] | None) -> None:
            if values is not None:
                self.import_key(
                    values["name"], Path(values["file"]).expanduser(), _passphrase_file(values["passphrase_file"])
                )

        self.app.push_screen(form, done)

    @work(thread=True, group="keys-write", exit_on_error=False, description="import a key")
    def import_key(self, name: str, file: Path, passphrase_file: Path | None) -> None:
        info = import_key(self.home, name, file, passphrase_file)
        enc = "encrypted" if info.encrypted else "unencrypted"
        self.post_message(KeysChanged(f"imported {info.algorithm} key {info.name} ({enc}), key id {info.keyid}"))

    def action_rename_key(self) -> None:
        name = self._current(self.query_one("#keys-signing", DataTable))
        if name is None:
            return
        form = FormModal(f"Rename key {name} (stella keys rename)", [Field("new", "new name", value=name)], "Rename")

        def done(values: dict[str, str] | None) -> None:
            if values is not None and values["new"] and values["new"] != name:
                self.rename_key(name, values["new"])

        self.app.push_screen(form, done)

    @work(thread=True, group="keys-write", exit_on_error=False, description="rename a key")
    def rename_key(self, old: str, new: str) -> None:
        info = rename_key(self.home, old, new)
        self.post_message(KeysChanged(f"renamed key {old} to {info.name} (key id {info.keyid})"))

    def action_delete_key(self) -> None:
        name = self._current(self.query_one("#keys-signing", DataTable))
        if name is None:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.delete_key(name)

        self.app.push_screen(ConfirmModal(f"Delete key {name} for good? There is no undo.", "Delete"), answered)

    @work(thread=True, group="keys-write", exit_on_error=False, description="delete a key")
    def delete_key(self, name: str) -> None:
        info = delete_key(self.home, name)
        self.post_message(KeysChanged(f"deleted key {info.name} (key id {info.keyid})"))

    @work(thread=True, group="keys-write", exit_on_error=False, description="export a public key")
    def export_public(self, name: str, out: Path) -> None:
        written = export_public_key(self.home, name, out)
        self.post_message(KeysChanged(f"wrote the public key of {name} to {shown_path(written)}"))

    # -- trust store --------------------------------------------------------------------------------
    def action_trust_add(self) -> None:
        form = FormModal(
            "Trust a public key (stella trust add)",
            [
                Field("label", "label", placeholder="a short name for the signer"),
                Field("pubkey", "public key file (PEM, ECDSA P-256 or Ed25519)"),
                Field("profiles", "only for profiles (optional, e.g. mirror:full json)"),
                Field("tenants", "only for tenants (optional)"),
            ],
            "Trust",
        )

        def done(values: dict[str, str] | None) -> None:
            if values is not None:
                self.trust_add(
                    values["label"],
                    Path(values["pubkey"]).expanduser(),
                    split_list(values["profiles"]),
                    split_list(values["tenants"]),
                )

        self.app.push_screen(form, done)

    def action_trust_receipts(self) -> None:
        form = FormModal(
            "Trust a receiver's receipt key (stella trust add LABEL PUB --receipts-only)",
            [
                Field("label", "label", placeholder="the receiver"),
                Field("pubkey", "the receiver's public key file (PEM)"),
            ],
            "Trust",
            note="Accepted for mirror import receipts (the base of a delta) only, never as a bundle signer.",
        )

        def done(values: dict[str, str] | None) -> None:
            if values is not None:
                self.trust_add(values["label"], Path(values["pubkey"]).expanduser(), [], [], receipts_only=True)

        self.app.push_screen(form, done)

    @work(thread=True, group="keys-write", exit_on_error=False, description="trust a key")
    def trust_add(
        self, label: str, pubkey: Path, profiles: list[str], tenants: list[str], *, receipts_only: bool = False
    ) -> None:
        key = add_trusted_key(self.home, label, pubkey, profiles=profiles, tenants=tenants, receipts_only=receipts_only)
        where = (
            "for import receipts only"
            if key.receipts_only
            else f"profiles: {scope(key.profiles)}; tenants: {scope(key.tenants)}"
        )
        self.post_message(KeysChanged(f"trusted {key.algorithm} key {key.label}, key id {key.keyid}; {where}"))

    def action_trust_remove(self) -> None:
        label = self._current(self.query_one("#keys-trusted", DataTable))
        if label is None:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.trust_remove(label)

        self.app.push_screen(ConfirmModal(f"Stop trusting {label}?", "Untrust"), answered)

    @work(thread=True, group="keys-write", exit_on_error=False, description="remove a trusted key")
    def trust_remove(self, label: str) -> None:
        key = remove_trusted_key(self.home, label)
        if key is None:
            text = f"removed damaged trust entry {label}"
        else:
            text = f"removed trusted key {key.label} (key id {key.keyid})"
        self.post_message(KeysChanged(text))

    # -- TUF ----------------------------------------------------------------------------------------------
    def action_tuf_init(self) -> None:
        if not self.keys:
            self.notify("generate a signing key first (g): every TUF role needs one", severity="warning")
            return
        form = FormModal(
            "Create the TUF repository (stella tuf init --key NAME)",
            [
                Field("key", "key-store key of every role", choices=tuple(self.keys)),
                Field("passphrase_file", "passphrase file (only for an encrypted key)"),
            ],
            "Create",
            note="Root version 1 names this key for root, targets, snapshot and timestamp, threshold 1, "
            "default expiry; change them later with l (expiry) and o (rotate).",
        )

        def done(values: dict[str, str] | None) -> None:
            if values is not None:
                self.tuf_init(values["key"], values["passphrase_file"])

        self.app.push_screen(form, done)

    @work(thread=True, group="keys-write", exit_on_error=False, description="create the TUF repository")
    def tuf_init(self, key: str, passphrase_file: str) -> None:
        change = init_tuf(
            self.home, {r: (key,) for r in TOP_LEVEL_ROLES}, passphrase_file=_passphrase_file(passphrase_file)
        )
        self.post_message(KeysChanged(change.text))

    def _tuf_role(self) -> str:
        role = self._current(self.query_one("#keys-tuf", DataTable))
        return role if role in TOP_LEVEL_ROLES else TOP_LEVEL_ROLES[0]

    def action_tuf_expiry(self) -> None:
        if self.tuf is None:
            return
        role = self._tuf_role()
        current = next(human_duration(r.expires_after) for r in self.tuf.roles if r.role == role)
        form = FormModal(
            "How long a role's metadata stays valid (stella tuf expiry ROLE DURATION)",
            [
                Field("role", "role", value=role, choices=TOP_LEVEL_ROLES),
                Field("duration", "duration (s, m, h, d or w, e.g. 7d)", value=current),
            ],
            "Set",
        )

        def done(values: dict[str, str] | None) -> None:
            if values is not None:
                self.tuf_expiry(values["role"], values["duration"])

        self.app.push_screen(form, done)

    @work(thread=True, group="keys-write", exit_on_error=False, description="set a TUF expiry")
    def tuf_expiry(self, role: str, duration: str) -> None:
        self.post_message(KeysChanged(set_role_expiry(self.home, role, duration).text))

    def action_tuf_rotate(self) -> None:
        if self.tuf is None:
            return
        role = self._tuf_role()
        form = FormModal(
            "New keys for a role (stella tuf rotate ROLE --key NAME)",
            [
                Field("role", "role", value=role, choices=TOP_LEVEL_ROLES),
                Field("keys", "new key-store keys (space or comma separated)", placeholder="NAME ..."),
                Field("threshold", "threshold (optional: signatures the role needs)"),
                Field("passphrase_file", "passphrase file (only for encrypted keys)"),
            ],
            "Rotate",
            note="Writes root N+1, signed by the old and the new root keys; the old keys of the role are revoked.",
        )

        def done(values: dict[str, str] | None) -> None:
            if values is not None:
                self.tuf_rotate(
                    values["role"], split_list(values["keys"]), values["threshold"], values["passphrase_file"]
                )

        self.app.push_screen(form, done)

    @work(thread=True, group="keys-write", exit_on_error=False, description="rotate TUF keys")
    def tuf_rotate(self, role: str, keys: list[str], threshold: str, passphrase_file: str) -> None:
        if threshold and not threshold.isdigit():
            raise UsageError(f"threshold {threshold!r} is not a number")
        change = rotate_role(
            self.home,
            role,
            keys,
            threshold=int(threshold) if threshold else None,
            passphrase_file=_passphrase_file(passphrase_file),
        )
        self.post_message(KeysChanged(change.text))
