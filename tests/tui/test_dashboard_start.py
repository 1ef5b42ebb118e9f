"""The first screen paints before the store is read: the dashboard's figures arrive after, from its worker."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.widgets import DataTable, Static

from adapters.sources.registry import SOURCES
from app.tui.app import StellaApp
from app.tui.screens.dashboard import DashboardScreen
from core.home import Home
from core.ingest import Importer
from core.store import Store

SAMPLES = Path(__file__).parent.parent.parent / "samples"


def test_the_dashboard_paints_while_the_store_is_busy_and_fills_in_after(tmp_path: Path) -> None:
    home = Home(tmp_path / "home").ensure()
    with Store.open(home) as store:
        Importer(store, SOURCES).run([SAMPLES / "advisories"])

    async def main() -> None:
        app = StellaApp(home)
        app.store_guard.acquire()  # another of the app's workers has the store open
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause(0.2)
            screen = app.screen
            assert isinstance(screen, DashboardScreen)
            summary = screen.query_one("#dash-summary", Static)
            assert "(loading...)" in str(summary.render())
            counts = screen.query_one("#dash-counts", DataTable)
            assert counts.row_count == 0 and len(counts.columns) > 1  # drawn, waiting for its figures
            app.store_guard.release()
            await pilot.app.workers.wait_for_complete()
            await pilot.pause()
            assert "(loading...)" not in str(summary.render())
            assert counts.row_count == 1  # the default tenant

    asyncio.run(main())
