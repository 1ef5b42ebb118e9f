"""Verify, then receive: Pilot flows at 80x24 that verify a real bundle and import or install what verified.

Bundles are built through the CLI (the integration tests' recipes), the TUI imports them into a real store, mirror
directory or Trivy cache, and each outcome is checked on disk or in the store, against what the CLI reports.
Snapshots of each receive screen state follow, pinned as in test_snapshots.py.
"""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from textual.pilot import Pilot
from textual.widgets import Button, DataTable, Input, Select, Static

from app.tui.app import StellaApp
from app.tui.screens.modals import ErrorModal
from app.tui.screens.receive import ReceiveScreen
from app.tui.screens.verify import VerifyScreen, trust_chain
from core.canonical import canonical_json
from core.contract.payload_types import IN_TOTO as IN_TOTO_PAYLOAD_TYPE
from core.home import Home, resolve_home
from core.profiles import KNOWN_VARIANTS
from core.signing import Signer, dsse_envelope, sigstore_bundle_v03
from core.store import Store
from services.mirror import verify_current
from services.mirror_dir import MirrorDir
from services.receive import RECEIVABLES
from services.trust import keys_from_files
from tests.conftest import CliResult
from tests.integration.bundle_helpers import flip, read_members, write_members
from tests.integration.test_attest_bundle import _statement
from tests.integration.test_devportal import PORTAL
from tests.integration.test_risk_bundle import TODAY, redated
from tests.integration.test_trivy_profiles import build_trivy_bundles
from tests.tui.support import SAMPLES, drive, rows, settle, text_of
from tests.tui.test_snapshots import NOW, Snap, go, snap_home  # noqa: F401 - snap_home is a fixture used below
from verify.bundle import verify_bundle

Stella = Callable[..., CliResult]


@pytest.fixture
def receiver(home: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    """The home the app opens (the CLI's `stella` fixture writes the same one)."""
    monkeypatch.setenv("STELLA_HOME", str(home))
    return resolve_home(home)


def signer_pub(stella: Stella, tmp_path: Path, name: str = "signer") -> Path:
    """A fresh signing key ``name`` and its public half, as the sender would hand it over."""
    assert stella("keys", "generate", name, "--algorithm", "ed25519").code == 0  # seeded in the snapshot tests
    pub = tmp_path / f"{name}.pub"
    assert stella("keys", "export-public", name, "--out", pub).code == 0
    return pub


def mirror_bundle(stella: Stella, tmp_path: Path) -> tuple[Path, Path, Path]:
    """A mirror:full bundle of the samples (test_mirror's sender), its signer's key and the TUF root to pin."""
    assert stella("import", "--quiet", *sorted(p for p in SAMPLES.iterdir() if p.is_dir())).code == 0
    pub = signer_pub(stella, tmp_path)
    assert stella("tuf", "init", "--key", "signer").code == 0
    out = tmp_path / "mirror.tar.zst"
    res = stella("export", "run", "--profile", "mirror:full", "--key", "signer", "--out", out)
    assert res.code == 0, res.err
    return out, pub, resolve_home(None).root / "tuf" / "root" / "1.root.json"


def risk_bundle(stella: Stella, tmp_path: Path, released: datetime = TODAY) -> tuple[Path, Path]:
    """A risk bundle of the real KEV catalog and EPSS snapshot, re-dated to ``released`` so that it is fresh
    (test_risk_bundle's recipe), and its key."""
    kev, epss = redated(tmp_path, released)
    gz = tmp_path / f"{epss.name}.gz"
    gz.write_bytes(gzip.compress(epss.read_bytes(), mtime=0))
    assert stella("import", "--quiet", kev, gz).code == 0
    pub = signer_pub(stella, tmp_path)
    out = tmp_path / "risk.tar.zst"
    res = stella(
        "export", "run", "--profile", "risk:bundle", "--provider", "kev", "--provider", "epss", "--key", "signer",
        "--out", out,
    )  # fmt: skip
    assert res.code == 0, res.err
    return out, pub


def attestation_bundle(stella: Stella, tmp_path: Path) -> tuple[Path, Path]:
    """An attestation bundle of two key-signed attestations (test_attest_bundle's own DSSE and Sigstore bundle);
    the attester and the bundle signer are in the trust store."""
    pub = signer_pub(stella, tmp_path)
    attester = Signer(ec.generate_private_key(ec.SECP256R1()))
    attester_pub = tmp_path / "attester.pub"
    attester_pub.write_bytes(attester.public_pem)
    assert stella("trust", "add", "attester", attester_pub).code == 0
    assert stella("trust", "add", "sender", pub).code == 0
    own_dsse = tmp_path / "release.dsse.json"
    own_dsse.write_bytes(canonical_json(dsse_envelope(attester, IN_TOTO_PAYLOAD_TYPE, _statement("app.tar", b"app"))))
    envelope = dsse_envelope(attester, IN_TOTO_PAYLOAD_TYPE, _statement("lib.tar", b"lib"))
    own_bundle = tmp_path / "lib.sigstore.json"
    own_bundle.write_bytes(canonical_json(sigstore_bundle_v03(envelope, attester)))
    assert stella("import", "--quiet", own_dsse, own_bundle).code == 0
    out = tmp_path / "attestations.tar.zst"
    res = stella("export", "run", "--profile", "attestation:bundle", "--key", "signer", "--out", out)
    assert res.code == 0, res.err
    return out, pub


def devportal_bundle(stella: Stella, tmp_path: Path) -> tuple[Path, Path]:
    """The fixture portal as a devportal:offline bundle (test_devportal's recipe), and its key."""
    pub = signer_pub(stella, tmp_path)
    assert stella("devportal", "import", PORTAL, "--portal", "petstore").code == 0
    out = tmp_path / "portal.tgz"
    res = stella("devportal", "export", "--portal", "petstore", "--key", "signer", "--out", out)
    assert res.code == 0, res.err
    return out, pub


def store_counts(home: Home) -> dict[str, int]:
    with Store.open(home, read_only=True) as store:
        return store.stats().get("default", {})


async def verify_then_receive(pilot: Pilot[None], bundle: Path | str, key: Path | str | None) -> ReceiveScreen:
    """Verify ``bundle`` on the Verify screen, then open the receive screen with ctrl+n."""
    await pilot.press("v")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, VerifyScreen)
    screen.query_one("#verify-key", Input).value = str(key or "")
    screen.query_one("#verify-bundle", Input).value = str(bundle)
    screen.query_one("#verify-bundle", Input).focus()
    await pilot.press("enter")
    await settle(pilot)
    assert "; ctrl+n: " in text_of(screen.query_one("#verify-verdict", Static))
    assert [b.binding.key for b in pilot.app.active_bindings.values() if b.binding.action == "receive"] == ["ctrl+n"]
    await pilot.press("ctrl+n")
    await settle(pilot)
    receive = pilot.app.screen
    assert isinstance(receive, ReceiveScreen)
    return receive


