"""`stella bootstrap build|list|push`: bootstrap packs of container images and Helm charts (docs/bootstrap.md)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from app.commands.distribute import _access, _access_options
from app.output import RichSink, escape, print_json, stdout, table
from core.home import resolve_home
from core.tenants import DEFAULT_TENANT
from services.bootstrap import build_pack, push_pack, verified_pack

HELP = "bootstrap packs: images and Helm charts, signed, offline; list, push"


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("bootstrap", parents=[common], help=HELP)
    bsub = p.add_subparsers(dest="bootstrap_command", metavar="ACTION", required=True)
    keys = argparse.ArgumentParser(add_help=False)
    keys.add_argument("--key", type=Path, action="append", metavar="PUB", help="trusted public key (PEM); repeatable")

    b = bsub.add_parser(
        "build", parents=[common, _access_options()], help="build a pack from a pack spec (bootstrap.yaml)"
    )
    b.add_argument("spec", type=Path, metavar="SPEC")
    b.add_argument("--out", type=Path, help="pack path (default: HOME/exports/bootstrap-<time>.tar.zst)")
    b.add_argument("--mkdir", "-p", action="store_true", help="create the directory of --out when it is missing")
    b.add_argument("--tenant", default=DEFAULT_TENANT)
    b.add_argument("--signing-key", dest="signing_key", metavar="NAME", help="signing key (default: the profile's)")
    b.add_argument("--passphrase-file", type=Path, metavar="F", help="passphrase of an encrypted key")
    b.set_defaults(handler=run_build)

    ls = bsub.add_parser("list", parents=[common, keys], help="verify a pack, then list its images and charts")
    ls.add_argument("pack", type=Path, metavar="PACK")
    ls.set_defaults(handler=run_list)

    pu = bsub.add_parser(
        "push",
        parents=[common, keys, _access_options()],
        help="verify a pack, then push every image and chart by digest to a registry",
    )
    pu.add_argument("pack", type=Path, metavar="PACK")
    pu.add_argument("--registry", required=True, metavar="HOST[/PREFIX]", help="where the images and charts go")
    pu.set_defaults(handler=run_push)


def run_build(args: argparse.Namespace) -> int:
    run = build_pack(
        resolve_home(args.home),
        args.spec,
        args.tenant,
        out=args.out,
        mkdir=args.mkdir,
        key=args.signing_key,
        passphrase_file=args.passphrase_file,
        access=_access(args),
        observer=RichSink("building"),
    )
    if args.json:
        print_json(run.to_dict())
        return 0
    stdout.print(f"built {escape(str(run.artifact_path))} (run {run.run_id})")
    return 0


def run_list(args: argparse.Namespace) -> int:
    pack = verified_pack(resolve_home(args.home), args.pack, args.key or ())
    if args.json:
        print_json(pack.to_dict())
        return 0
    rows = [
        [
            e["type"],
            e["refName"],
            e["digest"],
            ", ".join("/".join(p[k] for k in ("os", "architecture", "variant") if k in p) for p in e["platforms"]),
            e["source"],
        ]
        for e in pack.entries
    ]
    stdout.print(f"verified {escape(str(args.pack))}")
    table(["type", "name", "digest", "platform", "source"], rows)
    return 0


def run_push(args: argparse.Namespace) -> int:
    pushed = push_pack(
        resolve_home(args.home), args.pack, args.registry, _access(args), keys=args.key or (), observer=None
    )
    if args.json:
        print_json([p.to_dict() for p in pushed])
        return 0
    for p in pushed:
        b = p.blobs
        blobs = f"{b['uploaded']} uploaded, {b['mounted']} mounted, {b['present']} already there"
        stdout.print(f"pushed {p.kind} {escape(p.reference)} (blobs: {blobs})")
    return 0
