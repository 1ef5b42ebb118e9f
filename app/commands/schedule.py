"""`stella schedule add|list|remove|run-due|install`: exports and retention prunes on a calendar or after imports."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from app.output import escape, print_json, stderr, stdout, table
from core.clock import parse_at, rfc3339
from core.home import resolve_home
from core.schedule import RISK_FEED_KINDS, Action
from core.tenants import DEFAULT_TENANT
from services import schedule as svc


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``schedule`` command and its actions to the top-level subparsers."""
    p = sub.add_parser("schedule", parents=[common], help="scheduled exports and retention prunes (systemd timers)")
    ssub = p.add_subparsers(dest="schedule_command", metavar="ACTION", required=True)
    tenant = argparse.ArgumentParser(add_help=False)
    tenant.add_argument("--tenant", default=DEFAULT_TENANT, help="whose schedules (default: %(default)s)")

    add = ssub.add_parser(
        "add",
        parents=[common, tenant],
        help="add a schedule: an export run (--profile, --key) or a --retention prune",
        description="Calendars are UTC: 'daily HH:MM', 'weekly DAY HH:MM' (DAY: mon..sun), 'hourly :MM', "
        "'every N hours' (at hours 0, N, 2N... of each day). Event triggers fire at the next `schedule run-due` after "
        "new documents of that kind were imported.",
    )
    add.add_argument("name", metavar="NAME", help="lower-case letters, digits and '-' (names its systemd units)")
    add.add_argument("--profile", metavar="ID", help="the profile to export (its latest revision when it fires)")
    add.add_argument("--key", metavar="NAME", help="the signing key")
    add.add_argument("--selector", action="append", default=[], metavar="KEY=VALUE", help="as `export run`")
    add.add_argument(
        "--provider", action="append", default=[], metavar="NAME[=MAX-AGE]", help="risk bundles: as `export run`"
    )
    add.add_argument("--retention", action="store_true", help="prune expired bundles instead of exporting")
    when = add.add_mutually_exclusive_group(required=True)
    when.add_argument("--calendar", metavar="WHEN", help="e.g. 'daily 02:00 UTC'")
    when.add_argument("--after-import", metavar="KIND", action="append", help="after documents of KIND arrive")
    when.add_argument("--on-risk-feed-update", action="store_true", help="after a KEV catalog or EPSS snapshot arrives")
    add.set_defaults(handler=run_add)

    lst = ssub.add_parser("list", parents=[common, tenant], help="schedules, when each last fired and next falls due")
    lst.set_defaults(handler=run_list)

    rm = ssub.add_parser("remove", parents=[common, tenant], help="remove a schedule (its history stays)")
    rm.add_argument("name", metavar="NAME")
    rm.set_defaults(handler=run_remove)

    due = ssub.add_parser(
        "run-due",
        parents=[common],
        help="fire every schedule that is due (what the systemd timers run)",
        description="Each due slot fires once: its run key is claimed in the store before anything starts, so a "
        "second run-due for the same slot starts nothing; of several missed slots only the latest fires. "
        "Transient failures (the store busy) are tried again with a doubling wait.",
    )
    due.add_argument("--tenant", help="only this tenant's schedules (default: every tenant)")
    due.add_argument("--only", metavar="NAME", help="only this schedule")
    due.add_argument("--at", metavar="TIME", help="fire what is due at TIME (RFC 3339) instead of now")
    due.add_argument(
        "--attempts", type=int, default=svc.DEFAULT_ATTEMPTS, metavar="N", help="tries per firing (%(default)s)"
    )
    due.add_argument(
        "--backoff",
        type=float,
        default=svc.DEFAULT_BACKOFF,
        metavar="SECONDS",
        help="wait before the second try, doubling (%(default)s)",
    )
    due.set_defaults(handler=run_due)

    inst = ssub.add_parser(
        "install",
        parents=[common, tenant],
        help="write a systemd .timer and .service per schedule",
        description="Writes stella-schedule-TENANT_NAME.timer/.service into DIR (e.g. /etc/systemd/system or "
        "~/.config/systemd/user), removes the units of this tenant's removed schedules, and prints how to enable "
        "them. Import-triggered schedules get a timer that looks every 15 minutes.",
    )
    inst.add_argument("--unit-dir", type=Path, required=True, metavar="DIR")
    inst.add_argument("--stella", type=Path, metavar="PATH", help="the stella the units run (default: on PATH)")
    inst.set_defaults(handler=run_install)


