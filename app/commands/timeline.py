"""`stella timeline list|show|evidence|export|notify`: what happened, in order, per tenant."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from app.output import escape, json_text, print_json, stdout, table
from core.clock import rfc3339
from core.contract.bundle import MANIFEST
from core.errors import ExitCode, UsageError
from core.home import resolve_home
from core.tenants import DEFAULT_TENANT
from core.timeline import EventFilter, TimelineEvent
from services import notify
from services.timeline import event_evidence, export_timeline, list_timeline, parse_when, show_event


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``timeline`` command and its actions to the top-level subparsers."""
    p = sub.add_parser(
        "timeline", parents=[common], help="what happened, in order: export runs, evidence, holds, incidents"
    )
    tsub = p.add_subparsers(dest="timeline_command", metavar="ACTION", required=True)
    tenant = argparse.ArgumentParser(add_help=False)
    tenant.add_argument("--tenant", default=DEFAULT_TENANT, help="whose timeline (default: %(default)s)")
    filters = argparse.ArgumentParser(add_help=False)
    filters.add_argument(
        "--type",
        action="append",
        default=[],
        metavar="TYPE",
        help="only this event type (export.built, or a prefix such as export.*); repeatable",
    )
    filters.add_argument(
        "--subject", metavar="S", help="only this subject (run:ID, evidence:ID), or a prefix ending in *"
    )
    filters.add_argument("--since", metavar="TIME", help="events at or after TIME (RFC 3339, or a duration ago: 24h)")
    filters.add_argument("--until", metavar="TIME", help="events before TIME (RFC 3339, or a duration ago)")
    filters.add_argument("--run", metavar="RUN", help="only events of this export run")
    filters.add_argument("--case", metavar="CASE", help="only events of this legal-hold or incident case")
    filters.add_argument("--trace", metavar="ID", help="only events with this trace (correlation) id")

    lst = tsub.add_parser(
        "list",
        parents=[common, tenant, filters],
        help="events in order, a page at a time",
        description="The tenant's events in the order they were recorded. A page ends with the cursor of the next "
        "one (--after CURSOR); cursors stay valid while new events arrive. Events linked to evidence under a legal "
        "hold are marked 'held'.",
    )
    lst.add_argument("--after", type=int, default=0, metavar="CURSOR", help="the cursor a previous page ended with")
    lst.add_argument("--limit", type=int, default=50, metavar="N", help="events per page (default: %(default)s)")
    lst.set_defaults(handler=run_list)

    show = tsub.add_parser("show", parents=[common, tenant], help="one event as a CloudEvent")
    show.add_argument("event_id", metavar="ID")
    show.set_defaults(handler=run_show)

    ev = tsub.add_parser(
        "evidence",
        parents=[common, tenant],
        help="the signed references of an event: manifest digest, sealed evidence, attestation subjects",
    )
    ev.add_argument("event_id", metavar="ID")
    ev.set_defaults(handler=run_evidence)

    exp = tsub.add_parser(
        "export",
        parents=[common, tenant, filters],
        help="write the events as NDJSON CloudEvents (one a line) for a SIEM",
    )
    exp.add_argument("--out", type=Path, required=True, metavar="FILE.ndjson", help="written whole or not at all")
    exp.set_defaults(handler=run_export)

    nt = tsub.add_parser(
        "notify",
        parents=[common],
        help="notifications of bundles ready for transfer and failed runs: a spool directory and a LAN webhook",
    )
    nsub = nt.add_subparsers(dest="notify_command", metavar="ACTION", required=True)
    nset = nsub.add_parser("set", parents=[common], help="configure the spool directory and the webhook")
    nset.add_argument("--spool", type=Path, metavar="DIR", help="write one JSON file per notified event here")
    nset.add_argument("--no-spool", action="store_true", help="stop writing the spool")
    nset.add_argument("--webhook", metavar="URL", help="POST each notified event here (http(s) on the LAN)")
    nset.add_argument("--no-webhook", action="store_true", help="stop calling the webhook")
    nset.add_argument("--attempts", type=int, metavar="N", help="tries per event (default 3)")
    nset.add_argument("--backoff", type=float, metavar="SECONDS", help="wait before the 2nd try, doubling (0.5)")
    nset.add_argument("--timeout", type=float, metavar="SECONDS", help="per request (default 3)")
    nset.set_defaults(handler=run_notify_set)
    nshow = nsub.add_parser("show", parents=[common], help="the settings and the deliveries waiting in the outbox")
    nshow.set_defaults(handler=run_notify_show)
    ndel = nsub.add_parser("deliver", parents=[common], help="try the waiting webhook deliveries again")
    ndel.set_defaults(handler=run_notify_deliver)


def _filter(args: argparse.Namespace) -> EventFilter:
    since = parse_when(args.since, "--since")
    until = parse_when(args.until, "--until")
    if since is not None and until is not None and since >= until:
        raise UsageError("--since must be before --until")
    return EventFilter(
        types=tuple(args.type),
        subject=args.subject,
        since=since,
        until=until,
        run_id=args.run,
        case_id=args.case,
        trace_id=args.trace,
    )


def _row(e: TimelineEvent) -> list[str]:
    return [str(e.seq), f"{e.time:%Y-%m-%d %H:%M:%S}", e.short_type, e.subject, "held" if e.held else "", e.id]


def run_list(args: argparse.Namespace) -> int:
    """``stella timeline list``."""
    page = list_timeline(resolve_home(args.home), args.tenant, _filter(args), after=args.after, limit=args.limit)
    if args.json:
        print_json(page.to_dict())
        return 0
    if not page.events:
        stdout.print(
            f"no timeline events for tenant {escape(page.tenant)}" + (" after that cursor" if args.after else "")
        )
        return 0
    table(["seq", "time", "type", "subject", "held", "id"], [_row(e) for e in page.events])
    if page.next_cursor is not None:
        stdout.print(f"more: stella timeline list --after {page.next_cursor} (same filters)", markup=False)
    return 0


