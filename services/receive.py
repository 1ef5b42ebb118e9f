"""Receiving bundles: one registry of the kinds of bundle a receiver can verify and then import or install.

Each :class:`Receivable` names a kind (the profiles of the verified manifest it answers), its title, the options
it takes, whether it can be cancelled midway, its verify step and its apply step (absent for a kind that is only
verified). ``stella verify`` runs :func:`verify_received` and learns the kind of what verified; each
``... import|install`` command runs its kind's steps (:data:`MIRROR`, :data:`TRIVY`, :data:`RISK`,
:data:`ATTESTATION`, :data:`DEVPORTAL`); the TUI's receive screen draws a kind's options as its form and its
:class:`Outcome` as its result. Adding a kind is one verifier module plus one entry in :data:`RECEIVABLES`.

The steps load their workflow modules (and through them the store and the adapters) only when they run, so
``stella verify`` imports none of it.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from core.contract import profiles as profile_ids
from core.contract.manifest import VerifiedManifest
from core.errors import BadInputError, PolicyRefusal, StellaError, UsageError
from core.home import Home
from core.progress import Observer
from services.trust import trusted_keys
from verify.bundle import VerifyReport, verify_bundle

if TYPE_CHECKING:
    from services.attest import AttestationReceipt
    from services.imports import BundleImport
    from services.mirror_import import ImportResult
    from services.risk import RiskReceipt
    from services.trivy import InstallResult
    from verify.attest import AttestationReport
    from verify.devportal import PortalReport
    from verify.risk import RiskReport

#: The values of :class:`verify.risk.FreshnessPolicy`, in its order, and its default (``block``): spelled out here
#: so that loading this registry (every ``stella verify``) does not import the risk verifier (the unit test
#: tests/unit/test_startup_verify_path.py holds them equal to the enum's).
FRESHNESS_POLICIES = ("warn", "block", "grace")
DEFAULT_FRESHNESS_POLICY = "block"

R = TypeVar("R", bound=VerifyReport)
A = TypeVar("A")
T = TypeVar("T")


@dataclass(frozen=True)
class ReceiveRequest:
    """The inputs of receiving one bundle, whatever its kind (each kind reads its own; None or empty: not given).

    ``key_files`` are the trusted signers of the bundle (else the home's trust store); ``at`` the time
    time-dependent checks are evaluated at (else now); ``tenant`` the tenant to import into (else the bundle's).
    """

    bundle: Path
    key_files: tuple[Path, ...] = ()
    at: datetime | None = None
    tenant: str | None = None
    #: Age identity files that decrypt an encrypted payload (``stella verify``, mirror import).
    identity_files: tuple[Path, ...] = ()
    # mirror
    into: Path | None = None
    trust_root: Path | None = None
    passphrase_file: Path | None = None
    receipt_key: str | None = None
    min_free: int | None = None
    #: Where a copy of the signed mirror receipt goes (written before the swap, so it cannot fail after it).
    receipt_out: Path | None = None
    # trivy
    cache_dir: Path | None = None
    # risk
    policy: str = DEFAULT_FRESHNESS_POLICY
    grace: str | None = None
    # attestation
    attestation_key_files: tuple[Path, ...] = ()
    trusted_root_files: tuple[Path, ...] = ()
    use_bundle_roots: bool = True
    certificate_identities: tuple[str, ...] = ()
    certificate_identity_regexp: str | None = None
    oidc_issuer: str | None = None
    oidc_issuer_regexp: str | None = None


class OptionType(StrEnum):
    """How a form's text becomes a :class:`ReceiveRequest` field."""

    PATH = "path"  # one path (empty: None)
    PATHS = "paths"  # a tuple of one path (empty: ())
    TEXT = "text"  # text (empty: None)
    TEXTS = "texts"  # a tuple of one text (empty: ())
    CHOICE = "choice"  # one of ``choices``


@dataclass(frozen=True)
class Option:
    """One input of a kind: the :class:`ReceiveRequest` field it sets, the command's flag, and how a form asks
    for it (``label``, and ``row``: options of one row sit side by side)."""

    field: str
    #: The option's short name: a form's field id (``cache``), and the key of its value in :func:`request_from_form`.
    key: str
    flag: str
    label: str
    type: OptionType = OptionType.PATH
    row: int = 0
    #: The values a CHOICE takes, and the one it starts with.
    choices: tuple[str, ...] = ()
    default: str | None = None

    def value(self, text: str) -> Any:
        """The request field's value for ``text`` as typed into a form."""
        text = text.strip()
        if self.type is OptionType.CHOICE:
            return text or self.default
        if not text:
            return () if self.type in (OptionType.PATHS, OptionType.TEXTS) else None
        if self.type is OptionType.PATH:
            return Path(text).expanduser()
        if self.type is OptionType.PATHS:
            return (Path(text).expanduser(),)
        if self.type is OptionType.TEXTS:
            return (text,)
        return text


@dataclass(frozen=True)
class Outcome:
    """What receiving a bundle did, as a surface shows it: a summary line, result rows (one cell per column of the
    kind), whether it all went through, and the error of what did not (attestations that did not verify)."""

    summary: str
    rows: Sequence[tuple[str, ...]] = ()
    ok: bool = True
    error: StellaError | None = None


#: How a surface prints a path in an outcome (the TUI shortens paths under the working directory).
ShowPath = Callable[[Path | str], str]
VerifyStep = Callable[[Home, ReceiveRequest, Observer | None], R]
#: The apply step: verify, then import or install. ``on_report`` hears the verification's report before anything
#: is applied, whether or not it verified (the kinds whose verification is their own: risk, attestation,
#: devportal; a mirror import or a Trivy install raises the verification's error instead); ``store_lock`` is held
#: while the store is written.
ApplyStep = Callable[
    [Home, ReceiveRequest, Observer | None, Callable[[R], None] | None, AbstractContextManager[object]], A
]


@dataclass(frozen=True)
class Receivable(Generic[R, A]):
    """One kind of receivable bundle: what it is, what it takes, and its verify and apply steps."""

    kind: str
    #: The profile ids (``kind:variant``) of the verified manifests this entry answers.
    profiles: tuple[str, ...]
    #: What receiving does, and its words: the action (a button), the progressive form (a status line), and the
    #: CLI command that does it.
    title: str
    action: str
    doing: str
    command: str
    options: tuple[Option, ...]
    #: Whether the apply step can be stopped midway (it polls ``observer.is_cancelled()``).
    cancellable: bool
    verify: VerifyStep[R]
    apply: ApplyStep[R, A] | None = None
    #: The outcome of the apply step, for a surface to show; and the columns of its rows.
    outcome: Callable[[A, ReceiveRequest, ShowPath], Outcome] | None = None
    columns: tuple[str, ...] = ()

    @property
    def offered(self) -> bool:
        """True when a verified bundle of this kind offers something to do (an import, an install)."""
        return self.apply is not None

    def receive(
        self,
        home: Home,
        request: ReceiveRequest,
        observer: Observer | None = None,
        *,
        on_report: Callable[[R], None] | None = None,
        store_lock: AbstractContextManager[object] | None = None,
    ) -> A:
        """Run the apply step: verify ``request.bundle``, then import or install what verified.

        ``observer`` hears each check (and, for a cancellable kind, is asked whether to stop); ``on_report`` and
        ``store_lock`` as for :data:`ApplyStep`.
        """
        if self.apply is None:
            raise UsageError(f"{self.kind} bundles are only verified: there is nothing to import", hint="stella verify")
        return self.apply(home, request, observer, on_report, store_lock or nullcontext())

    def describe(self, done: A, request: ReceiveRequest, show: ShowPath = str) -> Outcome:
        """What the apply step did, for a surface to show (``show`` prints a path)."""
        if self.outcome is None:
            raise UsageError(f"{self.kind} bundles are only verified: there is nothing to import", hint="stella verify")
        return self.outcome(done, request, show)


# -- shared by the kinds ----------------------------------------------------------------------------------
def own_tenant(manifest: VerifiedManifest, bundle: Path, tenant: str | None, what: str) -> str:
    """The tenant to import a verified bundle into: ``tenant`` if given, which must be the bundle's own."""
    from core.tenants import validate_tenant  # loads the store: `stella verify` needs neither

    bundle_tenant = str(manifest.tenant)
    chosen = validate_tenant(tenant or bundle_tenant)
    if chosen != bundle_tenant:
        raise PolicyRefusal(
            f"the bundle belongs to tenant {bundle_tenant!r}, not {chosen!r}",
            path=str(bundle),
            hint=f"{what} is imported into its own tenant",
        )
    return chosen


def verify_then_import(
    verify: Callable[[Path], R], load: Callable[[R], T], *, verified: Callable[[R], bool]
) -> tuple[R, T | None]:
    """Verify a bundle, extracting what verified into a temporary directory (``verify(workdir)``); only if
    ``verified(report)`` run ``load(report)`` while the files are there. A bundle that did not verify imports
    nothing: ``(report, None)``."""
    with tempfile.TemporaryDirectory(prefix="stella-import-") as work:
        report = verify(Path(work))
        if not verified(report):
            return report, None
        return report, load(report)


def not_verified(report: VerifyReport) -> StellaError:
    """The error that refuses the import of a bundle that did not verify."""
    return report.error or BadInputError("the bundle did not verify", path=report.bundle)


# -- the generic verification ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Verified:
    """The report of ``stella verify`` and, if the bundle verified, the entry of its kind (None: unknown kind)."""

    report: VerifyReport
    receivable: Receivable[Any, Any] | None


def verify_any(home: Home, request: ReceiveRequest, observer: Observer | None = None) -> VerifyReport:
    """``stella verify``'s checks, for a bundle of any kind: the signature, every digest and size, the layout;
    an encrypted payload's plaintext digests with ``identity_files``."""
    from core.age_stream import read_identities

    keys = trusted_keys(home, request.key_files)
    identities = [i for path in request.identity_files for i in read_identities(path)]
    return verify_bundle(request.bundle, keys, at=request.at, observer=observer, identities=identities)


def verify_received(home: Home, request: ReceiveRequest, observer: Observer | None = None) -> Verified:
    """Verify a received bundle (:func:`verify_any`) and find what its kind offers."""
    report = verify_any(home, request, observer)
    return Verified(report, receivable_for(report.manifest) if report.ok else None)


# -- mirror ------------------------------------------------------------------------------------------------
def _mirror_apply(
    home: Home,
    request: ReceiveRequest,
    observer: Observer | None,
    on_report: Callable[[VerifyReport], None] | None,
    store_lock: AbstractContextManager[object],
) -> ImportResult:
    from services.mirror import import_into_mirror
    from services.mirror_import import DEFAULT_MIN_FREE

    if request.into is None:
        raise UsageError("type the mirror directory to import into", hint="stella mirror import BUNDLE --into DIR")
    return import_into_mirror(
        home,
        request.bundle,
        request.into,
        key_files=request.key_files,
        receipt_key=request.receipt_key,
        trust_root=request.trust_root,
        identity_files=request.identity_files,
        passphrase_file=request.passphrase_file,
        at=request.at,
        min_free=DEFAULT_MIN_FREE if request.min_free is None else request.min_free,
        observer=observer,
        receipt_out=request.receipt_out,
    )


def _mirror_outcome(result: ImportResult, request: ReceiveRequest, show: ShowPath) -> Outcome:
    tuf = result.tuf.to_dict()
    rows = [
        ("state", result.state_digest[:16]),
        ("sequence", str(result.state.sequence)),
        ("documents", str(result.state.counts.get("documents", 0))),
        ("written", f"{result.written_bytes} bytes; {result.linked_files} files kept"),
        ("TUF", f"root {tuf.get('rootVersion')}, targets {tuf.get('targetsVersion')}"),
        ("receipt", show(result.receipt_path)),
        ("receipt key", result.receipt_key + (" (created by this import)" if result.receipt_key_created else "")),
    ]
    into = show(request.into or "")
    text = (
        f"imported into {into}: state {result.state_digest[:12]} "
        f"(sequence {result.state.sequence}); check it with: stella mirror verify {into}"
    )
    if result.receipt_key_note:
        text += f"; {result.receipt_key_note}"
    return Outcome(text, rows)


# -- trivy -------------------------------------------------------------------------------------------------
def _trivy_apply(
    home: Home,
    request: ReceiveRequest,
    observer: Observer | None,
    on_report: Callable[[VerifyReport], None] | None,
    store_lock: AbstractContextManager[object],
) -> InstallResult:
    from services.trivy import default_cache_dir, install_bundle

    keys = trusted_keys(home, request.key_files)
    cache_dir = request.cache_dir or default_cache_dir()  # where Trivy itself looks without --cache-dir
    return install_bundle(request.bundle, cache_dir, keys, at=request.at, observer=observer)


def _trivy_outcome(result: InstallResult, request: ReceiveRequest, show: ShowPath) -> Outcome:
    from services.trivy import SCAN_FLAGS

    rows = [(show(f["path"]), str(f["size"]), f"{f['sha256'][:16]}...") for f in result.files]
    cache = show(result.cache_dir)
    return Outcome(
        f"installed {result.profile} (schema {result.schema_version}) into {cache}; "
        f"scan with: trivy <target> --cache-dir {cache} {SCAN_FLAGS}",
        rows,
    )


# -- risk --------------------------------------------------------------------------------------------------
def _risk_verify(home: Home, request: ReceiveRequest, observer: Observer | None) -> RiskReport:
    from services.risk import verify_risk

    return verify_risk(home, request, observer=observer)


def _risk_apply(
    home: Home,
    request: ReceiveRequest,
    observer: Observer | None,
    on_report: Callable[[RiskReport], None] | None,
    store_lock: AbstractContextManager[object],
) -> RiskReceipt:
    from services.risk import receive_risk

    return receive_risk(home, request, observer=observer, on_report=on_report, store_lock=store_lock)


def _risk_outcome(receipt: RiskReceipt, request: ReceiveRequest, show: ShowPath) -> Outcome:
    report, done = receipt.report, receipt.imported
    if done is None:
        raise not_verified(report)
    rows = [(str(d["provider"]), str(d["outcome"]), str(d["documentId"]), str(d["sha256"])[:16]) for d in done.datasets]
    warnings = "".join(f"; warning: {w}" for w in report.warnings)
    return Outcome(
        f"imported into tenant {done.tenant}: {done.summary.imported} new datasets, "
        f"{done.summary.duplicates} already stored; {report.freshness_text()}{warnings}",
        rows,
    )


# -- attestation -------------------------------------------------------------------------------------------
def _attestation_verify(home: Home, request: ReceiveRequest, observer: Observer | None) -> AttestationReport:
    from services.attest import verify_attestations

    return verify_attestations(home, request, observer=observer)


def _attestation_apply(
    home: Home,
    request: ReceiveRequest,
    observer: Observer | None,
    on_report: Callable[[AttestationReport], None] | None,
    store_lock: AbstractContextManager[object],
) -> AttestationReceipt:
    from services.attest import receive_attestations

    return receive_attestations(home, request, observer=observer, on_report=on_report, store_lock=store_lock)


def _attestation_outcome(receipt: AttestationReceipt, request: ReceiveRequest, show: ShowPath) -> Outcome:
    from services.attest import signer_label

    report, done = receipt.report, receipt.imported
    if done is None:
        raise not_verified(report)
    outcome = {(row["path"], row["entryIndex"]): str(row["import"]) for row in done.rows}
    rows = [
        (
            "verified" if r.verified else "FAILED",
            r.method,
            r.predicate_type or r.payload_type or r.kind,
            signer_label(r, issuer=False) or "-",
            outcome.get((r.path, r.entry_index), ""),
        )
        for r in report.results
    ]
    left = sum(1 for r in report.results if not r.verified)
    stored = sum(1 for r in done.results if str(r.outcome) == "imported")
    already = sum(1 for r in done.results if str(r.outcome) == "duplicate")
    rejected = done.rejected[0].error if done.rejected else None
    return Outcome(
        f"imported {stored} new and {already} already stored attestation documents into tenant {done.tenant}; "
        f"{left} attestations did not verify and were left out",
        rows,
        ok=report.error is None and not done.rejected,
        error=report.error or (rejected if isinstance(rejected, StellaError) else None),
    )


# -- devportal ---------------------------------------------------------------------------------------------
def _portal_verify(home: Home, request: ReceiveRequest, observer: Observer | None) -> PortalReport:
    from services.portal import verify_portal_bundle

    return verify_portal_bundle(home, request.bundle, request.key_files, observer=observer)


def _portal_apply(
    home: Home,
    request: ReceiveRequest,
    observer: Observer | None,
    on_report: Callable[[PortalReport], None] | None,
    store_lock: AbstractContextManager[object],
) -> PortalReport:
    """A portal is served, not imported: its receiving step verifies the portal's own manifest (the server is
    `stella devportal serve`, which verifies again and serves only the copy that verified)."""
    report = _portal_verify(home, request, observer)
    if on_report is not None:
        on_report(report)
    if report.error is not None:
        raise report.error
    return report


def serve_command(bundle: Path | str, key: Path | str | None, show: ShowPath = str) -> str:
    """The `stella devportal serve` line that serves a verified portal."""
    with_key = f" --key {show(key)}" if key is not None else ""
    return f"stella devportal serve {show(bundle)}{with_key}"


def _portal_outcome(report: PortalReport, request: ReceiveRequest, show: ShowPath) -> Outcome:
    m = report.manifest
    command = serve_command(request.bundle, request.key_files[0] if request.key_files else None, show)
    rows = [
        ("portal", str(m.portal)),
        ("tenant", str(m.tenant)),
        ("files", str(m.file_count)),
        ("serve with", command),
    ]
    return Outcome(f"verified portal {m.portal}; serve it on 127.0.0.1 with: {command}", rows)


# -- json ------------------------------------------------------------------------------------------------
def _json_apply(
    home: Home,
    request: ReceiveRequest,
    observer: Observer | None,
    on_report: Callable[[VerifyReport], None] | None,
    store_lock: AbstractContextManager[object],
) -> BundleImport:
    from services.imports import import_bundle

    return import_bundle(home, request, observer=observer, on_report=on_report, store_lock=store_lock)


def _json_outcome(done: BundleImport, request: ReceiveRequest, show: ShowPath) -> Outcome:
    rows = [(str(r.outcome), r.document_id or "-", r.format or "-", (r.sha256 or "")[:16]) for r in done.results]
    summary = done.summary
    rejected = done.rejected
    error = rejected[0].error if rejected else None
    return Outcome(
        f"imported {summary.imported} new and {summary.duplicates} already stored raw documents of "
        f"{show(request.bundle)} into tenant {summary.tenant}; {summary.rejected} rejected",
        rows,
        ok=not rejected,
        error=error if isinstance(error, StellaError) else None,
    )


# -- the registry ------------------------------------------------------------------------------------------
MIRROR: Receivable[VerifyReport, ImportResult] = Receivable(
    kind="mirror",
    profiles=(profile_ids.MIRROR_FULL, profile_ids.MIRROR_DELTA),
    title="import into a mirror directory",
    action="Import",
    doing="importing",
    command="stella mirror import",
    options=(
        Option("into", "into", "--into", "mirror directory"),
        Option("trust_root", "trust-root", "--trust-root", "TUF root.json (first import)"),
        Option("identity_files", "identity", "--identity", "age identity", OptionType.PATHS, row=1),
        Option("passphrase_file", "passphrase", "--passphrase-file", "passphrase file", row=1),
        Option("receipt_key", "receipt-key", "--receipt-key", "receipt key", OptionType.TEXT, row=1),
    ),
    cancellable=True,
    verify=verify_any,
    apply=_mirror_apply,
    outcome=_mirror_outcome,
    columns=("imported", "value"),
)
TRIVY: Receivable[VerifyReport, InstallResult] = Receivable(
    kind="trivy",
    profiles=(profile_ids.TRIVY_DB, profile_ids.TRIVY_JAVA_DB),
    title="install into a Trivy cache directory",
    action="Install",
    doing="installing",
    command="stella trivy install",
    options=(
        Option("cache_dir", "cache", "--cache-dir", "Trivy cache dir (empty: $TRIVY_CACHE_DIR or ~/.cache/trivy)"),
    ),
    cancellable=True,
    verify=verify_any,
    apply=_trivy_apply,
    outcome=_trivy_outcome,
    columns=("installed file", "bytes", "sha256"),
)
RISK: Receivable[RiskReport, RiskReceipt] = Receivable(
    kind="risk",
    profiles=(profile_ids.RISK_BUNDLE,),
    title="import its KEV/EPSS datasets into the store",
    action="Import",
    doing="importing",
    command="stella risk bundle import",
    options=(
        Option(
            "policy",
            "policy",
            "--policy",
            "freshness policy",
            OptionType.CHOICE,
            choices=FRESHNESS_POLICIES,
            default=DEFAULT_FRESHNESS_POLICY,
        ),
        Option("grace", "grace", "--grace", "grace (3d)", OptionType.TEXT),
    ),
    cancellable=False,
    verify=_risk_verify,
    apply=_risk_apply,
    outcome=_risk_outcome,
    columns=("provider", "outcome", "document", "sha256"),
)
ATTESTATION: Receivable[AttestationReport, AttestationReceipt] = Receivable(
    kind="attestation",
    profiles=(profile_ids.ATTESTATION_BUNDLE,),
    title="import the attestations that verify",
    action="Import",
    doing="importing",
    command="stella attest bundle import",
    options=(
        Option(
            "certificate_identities",
            "cert-identity",
            "--certificate-identity",
            "certificate identity (keyless)",
            OptionType.TEXTS,
        ),
        Option("oidc_issuer", "oidc-issuer", "--certificate-oidc-issuer", "OIDC issuer (keyless)", OptionType.TEXT),
    ),
    cancellable=False,
    verify=_attestation_verify,
    apply=_attestation_apply,
    outcome=_attestation_outcome,
    columns=("result", "method", "attestation", "signer", "import"),
)
DEVPORTAL: Receivable[PortalReport, PortalReport] = Receivable(
    kind="devportal",
    profiles=(profile_ids.DEVPORTAL_OFFLINE,),
    title="verify the portal, then serve it",
    action="Verify",
    doing="verifying",
    command="stella devportal verify",
    options=(),
    cancellable=False,
    verify=_portal_verify,
    apply=_portal_apply,
    outcome=_portal_outcome,
    columns=("portal", "value"),
)
#: JSON exports (raw documents, a policy's results): verified, then their raw documents imported byte for byte
#: into the bundle's own tenant, each recorded with the bundle as its source (`stella import BUNDLE`).
JSON: Receivable[VerifyReport, BundleImport] = Receivable(
    kind="json",
    profiles=(profile_ids.JSON_RAW, profile_ids.JSON_POLICY),
    title="import its raw documents into the store",
    action="Import",
    doing="importing",
    command="stella import",
    options=(),
    cancellable=True,
    verify=verify_any,
    apply=_json_apply,
    outcome=_json_outcome,
    columns=("outcome", "document", "format", "sha256"),
)
#: A risk simulation is a report to read: verified by `stella verify`, nothing to import.
RISK_SIMULATION: Receivable[VerifyReport, None] = Receivable(
    kind="risk-simulation",
    profiles=(profile_ids.RISK_SIMULATION,),
    title="verify only: a report to read",
    action="Verify",
    doing="verifying",
    command="stella verify",
    options=(),
    cancellable=False,
    verify=verify_any,
)

#: A bootstrap pack is pushed into a registry by `stella bootstrap push`, which takes the registry's address and
#: credentials; receiving it here verifies it (the push verifies it again before any byte leaves).
BOOTSTRAP: Receivable[VerifyReport, None] = Receivable(
    kind="bootstrap",
    profiles=(profile_ids.BOOTSTRAP_PACK,),
    title="verify only: push its images and charts with stella bootstrap push",
    action="Verify",
    doing="verifying",
    command="stella verify",
    options=(),
    cancellable=False,
    verify=verify_any,
)

#: Every receivable kind.
RECEIVABLES: tuple[Receivable[Any, Any], ...] = (
    MIRROR,
    TRIVY,
    RISK,
    ATTESTATION,
    DEVPORTAL,
    JSON,
    RISK_SIMULATION,
    BOOTSTRAP,
)
_BY_PROFILE: Mapping[str, Receivable[Any, Any]] = {p: r for r in RECEIVABLES for p in r.profiles}


def receivable_for(manifest: VerifiedManifest) -> Receivable[Any, Any] | None:
    """The entry for a verified manifest's profile (None for a profile no entry answers)."""
    return _BY_PROFILE.get(f"{manifest.profile.kind}:{manifest.profile.variant}")


def request_from_form(
    receivable: Receivable[Any, Any], bundle: Path, key: Path | None, values: Mapping[str, str]
) -> ReceiveRequest:
    """The request a form's fields make: ``values`` by option key (missing: not given)."""
    request = ReceiveRequest(bundle, key_files=(key,) if key is not None else ())
    changes = {o.field: o.value(values.get(o.key, "")) for o in receivable.options}
    return dataclasses.replace(request, **changes)
