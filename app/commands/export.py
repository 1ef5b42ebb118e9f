"""`stella export ...`: profiles, runs, and their artifacts."""

from __future__ import annotations

import argparse
import os
import secrets
from pathlib import Path
from typing import Any

from rich.markup import escape

from adapters.profiles.builder import bundle_builder
from adapters.profiles.registry import run_options
from adapters.sources.registry import format_names
from app.output import RichSink, print_json, stdout, table
from core.clock import utcnow
from core.errors import BadInputError, StoreLockedError, UsageError
from core.home import Home, resolve_home
from core.ingest import DEFAULT_TENANT, validate_tenant
from core.keys import KeyStore, read_passphrase_file
from core.planner import plan_run
from core.profiles import ProfileStore, parse_overrides, parse_profile_ref
from core.runs import ExportRun, RunEngine, request_cancel
from core.selectors import parse_selectors
from core.signing import Signer
from core.store import Store


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
    pc.add_argument("--base", required=True, help="builtin to vary: json:raw or json:policy")
    pc.add_argument("--set", dest="settings", action="append", default=[], metavar="FIELD=VALUE")
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
    enc = r.add_argument_group("encryption (age; only payload is encrypted)")
    enc.add_argument("--recipient", action="append", default=[], metavar="AGE1...", help="repeatable")
    enc.add_argument("--recipients-file", type=Path, metavar="F", help="one age1... recipient per line, # comments")
    enc.add_argument("--encrypt-passphrase-file", type=Path, metavar="F", help="encrypt with an age passphrase")
    r.add_argument("--base", metavar="RUN|MANIFEST|RECEIPT", help="mirror:delta: the state the receiver has")
    r.add_argument("--trivy-schema", type=int, metavar="N", help="trivy profiles: the DB schema version")
    r.add_argument("--provider", action="append", default=[], metavar="NAME", help="risk bundles: kev, epss")
    r.set_defaults(handler=run_export)

    rs = esub.add_parser("runs", parents=[common, tenant], help="recent runs")
    rs.add_argument("--limit", type=int, default=20)
    rs.set_defaults(handler=run_list)
    sh = esub.add_parser("show", parents=[common], help="one run with its events and distributions")
    sh.add_argument("run_id")
    sh.set_defaults(handler=run_show)
    ca = esub.add_parser("cancel", parents=[common], help="cancel a pending or running run")
    ca.add_argument("run_id")
    ca.set_defaults(handler=run_cancel)
    rt = esub.add_parser("retry", parents=[common, key], help="rebuild a run: same parameters, same bytes")
    rt.add_argument("run_id")
    rt.add_argument("--out", type=Path, help="where the rebuilt bundle goes (default: beside the original)")
    rt.add_argument("--encrypt-passphrase-file", type=Path, metavar="F", help="the passphrase the run encrypted with")
    rt.set_defaults(handler=run_retry)
    dl = esub.add_parser("download", parents=[common], help="copy a run's bundle out (resumes, checks the digest)")
    dl.add_argument("run_id")
    dl.add_argument("--to", type=Path, required=True)
    dl.set_defaults(handler=run_download)


# -- profiles ------------------------------------------------------------------------------------
def run_profile_list(args: argparse.Namespace) -> int:
    with Store.open(resolve_home(args.home)) as store:
        profiles = ProfileStore(store).list(validate_tenant(args.tenant))
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
    name, revision = parse_profile_ref(args.profile)
    with Store.open(resolve_home(args.home)) as store:
        profile = ProfileStore(store).get(validate_tenant(args.tenant), name, revision)
    _show_json(args, profile.to_dict())
    return 0


def run_profile_create(args: argparse.Namespace) -> int:
    with Store.open(resolve_home(args.home)) as store:
        profile = ProfileStore(store).create(
            validate_tenant(args.tenant), args.profile_id, args.base, parse_overrides(args.settings)
        )
    _say(args, profile.to_dict(), f"created profile {profile.ref} from {args.base}")
    return 0


def run_profile_update(args: argparse.Namespace) -> int:
    with Store.open(resolve_home(args.home)) as store:
        result = ProfileStore(store).update(
            validate_tenant(args.tenant), args.profile_id, parse_overrides(args.settings)
        )
    msg = f"profile {result.profile.ref}" + (" (new revision)" if result.changed else " unchanged: same config")
    _say(args, {"changed": result.changed, **result.profile.to_dict()}, msg)
    return 0


# -- runs ----------------------------------------------------------------------------------------
def _signer(home: Home, name: str, passphrase_file: Path | None) -> Signer:
    passphrase = read_passphrase_file(passphrase_file) if passphrase_file else None
    return Signer.from_keystore(KeyStore(home), name, passphrase)


def _execute(store: Store, home: Home, run: ExportRun, args: argparse.Namespace) -> ExportRun:
    signer = _signer(home, args.key or run.key_name, args.passphrase_file)
    encrypt = None
    if args.encrypt_passphrase_file:
        encrypt = read_passphrase_file(args.encrypt_passphrase_file).decode("utf-8", "strict")
    sink = RichSink("building bundle")
    limit = _max_active()
    return RunEngine(store, max_active_per_tenant=limit).execute(
        run.run_id, bundle_builder(store, signer, passphrase=encrypt), sink, sink.cancel
    )


