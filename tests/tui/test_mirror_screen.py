"""The Mirror screen (m) with Pilot at 80x24, against a real mirror: a mirror:full bundle then a mirror:delta
bundle built and imported through the CLI (test_receive's sender, test_mirror's delta recipe). Status, receipts,
verify, rollback and query are checked against what `stella mirror ...` says about the same directory; snapshots
follow, pinned as in test_snapshots.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Select, Static

from app.tui.app import StellaApp
from app.tui.screens.forms import ConfirmModal
from app.tui.screens.mirror import MirrorScreen
from app.tui.screens.modals import ErrorModal
from core.home import Home
from services.mirror_dir import MirrorDir
from tests.conftest import CliResult
from tests.integration.test_mirror import _export, _new_revision
from tests.tui.support import drive, rows, settle, text_of
from tests.tui.test_receive import mirror_bundle, receiver  # noqa: F401 - receiver is a fixture used below
from tests.tui.test_snapshots import NOW, Snap, go, snap_home  # noqa: F401 - snap_home is a fixture used below

Stella = Callable[..., CliResult]
AT = "2026-01-02T03:04:05Z"  # NOW: the pinned snapshot clock, when the pinned exports' metadata is valid


def full_then_delta(stella: Stella, where: Path, *at: str) -> Path:
    """A mirror directory ``where/mirror`` at sequence 1: a mirror:full import, then a delta with one revised
    advisory (GO-2020-0001), both through `stella mirror import`; ``at`` is ``--at TIME`` for pinned clocks."""
    full, pub, root = mirror_bundle(stella, where)
    assert stella("trust", "add", "receiver", pub).code == 0  # the receipt signer (same key, as in test_mirror)
    mirror = where / "mirror"
    res = stella("mirror", "import", full, "--into", mirror, "--key", pub, "--trust-root", root, *at)
    assert res.code == 0, res.err
    assert stella("import", "--quiet", _new_revision(where, "revised")).code == 0
    receipt = mirror / "current" / "meta" / "receipt.json"
    delta, _ = _export(stella, where, "mirror:delta", "--base", receipt)
    res = stella("mirror", "import", delta, "--into", mirror, "--key", pub, *at)
    assert res.code == 0, res.err
    return mirror


async def open_mirror(pilot: Pilot[None], mirror: Path | str) -> MirrorScreen:
    await pilot.press("m")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, MirrorScreen)
    screen.query_one("#mirror-dir", Input).value = str(mirror)
    await pilot.press("enter")
    await settle(pilot)
    return screen


def test_status_and_receipts_match_the_cli(receiver: Home, stella: Stella, tmp_path: Path) -> None:  # noqa: F811
    mirror = full_then_delta(stella, tmp_path)
    cli = stella("mirror", "status", mirror, "--json").json()
    assert isinstance(cli, dict)

    async def script(pilot: Pilot[None]) -> None:
        screen = await open_mirror(pilot, mirror)
        state = text_of(screen.query_one("#mirror-state", Static))
        current, previous = cli["current"], cli["previous"]
        assert state.startswith(f"state {current['stateDigest'][:12]}  sequence 1  tenant default  ")
        assert f"previous state {previous['stateDigest'][:12]} (sequence 0): ctrl+b rolls back" in state
        tuf = rows(screen.query_one("#mirror-tuf", DataTable))
        assert [r[:3] for r in tuf] == [[role, str(i["version"]), i["expires"]] for role, i in cli["tuf"].items()]
        assert all(r[3] != "expired" for r in tuf)
        receipts = rows(screen.query_one("#mirror-receipts", DataTable))
        assert [r[1] for r in receipts] == ["1", "0"]  # newest first
        assert receipts[0][2] == current["stateDigest"][:12] and receipts[1][2] == previous["stateDigest"][:12]
        assert receipts[0][0] == cli["lastImport"]["importedAt"]
        assert receipts[0][3] == cli["lastImport"]["bundle"]["name"]

    drive(receiver, script)


def test_verify_shows_each_check_then_the_cli_verdict(receiver: Home, stella: Stella, tmp_path: Path) -> None:  # noqa: F811
    mirror = full_then_delta(stella, tmp_path)
    cli = stella("mirror", "verify", mirror)
    assert cli.code == 0

    async def script(pilot: Pilot[None]) -> None:
        screen = await open_mirror(pilot, mirror)
        await pilot.press("ctrl+t")
        await settle(pilot)
        checks = rows(screen.query_one("#mirror-checks", DataTable))
        assert [c[:2] for c in checks] == [["ok", "root"], ["ok", "tuf"], ["ok", "state"]]
        verdict = text_of(screen.query_one("#mirror-verdict", Static))
        assert verdict == " ".join(cli.out.split())

    drive(receiver, script)


def test_verify_of_a_damaged_mirror_fails_its_check_with_the_cli_sentence(
    receiver: Home,  # noqa: F811
    stella: Stella,
    tmp_path: Path,
) -> None:
    mirror = full_then_delta(stella, tmp_path)
    state = MirrorDir(mirror).current()
    assert state is not None
    pack = next(p for p in (state / "tree" / "data").rglob("*") if p.is_file())
    pack.write_bytes(pack.read_bytes() + b"x")
    cli = stella("mirror", "verify", mirror)
    assert cli.code == 4

    async def script(pilot: Pilot[None]) -> None:
        screen = await open_mirror(pilot, mirror)
        await pilot.press("ctrl+t")
        await settle(pilot)
        modal = pilot.app.screen
        assert isinstance(modal, ErrorModal) and modal.title_text == "error (integrity, exit 4)"
        assert " ".join(cli.err.split()).endswith(" ".join(modal.sentence.split()))
        await pilot.press("escape")
        await settle(pilot)
        checks = rows(screen.query_one("#mirror-checks", DataTable))
        assert checks[0][:2] == ["ok", "root"] and checks[-1][:2] == ["FAIL", "tuf"]
        assert text_of(screen.query_one("#mirror-verdict", Static)).startswith("not verified: ")

    drive(receiver, script)


def test_rollback_asks_first_then_makes_the_previous_state_current(
    receiver: Home,  # noqa: F811
    stella: Stella,
    tmp_path: Path,
) -> None:
    mirror = full_then_delta(stella, tmp_path)
    before = stella("mirror", "status", mirror, "--json").json()
    assert isinstance(before, dict)

    async def script(pilot: Pilot[None]) -> None:
        screen = await open_mirror(pilot, mirror)
        screen.set_focus(None)
        await pilot.press("ctrl+b")
        await settle(pilot)
        assert isinstance(pilot.app.screen, ConfirmModal)
        assert f"state {before['previous']['stateDigest'][:12]} (sequence 0)" in pilot.app.screen.question
        await pilot.press("n")  # no: nothing changes
        await settle(pilot)
        assert stella("mirror", "status", mirror, "--json").json()["current"] == before["current"]  # type: ignore[index]
        await pilot.press("ctrl+b")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        state = text_of(screen.query_one("#mirror-state", Static))
        assert state.startswith(f"state {before['previous']['stateDigest'][:12]}  sequence 0  ")
        assert f"previous state {before['current']['stateDigest'][:12]} (sequence 1)" in state

    drive(receiver, script)
    after = stella("mirror", "status", mirror, "--json").json()
    assert after["current"]["stateDigest"] == before["previous"]["stateDigest"]  # type: ignore[index]
    raw = stella("mirror", "query", mirror, "--id", "GO-2020-0001", "--raw")
    assert b'"summary": "revised"' not in raw.out.encode() and "revised" not in raw.out


def test_query_by_id_purl_and_subject_matches_the_cli(receiver: Home, stella: Stella, tmp_path: Path) -> None:  # noqa: F811
    mirror = full_then_delta(stella, tmp_path)
    by_id = stella("mirror", "query", mirror, "--id", "GO-2020-0001", "--json").json()["documents"]  # type: ignore[index]
    purl = by_id[0]["purls"][0].split("@")[0]
    by_purl = stella("mirror", "query", mirror, "--purl", purl, "--json").json()["documents"]  # type: ignore[index]

    async def query(pilot: Pilot[None], screen: MirrorScreen, key: str, value: str) -> list[list[str]]:
        screen.query_one("#mirror-query-key", Select).value = key
        screen.query_one("#mirror-query", Input).value = value
        screen.query_one("#mirror-query", Input).focus()
        await pilot.press("enter")
        await settle(pilot)
        return rows(screen.query_one("#mirror-hits", DataTable))

    async def script(pilot: Pilot[None]) -> None:
        screen = await open_mirror(pilot, mirror)
        hits = await query(pilot, screen, "id", "GO-2020-0001")
        assert [h[1] for h in hits] == ["GO-2020-0001"] and hits[0][3] == by_id[0]["sha256"][:16]
        hits = await query(pilot, screen, "purl", purl)
        assert [h[1] for h in hits] == [d["documentId"] for d in by_purl]
        assert await query(pilot, screen, "subject", "no such subject") == []
        await query(pilot, screen, "id", "")  # nothing to look for: the CLI's usage error
        modal = pilot.app.screen
        assert isinstance(modal, ErrorModal) and "give --id, --purl or --subject" in modal.sentence

    drive(receiver, script)


def test_an_empty_or_missing_mirror_says_so(receiver: Home, tmp_path: Path) -> None:  # noqa: F811
    (tmp_path / "empty").mkdir()

    async def script(pilot: Pilot[None]) -> None:
        screen = await open_mirror(pilot, tmp_path / "empty")
        state = text_of(screen.query_one("#mirror-state", Static))
        assert state.startswith(f"{tmp_path / 'empty'}: empty mirror (no import yet); import a mirror bundle:")
        assert "(v), then ctrl+n" in state
        screen.query_one("#mirror-dir", Input).value = str(tmp_path / "missing")
        screen.query_one("#mirror-dir", Input).focus()
        await pilot.press("enter")
        await settle(pilot)
        modal = pilot.app.screen
        assert isinstance(modal, ErrorModal) and "no such mirror directory" in modal.sentence

    drive(receiver, script)


# -- snapshots ---------------------------------------------------------------------------------------


@pytest.fixture
def snap_mirror(snap_home: Home, stella: Stella, monkeypatch: pytest.MonkeyPatch) -> Path:  # noqa: F811
    """The full-then-delta mirror under the pinned working directory, imported at the pinned time."""
    monkeypatch.setattr("services.mirror_import._now_text", lambda: AT)
    monkeypatch.setattr("adapters.profiles.mirror.utcnow", lambda: NOW)
    return full_then_delta(stella, Path("."), "--at", AT)


def test_snapshot_mirror_status_and_verified(snap_compare: Snap, snap_home: Home, snap_mirror: Path) -> None:  # noqa: F811
    async def run_before(pilot: Pilot[None]) -> None:
        await go(pilot, "m")
        pilot.app.screen.query_one("#mirror-dir", Input).value = "mirror"
        await go(pilot, "enter")
        await go(pilot, "ctrl+t")

    assert snap_compare(StellaApp(snap_home), run_before=run_before)


def test_snapshot_mirror_rollback_confirm(snap_compare: Snap, snap_home: Home, snap_mirror: Path) -> None:  # noqa: F811
    async def run_before(pilot: Pilot[None]) -> None:
        await go(pilot, "m")
        pilot.app.screen.query_one("#mirror-dir", Input).value = "mirror"
        await go(pilot, "enter", "ctrl+b")

    assert snap_compare(StellaApp(snap_home), run_before=run_before)
