"""`stella evidence ...`: the evidence locker (sealed snapshots, holds, retention, custody, verification)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from app.output import escape, print_json, stderr, stdout, table
from core.clock import rfc3339
from core.durations import parse_duration
from core.evidence_store import EvidenceBundle
from core.home import resolve_home
from core.tenants import DEFAULT_TENANT
from services import evidence as locker


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``evidence`` command and its actions to the top-level subparsers."""
    p = sub.add_parser(
        "evidence",
        parents=[common],
        help="the evidence locker: sealed snapshots, holds, retention, custody",
        description="Seal export runs, policy evaluations and jobs into signed, Merkle-rooted, timestamped evidence "
        "bundles; hold them for a case, keep them for a retention period, and record every access. Exit codes: "
        "0 done, 2 usage, 3 bad input or unknown id, 4 integrity, 5 signature, 6 trust, 7 refused (hold, "
        "retention, quota), 8 environment.",
    )
    tenant = argparse.ArgumentParser(add_help=False)
    tenant.add_argument("--tenant", default=DEFAULT_TENANT, help=f"the tenant (default: {DEFAULT_TENANT})")
    key = argparse.ArgumentParser(add_help=False)
    key.add_argument("--key", required=True, metavar="NAME", help="signing key of the home (stella keys list)")
    key.add_argument("--passphrase-file", type=Path, metavar="FILE", help="passphrase of an encrypted key")
    esub = p.add_subparsers(dest="evidence_command", metavar="ACTION", required=True)

    snap = esub.add_parser("snapshot", parents=[common], help="seal a snapshot into the locker")
    ssub = snap.add_subparsers(dest="snapshot_kind", metavar="KIND", required=True)
    helps = {
        locker.KIND_RUN: ("RUN", "an export run: parameters, inputs, manifest, provenance, signatures, transcripts"),
        locker.KIND_POLICY: ("ID", "a policy evaluation: snapshot, findings, inputs hash (policy id or digest)"),
        locker.KIND_JOB: ("RUN", "a job: a run's inputs, outputs and environment digests"),
    }
    for kind in locker.iter_kinds():
        metavar, text = helps[kind]
        s = ssub.add_parser(kind, parents=[common, tenant, key], help=text)
        s.add_argument("ref", metavar=metavar)
        s.add_argument(
            "--redaction",
            choices=locker.REDACTION_PROFILES,
            default=locker.DEFAULT_REDACTION,
            help="standard: allowlisted fields only (no local paths or host names); none: everything",
        )
        s.add_argument("--reason", default="", help="why (recorded in the chain of custody)")
        s.set_defaults(handler=run_snapshot, snapshot_kind=kind)

    lst = esub.add_parser("list", parents=[common, tenant], help="the tenant's evidence bundles")
    lst.set_defaults(handler=run_list)

    show = esub.add_parser("show", parents=[common, tenant], help="one bundle: artifacts, holds (recorded as access)")
    show.add_argument("evidence_id", metavar="ID")
    show.set_defaults(handler=run_show)

    ver = esub.add_parser(
        "verify",
        parents=[common, tenant],
        help="verify a sealed evidence bundle offline, check by check",
        description="Verify a sealed evidence .tgz: checksums, manifest signature, Merkle root, every inclusion "
        "proof, the consistency proof of a re-seal, the custody chain and its signed head, the RFC 3161 timestamp. "
        "Exit codes: 0 verified, 3 bad input, 4 integrity, 5 signature, 6 trust (timestamp).",
    )
    ver.add_argument("file", type=Path, metavar="FILE")
    ver.add_argument("--key", type=Path, action="append", metavar="PUB", help="trusted signer public key (PEM)")
    ver.add_argument("--tsa-cert", type=Path, action="append", metavar="PEM", help="trusted TSA certificate")
    ver.set_defaults(handler=run_verify)

    exp = esub.add_parser("export", parents=[common, tenant], help="write a sealed bundle to FILE.tgz")
    exp.add_argument("evidence_id", metavar="ID")
    exp.add_argument("--out", type=Path, required=True, metavar="FILE.tgz")
    exp.add_argument("--to", dest="recipient", metavar="WHO", help="record the export as a transfer to WHO")
    exp.add_argument("--reason", default="", help="why (recorded in the chain of custody)")
    exp.set_defaults(handler=run_export)

    rm = esub.add_parser("delete", parents=[common, tenant], help="delete a bundle (refused under hold or retention)")
    rm.add_argument("evidence_id", metavar="ID")
    rm.add_argument("--reason", default="", help="why (recorded in the chain of custody)")
    rm.set_defaults(handler=run_delete)

    hold = esub.add_parser("hold", parents=[common, tenant], help="place a legal hold (no expiry) on a bundle")
    hold.add_argument("case", metavar="CASE")
    hold.add_argument("--bundle", required=True, metavar="ID")
    hold.add_argument("--reason", required=True)
    hold.set_defaults(handler=run_hold)

    rel = esub.add_parser("release", parents=[common, tenant], help="release a case's legal hold on a bundle")
    rel.add_argument("case", metavar="CASE")
    rel.add_argument("--bundle", required=True, metavar="ID")
    rel.add_argument("--reason", default="")
    rel.set_defaults(handler=run_release)

    ret = esub.add_parser("retain", parents=[common, tenant], help="lengthen a bundle's retention (never shorten)")
    ret.add_argument("evidence_id", metavar="ID")
    ret.add_argument("--until", required=True, metavar="DATE", help="a date (2027-12-31) or an RFC 3339 time")
    ret.set_defaults(handler=run_retain)

    pr = esub.add_parser("prune", parents=[common, tenant], help="remove bundles whose retention ended (never held)")
    pr.add_argument("--dry-run", action="store_true", help="say what would be removed and kept; change nothing")
    pr.set_defaults(handler=run_prune)

    rs = esub.add_parser("reseal", parents=[common, tenant, key], help="re-seal a bundle, linked to its earlier root")
    rs.add_argument("evidence_id", metavar="ID")
    rs.add_argument("--reason", default="")
    rs.set_defaults(handler=run_reseal)

    tsa = esub.add_parser("tsa", parents=[common], help="the RFC 3161 time-stamping authority of the home")
    tsub = tsa.add_subparsers(dest="tsa_command", metavar="ACTION", required=True)
    tset = tsub.add_parser("set", parents=[common], help="timestamp every new seal at URL")
    tset.add_argument("url", metavar="URL")
    tset.add_argument("--ca-file", type=Path, metavar="PEM", help="CA certificates for an https URL")
    tset.set_defaults(handler=run_tsa_set)
    tsub.add_parser("show", parents=[common], help="the configured TSA").set_defaults(handler=run_tsa_show)
    tsub.add_parser("unset", parents=[common], help="stop timestamping").set_defaults(handler=run_tsa_unset)

    ts = esub.add_parser(
        "timestamp",
        parents=[common, tenant],
        help="attach an RFC 3161 token made elsewhere, or write the bytes to stamp",
        description="With --token FILE attach a TSA reply (or bare token) over the bundle's manifest signature. "
        "With --signature-out FILE write those signature bytes, for `openssl ts -query -data FILE` on a machine "
        "that can reach a TSA.",
    )
    ts.add_argument("evidence_id", metavar="ID")
    what = ts.add_mutually_exclusive_group(required=True)
    what.add_argument("--token", type=Path, metavar="FILE")
    what.add_argument("--signature-out", type=Path, metavar="FILE")
    ts.set_defaults(handler=run_timestamp)

    cu = esub.add_parser(
        "custody",
        parents=[common, tenant],
        help="the chain of custody, verified (a removed or reordered event: exit 4)",
    )
    cu.set_defaults(handler=run_custody)

    st = esub.add_parser("settings", parents=[common, tenant], help="the tenant's quota and retention")
    st.add_argument("--quota", metavar="SIZE", help="size quota (500M, 2G, bytes) or 'none'")
    st.add_argument("--retention", metavar="DURATION", help="retention of new evidence (90d, 2w, 0 for none)")
    st.set_defaults(handler=run_settings)


