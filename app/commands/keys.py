"""`stella keys generate|list|export-public`: signing keys under the home."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from app.output import print_json, stdout, table
from core.home import resolve_home
from core.keys import KeyAlgorithm
from services.keys import export_public_key, generate_key, list_keys, public_key_pem


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("keys", parents=[common], help="signing keys")
    ksub = p.add_subparsers(dest="keys_command", metavar="ACTION", required=True)

    gen = ksub.add_parser("generate", parents=[common], help="create a key pair")
    gen.add_argument("name")
    gen.add_argument(
        "--algorithm",
        choices=[a.value for a in KeyAlgorithm],
        default=KeyAlgorithm.ECDSA_P256.value,
        help="ecdsa-p256 (default, cosign's) or ed25519",
    )
    gen.add_argument("--passphrase-file", type=Path, metavar="F", help="encrypt the private key with this passphrase")
    gen.set_defaults(handler=run_generate)

    lst = ksub.add_parser("list", parents=[common], help="list keys")
    lst.set_defaults(handler=run_list)

    exp = ksub.add_parser("export-public", parents=[common], help="print the public key (PEM, cosign-compatible)")
    exp.add_argument("name")
    exp.add_argument("--out", type=Path, metavar="FILE", help="write to FILE instead of stdout")
    exp.set_defaults(handler=run_export)


def run_generate(args: argparse.Namespace) -> int:
    info = generate_key(resolve_home(args.home), args.name, KeyAlgorithm(args.algorithm), args.passphrase_file)
    if args.json:
        print_json(info.to_dict())
    else:
        enc = "encrypted" if info.encrypted else "unencrypted"
        stdout.print(f"generated {info.algorithm} key [bold]{info.name}[/] ({enc}), key id {info.keyid}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    keys = list_keys(resolve_home(args.home))
    if args.json:
        print_json({"keys": [k.to_dict() for k in keys]})
        return 0
    if not keys:
        stdout.print("no keys; create one with `stella keys generate NAME`")
        return 0
    table(
        ["name", "algorithm", "key id", "created", "encrypted"],
        [[k.name, k.algorithm, k.keyid[:16], k.created, "yes" if k.encrypted else "no"] for k in keys],
    )
    return 0


def run_export(args: argparse.Namespace) -> int:
    home = resolve_home(args.home)
    if args.out:
        export_public_key(home, args.name, args.out)
    else:
        sys.stdout.buffer.write(public_key_pem(home, args.name))
    return 0
