"""The TUI's Bootstrap screen: build a real pack from an OCI layout and a chart directory with progress, list it
verified, refuse it under the wrong key and when damaged (the CLI's sentence in a dialog), and push it to Debian's
docker-registry on 127.0.0.1 over plain HTTP, showing how each entry's blobs got there."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Checkbox, DataTable, Input, ProgressBar, Static
from textual.worker import WorkerFailed

from app.tui.navigation import SCREENS_HELP
from app.tui.screens.bootstrap import BootstrapScreen
from app.tui.screens.modals import ErrorModal, TextModal
from core.home import Home
from core.keys import KeyAlgorithm, KeyStore
from tests.interop.test_bootstrap import make_image
from tests.interop.test_oci_distribution import registry_factory  # noqa: F401 - the fixture
from tests.tui.support import drive, rows, settle, text_of

NAMES = ["apps/hello-copy:1", "apps/hello:1", "hello:0.1.0"]  # the pack lists its entries by name
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    """A pack spec naming two OCI layouts of the same one-layer image (so a push mounts the second's blobs from the
    first's repository) and a chart directory."""
    work = tmp_path / "inputs"
    rootfs = work / "rootfs"
    (rootfs / "usr/bin").mkdir(parents=True)
    (rootfs / "usr/bin/hello").write_text("#!/bin/sh\necho hello\n")
    make_image(work / "a-layout", rootfs, "hello:1")
    make_image(work / "b-layout", rootfs, "copy:1")
    chart = work / "hello-chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: hello\nversion: 0.1.0\ndescription: A test chart\n")
    (chart / "values.yaml").write_text("greeting: hello\n")
    (chart / "templates/configmap.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hello\n")
    out = work / "bootstrap.yaml"
    out.write_text(
        "images:\n"
        "  - source: oci:a-layout:hello:1\n    name: apps/hello:1\n"
        "  - source: oci:b-layout:copy:1\n    name: apps/hello-copy:1\n"
        "charts:\n  - source: hello-chart\n"
    )
    return out


def _home_with_key(home: Path, tmp_path: Path, name: str = "k") -> tuple[Home, Path]:
    h = Home(home)
    KeyStore(h.ensure()).generate(name, KeyAlgorithm.ECDSA_P256)
    pub = tmp_path / f"{name}.pub"
    pub.write_bytes(KeyStore(h).public_pem(name))
    return h, pub


async def _open(pilot: Pilot[None]) -> BootstrapScreen:
    await pilot.press(SCREENS_HELP["bootstrap"][0])
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, BootstrapScreen)
    return screen


async def _build(pilot: Pilot[None], screen: BootstrapScreen, spec: Path, out: Path, key: str) -> None:
    """Fill the build row and press ctrl+b (the caller settles, or waits for the error)."""
    screen.query_one("#boot-spec", Input).value = str(spec)
    screen.query_one("#boot-out", Input).value = str(out)
    screen.query_one("#boot-key", Input).value = key
    screen.set_focus(None)
    await pilot.press("ctrl+b")


def _built(screen: BootstrapScreen) -> str:
    return text_of(screen.query_one("#boot-built", Static))


async def _error(pilot: Pilot[None]) -> ErrorModal:
    """The error dialog of a failed worker (the worker may still be running when the caller settled: waiting for
    it raises its error, which the screen shows too), closed with escape."""
    for _ in range(50):
        try:
            await settle(pilot)
        except WorkerFailed:
            continue
        if isinstance(pilot.app.screen, ErrorModal):
            break
    error = pilot.app.screen
    assert isinstance(error, ErrorModal), error
    await pilot.press("escape")
    await settle(pilot)
    return error