def _home(args: argparse.Namespace) -> Any:
    return resolve_home(args.home)


def _summary(bundle: EvidenceBundle) -> str:
    stamp = ", timestamped" if bundle.timestamped else ""
    return (
        f"{bundle.kind} {escape(bundle.subject)}, {bundle.tree_size} artifacts, {bundle.size} bytes{stamp},"
        f" retained until {rfc3339(bundle.retention_until)}"
    )


def run_snapshot(args: argparse.Namespace) -> int:
    bundle = locker.snapshot(
        _home(args),
        locker.SnapshotRequest(
            tenant=args.tenant,
            kind=args.snapshot_kind,
            ref=args.ref,
            key=args.key,
            passphrase_file=args.passphrase_file,
            redaction=args.redaction,
            reason=args.reason,
        ),
    )
    if args.json:
        print_json(bundle.to_dict())
    else:
        stdout.print(f"sealed [bold]{bundle.evidence_id}[/]: {_summary(bundle)}")
        stdout.print(f"  digest {bundle.digest}, Merkle root {bundle.root_hash}", markup=False)
    return 0


def run_list(args: argparse.Namespace) -> int:
    rows = locker.list_evidence(_home(args), args.tenant)
    if args.json:
        print_json(
            {
                "tenant": args.tenant,
                "evidence": [b.to_dict() | {"holds": sorted({h.case_id for h in holds})} for b, holds in rows],
            }
        )
        return 0
    if not rows:
        stdout.print(f"no evidence in tenant {escape(args.tenant)}; seal some with `stella evidence snapshot`")
        return 0
    table(
        ["id", "kind", "subject", "created", "size", "retained until", "held by"],
        [
            [
                b.evidence_id,
                b.kind,
                b.subject,
                rfc3339(b.created_at),
                str(b.size),
                rfc3339(b.retention_until),
                ", ".join(sorted({h.case_id for h in holds})) or "-",
            ]
            for b, holds in rows
        ],
    )
    return 0


