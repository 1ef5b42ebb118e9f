"""The run screen distributes its finished run to an OCI registry (Debian's docker-registry on 127.0.0.1) through
the same service as `stella distribute`; the result is shown, and the registry holds the bundle by digest."""

# ruff: noqa: F811 (the registry fixture of the OCI interop tests is imported and then requested by name)

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, Input, Select, Static

from app.tui.screens.forms import FormModal
from app.tui.screens.modals import ErrorModal
from app.tui.screens.run import RunScreen
from core.home import Home, resolve_home
from core.keys import KeyAlgorithm, KeyStore
from core.runs import RunEngine
from core.store import Store
from services.export import ExportRequest
from tests.interop.test_oci_distribution import Registry, registry_factory  # noqa: F401 (fixture)
from tests.tui.support import drive, import_samples, settle, text_of

pytestmark = pytest.mark.interop


@pytest.fixture
def filled_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    monkeypatch.setenv("STELLA_HOME", str(home))
    tui_home = resolve_home(home)
    import_samples(tui_home)
    KeyStore(tui_home.ensure()).generate("k", KeyAlgorithm.ED25519)
    return tui_home


async def _built(pilot: Pilot[None], out: Path) -> RunScreen:
    screen = RunScreen(ExportRequest(tenant="default", profile="json:raw", key="k", out=out))
    await pilot.app.push_screen(screen)
    await settle(pilot)
    assert text_of(screen.query_one("#run-summary", Static)).startswith("succeeded ")
    return screen


async def _fill(pilot: Pilot[None], values: dict[str, str]) -> None:
    await pilot.press("d")
    await settle(pilot)
    form = pilot.app.screen
    assert isinstance(form, FormModal)
    for name, value in values.items():
        widget = form.query_one(f"#form-{name}")
        if isinstance(widget, Select):
            widget.value = value
        else:
            assert isinstance(widget, Input)
            widget.value = value
    form.query_one("#form-submit", Button).press()
    await settle(pilot)


def test_the_run_screen_pushes_its_bundle_to_a_registry(
    filled_home: Home, tmp_path: Path, registry_factory: Callable[..., Registry]
) -> None:
    reg = registry_factory()
    out = tmp_path / "b.tar.zst"

    async def script(pilot: Pilot[None]) -> None:
        screen = await _built(pilot, out)
        await _fill(pilot, {"to": f"oci://{reg.host}", "plain_http": "yes"})
        assert pilot.app.screen is screen
        shown = text_of(screen.query_one("#run-distribution", Static))
        assert screen.export_run is not None
        run_id = screen.export_run.run_id
        assert shown.startswith(f"pushed {reg.host}/default/json-raw:{run_id}@sha256:"), shown
        layer = "sha256:" + hashlib.sha256(out.read_bytes()).hexdigest()
        assert f"bundle layer {layer}" in shown and "(tag-schema)" in shown
        digest = shown.split("@", 1)[1].split()[0]
        manifest = json.loads(
            reg.get(
                f"/v2/default/json-raw/manifests/{digest}", accept="application/vnd.oci.image.manifest.v1+json"
            ).content
        )
        assert manifest["layers"][0]["digest"] == layer

        # Plain HTTP to another host is refused with the CLI's sentence; the screen stays usable.
        await _fill(pilot, {"to": "oci://registry.example:5000", "plain_http": "yes"})
        modal = pilot.app.screen
        assert isinstance(modal, ErrorModal) and "plain-http" in modal.sentence
        await pilot.press("escape")
        await settle(pilot)
        assert text_of(screen.query_one("#run-distribution", Static)) == "the distribution failed"

    drive(filled_home, script)
    with Store.open(filled_home, read_only=True) as store:
        (run,) = RunEngine(store).list_runs("default")
        oci = [d for d in RunEngine(store).distributions(run.run_id) if d.type == "oci"]
    assert [d.target.split("@")[0] for d in oci] == [f"oci://{reg.host}/default/json-raw"]


def test_escape_cancels_a_distribution(
    filled_home: Home, tmp_path: Path, registry_factory: Callable[..., Registry]
) -> None:
    reg = registry_factory()

    async def script(pilot: Pilot[None]) -> None:
        screen = await _built(pilot, tmp_path / "b.tar.zst")
        # Hold the store so the worker waits before pushing: the cancel then comes first, deterministically.
        guard = pilot.app.store_guard  # type: ignore[attr-defined]
        assert guard.acquire(blocking=False)
        try:
            await pilot.press("d")
            await settle(pilot)
            form = pilot.app.screen
            assert isinstance(form, FormModal)
            form.query_one("#form-to", Input).value = f"oci://{reg.host}"
            form.query_one("#form-plain_http", Select).value = "yes"
            form.query_one("#form-submit", Button).press()
            await pilot.pause()
            assert screen.distributing
            await pilot.press("escape")
            await pilot.pause()
            assert text_of(screen.query_one("#run-distribution", Static)) == "cancelling ..."
        finally:
            guard.release()
        await settle(pilot)
        shown = text_of(screen.query_one("#run-distribution", Static))
        assert shown.startswith("distribution cancelled: push cancelled"), shown
        assert pilot.app.screen is screen and screen.token is None

    drive(filled_home, script)
    with Store.open(filled_home, read_only=True) as store:
        (run,) = RunEngine(store).list_runs("default")
        assert [d for d in RunEngine(store).distributions(run.run_id) if d.type == "oci"] == []
