"""The TUI driven with Pilot at 80x24 against a real store in a temporary home.

Each test is a plain function running its coroutine with ``asyncio.run``, so no pytest async plugin is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static
from textual.worker import WorkerFailed

from adapters.sources.registry import SOURCES
from app.tui.app import StellaApp
from app.tui.screens.dashboard import COUNT_COLUMNS, DashboardScreen
from app.tui.screens.importing import PATH_WIDTH, ImportScreen, tail
from app.tui.screens.keys import KeysScreen
from app.tui.screens.modals import ErrorModal, HelpScreen
from app.tui.screens.verify import VerifyScreen
from core.home import Home, resolve_home
from core.ingest import Importer
from core.keys import KeyAlgorithm, KeyStore
from core.store import Store
from core.trust import TrustStore
from verify.bundle import verify_bundle

ROOT = Path(__file__).parent.parent.parent
SAMPLES = ROOT / "samples"
SIZE = (80, 24)


def drive(home: Home, script: Callable[[Pilot[None]], Coroutine[Any, Any, None]]) -> None:
    async def main() -> None:
        app = StellaApp(home)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await script(pilot)

    asyncio.run(main())


async def settle(pilot: Pilot[None]) -> None:
    """Let workers finish and the messages they posted be handled."""
    await pilot.pause()
    with contextlib.suppress(WorkerFailed):  # a worker a test makes fail: its dialog is what the test checks
        await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def rows(table: DataTable[Any]) -> list[list[str]]:
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


def text_of(static: Static) -> str:
    return str(static.render())


def import_samples(home: Home) -> tuple[int, dict[str, dict[str, int]]]:
    """Import every sample; returns how many were new and the store's counts."""
    with Store.open(home) as store:
        summary = Importer(store, SOURCES).run(sorted(p for p in SAMPLES.iterdir() if p.is_dir()))
        return summary.imported, store.stats()


@pytest.fixture
def tui_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    monkeypatch.setenv("STELLA_HOME", str(home))
    return resolve_home(home)


@pytest.fixture
def signed_bundle(tui_home: Home, stella: Any, tmp_path: Path) -> tuple[Path, Path]:
    """A real json:raw bundle built with the CLI, and the signer's public key."""
    assert import_samples(tui_home)[0] > 5
    assert stella("keys", "generate", "k").code == 0
    bundle = tmp_path / "out.tar.zst"
    run = stella("export", "run", "--profile", "json:raw", "--key", "k", "--out", bundle)
    assert run.code == 0, run.err
    pub = tmp_path / "k.pub"
    assert stella("keys", "export-public", "k", "--out", pub).code == 0
    return bundle, pub


def test_dashboard_shows_store_counts_keys_and_runs(tui_home: Home, signed_bundle: tuple[Path, Path]) -> None:
    new, stats = import_samples(tui_home)
    assert new == 0  # the fixture imported them already: the same bytes again are duplicates
    TrustStore(tui_home).add("partner", KeyStore(tui_home).public_pem("k"))
    expected = stats["default"]

    async def script(pilot: Pilot[None]) -> None:
        screen = pilot.app.screen
        assert isinstance(screen, DashboardScreen)
        table = screen.query_one("#dash-counts", DataTable)
        assert rows(table) == [["default", *(str(expected.get(key, 0)) for _, key in COUNT_COLUMNS)]]
        assert expected["raw_documents"] > 5
        runs = rows(screen.query_one("#dash-runs", DataTable))
        assert len(runs) == 1
        assert runs[0][1:4] == ["default", "json:raw@1", "succeeded"]
        summary = text_of(screen.query_one("#dash-summary", Static))
        assert "1 tenant, 1 signing key, 1 trusted key, 1 recent runs" in summary

    drive(tui_home, script)


def test_import_screen_imports_a_sample_then_reports_the_duplicate(tui_home: Home) -> None:
    sample = SAMPLES / "advisories" / "GO-2020-0001.json"

    async def script(pilot: Pilot[None]) -> None:
        await pilot.press("i")
        await settle(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, ImportScreen)
        screen.query_one("#import-paths", Input).value = str(sample)
        await pilot.press("enter")
        await settle(pilot)
        results = rows(screen.query_one("#import-results", DataTable))
        assert results == [["imported", tail(str(sample), PATH_WIDTH), "osv", ""]]
        assert text_of(screen.query_one("#import-summary", Static)).startswith("1 imported, 0 duplicate, 0 rejected")
        # Again: the same bytes are a duplicate.
        await pilot.click("#import-run")
        await settle(pilot)
        assert rows(screen.query_one("#import-results", DataTable))[0][0] == "duplicate"
        # Letters type into a field; escape leaves it, and then "d" opens the dashboard, which sees the import.
        screen.query_one("#import-paths", Input).focus()
        await pilot.press("escape", "d")
        await settle(pilot)
        counts = rows(pilot.app.screen.query_one("#dash-counts", DataTable))
        assert counts[0][:2] == ["default", "1"]

    drive(tui_home, script)
    with Store.open(tui_home, read_only=True) as store:
        assert store.stats()["default"]["raw_documents"] == 1


