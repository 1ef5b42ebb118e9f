"""What a new operator meets around `stella export`: empty selections, the dry run, retry after a deleted bundle,
`export show` by prefix, what a delta ships, `--out` into a missing directory, and the totals progress shows."""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from core.home import resolve_home
from core.progress import Check
from services.devportal import export_devportal
from services.export import ExportRequest, run_export
from services.imports import import_files
from tests.conftest import FIXTURES, ROOT
from tests.integration.test_risk_bundle import EPSS, KEV_JSON, KEV_OLDER

SAMPLES = ROOT / "samples"
GO_ADVISORY = SAMPLES / "advisories" / "GO-2020-0001.json"
PORTAL = FIXTURES / "devportal" / "portal"


@pytest.fixture
def ready(stella: Any, tmp_path: Path) -> dict[str, Any]:
    assert stella("import", "--quiet", *sorted(p for p in SAMPLES.iterdir() if p.is_dir())).code == 0
    assert stella("keys", "generate", "k").code == 0
    pub = tmp_path / "k.pub"
    assert stella("keys", "export-public", "k", "--out", pub).code == 0
    return {"pub": pub}


def _runs(stella: Any) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = stella("export", "runs", "--json").json()["runs"]
    return runs


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- an empty selection ---------------------------------------------------------------------------


