"""`stella mirror import|status|verify|rollback|query|trust-root`: the receiving side of mirror bundles."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from app.commands.verify import CheckPrinter
from app.output import escape, print_json, stderr, stdout, table
from core.clock import parse_at
from core.errors import Cancelled, UsageError
from core.home import resolve_home
from services.mirror import query_mirror, rollback, rollback_plan, status, verify_current
from services.mirror_import import DEFAULT_MIN_FREE
from services.mirror_trust import replace_trust_root
from services.receive import MIRROR, ReceiveRequest

_SIZE = re.compile(r"^([0-9]+)([KMGT]?)$")


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("mirror", parents=[common], help="import mirror bundles into a mirror directory, safely")
    msub = p.add_subparsers(dest="mirror_command", metavar="ACTION", required=True)

    imp = msub.add_parser(
        "import",
        parents=[common],
        help="verify a mirror bundle, then apply it atomically",
        description="Verify everything first (bundle signature and digests, the TUF chain from the pinned root, "
        "expiry, anti-rollback, the delta's base), then swap the new state in. A failed bundle is quarantined. "
        "Exit codes: 0 imported, 3 bad input, 4 integrity, 5 signature, 6 TUF/expiry/rollback/wrong base, "
        "7 policy, 8 environment (space, lock).",
    )
    imp.add_argument("bundle", type=Path)
    imp.add_argument("--into", type=Path, required=True, metavar="DIR", help="the mirror directory")
    imp.add_argument("--key", type=Path, action="append", metavar="PUB", help="trusted bundle signer (PEM)")
    imp.add_argument(
        "--trust-root",
        type=Path,
        metavar="ROOT.json",
        help="TUF root to pin (first import); later, only that same root (change it with `mirror trust-root`)",
    )
    imp.add_argument("--identity", type=Path, action="append", metavar="FILE", help="age identity file")
    imp.add_argument("--passphrase-file", type=Path, metavar="F", help="age passphrase the payload used")
    imp.add_argument("--at", metavar="TIME", help="evaluate expiry at this RFC 3339 time (UTC)")
    imp.add_argument(
        "--receipt-key",
        metavar="NAME",
        help="key-store key that signs the receipt (default: the key named 'receipt', else the home's only key; "
        "a home without keys gets a new 'receipt' key)",
    )
    imp.add_argument("--receipt-out", type=Path, metavar="F", help="also copy the signed receipt here")
    imp.add_argument("--min-free", default=str(DEFAULT_MIN_FREE), metavar="SIZE", help="free space to keep (64M)")
    imp.set_defaults(handler=run_import)

    st = msub.add_parser("status", parents=[common], help="current state, versions, expiry, last import")
    st.add_argument("dir", type=Path)
    st.add_argument("--at", metavar="TIME", help="evaluate expiry at this time")
    st.set_defaults(handler=run_status)

    ve = msub.add_parser("verify", parents=[common], help="verify the current state afresh (TUF, every file)")
    ve.add_argument("dir", type=Path)
    ve.add_argument("--at", metavar="TIME", help="evaluate expiry at this time")
    ve.set_defaults(handler=run_verify)

    tr = msub.add_parser(
        "trust-root",
        parents=[common],
        help="replace the TUF root a mirror trusts (loud, recorded)",
        description="Pin another TUF root for a mirror directory: the next import verifies from it, with fresh TUF "
        "state. Check the new root's digest with its sender out of band first. The old and the new root's sha256 "
        "are printed and the change is appended to DIR/trust-changes.jsonl.",
    )
    tr.add_argument("--replace", type=Path, required=True, metavar="NEW_ROOT.json", help="the root to trust from now")
    tr.add_argument("--into", type=Path, required=True, metavar="DIR", help="the mirror directory")
    tr.add_argument("--yes", action="store_true", help="say you mean it (required)")
    tr.set_defaults(handler=run_trust_root)

    rb = msub.add_parser(
        "rollback",
        parents=[common],
        help="make the previous state current again (asks first, or --yes)",
        description="Show the current state and the previous one it would make current again, then ask on a "
        "terminal; without a terminal, --yes is required (exit 2). Running it again rolls forward.",
    )
    rb.add_argument("dir", type=Path)
    rb.add_argument("--yes", action="store_true", help="do not ask (required without a terminal)")
    rb.set_defaults(handler=run_rollback)

    q = msub.add_parser("query", parents=[common], help="find documents in a mirror without the store")
    q.add_argument("dir", type=Path)
    q.add_argument("--id", dest="document_id", metavar="ID", help="advisory or document id")
    q.add_argument("--purl", metavar="PURL", help="package purl, with or without @version")
    q.add_argument("--subject", metavar="S", help="SBOM subject")
    q.add_argument("--raw", action="store_true", help="print the documents' bytes (exactly one match)")
    q.set_defaults(handler=run_query)


def _size(text: str) -> int:
    m = _SIZE.match(text.strip().upper())
    if not m:
        raise UsageError(f"--min-free {text!r} is not a size", hint="bytes, or a number with K, M, G or T")
    exponent = " KMGT".index(m.group(2) or " ")
    return int(m.group(1)) * (1 << (10 * exponent))


def run_import(args: argparse.Namespace) -> int:
    request = ReceiveRequest(
        args.bundle,
        key_files=tuple(args.key or ()),
        at=parse_at(args.at),
        into=args.into,
        trust_root=args.trust_root,
        identity_files=tuple(args.identity or ()),
        passphrase_file=args.passphrase_file,
        receipt_key=args.receipt_key,
        min_free=_size(args.min_free),
        receipt_out=args.receipt_out,
    )
    result = MIRROR.receive(resolve_home(args.home), request, CheckPrinter(args, paths=False))
    if result.receipt_key_note:
        stderr.print(escape(result.receipt_key_note))
    if args.json:
        print_json(result.to_dict())
    else:
        stdout.print(
            f"[bold green]imported[/] {escape(str(args.bundle))}: state {result.state_digest[:12]} "
            f"(sequence {result.state.sequence}, {result.state.counts.get('documents', 0)} documents), "
            f"{result.written_bytes} bytes written, {result.linked_files} files kept\n"
            f"  receipt: {escape(str(result.receipt_path))}"
        )
    return 0


def run_status(args: argparse.Namespace) -> int:
    mirror = status(args.dir, at=parse_at(args.at))
    if args.json:
        print_json(mirror.to_dict())
        return 0
    current = mirror.current
    if current is None:
        stdout.print(f"{escape(str(args.dir))}: empty mirror (no import yet)")
        return 0
    stdout.print(
        f"state {current.state_digest[:12]}  sequence {current.sequence}  tenant {current.tenant}  "
        f"run {current.run_id}  created {current.created_at}  {current.documents} documents"
    )
    rows = [[role, info.version, info.expires_text] for role, info in mirror.tuf.items() if info]
    table(["TUF role", "version", "expires"], rows)
    if mirror.expired:
        stderr.print(f"[bold red]expired at {mirror.at_text}:[/] {', '.join(mirror.expired)}")
    last = mirror.last_import
    if last:
        stdout.print(f"last import {last.imported_at}: {escape(last.bundle_name)}  receipt {last.receipt}")
    if mirror.previous:
        stdout.print(f"previous state {mirror.previous.state_digest[:12]} (stella mirror rollback)")
    if mirror.quarantined:
        stderr.print(f"{mirror.quarantined} bundle(s) in quarantine: {escape(str(args.dir / 'quarantine'))}")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    verified = verify_current(args.dir, at=parse_at(args.at))
    if args.json:
        body = verified.to_dict()
        print_json({k: v for k, v in body.items() if k != "targets"} | {"targets": len(body["targets"])})
    else:
        stdout.print(
            f"[bold green]verified[/] state {verified.state.digest[:12]} (sequence {verified.state.sequence}): "
            f"{verified.files} files match TUF targets {verified.tuf.targets_version} under root "
            f"{verified.tuf.root_version}"
        )
    return 0


def run_rollback(args: argparse.Namespace) -> int:
    plan = rollback_plan(args.dir)
    stderr.print(escape(plan.text))
    if not args.yes:
        if not (sys.stdin.isatty() and sys.stderr.isatty()):
            raise UsageError("mirror rollback needs a confirmation", hint="pass --yes (there is no terminal to ask on)")
        answer = input(f"make state {plan.target.state_digest[:12]} current again? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            raise Cancelled("rollback not confirmed: nothing changed")
    done = rollback(args.dir, expect=plan.target.state_digest)
    _say(args, done.to_dict(), f"rolled back: current state {done.state_digest[:12]} (sequence {done.sequence})")
    return 0


def run_query(args: argparse.Namespace) -> int:
    found = query_mirror(args.dir, document_id=args.document_id, purl=args.purl, subject=args.subject)
    hits = found.documents
    if args.raw:
        if len(hits) != 1:
            raise UsageError(f"--raw needs exactly one match, found {len(hits)}")
        sys.stdout.buffer.write(found.read(hits[0]))
        return 0
    if args.json:
        print_json({"documents": [d.to_dict() for d in hits]})
        return 0
    table(["kind", "document", "format", "sha256"], [[d.kind, d.document_id, d.format, d.sha256[:16]] for d in hits])
    return 0


def _say(args: argparse.Namespace, body: dict[str, Any], text: str) -> None:
    if args.json:
        print_json(body)
    else:
        stdout.print(escape(text))


def run_trust_root(args: argparse.Namespace) -> int:
    change = replace_trust_root(args.into, args.replace, yes=args.yes)
    if args.json:
        print_json(change.to_dict())
        return 0
    previous = str(change.previous) if change.previous is not None else "none"
    stderr.print(f"[bold yellow]warning:[/] the TUF root {escape(str(args.into))} trusts was replaced")
    stdout.print(f"old root: {escape(previous)}")
    stdout.print(f"new root: {escape(str(change.root))}")
    stdout.print(f"recorded in {escape(str(change.to_dict()['log']))}; the next import verifies from the new root")
    return 0