def run_show(args: argparse.Namespace) -> int:
    """``stella timeline show ID``."""
    event = show_event(resolve_home(args.home), args.tenant, args.event_id)
    if args.json:
        print_json(event.to_dict())
        return 0
    lines = [
        ("id", event.id),
        ("seq", str(event.seq)),
        ("type", event.type),
        ("source", event.source),
        ("subject", event.subject),
        ("time", rfc3339(event.time)),
        ("recorded", rfc3339(event.recorded_at)),
        ("run", event.run_id or "-"),
        ("trace", event.trace_id or "-"),
        ("case", event.case_id or "-"),
        ("held", "yes: linked evidence is under a legal hold" if event.held else "no"),
    ]
    lines += [("evidence", d) for d in event.evidence_digests]
    lines += [("attests", f"{s.name} {s.digest}") for s in event.attestation_subjects]
    for label, value in lines:
        stdout.print(f"{label:<9} {escape(value)}")
    stdout.print("data", markup=False)
    for line in json_text(event.data).splitlines():
        stdout.print(escape(line))
    return 0


def run_evidence(args: argparse.Namespace) -> int:
    """``stella timeline evidence ID``."""
    refs = event_evidence(resolve_home(args.home), args.tenant, args.event_id)
    if args.json:
        print_json(refs.to_dict())
        return 0
    stdout.print(f"event {escape(refs.event.id)} ({escape(refs.event.short_type)}, {escape(refs.event.subject)})")
    if refs.manifest_sha256:
        stdout.print(f"  manifest  {refs.manifest_sha256}  ({MANIFEST}, signed by the bundle's key)", markup=False)
    if refs.bundle_sha256:
        stdout.print(f"  bundle    {refs.bundle_sha256}", markup=False)
    for e in refs.evidence:
        if e.evidence_id is None:
            stdout.print(f"  evidence  {e.digest}  (not in this store's locker)", markup=False)
            continue
        held = f", held by {', '.join(e.holds)}" if e.holds else ""
        stamp = "timestamped" if e.timestamped else "not timestamped"
        stdout.print(
            f"  evidence  {e.digest}  {e.evidence_id} ({e.kind}), Merkle root {e.root_hash} over {e.tree_size} "
            f"artifacts, signed by key {e.key_id}, {stamp}{held}",
            markup=False,
        )
    for s in refs.event.attestation_subjects:
        stdout.print(f"  attests   {s.digest}  {escape(s.name)}")
    if not (refs.manifest_sha256 or refs.bundle_sha256 or refs.evidence or refs.event.attestation_subjects):
        stdout.print("  no signed references: this event links no bundle, evidence or attestation", markup=False)
    return 0


def run_export(args: argparse.Namespace) -> int:
    """``stella timeline export --out FILE.ndjson``."""
    count = export_timeline(resolve_home(args.home), args.tenant, _filter(args), args.out)
    if args.json:
        print_json({"tenant": args.tenant, "out": str(args.out), "events": count})
    else:
        stdout.print(f"wrote {count} event{'' if count == 1 else 's'} to {escape(str(args.out))}")
    return 0


def run_notify_set(args: argparse.Namespace) -> int:
    """``stella timeline notify set``."""
    if args.spool is not None and args.no_spool:
        raise UsageError("--spool and --no-spool contradict each other")
    if args.webhook is not None and args.no_webhook:
        raise UsageError("--webhook and --no-webhook contradict each other")
    config = notify.configure(
        resolve_home(args.home),
        spool=args.spool,
        webhook=args.webhook,
        attempts=args.attempts,
        backoff=args.backoff,
        timeout=args.timeout,
        no_spool=args.no_spool,
        no_webhook=args.no_webhook,
    )
    return _print_config(args, config, [])


def run_notify_show(args: argparse.Namespace) -> int:
    """``stella timeline notify show``."""
    home = resolve_home(args.home)
    return _print_config(args, notify.load_config(home), notify.pending(home))


def _print_config(args: argparse.Namespace, config: notify.NotifyConfig, waiting: list[str]) -> int:
    if args.json:
        print_json(config.to_dict() | {"waiting": waiting})
        return 0
    stdout.print(f"spool    {escape(str(config.spool)) if config.spool else '-'}")
    hook = config.webhook
    if hook is None:
        stdout.print("webhook  -", markup=False)
    else:
        stdout.print(
            f"webhook  {escape(hook.url)} ({hook.attempts} attempts, backoff {hook.backoff:g} s,"
            f" timeout {hook.timeout:g} s)"
        )
    if waiting:
        stdout.print(f"waiting  {len(waiting)} in the outbox (stella timeline notify deliver)", markup=False)
    return 0


def run_notify_deliver(args: argparse.Namespace) -> int:
    """``stella timeline notify deliver``: exit 8 when a delivery still failed."""
    done = notify.deliver_pending(resolve_home(args.home))
    if args.json:
        print_json({"deliveries": [d.to_dict() for d in done]})
    elif not done:
        stdout.print("nothing waits in the outbox", markup=False)
    for d in done if not args.json else []:
        stdout.print(
            f"{d.webhook:<12} {escape(d.type)} {escape(d.event_id)}" + (f": {escape(d.error)}" if d.error else "")
        )
    return int(ExitCode.ENVIRONMENT) if any(d.webhook == "failed" for d in done) else 0
