"""Receive a risk bundle (CISA KEV, FIRST EPSS): verify it under a freshness policy, then import its datasets,
all or nothing (`stella risk bundle verify|import`, the TUI's receive screen)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from adapters.sources.epss import FORMATS as EPSS_FORMATS
from adapters.sources.kev import FORMATS as KEV_FORMATS
from core.durations import parse_duration
from core.errors import BadInputError, StellaError, UsageError
from core.home import Home
from core.ingest import FileResult, Importer, ImportSummary, Outcome, detect
from core.progress import Observer
from core.sources import Candidate
from core.store import Store
from services.receive import ReceiveRequest, own_tenant, verify_then_import
from services.trust import trusted_keys
from verify.risk import FreshnessPolicy, RiskReport, verify_risk_bundle

#: The only formats a risk bundle's datasets may be imported as.
RISK_FORMATS = (*KEV_FORMATS, *EPSS_FORMATS)


def freshness_policy(policy: str, grace: str | None = None) -> tuple[FreshnessPolicy, timedelta | None]:
    """The ``--policy`` and ``--grace`` of `stella risk bundle verify|import`, checked together."""
    chosen = FreshnessPolicy(policy)
    if grace is not None and chosen is not FreshnessPolicy.GRACE:
        raise UsageError("--grace applies only with --policy grace")
    return chosen, parse_duration(grace, "--grace") if grace is not None else None


def verify_risk(
    home: Home, request: ReceiveRequest, *, observer: Observer | None = None, extract_to: Path | None = None
) -> RiskReport:
    """Verify a risk bundle (`stella risk bundle verify`): the bundle, its risk manifest and each dataset, and the
    data's freshness at ``request.at`` under ``request.policy``; with ``extract_to`` the datasets that verified
    are copied there."""
    policy, grace = freshness_policy(request.policy, request.grace)
    return verify_risk_bundle(
        request.bundle,
        trusted_keys(home, request.key_files),
        policy=policy,
        grace=grace,
        at=request.at,
        observer=observer,
        extract_to=extract_to,
    )


def _preflight(paths: list[Path]) -> None:
    """Parse every dataset as KEV or EPSS before anything is written: one bad file refuses the whole import."""
    for path in paths:
        candidate = Candidate(path=str(path), data=path.read_bytes())
        source = detect(candidate, RISK_FORMATS)
        if source is None:
            raise BadInputError("the dataset is neither a KEV catalog nor an EPSS snapshot", path=path.name)
        source.parse(candidate)


@dataclass
class RiskImport:
    """What importing a verified risk bundle stored: one row per dataset, and the import's counts."""

    tenant: str
    datasets: list[dict[str, Any]]
    summary: ImportSummary


def import_verified_risk(
    home: Home,
    bundle: Path,
    report: RiskReport,
    tenant: str | None = None,
    *,
    store_lock: AbstractContextManager[object] | None = None,
) -> RiskImport:
    """Import the datasets of a risk bundle that verified (``report`` from ``verify_risk_bundle`` with
    ``extract_to``) into its own tenant, all or nothing; ``store_lock`` is held while the store is open."""
    chosen = own_tenant(report.manifest, bundle, tenant, "a risk bundle")
    paths = [report.extracted[name] for name in sorted(report.extracted)]
    _preflight(paths)
    results: list[FileResult] = []
    with store_lock or nullcontext(), Store.open(home) as store:
        # One batch, so every dataset lands in one transaction or none does.
        importer = Importer(store, RISK_FORMATS, tenant=chosen, on_result=results.append, batch_size=len(paths) + 1)
        summary = importer.run(paths)
    rejected = [r for r in results if r.outcome is Outcome.REJECTED]
    if rejected:
        error = rejected[0].error
        raise error if isinstance(error, StellaError) else BadInputError("dataset rejected", path=rejected[0].path)
    by_name = {str(path): name for name, path in report.extracted.items()}
    datasets = [
        {
            "provider": by_name.get(r.path, "?"),
            "outcome": str(r.outcome),
            "sha256": r.sha256,
            "documentId": r.document_id,
        }
        for r in results
    ]
    return RiskImport(chosen, datasets, summary)


@dataclass
class RiskReceipt:
    """The verification of a risk bundle and, if it verified, what its import stored (None: nothing)."""

    report: RiskReport
    imported: RiskImport | None


def receive_risk(
    home: Home,
    request: ReceiveRequest,
    *,
    observer: Observer | None = None,
    on_report: Callable[[RiskReport], None] | None = None,
    store_lock: AbstractContextManager[object] | None = None,
) -> RiskReceipt:
    """Verify a risk bundle, then import its datasets into ``request.tenant`` (the bundle's own), all or nothing
    (`stella risk bundle import`). ``on_report`` hears the verification's report before anything is imported; a
    bundle that did not verify imports nothing."""

    def verify(work: Path) -> RiskReport:
        report = verify_risk(home, request, observer=observer, extract_to=work)
        if on_report is not None:
            on_report(report)
        return report

    report, imported = verify_then_import(
        verify,
        lambda report: import_verified_risk(home, request.bundle, report, request.tenant, store_lock=store_lock),
        verified=lambda report: report.error is None,
    )
    return RiskReceipt(report, imported)