async def run(pilot: Pilot[None], screen: ReceiveScreen, **fields: str) -> tuple[list[list[str]], list[list[str]]]:
    """Fill the form's fields (by id without ``receive-``), press ctrl+r; the checks and the results."""
    for name, value in fields.items():
        screen.query_one(f"#receive-{name}", Input).value = value
    screen.set_focus(None)
    await pilot.press("ctrl+r")
    await settle(pilot)
    return rows(screen.query_one("#receive-checks", DataTable)), rows(screen.query_one("#receive-results", DataTable))


# -- flows ------------------------------------------------------------------------------------------


def test_mirror_bundle_verified_then_imported_into_a_mirror_dir(receiver: Home, stella: Stella, tmp_path: Path) -> None:
    bundle, pub, root = mirror_bundle(stella, tmp_path)
    mirror = tmp_path / "mirror"

    async def script(pilot: Pilot[None]) -> None:
        screen = await verify_then_receive(pilot, bundle, pub)
        checks, results = await run(pilot, screen, into=str(mirror), **{"trust-root": str(root)})
        assert checks and all(c[0] == "ok" for c in checks)
        assert {"signature", "tuf"} <= {c[1] for c in checks}
        summary = text_of(screen.query_one("#receive-summary", Static))
        assert summary.startswith(f"imported into {mirror}: state ")
        state = verify_current(mirror).to_dict()
        assert f"state {state['stateDigest'][:12]} (sequence 0)" in summary
        assert dict((r[0], r[1]) for r in results)["state"] == state["stateDigest"][:16]
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(pilot.app.screen, VerifyScreen)

    drive(receiver, script)
    current = MirrorDir(mirror).current()
    assert current is not None and (current / "tree").is_dir()
    status = stella("mirror", "status", mirror, "--json").json()
    assert status["current"]["sequence"] == 0 and status["lastImport"]["bundle"]["name"] == bundle.name  # type: ignore[index]


