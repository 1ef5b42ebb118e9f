"""`stella inspect BUNDLE`: a bundle's manifest at a glance (kind, tenant, counts, signer, dates, sizes), unverified."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from app.output import escape, print_json, stdout
from services.inspect import inspect_bundle


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "inspect",
        parents=[common],
        help="show what a bundle's manifest says (kind, tenant, counts, signer, dates, sizes) WITHOUT verifying it",
        description="Read the bundle's manifest through the safe archive reader and show it. Nothing is verified: "
        "no signature, digest or size is checked, so nothing shown can be trusted until `stella verify` passes. "
        '--json carries "verified": false. Exit codes: 0 shown, 3 not a bundle or a damaged archive.',
    )
    p.add_argument("bundle", type=Path)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    found = inspect_bundle(args.bundle)
    if args.json:
        print_json(found.to_dict())
        return 0
    stdout.print(f"[bold yellow]{escape(found.note)}[/]")
    width = max(len(label) for label, _ in found.rows())
    for label, value in found.rows():
        stdout.print(f"{label:{width}}  {escape(value)}")
    return 0
