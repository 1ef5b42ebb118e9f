"""`stella mirror import|status|rollback|query`: the receiving side of mirror bundles."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.markup import escape

from app.commands.verify import keys_from_files, parse_at, read_identities
from app.output import print_json, stderr, stdout, table
from core.errors import BadInputError, NotFoundError, UsageError
from core.home import Home, resolve_home
from core.keys import KeyStore, read_passphrase_file
from core.mirror_layout import IndexedDocument, query, read_document
from core.progress import CancelToken, Check
from core.signing import Signer
from core.trust import TrustStore
from verify.mirror import DEFAULT_MIN_FREE, ImportResult, MirrorDir, import_bundle, rollback, status, verify_current

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
    imp.add_argument("--trust-root", type=Path, metavar="ROOT.json", help="TUF root to trust (first import)")
    imp.add_argument("--identity", type=Path, action="append", metavar="FILE", help="age identity file")
    imp.add_argument("--passphrase-file", type=Path, metavar="F", help="age passphrase the payload used")
    imp.add_argument("--at", metavar="TIME", help="evaluate expiry at this RFC 3339 time (UTC)")
    imp.add_argument("--receipt-key", metavar="NAME", help="key-store key that signs the receipt")
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

    rb = msub.add_parser("rollback", parents=[common], help="make the previous state current again")
    rb.add_argument("dir", type=Path)
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


def receipt_signer(home: Home, name: str | None) -> Signer:
    """The key-store key that signs an import receipt: ``name``, or else the home's only key."""
    store = KeyStore(home)
    if name is None:
        keys = store.list()
        if len(keys) != 1:
            raise UsageError(
                "choose the key that signs the import receipt",
                hint="give --receipt-key NAME" if keys else "generate one: stella keys generate receiver",
            )
        name = keys[0].name
    return Signer.from_keystore(store, name)


def import_into_mirror(
    home: Home,
    bundle: Path,
    into: Path,
    *,
    key_files: Sequence[Path] = (),
    receipt_key: str | None = None,
    trust_root: Path | None = None,
    identity_files: Sequence[Path] = (),
    passphrase_file: Path | None = None,
    at: str | None = None,
    min_free: str = str(DEFAULT_MIN_FREE),
    on_check: Callable[[Check], None] | None = None,
    cancel: CancelToken | None = None,
) -> ImportResult:
    """What `stella mirror import` does, without printing (the CLI and the TUI share it); ``cancel`` as for
    :func:`verify.mirror.import_bundle`.

    The arguments are the command's, as typed: trusted signer keys (else the trust store), the receipt key
    (else the home's only key), the TUF root for a first import, age identity files or a passphrase file for an
    encrypted payload, ``--at`` and ``--min-free``. They are read in that order, so the first bad one is reported.
    """
    keys = keys_from_files(list(key_files)) if key_files else TrustStore(home).list()
    signer = receipt_signer(home, receipt_key)
    root = None
    if trust_root is not None:
        try:
            root = trust_root.read_bytes()
        except OSError as exc:
            raise BadInputError(f"cannot read the TUF root: {exc.strerror}", path=str(trust_root)) from None
    identities = [i for path in identity_files for i in read_identities(path)]
    passphrase = read_passphrase_file(passphrase_file).decode() if passphrase_file else None
    return import_bundle(
        bundle,
        into,
        keys=keys,
        signer=signer,
        trust_root=root,
        identities=identities,
        passphrase=passphrase,
        at=parse_at(at),
        min_free=_size(min_free),
        on_check=on_check,
        cancel=cancel,
    )


def run_import(args: argparse.Namespace) -> int:
    def show(check: Check) -> None:
        if not args.json:
            mark = "[green]  ok  [/]" if check.ok else "[bold red] FAIL [/]"
            (stdout if check.ok else stderr).print(f"{mark} {check.name:16} {escape(check.detail)}")

    result = import_into_mirror(
        resolve_home(args.home),
        args.bundle,
        args.into,
        key_files=args.key or (),
        receipt_key=args.receipt_key,
        trust_root=args.trust_root,
        identity_files=args.identity or (),
        passphrase_file=args.passphrase_file,
        at=args.at,
        min_free=args.min_free,
        on_check=show,
    )
    if args.receipt_out is not None:
        args.receipt_out.write_bytes(result.receipt_path.read_bytes())
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
    body = status(args.dir, at=parse_at(args.at))
    if args.json:
        print_json(body)
        return 0
    current = body["current"]
    if current is None:
        stdout.print(f"{escape(str(args.dir))}: empty mirror (no import yet)")
        return 0
    stdout.print(
        f"state {current['stateDigest'][:12]}  sequence {current['sequence']}  tenant {current['tenant']}  "
        f"run {current['runId']}  created {current['createdAt']}  {current['counts'].get('documents', 0)} documents"
    )
    rows = [[role, info["version"], info["expires"]] for role, info in body["tuf"].items() if info]
    table(["TUF role", "version", "expires"], rows)
    if body["expired"]:
        stderr.print(f"[bold red]expired at {body['at']}:[/] {', '.join(body['expired'])}")
    last = body.get("lastImport")
    if last:
        stdout.print(
            f"last import {last['importedAt']}: {escape(str(last['bundle']['name']))}  receipt {last['receipt']}"
        )
    if body["previous"]:
        stdout.print(f"previous state {body['previous']['stateDigest'][:12]} (stella mirror rollback)")
    if body["quarantined"]:
        stderr.print(f"{body['quarantined']} bundle(s) in quarantine: {escape(str(args.dir / 'quarantine'))}")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    body = verify_current(args.dir, at=parse_at(args.at))
    if args.json:
        print_json({k: v for k, v in body.items() if k != "targets"} | {"targets": len(body["targets"])})
    else:
        stdout.print(
            f"[bold green]verified[/] state {body['stateDigest'][:12]} (sequence {body['sequence']}): "
            f"{body['files']} files match TUF targets {body['targetsVersion']} under root {body['rootVersion']}"
        )
    return 0


def run_rollback(args: argparse.Namespace) -> int:
    body = rollback(args.dir)
    _say(args, body, f"rolled back: current state {body['stateDigest'][:12]} (sequence {body['sequence']})")
    return 0


def query_mirror(
    mirror: Path, *, document_id: str | None = None, purl: str | None = None, subject: str | None = None
) -> tuple[Path, list[IndexedDocument]]:
    """What `stella mirror query` finds, without printing: the current state's tree and the matching documents.

    At least one of ``document_id``, ``purl`` and ``subject`` is needed; a document must match every one given."""
    if not (document_id or purl or subject):
        raise UsageError("give --id, --purl or --subject")
    current = MirrorDir(mirror).current()
    if current is None:
        raise NotFoundError("the mirror is empty", path=str(mirror))
    tree = current / "tree"
    return tree, query(tree, document_id=document_id, purl=purl, subject=subject)


def run_query(args: argparse.Namespace) -> int:
    tree, hits = query_mirror(args.dir, document_id=args.document_id, purl=args.purl, subject=args.subject)
    if args.raw:
        if len(hits) != 1:
            raise UsageError(f"--raw needs exactly one match, found {len(hits)}")
        sys.stdout.buffer.write(read_document(tree, hits[0]))
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