def _recipients(args: argparse.Namespace) -> list[str]:
    """``--recipient`` values plus the lines of ``--recipients-file`` (age's format: # comments, blanks)."""
    values = list(args.recipient)
    if args.recipients_file is not None:
        try:
            text = args.recipients_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise BadInputError(f"cannot read recipients file: {exc.strerror}", path=str(args.recipients_file)) from exc
        values += [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        if not values:
            raise BadInputError("the recipients file lists no recipient", path=str(args.recipients_file))
    return values


def _max_active() -> int:
    """Runs a tenant may have active at once (STELLA_MAX_ACTIVE_RUNS, default 4); beyond it: exit 7."""
    text = os.environ.get("STELLA_MAX_ACTIVE_RUNS", "4")
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"STELLA_MAX_ACTIVE_RUNS={text!r} is not a positive integer")
    return int(text)


def run_export(args: argparse.Namespace) -> int:
    home = resolve_home(args.home)
    tenant = validate_tenant(args.tenant)
    _max_active()  # a bad setting is refused before anything is planned
    name, revision = parse_profile_ref(args.profile)
    selectors = parse_selectors(args.selector, known_formats=format_names())
    out = args.out
    if out is None:
        stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
        out = home.root / "exports" / f"{name.replace(':', '-')}-{stamp}-{secrets.token_hex(3)}.tar.zst"
    requested: dict[str, Any] = {
        "encryptionRecipients": _recipients(args),
        "base": args.base,
        "trivySchema": args.trivy_schema,
        "providers": args.provider,
    }
    if requested["encryptionRecipients"] and args.encrypt_passphrase_file:
        raise UsageError(
            "--encrypt-passphrase-file cannot be combined with recipients", hint="age allows one or the other"
        )
    with Store.open(home) as store:
        profile = ProfileStore(store).get(tenant, name, revision)
        options = run_options(profile.config, requested, store)
        run = plan_run(store, tenant, profile, selectors, key_name=args.key, out_path=out.resolve(), options=options)
        done = _execute(store, home, run, args)
    _report_run(args, done)
    return 0


def run_retry(args: argparse.Namespace) -> int:
    home = resolve_home(args.home)
    with Store.open(home) as store:
        engine = RunEngine(store)
        new_id = engine.retry(args.run_id, out_path=args.out.resolve() if args.out else None)
        done = _execute(store, home, engine.get_run(new_id), args)
    _report_run(args, done)
    return 0


def _report_run(args: argparse.Namespace, run: ExportRun) -> None:
    if args.json:
        print_json(run.to_dict())
        return
    art = run.to_dict()["artifact"] or {}
    stdout.print(
        f"[bold green]{run.state}[/] {run.run_id}: {escape(str(art.get('path')))}\n"
        f"  sha256 {art.get('sha256')}  {art.get('size')} bytes, {run.input_count} input documents\n"
        f"  verify with: stella verify {escape(str(art.get('path')))} --key SIGNER.pub"
    )


def run_list(args: argparse.Namespace) -> int:
    with Store.open(resolve_home(args.home), read_only=True) as store:
        runs = RunEngine(store).list_runs(validate_tenant(args.tenant), limit=args.limit)
    if args.json:
        print_json({"runs": [r.to_dict() for r in runs]})
        return 0
    rows = [[r.run_id, r.profile_id, r.state, r.input_count, r.to_dict()["createdAt"]] for r in runs]
    table(["run", "profile", "state", "inputs", "created"], rows)
    return 0


def run_show(args: argparse.Namespace) -> int:
    with Store.open(resolve_home(args.home), read_only=True) as store:
        engine = RunEngine(store)
        run = engine.get_run(args.run_id)
        body = run.to_dict() | {
            "events": [e.to_dict() for e in engine.events(args.run_id)],
            "distributions": [d.to_dict() for d in engine.distributions(args.run_id)],
        }
    _show_json(args, body)
    return 0


def run_cancel(args: argparse.Namespace) -> int:
    home = resolve_home(args.home)
    try:
        with Store.open(home) as store:
            run = RunEngine(store).cancel_run(args.run_id)
        _say(args, run.to_dict(), f"run {run.run_id} is {run.state}")
    except StoreLockedError:
        # The run is being built by the process holding the store: ask it to stop at its next unit.
        path = request_cancel(home, args.run_id)
        _say(args, {"runId": args.run_id, "cancelRequested": str(path)}, f"asked run {args.run_id} to stop")
    return 0


def run_download(args: argparse.Namespace) -> int:
    with Store.open(resolve_home(args.home)) as store:
        dist = RunEngine(store).download(args.run_id, args.to, sink=RichSink("copying"))
    _say(args, dist.to_dict(), f"copied to {dist.to_dict().get('target')} (digest checked)")
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
