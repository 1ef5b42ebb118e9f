"""`stella export ...`: profiles, runs, and their artifacts."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.output import RichSink, escape, print_json, stderr, stdout, table
from core.errors import StellaError
from core.home import Home, resolve_home
from core.progress import Check
from core.tenants import DEFAULT_TENANT

if TYPE_CHECKING:
    from core.runs import ExportRun
    from services.export import ExportPlan

# The services (the store, the adapters, DuckDB, pyarrow) are imported by the handler that runs, so that
# `stella export --help` and the parser of every other command do not load them.


class _BuildSink(RichSink):
    """The build's progress bar; a check the build reports as failed (a risk bundle of stale data) is a warning."""

    def check(self, check: Check) -> None:
        if not check.ok:
            stderr.print(f"[bold yellow]warning:[/] {escape(check.detail)}")


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("export", parents=[common], help="export profiles, runs and bundles")
    esub = p.add_subparsers(dest="export_command", metavar="ACTION", required=True)

    tenant = argparse.ArgumentParser(add_help=False)
    tenant.add_argument("--tenant", default=DEFAULT_TENANT)

    prof = esub.add_parser("profile", parents=[common], help="list, show, create and update profiles")
    psub = prof.add_subparsers(dest="profile_command", metavar="ACTION", required=True)
    pl = psub.add_parser("list", parents=[common, tenant], help="profiles of a tenant")
    pl.set_defaults(handler=run_profile_list)
    ps = psub.add_parser("show", parents=[common, tenant], help="one profile (ID or ID@REVISION)")
    ps.add_argument("profile")
    ps.set_defaults(handler=run_profile_show)
    pc = psub.add_parser("create", parents=[common, tenant], help="a custom profile varying a builtin")
    pc.add_argument("profile_id")
    pc.add_argument(
        "--base",
        required=True,
        metavar="BUILTIN",
        help="the builtin profile to vary: json:raw (advisories, VEX, SBOMs as raw documents and canonical JSONL) or "
        "json:policy (the same plus policy snapshots and evaluated findings). The new profile writes bundles of the "
        "builtin's kind and payload layout, starts from its fields (record_types, compression_level, ...) and "
        "changes only those given with --set",
    )
    pc.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="change a field of the base (repeatable): record_types, compression_level, redaction_allowlist, "
        "signing_key, encryption_recipients; lists are comma-separated",
    )
    pc.set_defaults(handler=run_profile_create)
    pu = psub.add_parser("update", parents=[common, tenant], help="change a custom profile (new revision)")
    pu.add_argument("profile_id")
    pu.add_argument("--set", dest="settings", action="append", default=[], metavar="FIELD=VALUE")
    pu.set_defaults(handler=run_profile_update)

    key = argparse.ArgumentParser(add_help=False)
    key.add_argument("--key", metavar="NAME", help="signing key (default: the profile's signing_key)")
    key.add_argument("--passphrase-file", type=Path, metavar="F", help="passphrase of an encrypted key")

    r = esub.add_parser("run", parents=[common, tenant, key], help="plan and build a signed bundle")
    r.add_argument("--profile", required=True, help="profile ID or ID@REVISION, e.g. json:raw")
    r.add_argument("--selector", "-s", action="append", default=[], metavar="KEY=VALUE")
    r.add_argument("--out", type=Path, help="bundle path (default: HOME/exports/<run>.tar.zst)")
    r.add_argument("--mkdir", "-p", action="store_true", help="create the directory of --out when it is missing")
    r.add_argument(
        "--dry-run",
        action="store_true",
        help="print what the run would include (counts, first documents, profile revision, output); write nothing",
    )
    r.add_argument("--first", type=int, metavar="N", help="--dry-run: list the first N documents (default 10)")
    r.add_argument(
        "--allow-empty", action="store_true", help="build the bundle even when the selection matches no document"
    )
    enc = r.add_argument_group("encryption (age; only payload is encrypted)")
    enc.add_argument("--recipient", action="append", default=[], metavar="AGE1...", help="repeatable")
    enc.add_argument("--recipients-file", type=Path, metavar="F", help="one age1... recipient per line, # comments")
    enc.add_argument("--encrypt-passphrase-file", type=Path, metavar="F", help="encrypt with an age passphrase")
    r.add_argument("--base", metavar="RUN|MANIFEST|RECEIPT", help="mirror:delta: the state the receiver has")
    r.add_argument("--trivy-schema", type=int, metavar="N", help="trivy profiles: the DB schema version")
    r.add_argument("--provider", action="append", default=[], metavar="NAME", help="risk bundles: kev, epss")
    r.add_argument("--metrics-textfile", type=Path, metavar="PATH.prom", help=TEXTFILE_HELP)
    r.add_argument("--trace-file", type=Path, metavar="PATH", help=TRACE_HELP)
    r.set_defaults(handler=run_export)

    rs = esub.add_parser("runs", parents=[common, tenant], help="recent runs")
    rs.add_argument("--limit", type=int, default=20)
    rs.set_defaults(handler=run_list)
    sh = esub.add_parser("show", parents=[common], help="one run with its events and distributions")
    sh.add_argument("run_id", help="a run id, or a unique prefix of one")
    sh.set_defaults(handler=run_show)
    ca = esub.add_parser("cancel", parents=[common], help="cancel a pending or running run")
    ca.add_argument("run_id")
    ca.set_defaults(handler=run_cancel)
    rt = esub.add_parser("retry", parents=[common, key], help="rebuild a run: same parameters, same bytes")
    rt.add_argument("run_id")
    rt.add_argument("--out", type=Path, help="where the rebuilt bundle goes (default: where the original went)")
    rt.add_argument("--mkdir", "-p", action="store_true", help="create the directory of --out when it is missing")
    rt.add_argument("--encrypt-passphrase-file", type=Path, metavar="F", help="the passphrase the run encrypted with")
    rt.add_argument("--metrics-textfile", type=Path, metavar="PATH.prom", help=TEXTFILE_HELP)
    rt.add_argument("--trace-file", type=Path, metavar="PATH", help=TRACE_HELP)
    rt.set_defaults(handler=run_retry)
    dl = esub.add_parser("download", parents=[common], help="copy a run's bundle out (resumes, checks the digest)")
    dl.add_argument("run_id")
    dl.add_argument("--to", type=Path, required=True)
    dl.add_argument("--trace-file", type=Path, metavar="PATH", help=TRACE_HELP)
    dl.add_argument(
        "--passphrase-file",
        type=Path,
        metavar="F",
        help="passphrase of the run's key, when encrypted: it signs the copy's line of the bundle's attestation",
    )
    dl.set_defaults(handler=run_download)
    me = esub.add_parser(
        "metrics",
        parents=[common],
        help="Prometheus metrics of the runs: print them, write the textfile, or set the textfile runs write",
        description="Without options, print the metrics (Prometheus text format) rebuilt from the store's run "
        "history. --textfile writes them to a node_exporter textfile-collector file; --set-textfile makes every "
        "later `export run`, `export retry` and `verify` write that file; --unset-textfile stops it.",
    )
    mode = me.add_mutually_exclusive_group()
    mode.add_argument("--textfile", type=Path, metavar="PATH.prom", help="write the metrics to this file now")
    mode.add_argument("--set-textfile", type=Path, metavar="PATH.prom", help="the file every run writes (and now)")
    mode.add_argument("--unset-textfile", action="store_true", help="runs write no metrics file")
    me.set_defaults(handler=run_metrics)