def test_a_mirror_bundles_trust_chain_names_its_tuf_roles(receiver: Home, stella: Stella, tmp_path: Path) -> None:
    bundle, pub, _root = mirror_bundle(stella, tmp_path)
    keys = keys_from_files([pub])
    report = verify_bundle(bundle, keys)
    tuf = report.manifest.section("mirror")["tuf"]
    chain = trust_chain(report, keys)
    assert f"-> TUF root v{tuf['rootVersion']}; targets, snapshot, timestamp v{tuf['targetsVersion']} (" in chain
    assert chain.index("-> signer ") < chain.index("-> TUF root") < chain.index("-> expiry")


def test_a_cancelled_mirror_import_changes_nothing(receiver: Home, stella: Stella, tmp_path: Path) -> None:
    bundle, pub, root = mirror_bundle(stella, tmp_path)
    mirror = tmp_path / "mirror"

    async def script(pilot: Pilot[None]) -> None:
        screen = await verify_then_receive(pilot, bundle, pub)
        assert not screen.check_action("cancel_receive", ())  # no Cancel in the footer while nothing runs
        screen.query_one("#receive-into", Input).value = str(mirror)
        screen.query_one("#receive-trust-root", Input).value = str(root)
        # Start and cancel in one step of the event loop, as ctrl+x would right after ctrl+r.
        screen.action_receive()
        assert screen.check_action("cancel_receive", ())
        screen.action_cancel_receive()
        await settle(pilot)
        summary = text_of(screen.query_one("#receive-summary", Static))
        assert summary.startswith("nothing imported: cancelled (") and summary.endswith("nothing was changed")
        assert not isinstance(pilot.app.screen, ErrorModal)
        assert screen.token is None and not screen.check_action("cancel_receive", ())

    drive(receiver, script)
    assert MirrorDir(mirror).current() is None
    assert not (mirror / "quarantine").exists()


def test_a_first_mirror_import_without_a_tuf_root_is_refused_and_writes_nothing(
    receiver: Home, stella: Stella, tmp_path: Path
) -> None:
    bundle, pub, _root = mirror_bundle(stella, tmp_path)
    mirror = tmp_path / "mirror"
    cli = stella("mirror", "import", bundle, "--into", tmp_path / "cli-mirror", "--key", pub)
    assert cli.code == 2

    async def script(pilot: Pilot[None]) -> None:
        screen = await verify_then_receive(pilot, bundle, pub)
        await run(pilot, screen, into=str(mirror))
        modal = pilot.app.screen
        assert isinstance(modal, ErrorModal) and modal.title_text == "error (usage, exit 2)"
        assert " ".join(cli.err.split()).endswith(" ".join(modal.sentence.split()))
        assert "the first import into a mirror needs the TUF root to trust" in modal.sentence
        await pilot.press("escape")
        await settle(pilot)
        assert pilot.app.screen is screen and not screen.query_one("#receive-run", Button).disabled
        assert rows(screen.query_one("#receive-results", DataTable)) == []

    drive(receiver, script)
    assert MirrorDir(mirror).current() is None


def test_risk_bundle_imported_into_the_store(receiver: Home, stella: Stella, tmp_path: Path) -> None:
    bundle, pub = risk_bundle(stella, tmp_path)
    receiving = tmp_path / "receiving"  # a fresh home: the counts start at nothing
    receiving_home = resolve_home(receiving)

    async def script(pilot: Pilot[None]) -> None:
        screen = await verify_then_receive(pilot, bundle, pub)
        assert screen.query_one("#receive-policy", Select).value == "block"
        checks, results = await run(pilot, screen)
        assert all(c[0] == "ok" for c in checks) and "freshness" in {c[1] for c in checks}
        assert sorted(r[0] for r in results) == ["epss", "kev"] and {r[1] for r in results} == {"imported"}
        summary = text_of(screen.query_one("#receive-summary", Static))
        assert summary.startswith("imported into tenant default: 2 new datasets, 0 already stored; ")
        assert f"epss data of {TODAY:%Y-%m-%d}: fresh until " in summary  # the data's own date

    drive(receiving_home, script)
    counts = store_counts(receiving_home)
    assert counts["kev_entries"] > 0 and counts["epss_scores"] > 0
    with Store.open(resolve_home(None), read_only=True) as sender:
        sent = sender.stats()["default"]
    assert (counts["kev_entries"], counts["epss_scores"]) == (sent["kev_entries"], sent["epss_scores"])


