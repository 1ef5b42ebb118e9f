"""The Verify screen shows what a bundle's manifest claims before the verification ends (as `stella inspect` does),
said to be unverified, and keeps it when the verification fails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Static

from app.tui.screens.verify import VerifyScreen
from core.home import Home, resolve_home
from core.keys import KeyAlgorithm, KeyStore
from tests.tui.support import drive, import_samples, settle, text_of


@pytest.fixture
def tui_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    monkeypatch.setenv("STELLA_HOME", str(home))
    return resolve_home(home)


def test_an_untrusted_bundle_shows_its_claims_marked_not_verified(tui_home: Home, tmp_path: Path, stella: Any) -> None:
    import_samples(tui_home)
    key = KeyStore(tui_home.ensure()).generate("k", KeyAlgorithm.ECDSA_P256)
    bundle = tmp_path / "b.tar.zst"
    assert stella("export", "run", "--profile", "json:raw", "--key", "k", "--out", bundle).code == 0
    assert stella("verify", bundle).code == 5  # nothing trusts k

    async def script(pilot: Pilot[None]) -> None:
        await pilot.press("v")
        await settle(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, VerifyScreen)
        screen.query_one("#verify-bundle", Input).value = str(bundle)
        await pilot.press("enter")
        await settle(pilot)
        # the failure opened an error modal over the screen
        assert [s for s in pilot.app.screen_stack if s is screen] == [screen]
        claims = text_of(screen.query_one("#verify-claims", Static))
        assert claims.startswith("manifest claims (NOT verified yet")
        assert "json:raw, tenant default" in claims and f"signer key {key.keyid[:16]}" in claims
        assert text_of(screen.query_one("#verify-verdict", Static)).startswith("not verified")

    drive(tui_home, script)