TRACE_HELP = "write the run's spans to PATH as OTLP JSON (default: the home's tracing.json setting, else none)"
TEXTFILE_HELP = (
    "write the Prometheus metrics, rebuilt from the run history, to this node_exporter textfile-collector file when"
    " the run ends (default: the file set with `stella export metrics --set-textfile`)"
)


# -- profiles ------------------------------------------------------------------------------------
def run_profile_list(args: argparse.Namespace) -> int:
    from services.profiles import list_profiles

    profiles = list_profiles(resolve_home(args.home), args.tenant)
    if args.json:
        print_json({"profiles": [p.to_dict() for p in profiles]})
        return 0
    rows = [
        [p.profile_id, p.revision, p.config.profile_kind, "yes" if p.builtin else "no", ",".join(p.config.record_types)]
        for p in profiles
    ]
    table(["profile", "revision", "kind", "builtin", "record types"], rows)
    return 0


def run_profile_show(args: argparse.Namespace) -> int:
    from services.profiles import show_profile

    _show_json(args, show_profile(resolve_home(args.home), args.tenant, args.profile).to_dict())
    return 0


def run_profile_create(args: argparse.Namespace) -> int:
    from services.profiles import create_profile

    profile = create_profile(resolve_home(args.home), args.tenant, args.profile_id, args.base, args.settings)
    _say(args, profile.to_dict(), f"created profile {profile.ref} from {args.base}")
    return 0


def run_profile_update(args: argparse.Namespace) -> int:
    from services.profiles import update_profile

    result = update_profile(resolve_home(args.home), args.tenant, args.profile_id, args.settings)
    _say(args, result.to_dict(), result.text)
    return 0