def test_attestation_bundle_imported_with_an_identity_policy(receiver: Home, stella: Stella, tmp_path: Path) -> None:
    bundle, _pub = attestation_bundle(stella, tmp_path)
    receiving = resolve_home(tmp_path / "receiving")
    for label, pub in (("attester", tmp_path / "attester.pub"), ("sender", tmp_path / "signer.pub")):
        assert stella("--home", receiving.root, "trust", "add", label, pub).code == 0

    async def script(pilot: Pilot[None]) -> None:
        screen = await verify_then_receive(pilot, bundle, None)  # the trust store's keys
        identity = {"cert-identity": "release@example.com", "oidc-issuer": "https://issuer.example.com"}
        checks, results = await run(pilot, screen, **identity)
        assert all(c[0] == "ok" for c in checks) and checks[-1][1] == "attestations"
        assert len(results) == 2
        assert {(r[0], r[1], r[4]) for r in results} == {("verified", "key", "imported")}
        assert text_of(screen.query_one("#receive-summary", Static)) == (
            "imported 2 new and 0 already stored attestation documents into tenant default; "
            "0 attestations did not verify and were left out"
        )

    drive(receiving, script)
    with Store.open(receiving, read_only=True) as store:
        stored = store.conn.execute("SELECT verification FROM attestations WHERE tenant = 'default'").fetchall()
    assert [v for (v,) in stored] == ["verified", "verified"]


def test_attestation_identity_without_issuer_is_the_cli_refusal(receiver: Home, stella: Stella, tmp_path: Path) -> None:
    bundle, pub = attestation_bundle(stella, tmp_path)
    cli = stella("attest", "bundle", "import", bundle, "--key", pub, "--certificate-identity", "a@example.com")
    assert cli.code == 2

    async def script(pilot: Pilot[None]) -> None:
        screen = await verify_then_receive(pilot, bundle, pub)
        await run(pilot, screen, **{"cert-identity": "a@example.com"})
        modal = pilot.app.screen
        assert isinstance(modal, ErrorModal)
        assert " ".join(cli.err.split()).endswith(" ".join(modal.sentence.split()))
        assert text_of(screen.query_one("#receive-summary", Static)) == f"nothing imported: {modal.sentence}"

    drive(receiver, script)


def test_trivy_bundle_installed_into_a_cache_dir(receiver: Home, stella: Stella, tmp_path: Path) -> None:
    bundles = build_trivy_bundles(stella, tmp_path)
    cache = tmp_path / "trivy-cache"

    async def script(pilot: Pilot[None]) -> None:
        screen = await verify_then_receive(pilot, bundles["db"], bundles["pub"])
        checks, results = await run(pilot, screen, cache=str(cache))
        assert checks and all(c[0] == "ok" for c in checks)
        assert sorted(r[0] for r in results) == [str(cache / "db" / "metadata.json"), str(cache / "db" / "trivy.db")]
        summary = text_of(screen.query_one("#receive-summary", Static))
        assert summary.startswith(f"installed trivy:db (schema 2) into {cache}; scan with: trivy <target> --cache-dir")

    drive(receiver, script)
    assert sorted(p.name for p in (cache / "db").iterdir()) == ["metadata.json", "trivy.db"]
    assert sorted(p.name for p in cache.iterdir()) == ["db"]  # no staging directory left behind


def test_devportal_bundle_verified_with_its_own_checks(receiver: Home, stella: Stella, tmp_path: Path) -> None:
    bundle, pub = devportal_bundle(stella, tmp_path)
    cli = stella("devportal", "verify", bundle, "--key", pub, "--json").json()

    async def script(pilot: Pilot[None]) -> None:
        screen = await verify_then_receive(pilot, bundle, pub)
        assert screen.query_one("#receive-run", Button).has_focus
        checks, results = await run(pilot, screen)
        assert [c[1] for c in checks] == [c["check"] for c in cli["checks"]]  # type: ignore[index]
        assert all(c[0] == "ok" for c in checks)
        command = f"stella devportal serve {bundle} --key {pub}"
        assert ["serve with", command] in results and ["portal", "petstore"] in results
        assert text_of(screen.query_one("#receive-summary", Static)).endswith(command)

    drive(receiver, script)


