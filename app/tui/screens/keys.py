"""Keys and trust: signing keys under the home (`stella keys ...`) and the trust store (`stella trust ...`)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Footer, Header, Label

from app.tui.screens.base import StellaScreen, shown_path
from app.tui.screens.forms import ConfirmModal, Field, FormModal
from core.errors import EnvironmentFailure
from core.keys import KeyAlgorithm, KeyInfo, KeyStore, read_passphrase_file
from core.trust import TrustedKey, TrustStore


class KeysLoaded(Message):
    def __init__(self, keys: list[KeyInfo], trusted: list[TrustedKey]) -> None:
        super().__init__()
        self.keys = keys
        self.trusted = trusted


class KeysChanged(Message):
    """A key was generated, exported, trusted or removed: the CLI's sentence for it."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


def scope(values: tuple[str, ...]) -> str:
    return ", ".join(values) if values else "any"


def split_list(text: str) -> list[str]:
    return [v.strip() for v in text.replace(",", " ").split() if v.strip()]


class KeysScreen(StellaScreen):
    """What `stella keys list` and `stella trust list` show, and their generate/export/add/remove actions."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "refresh", "Refresh"),
        Binding("g", "generate", "Generate"),
        Binding("x", "export_public", "Export pub"),
        Binding("a", "trust_add", "Trust key"),
        Binding("delete", "trust_remove", "Untrust", key_display="del"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll():
            yield Label("Signing keys (g generate, x export the public key)", classes="section")
            yield DataTable(id="keys-signing", cursor_type="row", zebra_stripes=True)
            yield Label("Trusted keys (a trust a public key, del stop trusting)", classes="section")
            yield DataTable(id="keys-trusted", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "keys and trust"
        signing = self.query_one("#keys-signing", DataTable)
        for heading in ("name", "algorithm", "key id", "created", "encrypted"):
            signing.add_column(heading, key=heading)
        trusted = self.query_one("#keys-trusted", DataTable)
        for heading in ("label", "algorithm", "key id", "profiles", "tenants"):
            trusted.add_column(heading, key=heading)
        self.action_refresh()

    def resumed(self) -> None:
        self.action_refresh()

    def action_refresh(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="keys", exit_on_error=False, description="read keys")
    def load(self) -> None:
        self.loaded(KeysLoaded(KeyStore(self.home).list(), TrustStore(self.home).list()))

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
            trusted.add_row(t.label, str(t.algorithm), t.keyid[:16], scope(t.profiles), scope(t.tenants), key=t.label)

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
        passphrase = read_passphrase_file(passphrase_file) if passphrase_file else None
        info = KeyStore(self.home.ensure()).generate(name, KeyAlgorithm(algorithm), passphrase)
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

    @work(thread=True, group="keys-write", exit_on_error=False, description="export a public key")
    def export_public(self, name: str, out: Path) -> None:
        pem = KeyStore(self.home).public_pem(name)
        try:
            out.write_bytes(pem)
        except OSError as exc:
            raise EnvironmentFailure(f"cannot write the public key: {exc.strerror}", path=str(out)) from exc
        self.post_message(KeysChanged(f"wrote the public key of {name} to {shown_path(out.resolve())}"))

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

    @work(thread=True, group="keys-write", exit_on_error=False, description="trust a key")
    def trust_add(self, label: str, pubkey: Path, profiles: list[str], tenants: list[str]) -> None:
        try:
            pem = pubkey.read_bytes()
        except OSError as exc:
            raise EnvironmentFailure(f"cannot read public key: {exc.strerror}", path=str(pubkey)) from exc
        store = TrustStore(self.home.ensure())
        key = store.add(label, pem, profiles=profiles, tenants=tenants, source=str(pubkey))
        self.post_message(
            KeysChanged(
                f"trusted {key.algorithm} key {key.label}, key id {key.keyid}; "
                f"profiles: {scope(key.profiles)}; tenants: {scope(key.tenants)}"
            )
        )

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
        key = TrustStore(self.home).remove(label)
        if key is None:
            text = f"removed damaged trust entry {label}"
        else:
            text = f"removed trusted key {key.label} (key id {key.keyid})"
        self.post_message(KeysChanged(text))