def test_bootstrap_screen_builds_lists_and_refuses_a_wrong_key_or_damage(
    home: Path, tmp_path: Path, spec: Path
) -> None:
    h, pub = _home_with_key(home, tmp_path)
    KeyStore(h).generate("other", KeyAlgorithm.ECDSA_P256)
    other = tmp_path / "other.pub"
    other.write_bytes(KeyStore(h).public_pem("other"))
    pack = tmp_path / "pack.tar.zst"

    async def script(pilot: Pilot[None]) -> None:
        screen = await _open(pilot)
        assert pilot.app.focused is screen.query_one("#boot-spec", Input)
        # A key the home does not have: the CLI's sentence and exit code in a dialog, no pack.
        await _build(pilot, screen, spec, pack, "nosuchkey")
        error = await _error(pilot)
        built = _built(screen)
        assert "nosuchkey" in error.sentence and "exit" in error.title_text, (error.title_text, error.sentence)
        assert built == "not built (the dialog says why)" and not pack.exists()
        # The real build: progress to the end, the pack path, and the pack field filled in for ctrl+t.
        await _build(pilot, screen, spec, pack, "k")
        await settle(pilot)
        built = _built(screen)
        assert built.startswith(f"built {pack}") and "signed with key k" in built, built
        assert pack.is_file()
        bar = screen.query_one("#boot-progress", ProgressBar)
        assert bar.total is not None and bar.progress == bar.total > 0
        assert screen.query_one("#boot-pack", Input).value == str(pack)
        # Listed, verified with the signer's public key: one row per image and chart.
        screen.query_one("#boot-pub", Input).value = str(pub)
        await pilot.press("ctrl+t")
        await settle(pilot)
        verdict = text_of(screen.query_one("#boot-verdict", Static))
        assert verdict.startswith(f"verified {pack}: 2 images, 1 charts"), verdict
        table = screen.query_one("#boot-entries", DataTable)
        listed = rows(table)
        assert [r[1] for r in listed] == NAMES
        assert [r[0] for r in listed] == ["image", "image", "chart"]
        assert listed[1][3] == "linux/amd64" and listed[1][4] == "oci:a-layout:hello:1"
        assert listed[0][2].startswith("sha256:") and listed[0][2] == listed[1][2]  # the same image twice
        # Enter on a row shows the whole entry, its full digest included.
        table.focus()
        table.move_cursor(row=2)
        await pilot.press("enter")
        await settle(pilot)
        modal = pilot.app.screen
        assert isinstance(modal, TextModal) and '"chartDigest": "sha256:' in modal.text
        assert screen.entries[2]["digest"] in modal.text
        await pilot.press("escape")
        await settle(pilot)
        # Another key than the signer's: refused, said why, the table emptied.
        screen.query_one("#boot-pub", Input).value = str(other)
        await pilot.press("ctrl+t")
        error = await _error(pilot)
        assert error.title_text == "error (signature, exit 5)", error.title_text
        assert error.sentence, error
        assert text_of(screen.query_one("#boot-verdict", Static)) == "not verified (the dialog says why)"
        assert rows(screen.query_one("#boot-entries", DataTable)) == []
        # A damaged pack (one byte flipped): refused with the CLI's sentence.
        data = bytearray(pack.read_bytes())
        data[len(data) // 2] ^= 1
        damaged = tmp_path / "damaged.tar.zst"
        damaged.write_bytes(bytes(data))
        screen.query_one("#boot-pack", Input).value = str(damaged)
        screen.query_one("#boot-pub", Input).value = str(pub)
        await pilot.press("ctrl+t")
        error = await _error(pilot)
        assert "exit" in error.title_text and error.sentence, (error.title_text, error.sentence)
        assert rows(screen.query_one("#boot-entries", DataTable)) == []
        # Pushing the damaged pack verifies it first: nothing is pushed (no registry is even reached).
        screen.query_one("#boot-registry", Input).value = "127.0.0.1:9/site"
        screen.query_one("#boot-plain", Checkbox).value = True
        screen.set_focus(None)
        await pilot.press("ctrl+o")
        await _error(pilot)
        assert text_of(screen.query_one("#boot-pushed", Static)) == "not pushed (the dialog says why)"

    drive(h, script)


@pytest.mark.interop
def test_bootstrap_screen_pushes_to_a_registry(
    home: Path,
    tmp_path: Path,
    spec: Path,
    registry_factory: Any,  # noqa: F811 - the fixture
) -> None:
    reg = registry_factory()
    h, pub = _home_with_key(home, tmp_path)
    pack = tmp_path / "pack.tar.zst"

    async def script(pilot: Pilot[None]) -> None:
        screen = await _open(pilot)
        await _build(pilot, screen, spec, pack, "k")
        await settle(pilot)
        built = _built(screen)
        assert built.startswith(f"built {pack}"), built
        screen.query_one("#boot-pub", Input).value = str(pub)
        screen.query_one("#boot-registry", Input).value = f"{reg.host}/site"
        # Plain HTTP unticked: the client speaks TLS to a plain registry and fails, as the CLI without --plain-http.
        screen.set_focus(None)
        await pilot.press("ctrl+o")
        await _error(pilot)
        screen.query_one("#boot-plain", Checkbox).value = True
        screen.set_focus(None)
        await pilot.press("ctrl+o")
        await settle(pilot)
        pushed = text_of(screen.query_one("#boot-pushed", Static))
        assert pushed.startswith(f"pushed 3 images and charts to {reg.host}/site: blobs "), pushed
        first = rows(screen.query_one("#boot-pushes", DataTable))
        assert [r[1].split("@")[0] for r in first] == [f"{reg.host}/site/{n}" for n in NAMES]
        # The second repository mounts the image's config and layer from the first; nothing was there before.
        assert [r[2:] for r in first] == [["2", "0", "0"], ["0", "2", "0"], ["2", "0", "0"]]
        # The registry serves each manifest by tag with the digest the row names.
        for row, name in zip(first, NAMES, strict=True):
            repo, _, tag = name.rpartition(":")
            got = reg.get(f"/v2/site/{repo}/manifests/{tag}", accept=MANIFEST)
            assert got.status_code == 200
            assert row[1].endswith("@sha256:" + hashlib.sha256(got.content).hexdigest())
        # Again: every blob is already there.
        await pilot.press("ctrl+o")
        await settle(pilot)
        again = rows(screen.query_one("#boot-pushes", DataTable))
        assert [r[2:] for r in again] == [["0", "0", "2"]] * 3
        assert "0 uploaded, 0 mounted, 6 already there" in text_of(screen.query_one("#boot-pushed", Static))

    drive(h, script)
