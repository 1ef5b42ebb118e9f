"""The TUI's Evidence screen: the evidence a real export run sealed, shown with its artifacts, holds and custody,
verified check by check (and refused once its archive in the home changed), held and released with a reason,
exported to a file; another tenant's evidence out of sight; every dialog closes with escape; a snapshot at 80x24."""

from __future__ import annotations

import itertools
from pathlib import Path
from types import SimpleNamespace

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from app.tui.app import StellaApp
from app.tui.screens.evidence import EvidenceScreen
from app.tui.screens.forms import FormModal
from app.tui.screens.modals import ErrorModal, TextModal
from app.tui.screens.timeline import TimelineScreen
from core.home import Home
from core.keys import KeyAlgorithm, KeyStore
from services import evidence as locker
from services.export import ExportRequest, run_export
from tests.tui.support import drive, import_samples, rows, settle, text_of
from tests.tui.test_flows import fill_form
from tests.tui.test_snapshots import NOW, Snap, go, snap_home, with_run, with_samples_and_key  # noqa: F401

#: The checks of a sealed bundle without a consistency proof, in the verifier's order.
CHECKS = [
    "archive",
    "files",
    "checksums",
    "signature",
    "manifest",
    "signer scope",
    "artifacts",
    "merkle root",
    "inclusion proofs",
    "custody",
    "metadata",
    "timestamp",
]


def top(pilot: Pilot[None]) -> object:
    """The screen on top (typed plainly: what the keys just pressed put there is what the test checks)."""
    return pilot.app.screen


