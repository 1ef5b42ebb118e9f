"""Verify: check a received bundle offline, showing each check as it completes; then, by the bundle's kind,
ctrl+n opens the receive screen to import or install what verified (app/tui/screens/receive.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Footer, Header, Input, Static

from app.tui.messages import CheckCompleted, VerifyCancelled, VerifyDone, VerifyInspected
from app.tui.progress import MessageObserver
from app.tui.screens.base import StellaScreen, add_check_row, sentence_of, shown_path
from app.tui.screens.modals import TextModal
from app.tui.screens.receive import ReceiveScreen
from core.contract.manifest import VerifiedManifest
from core.errors import Cancelled, StellaError
from core.progress import CancelToken
from core.trust import TrustedKey
from services.inspect import inspect_bundle
from services.receive import Receivable, ReceiveRequest, verify_received
from services.trust import trusted_keys
from verify.bundle import VerifyReport


def claims_of(bundle: Path) -> str:
    """The manifest's claims as one line, said to be unverified (`stella inspect`); empty when the manifest cannot be
    read (the verification that follows reports why)."""
    try:
        found = inspect_bundle(bundle)
    except StellaError:
        return ""
    signer = (found.signer_keyid or "none")[:16]
    return (
        f"manifest claims (NOT verified yet, as `stella inspect` shows): {found.profile}, tenant {found.tenant}, "
        f"run {found.run_id}, created {found.created_at}, {found.files} files, signer key {signer}"
    )


def trust_chain(report: VerifyReport, keys: list[TrustedKey]) -> str:
    """key id -> signer label -> scope (-> TUF roles, for a mirror bundle) -> expiry, for the key that verified the
    manifest signature."""
    signer = report.signer
    if not signer:
        return ""
    key = next((k for k in keys if k.keyid == signer["keyid"]), None)
    where = (
        f"profiles {', '.join(key.profiles) or 'any'}, tenants {', '.join(key.tenants) or 'any'}"
        if key is not None
        else "scope unknown"
    )
    added = f", trusted since {key.added}" if key is not None and key.added else ""
    chain = (
        f"trust chain: key id {signer['keyid'][:16]} -> signer {signer['label']}"
        f" ({signer['algorithm']}; {where}{added})"
    )
    tuf = report.manifest.section("mirror").get("tuf")
    if isinstance(tuf, dict):
        # A mirror bundle's TUF roles: their signatures and expiry are checked by the import (ctrl+n), from the
        # root the mirror already trusts.
        roles = [(role, tuf.get(f"{role}Version")) for role in ("targets", "snapshot", "timestamp")]
        versions = {v for _, v in roles}
        shown = (
            f"targets, snapshot, timestamp v{versions.pop()}"
            if len(versions) == 1
            else ", ".join(f"{role} v{v}" for role, v in roles)
        )
        chain += f" -> TUF root v{tuf.get('rootVersion')}; {shown} (checked on import)"
    return chain + " -> expiry: none (trusted keys carry no expiry; the bundle's time check is in the list)"


class VerifyScreen(StellaScreen):
    """Type a bundle path and, optionally, a public key; trusted keys come from the trust store otherwise."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+r", "verify", "Verify"),
        Binding("escape", "leave_field", "Leave field"),
        Binding("ctrl+n", "receive", "Import / install"),
        Binding("ctrl+x", "cancel_verify", "Cancel"),
    ]

    def __init__(self) -> None:
        super().__init__()
        #: What the last bundle that verified offers (None: nothing, or it did not verify), with its key and manifest.
        self.receivable: tuple[Receivable[Any, Any], Path, Path | None, VerifiedManifest] | None = None
        #: The running verification's cancel token (None while none runs).
        self.token: CancelToken | None = None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """ctrl+n is in the footer only while a verified bundle offers an import or install."""
        if action == "receive":
            return self.receivable is not None
        if action == "cancel_verify":
            return self.token is not None
        return True

    def action_cancel_verify(self) -> None:
        """ctrl+x while a verification runs: stop it at the archive's next read."""
        if self.token is not None:
            self.token.cancel()
            self.query_one("#verify-verdict", Static).update("cancelling ...")

    def action_receive(self) -> None:
        if self.receivable is not None:
            self.app.push_screen(ReceiveScreen(*self.receivable))

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(classes="form"):
            yield Input(placeholder="bundle path (.tar.zst / .tgz)", id="verify-bundle")
            with Horizontal(classes="row"):
                yield Input(placeholder="public key PEM (default: the trust store)", id="verify-key")
                yield Button("Verify", id="verify-run", variant="primary")
        yield Static("", id="verify-verdict", markup=False)
        yield Static("", id="verify-claims", markup=False)
        yield Static("", id="verify-chain", markup=False)
        yield DataTable(id="verify-checks", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "verify"
        self.reset_checks()
        self.query_one("#verify-claims", Static).display = False
        self.query_one("#verify-bundle", Input).focus()

    @on(Button.Pressed, "#verify-run")
    @on(Input.Submitted)
    def action_verify(self) -> None:
        bundle = self.query_one("#verify-bundle", Input).value.strip()
        if not bundle:
            self.query_one("#verify-verdict", Static).update("type the path of a bundle to verify")
            self.query_one("#verify-bundle", Input).focus()
            return
        key = self.query_one("#verify-key", Input).value.strip()
        self.receivable = None
        self.refresh_bindings()
        self.reset_checks()
        self.query_one("#verify-chain", Static).update("")
        self.query_one("#verify-claims", Static).display = False
        self.query_one("#verify-verdict", Static).update(f"verifying {bundle} ...")
        self.query_one("#verify-run", Button).disabled = True
        self.token = CancelToken()
        self.refresh_bindings()
        self.run_verify(Path(bundle).expanduser(), Path(key).expanduser() if key else None, self.token)

    @work(thread=True, exclusive=True, group="verify", exit_on_error=False, description="verify a bundle")
    def run_verify(self, bundle: Path, key: Path | None, token: CancelToken) -> None:
        try:
            key_files = (key,) if key else ()
            keys = trusted_keys(self.home, key_files)
            request = ReceiveRequest(bundle, key_files=key_files)
            self.post_message(VerifyInspected(claims_of(bundle)))
            verified = verify_received(self.home, request, MessageObserver(self, token))
        except Cancelled as exc:
            self.post_message(VerifyCancelled(exc.diagnostics()))
            return
        finally:
            # The app's worker-error handler shows the sentence; the button must come back either way.
            self.app.call_from_thread(self._enable)
        report = verified.report
        self.post_message(VerifyDone(report, verified.receivable, trust_chain(report, keys), key))

    def _enable(self) -> None:
        self.query_one("#verify-run", Button).disabled = False
        self.token = None
        self.refresh_bindings()

    def on_verify_cancelled(self, message: VerifyCancelled) -> None:
        verdict = self.query_one("#verify-verdict", Static)
        verdict.update(f"not verified: cancelled ({message.sentence}); nothing was imported")
        verdict.set_class(False, "ok")
        verdict.set_class(True, "failed")

    def on_verify_inspected(self, message: VerifyInspected) -> None:
        claims = self.query_one("#verify-claims", Static)
        claims.update(message.text)
        claims.display = bool(message.text)

    def reset_checks(self) -> None:
        """An empty checks table, its columns anew: a column keeps the width of the widest cell it ever held (a
        failed attempt's sentence), or of none, so each attempt starts from fresh columns."""
        table = self.query_one("#verify-checks", DataTable)
        table.clear(columns=True)
        table.add_column("result", key="result")
        table.add_column("check", key="check")
        table.add_column("detail", key="detail")
        self.details: list[tuple[str, str]] = []

    def on_check_completed(self, message: CheckCompleted) -> None:
        detail = add_check_row(self.query_one("#verify-checks", DataTable), message.check)
        self.details.append((f"{'ok' if message.check.ok else 'FAIL'}: {message.check.name}", detail))

    @on(DataTable.RowSelected, "#verify-checks")
    def check_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a check: its whole detail (80 columns cut a long one)."""
        if 0 <= event.cursor_row < len(self.details):
            self.app.push_screen(TextModal(*self.details[event.cursor_row]))

    def on_verify_done(self, message: VerifyDone) -> None:
        report = message.report
        verdict = self.query_one("#verify-verdict", Static)
        self.query_one("#verify-chain", Static).update(message.chain)
        if report.ok:
            m = report.manifest
            receiving = message.receivable if message.receivable is not None and message.receivable.offered else None
            offer = f"; ctrl+n: {receiving.title}" if receiving is not None else ""
            verdict.update(
                f"verified {shown_path(report.bundle)}: {m.profile.id} run {m.run_id} for tenant {m.tenant}, "
                f"{m.file_count} files, created {m.created_at}{offer}"
            )
            verdict.set_class(True, "ok")
            verdict.set_class(False, "failed")
            self.query_one("#verify-claims", Static).display = False  # the verdict now says it, verified
            if receiving is not None:
                self.receivable = (receiving, Path(report.bundle), message.key, m)
                self.refresh_bindings()
            return
        verdict.set_class(False, "ok")
        verdict.set_class(True, "failed")
        if report.error is None:
            verdict.update(f"not verified: {report.bundle}")
            return
        title, sentence = sentence_of(report.error)
        verdict.update(f"not verified: {sentence}")
        self.show_error(f"not verified: {title}", sentence)