def test_a_selection_matching_nothing_is_refused_unless_allowed(
    stella: Any, ready: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "empty.tar.zst"
    refused = stella("export", "run", "--profile", "json:raw", "--key", "k", "-s", "ecosystem=Nope", "--out", out)
    assert refused.code == 3
    assert "matches no document of tenant 'default'" in refused.err and "ecosystem=Nope" in refused.err
    assert "--allow-empty" in refused.err
    assert not out.exists() and _runs(stella) == []  # nothing built, nothing planned

    allowed = stella(
        "export", "run", "--profile", "json:raw", "--key", "k", "-s", "ecosystem=Nope", "--out", out, "--allow-empty"
    )
    assert allowed.code == 0, allowed.err
    assert "warning: the selection matched no document" in allowed.err
    assert out.is_file() and stella("verify", out, "--key", ready["pub"]).code == 0
    assert [r["parameters"]["inputs"]["count"] for r in _runs(stella)] == [0]


def test_the_wizard_will_not_go_past_a_selection_matching_nothing(stella: Any, ready: dict[str, Any]) -> None:
    from app.tui.screens.export import ExportScreen
    from app.tui.screens.modals import ErrorModal
    from tests.tui.support import drive, settle, text_of

    async def script(pilot: Pilot[None]) -> None:
        await pilot.press("e")
        await settle(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, ExportScreen)
        table = screen.query_one("#wiz-profiles", DataTable)
        table.move_cursor(row=table.get_row_index("json:raw"))
        await pilot.press("ctrl+n")
        await settle(pilot)
        screen.query_one("#wiz-selectors", Input).value = "ecosystem=Nope"
        await settle(pilot, 0.6)
        assert text_of(screen.query_one("#wiz-count", Static)) == "0 matching inputs"
        await pilot.press("ctrl+n")
        await settle(pilot)
        modal = pilot.app.screen
        assert isinstance(modal, ErrorModal) and "matches no document of tenant 'default'" in modal.sentence
        await pilot.press("escape")
        await settle(pilot)
        assert pilot.app.screen is screen and isinstance(screen, ExportScreen) and screen.step == 1  # selectors

    drive(resolve_home(None), script)


# -- the dry run ------------------------------------------------------------------------------------


def test_dry_run_prints_what_a_run_would_include_and_writes_nothing(
    stella: Any, ready: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "b.tar.zst"
    args = ("export", "run", "--profile", "json:raw", "--key", "k", "--out", out, "-s", "format=osv")
    plan = stella(*args, "--dry-run", "--first", "2", "--json")
    assert plan.code == 0, plan.err
    body = plan.json()
    assert body["dryRun"] is True and body["profile"] == {
        "id": "json:raw",
        "revision": 1,
        "kind": "json",
        "variant": "raw",
    }
    assert body["out"] == str(out.resolve()) and body["key"] == "k"
    assert body["inputs"]["count"] == sum(body["inputs"]["byKind"].values()) > 2
    assert len(body["first"]) == 2
    assert not out.exists() and _runs(stella) == []

    text = stella(*args, "--dry-run", "--first", "2")
    assert text.code == 0 and text.out.startswith("dry run: nothing was written.")
    assert f"{body['first'][0]['documentId']}" in text.out and f"and {body['inputs']['count'] - 2} more" in text.out
    assert "json:raw, revision 1" in text.out and str(out.resolve()) in text.out

    # The run takes exactly what the plan said, in that order.
    run = stella(*args, "--json").json()
    assert run["parameters"]["inputs"]["count"] == body["inputs"]["count"]
    # A dry run checks what the run would: an existing output is refused the same way.
    assert stella(*args, "--dry-run").code == 2
    empty = stella("export", "run", "--profile", "json:raw", "--key", "k", "-s", "ecosystem=Nope", "--dry-run")
    assert empty.code == 0 and "the selection matches no document" in empty.out


# -- retry ------------------------------------------------------------------------------------------


def test_retry_says_what_is_there_and_rebuilds_a_deleted_bundle_byte_identically(
    stella: Any, ready: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "b.tar.zst"
    run = stella("export", "run", "--profile", "json:raw", "--key", "k", "--out", out, "--json").json()
    original = _sha256(out)

    intact = stella("export", "retry", run["runId"])
    assert intact.code == 2 and "its bundle is intact" in intact.err and "--out" in intact.err

    out.unlink()
    rebuilt = stella("export", "retry", run["runId"], "--json")
    assert rebuilt.code == 0, rebuilt.err
    assert rebuilt.json()["retryOf"] == run["runId"]
    assert _sha256(out) == original  # deterministic: the same bytes where the bundle was

    with out.open("ab") as f:
        f.write(b"x")
    changed = stella("export", "retry", run["runId"])
    assert changed.code == 2 and "its bundle was changed" in changed.err


# -- export show ------------------------------------------------------------------------------------


def test_export_show_takes_a_unique_prefix_and_reads_as_a_summary(
    stella: Any, ready: dict[str, Any], tmp_path: Path
) -> None:
    first = stella("export", "run", "--profile", "json:raw", "--key", "k", "--out", tmp_path / "a.tar.zst", "--json")
    second = stella("export", "run", "--profile", "json:raw", "--key", "k", "--out", tmp_path / "b.tar.zst", "--json")
    a, b = first.json()["runId"], second.json()["runId"]

    ambiguous = stella("export", "show", "run-")
    assert ambiguous.code == 2 and a in ambiguous.err and b in ambiguous.err
    assert stella("export", "show", "run-1999").code == 3

    shown = stella("export", "show", a[:-3])
    assert shown.code == 0, shown.err
    lines = shown.out.splitlines()
    assert lines[0] == f"run       {a}" and "state     succeeded" in lines
    assert "profile   json:raw@1" in lines and "tenant    default" in lines
    assert f"sha256    {first.json()['artifact']['sha256']}" in shown.out
    assert "events" in lines and shown.out.count("->") >= 3
    assert not shown.out.lstrip().startswith("{")

    as_json = stella("export", "show", a[:-3], "--json")
    assert as_json.json()["runId"] == a  # only JSON: it parses whole
    copy = tmp_path / "copy.tar.zst"
    assert stella("export", "download", b[:-3], "--to", copy).code == 0
    assert _sha256(copy) == second.json()["artifact"]["sha256"]


# -- --out into a missing directory ----------------------------------------------------------------


def test_out_into_a_missing_directory_is_refused_unless_mkdir(
    stella: Any, ready: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "no" / "such" / "b.tar.zst"
    refused = stella("export", "run", "--profile", "json:raw", "--key", "k", "--out", out)
    assert refused.code == 8 and str(out.parent) in refused.err and "--mkdir" in refused.err
    assert not (tmp_path / "no").exists() and _runs(stella) == []
    dry = stella("export", "run", "--profile", "json:raw", "--key", "k", "--out", out, "--dry-run")
    assert dry.code == 8 and not (tmp_path / "no").exists()

    made = stella("export", "run", "--profile", "json:raw", "--key", "k", "--out", out, "--mkdir", "--json")
    assert made.code == 0 and out.is_file()
    again = tmp_path / "other" / "b.tar.zst"
    assert stella("export", "retry", made.json()["runId"], "--out", again).code == 8
    assert stella("export", "retry", made.json()["runId"], "--out", again, "-p").code == 0 and again.is_file()


# -- mirror: what a delta ships, tuf refresh's --out -------------------------------------------------


@pytest.fixture
def sender(stella: Any, ready: dict[str, Any]) -> dict[str, Any]:
    assert stella("tuf", "init", "--key", "k").code == 0
    return ready


def test_a_delta_reports_what_it_ships_and_the_state_apart(stella: Any, sender: dict[str, Any], tmp_path: Path) -> None:
    full = stella("export", "run", "--profile", "mirror:full", "--key", "k", "--out", tmp_path / "f.tar.zst", "--json")
    assert full.code == 0, full.err
    state_size = full.json()["parameters"]["inputs"]["count"]
    doc = json.loads(GO_ADVISORY.read_text())
    doc["modified"] = "2026-01-02T03:04:05Z"
    revised = tmp_path / "GO-2020-0001.json"
    revised.write_text(json.dumps(doc))
    assert stella("import", "--quiet", revised).code == 0

    args = ("export", "run", "--profile", "mirror:delta", "--key", "k", "--base", full.json()["runId"])
    plan = stella(*args, "--dry-run", "--json").json()
    assert plan["base"]["runId"] == full.json()["runId"] and plan["inputs"]["count"] == state_size
    delta = stella(*args, "--out", tmp_path / "d.tar.zst")
    assert delta.code == 0, delta.err
    # The new revision replaces the old one: one document added, one removed; the state keeps its size.
    assert f"1 added and 1 removed document (the resulting state: {state_size} documents)" in delta.out
    as_json = stella(*args, "--out", tmp_path / "d2.tar.zst", "--json").json()
    assert as_json["bundleCounts"]["added"] == 1 and as_json["bundleCounts"]["documents"] == state_size

    out = tmp_path / "missing" / "r.tar.zst"
    refused = stella("tuf", "refresh", tmp_path / "d.tar.zst", "--key", "k", "--out", out)
    assert refused.code == 8 and str(out.parent) in refused.err
    assert stella("tuf", "refresh", tmp_path / "d.tar.zst", "--key", "k", "--out", out, "--mkdir").code == 0


# -- progress totals --------------------------------------------------------------------------------


class Recorder:
    """An observer that records every phase and the total it was started with."""

    def __init__(self) -> None:
        self.started: list[tuple[str, int | None]] = []
        self.advanced: dict[str, int] = {}
        self.steps: list[tuple[str, int, str | None]] = []  # every advance: phase, units, detail
        self._phase = ""

    def start(self, phase: str, total: int | None = None) -> None:
        self.started.append((phase, total))
        self._phase = phase

    def advance(self, units: int = 1, *, detail: str | None = None) -> None:
        self.advanced[self._phase] = self.advanced.get(self._phase, 0) + units
        self.steps.append((self._phase, units, detail))

    def finish(self, phase: str) -> None:
        return None

    def check(self, check: Check) -> None:
        return None

    def is_cancelled(self) -> bool:
        return False


def test_progress_reports_real_totals_for_an_import_of_a_zip_and_an_export(
    stella: Any, ready: dict[str, Any], tmp_path: Path
) -> None:
    docs = sorted((SAMPLES / "advisories").glob("*.json"))
    archive = tmp_path / "docs.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for doc in docs:
            zf.write(doc, doc.name)
    home = resolve_home(None)
    seen = Recorder()
    import_files(home, [archive], tenant="other", observer=seen)
    assert seen.started == [("import", len(docs))]
    assert seen.advanced["import"] == len(docs)
    walked = Recorder()
    import_files(home, [SAMPLES / "advisories"], tenant="third", observer=walked)
    files = [p for p in (SAMPLES / "advisories").rglob("*") if p.is_file()]
    assert walked.started == [("import", len(files))] and walked.advanced["import"] == len(files)

    built = Recorder()
    run = run_export(home, ExportRequest("default", "json:raw", key="k", out=tmp_path / "b.tar.zst"), observer=built)
    phases = dict(built.started)
    assert phases["payload"] == run.input_count > 0
    assert built.advanced["payload"] == run.input_count
    assert phases["archive"] == built.advanced["archive"] > 0


def _payload_steps(recorder: Recorder) -> list[str | None]:
    return [detail for phase, units, detail in recorder.steps if phase == "payload" and units == 1]


def test_a_risk_bundle_counts_its_input_documents_one_by_one(
    stella: Any, ready: dict[str, Any], tmp_path: Path
) -> None:
    """Two KEV catalogs (the older passed over) and one EPSS file: the payload bar goes 1/3, 2/3, 3/3, not 0/3."""
    assert stella("import", "--quiet", KEV_OLDER, KEV_JSON, EPSS).code == 0  # the samples hold the same two
    home = resolve_home(None)
    built = Recorder()
    run = run_export(
        home, ExportRequest("default", "risk:bundle", key="k", out=tmp_path / "risk.tar.zst"), observer=built
    )
    assert run.input_count == 3 and dict(built.started)["payload"] == 3
    assert len(_payload_steps(built)) == 3 and built.advanced["payload"] == 3
    # EPSS first (providers in name order), then the older KEV catalog, passed over, before the newest is written.
    assert _payload_steps(built) == ["epss:2025-02-20", "kev:2025.01.24", "kev:2025.08.25"]

    only_kev = Recorder()
    kev_run = run_export(
        home,
        ExportRequest("default", "risk:bundle", key="k", out=tmp_path / "kev.tar.zst", providers=("kev",)),
        observer=only_kev,
    )
    # The EPSS document the selection matched ships nothing, and still counts as done.
    assert kev_run.input_count == 3 and only_kev.advanced["payload"] == 3
    assert _payload_steps(only_kev)[-1] == "epss:2025-02-20"


def test_a_devportal_bundle_counts_its_tree_listings(stella: Any, ready: dict[str, Any], tmp_path: Path) -> None:
    """A portal imported twice: two tree listings among the inputs, each one step of the payload bar."""
    portal = tmp_path / "portal"
    shutil.copytree(PORTAL, portal)
    assert stella("devportal", "import", portal, "--portal", "shop").code == 0
    (portal / "CHANGELOG.md").write_text("# Changelog\n\n- 2.0: a second revision\n", encoding="utf-8")
    assert stella("devportal", "import", portal, "--portal", "shop").code == 0
    built = Recorder()
    done = export_devportal(
        resolve_home(None), "default", portal="shop", out=tmp_path / "p.tgz", key="k", observer=built
    )
    assert done.run.input_count == 2 and dict(built.started)["payload"] == 2
    assert _payload_steps(built) == ["shop", "shop"] and built.advanced["payload"] == 2
