"""Receive: after a bundle verified, import or install what verified, according to the bundle's kind.

Each kind makes the calls of its CLI command, in the same order, so a refusal shows the CLI's sentence:
mirror bundles `stella mirror import`, Trivy DB bundles `stella trivy install`, risk bundles
`stella risk bundle import`, attestation bundles `stella attest bundle import`, developer portals
`stella devportal verify` (then the `stella devportal serve` line to run). Each check appears as it completes.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, DataTable, Footer, Header, Input, Select, Static

from app.commands.attest import bundle_verified, identity_policy, import_verified_attestations, sigstore_roots
from app.commands.risk import freshness_policy, import_verified_risk
from app.commands.trivy import SCAN_FLAGS, install_bundle
from app.tui.screens.base import StellaScreen, add_check_row, sentence_of, shown_path
from core.errors import Cancelled, StellaError, UsageError
from core.progress import CancelToken, Check, CheckObserver
from core.trust import TrustedKey, TrustStore
from services.mirror import import_into_mirror
from services.trust import keys_from_files
from verify.attest import verify_attestation_bundle
from verify.attest_sigstore import AttestationResult, Trust
from verify.devportal import verify_portal
from verify.risk import FreshnessPolicy, verify_risk_bundle


@dataclass(frozen=True)
class Receiving:
    """What can be done with a verified bundle of one kind, and the CLI command that does the same."""

    kind: str
    title: str
    action: str  # the button and the footer: Import, Install, Verify
    doing: str  # the line while it runs
    command: str


_MIRROR = Receiving("mirror", "import into a mirror directory", "Import", "importing", "stella mirror import")
_TRIVY = Receiving("trivy", "install into a Trivy cache directory", "Install", "installing", "stella trivy install")

#: Every known profile ``(kind, variant)`` -> what the receive screen offers for its bundles; None: nothing
#: (json and evidence bundles have no import path, a risk simulation is a report).
OFFERS: dict[tuple[str, str], Receiving | None] = {
    ("json", "raw"): None,
    ("json", "policy"): None,
    ("mirror", "full"): _MIRROR,
    ("mirror", "delta"): _MIRROR,
    ("trivy", "db"): _TRIVY,
    ("trivy", "java-db"): _TRIVY,
    ("risk", "bundle"): Receiving(
        "risk", "import its KEV/EPSS datasets into the store", "Import", "importing", "stella risk bundle import"
    ),
    ("risk", "simulation"): None,
    ("attestation", "bundle"): Receiving(
        "attestation", "import the attestations that verify", "Import", "importing", "stella attest bundle import"
    ),
    ("devportal", "offline"): Receiving(
        "devportal", "verify the portal, then serve it", "Verify", "verifying", "stella devportal verify"
    ),
}


def receiving_for(manifest: dict[str, Any]) -> Receiving | None:
    """What the receive screen offers for a verified bundle's manifest, or None."""
    profile = manifest.get("profile") or {}
    return OFFERS.get((str(profile.get("kind")), str(profile.get("variant"))))


@dataclass(frozen=True)
class ReceiveRequest:
    """What the form holds: the arguments of the kind's CLI command (empty text is an option not given)."""

    bundle: Path
    key: Path | None
    into: Path | None = None
    trust_root: Path | None = None
    identity: Path | None = None
    passphrase_file: Path | None = None
    receipt_key: str | None = None
    cache_dir: Path | None = None
    policy: str = str(FreshnessPolicy.BLOCK)
    grace: str | None = None
    certificate_identity: str | None = None
    oidc_issuer: str | None = None


@dataclass
class Received:
    """The outcome the screen draws: a summary line, result rows, and whether it all went through."""

    summary: str
    rows: Sequence[tuple[str, ...]] = ()
    ok: bool = True


class ReceiveCheck(Message):
    """One check completed (posted from the worker thread)."""

    def __init__(self, check: Check) -> None:
        super().__init__()
        self.check = check


