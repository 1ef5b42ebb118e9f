"""Helpers shared by the TUI tests: drive the app with Pilot, read widgets, fill a store through core."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import DataTable, Static
from textual.worker import WorkerFailed

from adapters.sources.registry import SOURCES
from app.tui.app import StellaApp
from core.home import Home
from core.ingest import Importer
from core.store import Store

ROOT = Path(__file__).parent.parent.parent
SAMPLES = ROOT / "samples"
SIZE = (80, 24)

Script = Callable[[Pilot[None]], Coroutine[Any, Any, None]]


def drive(home: Home, script: Script) -> None:
    """Open the app on ``home`` at 80x24 and run ``script`` against it."""

    async def main() -> None:
        app = StellaApp(home)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await script(pilot)

    asyncio.run(main())


async def settle(pilot: Pilot[None], delay: float = 0.0) -> None:
    """Let timers fire (``delay``), workers finish and the messages they posted be handled."""
    await pilot.pause(delay) if delay else await pilot.pause()
    for _ in range(3):
        with contextlib.suppress(WorkerFailed):  # a worker a test makes fail: its dialog is what the test checks
            await pilot.app.workers.wait_for_complete()
        await pilot.pause()


def rows(table: DataTable[Any]) -> list[list[str]]:
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


def text_of(static: Static) -> str:
    return str(static.render())


def import_samples(home: Home) -> dict[str, dict[str, int]]:
    """Import every sample directory through core; returns the store's counts."""
    with Store.open(home) as store:
        Importer(store, SOURCES).run(sorted(p for p in SAMPLES.iterdir() if p.is_dir()))
        return store.stats()


def drive_at(home: Home, now: datetime, script: Script) -> None:
    """:func:`drive` with the app's clock pinned at ``now`` (naive UTC): dashboard warnings, TUF time left."""

    async def main() -> None:
        app = StellaApp(home, now=lambda: now)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await script(pilot)

    asyncio.run(main())