# -- runs ----------------------------------------------------------------------------------------
def run_export(args: argparse.Namespace) -> int:
    from services import export as export_service
    from services import metrics
    from services.export import PLAN_FIRST, ExportRequest

    request = ExportRequest(
        tenant=args.tenant,
        profile=args.profile,
        selectors=tuple(args.selector),
        key=args.key,
        passphrase_file=args.passphrase_file,
        recipients=tuple(args.recipient),
        recipients_file=args.recipients_file,
        encrypt_passphrase_file=args.encrypt_passphrase_file,
        out=args.out,
        base=args.base,
        trivy_schema=args.trivy_schema,
        providers=tuple(args.provider),
        allow_empty=args.allow_empty,
        mkdir=args.mkdir,
    )
    if args.dry_run:
        first = PLAN_FIRST if args.first is None else args.first
        _report_plan(args, export_service.dry_run_export(resolve_home(args.home), request, first=first))
        return 0
    sink = _BuildSink("building bundle")
    home = resolve_home(args.home)
    textfile = metrics.textfile_for(home, args.metrics_textfile)
    try:
        run = export_service.run_export(home, request, observer=sink, trace_file=args.trace_file)
    finally:
        _write_metrics(home, textfile)
    if run.input_count == 0 and not run.options.get("base"):  # a delta pins only its changes: none is not empty
        stderr.print("[bold yellow]warning:[/] the selection matched no document: the bundle is empty (--allow-empty)")
    _report_run(args, run)
    return 0


def _report_plan(args: argparse.Namespace, plan: ExportPlan) -> None:
    if args.json:
        print_json(plan.to_dict())
        return
    lines = [
        f"[bold]dry run[/]: nothing was written. A run now would take {plan.count_text}.",
        f"  tenant    {escape(plan.tenant)}",
        f"  profile   {escape(plan.profile.profile_id)}, revision {plan.profile.revision}"
        f" ({escape(plan.profile.config.profile_kind)})",
        f"  selectors {escape(' '.join(plan.selectors.to_args()) or '(none: everything the profile takes)')}",
        f"  key       {escape(plan.key or '')}",
        f"  output    {escape(str(plan.out))}",
    ]
    if plan.base is not None:
        lines.append(
            f"  base      state {escape(str(plan.base.get('stateDigest', ''))[:12])} of run"
            f" {escape(str(plan.base.get('runId')))}: the inputs are the resulting state; the delta ships what changed"
        )
    if plan.first:
        more = plan.total - len(plan.first)
        lines.append(f"  first {len(plan.first)} input document{'s' if len(plan.first) != 1 else ''}, in run order:")
        lines += [f"    {escape(i.kind):<11} {escape(i.document_id)}  {i.document_sha256[:12]}" for i in plan.first]
        if more > 0:
            lines.append(f"    ... and {more} more")
    else:
        lines.append("  [yellow]the selection matches no document[/]: a run would be refused without --allow-empty")
    stdout.print("\n".join(lines))


def run_retry(args: argparse.Namespace) -> int:
    from services import metrics
    from services.export import retry_export

    home = resolve_home(args.home)
    textfile = metrics.textfile_for(home, args.metrics_textfile)
    try:
        done = retry_export(
            home,
            args.run_id,
            out=args.out,
            key=args.key,
            passphrase_file=args.passphrase_file,
            encrypt_passphrase_file=args.encrypt_passphrase_file,
            mkdir=args.mkdir,
            observer=_BuildSink("building bundle"),
            trace_file=args.trace_file,
        )
    finally:
        _write_metrics(home, textfile)
    _report_run(args, done)
    return 0


def _report_run(args: argparse.Namespace, run: ExportRun) -> None:
    from services.export import bundle_counts, shipped_text

    if args.json:
        print_json(run.to_dict() | {"bundleCounts": bundle_counts(run)})
        return
    art = run.to_dict()["artifact"] or {}
    public_key = resolve_home(args.home).keys_dir / f"{run.key_name}.pub"  # what keys export-public writes
    stdout.print(
        f"[bold green]{run.state}[/] {run.run_id}: {escape(str(art.get('path')))}\n"
        f"  sha256 {art.get('sha256')}  {art.get('size')} bytes, {shipped_text(run)}\n"
        f"  verify with: stella verify {escape(str(art.get('path')))} --key {escape(str(public_key))}"
    )


def run_list(args: argparse.Namespace) -> int:
    from services.export import list_runs

    runs = list_runs(resolve_home(args.home), args.tenant, limit=args.limit)
    if args.json:
        print_json({"runs": [r.to_dict() for r in runs]})
        return 0
    rows = [[r.run_id, r.profile_id, r.state, r.input_count, r.to_dict()["createdAt"]] for r in runs]
    table(["run", "profile", "state", "inputs", "created"], rows)
    return 0


