"""`stella keys generate|import|list|rename|delete|export-public`: signing keys under the home.

Passphrases: ``--passphrase-file``, else ``$STELLA_PASSWORD``, else a prompt on a terminal (services.keys)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from app.output import print_json, stdout, table
from core.errors import UsageError
from core.home import resolve_home
from core.keys import KeyAlgorithm
from services.keys import (
    delete_key,
    export_public_key,
    generate_key,
    import_key,
    list_keys,
    public_key_pem,
    rename_key,
)


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
    gen.add_argument(
        "--passphrase-file",
        type=Path,
        metavar="F",
        help="encrypt the private key with this passphrase (or set $STELLA_PASSWORD)",
    )
    gen.set_defaults(handler=run_generate)

    imp = ksub.add_parser(
        "import",
        parents=[common],
        help="import a PEM private key (ECDSA P-256 or Ed25519), optionally encrypted",
        description="Store the PEM private key in FILE (PKCS#8 or SEC1, as openssl and cosign write them) as NAME. "
        "An encrypted key is unlocked with its passphrase (--passphrase-file, else $STELLA_PASSWORD, else a "
        "prompt on a terminal) and stays encrypted with it. Exit codes: 2 name taken or passphrase missing, "
        "3 not a usable private key, 5 wrong passphrase.",
    )
    imp.add_argument("name")
    imp.add_argument("file", type=Path, metavar="FILE", help="the PEM private key")
    imp.add_argument("--passphrase-file", type=Path, metavar="F", help="the key's passphrase (first line)")
    imp.set_defaults(handler=run_import)

    ren = ksub.add_parser("rename", parents=[common], help="give a key another name")
    ren.add_argument("old")
    ren.add_argument("new")
    ren.set_defaults(handler=run_rename)

    dele = ksub.add_parser(
        "delete",
        parents=[common],
        help="delete a key for good (needs --yes)",
        description="Delete the private and public key NAME from the home. There is no undo: bundles it signed "
        "still verify with its public key where that is trusted. A key that signs a TUF role is refused.",
    )
    dele.add_argument("name")
    dele.add_argument("--yes", action="store_true", help="confirm: delete the key")
    dele.set_defaults(handler=run_delete)

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


def run_import(args: argparse.Namespace) -> int:
    info = import_key(resolve_home(args.home), args.name, args.file, args.passphrase_file)
    if args.json:
        print_json(info.to_dict())
    else:
        enc = "encrypted" if info.encrypted else "unencrypted"
        stdout.print(f"imported {info.algorithm} key [bold]{info.name}[/] ({enc}), key id {info.keyid}")
    return 0


def run_rename(args: argparse.Namespace) -> int:
    info = rename_key(resolve_home(args.home), args.old, args.new)
    if args.json:
        print_json({"renamed": args.old} | info.to_dict())
    else:
        stdout.print(f"renamed key {args.old} to [bold]{info.name}[/] (key id {info.keyid})")
    return 0


def run_delete(args: argparse.Namespace) -> int:
    if not args.yes:
        raise UsageError(
            f"deleting key {args.name!r} cannot be undone", hint=f"run `stella keys delete {args.name} --yes`"
        )
    info = delete_key(resolve_home(args.home), args.name)
    if args.json:
        print_json({"deleted": info.name, "keyid": info.keyid})
    else:
        stdout.print(f"deleted key {info.name} (key id {info.keyid})")
    return 0
