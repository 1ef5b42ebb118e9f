"""Export runs: plan and build a signed bundle, retry, cancel, download, list and show runs.

`stella export ...`, `stella devportal export` and the TUI's run and runs screens call these functions; the run
engine (:mod:`core.runs`) records every step, the profile adapters (:mod:`adapters.profiles`) write the bundle.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from adapters.profiles.builder import bundle_builder
from adapters.profiles.registry import get_profile, run_options
from adapters.sources.registry import format_names
from core import log_fields
from core.archive.reader import ReaderLimits, SafeArchiveReader
from core.atomic import failing_as_environment
from core.clock import utcnow
from core.contract.bundle import MANIFEST, PROVENANCE
from core.errors import BadInputError, EnvironmentFailure, StellaError, StoreLockedError, UsageError
from core.home import Home
from core.keys import read_passphrase_file
from core.planner import check_plan, plan_run, preview_selection
from core.profiles import Profile, ProfileStore, parse_profile_ref
from core.progress import Observer
from core.runs import Distribution, ExportRun, RunEngine, RunEvent, request_cancel, write_event
from core.selectors import InputRef, Selectors, parse_selectors
from core.signing import Signer
from core.store import Store
from core.tenants import validate_tenant
from services import timeline
from services.keys import signer_for, signer_trusted_key
from services.logs import register_secret
from services.tracing import Tracer, traced
from verify.bundle import VerifyReport, verify_bundle

#: The environment variable that caps the runs a tenant may have active at once.
MAX_ACTIVE_ENV = "STELLA_MAX_ACTIVE_RUNS"


def max_active_runs() -> int:
    """Runs a tenant may have active at once (STELLA_MAX_ACTIVE_RUNS, default 4); beyond it: exit 7."""
    text = os.environ.get(MAX_ACTIVE_ENV, "4")
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"{MAX_ACTIVE_ENV}={text!r} is not a positive integer")
    return int(text)


def default_out(home: Home, name: str, suffix: str = ".tar.zst") -> Path:
    """Where a run's bundle goes when no output is given: ``HOME/exports/<name>-<time>-<random><suffix>``."""
    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    return home.root / "exports" / f"{name.replace(':', '-')}-{stamp}-{secrets.token_hex(3)}{suffix}"


def output_path(out: Path, *, mkdir: bool = False) -> Path:
    """Where a bundle the user named goes (resolved): its directory must exist, or ``mkdir`` (``--mkdir``) creates it.

    Every ``--out`` that writes a bundle (`export run`, `export retry`, `devportal export`, `tuf refresh`) comes
    through here, so a typo in a directory is refused (exit 8, naming it) instead of silently created.
    """
    path = out.expanduser().resolve()
    parent = path.parent
    if parent.is_dir():
        return path
    if parent.exists():
        raise EnvironmentFailure("the output's directory is not a directory", path=str(parent))
    if not mkdir:
        raise EnvironmentFailure(
            "the output's directory does not exist",
            path=str(parent),
            hint="create it first, or pass --mkdir to create it",
        )
    with failing_as_environment(parent, "cannot create the output's directory"):
        parent.mkdir(parents=True)
    return path


