"""`stella risk bundle verify|import`: check a risk bundle offline (freshness policy included), then import it
(the workflow is :mod:`services.risk`'s)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from app.commands.verify import CheckPrinter, finish, not_imported, receive_commands, say_not_verified
from app.output import escape, print_json, stderr, stdout
from core.clock import parse_at
from core.home import resolve_home
from services.receive import RISK, ReceiveRequest
from verify.risk import FreshnessPolicy, RiskReport


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


def _request(args: argparse.Namespace, tenant: str | None = None) -> ReceiveRequest:
    return ReceiveRequest(
        args.bundle,
        key_files=tuple(args.key or ()),
        at=parse_at(args.at),
        tenant=tenant,
        policy=args.policy,
        grace=args.grace,
    )


def _verified(args: argparse.Namespace, report: RiskReport) -> None:
    """The freshness warnings and the failure of a verification, once it is done."""
    if not args.json:
        for warning in report.warnings:
            stderr.print(f"[bold yellow]warning:[/] {escape(warning)}")
    say_not_verified(args, report)


def run_verify(args: argparse.Namespace) -> int:
    report = RISK.verify(resolve_home(args.home), _request(args), CheckPrinter(args))
    _verified(args, report)
    return finish(
        args,
        report,
        said=True,
        verified=lambda: (
            f"risk bundle run {report.manifest.run_id} for tenant {report.manifest.tenant}, {report.freshness_text()}"
        ),
    )


def run_import(args: argparse.Namespace) -> int:
    receipt = RISK.receive(
        resolve_home(args.home), _request(args, args.tenant), CheckPrinter(args), on_report=lambda r: _verified(args, r)
    )
    report, done = receipt.report, receipt.imported
    if done is None:
        return not_imported(args, report, False)
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
        f"{summary.imported} new datasets, {summary.duplicates} already stored; {escape(report.freshness_text())}"
    )
    return 0
