"""`stella retention set|clear|show|list|prune`: how long bundles and distribution records are kept."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from app.output import escape, print_json, stdout, table
from core.clock import parse_at, rfc3339
from core.durations import human_duration, parse_duration
from core.home import resolve_home
from core.tenants import DEFAULT_TENANT
from services import retention
from services.distribute import Access
from services.distribute_prune import RemoteCopies
from services.distribute_s3 import S3Options


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``retention`` command and its actions to the top-level subparsers."""
    p = sub.add_parser(
        "retention", parents=[common], help="how long bundles and distribution records are kept; prune expired ones"
    )
    rsub = p.add_subparsers(dest="retention_command", metavar="ACTION", required=True)
    tenant = argparse.ArgumentParser(add_help=False)
    tenant.add_argument("--tenant", default=DEFAULT_TENANT, help="whose bundles (default: %(default)s)")

    st = rsub.add_parser("set", parents=[common, tenant], help="keep a profile's bundles for a duration")
    st.add_argument("profile", metavar="PROFILE")
    st.add_argument("--keep", required=True, metavar="DURATION", help="e.g. 30d, 12h, 2w, P30D")
    st.set_defaults(handler=run_set)

    cl = rsub.add_parser("clear", parents=[common, tenant], help="keep a profile's later bundles for ever")
    cl.add_argument("profile", metavar="PROFILE")
    cl.set_defaults(handler=run_clear)

    sh = rsub.add_parser("show", parents=[common, tenant], help="the retention policies, by profile")
    sh.set_defaults(handler=run_show)

    ls = rsub.add_parser("list", parents=[common, tenant], help="succeeded runs with when their bundles expire")
    ls.set_defaults(handler=run_list)

    pr = rsub.add_parser(
        "prune",
        parents=[common, tenant],
        help="remove expired bundles (from the home's exports directory) and distribution records",
        description="Never touches a run whose evidence is under a legal hold (it says which case holds it). Each "
        "run it removed something of gets a retention-pruned event.",
    )
    pr.add_argument("--dry-run", action="store_true", help="say what would go; change nothing")
    pr.add_argument("--at", metavar="TIME", help="prune what has expired at TIME (RFC 3339) instead of now")
    remote = pr.add_argument_group(
        "copies in registries and buckets (deleted where the target allows it; as for stella distribute)"
    )
    creds = remote.add_mutually_exclusive_group()
    creds.add_argument("--registry-config", type=Path, metavar="FILE", help="docker config.json for the registry")
    creds.add_argument(
        "--credentials-file", type=Path, metavar="FILE", help="USER:PASSWORD for a registry; an AWS credentials file"
    )
    remote.add_argument("--ca-file", type=Path, metavar="FILE", help="CA certificates (PEM) for the targets")
    remote.add_argument("--plain-http", action="store_true", help="HTTP to a registry on this machine only")
    remote.add_argument("--endpoint-url", metavar="URL", help="the S3-compatible store of s3:// copies")
    remote.add_argument("--path-style", action="store_true", help="path-style S3 addressing")
    pr.set_defaults(handler=run_prune)


def run_set(args: argparse.Namespace) -> int:
    """``stella retention set PROFILE --keep DURATION``."""
    policy = retention.set_policy(
        resolve_home(args.home), args.tenant, args.profile, parse_duration(args.keep, "--keep")
    )
    if args.json:
        print_json(policy.to_dict())
    else:
        stdout.print(f"bundles of {escape(policy.profile_id)} are kept {human_duration(policy.keep)} after their run")
    return 0


def run_clear(args: argparse.Namespace) -> int:
    """``stella retention clear PROFILE``."""
    retention.clear_policy(resolve_home(args.home), args.tenant, args.profile)
    if args.json:
        print_json({"profile": args.profile, "cleared": True})
    else:
        stdout.print(f"{escape(args.profile)}: later bundles are kept until removed by hand")
    return 0


def run_show(args: argparse.Namespace) -> int:
    """``stella retention show``."""
    policies = retention.list_policies(resolve_home(args.home), args.tenant)
    if args.json:
        print_json({"tenant": args.tenant, "policies": [p.to_dict() for p in policies]})
        return 0
    if not policies:
        stdout.print(f"no retention policies for tenant {escape(args.tenant)}: bundles are kept until removed")
        return 0
    table(
        ["profile", "keep", "set by", "at"],
        [[p.profile_id, human_duration(p.keep), p.updated_by, rfc3339(p.updated_at)] for p in policies],
    )
    return 0


def run_list(args: argparse.Namespace) -> int:
    """``stella retention list``."""
    rows = retention.list_expiry(resolve_home(args.home), args.tenant)
    if args.json:
        print_json({"tenant": args.tenant, "runs": [r.to_dict() for r in rows]})
        return 0
    if not rows:
        stdout.print(f"no succeeded runs for tenant {escape(args.tenant)}")
        return 0
    table(
        ["run", "profile", "finished", "expires", "held by"],
        [
            [
                r.run_id,
                r.profile_id,
                rfc3339(r.finished_at),
                "never" if r.expires_at is None else rfc3339(r.expires_at),
                ", ".join(r.held_by) or "-",
            ]
            for r in rows
        ],
    )
    return 0


def run_prune(args: argparse.Namespace) -> int:
    """``stella retention prune [--dry-run]``."""
    at = parse_at(args.at)
    copies = RemoteCopies(
        Access(
            registry_config=args.registry_config,
            credentials_file=args.credentials_file,
            plain_http=args.plain_http,
            ca_file=args.ca_file,
        ),
        S3Options(
            endpoint_url=args.endpoint_url,
            path_style=args.path_style,
            ca_file=args.ca_file,
            credentials_file=args.credentials_file,
        ),
        **({} if at is None else {"now": at}),
    )
    report = retention.prune(resolve_home(args.home), args.tenant, dry_run=args.dry_run, now=at, copies=copies)
    if args.json:
        print_json(report.to_dict())
        return 0
    verb = "would remove" if report.dry_run else "removed"
    for r in report.removed:
        parts = []
        if r.bundle is not None:
            parts.append(f"bundle {r.bundle}")
        if r.distributions:
            parts.append(f"{len(r.distributions)} distribution record(s)")
        kept = f"; bundle kept: {r.kept}" if r.kept else ""
        stdout.print(
            f"{verb} {' and '.join(parts)} of run {r.run_id} (expired {rfc3339(r.expires_at)}){kept}", markup=False
        )
        for target in r.copies_deleted:
            stdout.print(f"  {'would delete' if report.dry_run else 'deleted'} the copy at {target}", markup=False)
        _kept_copies(r)
    for r in report.kept:
        if r.kept:
            stdout.print(f"kept run {r.run_id} (expired {rfc3339(r.expires_at)}): {r.kept}", markup=False)
        _kept_copies(r)
    stdout.print(
        f"{verb} {report.bundles_removed} bundle(s) and {report.distributions_removed} distribution record(s);"
        f" kept {len(report.kept)} expired run(s)"
        f" and {sum(len(r.copies_kept) for r in report.removed + report.kept)} expired copy(ies) elsewhere",
        markup=False,
    )
    return 0


def _kept_copies(r: retention.Removal) -> None:
    for _, target, why in r.copies_kept:
        stdout.print(f"kept the copy at {target} of run {r.run_id}: {why}", markup=False)