def read_recipients(values: Sequence[str], file: Path | None = None) -> list[str]:
    """Age recipients: ``values`` plus the lines of ``file`` (age's format: # comments, blank lines)."""
    recipients = list(values)
    if file is not None:
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise BadInputError(f"cannot read recipients file: {exc.strerror}", path=str(file)) from exc
        recipients += [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        if not recipients:
            raise BadInputError("the recipients file lists no recipient", path=str(file))
    return recipients


def check_selectors(args: Sequence[str]) -> Selectors:
    """Selectors from ``KEY=VALUE`` words, as `stella export run --selector` reads them."""
    return parse_selectors(list(args), known_formats=format_names())


#: How many input documents a plan lists by id (`stella export run --dry-run --first N` changes it).
PLAN_FIRST = 10


@dataclass(frozen=True)
class ExportPlan:
    """What a run would include, planned without writing anything (`stella export run --dry-run`, the live count).

    ``key`` and ``out`` are set by a dry run, which checks them as the run would; the wizard's live count leaves
    them out.
    """

    tenant: str
    profile: Profile
    selectors: Selectors
    counts: dict[str, int]
    first: list[InputRef]
    key: str | None = None
    out: Path | None = None
    base: dict[str, Any] | None = None  # a delta's resolved base: the inputs are then the resulting state

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def count_text(self) -> str:
        """``12 matching inputs (advisory 10, vex 2)``: the wizard's live count and the plan's first line."""
        per_kind = ", ".join(f"{kind} {n}" for kind, n in sorted(self.counts.items()))
        return f"{self.total} matching input{'s' if self.total != 1 else ''}" + (f" ({per_kind})" if per_kind else "")

    def to_dict(self) -> dict[str, Any]:
        """The stable ``--json`` form."""
        return {
            "dryRun": True,
            "tenant": self.tenant,
            "profile": {
                "id": self.profile.profile_id,
                "revision": self.profile.revision,
                "kind": self.profile.config.kind,
                "variant": self.profile.config.variant,
            },
            "selectors": self.selectors.to_dict(),
            "inputs": {"count": self.total, "byKind": dict(sorted(self.counts.items()))},
            "first": [
                {"kind": i.kind, "documentId": i.document_id, "subject": i.subject, "sha256": i.document_sha256}
                for i in self.first
            ],
            "key": self.key,
            "out": None if self.out is None else str(self.out),
            "base": self.base,
        }


def preview_inputs(
    home: Home, tenant: str, profile: Profile | str, selector_args: Sequence[str], *, first: int = PLAN_FIRST
) -> ExportPlan:
    """What a run of ``profile`` (a profile, or ID / ID@REVISION) over these selectors would pin now, read only.

    The TUI wizard's live count and `stella export run --dry-run` both read this.
    """
    tenant = validate_tenant(tenant)
    selectors = check_selectors(selector_args)
    with Store.open(home, read_only=True) as store:
        if isinstance(profile, str):
            name, revision = parse_profile_ref(profile)
            profile = ProfileStore(store).get(tenant, name, revision)
        preview = preview_selection(store, tenant, profile, selectors, limit=first)
    return ExportPlan(tenant, profile, selectors, preview.counts, preview.first)


def count_export_inputs(home: Home, tenant: str, profile: Profile, selector_args: Sequence[str]) -> dict[str, int]:
    """How many documents of each record type a run of ``profile`` over these selectors would pin now."""
    return preview_inputs(home, tenant, profile, selector_args, first=0).counts


@dataclass(frozen=True)
class ExportRequest:
    """What `stella export run` (or the TUI's export wizard) asks for."""

    tenant: str
    profile: str  # ID or ID@REVISION
    selectors: tuple[str, ...] = ()
    key: str | None = None  # signing key; None: the profile's signing_key
    passphrase_file: Path | None = None  # passphrase of an encrypted signing key
    recipients: tuple[str, ...] = ()
    recipients_file: Path | None = None
    encrypt_passphrase_file: Path | None = None
    out: Path | None = None  # None: default_out()
    base: str | None = None  # mirror:delta
    trivy_schema: int | None = None  # trivy profiles
    providers: tuple[str, ...] = ()  # risk bundles
    allow_empty: bool = False  # build even when the selection matches nothing
    mkdir: bool = False  # create the directory of ``out`` when it is missing


def build_run(
    store: Store,
    home: Home,
    run: ExportRun,
    *,
    key: str | None = None,
    passphrase_file: Path | None = None,
    encrypt_passphrase_file: Path | None = None,
    observer: Observer | None = None,
) -> ExportRun:
    """Build a planned run's bundle, signed with ``key`` (default: the run's key); returns the finished run.

    ``observer`` hears the build's progress, and stops it (the run is then aborted) when it says it is cancelled.
    """
    with log_fields.bound(**log_fields.run_fields(run)):  # every line of the build names the run
        with log_fields.phase("resolve"):  # the signing key and the payload passphrase
            if passphrase_file is not None:
                register_secret(read_passphrase_file(passphrase_file))  # never logged, whoever quotes it
            signer = signer_for(home, key or run.key_name, passphrase_file)
            encrypt = None
            if encrypt_passphrase_file is not None:
                encrypt = read_passphrase_file(encrypt_passphrase_file).decode("utf-8", "strict")
                register_secret(encrypt)
        engine = RunEngine(store, max_active_per_tenant=max_active_runs())
        timeline.record_export_requested(store, run)
        try:
            done = engine.execute(run.run_id, bundle_builder(store, signer, passphrase=encrypt), observer)
        except Exception:
            timeline.record_export_failed(store, run.run_id)
            raise
        attest_run(store, done, signer)
        sealed = seal_run_evidence(store, done, signer)
        from services.retention import stamp_expiry

        stamp_expiry(store, done.tenant)  # its bundle's expires_at, from the profile's retention policy
        timeline.record_export_built(store, done, evidence_digests=[sealed] if sealed else [])
        return done


def attest_run(store: Store, run: ExportRun, signer: Signer) -> None:
    """Write the in-toto Release attestation beside a succeeded run's bundle (``BUNDLE.intoto.jsonl``).

    The run has succeeded whatever happens here: a failure to write it is the run's ``attestation-failed`` event.
    """
    from services.export_attest import attest_bundle

    try:
        attest_bundle(run, signer)
    except StellaError as exc:
        with store.transaction() as cur:
            write_event(cur, run, "attestation-failed", detail={"error_code": exc.code, "message": exc.diagnostics()})


def seal_run_evidence(store: Store, run: ExportRun, signer: Signer) -> str | None:
    """Seal a succeeded run's manifest, provenance, signatures and distribution transcripts into the evidence locker
    with the key that signed the run, in the run's tenant; returns the sealed bundle's digest.

    The run has succeeded whatever happens here: a seal that is refused (the tenant's evidence quota) or fails (an
    unreachable TSA) is recorded as the run's ``evidence-failed`` event, with the error, and the run stays as built.
    """
    from services.evidence import seal_export_run

    try:
        bundle = seal_export_run(store, run, signer)
    except StellaError as exc:
        with store.transaction() as cur:
            write_event(cur, run, "evidence-failed", detail={"error_code": exc.code, "message": exc.diagnostics()})
        return None
    with store.transaction() as cur:
        write_event(cur, run, "evidence-sealed", detail={"evidenceId": bundle.evidence_id, "digest": bundle.digest})
    return bundle.digest


def plan_export(
    store: Store,
    tenant: str,
    profile_ref: str,
    selectors: Selectors,
    *,
    requested: dict[str, Any],
    key: str | None,
    out: Path,
    allow_empty: bool = False,
) -> ExportRun:
    """Plan a run of profile ``profile_ref`` (ID or ID@REVISION) over ``selectors``, pinning its inputs.

    ``requested`` are the run options the user asked for (``None`` or empty: not given); the profile's adapter
    accepts or refuses them (:func:`adapters.profiles.registry.run_options`). A selection that matches nothing
    is refused (exit 3) unless ``allow_empty``.
    """
    name, revision = parse_profile_ref(profile_ref)
    profile = ProfileStore(store).get(tenant, name, revision)
    options = run_options(profile.config, requested, store)
    narrowing = getattr(get_profile(profile.config.kind, profile.config.variant), "narrow_inputs", None)
    return plan_run(
        store,
        tenant,
        profile,
        selectors,
        key_name=key,
        out_path=out,
        options=options,
        allow_empty=allow_empty,
        narrow=narrowing(options, store) if narrowing is not None else None,
    )


def _requested_options(request: ExportRequest) -> dict[str, Any]:
    """The run options of ``request``, as :func:`plan_export` takes them."""
    recipients = read_recipients(request.recipients, request.recipients_file)
    if recipients and request.encrypt_passphrase_file:
        raise UsageError(
            "--encrypt-passphrase-file cannot be combined with recipients", hint="age allows one or the other"
        )
    return {
        "encryptionRecipients": recipients,
        "base": request.base,
        "trivySchema": request.trivy_schema,
        "providers": list(request.providers),
    }


def _request_out(home: Home, request: ExportRequest) -> Path:
    """The output of ``request``: the path given (its directory must exist unless ``mkdir``), or the default."""
    if request.out is not None:
        return output_path(request.out, mkdir=request.mkdir)
    name, _ = parse_profile_ref(request.profile)
    return default_out(home, name).resolve()


def dry_run_export(home: Home, request: ExportRequest, *, first: int = PLAN_FIRST) -> ExportPlan:
    """`stella export run --dry-run`: what the run would include and where it would go; nothing is written.

    Checks what planning checks (tenant, profile, selectors, run options, signing key, output), then lists the
    inputs the run would pin now. ``--mkdir`` is not acted on: a missing directory is only reported.
    """
    tenant = validate_tenant(request.tenant)
    selectors = check_selectors(request.selectors)
    requested = _requested_options(request)
    out = request.out.expanduser().resolve() if request.out is not None else None
    if out is not None and not request.mkdir and not out.parent.is_dir():
        output_path(out)  # raises, naming the missing directory
    with Store.open(home, read_only=True) as store:
        name, revision = parse_profile_ref(request.profile)
        profile = ProfileStore(store).get(tenant, name, revision)
        options = run_options(profile.config, requested, store)
        target = out if out is not None else default_out(home, name).resolve()
        key, target = check_plan(store, tenant, profile, selectors, key_name=request.key, out_path=target)
        preview = preview_selection(store, tenant, profile, selectors, limit=first)
    base = options.get("base")
    return ExportPlan(
        tenant,
        profile,
        selectors,
        preview.counts,
        preview.first,
        key=key,
        out=target,
        base=base if isinstance(base, dict) else None,
    )


def run_export(
    home: Home,
    request: ExportRequest,
    *,
    observer: Observer | None = None,
    on_planned: Callable[[ExportRun], None] | None = None,
    trace_file: Path | None = None,
) -> ExportRun:
    """`stella export run`: plan a run, then build its signed bundle; returns the succeeded run.

    ``on_planned`` hears the run once it is planned, before the build starts. The run's spans are written to
    ``trace_file`` (or the home's tracing setting) as OTLP JSON; while the tenant has an incident open, always.
    """
    tenant = validate_tenant(request.tenant)
    max_active_runs()  # a bad setting is refused before anything is planned
    selectors = check_selectors(request.selectors)
    requested = _requested_options(request)
    out = _request_out(home, request)
    with Store.open(home) as store, traced_run(home, store, tenant, trace_file) as tracer:
        with log_fields.bound(tenant=tenant), log_fields.phase("plan", span="export.plan"):
            run = plan_export(
                store,
                tenant,
                request.profile,
                selectors,
                requested=requested,
                key=request.key,
                out=out,
                allow_empty=request.allow_empty,
            )
            log_fields.bind_run(run)  # the plan's last line names the run it planned
        if tracer is not None:
            tracer.bind(run)
        if on_planned is not None:
            on_planned(run)
        return build_run(
            store,
            home,
            run,
            key=request.key,
            passphrase_file=request.passphrase_file,
            encrypt_passphrase_file=request.encrypt_passphrase_file,
            observer=observer,
        )


def traced_run(
    home: Home, store: Store, tenant: str, trace_file: Path | None, name: str = "export.run"
) -> AbstractContextManager[Tracer | None]:
    """:func:`services.tracing.traced` for a run of ``tenant``: spans to ``trace_file`` or the home's setting, and
    always (with debug logs) while the tenant has an incident open."""
    from services.incident import incident_open
    from services.tracing import trace_file_for

    incident = incident_open(store, tenant)
    return traced(home, name, trace_file=trace_file_for(home, trace_file), incident=incident)


def retry_export(
    home: Home,
    run_id: str,
    *,
    out: Path | None = None,
    key: str | None = None,
    passphrase_file: Path | None = None,
    encrypt_passphrase_file: Path | None = None,
    mkdir: bool = False,
    observer: Observer | None = None,
    trace_file: Path | None = None,
) -> ExportRun:
    """`stella export retry`: a new run with the same parameters and inputs, built to the same bytes.

    ``run_id`` may be a unique prefix. A succeeded run whose bundle was deleted is rebuilt where it was; one whose
    bundle is still there needs ``out``. Spans as :func:`run_export` writes them.
    """
    target = output_path(out, mkdir=mkdir) if out is not None else None
    with Store.open(home) as store:
        engine = RunEngine(store)
        original = engine.get_run(engine.resolve_run_id(run_id))
        with traced_run(home, store, original.tenant, trace_file) as tracer:
            with log_fields.bound(tenant=original.tenant), log_fields.phase("plan", span="export.plan"):
                new = engine.get_run(engine.retry(original.run_id, out_path=target))
                log_fields.bind_run(new)
            if tracer is not None:
                tracer.bind(new)
            return build_run(
                store,
                home,
                new,
                key=key,
                passphrase_file=passphrase_file,
                encrypt_passphrase_file=encrypt_passphrase_file,
                observer=observer,
            )


def list_runs(home: Home, tenant: str, *, limit: int = 20) -> list[ExportRun]:
    """`stella export runs`: the tenant's latest runs, newest first."""
    tenant = validate_tenant(tenant)
    with Store.open(home, read_only=True) as store:
        return RunEngine(store).list_runs(tenant, limit=limit)


@dataclass(frozen=True)
class RunDetail:
    """One run with its events and distributions (`stella export show`)."""

    run: ExportRun
    events: list[RunEvent]
    distributions: list[Distribution]
    schedule: dict[str, Any] | None = None  # the schedule firing that started the run (services/schedule.py)

    def to_dict(self) -> dict[str, Any]:
        return self.run.to_dict() | {
            "events": [e.to_dict() for e in self.events],
            "distributions": [d.to_dict() for d in self.distributions],
            "schedule": self.schedule,
        }


def show_run(home: Home, run_id: str) -> RunDetail:
    """`stella export show`: one run (by id or a unique prefix), its events and where its bundle was handed."""
    with Store.open(home, read_only=True) as store:
        engine = RunEngine(store)
        run_id = engine.resolve_run_id(run_id)
        run = engine.get_run(run_id)
        from services.schedule import run_origin

        origin = run_origin(store, run.tenant, run_id)
        return RunDetail(run, engine.events(run_id), engine.distributions(run_id), origin)


@dataclass(frozen=True)
class CancelOutcome:
    """What cancelling did: the run aborted through the store, or a cancel request left for the running process."""

    run_id: str
    run: ExportRun | None = None
    request: Path | None = None

    @property
    def text(self) -> str:
        if self.run is not None:
            return f"run {self.run.run_id} is {self.run.state}"
        return f"asked run {self.run_id} to stop"

    def to_dict(self) -> dict[str, Any]:
        if self.run is not None:
            return self.run.to_dict()
        return {"runId": self.run_id, "cancelRequested": str(self.request)}


def cancel_export(home: Home, run_id: str, *, store_in_use: bool = False) -> CancelOutcome:
    """`stella export cancel`: abort a pending or running run.

    Through the store when it is free; when a process holds it (the one building the run), or ``store_in_use``
    says this process does, a cancel request that the running engine sees at its next unit of work.
    """
    if not store_in_use:
        try:
            with Store.open(home) as store:
                engine = RunEngine(store)
                run_id = engine.resolve_run_id(run_id)  # a unique prefix, as `export show` takes
                return CancelOutcome(run_id, run=engine.cancel_run(run_id))
        except StoreLockedError:
            pass
    return CancelOutcome(run_id, request=request_cancel(home, run_id))


def download_run(
    home: Home,
    run_id: str,
    to: Path,
    *,
    observer: Observer | None = None,
    passphrase_file: Path | None = None,
    trace_file: Path | None = None,
) -> Distribution:
    """`stella export download`: copy a run's bundle to ``to`` (resumes a partial copy, checks the digest); the copy
    is the run's ``export.distribute`` span (in ``trace_file``), in the run's trace.

    When the bundle has an attestation, the copy gets its own Release statement, signed with the run's key
    (unlocked with ``passphrase_file`` when it is encrypted), in ``COPY.intoto.jsonl`` and the bundle's file.
    """
    from services.export_attest import attest_distribution, distribution_signer

    with Store.open(home) as store:
        engine = RunEngine(store)
        run_id = engine.resolve_run_id(run_id)
        run = engine.get_run(run_id)
        signer = distribution_signer(home, run, passphrase_file)
        with traced_run(home, store, run.tenant, trace_file, "export.download") as tracer:
            log_fields.bind_run(run)
            if tracer is not None:
                tracer.bind(run)
            with log_fields.phase("distribute", span="export.distribute"):
                dist = engine.download(run_id, to, observer=observer)
        if signer is not None:
            attest_distribution(run, dist, signer)
        timeline.record_export_distributed(store, run_id, dist)
        return dist


def run_events(home: Home, run_id: str) -> tuple[ExportRun, list[RunEvent]]:
    """A run and its events, oldest first."""
    with Store.open(home, read_only=True) as store:
        engine = RunEngine(store)
        return engine.get_run(run_id), engine.events(run_id)


@dataclass(frozen=True)
class BuiltBundleCheck:
    """A new bundle verified as `stella verify --key SIGNER.pub` would, with a summary of its provenance."""

    report: VerifyReport
    provenance: str


def verify_built(home: Home, run: ExportRun, *, observer: Observer | None = None) -> BuiltBundleCheck:
    """Verify a succeeded run's bundle against its own signing key; ``observer`` hears each check."""
    if run.artifact_path is None:
        raise UsageError(f"run {run.run_id} is {run.state}; it has no bundle to verify")
    report = verify_bundle(run.artifact_path, [signer_trusted_key(home, run.key_name)], observer=observer)
    return BuiltBundleCheck(report, provenance_summary(run.artifact_path) if report.ok else "")


def bundle_counts(run: ExportRun) -> dict[str, int]:
    """The ``counts`` a succeeded run's bundle records in its manifest (what it ships); empty when unreadable.

    For a delta they differ from the run's pinned inputs, which are the whole resulting state: ``added`` and
    ``removed`` are what the delta ships, ``documents`` the state the receiver ends up with.
    """
    if run.artifact_path is None:
        return {}
    try:
        with SafeArchiveReader(run.artifact_path, ReaderLimits()) as reader:
            for member in reader:
                if member.name != MANIFEST:
                    break  # the manifest is the first entry of every bundle
                with member.stream() as src:
                    counts = orjson.loads(src.read()).get("counts")
                return (
                    {str(k): int(v) for k, v in counts.items() if isinstance(v, int)}
                    if isinstance(counts, dict)
                    else {}
                )
    except (StellaError, OSError, ValueError):
        pass
    return {}


def shipped_text(run: ExportRun) -> str:
    """What a run's bundle ships, in words: ``12 input documents``, or for a delta ``3 added and 1 removed documents
    (the resulting state: 120 documents)``."""
    counts = bundle_counts(run) if run.options.get("base") else {}  # a delta pins its base
    if "added" in counts and "removed" in counts:
        return (
            f"{counts['added']} added and {counts['removed']} removed document{_s(counts['removed'])}"
            f" (the resulting state: {counts.get('documents', run.input_count)} documents)"
        )
    return f"{run.input_count} input document{_s(run.input_count)}"


def _s(n: int) -> str:
    return "" if n == 1 else "s"


def provenance_summary(bundle: Path) -> str:
    """A few lines about the bundle's provenance.json (in-toto statement, SLSA predicate)."""
    with SafeArchiveReader(bundle, ReaderLimits()) as reader:
        for member in reader:
            if member.name == PROVENANCE:
                with member.stream() as src:
                    statement = orjson.loads(src.read())
                break
        else:
            return "no provenance.json in the bundle"
    predicate = statement.get("predicate") or {}
    build = predicate.get("buildDefinition") or {}
    builder = (predicate.get("runDetails") or {}).get("builder") or {}
    return (
        f"provenance: {statement.get('_type')}\n"
        f"  predicate {statement.get('predicateType')}, buildType {build.get('buildType')}\n"
        f"  {len(statement.get('subject') or [])} subjects, "
        f"{len(build.get('resolvedDependencies') or [])} resolved dependencies, builder {builder.get('id')}"
    )