def run_show(args: argparse.Namespace) -> int:
    detail = locker.show_evidence(_home(args), args.tenant, args.evidence_id)
    if args.json:
        print_json(detail.to_dict())
        return 0
    b = detail.bundle
    lines = [
        f"evidence   {b.evidence_id}",
        f"tenant     {escape(b.tenant)}",
        f"kind       {b.kind} {escape(b.subject)}",
        f"created    {rfc3339(b.created_at)} by {escape(b.created_by)}",
        f"digest     {b.digest} ({b.size} bytes)",
        f"root       {b.root_hash} ({b.tree_size} leaves)",
        f"key        {b.key_id}",
        f"timestamp  {'RFC 3161 token attached' if b.timestamped else 'none'}",
        f"redaction  {b.redaction_profile}",
        f"retained   until {rfc3339(b.retention_until)}",
    ]
    if b.previous_id:
        lines.append(f"re-seal of {b.previous_id}")
    for line in lines:
        stdout.print(line, markup=False)
    active = [h for h in detail.holds if h.active]
    stdout.print(
        "holds      " + ("; ".join(f"case {h.case_id} ({h.reason})" for h in active) if active else "none"),
        markup=False,
    )
    for a in detail.artifacts:
        stdout.print(f"  {a.leaf_index:>3} {a.sha256[:16]} {a.size:>9} {escape(a.path)}", markup=False)
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from app.commands.verify import CheckPrinter

    report = locker.verify_evidence_file(
        _home(args),
        args.tenant,
        args.file,
        tuple(args.key or ()),
        tuple(args.tsa_cert or ()),
        CheckPrinter(args),
    )
    if args.json:
        print_json(report.to_dict())
    error = report.error
    if error is not None:
        if not args.json:
            stderr.print(f"[bold red]not verified:[/] {escape(error.diagnostics())}")
        return int(error.exit_code)
    if not args.json:
        stdout.print(f"[bold green]verified[/] {escape(str(args.file))}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    bundle, target = locker.export_evidence(
        _home(args), args.tenant, args.evidence_id, args.out, recipient=args.recipient, why=args.reason
    )
    if args.json:
        print_json({"id": bundle.evidence_id, "digest": bundle.digest, "size": bundle.size, "out": str(target)})
    else:
        stdout.print(f"wrote {escape(str(target))} ({bundle.digest})")
    return 0


def run_delete(args: argparse.Namespace) -> int:
    bundle = locker.delete_evidence(_home(args), args.tenant, args.evidence_id, why=args.reason)
    if args.json:
        print_json({"deleted": bundle.evidence_id, "digest": bundle.digest})
    else:
        stdout.print(f"deleted {bundle.evidence_id} ({bundle.digest})", markup=False)
    return 0


def run_hold(args: argparse.Namespace) -> int:
    hold, new = locker.place_hold(_home(args), args.tenant, args.case, args.bundle, args.reason)
    if args.json:
        print_json(hold.to_dict() | {"new": new})
    elif new:
        stdout.print(f"held {hold.evidence_id} under case {escape(hold.case_id)} (no expiry until released)")
    else:
        stdout.print(f"{hold.evidence_id} is already held under case {escape(hold.case_id)}; nothing changed")
    return 0


def run_release(args: argparse.Namespace) -> int:
    hold = locker.release_hold(_home(args), args.tenant, args.case, args.bundle, args.reason)
    if args.json:
        print_json(hold.to_dict())
    else:
        stdout.print(f"released case {escape(hold.case_id)}'s hold on {hold.evidence_id}")
    return 0


def run_retain(args: argparse.Namespace) -> int:
    bundle, changed = locker.retain(_home(args), args.tenant, args.evidence_id, locker.parse_until(args.until))
    if args.json:
        print_json(bundle.to_dict() | {"changed": changed})
    else:
        what = "now retained" if changed else "already retained"
        stdout.print(f"{bundle.evidence_id} is {what} until {rfc3339(bundle.retention_until)}", markup=False)
    return 0


