"""`stella devportal ...`: import a developer portal, export it as bundle.tgz, verify it, serve it locally."""

from __future__ import annotations

import argparse
import functools
import http.server
import signal
import threading
from pathlib import Path
from typing import Any

from app.commands.verify import CheckPrinter, finish
from app.output import RichSink, escape, print_json, stderr, stdout, table
from core.errors import UsageError
from core.home import resolve_home
from core.tenants import DEFAULT_TENANT
from services.devportal import export_devportal, import_devportal, list_devportals
from services.portal import verified_portal
from services.receive import DEVPORTAL, ReceiveRequest


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "devportal",
        parents=[common],
        help="developer portals: import a tree, export bundle.tgz, verify it, serve it on 127.0.0.1",
    )
    dsub = p.add_subparsers(dest="devportal_command", metavar="ACTION", required=True)
    tenant = argparse.ArgumentParser(add_help=False)
    tenant.add_argument("--tenant", default=DEFAULT_TENANT)
    keys = argparse.ArgumentParser(add_help=False)
    keys.add_argument("--key", type=Path, action="append", metavar="PUB", help="trusted public key (PEM); repeatable")

    im = dsub.add_parser(
        "import",
        parents=[common, tenant],
        help="import a portal tree (pages, OpenAPI specs, SDKs, changelogs); all or nothing",
        description="Import a developer-portal directory. Every OpenAPI description (3.0, 3.1; Swagger 2.0) is "
        "validated against its official schema; one invalid spec or unsafe path refuses the whole import "
        "(exit 3 / 4) and nothing is written.",
    )
    im.add_argument("dir", type=Path)
    im.add_argument("--portal", metavar="NAME", help="portal name (default: the directory's name)")
    im.set_defaults(handler=run_import)

    ls = dsub.add_parser("list", parents=[common, tenant], help="imported portals and their current trees")
    ls.set_defaults(handler=run_list)

    ex = dsub.add_parser(
        "export",
        parents=[common, tenant],
        help="build a signed devportal:offline bundle (.tgz) of a portal's current tree",
        description="Plans and runs a devportal:offline export run (same engine, events and retries as "
        "`stella export run`), pinned to the portal's current tree.",
    )
    ex.add_argument("--portal", metavar="NAME", help="portal to export (default: the tenant's only portal)")
    ex.add_argument("--out", type=Path, help="bundle path (default: HOME/exports/devportal-<portal>-<time>.tgz)")
    ex.add_argument("--mkdir", "-p", action="store_true", help="create the directory of --out when it is missing")
    ex.add_argument("--key", metavar="NAME", help="signing key (default: the profile's signing_key)")
    ex.add_argument("--passphrase-file", type=Path, metavar="F", help="passphrase of an encrypted key")
    ex.set_defaults(handler=run_export)

    ve = dsub.add_parser(
        "verify",
        parents=[common, keys],
        help="verify a devportal bundle offline: DSSE signature, every digest, no extra or missing file",
        description="Exit codes: 0 verified, 3 bad input, 4 integrity (digest, size, missing or unlisted file, "
        "unsafe path), 5 signature (missing or bad manifest.dsse.json, no trusted signer).",
    )
    ve.add_argument("bundle", type=Path, help="bundle.tgz, or a directory it was extracted to")
    ve.set_defaults(handler=run_verify)

    se = dsub.add_parser(
        "serve",
        parents=[common, keys],
        help="verify a portal bundle, then serve its portal on 127.0.0.1 for local browsing",
        description="Verifies first (as `stella devportal verify`), copies what verified into a private "
        "directory and serves only that copy, on 127.0.0.1. Ctrl-C stops the server.",
    )
    se.add_argument("bundle", type=Path, metavar="BUNDLE|DIR", help="bundle.tgz, or an extracted bundle directory")
    se.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (0: any free port; default 8000)")
    se.set_defaults(handler=run_serve)


