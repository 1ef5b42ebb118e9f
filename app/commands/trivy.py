"""`stella trivy install BUNDLE [--cache-dir D]`: verify a trivy:db / trivy:java-db bundle, then install it atomically
(the workflow is :mod:`services.trivy`'s)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from app.commands.verify import CheckPrinter
from app.output import escape, print_json, stdout
from core.clock import parse_at
from core.home import resolve_home
from services.receive import TRIVY, ReceiveRequest
from services.trivy import SCAN_FLAGS


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("trivy", parents=[common], help="Trivy DB bundles: install into a Trivy cache")
    tsub = p.add_subparsers(dest="trivy_command", metavar="ACTION", required=True)
    inst = tsub.add_parser(
        "install",
        parents=[common],
        help="verify a trivy:db or trivy:java-db bundle and install it into a Trivy cache directory",
        description="Verify the bundle (as `stella verify` does), then install its Trivy cache files atomically. "
        "Exit codes: 0 installed, 2 usage, 3 bad input, 4 integrity, 5 signature, 6 trust metadata, 8 environment.",
    )
    inst.add_argument("bundle", type=Path)
    inst.add_argument(
        "--cache-dir",
        type=Path,
        metavar="DIR",
        help="Trivy's --cache-dir (default: where Trivy looks without one: $TRIVY_CACHE_DIR, else ~/.cache/trivy)",
    )
    inst.add_argument("--key", type=Path, action="append", metavar="PUB", help="trusted public key (PEM); repeatable")
    inst.add_argument("--at", metavar="TIME", help="evaluate time-dependent checks at this RFC 3339 time (UTC)")
    inst.set_defaults(handler=run_install)


def run_install(args: argparse.Namespace) -> int:
    request = ReceiveRequest(
        args.bundle, key_files=tuple(args.key or ()), at=parse_at(args.at), cache_dir=args.cache_dir
    )
    result = TRIVY.receive(resolve_home(args.home), request, CheckPrinter(args, passes=False))
    if args.json:
        print_json(result.to_dict())
        return 0
    for item in result.files:
        stdout.print(f"installed {escape(item['path'])} ({item['size']} bytes, sha256 {item['sha256'][:16]}...)")
    stdout.print(
        f"[bold green]installed[/] {result.profile} (schema {result.schema_version}) from a verified bundle into "
        f"{escape(result.cache_dir)}{_default_note(args)}\n"
        f"  scan with: trivy <target> --cache-dir {escape(result.cache_dir)} {SCAN_FLAGS}"
    )
    return 0


def _default_note(args: argparse.Namespace) -> str:
    """Why the cache directory is where it is, when no --cache-dir was given."""
    if args.cache_dir is not None:
        return ""
    return " ($TRIVY_CACHE_DIR)" if os.environ.get("TRIVY_CACHE_DIR") else " (Trivy's default cache directory)"