def test_import_screen_escape_cancels_a_running_import(tui_home: Home) -> None:
    async def script(pilot: Pilot[None]) -> None:
        await pilot.press("i")
        await settle(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, ImportScreen)
        screen.query_one("#import-paths", Input).value = str(SAMPLES)
        # Hold the app's store guard so the worker waits before importing anything: cancel is then deterministic.
        guard = screen.store_guard
        assert guard.acquire(blocking=False)
        try:
            await pilot.press("enter")
            await pilot.pause()
            assert not screen.query_one("#import-cancel").disabled
            await pilot.press("escape")
            await pilot.pause()
        finally:
            guard.release()
        await settle(pilot)
        summary = text_of(screen.query_one("#import-summary", Static))
        assert summary.startswith("cancelled: import cancelled")
        assert rows(screen.query_one("#import-results", DataTable)) == []
        assert not screen.query_one("#import-run").disabled

    drive(tui_home, script)
    with Store.open(tui_home, read_only=True) as store:
        assert store.stats() == {}


def test_import_screen_rejects_a_bad_document_with_its_reason(tui_home: Home, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema_version": "1.6.0", "id": "GO-1"')

    async def script(pilot: Pilot[None]) -> None:
        await pilot.press("i")
        await settle(pilot)
        screen = pilot.app.screen
        screen.query_one("#import-paths", Input).value = str(bad)
        await pilot.press("enter")
        await settle(pilot)
        (row,) = rows(screen.query_one("#import-results", DataTable))
        assert row[:2] == ["rejected", tail(str(bad), PATH_WIDTH)]
        assert row[3]
        assert "0 imported, 0 duplicate, 1 rejected" in text_of(screen.query_one("#import-summary", Static))

    drive(tui_home, script)


def test_import_screen_shows_a_bad_tenant_in_the_error_modal(tui_home: Home) -> None:
    async def script(pilot: Pilot[None]) -> None:
        await pilot.press("i")
        await settle(pilot)
        screen = pilot.app.screen
        screen.query_one("#import-paths", Input).value = str(SAMPLES)
        screen.query_one("#import-tenant", Input).value = "no/such tenant"
        await pilot.click("#import-run")
        await settle(pilot)
        modal = pilot.app.screen
        assert isinstance(modal, ErrorModal)
        assert modal.sentence.startswith("invalid tenant 'no/such tenant'")
        await pilot.press("escape")
        await pilot.pause()
        assert pilot.app.screen is screen

    drive(tui_home, script)


async def verify_in_tui(pilot: Pilot[None], bundle: Path, key: Path | None) -> VerifyScreen:
    await pilot.press("v")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, VerifyScreen)
    screen.query_one("#verify-bundle", Input).value = str(bundle)
    if key is not None:
        screen.query_one("#verify-key", Input).value = str(key)
    await pilot.press("enter")
    await settle(pilot)
    return screen


def test_verify_screen_shows_every_check_ok_for_a_good_bundle(tui_home: Home, signed_bundle: tuple[Path, Path]) -> None:
    bundle, pub = signed_bundle
    expected = [c.name for c in verify_bundle(bundle, _keys(pub)).checks]

    async def script(pilot: Pilot[None]) -> None:
        screen = await verify_in_tui(pilot, bundle, pub)
        checks = rows(screen.query_one("#verify-checks", DataTable))
        assert [c[1] for c in checks] == expected
        assert all(c[0] == "ok" for c in checks)
        assert text_of(screen.query_one("#verify-verdict", Static)).startswith(f"verified {bundle}: json:raw run ")
        assert not isinstance(pilot.app.screen, ErrorModal)

    drive(tui_home, script)


def test_verify_screen_uses_the_trust_store_without_a_key(tui_home: Home, signed_bundle: tuple[Path, Path]) -> None:
    bundle, pub = signed_bundle
    TrustStore(tui_home).add("me", pub.read_bytes())

    async def script(pilot: Pilot[None]) -> None:
        screen = await verify_in_tui(pilot, bundle, None)
        assert text_of(screen.query_one("#verify-verdict", Static)).startswith("verified ")

    drive(tui_home, script)


def _keys(pub: Path) -> list[Any]:
    from services.trust import keys_from_files

    return keys_from_files([pub])


