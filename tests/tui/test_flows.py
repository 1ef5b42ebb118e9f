"""Every TUI flow driven with Pilot at 80x24 against a real store in a temporary home.

Each flow is checked against what core (and the CLI) says about the same store: the live count against
``count_inputs``, the run against ``RunEngine``, profile revisions against ``ProfileStore``, keys against the key and
trust stores, and error modals against the CLI's sentence.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Label, Select, Static

from app.tui.app import StellaApp
from app.tui.screens.base import shown_path
from app.tui.screens.dashboard import EPSS_STALE_AFTER, KEV_STALE_AFTER, DashboardScreen
from app.tui.screens.data import DataScreen
from app.tui.screens.export import ExportScreen
from app.tui.screens.forms import ConfirmModal, FormModal
from app.tui.screens.importing import ImportScreen
from app.tui.screens.keys import KeysScreen
from app.tui.screens.modals import ErrorModal, TextModal
from app.tui.screens.profiles import ProfilesScreen
from app.tui.screens.run import RunScreen
from app.tui.screens.runs import RunsScreen
from app.tui.screens.verify import VerifyScreen
from core.durations import human_duration
from core.home import Home, resolve_home
from core.keys import KeyAlgorithm, KeyStore
from core.planner import plan_run
from core.profiles import ProfileStore
from core.query import ListKind, count_rows
from core.runs import RunEngine, RunState
from core.selectors import count_inputs, parse_selectors
from core.store import Store
from core.trust import TrustStore
from core.tuf_home import TufHome
from core.tuf_repo import TOP_LEVEL_ROLES
from tests.tui.support import SAMPLES, drive, drive_at, import_samples, rows, settle, text_of
from verify.bundle import verify_bundle


@pytest.fixture
def tui_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    monkeypatch.setenv("STELLA_HOME", str(home))
    return resolve_home(home)


@pytest.fixture
def filled_home(tui_home: Home) -> Home:
    """The samples imported and one Ed25519 signing key ``k``, all through core."""
    assert import_samples(tui_home)["default"]["raw_documents"] > 5
    KeyStore(tui_home.ensure()).generate("k", KeyAlgorithm.ED25519)
    return tui_home


async def open_mode(pilot: Pilot[None], key: str) -> Any:
    await pilot.press(key)
    await settle(pilot)
    return pilot.app.screen


async def wizard_to_options(pilot: Pilot[None], profile: str, selectors: str) -> ExportScreen:
    screen = await open_mode(pilot, "e")
    assert isinstance(screen, ExportScreen)
    table = screen.query_one("#wiz-profiles", DataTable)
    table.move_cursor(row=table.get_row_index(profile))
    await pilot.press("ctrl+n")
    await settle(pilot)
    screen.query_one("#wiz-selectors", Input).value = selectors
    await settle(pilot, 0.5)
    await pilot.press("ctrl+n")
    await settle(pilot)
    return screen


# -- run wizard, run screen -------------------------------------------------------------------------


def test_wizard_counts_live_then_runs_signs_and_verifies(filled_home: Home, tmp_path: Path) -> None:
    out = tmp_path / "bundle.tar.zst"
    with Store.open(filled_home) as store:
        raw = ProfileStore(store).get("default", "json:raw")
        everything = count_inputs(store, "default", parse_selectors([]), raw.config.record_types)
        osv = count_inputs(store, "default", parse_selectors(["format=osv"]), raw.config.record_types)
    assert sum(everything.values()) > sum(osv.values()) > 0

    async def script(pilot: Pilot[None]) -> None:
        screen = await open_mode(pilot, "e")
        assert isinstance(screen, ExportScreen)
        assert screen.chosen_profile() is not None and screen.chosen_profile().profile_id == "json:raw"  # type: ignore[union-attr]
        await pilot.press("ctrl+n")
        await settle(pilot, 0.5)
        count = screen.query_one("#wiz-count", Static)
        assert text_of(count).startswith(f"{sum(everything.values())} matching inputs (")
        # Typing a selector recounts, after the field has been still for a moment.
        await pilot.press(*"format=osv")
        await settle(pilot, 0.5)
        assert text_of(count) == f"{osv['advisory']} matching inputs (advisory {osv['advisory']})"
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert not screen.query_one("#wiz-base-row").display  # a delta base only for mirror:delta
        assert screen.query_one("#wiz-key", Select).value == "k"  # the only key is preselected
        screen.query_one("#wiz-out", Input).value = str(out)
        await pilot.press("ctrl+n")
        await settle(pilot)
        summary = text_of(screen.query_one("#wiz-summary", Static))
        assert "profile     json:raw@1" in summary and "selectors   format=osv" in summary
        assert f"inputs      {osv['advisory']} matching inputs" in summary
        await pilot.press("ctrl+n")
        await settle(pilot)
        run_screen = pilot.app.screen
        assert isinstance(run_screen, RunScreen)
        assert run_screen.export_run is not None
        run_id = run_screen.export_run.run_id
        assert text_of(run_screen.query_one("#run-summary", Static)).startswith(f"succeeded {run_id}: ")
        checks = rows(run_screen.query_one("#run-checks", DataTable))
        expected = verify_bundle(out, [_signer(filled_home)]).checks
        assert [c[1] for c in checks] == [c.name for c in expected]
        assert all(c[0] == "ok" for c in checks)
        verdict = text_of(run_screen.query_one("#run-verdict", Static))
        assert verdict.startswith("verified: manifest sha256 ")
        assert "provenance: https://in-toto.io/Statement/v1" in verdict
        assert f"{osv['advisory']} resolved dependencies" in verdict
        await pilot.press("escape")
        await pilot.pause()
        assert pilot.app.screen is screen

    drive(filled_home, script)
    with Store.open(filled_home, read_only=True) as store:
        (run,) = RunEngine(store).list_runs("default")
    assert run.state is RunState.SUCCEEDED
    assert run.input_count == osv["advisory"] and run.selectors_dict == {"format": ["osv"]}
    assert run.artifact_path == out.resolve() and out.is_file()


def _signer(home: Home) -> Any:
    from services.keys import signer_trusted_key

    return signer_trusted_key(home, "k")


def test_wizard_bad_selector_inline_then_cli_sentence_in_a_modal(filled_home: Home) -> None:
    with pytest.raises(Exception) as caught:
        parse_selectors(["bogus=1"])
    sentence = caught.value.diagnostics()  # type: ignore[attr-defined]

    async def script(pilot: Pilot[None]) -> None:
        screen = await open_mode(pilot, "e")
        await pilot.press("ctrl+n")
        await settle(pilot)
        screen.query_one("#wiz-selectors", Input).value = "bogus=1"
        await settle(pilot, 0.5)
        assert text_of(screen.query_one("#wiz-count", Static)) == f"not yet valid: {sentence}"
        await pilot.press("ctrl+n")
        await pilot.pause()
        modal = pilot.app.screen
        assert isinstance(modal, ErrorModal) and modal.sentence == sentence
        await pilot.press("escape")
        await pilot.pause()
        assert pilot.app.screen is screen and "2/4" in str(screen.query_one("#wiz-step", Label).render())

    drive(filled_home, script)


def test_run_without_a_signing_key_shows_the_cli_sentence(tui_home: Home, stella: Any) -> None:
    import_samples(tui_home)
    cli = stella("export", "run", "--profile", "json:raw")
    assert cli.code == 2

    async def script(pilot: Pilot[None]) -> None:
        await wizard_to_options(pilot, "json:raw", "")
        await pilot.press("ctrl+n")
        await settle(pilot)
        await pilot.press("ctrl+n")
        await settle(pilot)
        modal = pilot.app.screen
        assert isinstance(modal, ErrorModal)
        assert (
            modal.sentence
            == "no signing key for this export (give one with --key NAME, or set signing_key in the profile)"
        )
        assert " ".join(cli.err.split()).endswith(" ".join(modal.sentence.split()))
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(pilot.app.screen, RunScreen)
        assert text_of(pilot.app.screen.query_one("#run-summary", Static)).startswith("the run failed")

    drive(tui_home, script)


def test_escape_cancels_a_run_and_the_run_is_aborted(filled_home: Home, tmp_path: Path) -> None:
    out = tmp_path / "cancelled.tar.zst"

    async def script(pilot: Pilot[None]) -> None:
        screen = await wizard_to_options(pilot, "json:raw", "")
        screen.query_one("#wiz-out", Input).value = str(out)
        await pilot.press("ctrl+n")
        await settle(pilot)
        # Hold the store so the run worker waits before planning: the cancel is then deterministic.
        guard: threading.Lock = pilot.app.store_guard  # type: ignore[attr-defined]
        assert guard.acquire(blocking=False)
        try:
            await pilot.press("ctrl+n")
            await pilot.pause()
            run_screen = pilot.app.screen
            assert isinstance(run_screen, RunScreen)
            await pilot.press("escape")
            await pilot.pause()
        finally:
            guard.release()
        await settle(pilot)
        summary = text_of(run_screen.query_one("#run-summary", Static))
        assert summary.startswith("cancelled: run run-") and "before it started" in summary
        assert rows(run_screen.query_one("#run-checks", DataTable)) == []

    drive(filled_home, script)
    assert not out.exists()
    with Store.open(filled_home, read_only=True) as store:
        engine = RunEngine(store)
        (run,) = engine.list_runs("default")
        assert run.state is RunState.ABORTED
        assert [e.event_type for e in engine.events(run.run_id)] == ["planned", "aborted"]


def test_wizard_offers_a_delta_base_only_for_mirror_delta(filled_home: Home) -> None:
    async def script(pilot: Pilot[None]) -> None:
        screen = await wizard_to_options(pilot, "mirror:delta", "")
        assert screen.query_one("#wiz-base-row").display
        screen.query_one("#wiz-base", Input).value = "run-20250101T000000Z-0123abcd"
        assert screen.request().base == "run-20250101T000000Z-0123abcd"
        await pilot.press("ctrl+b", "ctrl+b")
        await settle(pilot)
        table = screen.query_one("#wiz-profiles", DataTable)
        table.move_cursor(row=table.get_row_index("json:raw"))
        await pilot.press("ctrl+n")
        await settle(pilot)
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert not screen.query_one("#wiz-base-row").display
        assert screen.request().base is None

    drive(filled_home, script)


# -- runs and their events ----------------------------------------------------------------------------


def test_runs_screen_shows_runs_and_the_event_timeline(filled_home: Home, tmp_path: Path, stella: Any) -> None:
    assert stella("export", "run", "--profile", "json:raw", "--key", "k", "--out", tmp_path / "a.tar.zst").code == 0
    with Store.open(filled_home) as store:
        profile = ProfileStore(store).get("default", "json:raw")
        pending = plan_run(
            store, "default", profile, parse_selectors([]), key_name="k", out_path=tmp_path / "b.tar.zst"
        )
        engine = RunEngine(store)
        runs = engine.list_runs("default")
        events = {r.run_id: [e.event_type for e in engine.events(r.run_id)] for r in runs}

    async def script(pilot: Pilot[None]) -> None:
        screen = await open_mode(pilot, "h")
        assert isinstance(screen, RunsScreen)
        listed = rows(screen.query_one("#runs-table", DataTable))
        assert [r[0] for r in listed] == [r.run_id for r in runs]
        assert [r[2] for r in listed] == [str(r.state) for r in runs]
        for i, run in enumerate(runs):
            screen.query_one("#runs-table", DataTable).move_cursor(row=i)
            await settle(pilot)
            timeline = rows(screen.query_one("#runs-events", DataTable))
            assert [e[2] for e in timeline] == events[run.run_id]
        # The succeeded run's timeline ends with its artifact, its file distribution and its sealed evidence.
        assert events[runs[-1].run_id][-3:] == ["succeeded", "distributed", "evidence-sealed"]
        # Cancel the pending run: confirm, and it is aborted as `stella export cancel` does.
        screen.query_one("#runs-table", DataTable).move_cursor(row=[r.run_id for r in runs].index(pending.run_id))
        await settle(pilot)
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(pilot.app.screen, ConfirmModal)
        await pilot.press("y")
        await settle(pilot)
        assert rows(screen.query_one("#runs-events", DataTable))[-1][2:4] == ["aborted", "pending -> aborted"]
        await pilot.press("o")
        await pilot.pause()
        modal = pilot.app.screen
        assert isinstance(modal, TextModal) and f'"runId": "{pending.run_id}"' in modal.text

    drive(filled_home, script)
    with Store.open(filled_home, read_only=True) as store:
        assert RunEngine(store).get_run(pending.run_id).state is RunState.ABORTED


# -- profiles --------------------------------------------------------------------------------------


async def fill_form(pilot: Pilot[None], **values: str) -> None:
    form = pilot.app.screen
    assert isinstance(form, FormModal), getattr(form, "sentence", form)
    for name, value in values.items():
        widget = form.query_one(f"#form-{name}")
        if isinstance(widget, Select):
            widget.value = value
        else:
            assert isinstance(widget, Input)
            widget.value = value
    await pilot.click("#form-submit")
    await settle(pilot)


def test_profiles_create_inspect_and_edit_new_revision_only_on_change(filled_home: Home, stella: Any) -> None:
    async def script(pilot: Pilot[None]) -> None:
        screen = await open_mode(pilot, "p")
        assert isinstance(screen, ProfilesScreen)
        listed = rows(screen.query_one("#profiles-table", DataTable))
        assert ["json:raw", "1", "json:raw", "yes", "advisory,vex,sbom"] in listed
        await pilot.press("n")
        await pilot.pause()
        await fill_form(pilot, profile_id="nightly", base="json:raw", settings="record_types=advisory")
        assert ["nightly", "1", "json:raw", "no", "advisory"] in rows(screen.query_one("#profiles-table", DataTable))
        table = screen.query_one("#profiles-table", DataTable)
        table.move_cursor(row=table.get_row_index("nightly"))
        await settle(pilot)
        detail = text_of(screen.query_one("#profiles-detail", Static))
        assert detail.startswith("nightly@1  revisions: @1 ") and '"recordTypes": [\n    "advisory"\n  ]' in detail
        # Saving the same settings is not a new revision; a changed one is.
        await pilot.press("e")
        await pilot.pause()
        await fill_form(pilot)
        assert rows(table)[table.get_row_index("nightly")][1] == "1"
        await pilot.press("e")
        await pilot.pause()
        await fill_form(pilot, settings="record_types=advisory compression_level=19")
        assert rows(table)[table.get_row_index("nightly")][1] == "2"
        # A builtin cannot be changed: the CLI's sentence.
        table.move_cursor(row=table.get_row_index("json:raw"))
        await settle(pilot)
        await pilot.press("e")
        await pilot.pause()
        await fill_form(pilot)
        modal = pilot.app.screen
        assert isinstance(modal, ErrorModal)
        assert modal.sentence.startswith("builtin profile 'json:raw' cannot be changed (create a custom profile")

    drive(filled_home, script)
    with Store.open(filled_home) as store:
        revisions = ProfileStore(store).revisions("default", "nightly")
    assert [p.config.compression_level for p in revisions] == [9, 19]
    cli = stella("export", "profile", "update", "json:raw", "--set", "compression_level=3")
    assert cli.code == 2 and "builtin profile 'json:raw' cannot be changed" in cli.err


# -- data browser --------------------------------------------------------------------------------


def test_data_browser_lists_pages_shows_documents_and_stats(filled_home: Home) -> None:
    with Store.open(filled_home, read_only=True) as store:
        documents = count_rows(store, ListKind.DOCUMENTS, "default")
        advisories = count_rows(store, ListKind.ADVISORIES, "default")

    async def script(pilot: Pilot[None]) -> None:
        screen = await open_mode(pilot, "b")
        assert isinstance(screen, DataScreen)
        table = screen.query_one("#data-table", DataTable)
        assert table.row_count == documents
        assert text_of(screen.query_one("#data-summary", Static)) == f"  documents 1-{documents} of {documents}"
        screen.query_one("#data-kind", Select).value = "advisories"
        await settle(pilot)
        assert table.row_count == advisories
        first = rows(table)[0][0]
        table.focus()
        await pilot.press("enter")
        await settle(pilot)
        modal = pilot.app.screen
        assert isinstance(modal, TextModal)
        assert modal.title_text == f"{first} in tenant default" and f'"advisory_id": "{first}"' in modal.text
        await pilot.press("escape", "s")
        await settle(pilot)
        stats = pilot.app.screen
        assert isinstance(stats, TextModal)
        assert stats.text.startswith("tenant default\n") and f"\n  {'raw_documents':<24} {documents:>8}\n" in stats.text

    drive(filled_home, script)


# -- keys and trust --------------------------------------------------------------------------------------


def test_keys_generate_export_trust_and_untrust(tui_home: Home, tmp_path: Path) -> None:
    pub = tmp_path / "signer.pub"

    async def script(pilot: Pilot[None]) -> None:
        screen = await open_mode(pilot, "k")
        assert isinstance(screen, KeysScreen)
        await pilot.press("g")
        await pilot.pause()
        await fill_form(pilot, name="signer", algorithm="ed25519")
        (key,) = rows(screen.query_one("#keys-signing", DataTable))
        assert key[:2] == ["signer", "ed25519"]
        await pilot.press("x")
        await pilot.pause()
        await fill_form(pilot, out=str(pub))
        await pilot.press("a")
        await pilot.pause()
        await fill_form(pilot, label="partner", pubkey=str(pub), profiles="json:raw, mirror")
        (trusted,) = rows(screen.query_one("#keys-trusted", DataTable))
        assert trusted[0] == "partner" and trusted[3] == "json:raw, mirror" and trusted[4] == "any"
        # The same key again under another label: the trust store's sentence in a modal.
        await pilot.press("a")
        await pilot.pause()
        await fill_form(pilot, label="again", pubkey=str(pub))
        modal = pilot.app.screen
        assert isinstance(modal, ErrorModal)
        assert modal.sentence.startswith("this key is already trusted as 'partner'")
        await pilot.press("escape")
        await pilot.pause()
        screen.query_one("#keys-trusted", DataTable).focus()
        await pilot.press("delete")
        await pilot.pause()
        assert isinstance(pilot.app.screen, ConfirmModal)
        await pilot.press("y")
        await settle(pilot)
        assert rows(screen.query_one("#keys-trusted", DataTable)) == []

    drive(tui_home, script)
    assert pub.read_bytes() == KeyStore(tui_home).public_pem("signer")
    assert TrustStore(tui_home).list() == []


# -- TUF roles in the keys screen ------------------------------------------------------------------------


def _tuf_rows(screen: KeysScreen) -> dict[str, list[str]]:
    return {r[0]: r for r in rows(screen.query_one("#keys-tuf", DataTable))}


def _bound(pilot: Pilot[None], action: str) -> bool:
    return any(b.binding.action == action for b in pilot.app.active_bindings.values())


def test_keys_screen_offers_tuf_init_then_shows_the_roles_as_tuf_status(tui_home: Home, stella: Any) -> None:
    assert stella("keys", "generate", "k").code == 0

    async def script(pilot: Pilot[None]) -> None:
        screen = await open_mode(pilot, "k")
        assert isinstance(screen, KeysScreen)
        assert text_of(screen.query_one("#keys-tuf-summary", Static)).startswith("no TUF repository")
        assert _bound(pilot, "tuf_init") and not _bound(pilot, "tuf_expiry") and not _bound(pilot, "tuf_rotate")
        await pilot.press("t")
        await settle(pilot)
        await fill_form(pilot, key="k")
        assert not _bound(pilot, "tuf_init") and _bound(pilot, "tuf_expiry") and _bound(pilot, "tuf_rotate")

    drive(tui_home, script)
    status = stella("tuf", "status", "--json").json()
    assert isinstance(status, dict) and status["rootVersion"] == 1
    root = TufHome(tui_home).latest_root()
    now = root.signed.expires.astimezone(UTC).replace(tzinfo=None) - timedelta(days=365)  # when it was made

    async def check(pilot: Pilot[None]) -> None:
        screen = await open_mode(pilot, "k")
        shown = _tuf_rows(screen)
        assert list(shown) == list(TOP_LEVEL_ROLES)
        for role, row in shown.items():
            assert row[1] == ", ".join(status["roles"][role]["keys"]) == "k"
            assert row[2] == " ".join(k[:8] for k in root.signed.roles[role].keyids)
            assert row[3] == str(status["roles"][role]["threshold"])
            assert row[4] == human_duration(timedelta(seconds=status["expiresSeconds"][role]))
        assert shown["root"][5] == f"{status['rootExpires'][:10]} (365 days)"
        assert shown["timestamp"][5] == "per bundle"
        summary = text_of(screen.query_one("#keys-tuf-summary", Static))
        assert summary.startswith(f"root version 1 (kept: 1), expires {status['rootExpires'][:10]} ")
        # the root file a receiver pins, as `stella tuf status` names it (issue 14)
        assert summary.endswith(f"(365 days left); a receiver pins {shown_path(status['rootPath'])}")

    drive_at(tui_home, now, check)


def test_keys_screen_changes_a_tuf_expiry_and_rotates_a_role(tui_home: Home, stella: Any) -> None:
    for name in ("k", "k2"):
        assert stella("keys", "generate", name).code == 0
    assert stella("tuf", "init", "--key", "k").code == 0

    async def script(pilot: Pilot[None]) -> None:
        screen = await open_mode(pilot, "k")
        assert isinstance(screen, KeysScreen)
        table = screen.query_one("#keys-tuf", DataTable)
        table.move_cursor(row=table.get_row_index("timestamp"))
        table.focus()
        await pilot.press("l")
        await settle(pilot)
        form = pilot.app.screen
        assert isinstance(form, FormModal)
        assert form.query_one("#form-role", Select).value == "timestamp"
        assert form.query_one("#form-duration", Input).value == "1d"
        await fill_form(pilot, duration="12h")
        assert _tuf_rows(screen)["timestamp"][4] == "12h"
        # A bad duration: the CLI's sentence in a modal, nothing changed.
        await pilot.press("l")
        await settle(pilot)
        await fill_form(pilot, duration="soon")
        modal = pilot.app.screen
        assert isinstance(modal, ErrorModal) and modal.sentence.startswith("'soon' is not a duration")
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("o")
        await settle(pilot)
        await fill_form(pilot, role="targets", keys="k2")
        assert _tuf_rows(screen)["targets"][1] == "k2"
        assert text_of(screen.query_one("#keys-tuf-summary", Static)).startswith("root version 2 (kept: 1, 2)")

    drive(tui_home, script)
    status = stella("tuf", "status", "--json").json()
    assert isinstance(status, dict)
    assert status["expiresSeconds"]["timestamp"] == 12 * 3600
    assert status["rootVersion"] == 2 and status["roles"]["targets"]["keys"] == ["k2"]
    assert status["roles"]["snapshot"]["keys"] == ["k"]


# -- dashboard, import, verify -------------------------------------------------------------------------


def _warnings(screen: Any) -> list[str]:
    box = screen.query_one("#dash-warnings", Static)
    return text_of(box).splitlines() if box.display else []


def test_dashboard_warns_of_an_expiring_or_expired_tuf_root(tui_home: Home, stella: Any) -> None:
    assert stella("keys", "generate", "k").code == 0
    assert stella("tuf", "init", "--key", "k", "--expires", "root=10d").code == 0
    expires = TufHome(tui_home).latest_root().signed.expires.astimezone(UTC).replace(tzinfo=None)
    seen: dict[str, list[str]] = {}

    for label, now in (
        ("soon", expires - timedelta(days=5, hours=1)),
        ("expired", expires + timedelta(hours=1)),
        ("fresh", expires - timedelta(days=15)),
    ):

        async def script(pilot: Pilot[None], label: str = label) -> None:
            screen = pilot.app.screen
            assert isinstance(screen, DashboardScreen)
            seen[label] = [w for w in _warnings(screen) if "TUF" in w]
            summary = text_of(screen.query_one("#dash-summary", Static)).splitlines()
            assert summary[-1] == (
                f"trust: 0 trusted keys, 0 custom Sigstore roots, TUF root 1 until {expires:%Y-%m-%d}"
            )

        drive_at(tui_home, now, script)
    fix = "rotate it: `stella tuf rotate root --key NAME` (k, o)"
    when = f"{expires:%Y-%m-%d %H:%M}"
    assert seen["soon"] == [f"! TUF role root (version 1) expires {when} (in 5 days); {fix}"]
    assert seen["expired"] == [f"! TUF role root (version 1) expired {when}: mirror bundles fail; {fix}"]
    assert seen["fresh"] == []


def test_dashboard_warns_of_stale_kev_and_epss_by_their_own_thresholds(tui_home: Home, stella: Any) -> None:
    assert stella("import", "--quiet", SAMPLES / "risk").code == 0  # KEV released 2025-08-25, EPSS of 2025-02-20
    kev = datetime(2025, 8, 25, 17, 4, 19)
    seen: dict[datetime, list[str]] = {}
    nows = (kev + timedelta(days=1), kev + KEV_STALE_AFTER + timedelta(hours=1), datetime(2025, 2, 22))
    for now in nows:

        async def script(pilot: Pilot[None], now: datetime = now) -> None:
            seen[now] = [w for w in _warnings(pilot.app.screen) if w.startswith("! stale")]

        drive_at(tui_home, now, script)
    epss = (
        "! stale EPSS in tenant default: newest snapshot 2025-02-20 ({} days old); import a fresh one with "
        "`stella import FILE` or a risk bundle with `stella risk bundle import` (i, or v then ctrl+n)"
    )
    assert seen[nows[0]] == [epss.format(187)]  # the day-old KEV is fresh; EPSS is stale after 3 days
    assert seen[nows[1]] == [epss.format(193), epss.replace("EPSS", "KEV").replace("02-20", "08-25").format(7)]
    assert seen[nows[2]] == []  # two days after the EPSS scores, before the KEV release: nothing stale
    assert EPSS_STALE_AFTER < KEV_STALE_AFTER


def test_dashboard_warns_about_missing_keys_and_an_empty_store(tui_home: Home) -> None:
    # The samples' KEV catalog was released on 2025-08-25: judge at the next day (their EPSS scores stay stale).
    async def script(pilot: Pilot[None]) -> None:
        screen = pilot.app.screen
        assert isinstance(screen, DashboardScreen)
        warnings = text_of(screen.query_one("#dash-warnings", Static)).splitlines()
        assert [w.split(":")[0] for w in warnings] == ["! the store is empty", "! no signing key", "! no trusted key"]
        KeyStore(tui_home.ensure()).generate("k", KeyAlgorithm.ED25519)
        TrustStore(tui_home).add("me", KeyStore(tui_home).public_pem("k"))
        import_samples(tui_home)
        await pilot.press("r")
        await settle(pilot)
        assert [w.split(":")[0] for w in _warnings(screen)] == ["! stale EPSS in tenant default"]

    drive_at(tui_home, datetime(2025, 8, 26), script)


def test_import_screen_opens_a_rejected_files_reason(tui_home: Home, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema_version": "1.6.0", "id": "GO-1"')

    async def script(pilot: Pilot[None]) -> None:
        screen = await open_mode(pilot, "i")
        assert isinstance(screen, ImportScreen)
        screen.query_one("#import-paths", Input).value = f"{bad} {SAMPLES / 'advisories' / 'GO-2020-0001.json'}"
        await pilot.press("enter")
        await settle(pilot)
        table = screen.query_one("#import-results", DataTable)
        assert sorted(r[0] for r in rows(table)) == ["imported", "rejected"]
        rejected = [r[0] for r in rows(table)].index("rejected")
        table.focus()
        table.move_cursor(row=rejected)
        await pilot.press("enter")
        await pilot.pause()
        modal = pilot.app.screen
        assert isinstance(modal, TextModal)
        result = screen.results[rejected]
        assert result.error is not None
        assert modal.title_text == f"rejected: {bad}"
        assert f"reason    {result.error.diagnostics()}" in modal.text
        assert f"exit code {int(result.error.exit_code)}" in modal.text

    drive(tui_home, script)


def test_verify_screen_shows_the_trust_chain(filled_home: Home, tmp_path: Path, stella: Any) -> None:
    bundle = tmp_path / "b.tar.zst"
    assert stella("export", "run", "--profile", "json:raw", "--key", "k", "--out", bundle).code == 0
    trusted = TrustStore(filled_home).add("partner", KeyStore(filled_home).public_pem("k"), tenants=["default"])

    async def script(pilot: Pilot[None]) -> None:
        screen = await open_mode(pilot, "v")
        assert isinstance(screen, VerifyScreen)
        screen.query_one("#verify-bundle", Input).value = str(bundle)
        await pilot.press("enter")
        await settle(pilot)
        chain = text_of(screen.query_one("#verify-chain", Static))
        assert chain.startswith(
            f"trust chain: key id {trusted.keyid[:16]} -> signer partner (ed25519; profiles any, tenants default, "
            f"trusted since {trusted.added}) -> expiry: none"
        )

    drive(filled_home, script)


def test_tui_screenshot_option_saves_the_first_screen(filled_home: Home, tmp_path: Path, stella: Any) -> None:
    shot = tmp_path / "first.svg"
    assert stella("export", "run", "--profile", "json:raw", "--key", "k", "--out", tmp_path / "a.tar.zst").code == 0
    result = stella("tui", "--screenshot", shot)
    assert result.code == 0, result.err
    svg = shot.read_text()
    assert svg.startswith("<svg") and "Recent&#160;runs" in svg
    # The first screen as loaded: the tenant's counts, the run, the summary line.
    assert "json:raw@1" in svg and "succeeded" in svg
    summary = "1 tenant, 1 signing key, 0 trusted keys, 1 recent runs"
    assert summary.replace(" ", "&#160;") in svg


def test_command_palette_lists_every_screen(tui_home: Home) -> None:
    async def script(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, StellaApp)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for title in (
            "Dashboard (d)",
            "Import (i)",
            "Data (b)",
            "Profiles (p)",
            "Export (e)",
            "Runs (h)",
            "Mirror (m)",
        ):
            assert title in titles
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Runs (h)", "enter")
        await settle(pilot)
        assert isinstance(app.screen, RunsScreen)

    drive(tui_home, script)
