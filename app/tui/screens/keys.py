"""Keys: the signing keys under the home and the trust store's keys."""

from __future__ import annotations

from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Footer, Header, Label

from app.tui.screens.base import StellaScreen
from core.keys import KeyInfo, KeyStore
from core.trust import TrustedKey, TrustStore


class KeysLoaded(Message):
    def __init__(self, keys: list[KeyInfo], trusted: list[TrustedKey]) -> None:
        super().__init__()
        self.keys = keys
        self.trusted = trusted


class KeysScreen(StellaScreen):
    """What `stella keys list` and `stella trust list` show."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("r", "refresh", "Refresh")]

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll():
            yield Label("Signing keys (stella keys generate NAME)", classes="section")
            yield DataTable(id="keys-signing", cursor_type="row", zebra_stripes=True)
            yield Label("Trusted keys (stella trust add LABEL PUB)", classes="section")
            yield DataTable(id="keys-trusted", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "keys and trust"
        signing = self.query_one("#keys-signing", DataTable)
        for heading in ("name", "algorithm", "key id", "created", "encrypted"):
            signing.add_column(heading, key=heading)
        trusted = self.query_one("#keys-trusted", DataTable)
        for heading in ("label", "algorithm", "key id", "profiles", "tenants"):
            trusted.add_column(heading, key=heading)
        self.action_refresh()

    def on_screen_resume(self) -> None:
        if self.is_mounted:
            self.action_refresh()

    def action_refresh(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="keys", exit_on_error=False, description="read keys")
    def load(self) -> None:
        self.post_message(KeysLoaded(KeyStore(self.home).list(), TrustStore(self.home).list()))

    def on_keys_loaded(self, message: KeysLoaded) -> None:
        signing = self.query_one("#keys-signing", DataTable)
        signing.clear()
        for k in message.keys:
            signing.add_row(k.name, str(k.algorithm), k.keyid[:16], k.created, "yes" if k.encrypted else "no")
        trusted = self.query_one("#keys-trusted", DataTable)
        trusted.clear()
        for t in message.trusted:
            trusted.add_row(
                t.label,
                str(t.algorithm),
                t.keyid[:16],
                ", ".join(t.profiles) or "any",
                ", ".join(t.tenants) or "any",
            )