def test_a_tampered_bundle_shows_the_error_and_offers_no_import(receiver: Home, stella: Stella, tmp_path: Path) -> None:
    bundle, pub = risk_bundle(stella, tmp_path)
    members = [(i, flip(d) if i.name.startswith("risk/") and i.isfile() else d) for i, d in read_members(bundle)]
    tampered = write_members(tmp_path / "tampered.tar.zst", members)
    cli = stella("risk", "bundle", "import", tampered, "--key", pub)
    assert cli.code == 4
    receiving = resolve_home(tmp_path / "receiving")

    async def script(pilot: Pilot[None]) -> None:
        await pilot.press("v")
        await settle(pilot)
        screen = pilot.app.screen
        screen.query_one("#verify-key", Input).value = str(pub)
        screen.query_one("#verify-bundle", Input).value = str(tampered)
        screen.query_one("#verify-bundle", Input).focus()
        await pilot.press("enter")
        await settle(pilot)
        modal = pilot.app.screen
        assert isinstance(modal, ErrorModal) and modal.title_text.startswith("not verified: error (integrity, exit 4)")
        await pilot.press("escape")
        await settle(pilot)
        assert pilot.app.screen is screen and "FAIL" in {
            r[0] for r in rows(screen.query_one("#verify-checks", DataTable))
        }
        assert not [b for b in pilot.app.active_bindings.values() if b.binding.action == "receive"]
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert pilot.app.screen is screen  # nothing to import

    drive(receiving, script)
    counts = store_counts(receiving)
    assert counts.get("kev_entries", 0) == counts.get("epss_scores", 0) == 0


def test_a_json_bundle_is_verified_then_its_raw_documents_imported(
    receiver: Home, stella: Stella, tmp_path: Path
) -> None:
    """Issue 14's verified way to receive json:raw: ctrl+n after Verify imports what `stella import BUNDLE` imports."""
    sender = tmp_path / "sender"
    assert stella("--home", sender, "import", "--quiet", SAMPLES / "advisories").code == 0
    assert stella("--home", sender, "keys", "generate", "signer", "--algorithm", "ed25519").code == 0
    pub = tmp_path / "signer.pub"
    assert stella("--home", sender, "keys", "export-public", "signer", "--out", pub).code == 0
    bundle = tmp_path / "raw.tar.zst"
    res = stella("--home", sender, "export", "run", "--profile", "json:raw", "--key", "signer", "--out", bundle)
    assert res.code == 0, res.err

    imported: list[list[str]] = []

    async def script(pilot: Pilot[None]) -> None:
        screen = await receive_screen(pilot, str(bundle), str(pub))
        checks, results = await run(pilot, screen)
        imported.extend(results)
        assert checks and all(c[0] == "ok" for c in checks)
        assert {c[1] for c in checks} >= {"signature", "json files", "json documents"}
        assert results and {r[0] for r in results} == {"imported"}
        summary = text_of(screen.query_one("#receive-summary", Static))
        assert summary.startswith(f"imported {len(results)} new and 0 already stored raw documents of ")

    drive(receiver, script)
    listed = stella("data", "list", "documents", "--json").json()
    assert isinstance(listed, dict) and listed["total"] == len(imported) > 1
    assert all(d["source_path"].startswith(f"{bundle}!data/raw/") for d in listed["items"])


# -- snapshots ---------------------------------------------------------------------------------------


@pytest.fixture
def snap_receiver(snap_home: Home, stella: Stella, monkeypatch: pytest.MonkeyPatch) -> Home:  # noqa: F811
    """test_snapshots' pinned home (the `stella` fixture writes the same directory), with the clocks the
    receiving side reads pinned too: risk freshness is judged at the bundles' creation time."""
    monkeypatch.setattr("verify.risk.utcnow", lambda: NOW)
    monkeypatch.setattr("adapters.devportal.utcnow", lambda: NOW)
    return snap_home


async def receive_screen(pilot: Pilot[None], bundle: str, key: str = "signer.pub") -> ReceiveScreen:
    await go(pilot, "v")
    verify = pilot.app.screen
    verify.query_one("#verify-key", Input).value = key
    verify.query_one("#verify-bundle", Input).value = bundle
    verify.query_one("#verify-bundle", Input).focus()
    await go(pilot, "enter")
    await go(pilot, "ctrl+n")
    screen = pilot.app.screen
    assert isinstance(screen, ReceiveScreen)
    return screen


async def receive(pilot: Pilot[None], bundle: str, key: str = "signer.pub", **fields: str) -> None:
    screen = await receive_screen(pilot, bundle, key)
    for name, value in fields.items():
        screen.query_one(f"#receive-{name}", Input).value = value
    screen.set_focus(None)
    await go(pilot, "ctrl+r")
    # The screen keeps the last check in view once the tables are laid out; on a loaded machine that layout can
    # come after the screenshot: scroll there again now that go() has waited for it.
    screen.query_one("#receive-checks", DataTable).scroll_end(animate=False, immediate=True)
    await go(pilot)


