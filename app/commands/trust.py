"""`stella trust add|list|remove`: the public keys this installation accepts signatures from."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from app.output import print_json, stdout, table
from core.home import resolve_home
from core.trust import TrustedKey
from services.trust import add_trusted_key, list_trusted_keys, remove_trusted_key


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``trust`` command and its actions to the top-level subparsers."""
    p = sub.add_parser("trust", parents=[common], help="trusted public keys for verification")
    tsub = p.add_subparsers(dest="trust_command", metavar="ACTION", required=True)

    add = tsub.add_parser(
        "add",
        parents=[common],
        help="trust a public key (ECDSA P-256 or Ed25519 PEM)",
        description="Trust the public key in PUBKEY (PEM, e.g. cosign.pub) under LABEL. Without --profile or "
        "--tenant the key is trusted for every profile and tenant. With --receipts-only (a receiver's receipt "
        "key) it is accepted for mirror import receipts only and refused as a bundle signer (exit 5).",
    )
    add.add_argument("label", help="a short name for the key (letters, digits, '.', '_', '-')")
    add.add_argument("pubkey", type=Path, metavar="PUBKEY.pem", help="the signer's public key")
    add.add_argument(
        "--profile",
        action="append",
        default=[],
        metavar="P",
        help="only for this profile (e.g. mirror:full, or mirror for every variant); repeatable",
    )
    add.add_argument("--tenant", action="append", default=[], metavar="T", help="only for this tenant; repeatable")
    add.add_argument(
        "--receipts-only",
        action="store_true",
        help="a receiver's receipt key: accepted for mirror import receipts (--base RECEIPT) only, never as a "
        "bundle signer",
    )
    add.set_defaults(handler=run_add)

    lst = tsub.add_parser("list", parents=[common], help="list trusted keys")
    lst.set_defaults(handler=run_list)

    rm = tsub.add_parser("remove", parents=[common], help="stop trusting a key")
    rm.add_argument("label")
    rm.set_defaults(handler=run_remove)


def run_add(args: argparse.Namespace) -> int:
    """``stella trust add LABEL PUBKEY.pem``."""
    key = add_trusted_key(
        resolve_home(args.home),
        args.label,
        args.pubkey,
        profiles=args.profile,
        tenants=args.tenant,
        receipts_only=args.receipts_only,
    )
    if args.json:
        print_json(key.to_dict())
    else:
        stdout.print(f"trusted {key.algorithm} key [bold]{key.label}[/], key id {key.keyid}", markup=True)
        if key.receipts_only:
            stdout.print("  for import receipts only; it signs no bundle", markup=False)
        else:
            stdout.print(f"  profiles: {_scope(key.profiles)}; tenants: {_scope(key.tenants)}", markup=False)
    return 0


def run_list(args: argparse.Namespace) -> int:
    """``stella trust list``."""
    keys = list_trusted_keys(resolve_home(args.home))
    if args.json:
        print_json({"keys": [k.to_dict() for k in keys]})
        return 0
    if not keys:
        stdout.print("no trusted keys; add one with `stella trust add LABEL PUBKEY.pem`", markup=False)
        return 0
    table(
        ["label", "algorithm", "key id", "profiles", "tenants"],
        [
            [k.label, k.algorithm, k.keyid[:16], *(("receipts only", "-") if k.receipts_only else _scopes(k))]
            for k in keys
        ],
    )
    return 0


def run_remove(args: argparse.Namespace) -> int:
    """``stella trust remove LABEL``."""
    key = remove_trusted_key(resolve_home(args.home), args.label)
    if args.json:
        print_json({"removed": args.label, "keyid": key.keyid if key else None})
    elif key is None:
        stdout.print(f"removed damaged trust entry {args.label}", markup=False)
    else:
        stdout.print(f"removed trusted key {key.label} (key id {key.keyid})", markup=False)
    return 0


def _scope(values: tuple[str, ...]) -> str:
    return ", ".join(values) if values else "any"


def _scopes(key: TrustedKey) -> tuple[str, str]:
    return _scope(key.profiles), _scope(key.tenants)
