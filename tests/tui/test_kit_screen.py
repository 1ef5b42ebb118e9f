"""The TUI's Offline Kit screen: pick finished runs, choose a medium, see the volume plan, assemble with progress,
verify a volume; and the plan view's snapshot at 80x24."""

from __future__ import annotations

from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import DataTable, Input, ProgressBar, Select, Static

from app.tui.app import StellaApp
from app.tui.screens.kit import KitScreen
from core.home import Home
from core.keys import KeyAlgorithm, KeyStore
from core.timeline import EventFilter
from services.evidence import list_evidence
from services.export import ExportRequest, run_export
from services.timeline import list_timeline
from tests.tui.support import drive, import_samples, rows, settle, text_of
from tests.tui.test_snapshots import Snap, go, snap_home, with_run, with_samples_and_key  # noqa: F401 - the fixture


def test_kit_screen_plans_assembles_and_verifies(home: Path, tmp_path: Path) -> None:
    h = Home(home)
    import_samples(h)
    KeyStore(h.ensure()).generate("k", KeyAlgorithm.ECDSA_P256)
    pub = tmp_path / "k.pub"
    pub.write_bytes(KeyStore(h).public_pem("k"))
    for profile in ("json:raw", "json:policy"):
        run_export(
            h, ExportRequest(tenant="default", profile=profile, key="k", out=tmp_path / f"{profile[5:]}.tar.zst")
        )
    out = tmp_path / "kit"

    async def script(pilot: Pilot[None]) -> None:
        await pilot.press("u")
        await settle(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, KitScreen)
        runs = screen.query_one("#kit-runs", DataTable)
        assert [r[2] for r in rows(runs)] == ["json:policy", "json:raw"]
        assert isinstance(pilot.app.focused, DataTable)
        await pilot.press("space", "down", "space")
        await settle(pilot)
        assert [r[0] for r in rows(runs)] == ["[x]", "[x]"]
        # A DVD holds both whole on one volume.
        await pilot.press("ctrl+r")
        await settle(pilot)
        plan = screen.query_one("#kit-plan", DataTable)
        assert [r[0] for r in rows(plan)] == ["vol-01", "vol-01"]
        assert "1 volume of 4.70 GB" in text_of(screen.query_one("#kit-summary", Static))
        # A custom 96 kB medium: each bundle on its own volume, how full each is.
        screen.query_one("#kit-medium", Select).value = "custom"
        await settle(pilot)
        size = screen.query_one("#kit-size", Input)
        assert size.display and size.has_focus
        size.value = "96K"
        await pilot.press("enter")
        await settle(pilot)
        assert sorted(r[0] for r in rows(plan)) == ["vol-01", "vol-02"]
        summary = text_of(screen.query_one("#kit-summary", Static))
        assert summary.startswith("2 volumes of 96.0 kB: vol-01 ") and "% full" in summary
        screen.query_one("#kit-key", Input).value = "k"
        screen.query_one("#kit-out", Input).value = str(out)
        screen.set_focus(None)
        await pilot.press("ctrl+a")
        await settle(pilot)
        result = text_of(screen.query_one("#kit-result", Static))
        assert result.startswith("assembled kit ") and "2 volumes, 2 bundles" in result, result
        # The kit is sealed into the tenant's evidence locker and is on its timeline, ready for transfer.
        [sealed] = [b for b, _ in list_evidence(h, "default") if b.kind == "kit"]
        assert f"sealed as evidence {sealed.evidence_id} in tenant default" in result
        ready = list_timeline(h, "default", EventFilter(types=("bundle.ready-for-transfer",))).events
        assert [e.subject for e in ready] == [f"kit:{sealed.subject}"] and ready[0].evidence_digests == (sealed.digest,)
        bar = screen.query_one("#kit-progress", ProgressBar)
        assert bar.total is not None and bar.progress == bar.total > 0
        assert sorted(p.name for p in out.iterdir()) == ["SHA256SUMS", "SHA256SUMS.sig", "vol-01", "vol-02"]
        # Verify the first volume (filled in) with the signer's public key.
        assert screen.query_one("#kit-volume", Input).value == str(out / "vol-01")
        screen.query_one("#kit-pub", Input).value = str(pub)
        screen.query_one("#kit-pub", Input).focus()
        await pilot.press("enter")
        await settle(pilot)
        verdict = text_of(screen.query_one("#kit-verdict", Static))
        assert verdict.startswith("verified volume 1 of 2"), verdict
        checks = rows(screen.query_one("#kit-checks", DataTable))
        assert [c[1] for c in checks][:2] == ["layout", "signature"] and all(c[0] == "ok" for c in checks)
        # A flipped byte: the failing check and the sentence.
        bundle = next((out / "vol-01" / "bundles").iterdir())
        data = bytearray(bundle.read_bytes())
        data[100] ^= 1
        bundle.write_bytes(bytes(data))
        screen.query_one("#kit-pub", Input).focus()
        await pilot.press("enter")
        await settle(pilot)
        verdict = text_of(screen.query_one("#kit-verdict", Static))
        assert verdict.startswith("not verified:") and bundle.name in verdict
        assert rows(screen.query_one("#kit-checks", DataTable))[-1][0] == "FAIL"

    drive(h, script)


def test_kit_plan_snapshot(snap_compare: Snap, snap_home: Home) -> None:  # noqa: F811 - the fixture
    with_samples_and_key(snap_home)
    with_run(snap_home)
    assert snap_compare(StellaApp(snap_home), run_before=_plan)


async def _plan(pilot: Pilot[None]) -> None:
    await go(pilot, "u")
    screen = pilot.app.screen
    screen.query_one("#kit-medium", Select).value = "custom"
    await settle(pilot)
    screen.query_one("#kit-size", Input).value = "64K"
    await pilot.press("enter")
    await settle(pilot)
    screen.query_one("#kit-runs", DataTable).focus()
    await go(pilot, "space", "ctrl+r")