def test_evidence_screen_shows_verifies_holds_releases_and_exports(home: Path, tmp_path: Path) -> None:
    h = Home(home)
    import_samples(h)
    KeyStore(h.ensure()).generate("k", KeyAlgorithm.ED25519)
    run = run_export(h, ExportRequest(tenant="default", profile="json:raw", key="k", out=tmp_path / "b.tar.zst"))
    ((sealed, _),) = locker.list_evidence(h, "default")  # the run sealed itself
    out = tmp_path / "handed.tgz"

    async def script(pilot: Pilot[None]) -> None:
        await pilot.press("y")
        await settle(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, EvidenceScreen)
        table = screen.query_one("#evidence-table", DataTable)
        ((ev_id, kind, held, size, _created, _retained, subject),) = rows(table)
        assert (ev_id, kind, subject, held) == (sealed.evidence_id, "run", sealed.subject, "")
        assert run.run_id in subject and size.endswith(("B", "kB"))
        assert "1 evidence bundle of tenant default" in text_of(screen.query_one("#evidence-summary", Static))

        # Show: the manifest summary, the artifacts, no holds, the custody tail (the seal, and this access).
        await pilot.press("o")
        await settle(pilot)
        assert isinstance(pilot.app.screen, TextModal)
        body = text_of(pilot.app.screen.query_one("#text-body", Static))
        assert f"evidence {sealed.evidence_id} (run, tenant default)" in body
        assert f"Merkle     root {sealed.root_hash} over {sealed.tree_size} artifacts" in body
        assert f"artifacts ({sealed.tree_size})" in body and "  run.json\n" in body and "holds: none" in body
        assert " seal " in body and "access" in body and "shown in the TUI" in body
        await pilot.press("escape")
        await settle(pilot)
        assert top(pilot) is screen

        # Hold with a reason: the row is marked, the service agrees; escape closes the form without holding.
        await pilot.press("a")
        await settle(pilot)
        assert isinstance(pilot.app.screen, FormModal)
        await pilot.press("escape")
        await settle(pilot)
        assert top(pilot) is screen and not locker.list_evidence(h, "default")[0][1]
        await pilot.press("a")
        await settle(pilot)
        await fill_form(pilot, case="CASE-7", reason="litigation hold")
        assert rows(table)[0][2] == "held"
        ((_, holds),) = locker.list_evidence(h, "default")
        assert [(x.case_id, x.reason) for x in holds] == [("CASE-7", "litigation hold")]
        # A held bundle cannot be deleted: the locker says so (the screen acts through the same service).
        assert "CASE-7" in text_of(screen.query_one("#evidence-detail", Static))

        # Export to a file: the sealed archive, byte for byte; an export never overwrites (the CLI's sentence).
        await pilot.press("x")
        await settle(pilot)
        await fill_form(pilot, out=str(out), to="auditor", reason="case file")
        assert out.read_bytes() == (h.root / sealed.archive_path).read_bytes()
        await pilot.press("x")
        await settle(pilot)
        await fill_form(pilot, out=str(out))
        assert isinstance(pilot.app.screen, ErrorModal)
        assert "already exists" in text_of(pilot.app.screen.query_one("#error-sentence", Static))
        await pilot.press("escape")
        await settle(pilot)

        # Release with a reason: the case is offered, the mark goes.
        await pilot.press("z")
        await settle(pilot)
        await fill_form(pilot, reason="case closed")
        assert rows(table)[0][2] == ""
        await pilot.press("z")  # nothing left to release: said, no dialog
        await settle(pilot)
        assert top(pilot) is screen

        # Verify check by check with the home's key that sealed it.
        await pilot.press("c")
        await settle(pilot)
        await fill_form(pilot)
        checks = rows(screen.query_one("#evidence-checks", DataTable))
        assert [c[1] for c in checks] == CHECKS and {c[0] for c in checks} == {"ok"}
        verdict = text_of(screen.query_one("#evidence-verdict", Static))
        assert verdict.startswith(f"verified {sealed.evidence_id}: root {sealed.root_hash[:16]}")

        # Another tenant: none of this tenant's evidence.
        screen.query_one("#evidence-tenant", Input).value = "other"
        await pilot.press("t", "enter")
        await settle(pilot)
        assert rows(table) == []
        assert "no evidence in tenant other" in text_of(screen.query_one("#evidence-summary", Static))
        screen.query_one("#evidence-tenant", Input).value = "default"
        await pilot.press("t", "enter")
        await settle(pilot)

        # The archive in the home changed: verification refuses it, exit 4, naming the file.
        archive = h.root / sealed.archive_path
        data = bytearray(archive.read_bytes())
        data[-20] ^= 1
        archive.write_bytes(bytes(data))
        await pilot.press("c")
        await settle(pilot)
        await fill_form(pilot)
        assert isinstance(pilot.app.screen, ErrorModal)
        sentence = text_of(pilot.app.screen.query_one("#error-sentence", Static))
        assert "does not have the digest recorded" in sentence and archive.name in sentence

    drive(h, script)
    actions = [(e.action, e.why) for e in locker.custody_of(h, "default", sealed.evidence_id, last=100)]
    assert ("hold", "case CASE-7: litigation hold") in actions and ("release", "case CASE-7: case closed") in actions
    assert ("transfer", "case file") in actions and ("verify", f"verified {Path(sealed.archive_path).name}") in actions


def test_the_timeline_opens_the_evidence_an_event_links(home: Path, tmp_path: Path) -> None:
    h = Home(home)
    import_samples(h)
    KeyStore(h.ensure()).generate("k", KeyAlgorithm.ED25519)
    run_export(h, ExportRequest(tenant="default", profile="json:raw", key="k", out=tmp_path / "b.tar.zst"))
    ((sealed, _),) = locker.list_evidence(h, "default")

    async def script(pilot: Pilot[None]) -> None:
        await pilot.press("w")
        await settle(pilot)
        timeline = pilot.app.screen
        assert isinstance(timeline, TimelineScreen)
        table = timeline.query_one("#timeline-table", DataTable)
        types = [r[2] for r in rows(table)]
        table.move_cursor(row=types.index("export.requested"))  # links no evidence: said, nothing opens
        await pilot.press("l")
        await settle(pilot)
        assert top(pilot) is timeline
        table.move_cursor(row=types.index("export.built"))  # links the run's sealed evidence
        await pilot.press("l")
        await settle(pilot)
        assert isinstance(top(pilot), TextModal)
        body = text_of(pilot.app.screen.query_one("#text-body", Static))
        assert body.startswith(f"evidence {sealed.evidence_id} (run, tenant default)")
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(top(pilot), EvidenceScreen)

    drive(h, script)


