"""Export runs: plan and build a signed bundle, retry, cancel, download, list and show runs.

`stella export ...`, `stella devportal export` and the TUI's run and runs screens call these functions; the run
engine (:mod:`core.runs`) records every step, the profile adapters (:mod:`adapters.profiles`) write the bundle.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from adapters.profiles.builder import bundle_builder
from adapters.profiles.registry import run_options
from adapters.sources.registry import format_names
from core.archive.reader import ReaderLimits, SafeArchiveReader
from core.clock import utcnow
from core.contract.bundle import PROVENANCE
from core.errors import BadInputError, StoreLockedError, UsageError
from core.home import Home
from core.ingest import validate_tenant
from core.keys import read_passphrase_file
from core.planner import plan_run
from core.profiles import Profile, ProfileStore, parse_profile_ref
from core.progress import Observer
from core.runs import Distribution, ExportRun, RunEngine, RunEvent, request_cancel
from core.selectors import Selectors, count_inputs, parse_selectors
from core.store import Store
from services.keys import signer_for, signer_trusted_key
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


def count_export_inputs(home: Home, tenant: str, profile: Profile, selector_args: Sequence[str]) -> dict[str, int]:
    """How many documents of each record type a run of ``profile`` over these selectors would pin now."""
    selectors = check_selectors(selector_args)
    with Store.open(home, read_only=True) as store:
        return count_inputs(store, tenant, selectors, profile.config.record_types)


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
    signer = signer_for(home, key or run.key_name, passphrase_file)
    encrypt = None
    if encrypt_passphrase_file is not None:
        encrypt = read_passphrase_file(encrypt_passphrase_file).decode("utf-8", "strict")
    engine = RunEngine(store, max_active_per_tenant=max_active_runs())
    return engine.execute(run.run_id, bundle_builder(store, signer, passphrase=encrypt), observer)


def plan_export(
    store: Store,
    tenant: str,
    profile_ref: str,
    selectors: Selectors,
    *,
    requested: dict[str, Any],
    key: str | None,
    out: Path,
) -> ExportRun:
    """Plan a run of profile ``profile_ref`` (ID or ID@REVISION) over ``selectors``, pinning its inputs.

    ``requested`` are the run options the user asked for (``None`` or empty: not given); the profile's adapter
    accepts or refuses them (:func:`adapters.profiles.registry.run_options`).
    """
    name, revision = parse_profile_ref(profile_ref)
    profile = ProfileStore(store).get(tenant, name, revision)
    options = run_options(profile.config, requested, store)
    return plan_run(store, tenant, profile, selectors, key_name=key, out_path=out, options=options)


def run_export(
    home: Home,
    request: ExportRequest,
    *,
    observer: Observer | None = None,
    on_planned: Callable[[ExportRun], None] | None = None,
) -> ExportRun:
    """`stella export run`: plan a run, then build its signed bundle; returns the succeeded run.

    ``on_planned`` hears the run once it is planned, before the build starts.
    """
    tenant = validate_tenant(request.tenant)
    max_active_runs()  # a bad setting is refused before anything is planned
    name, _ = parse_profile_ref(request.profile)
    selectors = check_selectors(request.selectors)
    out = (request.out or default_out(home, name)).expanduser().resolve()
    recipients = read_recipients(request.recipients, request.recipients_file)
    requested: dict[str, Any] = {
        "encryptionRecipients": recipients,
        "base": request.base,
        "trivySchema": request.trivy_schema,
        "providers": list(request.providers),
    }
    if recipients and request.encrypt_passphrase_file:
        raise UsageError(
            "--encrypt-passphrase-file cannot be combined with recipients", hint="age allows one or the other"
        )
    with Store.open(home) as store:
        run = plan_export(store, tenant, request.profile, selectors, requested=requested, key=request.key, out=out)
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


def retry_export(
    home: Home,
    run_id: str,
    *,
    out: Path | None = None,
    key: str | None = None,
    passphrase_file: Path | None = None,
    encrypt_passphrase_file: Path | None = None,
    observer: Observer | None = None,
) -> ExportRun:
    """`stella export retry`: a new run with the same parameters and inputs, built to the same bytes."""
    with Store.open(home) as store:
        engine = RunEngine(store)
        new_id = engine.retry(run_id, out_path=out.resolve() if out else None)
        return build_run(
            store,
            home,
            engine.get_run(new_id),
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

    def to_dict(self) -> dict[str, Any]:
        return self.run.to_dict() | {
            "events": [e.to_dict() for e in self.events],
            "distributions": [d.to_dict() for d in self.distributions],
        }


def show_run(home: Home, run_id: str) -> RunDetail:
    """`stella export show`: one run, its events and where its bundle was handed."""
    with Store.open(home, read_only=True) as store:
        engine = RunEngine(store)
        return RunDetail(engine.get_run(run_id), engine.events(run_id), engine.distributions(run_id))


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
                return CancelOutcome(run_id, run=RunEngine(store).cancel_run(run_id))
        except StoreLockedError:
            pass
    return CancelOutcome(run_id, request=request_cancel(home, run_id))


def download_run(home: Home, run_id: str, to: Path, *, observer: Observer | None = None) -> Distribution:
    """`stella export download`: copy a run's bundle to ``to`` (resumes a partial copy, checks the digest)."""
    with Store.open(home) as store:
        return RunEngine(store).download(run_id, to, observer=observer)


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