def run_prune(args: argparse.Namespace) -> int:
    outcome = locker.prune(_home(args), args.tenant, dry_run=args.dry_run)
    if args.json:
        print_json(outcome.to_dict())
        return 0
    verb = "would remove" if outcome.dry_run else "removed"
    for b in outcome.removed:
        stdout.print(f"{verb} {b.evidence_id} (retention ended {rfc3339(b.retention_until)})", markup=False)
    for b, cases in outcome.held:
        stdout.print(f"kept {b.evidence_id}: under legal hold (case {escape(', '.join(cases))})")
    for b in outcome.retained:
        stdout.print(f"kept {b.evidence_id}: retained until {rfc3339(b.retention_until)}", markup=False)
    stdout.print(
        f"{verb} {len(outcome.removed)}, kept {len(outcome.held)} held and {len(outcome.retained)} still retained",
        markup=False,
    )
    return 0


def run_reseal(args: argparse.Namespace) -> int:
    bundle = locker.reseal(_home(args), args.tenant, args.evidence_id, args.key, args.passphrase_file, why=args.reason)
    if args.json:
        print_json(bundle.to_dict())
    else:
        stdout.print(f"re-sealed {bundle.previous_id} as [bold]{bundle.evidence_id}[/]: {_summary(bundle)}")
    return 0


def run_tsa_set(args: argparse.Namespace) -> int:
    config = locker.set_tsa(_home(args), args.url, args.ca_file)
    assert config is not None
    if args.json:
        print_json(config.to_dict())
    else:
        stdout.print(f"new seals are timestamped by {escape(config.url)}")
    return 0


def run_tsa_show(args: argparse.Namespace) -> int:
    config = locker.tsa_config(_home(args))
    if args.json:
        print_json(None if config is None else config.to_dict())
    elif config is None:
        stdout.print("no TSA: seals are not timestamped (set one with `stella evidence tsa set URL`)", markup=False)
    else:
        ca = f" (CA file {config.ca_file})" if config.ca_file else ""
        stdout.print(f"TSA {escape(config.url)}{escape(ca)}")
    return 0


def run_tsa_unset(args: argparse.Namespace) -> int:
    locker.set_tsa(_home(args), None)
    if args.json:
        print_json(None)
    else:
        stdout.print("no TSA: new seals are not timestamped", markup=False)
    return 0


def run_timestamp(args: argparse.Namespace) -> int:
    home = _home(args)
    if args.signature_out is not None:
        from core.atomic import write_bytes

        data = locker.signature_bytes(home, args.tenant, args.evidence_id)
        write_bytes(args.signature_out, data, what="cannot write the signature bytes")
        if args.json:
            print_json({"id": args.evidence_id, "signatureOut": str(args.signature_out), "size": len(data)})
        else:
            stdout.print(f"wrote the manifest signature ({len(data)} bytes) to {escape(str(args.signature_out))}")
        return 0
    bundle = locker.attach_token(home, args.tenant, args.evidence_id, args.token)
    if args.json:
        print_json(bundle.to_dict())
    else:
        stdout.print(f"timestamped {bundle.evidence_id}: new digest {bundle.digest}", markup=False)
    return 0


def run_custody(args: argparse.Namespace) -> int:
    report = locker.custody_log(_home(args), args.tenant)
    if args.json:
        print_json(report.to_dict())
        return 0
    for e in report.events:
        stdout.print(
            f"{e.seq:>5} {e.at} {escape(e.action):<14} {escape(e.subject)} {escape(e.actor)}@{escape(e.where)}:"
            f" {escape(e.why)}"
        )
    stdout.print(
        f"chain verified: {len(report.events)} events, head {report.head}, {report.anchored} bundle heads in place",
        markup=False,
    )
    return 0


def run_settings(args: argparse.Namespace) -> int:
    quota: int | bool | None = False
    if args.quota is not None:
        quota = None if args.quota.strip().lower() == "none" else locker.parse_size(args.quota)
    retention = None
    if args.retention is not None:
        from datetime import timedelta

        retention = timedelta(0) if args.retention.strip() == "0" else parse_duration(args.retention, "--retention")
    settings, used = locker.evidence_settings(_home(args), args.tenant, quota=quota, retention=retention)
    if args.json:
        print_json(settings.to_dict() | {"tenant": args.tenant, "usedBytes": used})
    else:
        limit = "none" if settings.quota_bytes is None else f"{settings.quota_bytes} bytes"
        stdout.print(
            f"tenant {escape(args.tenant)}: quota {limit}, {used} bytes used;"
            f" new evidence retained {settings.retention_seconds} seconds"
        )
    return 0
