"""The TUI's timeline screen: a real export run's lifecycle in order, the CLI's filters, the evidence references,
enter opening the run on the Runs screen, another tenant's events out of sight; and its snapshot at 80x24."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from app.tui.app import StellaApp
from app.tui.screens.modals import ErrorModal, TextModal
from app.tui.screens.runs import RunsScreen
from app.tui.screens.timeline import TimelineScreen
from core.contract.timeline import EVIDENCE_HOLD, EXPORT_BUILT, EXPORT_DISTRIBUTED, EXPORT_REQUESTED
from core.home import Home
from core.keys import KeyAlgorithm, KeyStore
from core.timeline import EventDraft
from services.export import ExportRequest, run_export
from services.timeline import record_events, source_for
from tests.tui.support import drive, import_samples, rows, settle, text_of
from tests.tui.test_snapshots import Snap, go, snap_home  # noqa: F401 - the fixture


def test_timeline_screen_lists_filters_and_opens_the_run(home: Path, tmp_path: Path) -> None:
    h = Home(home)
    import_samples(h)
    KeyStore(h.ensure()).generate("k", KeyAlgorithm.ED25519)
    run = run_export(h, ExportRequest(tenant="default", profile="json:raw", key="k", out=tmp_path / "b.tar.zst"))
    secret = EventDraft("other", EXPORT_BUILT, source_for("other", "export"), "run:secret", {}, datetime(2026, 1, 1))
    record_events(h, [secret])

    async def script(pilot: Pilot[None]) -> None:
        await pilot.press("w")
        await settle(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, TimelineScreen)
        table = screen.query_one("#timeline-table", DataTable)
        listed = rows(table)
        # The run's lifecycle, with the seal of its evidence in between; tenant "other" is not shown.
        assert [r[2] for r in listed] == ["export.requested", "evidence.sealed", "export.built", "export.distributed"]
        assert "4 events of tenant default" in text_of(screen.query_one("#timeline-summary", Static))
        screen.query_one("#timeline-filter", Input).value = "type=export.*"
        await pilot.press("f", "enter")
        await settle(pilot)
        assert {r[4] for r in rows(table)} == {f"run:{run.run_id}"}
        # The CLI's filters, typed as name=value words.
        screen.query_one("#timeline-filter", Input).value = "type=export.built"
        await pilot.press("f", "enter")
        await settle(pilot)
        assert [r[2] for r in rows(table)] == ["export.built"]
        await pilot.press("x")  # the signed references: the manifest digest
        await settle(pilot)
        assert isinstance(pilot.app.screen, TextModal)
        body = text_of(pilot.app.screen.query_one("#text-body", Static))
        assert "manifest  sha256:" in body and run.artifact_sha256 is not None and run.artifact_sha256 in body
        await pilot.press("escape")
        await settle(pilot)
        # A bad filter word: the CLI's sentence in a modal, and the screen stays usable.
        screen.query_one("#timeline-filter", Input).value = "colour=blue"
        await pilot.press("f", "enter")
        await settle(pilot)
        assert isinstance(pilot.app.screen, ErrorModal)
        await pilot.press("escape")
        await settle(pilot)
        # Another tenant: only its own event.
        screen.query_one("#timeline-filter", Input).value = ""
        screen.query_one("#timeline-tenant", Input).value = "other"
        await pilot.press("escape", "t", "enter")  # leave the filter field, then t: the tenant field
        await settle(pilot)
        assert [r[4] for r in rows(table)] == ["run:secret"]
        screen.query_one("#timeline-tenant", Input).value = "default"
        await pilot.press("escape", "t", "enter")
        await settle(pilot)
        table.focus()
        await pilot.press("enter")  # opens the event's run
        await settle(pilot)
        assert isinstance(pilot.app.screen, RunsScreen)
        assert pilot.app.screen.selected == run.run_id

    drive(h, script)


def test_timeline_snapshot(snap_compare: Snap, snap_home: Home) -> None:  # noqa: F811 - the fixture
    run = "run-20260102T030405Z-00000001"
    at = datetime(2026, 1, 2, 3, 4, 5)
    src = source_for("default", "export")
    digest = "sha256:" + "3" * 64
    record_events(
        snap_home,
        [
            EventDraft("default", EXPORT_REQUESTED, src, f"run:{run}", {}, at, event_id=f"{run}.requested", run_id=run),
            EventDraft("default", EXPORT_BUILT, src, f"run:{run}", {}, at, event_id=f"{run}.built", run_id=run),
            EventDraft("default", EXPORT_DISTRIBUTED, src, f"run:{run}", {}, at, event_id=f"{run}.d1", run_id=run),
            EventDraft(
                "default",
                EVIDENCE_HOLD,
                source_for("default", "evidence"),
                "evidence:ev-1",
                {"reason": "litigation"},
                at,
                event_id="hold-1",
                case_id="CASE-7",
                evidence_digests=(digest,),
            ),
        ],
    )
    assert snap_compare(StellaApp(snap_home), run_before=_open)


async def _open(pilot: Pilot[None]) -> None:
    await go(pilot, "w")
