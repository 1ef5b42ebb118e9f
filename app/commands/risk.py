"""`stella risk bundle verify|import`: check a risk bundle offline (freshness policy included), then import it."""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from rich.markup import escape

from adapters.profiles.risk_bundle import parse_duration
from adapters.sources.epss import FORMATS as EPSS_FORMATS
from adapters.sources.kev import FORMATS as KEV_FORMATS
from app.commands.verify import keys_from_files, parse_at
from app.output import print_json, stderr, stdout
from core.errors import BadInputError, PolicyRefusal, StellaError, UsageError
from core.home import Home, resolve_home
from core.ingest import FileResult, Importer, ImportSummary, Outcome, detect, validate_tenant
from core.sources import Candidate
from core.store import Store
from core.trust import TrustedKey, TrustStore
from verify.bundle import Check
from verify.risk import FreshnessPolicy, RiskReport, verify_risk_bundle

#: The only formats a risk bundle's datasets may be imported as.
RISK_FORMATS = (*KEV_FORMATS, *EPSS_FORMATS)


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("risk", parents=[common], help="risk bundles (CISA KEV, FIRST EPSS): verify and import")
    rsub = p.add_subparsers(dest="risk_command", metavar="ACTION", required=True)
    b = rsub.add_parser("bundle", parents=[common], help="verify or import a risk bundle")
    bsub = b.add_subparsers(dest="risk_bundle_command", metavar="ACTION", required=True)

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

    ve = bsub.add_parser(
        "verify",
        parents=[common, checks],
        help="verify a risk bundle offline: signatures, every digest, and freshness under a policy",
        description="Exit codes: 0 verified, 3 bad input, 4 integrity, 5 signature, 6 trust metadata, "
        "7 refused by the freshness policy.",
    )
    ve.set_defaults(handler=run_verify)
    im = bsub.add_parser(
        "import",
        parents=[common, checks],
        help="verify a risk bundle (same checks), then import its KEV/EPSS datasets; all or nothing",
        description="Verifies first, exactly as `risk bundle verify`; only then imports the provider datasets "
        "(byte-for-byte the documents the sender imported) into the bundle's tenant, in one transaction.",
    )
    im.add_argument("--tenant", help="tenant to import into (must be the bundle's tenant; default: the bundle's)")
    im.set_defaults(handler=run_import)


def _keys(args: argparse.Namespace) -> list[TrustedKey]:
    return keys_from_files(args.key) if args.key else TrustStore(resolve_home(args.home)).list()


def freshness_policy(policy: str, grace: str | None = None) -> tuple[FreshnessPolicy, timedelta | None]:
    """The ``--policy`` and ``--grace`` of `stella risk bundle verify|import`, checked together."""
    chosen = FreshnessPolicy(policy)
    if grace is not None and chosen is not FreshnessPolicy.GRACE:
        raise UsageError("--grace applies only with --policy grace")
    return chosen, parse_duration(grace, "--grace") if grace is not None else None


def _verify(args: argparse.Namespace, extract_to: Path | None = None) -> RiskReport:
    policy, grace = freshness_policy(args.policy, args.grace)

    def show(check: Check) -> None:
        if args.json:
            return
        mark = "[green]  ok  [/]" if check.ok else "[bold red] FAIL [/]"
        where = f" [dim]{escape(check.path)}[/]" if check.path and not check.ok else ""
        (stdout if check.ok else stderr).print(f"{mark} {check.name:16} {escape(check.detail)}{where}")

    report = verify_risk_bundle(
        args.bundle, _keys(args), policy=policy, grace=grace, at=parse_at(args.at), on_check=show, extract_to=extract_to
    )
    if not args.json:
        for warning in report.warnings:
            stderr.print(f"[bold yellow]warning:[/] {escape(warning)}")
        if report.error is not None:
            stderr.print(f"[bold red]not verified:[/] {escape(report.error.diagnostics())}")
    return report


def run_verify(args: argparse.Namespace) -> int:
    report = _verify(args)
    if args.json:
        print_json(report.to_dict())
    if report.error is not None:
        return int(report.error.exit_code)
    if not args.json:
        providers = ", ".join(f"{p.name} ({p.status})" for p in report.providers)
        stdout.print(
            f"[bold green]verified[/] {escape(str(args.bundle))}: risk bundle run {report.manifest.get('runId')} "
            f"for tenant {report.manifest.get('tenant')}, providers {providers}, "
            f"expires {report.risk.get('expiresAt')}"
        )
    return 0


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
    bundle_tenant = str(report.manifest.get("tenant"))
    chosen = validate_tenant(tenant or bundle_tenant)
    if chosen != bundle_tenant:
        raise PolicyRefusal(
            f"the bundle belongs to tenant {bundle_tenant!r}, not {chosen!r}",
            path=str(bundle),
            hint="a risk bundle is imported into its own tenant",
        )
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
    with tempfile.TemporaryDirectory(prefix="stella-risk-import-") as work:
        report = _verify(args, extract_to=Path(work))
        if report.error is not None:
            if args.json:
                print_json({"verification": report.to_dict(), "imported": False})
            return int(report.error.exit_code)
        done = import_verified_risk(resolve_home(args.home), args.bundle, report, args.tenant)
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