def test_a_hold_on_the_second_bundle_keeps_the_cursor_there(home: Path, tmp_path: Path) -> None:
    h = Home(home)
    import_samples(h)
    KeyStore(h.ensure()).generate("k", KeyAlgorithm.ED25519)
    run = run_export(h, ExportRequest(tenant="default", profile="json:raw", key="k", out=tmp_path / "b.tar.zst"))
    locker.snapshot(h, locker.SnapshotRequest(tenant="default", kind="job", ref=run.run_id, key="k"))

    async def script(pilot: Pilot[None]) -> None:
        await pilot.press("y")
        await settle(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, EvidenceScreen)
        table = screen.query_one("#evidence-table", DataTable)
        assert sorted(r[1] for r in rows(table)) == ["job", "run"]  # sealed within a second: either order
        second = rows(table)[1][0]
        await pilot.press("down", "a")
        await settle(pilot)
        await fill_form(pilot, case="CASE-9", reason="audit")
        assert [r[2] for r in rows(table)] == ["", "held"] and table.cursor_row == 1
        assert rows(table)[1][0] == second
        ((_, none), (_, holds)) = locker.list_evidence(h, "default")
        assert not none and [x.case_id for x in holds] == ["CASE-9"]
        assert "held by CASE-9" in text_of(screen.query_one("#evidence-detail", Static))

    drive(h, script)


def test_a_wrong_key_fails_the_signature_check(home: Path, tmp_path: Path) -> None:
    h = Home(home)
    import_samples(h)
    keys = KeyStore(h.ensure())
    keys.generate("k", KeyAlgorithm.ED25519)
    keys.generate("other", KeyAlgorithm.ED25519)
    other = tmp_path / "other.pub"
    other.write_bytes(keys.public_pem("other"))
    run_export(h, ExportRequest(tenant="default", profile="json:raw", key="k", out=tmp_path / "b.tar.zst"))

    async def script(pilot: Pilot[None]) -> None:
        await pilot.press("y")
        await settle(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, EvidenceScreen)
        await pilot.press("c")
        await settle(pilot)
        await fill_form(pilot, key=str(other))
        assert isinstance(pilot.app.screen, ErrorModal)
        assert "exit 5" in text_of(pilot.app.screen.query_one("#error-title", Static))
        await pilot.press("escape")
        await settle(pilot)
        checks = rows(screen.query_one("#evidence-checks", DataTable))
        assert [c[0] for c in checks][-1] == "FAIL" and checks[-1][1] == "signature"
        assert text_of(screen.query_one("#evidence-verdict", Static)).startswith("not verified:")

    drive(h, script)


def test_evidence_snapshot(
    snap_compare: Snap,
    snap_home: Home,  # noqa: F811 - the fixture
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("services.evidence.utcnow", lambda: NOW)
    monkeypatch.setattr("services.evidence.current_user", lambda: "operator")
    # What the sealed archives hold of this machine (its name, its platform), so their sizes are the same anywhere.
    monkeypatch.setattr("services.evidence._host", lambda: "jumphost")
    monkeypatch.setattr("services.evidence.environment_digests", lambda home, store: {"tool": "stella 0.0.0"})
    tails = itertools.count(1)
    monkeypatch.setattr("services.evidence.secrets", SimpleNamespace(token_hex=lambda n: f"{next(tails):0{2 * n}x}"))
    with_samples_and_key(snap_home)
    with_run(snap_home)
    run = "run-20260102T030405Z-00000001"
    for kind in ("run", "job"):
        locker.snapshot(snap_home, locker.SnapshotRequest(tenant="default", kind=kind, ref=run, key="signer"))
    held = locker.list_evidence(snap_home, "default")[0][0]
    locker.place_hold(snap_home, "default", "CASE-7", held.evidence_id, "litigation hold")
    assert snap_compare(StellaApp(snap_home), run_before=_open)


async def _open(pilot: Pilot[None]) -> None:
    await go(pilot, "y")