def run_show(args: argparse.Namespace) -> int:
    from services.export import shipped_text, show_run

    detail = show_run(resolve_home(args.home), args.run_id)
    if args.json:
        print_json(detail.to_dict())
        return 0
    run = detail.run
    body = run.to_dict()
    art = body["artifact"] or {}
    state = {"succeeded": "green", "failed": "red", "aborted": "yellow"}.get(str(run.state), "bold")
    lines = [
        f"run       {escape(run.run_id)}" + (f" (retry of {escape(run.retry_of)})" if run.retry_of else ""),
        f"state     [{state}]{run.state}[/]",
        f"profile   {escape(run.profile_id)}@{run.profile_revision}",
        f"tenant    {escape(run.tenant)}",
        f"selectors {escape(' '.join(run.selectors.to_args()) or '(none)')}",
        f"inputs    {shipped_text(run) if art else f'{run.input_count} input documents pinned'}",
        f"output    {escape(str(run.out_path))}",
    ]
    if art:
        lines.append(f"sha256    {art.get('sha256')}  ({art.get('size')} bytes)")
    if run.error_code:
        lines.append(f"error     {escape(run.error_code)}: {escape(run.error_message or '')}")
    if run.failure_class is not None:
        lines.append(f"failure   {run.failure_class}")
    lines.append(f"planned   {body['createdAt']}")
    if body["startedAt"]:
        lines.append(f"started   {body['startedAt']}")
    if body["finishedAt"]:
        lines.append(f"finished  {body['finishedAt']}")
    lines.append("events")
    for event in detail.events:
        change = f"{event.from_state or ''} -> {event.to_state}" if event.to_state else ""
        lines.append(
            f"  {event.seq:>3} {event.to_dict()['time']} {escape(event.event_type):<16} {change}"
            f"  {escape(event.actor or '')}".rstrip()
        )
    if detail.distributions:
        lines.append("distributions")
        lines += [f"  {escape(d.type)} {escape(d.target)} ({d.state})" for d in detail.distributions]
    lines.append("(everything recorded: stella export show RUN --json)")
    stdout.print("\n".join(lines))
    return 0


def run_cancel(args: argparse.Namespace) -> int:
    from services.export import cancel_export

    outcome = cancel_export(resolve_home(args.home), args.run_id)
    _say(args, outcome.to_dict(), outcome.text)
    return 0


def run_download(args: argparse.Namespace) -> int:
    from services.export import download_run

    home = resolve_home(args.home)
    dist = download_run(
        home,
        args.run_id,
        args.to,
        observer=RichSink("copying"),
        passphrase_file=args.passphrase_file,
        trace_file=args.trace_file,
    )
    _say(args, dist.to_dict(), f"copied to {dist.to_dict().get('target')} (digest checked)")
    return 0


def _write_metrics(home: Home, textfile: Path | None) -> None:
    """Rebuild the metrics textfile after a run, whatever its outcome; a failure to write it is a warning (the run's
    own outcome and exit code stand)."""
    if textfile is None:
        return
    from services import metrics

    try:
        metrics.update_textfile(home, textfile)
    except StellaError as exc:
        stderr.print(f"[bold yellow]warning:[/] metrics not written: {escape(exc.diagnostics())}")


def run_metrics(args: argparse.Namespace) -> int:
    from services import metrics

    home = resolve_home(args.home)
    if args.unset_textfile:
        metrics.configure_textfile(home, None)
        _say(args, {"textfile": None}, "runs write no metrics textfile")
        return 0
    if args.set_textfile is not None:
        target = metrics.configure_textfile(home, args.set_textfile)
        assert target is not None
        metrics.update_textfile(home, target)
        _say(args, {"textfile": str(target)}, f"every run now writes its metrics to {target} (written now)")
        return 0
    if args.textfile is not None:
        target = metrics.check_textfile(args.textfile)
        metrics.update_textfile(home, target)
        _say(args, {"textfile": str(target)}, f"metrics written to {target}")
        return 0
    stdout.file.write(metrics.exposition(home).decode("utf-8"))
    stdout.file.flush()
    return 0


def _show_json(args: argparse.Namespace, body: dict[str, Any]) -> None:
    """A JSON document: plain with --json (for machines), highlighted otherwise (for people)."""
    if args.json:
        print_json(body)
    else:
        stdout.print_json(data=body)


def _say(args: argparse.Namespace, body: dict[str, Any], text: str) -> None:
    if args.json:
        print_json(body)
    else:
        stdout.print(escape(text))