@pytest.mark.parametrize("damage", ["garbage", "tampered"])
def test_verify_screen_shows_the_cli_sentence_for_a_bad_bundle(
    tui_home: Home, signed_bundle: tuple[Path, Path], tmp_path: Path, stella: Any, damage: str
) -> None:
    good, pub = signed_bundle
    bad = tmp_path / f"{damage}.tar.zst"
    if damage == "garbage":
        bad.write_bytes(b"this is not a bundle\n" * 50)
    else:
        data = bytearray(good.read_bytes())
        data[len(data) // 2] ^= 0xFF
        bad.write_bytes(bytes(data))
    report = verify_bundle(bad, _keys(pub))
    assert report.error is not None
    sentence = report.error.diagnostics()
    cli = stella("verify", bad, "--key", pub)
    assert cli.code == int(report.error.exit_code) != 0
    assert " ".join(cli.err.split()).endswith(" ".join(sentence.split()))

    async def script(pilot: Pilot[None]) -> None:
        await verify_in_tui(pilot, bad, pub)
        modal = pilot.app.screen
        assert isinstance(modal, ErrorModal)
        assert modal.sentence == sentence
        await pilot.press("escape")
        await pilot.pause()
        screen = pilot.app.screen
        assert isinstance(screen, VerifyScreen)
        checks = rows(screen.query_one("#verify-checks", DataTable))
        assert checks[-1][0] == "FAIL"
        assert text_of(screen.query_one("#verify-verdict", Static)) == f"not verified: {sentence}"

    drive(tui_home, script)


def test_verify_screen_missing_bundle_is_a_modal_not_a_crash(tui_home: Home, tmp_path: Path) -> None:
    async def script(pilot: Pilot[None]) -> None:
        await verify_in_tui(pilot, tmp_path / "nope.tar.zst", None)
        modal = pilot.app.screen
        assert isinstance(modal, ErrorModal)
        assert modal.sentence == f"{tmp_path / 'nope.tar.zst'}: no such bundle file"
        await pilot.press("escape")
        await pilot.pause()
        assert not pilot.app.screen.query_one("#verify-run").disabled

    drive(tui_home, script)


def test_keys_screen_lists_keys_and_trusted_keys(tui_home: Home) -> None:
    info = KeyStore(tui_home.ensure()).generate("signer", KeyAlgorithm.ED25519)
    TrustStore(tui_home).add("partner", KeyStore(tui_home).public_pem("signer"), profiles=["json:raw"])

    async def script(pilot: Pilot[None]) -> None:
        await pilot.press("k")
        await settle(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, KeysScreen)
        (signing,) = rows(screen.query_one("#keys-signing", DataTable))
        assert signing[0] == "signer" and signing[2] == info.keyid[:16] and signing[4] == "no"
        (trusted,) = rows(screen.query_one("#keys-trusted", DataTable))
        assert trusted[0] == "partner" and trusted[3] == "json:raw" and trusted[4] == "any"

    drive(tui_home, script)


def test_help_screen_and_footer_bindings(tui_home: Home) -> None:
    async def script(pilot: Pilot[None]) -> None:
        keys = {b.key for b in pilot.app.BINDINGS if not isinstance(b, tuple)}
        assert {"d", "i", "v", "k", "q", "question_mark"} <= keys
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(pilot.app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(pilot.app.screen, DashboardScreen)
        await pilot.press("q")
        await pilot.pause()
        assert pilot.app.return_code == 0

    drive(tui_home, script)


def test_verify_screen_cancels_a_running_verification(tui_home: Home, signed_bundle: tuple[Path, Path]) -> None:
    bundle, pub = signed_bundle

    async def script(pilot: Pilot[None]) -> None:
        await pilot.press("v")
        await settle(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, VerifyScreen)
        assert not screen.check_action("cancel_verify", ())  # no Cancel in the footer while nothing runs
        screen.query_one("#verify-bundle", Input).value = str(bundle)
        screen.query_one("#verify-key", Input).value = str(pub)
        # Start and cancel in one step of the event loop, as ctrl+x would right after ctrl+r: the worker
        # thread meets the cancelled token at the archive's first read.
        screen.action_verify()
        assert screen.check_action("cancel_verify", ())
        screen.action_cancel_verify()
        await settle(pilot)
        verdict = text_of(screen.query_one("#verify-verdict", Static))
        assert verdict.startswith("not verified: cancelled (") and verdict.endswith("nothing was imported")
        assert not isinstance(pilot.app.screen, ErrorModal)
        assert screen.receivable is None and screen.token is None
        assert not screen.check_action("cancel_verify", ())
        # The same bundle verifies when it is not cancelled.
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert text_of(screen.query_one("#verify-verdict", Static)).startswith(f"verified {bundle}")

    drive(tui_home, script)