# -- import / list -------------------------------------------------------------------------------
def run_import(args: argparse.Namespace) -> int:
    result = import_devportal(resolve_home(args.home), args.dir, portal=args.portal, tenant=args.tenant)
    if args.json:
        print_json(result.to_dict())
        return 0
    state = "imported" if result.changed else "unchanged (this tree is already current)"
    counts = ", ".join(f"{n} {role}" for role, n in result.counts.items() if role != "files" and n)
    stdout.print(
        f"[bold green]{state}[/] portal {escape(result.portal)} for tenant {escape(result.tenant)}: "
        f"{result.files} files ({counts}); {result.imported} new documents, {result.duplicates} already stored\n"
        f"  tree {result.tree_sha256}"
    )
    for spec in result.specs:
        stdout.print(f"  openapi {escape(spec['openapi'])}  {escape(spec['path'])}  [green]valid[/]")
    return 0


def run_list(args: argparse.Namespace) -> int:
    portals = list_devportals(resolve_home(args.home), args.tenant)
    if args.json:
        print_json({"portals": portals})
        return 0
    table(
        ["portal", "files", "bytes", "imported", "tree"],
        [[p["portal"], p["files"], p["size"], p["importedAt"], p["tree"][:16]] for p in portals],
    )
    return 0


# -- export --------------------------------------------------------------------------------------
def run_export(args: argparse.Namespace) -> int:
    result = export_devportal(
        resolve_home(args.home),
        args.tenant,
        portal=args.portal,
        out=args.out,
        mkdir=args.mkdir,
        key=args.key,
        passphrase_file=args.passphrase_file,
        observer=RichSink("building portal bundle"),
    )
    done, portal = result.run, result.portal
    if args.json:
        print_json(result.to_dict())
        return 0
    art = done.to_dict()["artifact"] or {}
    public_key = resolve_home(args.home).keys_dir / f"{done.key_name}.pub"  # what keys export-public writes
    stdout.print(
        f"[bold green]{done.state}[/] {done.run_id}: portal {escape(portal)} -> {escape(str(art.get('path')))}\n"
        f"  sha256 {art.get('sha256')}  {art.get('size')} bytes\n"
        f"  verify with: stella devportal verify {escape(str(art.get('path')))} --key {escape(str(public_key))}"
    )
    return 0


# -- verify / serve ------------------------------------------------------------------------------
def run_verify(args: argparse.Namespace) -> int:
    request = ReceiveRequest(args.bundle, key_files=tuple(args.key or ()))
    report = DEVPORTAL.verify(resolve_home(args.home), request, CheckPrinter(args, 14))
    m = report.manifest
    return finish(
        args,
        report,
        lambda: (
            f"portal {escape(str(m.portal))} for tenant {escape(str(m.tenant))}, "
            f"{m.file_count} files, created {m.created_at}"
        ),
    )


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Static files from the verified copy; request lines go to stderr like every diagnostic."""

    def log_message(self, format: str, *args: Any) -> None:
        stderr.print(escape(f"{self.address_string()} {format % args}"), markup=True)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run_serve(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port} is not a TCP port", hint="0 picks any free port")
    home = resolve_home(args.home)
    with verified_portal(home, args.bundle, args.key or (), observer=CheckPrinter(args, 14)) as (report, root):
        if root is None:
            return finish(args, report) or 4
        handler = functools.partial(_QuietHandler, directory=str(root))
        try:
            server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), handler)
        except OSError as exc:
            raise UsageError(f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror}", hint="try --port 0") from None
        port = server.server_address[1]
        url = f"http://127.0.0.1:{port}/"
        if args.json:
            print_json(
                {"serving": url, "portal": report.manifest.portal, "root": str(root)}
                | {"verification": report.to_dict()}
            )
        else:
            stdout.print(f"[bold green]serving[/] portal {escape(str(report.manifest.portal))} on {url}")
            stderr.print("press Ctrl-C to stop")
        worker = threading.Thread(target=server.serve_forever, name="devportal-serve", daemon=True)
        worker.start()
        if threading.current_thread() is threading.main_thread():
            # SIGTERM stops the server like Ctrl-C does, so the verified copy is removed either way.
            signal.signal(signal.SIGTERM, _interrupt)
        try:
            worker.join()
        except KeyboardInterrupt:
            stderr.print("stopping")
        finally:
            server.shutdown()
            server.server_close()
        return 0