def run_add(args: argparse.Namespace) -> int:
    """``stella schedule add``."""
    kinds = tuple(args.after_import or ()) + (RISK_FEED_KINDS if args.on_risk_feed_update else ())
    spec = svc.ScheduleSpec(
        tenant=args.tenant,
        name=args.name,
        action=Action.RETENTION if args.retention else Action.EXPORT,
        calendar=args.calendar,
        import_kinds=kinds,
        profile=args.profile,
        key=args.key,
        selectors=tuple(args.selector),
        providers=tuple(args.provider),
    )
    sched = svc.add_schedule(resolve_home(args.home), spec)
    if args.json:
        print_json(sched.to_dict())
        return 0
    stdout.print(f"added schedule {escape(sched.name)}: {escape(sched.what_text())}, {escape(sched.when_text())}")
    if sched.calendar is not None:
        stdout.print(f"  systemd OnCalendar={sched.calendar.on_calendar()}", markup=False)
    stdout.print("  fire it with `stella schedule run-due`, or install timers: `stella schedule install`", markup=False)
    return 0


def run_list(args: argparse.Namespace) -> int:
    """``stella schedule list``."""
    rows = svc.list_schedules(resolve_home(args.home), args.tenant)
    if args.json:
        print_json({"tenant": args.tenant, "schedules": [r.to_dict() for r in rows]})
        return 0
    if not rows:
        stdout.print(f"no schedules for tenant {escape(args.tenant)}")
        return 0
    table(
        ["name", "when", "what", "last fired", "next due"],
        [
            [
                r.schedule.name,
                r.schedule.when_text(),
                r.schedule.what_text(),
                "-" if r.last is None else f"{rfc3339(r.last.slot)} {r.last.outcome}",
                "-" if r.next_due is None else rfc3339(r.next_due),
            ]
            for r in rows
        ],
    )
    return 0


def run_remove(args: argparse.Namespace) -> int:
    """``stella schedule remove NAME``."""
    sched = svc.remove_schedule(resolve_home(args.home), args.tenant, args.name)
    if args.json:
        print_json({"removed": sched.to_dict()})
    else:
        stdout.print(f"removed schedule {escape(sched.name)}; run `stella schedule install` again to drop its units")
    return 0


def _retrying(r: svc.Retrying) -> None:
    stderr.print(
        f"{r.what}: {r.error.diagnostics()} (attempt {r.attempt} of {r.attempts}; trying again in {r.wait:g} s)",
        markup=False,
    )


def run_due(args: argparse.Namespace) -> int:
    """``stella schedule run-due``."""
    report = svc.run_due(
        resolve_home(args.home),
        tenant=args.tenant,
        only=args.only,
        at=parse_at(args.at),
        attempts=args.attempts,
        backoff=args.backoff,
        on_retry=_retrying,
    )
    if args.json:
        print_json(report.to_dict())
        return report.exit_code
    for f in report.firings:
        slot = rfc3339(f.slot)
        if f.outcome == "already-fired":
            stdout.print(
                f"{f.schedule}: slot {slot} already fired (run key {f.run_key[:12]}): nothing started", markup=False
            )
        elif f.outcome == "succeeded":
            what = f"run {f.run_id}" if f.run_id else "retention prune"
            tries = "" if f.attempts == 1 else f" after {f.attempts} attempts"
            stdout.print(f"{f.schedule}: slot {slot} fired: {what} succeeded{tries}", markup=False)
        else:
            run = f" (run {f.run_id})" if f.run_id else ""
            why = f"{f.failure_class}: {f.error_message}"
            stdout.print(
                f"{f.schedule}: slot {slot} failed{run} after {f.attempts} attempt(s), {why}",
                markup=False,
            )
    for name, next_due in report.not_due:
        stdout.print(f"{name}: not due" + ("" if next_due is None else f" (next {rfc3339(next_due)})"), markup=False)
    if not report.firings and not report.not_due:
        stdout.print("no schedules", markup=False)
    return report.exit_code


def run_install(args: argparse.Namespace) -> int:
    """``stella schedule install --unit-dir DIR``."""
    done = svc.install_units(resolve_home(args.home), args.tenant, args.unit_dir, stella=args.stella)
    if args.json:
        print_json(done.to_dict())
        return 0
    for path in done.written:
        stdout.print(f"wrote {escape(str(path))}")
    for path in done.removed:
        stdout.print(f"removed {escape(str(path))}")
    timers = [p.name for p in done.written if p.suffix == ".timer"]
    if timers:
        stdout.print(f"enable them: systemctl daemon-reload && systemctl enable --now {' '.join(timers)}", markup=False)
    else:
        stdout.print(f"tenant {escape(args.tenant)} has no schedules: no units written")
    return 0
