"""`stella incident start|stop|status`: incident mode (longer retention, debug captures sealed into evidence)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from app.output import escape, print_json, stdout, table
from core.clock import rfc3339
from core.durations import parse_duration
from core.home import resolve_home
from core.tenants import DEFAULT_TENANT
from services.incident import IncidentOutcome, incidents, start_incident, stop_incident


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``incident`` command and its actions to the top-level subparsers."""
    p = sub.add_parser(
        "incident",
        parents=[common],
        help="incident mode: longer retention, debug captures, timeline events",
        description="While an incident is open every evidence bundle of the tenant is kept at least the incident's "
        "retention, and evidence sealed meanwhile too. Start and stop each seal a capture (environment, store "
        "digests, recent run logs) and emit a timeline event.",
    )
    tenant = argparse.ArgumentParser(add_help=False)
    tenant.add_argument("--tenant", default=DEFAULT_TENANT, help=f"the tenant (default: {DEFAULT_TENANT})")
    key = argparse.ArgumentParser(add_help=False)
    key.add_argument("--reason", required=True, help="why (recorded in the evidence and the chain of custody)")
    key.add_argument("--key", required=True, metavar="NAME", help="signing key that seals the capture")
    key.add_argument("--passphrase-file", type=Path, metavar="FILE", help="passphrase of an encrypted key")
    isub = p.add_subparsers(dest="incident_command", metavar="ACTION", required=True)
    start = isub.add_parser("start", parents=[common, tenant, key], help="open an incident")
    start.add_argument(
        "--retention", default="365d", metavar="DURATION", help="keep evidence at least this long (default 365d)"
    )
    start.set_defaults(handler=run_start)
    stop = isub.add_parser("stop", parents=[common, tenant, key], help="close the open incident")
    stop.set_defaults(handler=run_stop)
    status = isub.add_parser("status", parents=[common, tenant], help="the tenant's incidents")
    status.set_defaults(handler=run_status)


def _print(args: argparse.Namespace, outcome: IncidentOutcome, verb: str) -> int:
    if args.json:
        print_json(outcome.to_dict())
        return 0
    i = outcome.incident
    stdout.print(
        f"incident [bold]{i.incident_id}[/] {verb}: {escape(i.reason if verb == 'started' else i.stop_reason or '')}"
    )
    stdout.print(f"  captured into evidence {outcome.evidence.evidence_id} ({outcome.evidence.digest})", markup=False)
    if verb == "started":
        stdout.print(
            f"  evidence retained at least {i.retention_seconds // 86400} days;"
            f" {outcome.lengthened} bundles' retention lengthened",
            markup=False,
        )
    return 0


def run_start(args: argparse.Namespace) -> int:
    outcome = start_incident(
        resolve_home(args.home),
        args.tenant,
        args.reason,
        args.key,
        passphrase_file=args.passphrase_file,
        retention=parse_duration(args.retention, "--retention"),
    )
    return _print(args, outcome, "started")


def run_stop(args: argparse.Namespace) -> int:
    outcome = stop_incident(
        resolve_home(args.home), args.tenant, args.reason, args.key, passphrase_file=args.passphrase_file
    )
    return _print(args, outcome, "stopped")


def run_status(args: argparse.Namespace) -> int:
    found = incidents(resolve_home(args.home), args.tenant)
    if args.json:
        print_json({"tenant": args.tenant, "incidents": [i.to_dict() for i in found]})
        return 0
    if not found:
        stdout.print(f"no incidents in tenant {escape(args.tenant)}")
        return 0
    table(
        ["id", "state", "started", "stopped", "reason"],
        [
            [
                i.incident_id,
                "open" if i.open else "closed",
                rfc3339(i.started_at),
                "-" if i.stopped_at is None else rfc3339(i.stopped_at),
                i.reason,
            ]
            for i in found
        ],
    )
    return 0
