"""The Keys screen imports, renames and deletes signing keys and trusts a receipt key for receipts only, as
`stella keys import|rename|delete` and `stella trust add --receipts-only` do."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from textual.pilot import Pilot
from textual.widgets import DataTable

from app.tui.screens.forms import ConfirmModal
from app.tui.screens.keys import KeysScreen
from core.home import Home
from core.keys import KeyStore
from core.trust import TrustStore
from tests.tui.support import drive, rows, settle
from tests.tui.test_flows import fill_form, open_mode, tui_home  # noqa: F401 - tui_home is a fixture


def test_keys_import_rename_delete_and_a_receipts_only_trust(
    tui_home: Home,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    pem = tmp_path / "partner.pem"
    pem.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"s3cret passphrase"),
        )
    )
    pub = tmp_path / "receiver.pub"
    pub.write_bytes(
        private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    monkeypatch.setenv("STELLA_PASSWORD", "s3cret passphrase")  # the TUI never prompts: the variable unlocks it

    async def script(pilot: Pilot[None]) -> None:
        screen = await open_mode(pilot, "k")
        assert isinstance(screen, KeysScreen)
        await pilot.press("I")
        await pilot.pause()
        await fill_form(pilot, name="imported", file=str(pem))
        (key,) = rows(screen.query_one("#keys-signing", DataTable))
        assert key[0] == "imported" and key[1] == "ecdsa-p256" and key[4] == "yes"
        screen.query_one("#keys-signing", DataTable).focus()
        await pilot.press("n")
        await pilot.pause()
        await fill_form(pilot, new="partner")
        assert [r[0] for r in rows(screen.query_one("#keys-signing", DataTable))] == ["partner"]
        await pilot.press("c")
        await pilot.pause()
        await fill_form(pilot, label="receiver", pubkey=str(pub))
        assert pilot.app.screen is screen, getattr(pilot.app.screen, "sentence", pilot.app.screen)
        (trusted,) = rows(screen.query_one("#keys-trusted", DataTable))
        assert trusted[0] == "receiver" and trusted[3] == "receipts only"
        screen.query_one("#keys-signing", DataTable).focus()
        await pilot.press("D")
        await pilot.pause()
        assert isinstance(pilot.app.screen, ConfirmModal)
        await pilot.press("y")
        await settle(pilot)
        assert rows(screen.query_one("#keys-signing", DataTable)) == []

    drive(tui_home, script)
    assert KeyStore(tui_home).list() == []
    assert [(k.label, k.receipts_only) for k in TrustStore(tui_home).list()] == [("receiver", True)]