class ReceiveDone(Message):
    """The worker ended: with what it did, or (``received`` None) with a failure whose sentence is in a dialog."""

    def __init__(self, received: Received | None, failure: str = "") -> None:
        super().__init__()
        self.received = received
        self.failure = failure


#: The result table's columns, per kind.
COLUMNS: dict[str, tuple[str, ...]] = {
    "mirror": ("imported", "value"),
    "trivy": ("installed file", "bytes", "sha256"),
    "risk": ("provider", "outcome", "document", "sha256"),
    "attestation": ("result", "method", "attestation", "signer", "import"),
    "devportal": ("portal", "value"),
}


def _path(text: str) -> Path | None:
    text = text.strip()
    return Path(text).expanduser() if text else None


def _text(text: str) -> str | None:
    return text.strip() or None


def _signer(result: AttestationResult) -> str:
    if "key" in result.signer:
        return f"key {result.signer['key']}"
    identity = result.signer.get("identity")
    return str(identity) if identity else "-"


def serve_command(bundle: Path, key: Path | None) -> str:
    """The `stella devportal serve` line that serves what verified (the TUI starts no server)."""
    with_key = f" --key {shown_path(key)}" if key is not None else ""
    return f"stella devportal serve {shown_path(bundle)}{with_key}"


class ReceiveScreen(StellaScreen):
    """Opened from Verify (ctrl+n) on a bundle that verified: the kind's inputs, then ctrl+r."""

    DEFAULT_CSS = """
    ReceiveScreen #receive-what, ReceiveScreen #receive-summary {
        padding: 0 1;
        height: auto;
        max-height: 3;
    }
    ReceiveScreen #receive-summary.ok { color: $success; }
    ReceiveScreen #receive-summary.failed { color: $error; }
    /* The tables sit in boxes: the boxes share the height, each table scrolls inside its own. */
    ReceiveScreen #receive-checks-box { height: 1fr; min-height: 4; }
    ReceiveScreen #receive-results-box { height: auto; max-height: 8; display: none; }
    ReceiveScreen #receive-results-box.-shown { display: block; }
    ReceiveScreen #receive-policy { width: 16; }
    ReceiveScreen #receive-grace { width: 20; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+r", "receive", "Run"),
        Binding("escape", "back", "Leave field / back"),
        Binding("ctrl+x", "cancel_receive", "Cancel"),
    ]
    #: The kinds whose import or install can be stopped midway (the long ones: a mirror, a Trivy DB); the others
    #: are small and run to their end.
    CANCELLABLE = frozenset({"mirror", "trivy"})

    def __init__(self, receiving: Receiving, bundle: Path, key: Path | None, manifest: dict[str, Any]) -> None:
        super().__init__()
        self.receiving = receiving
        self.bundle = bundle
        self.key = key
        self.manifest = manifest
        self.running = False
        #: The running import's cancel token, for a cancellable kind (None otherwise).
        self.token: CancelToken | None = None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """ctrl+x is in the footer only while a cancellable import runs."""
        if action == "cancel_receive":
            return self.token is not None
        return True

    def action_cancel_receive(self) -> None:
        """ctrl+x: stop the import at the archive's next read, or before it changes anything."""
        if self.token is not None:
            self.token.cancel()
            self.query_one("#receive-summary", Static).update("cancelling ...")

    def compose(self) -> ComposeResult:
        kind = self.receiving.kind
        m = self.manifest
        profile = (m.get("profile") or {}).get("id")
        yield Header()
        yield Static(
            f"verified {shown_path(self.bundle)}: {profile} run {m.get('runId')} for tenant {m.get('tenant')}; "
            f"{self.receiving.title} ({self.receiving.command})",
            id="receive-what",
            markup=False,
        )
        with Vertical(classes="form"):
            if kind == "mirror":
                with Horizontal(classes="row"):
                    yield Input(placeholder="mirror directory", id="receive-into")
                    yield Input(placeholder="TUF root.json (first import)", id="receive-trust-root")
                with Horizontal(classes="row"):
                    yield Input(placeholder="age identity", id="receive-identity")
                    yield Input(placeholder="passphrase file", id="receive-passphrase")
                    yield Input(placeholder="receipt key", id="receive-receipt-key")
                    yield Button(self.receiving.action, id="receive-run", variant="primary")
            elif kind == "trivy":
                with Horizontal(classes="row"):
                    yield Input(placeholder="Trivy cache directory (trivy --cache-dir)", id="receive-cache")
                    yield Button(self.receiving.action, id="receive-run", variant="primary")
            elif kind == "risk":
                with Horizontal(classes="row"):
                    yield Select(
                        [(str(p), str(p)) for p in FreshnessPolicy],
                        value=str(FreshnessPolicy.BLOCK),
                        allow_blank=False,
                        id="receive-policy",
                    )
                    yield Input(placeholder="grace (3d)", id="receive-grace")
                    yield Button(self.receiving.action, id="receive-run", variant="primary")
            elif kind == "attestation":
                with Horizontal(classes="row"):
                    yield Input(placeholder="certificate identity (keyless)", id="receive-cert-identity")
                    yield Input(placeholder="OIDC issuer (keyless)", id="receive-oidc-issuer")
                    yield Button(self.receiving.action, id="receive-run", variant="primary")
            else:
                with Horizontal(classes="row"):
                    yield Button(self.receiving.action, id="receive-run", variant="primary")
        yield Static("", id="receive-summary", markup=False)
        with Vertical(id="receive-checks-box"):
            yield DataTable(id="receive-checks", cursor_type="row", zebra_stripes=True)
        with Vertical(id="receive-results-box"):
            yield DataTable(id="receive-results", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = f"verify: {self.receiving.kind}"
        checks = self.query_one("#receive-checks", DataTable)
        for heading in ("result", "check", "detail"):
            checks.add_column(heading, key=heading)
        results = self.query_one("#receive-results", DataTable)
        for heading in COLUMNS[self.receiving.kind]:
            results.add_column(heading, key=heading)
        inputs = self.query(Input)
        if inputs:
            inputs.first().focus()
        else:
            self.query_one("#receive-run", Button).focus()

    def action_back(self) -> None:
        if isinstance(self.focused, Input):
            self.action_leave_field()
        elif not self.running:
            self.dismiss(None)

    def _value(self, selector: str) -> str:
        found = self.query(selector)
        return found.first(Input).value if found else ""

    def request(self) -> ReceiveRequest:
        """The form's fields as the CLI command's arguments."""
        policy = self.query("#receive-policy")
        return ReceiveRequest(
            bundle=self.bundle,
            key=self.key,
            into=_path(self._value("#receive-into")),
            trust_root=_path(self._value("#receive-trust-root")),
            identity=_path(self._value("#receive-identity")),
            passphrase_file=_path(self._value("#receive-passphrase")),
            receipt_key=_text(self._value("#receive-receipt-key")),
            cache_dir=_path(self._value("#receive-cache")),
            policy=str(policy.first(Select).value) if policy else str(FreshnessPolicy.BLOCK),
            grace=_text(self._value("#receive-grace")),
            certificate_identity=_text(self._value("#receive-cert-identity")),
            oidc_issuer=_text(self._value("#receive-oidc-issuer")),
        )

    @on(Button.Pressed, "#receive-run")
    @on(Input.Submitted)
    def action_receive(self) -> None:
        if self.running:
            return
        self.running = True
        self.query_one("#receive-checks", DataTable).clear()
        self.query_one("#receive-results", DataTable).clear()
        self.query_one("#receive-results-box").set_class(False, "-shown")
        summary = self.query_one("#receive-summary", Static)
        summary.set_classes("")
        summary.update(f"{self.receiving.doing} {shown_path(self.bundle)} ...")
        self.query_one("#receive-run", Button).disabled = True
        self.token = CancelToken() if self.receiving.kind in self.CANCELLABLE else None
        self.refresh_bindings()
        self.run_receive(self.request())

    # -- the worker -------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="receive", exit_on_error=False, description="import a verified bundle")
    def run_receive(self, request: ReceiveRequest) -> None:
        actions: dict[str, Callable[[ReceiveRequest], tuple[Received, StellaError | None]]] = {
            "mirror": self._mirror,
            "trivy": self._trivy,
            "risk": self._risk,
            "attestation": self._attestation,
            "devportal": self._devportal,
        }
        try:
            received, error = actions[self.receiving.kind](request)
        except Cancelled as exc:
            self.post_message(ReceiveDone(None, f"cancelled ({exc.diagnostics()}); nothing was changed"))
            return
        except BaseException as exc:
            self.post_message(ReceiveDone(None, sentence_of(exc)[1]))
            raise  # the screen's worker-error handler shows the CLI's sentence in a dialog
        self.post_message(ReceiveDone(received))
        if error is not None:
            raise error  # done in part (attestations that did not verify): the dialog says why, as the CLI does

    def _report(self, check: Check) -> None:
        self.post_message(ReceiveCheck(check))

    def _keys(self, request: ReceiveRequest) -> list[TrustedKey]:
        return keys_from_files([request.key]) if request.key else TrustStore(self.home).list()

    def _mirror(self, request: ReceiveRequest) -> tuple[Received, StellaError | None]:
        if request.into is None:
            raise UsageError("type the mirror directory to import into", hint="stella mirror import BUNDLE --into DIR")
        result = import_into_mirror(
            self.home,
            request.bundle,
            request.into,
            key_files=[request.key] if request.key else (),
            receipt_key=request.receipt_key,
            trust_root=request.trust_root,
            identity_files=[request.identity] if request.identity else (),
            passphrase_file=request.passphrase_file,
            observer=CheckObserver(self._report, self.token),
        )
        tuf = result.tuf.to_dict()
        rows = [
            ("state", result.state_digest[:16]),
            ("sequence", str(result.state.sequence)),
            ("documents", str(result.state.counts.get("documents", 0))),
            ("written", f"{result.written_bytes} bytes; {result.linked_files} files kept"),
            ("TUF", f"root {tuf.get('rootVersion')}, targets {tuf.get('targetsVersion')}"),
            ("receipt", shown_path(result.receipt_path)),
        ]
        return Received(
            f"imported into {shown_path(request.into)}: state {result.state_digest[:12]} "
            f"(sequence {result.state.sequence}); check it with: stella mirror verify {shown_path(request.into)}",
            rows,
        ), None

    def _trivy(self, request: ReceiveRequest) -> tuple[Received, StellaError | None]:
        if request.cache_dir is None:
            raise UsageError("type the Trivy cache directory", hint="stella trivy install BUNDLE --cache-dir DIR")
        result = install_bundle(request.bundle, request.cache_dir, self._keys(request), None, self._report, self.token)
        rows = [(shown_path(f["path"]), str(f["size"]), f"{f['sha256'][:16]}...") for f in result.files]
        cache = shown_path(result.cache_dir)
        return Received(
            f"installed {result.profile} (schema {result.schema_version}) into {cache}; "
            f"scan with: trivy <target> --cache-dir {cache} {SCAN_FLAGS}",
            rows,
        ), None

    def _risk(self, request: ReceiveRequest) -> tuple[Received, StellaError | None]:
        policy, grace = freshness_policy(request.policy, request.grace)
        with tempfile.TemporaryDirectory(prefix="stella-risk-import-") as work:
            report = verify_risk_bundle(
                request.bundle,
                self._keys(request),
                policy=policy,
                grace=grace,
                observer=CheckObserver(self._report),
                extract_to=Path(work),
            )
            if report.error is not None:
                raise report.error
            with self.store_guard:
                done = import_verified_risk(self.home, request.bundle, report)
        rows = [
            (str(d["provider"]), str(d["outcome"]), str(d["documentId"]), str(d["sha256"])[:16]) for d in done.datasets
        ]
        warnings = "".join(f"; warning: {w}" for w in report.warnings)
        return Received(
            f"imported into tenant {done.tenant}: {done.summary.imported} new datasets, "
            f"{done.summary.duplicates} already stored (expires {report.risk.get('expiresAt')}){warnings}",
            rows,
        ), None

    def _attestation(self, request: ReceiveRequest) -> tuple[Received, StellaError | None]:
        policy = identity_policy(
            [request.certificate_identity] if request.certificate_identity else (), None, request.oidc_issuer, None
        )
        keys = self._keys(request)
        trust = Trust(keys=TrustStore(self.home).list(), roots=sigstore_roots(self.home), policy=policy)
        with tempfile.TemporaryDirectory(prefix="stella-attest-import-") as work:
            report = verify_attestation_bundle(
                request.bundle, keys, trust=trust, observer=CheckObserver(self._report), extract_to=Path(work)
            )
            if not bundle_verified(report):
                raise report.error or UsageError("the bundle did not verify", path=str(request.bundle))
            with self.store_guard:
                done = import_verified_attestations(self.home, request.bundle, report)
        outcome = {(row["path"], row["entryIndex"]): str(row["import"]) for row in done.rows}
        rows = [
            (
                "verified" if r.verified else "FAILED",
                r.method,
                r.predicate_type or r.payload_type or r.kind,
                _signer(r),
                outcome.get((r.path, r.entry_index), ""),
            )
            for r in report.results
        ]
        left = sum(1 for r in report.results if not r.verified)
        stored = sum(1 for r in done.results if str(r.outcome) == "imported")
        already = sum(1 for r in done.results if str(r.outcome) == "duplicate")
        received = Received(
            f"imported {stored} new and {already} already stored attestation documents into tenant {done.tenant}; "
            f"{left} attestations did not verify and were left out",
            rows,
            ok=report.error is None and not done.rejected,
        )
        rejected = done.rejected[0].error if done.rejected else None
        return received, report.error or (rejected if isinstance(rejected, StellaError) else None)

    def _devportal(self, request: ReceiveRequest) -> tuple[Received, StellaError | None]:
        report = verify_portal(request.bundle, self._keys(request), observer=CheckObserver(self._report))
        if report.error is not None:
            raise report.error
        m = report.manifest
        command = serve_command(request.bundle, request.key)
        rows = [
            ("portal", str(m.get("portal"))),
            ("tenant", str(m.get("tenant"))),
            ("files", str(m.get("fileCount"))),
            ("serve with", command),
        ]
        return Received(f"verified portal {m.get('portal')}; serve it on 127.0.0.1 with: {command}", rows), None

    # -- messages ---------------------------------------------------------------------------------
    def on_receive_check(self, message: ReceiveCheck) -> None:
        add_check_row(self.query_one("#receive-checks", DataTable), message.check)

    def on_receive_done(self, message: ReceiveDone) -> None:
        self.running = False
        self.token = None
        self.refresh_bindings()
        self.query_one("#receive-run", Button).disabled = False
        summary = self.query_one("#receive-summary", Static)
        # Keep the last check in view, once the rows and the results (which take room from the checks) are laid out.
        checks = self.query_one("#receive-checks", DataTable)
        self.call_after_refresh(checks.scroll_end, animate=False)
        received = message.received
        if received is None:
            summary.update(f"nothing imported: {message.failure}")
            summary.set_classes("failed")
            return
        summary.update(received.summary)
        summary.set_classes("ok" if received.ok else "failed")
        table = self.query_one("#receive-results", DataTable)
        for row in received.rows:
            table.add_row(*row)
        self.query_one("#receive-results-box").set_class(bool(received.rows), "-shown")