def test_snapshot_verify_offers_the_mirror_import(snap_compare: Snap, snap_receiver: Home, stella: Stella) -> None:
    mirror_bundle(stella, Path("."))

    async def run_before(pilot: Pilot[None]) -> None:
        await go(pilot, "v")
        pilot.app.screen.query_one("#verify-key", Input).value = "signer.pub"
        pilot.app.screen.query_one("#verify-bundle", Input).value = "mirror.tar.zst"
        pilot.app.screen.query_one("#verify-bundle", Input).focus()
        await go(pilot, "enter")
        # As in receive(): the last check is kept in view once the table is laid out, which a loaded machine can
        # do after the screenshot; scroll there again now.
        pilot.app.screen.query_one("#verify-checks", DataTable).scroll_end(animate=False, immediate=True)
        await go(pilot)

    assert snap_compare(StellaApp(snap_receiver), run_before=run_before)


def test_snapshot_mirror_form(snap_compare: Snap, snap_receiver: Home, stella: Stella) -> None:
    mirror_bundle(stella, Path("."))

    async def run_before(pilot: Pilot[None]) -> None:
        screen = await receive_screen(pilot, "mirror.tar.zst")
        screen.query_one("#receive-into", Input).value = "mirror"
        await go(pilot)

    assert snap_compare(StellaApp(snap_receiver), run_before=run_before)


def test_snapshot_mirror_refused_without_a_tuf_root(
    snap_compare: Snap, snap_receiver: Home, stella: Stella, monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror_bundle(stella, Path("."))
    # The space check prints the file system's free bytes: pin them.
    monkeypatch.setattr(shutil, "disk_usage", lambda _path: shutil._ntuple_diskusage(1 << 40, 1 << 39, 1 << 39))

    async def run_before(pilot: Pilot[None]) -> None:
        await receive(pilot, "mirror.tar.zst", into="mirror")

    assert snap_compare(StellaApp(snap_receiver), run_before=run_before)
    assert MirrorDir(Path("mirror")).current() is None


def other_home(stella: Stella, *trusted: str) -> Home:
    """The receiving side: a second home, ``receiver``, trusting the public keys ``trusted`` (PEM paths)."""
    for pub in trusted:
        assert stella("--home", "receiver", "trust", "add", Path(pub).stem, pub).code == 0
    return Home(Path("receiver")).ensure()


def test_snapshot_risk_imported(snap_compare: Snap, snap_receiver: Home, stella: Stella) -> None:
    risk_bundle(stella, Path("."), NOW.replace(hour=0, minute=0, second=0))
    receiving = other_home(stella)
    assert snap_compare(StellaApp(receiving), run_before=lambda pilot: receive(pilot, "risk.tar.zst"))


def test_snapshot_attestations_imported(snap_compare: Snap, snap_receiver: Home, stella: Stella) -> None:
    attestation_bundle(stella, Path("."))

    async def run_before(pilot: Pilot[None]) -> None:
        identity = {"cert-identity": "release@example.com", "oidc-issuer": "https://issuer.example.com"}
        await receive(pilot, "attestations.tar.zst", **identity)

    assert snap_compare(StellaApp(other_home(stella, "attester.pub", "signer.pub")), run_before=run_before)


def test_snapshot_trivy_installed(snap_compare: Snap, snap_receiver: Home, stella: Stella) -> None:
    build_trivy_bundles(stella, Path("."))

    async def run_before(pilot: Pilot[None]) -> None:
        await receive(pilot, "db.tar.zst", "trivy-signer.pub", cache="trivy-cache")

    assert snap_compare(StellaApp(snap_receiver), run_before=run_before)


def test_snapshot_devportal_verified(snap_compare: Snap, snap_receiver: Home, stella: Stella) -> None:
    devportal_bundle(stella, Path("."))
    assert snap_compare(StellaApp(snap_receiver), run_before=lambda pilot: receive(pilot, "portal.tgz"))


def test_every_known_profile_kind_is_answered() -> None:
    """A new profile kind must say what its bundles offer on the receive screen (even if nothing)."""
    assert {p for r in RECEIVABLES for p in r.profiles} == {f"{k}:{v}" for k, v in KNOWN_VARIANTS}
    assert all(r.columns for r in RECEIVABLES if r.offered)
