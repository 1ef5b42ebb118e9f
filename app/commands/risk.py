"""`stella risk bundle verify|import`: check a risk bundle offline (freshness policy included), then import it."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from rich.markup import escape

from adapters.profiles.risk_bundle import parse_duration
from adapters.sources.epss import FORMATS as EPSS_FORMATS
from adapters.sources.kev import FORMATS as KEV_FORMATS
from app.commands.verify import (
    check_printer,
    finish,
    own_tenant,
    parse_at,
    receive_commands,
    say_not_verified,
    trusted_keys,
    verify_and_import,
)
from app.output import print_json, stderr, stdout
from core.errors import BadInputError, StellaError, UsageError
from core.home import Home, resolve_home
from core.ingest import FileResult, Importer, ImportSummary, Outcome, detect
from core.progress import CheckObserver
from core.sources import Candidate
from core.store import Store
from verify.risk import FreshnessPolicy, RiskReport, verify_risk_bundle

#: The only formats a risk bundle's datasets may be imported as.
RISK_FORMATS = (*KEV_FORMATS, *EPSS_FORMATS)


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    checks = argparse.ArgumentParser(add_help=False)
    checks.add_argument("bundle", type=Path)
    checks.add_argument("--key", type=Path, action="append", metavar="PUB", help="trusted public key (PEM); repeatable")
    checks.add_argument(
        "--policy",
        choices=[str(p) for p in FreshnessPolicy],
        default=str(FreshnessPolicy.BLOCK),
        help="expired data: warn (accept, with a warning), block (refuse, exit 7; the default), "
        "grace (accept within --grace after expiry, then refuse)",
    )
    checks.add_argument("--grace", metavar="DURATION", help="grace window of --policy grace, e.g. 72h, 3d (default 3d)")
    checks.add_argument("--at", metavar="TIME", help="evaluate freshness at this RFC 3339 time (UTC) instead of now")
    receive_commands(
        sub,
        common,
        "risk",
        ("risk bundles (CISA KEV, FIRST EPSS): verify and import", "verify or import a risk bundle"),
        checks,
        (
            "verify a risk bundle offline: signatures, every digest, and freshness under a policy",
            "Exit codes: 0 verified, 3 bad input, 4 integrity, 5 signature, 6 trust metadata, "
            "7 refused by the freshness policy.",
            run_verify,
        ),
        (
            "verify a risk bundle (same checks), then import its KEV/EPSS datasets; all or nothing",
            "Verifies first, exactly as `risk bundle verify`; only then imports the provider datasets "
            "(byte-for-byte the documents the sender imported) into the bundle's tenant, in one transaction.",
            run_import,
        ),
    )


def freshness_policy(policy: str, grace: str | None = None) -> tuple[FreshnessPolicy, timedelta | None]:
    """The ``--policy`` and ``--grace`` of `stella risk bundle verify|import`, checked together."""
    chosen = FreshnessPolicy(policy)
    if grace is not None and chosen is not FreshnessPolicy.GRACE:
        raise UsageError("--grace applies only with --policy grace")
    return chosen, parse_duration(grace, "--grace") if grace is not None else None


def _verify(args: argparse.Namespace, extract_to: Path | None = None) -> RiskReport:
    policy, grace = freshness_policy(args.policy, args.grace)
    report = verify_risk_bundle(
        args.bundle,
        trusted_keys(args),
        policy=policy,
        grace=grace,
        at=parse_at(args.at),
        observer=CheckObserver(check_printer(args)),
        extract_to=extract_to,
    )
    if not args.json:
        for warning in report.warnings:
            stderr.print(f"[bold yellow]warning:[/] {escape(warning)}")
    say_not_verified(args, report)
    return report


def run_verify(args: argparse.Namespace) -> int:
    report = _verify(args)
    return finish(
        args,
        report,
        said=True,
        verified=lambda: (
            f"risk bundle run {report.manifest.get('runId')} for tenant {report.manifest.get('tenant')}, "
            f"providers {', '.join(f'{p.name} ({p.status})' for p in report.providers)}, "
            f"expires {report.risk.get('expiresAt')}"
        ),
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


def import_verified_risk(home: Home, bundle: Path, report: RiskReport, tenant: str | None = None) -> RiskImport:
    """Import the datasets of a risk bundle that verified (``report`` from ``verify_risk_bundle`` with
    ``extract_to``) into its own tenant, all or nothing: the import half of `stella risk bundle import`."""
    chosen = own_tenant(report, bundle, tenant, "a risk bundle")
    paths = [report.extracted[name] for name in sorted(report.extracted)]
    _preflight(paths)
    results: list[FileResult] = []
    with Store.open(home) as store:
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


def run_import(args: argparse.Namespace) -> int:
    outcome = verify_and_import(
        args,
        lambda work: _verify(args, extract_to=work),
        lambda report: import_verified_risk(resolve_home(args.home), args.bundle, report, args.tenant),
        verified=lambda report: report.error is None,
        nothing=False,
    )
    if isinstance(outcome, int):
        return outcome
    report, done = outcome
    tenant, datasets, summary = done.tenant, done.datasets, done.summary
    if args.json:
        print_json(
            {"verification": report.to_dict(), "imported": True, "tenant": tenant, "datasets": datasets}
            | {"summary": summary.to_dict()}
        )
        return 0
    for d in datasets:
        stdout.print(f"  {d['provider']:5} {d['outcome']:9} {d['documentId']}  {str(d['sha256'])[:16]}")
    stdout.print(
        f"[bold green]imported[/] risk bundle {escape(str(args.bundle))} into tenant {escape(tenant)}: "
        f"{summary.imported} new datasets, {summary.duplicates} already stored"
    )
    return 0
