"""A risk bundle built in the TUI from stale data says so, as `stella export run` does on stderr."""

from __future__ import annotations

from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from app.tui.screens.export import ExportScreen
from app.tui.screens.run import RunScreen
from core.home import Home
from core.keys import KeyAlgorithm, KeyStore
from tests.integration.test_risk_bundle import EPSS, KEV_JSON
from tests.tui.support import drive, rows, settle
from tests.tui.test_flows import open_mode, tui_home  # noqa: F401 - tui_home is a fixture


def test_building_from_stale_data_warns(tui_home: Home, stella: object, tmp_path: Path) -> None:  # noqa: F811
    assert stella("import", "--quiet", KEV_JSON, EPSS).code == 0  # type: ignore[operator]
    KeyStore(tui_home.ensure()).generate("k", KeyAlgorithm.ED25519)
    out = tmp_path / "risk.tar.zst"

    async def script(pilot: Pilot[None]) -> None:
        screen = await open_mode(pilot, "e")
        assert isinstance(screen, ExportScreen)
        table = screen.query_one("#wiz-profiles", DataTable)
        table.move_cursor(row=table.get_row_index("risk:bundle"))
        for _ in range(2):
            await pilot.press("ctrl+n")
            await settle(pilot)
        screen.query_one("#wiz-out", Input).value = str(out)
        for _ in range(2):
            await pilot.press("ctrl+n")
            await settle(pilot)
        assert isinstance(pilot.app.screen, RunScreen)
        await settle(pilot)
        warned = [r for r in rows(pilot.app.screen.query_one("#run-checks", DataTable)) if r[0] == "warn"]
        assert [r[1] for r in warned] == ["stale data", "stale data"]  # kev and epss
        assert "the kev data of 2025-08-25 went stale at 2025-09-08" in " ".join(r[2] for r in warned)

    drive(tui_home, script)
    assert out.is_file()  # built all the same: the receiver's policy decides
